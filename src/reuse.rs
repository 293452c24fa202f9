//! Reuse before download: the exact file (by catalog size and SHA-256) may already be on
//! the machine, in the cache of another tool — the Hugging Face hub cache (`HF_HUB_CACHE`,
//! `HF_HOME/hub`, `~/.cache/huggingface/hub`: `models--{org}--{name}/blobs/<sha256>` and
//! `snapshots/`), llama.cpp's (`LLAMA_CACHE`, the same layout) or LM Studio's models folder
//! (`publisher/repo/file`). A candidate is hashed, then installed by hard link (no second
//! copy of the bytes), else a reflink, else a copy; the other tool's files are never
//! modified.

#[cfg(feature = "registry")]
use std::fs;
#[cfg(feature = "registry")]
use std::path::Path;
use std::path::PathBuf;

#[cfg(feature = "registry")]
use crate::catalog::ModelEntry;

/// The layout of a cache folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `models--{org}--{name}/blobs/<sha256>` and `snapshots/<rev>/<file>`.
    Hub,
    /// `<publisher>/<repo>/<file>`.
    LmStudio,
}

/// A cache folder of another tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheDir {
    /// Which tool, for messages (`Hugging Face cache`).
    pub tool: &'static str,
    /// The folder.
    pub path: PathBuf,
    /// Its layout.
    pub layout: Layout,
}

/// The usual cache folders, from the environment lookup `get` and the home directory.
pub fn default_dirs(get: &dyn Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Vec<CacheDir> {
    let mut dirs = Vec::new();
    let mut push = |tool, path: PathBuf, layout| {
        if !dirs.iter().any(|d: &CacheDir| d.path == path) {
            dirs.push(CacheDir { tool, path, layout });
        }
    };
    if let Some(p) = get("HF_HUB_CACHE") {
        push("Hugging Face cache", PathBuf::from(p), Layout::Hub);
    }
    if let Some(p) = get("HF_HOME") {
        push("Hugging Face cache", PathBuf::from(p).join("hub"), Layout::Hub);
    }
    if let Some(p) = get("LLAMA_CACHE") {
        push("llama.cpp cache", PathBuf::from(p), Layout::Hub);
    }
    if let Some(h) = home {
        push("Hugging Face cache", h.join(".cache/huggingface/hub"), Layout::Hub);
        push("llama.cpp cache", h.join(".cache/llama.cpp"), Layout::Hub);
        push("LM Studio", h.join(".lmstudio/models"), Layout::LmStudio);
        push("LM Studio", h.join(".cache/lm-studio/models"), Layout::LmStudio);
    }
    dirs
}

/// Files in `dirs` that may be `entry`'s, best first (right size; not yet hashed).
#[cfg(feature = "registry")]
pub(crate) fn candidates(dirs: &[CacheDir], entry: &ModelEntry) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    let (org, name) = entry.hf_repo.split_once('/').unwrap_or(("", &entry.hf_repo));
    for dir in dirs {
        let mut paths = Vec::new();
        match dir.layout {
            Layout::Hub => {
                let repo = dir.path.join(format!("models--{org}--{name}"));
                paths.push(repo.join("blobs").join(&*entry.sha256));
                if let Ok(snapshots) = fs::read_dir(repo.join("snapshots")) {
                    paths.extend(snapshots.flatten().map(|s| s.path().join(&*entry.hf_filename)));
                }
            }
            Layout::LmStudio => {
                paths.push(dir.path.join(org).join(name).join(&*entry.hf_filename));
                if let Ok(publishers) = fs::read_dir(&dir.path) {
                    for p in publishers.flatten() {
                        if let Ok(repos) = fs::read_dir(p.path()) {
                            paths.extend(repos.flatten().map(|r| r.path().join(&*entry.hf_filename)));
                        }
                    }
                }
            }
        }
        for p in paths {
            // Follow links (snapshots point at blobs): the real file is what is linked.
            let Ok(real) = fs::canonicalize(&p) else { continue };
            let right_size = fs::metadata(&real).is_ok_and(|m| m.is_file() && m.len() == entry.size_bytes);
            if right_size && !out.iter().any(|(q, _)| *q == real) {
                out.push((real, dir.tool));
            }
        }
    }
    out
}

/// How a reused file was installed.
#[cfg(feature = "registry")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    HardLink,
    Reflink,
    Copy,
}

#[cfg(feature = "registry")]
impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::HardLink => "hard link",
            Self::Reflink => "reflink",
            Self::Copy => "copy",
        }
    }
}

/// Puts the bytes of `from` at `to` (which must not exist): a hard link, else a reflink, else
/// a copy.
#[cfg(feature = "registry")]
pub(crate) fn install(from: &Path, to: &Path) -> std::io::Result<Method> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(Method::HardLink);
    }
    if reflink(from, to).is_ok() {
        return Ok(Method::Reflink);
    }
    fs::copy(from, to)?;
    Ok(Method::Copy)
}

#[cfg(all(target_os = "linux", feature = "registry"))]
fn reflink(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    const FICLONE: libc::c_ulong = 0x4004_9409;
    let src = fs::File::open(from)?;
    let dst = fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    // SAFETY: FICLONE takes the source descriptor as its argument; both files are open.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        let err = std::io::Error::last_os_error();
        drop(dst);
        let _ = fs::remove_file(to);
        Err(err)
    }
}

#[cfg(all(not(target_os = "linux"), feature = "registry"))]
fn reflink(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
