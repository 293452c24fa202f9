//! `share`: makes verified models visible to every tool that reads the Hugging Face hub cache
//! (huggingface_hub, transformers, llama.cpp since March 2026), laid out as huggingface_hub
//! lays it out (`file_download.py`): `models--{owner}--{repo}/blobs/<sha256>` holding the
//! bytes (a hard link to the model file, else a reflink, else a copy) and
//! `snapshots/<revision>/<file>` a relative symbolic link to it. Nothing already there is
//! touched, so `hf_hub_download(repo, file, revision=<pinned commit>)` offline returns the
//! model's own bytes, with no download.
//!
//! Where symbolic links fail (exFAT, vfat, some SMB mounts, Windows without developer mode),
//! the snapshot entry holds the bytes itself, as in huggingface_hub's degraded mode
//! (`file_download.py`, `_create_symlink`, 2.4.0: "If it is a new file (`new_blob=True`), we
//! move it to `dst`. If it is not a new file […] the file is duplicated on the disk"): first a
//! hard link of the blob (the same inode: no second copy), else the blob this call just made,
//! moved into the snapshot (huggingface_hub's `shutil.move`), else a copy of the blob already
//! there (its `shutil.copyfile`). All or nothing: when no entry can be made, the blob and the
//! folders this call made are removed, and the error says what to change.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Registry;
use crate::catalog::ModelEntry;
use crate::config::vars::HF_HUB_CACHE;
use crate::error::{RegistryError, Result};
use crate::fs::{link_or_copy, LinkMethod};
use crate::store::Status;

/// What `share` did (or, in a dry run, would do) for one model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareAction {
    /// Put in the cache; the blob was made by this method (`hard_link` when it was already
    /// there). [`ShareReport::snapshot_entry`] says how the snapshot entry was made.
    Shared(LinkMethod),
    /// Already there (the blob with the right size and the snapshot entry, or a snapshot
    /// entry holding the bytes itself, as huggingface_hub leaves it without symbolic links).
    Present,
    /// A dry run: would be shared.
    WouldShare,
}

/// How a snapshot entry (`snapshots/<revision>/<file>`) was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotEntry {
    /// A relative symbolic link to the blob (`../../blobs/<sha256>`), as huggingface_hub
    /// writes it.
    SymbolicLink,
    /// A hard link of the blob: symbolic links fail there; the same inode, no second copy.
    HardLink,
    /// The blob this call made, moved into the snapshot: neither symbolic nor hard links work
    /// there. `blobs/<sha256>` is then absent, as huggingface_hub leaves it.
    MovedBlob,
    /// A copy of the blob that was already there: neither symbolic nor hard links work there.
    Copy,
}

impl SnapshotEntry {
    /// `symbolic link`, `hard link`, `moved blob` or `copy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SymbolicLink => "symbolic link",
            Self::HardLink => "hard link",
            Self::MovedBlob => "moved blob",
            Self::Copy => "copy",
        }
    }
}

/// One model's line in a share report.
#[derive(Clone, Debug, Serialize)]
pub struct ShareReport {
    /// The model.
    pub name: String,
    /// The blob in the hub cache (absent when the snapshot entry is [`SnapshotEntry::MovedBlob`]).
    #[serde(serialize_with = "crate::json_path::serialize")]
    pub blob: PathBuf,
    /// The snapshot entry other tools open.
    #[serde(serialize_with = "crate::json_path::serialize")]
    pub snapshot: PathBuf,
    /// What was done.
    pub action: ShareAction,
    /// How this call made the snapshot entry; `None` when it was already there, or in a dry run.
    pub snapshot_entry: Option<SnapshotEntry>,
}

impl Registry {
    /// Makes the verified files of `names` (every downloaded model when empty) visible in the
    /// Hugging Face hub cache ([`crate::Config::hf_hub_cache`]). A file that is present but
    /// has no valid stamp is hashed first; one that does not verify is an error.
    ///
    /// Each model is shared whole or not at all: when its snapshot entry cannot be made (not
    /// as a symbolic link, a hard link, nor a copy), the error ([`RegistryError::StorageError`])
    /// names each attempt and what to change, and the blob and folders this call made are
    /// removed. Models shared before it in the same call stay shared.
    pub fn share(&self, names: &[String], dry_run: bool) -> Result<Vec<ShareReport>> {
        let cache = self.config().hf_hub_cache().map(Path::to_path_buf).ok_or_else(unknown_cache)?;
        let entries: Vec<&ModelEntry> = if names.is_empty() {
            self.catalog()
                .entries()
                .iter()
                .filter(|e| self.models_dir().unit(e).status() == Status::Downloaded)
                .collect()
        } else {
            names.iter().map(|n| self.resolve(n)).collect::<Result<_>>()?
        };
        let mut reports = Vec::new();
        for entry in entries {
            // The Hub's cache holds Hub repositories: a model adopted from a registry has none.
            if let Some(r) = &entry.oci {
                if names.is_empty() {
                    continue;
                }
                return Err(RegistryError::config(
                    "share",
                    format!(
                        "{} was adopted from {r}, not from the Hub: the Hugging Face cache has no place for it",
                        entry.display_name()
                    ),
                ));
            }
            let unit = self.models_dir().unit(entry);
            if let Some((_, files)) = unit.missing() {
                return Err(files.not_downloaded(entry.display_name()));
            }
            if !unit.is_verified() {
                self.verify(&entry.display_name())?;
            }
            // A multi-file model: each file at its repository path in the snapshot.
            for (file, files) in unit.parts() {
                reports.push(share_one(&cache, file, &files.model_path(), dry_run)?);
            }
        }
        Ok(reports)
    }
}

/// The error when no Hugging Face cache is known.
pub(crate) fn unknown_cache() -> RegistryError {
    RegistryError::config(
        HF_HUB_CACHE,
        "the Hugging Face cache is unknown (no home directory); set HF_HUB_CACHE",
    )
}

/// Shares a file just verified (`STRATA_SHARE_HF_CACHE=1` after a download).
pub(crate) fn share_verified(cache: &Path, entry: &ModelEntry, model: &Path) -> Result<ShareReport> {
    share_one(cache, entry, model, false)
}

/// The blob and snapshot paths of `entry` in the hub cache `cache`.
pub(crate) fn hub_paths(cache: &Path, entry: &ModelEntry) -> (PathBuf, PathBuf) {
    let repo = cache.join(format!("models--{}", entry.hf_repo.replace('/', "--")));
    (
        repo.join("blobs").join(&*entry.sha256),
        repo.join("snapshots").join(&*entry.revision).join(&*entry.hf_filename),
    )
}

fn share_one(cache: &Path, entry: &ModelEntry, model: &Path, dry_run: bool) -> Result<ShareReport> {
    let (blob, snapshot) = hub_paths(cache, entry);
    let report = |action, snapshot_entry| ShareReport {
        name: entry.display_name(),
        blob: blob.clone(),
        snapshot: snapshot.clone(),
        action,
        snapshot_entry,
    };
    let blob_meta = fs::metadata(&blob).ok();
    if blob_meta.as_ref().is_some_and(|m| m.len() != entry.size_bytes) {
        return Err(RegistryError::storage(
            "share into",
            &blob,
            io::Error::other(
                "the Hugging Face cache already holds a file of another size under this SHA-256; it was left alone",
            ),
        ));
    }
    let snapshot_there = fs::symlink_metadata(&snapshot).is_ok();
    // huggingface_hub's layout without symbolic links: the snapshot entry holds the bytes.
    let snapshot_holds_bytes =
        fs::metadata(&snapshot).is_ok_and(|m| m.is_file() && m.len() == entry.size_bytes);
    if snapshot_there && (blob_meta.is_some() || snapshot_holds_bytes) {
        return Ok(report(ShareAction::Present, None));
    }
    if dry_run {
        return Ok(report(ShareAction::WouldShare, None));
    }
    let mut made = Made::default();
    let result = (|| {
        let mut method = LinkMethod::HardLink;
        if blob_meta.is_none() {
            method = make_blob(model, &blob, &entry.sha256, &mut made)?;
        }
        let mut how = None;
        if !snapshot_there {
            let dir = parent(&snapshot);
            create_dirs(dir, &mut made.dirs).map_err(|e| cache_error("create the folder", dir, &e))?;
            how = Some(make_snapshot_entry(&blob, &snapshot, entry, made.blob)?);
        }
        Ok((method, how))
    })();
    match result {
        Ok((method, how)) => Ok(report(ShareAction::Shared(method), how)),
        Err(e) => {
            made.undo(&blob);
            Err(e)
        }
    }
}

/// What one share made, to undo when it cannot finish.
#[derive(Default)]
struct Made {
    /// The blob was made by this call.
    blob: bool,
    /// Folders made by this call, outermost first.
    dirs: Vec<PathBuf>,
}

impl Made {
    fn undo(&self, blob: &Path) {
        if self.blob {
            let _ = fs::remove_file(blob);
        }
        for dir in self.dirs.iter().rev() {
            // Only empty folders go: another process may have put something there meanwhile.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// A path's folder (every path built by [`hub_paths`] has one).
fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Creates `dir` and its missing parents (0777 before the umask, as huggingface_hub's
/// `os.makedirs`), recording each folder it made.
fn create_dirs(dir: &Path, made: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while fs::symlink_metadata(at).is_err() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => made.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Puts the model's bytes at `blob`, linked (or copied) under a temporary name then renamed:
/// a reader never sees half a blob.
fn make_blob(model: &Path, blob: &Path, sha256: &str, made: &mut Made) -> Result<LinkMethod> {
    let dir = parent(blob);
    create_dirs(dir, &mut made.dirs).map_err(|e| cache_error("create the folder", dir, &e))?;
    let tmp = dir.join(format!(".{sha256}.strata-model.tmp"));
    let _ = fs::remove_file(&tmp);
    let method = link_or_copy(model, &tmp).map_err(|e| cache_error("link or copy the model to", &tmp, &e))?;
    if let Err(e) = fs::rename(&tmp, blob) {
        let _ = fs::remove_file(&tmp);
        return Err(cache_error("rename into place", blob, &e));
    }
    made.blob = true;
    Ok(method)
}

/// A failure to write into the hub cache, with what to change (the models directory's hint
/// does not apply here).
fn cache_error(action: &'static str, path: &Path, e: &io::Error) -> RegistryError {
    RegistryError::storage(
        action,
        path,
        io::Error::other(format!(
            "{e}; make {} writable (with room for the model), or set {HF_HUB_CACHE} to another folder",
            parent(path).display()
        )),
    )
}

/// Makes `snapshot`: a relative symbolic link to the blob, else a hard link of it, else the
/// blob itself moved there (when this call made it), else a copy of it.
fn make_snapshot_entry(
    blob: &Path,
    snapshot: &Path,
    entry: &ModelEntry,
    new_blob: bool,
) -> Result<SnapshotEntry> {
    let mut failed: Vec<(&str, io::Error)> = Vec::new();
    // `../../blobs/<sha256>`, one `..` more per folder in the file's name.
    let mut target = PathBuf::new();
    for _ in 0..entry.hf_filename.matches('/').count() + 2 {
        target.push("..");
    }
    let target = target.join("blobs").join(&*entry.sha256);
    match symlink(&target, snapshot) {
        Ok(()) => return Ok(SnapshotEntry::SymbolicLink),
        Err(e) => failed.push(("a symbolic link", e)),
    }
    match fs::hard_link(blob, snapshot) {
        Ok(()) => return Ok(SnapshotEntry::HardLink),
        Err(e) => failed.push(("a hard link", e)),
    }
    if new_blob {
        match fs::rename(blob, snapshot) {
            Ok(()) => return Ok(SnapshotEntry::MovedBlob),
            Err(e) => failed.push(("moving the blob", e)),
        }
    }
    // A copy under a temporary name, renamed into place: never half an entry.
    let tmp = parent(snapshot).join(format!(".{}.strata-model.tmp", entry.sha256));
    let _ = fs::remove_file(&tmp);
    match link_or_copy(blob, &tmp).and_then(|_| fs::rename(&tmp, snapshot)) {
        Ok(()) => return Ok(SnapshotEntry::Copy),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            failed.push(("a copy", e));
        }
    }
    let tried: Vec<String> = failed.iter().map(|(how, e)| format!("{how} ({e})")).collect();
    Err(RegistryError::storage(
        "make the Hugging Face snapshot entry",
        snapshot,
        io::Error::other(format!(
            "tried {}; nothing of this share was left in the cache{}. Make {} writable with room \
             for {} bytes, or set {HF_HUB_CACHE} to a folder on a filesystem with symbolic or hard links",
            tried.join(", "),
            if new_blob { " (the blob it made was removed)" } else { "" },
            parent(snapshot).display(),
            entry.size_bytes,
        )),
    ))
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Windows allows symbolic links only in developer mode (or as administrator).
#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn entry(size: u64) -> ModelEntry {
        let mut e = crate::catalog::Catalog::builtin().entries()[0].clone();
        e.size_bytes = size;
        e
    }

    #[test]
    fn an_entry_that_cannot_be_made_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m.gguf");
        fs::write(&model, b"GGUF bytes").unwrap();
        let e = entry(10);
        let cache = tmp.path().join("hub");
        let (blob, snapshot) = hub_paths(&cache, &e);
        // A file where the revision's folder should be: no entry of any kind can be made.
        fs::create_dir_all(parent(parent(&snapshot))).unwrap();
        fs::write(parent(&snapshot), b"in the way").unwrap();
        let err = share_one(&cache, &e, &model, false).unwrap_err();
        assert!(err.report().to_string().contains(HF_HUB_CACHE), "{}", err.report());
        assert!(!blob.exists(), "the blob this call made is removed");
        assert!(!parent(&blob).exists(), "and the folder it made for it");
        assert_eq!(fs::read(&model).unwrap(), b"GGUF bytes");
    }

    #[test]
    fn a_snapshot_entry_holding_the_bytes_is_present() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("m.gguf");
        fs::write(&model, b"GGUF bytes").unwrap();
        let e = entry(10);
        let cache = tmp.path().join("hub");
        let (blob, snapshot) = hub_paths(&cache, &e);
        fs::create_dir_all(parent(&snapshot)).unwrap();
        fs::copy(&model, &snapshot).unwrap();
        let r = share_one(&cache, &e, &model, false).unwrap();
        assert_eq!((r.action, r.snapshot_entry), (ShareAction::Present, None));
        assert!(!blob.exists(), "nothing is added beside huggingface_hub's own layout");
    }
}
