//! The models directory: a flat folder of model files under their Hugging Face names, with all
//! hidden state (partial downloads, locks, verification stamps) under `<dir>/.strata/`, so a
//! plain copy of the directory is a valid mirror.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::ModelEntry;
use crate::error::{RegistryError, Result};

/// The name of the hidden state folder inside the models directory.
pub const STATE_DIR: &str = ".strata";

/// What is on disk for one catalog entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// The file is present with the catalog size.
    Downloaded,
    /// A resumable partial download holds this many bytes.
    Partial {
        /// Bytes already on disk.
        bytes: u64,
    },
    /// Something is at the model path but it has the wrong size (or is not a regular file);
    /// the next download replaces it.
    Invalid {
        /// Its size.
        bytes: u64,
    },
    /// Nothing is on disk.
    NotDownloaded,
}

impl Status {
    /// The word `list` shows: `downloaded`, `partial NN%`, `invalid` or `not downloaded`.
    pub fn label(&self, total: u64) -> String {
        match self {
            Self::Downloaded => "downloaded".into(),
            Self::Partial { bytes } => {
                let pct = if total == 0 { 0 } else { (u128::from(*bytes) * 100 / u128::from(total)).min(99) };
                format!("partial {pct}%")
            }
            Self::Invalid { .. } => "invalid".into(),
            Self::NotDownloaded => "not downloaded".into(),
        }
    }
}

/// A models directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelsDir {
    root: PathBuf,
}

impl ModelsDir {
    /// The models directory at `root` (nothing is created until something is written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The hidden state folder.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    /// Where the entry's verified file lives.
    pub fn model_path(&self, entry: &ModelEntry) -> PathBuf {
        self.root.join(&*entry.hf_filename)
    }

    /// Where the entry's partial download lives.
    pub fn partial_path(&self, entry: &ModelEntry) -> PathBuf {
        self.state_dir().join(format!("{}.part", entry.hf_filename))
    }

    /// The entry's lock file.
    pub fn lock_path(&self, entry: &ModelEntry) -> PathBuf {
        self.state_dir().join(format!("{}.lock", entry.hf_filename))
    }

    /// The validator (`ETag`) of the entry's partial download, for `If-Range`.
    pub fn validator_path(&self, entry: &ModelEntry) -> PathBuf {
        self.state_dir().join(format!("{}.part.etag", entry.hf_filename))
    }

    /// Per-range progress of a parallel partial download.
    pub fn ranges_path(&self, entry: &ModelEntry) -> PathBuf {
        self.state_dir().join(format!("{}.part.ranges", entry.hf_filename))
    }

    /// Bytes of the entry's partial download on disk: from the per-range progress of a
    /// parallel download (whose file is preallocated), else the partial file's length.
    pub fn partial_bytes(&self, entry: &ModelEntry) -> Option<u64> {
        let meta = fs::symlink_metadata(self.partial_path(entry)).ok().filter(|m| m.is_file())?;
        if let Ok(text) = fs::read_to_string(self.ranges_path(entry)) {
            let mut lines = text.lines();
            if lines.next() == Some(&format!("v1 {}", entry.size_bytes)) {
                return Some(
                    lines.filter_map(|l| l.split_ascii_whitespace().nth(2)?.parse::<u64>().ok()).sum(),
                );
            }
        }
        Some(meta.len())
    }

    /// Where the entry's file came from (a source, or another tool's cache).
    pub fn origin_path(&self, entry: &ModelEntry) -> PathBuf {
        self.state_dir().join(format!("{}.origin", entry.hf_filename))
    }

    /// When the entry was last used by `ensure()` (this file's modification time).
    pub fn used_path(&self, entry: &ModelEntry) -> PathBuf {
        self.state_dir().join(format!("{}.used", entry.hf_filename))
    }

    /// The list of pinned model files (one file name a line).
    pub fn pins_path(&self) -> PathBuf {
        self.state_dir().join("pinned")
    }

    /// Where the entry's file came from, as recorded when it was installed.
    pub fn origin(&self, entry: &ModelEntry) -> Option<String> {
        fs::read_to_string(self.origin_path(entry))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// When the entry was last used (recorded by `ensure()`), else when its file was written.
    pub fn last_used(&self, entry: &ModelEntry) -> Option<std::time::SystemTime> {
        fs::metadata(self.used_path(entry))
            .or_else(|_| fs::metadata(self.model_path(entry)))
            .and_then(|m| m.modified())
            .ok()
    }

    /// The pinned file names.
    pub fn pinned(&self) -> Vec<String> {
        fs::read_to_string(self.pins_path())
            .map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Whether the entry is pinned (prune never removes it).
    pub fn is_pinned(&self, entry: &ModelEntry) -> bool {
        self.pinned().iter().any(|f| *f == entry.hf_filename)
    }

    /// Pins or unpins the entry (the list is rewritten atomically).
    pub fn set_pinned(&self, entry: &ModelEntry, pinned: bool) -> Result<()> {
        self.create()?;
        let mut pins = self.pinned();
        pins.retain(|f| *f != entry.hf_filename);
        if pinned {
            pins.push(entry.hf_filename.to_string());
        }
        let mut text = pins.join("\n");
        text.push('\n');
        crate::custom::write_atomic(&self.pins_path(), text.as_bytes())
    }

    /// Whether another process holds the entry's lock (a download in progress).
    pub fn is_locked(&self, entry: &ModelEntry) -> bool {
        match fs::OpenOptions::new().write(true).open(self.lock_path(entry)) {
            Ok(f) => matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }

    /// The entry's verification stamp.
    pub fn stamp_path(&self, entry: &ModelEntry) -> PathBuf {
        self.state_dir().join(format!("{}.verified", entry.hf_filename))
    }

    /// What is on disk for `entry`. Symbolic links are not followed: only a regular file at the
    /// model path counts.
    pub fn status(&self, entry: &ModelEntry) -> Status {
        match fs::symlink_metadata(self.model_path(entry)) {
            Ok(m) if m.is_file() && m.len() == entry.size_bytes => return Status::Downloaded,
            Ok(m) => return Status::Invalid { bytes: m.len() },
            Err(_) => {}
        }
        match self.partial_bytes(entry) {
            Some(bytes) if bytes > 0 && bytes < entry.size_bytes => Status::Partial { bytes },
            _ => Status::NotDownloaded,
        }
    }

    /// Creates the directory and its state folder (mode 0755) if missing.
    pub fn create(&self) -> Result<()> {
        create_dir(&self.root)?;
        create_dir(&self.state_dir())
    }

    /// Deletes the entry's file, partial download and stamp. Returns whether anything was
    /// deleted.
    ///
    /// Refuses while another process holds the model's lock (a download in progress).
    pub fn remove(&self, entry: &ModelEntry) -> Result<bool> {
        let lock_path = self.lock_path(entry);
        let _lock = match fs::OpenOptions::new().write(true).open(&lock_path) {
            Ok(f) => match f.try_lock() {
                Ok(()) => Some(f),
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(RegistryError::storage(
                        "remove",
                        self.model_path(entry),
                        std::io::Error::other(
                            "another process is downloading this model; try again when it has finished",
                        ),
                    ))
                }
                Err(fs::TryLockError::Error(e)) => return Err(RegistryError::storage("lock", lock_path, e)),
            },
            Err(_) => None,
        };
        let mut removed = false;
        let paths = [
            self.model_path(entry),
            self.partial_path(entry),
            self.stamp_path(entry),
            self.validator_path(entry),
        ];
        for path in paths {
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RegistryError::storage("delete", path, e)),
            }
        }
        Ok(removed)
    }
}

/// The verification stamp of a file: what it was when its SHA-256 was last checked.
#[cfg(feature = "registry")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    device: u64,
    sha256: String,
}

#[cfg(feature = "registry")]
impl Stamp {
    /// The stamp of the file described by `meta`, verified to hash to `sha256`.
    pub(crate) fn of(meta: &fs::Metadata, sha256: &str) -> Self {
        #[cfg(unix)]
        let (inode, device, mtime_ns) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev(), i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()))
        };
        #[cfg(not(unix))]
        let (inode, device, mtime_ns) = (
            0,
            0,
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128),
        );
        Self { size: meta.len(), mtime_ns, inode, device, sha256: sha256.to_string() }
    }

    fn to_line(&self) -> String {
        format!("v1 {} {} {} {} {}\n", self.size, self.mtime_ns, self.inode, self.device, self.sha256)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut it = text.split_ascii_whitespace();
        if it.next()? != "v1" {
            return None;
        }
        Some(Self {
            size: it.next()?.parse().ok()?,
            mtime_ns: it.next()?.parse().ok()?,
            inode: it.next()?.parse().ok()?,
            device: it.next()?.parse().ok()?,
            sha256: it.next()?.to_string(),
        })
    }
}

#[cfg(feature = "registry")]
impl ModelsDir {
    /// Whether the entry's file is present and unchanged since it was verified: one `stat`
    /// and one read of a tiny stamp file, no hashing.
    pub(crate) fn is_verified(&self, entry: &ModelEntry) -> bool {
        let Ok(meta) = fs::symlink_metadata(self.model_path(entry)) else { return false };
        if !meta.is_file() || meta.len() != entry.size_bytes {
            return false;
        }
        let Ok(text) = fs::read_to_string(self.stamp_path(entry)) else { return false };
        Stamp::parse(&text).is_some_and(|s| s == Stamp::of(&meta, &entry.sha256))
    }

    /// Records that the entry's file, as it is now, hashes to the catalog SHA-256.
    pub(crate) fn write_stamp(&self, entry: &ModelEntry) -> Result<()> {
        let path = self.model_path(entry);
        let meta = fs::symlink_metadata(&path).map_err(|e| RegistryError::storage("stat", &path, e))?;
        crate::custom::write_atomic(
            &self.stamp_path(entry),
            Stamp::of(&meta, &entry.sha256).to_line().as_bytes(),
        )
    }

    /// Records a use of the entry (for `prune`): once per process, as the modification time
    /// of a small file, so that warm calls stay a `stat`.
    pub(crate) fn touch_used(&self, entry: &ModelEntry) {
        static TOUCHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        let path = self.used_path(entry);
        let mut touched = TOUCHED.lock().unwrap_or_else(|e| e.into_inner());
        if touched.contains(&path) {
            return;
        }
        if let Ok(f) = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        touched.push(path);
    }

    /// Forgets the entry's verification (the next `ensure()` re-hashes).
    pub(crate) fn remove_stamp(&self, entry: &ModelEntry) {
        let _ = fs::remove_file(self.stamp_path(entry));
    }
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`, when known.
#[cfg(all(unix, feature = "registry"))]
pub(crate) fn available_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `statvfs` only writes into the zeroed struct we own; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    (rc == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Bytes free on the filesystem holding `dir` (unknown on this platform).
#[cfg(all(not(unix), feature = "registry"))]
pub(crate) fn available_space(_dir: &Path) -> Option<u64> {
    None
}

/// Opens (creating if needed) a lock file, without truncating it.
pub(crate) fn open_lock_file(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| RegistryError::storage("open lock file", path, e))
}

/// Creates `dir` and its parents with mode 0755 (before the umask).
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder.create(dir).map_err(|e| RegistryError::storage("create directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn status_follows_what_is_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path().join("models"));
        let catalog = Catalog::builtin();
        let mut entry = catalog.resolve("minilm").unwrap().clone();
        entry.size_bytes = 100;
        assert_eq!(dir.status(&entry), Status::NotDownloaded);
        assert!(!dir.root().exists(), "status creates nothing");

        dir.create().unwrap();
        fs::write(dir.partial_path(&entry), [0u8; 37]).unwrap();
        assert_eq!(dir.status(&entry), Status::Partial { bytes: 37 });
        assert_eq!(dir.status(&entry).label(entry.size_bytes), "partial 37%");

        fs::write(dir.model_path(&entry), [0u8; 99]).unwrap();
        assert_eq!(dir.status(&entry), Status::Invalid { bytes: 99 });
        fs::write(dir.model_path(&entry), [0u8; 100]).unwrap();
        assert_eq!(dir.status(&entry), Status::Downloaded);

        assert!(dir.remove(&entry).unwrap());
        assert!(!dir.model_path(&entry).exists() && !dir.partial_path(&entry).exists());
        assert!(!dir.remove(&entry).unwrap());
    }

    #[test]
    fn remove_refuses_while_another_holder_has_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        dir.create().unwrap();
        let entry = Catalog::builtin().resolve("minilm").unwrap().clone();
        fs::write(dir.partial_path(&entry), b"GGUF").unwrap();
        let holder = fs::File::create(dir.lock_path(&entry)).unwrap();
        holder.lock().unwrap();
        let err = dir.remove(&entry).unwrap_err();
        assert!(err.to_string().contains("another process is downloading"), "{err}");
        assert!(dir.partial_path(&entry).exists(), "nothing was deleted");
        drop(holder);
        assert!(dir.remove(&entry).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn directories_are_0755_and_symlinks_do_not_count() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path().join("a/b"));
        dir.create().unwrap();
        let mode = fs::metadata(dir.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o755, 0, "no more than 0755: {mode:o}");
        assert_eq!(mode & 0o700, 0o700, "owner rwx: {mode:o}");
        let entry = Catalog::builtin().resolve("minilm").unwrap().clone();
        let target = tmp.path().join("elsewhere.gguf");
        fs::write(&target, vec![0u8; entry.size_bytes as usize]).unwrap();
        std::os::unix::fs::symlink(&target, dir.model_path(&entry)).unwrap();
        assert!(matches!(dir.status(&entry), Status::Invalid { .. }));
    }
}
