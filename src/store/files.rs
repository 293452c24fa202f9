//! [`ModelFiles`]: everything of one model in the models directory, in one place — the model
//! file itself and its side files under `.strata/`. Adding a side file is a change here and
//! nowhere else: `remove`, `prune` and a failed download all clean through this type.
//!
//! | file under `.strata/`        | what                                              | removed by |
//! |------------------------------|---------------------------------------------------|------------|
//! | `<file>.part`                | partial download                                  | discard, remove |
//! | `<file>.part.etag`           | the partial's validator (`If-Range`)              | discard, remove |
//! | `<file>.part.ranges`         | per-range progress of a parallel partial          | discard, remove |
//! | `<file>.part.<pid>-<host>` (`.etag`, `.ranges`) | one process's own partial download, where locks cannot be trusted | discard, remove |
//! | `<file>.reuse`, `<file>.reuse.<pid>-<host>` | a file being linked in from another tool's cache | discard, remove |
//! | `<file>.verified`            | verification stamp                                | remove |
//! | `<file>.origin`              | where the file came from ([`Provenance`], JSON)   | remove |
//! | `<file>.used`                | last use by `ensure()` (its modification time)    | remove |
//! | `<file>.upload`              | a chunked push in progress to a registry (`upload.rs`) | its push (complete, or forgotten by the registry), remove |
//! | `<file>.lock`                | the per-model OS lock                             | never (a waiter may hold it open) |
//! | `<file>.claim`               | the per-model lock where OS locks do not work     | its holder, or whoever finds it stale |

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::provenance::Provenance;
use super::ranges;
use crate::error::{RegistryError, Result};
use crate::fs::lock::{Guard, Lock};

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
    /// One word: `downloaded`, `partial`, `invalid` or `not downloaded`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Downloaded => "downloaded",
            Self::Partial { .. } => "partial",
            Self::Invalid { .. } => "invalid",
            Self::NotDownloaded => "not downloaded",
        }
    }

    /// The words `list` shows: `downloaded`, `partial NN%`, `invalid` or `not downloaded`.
    pub fn label(&self, total: u64) -> String {
        match self {
            Self::Partial { bytes } => {
                let pct = if total == 0 { 0 } else { (u128::from(*bytes) * 100 / u128::from(total)).min(99) };
                format!("partial {pct}%")
            }
            other => other.as_str().into(),
        }
    }
}

/// The files of one catalog entry in a models directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    root: PathBuf,
    state: PathBuf,
    file: String,
    model: String,
    size: u64,
    #[cfg_attr(not(feature = "registry"), allow(dead_code))]
    sha256: String,
    /// Where partial downloads are one process's own: its `<pid>-<host>` tag.
    tag: Option<String>,
}

impl ModelFiles {
    pub(super) fn new(root: &Path, state: PathBuf, entry: &crate::catalog::ModelEntry) -> Self {
        Self {
            root: root.to_path_buf(),
            state,
            file: entry.local_file(),
            model: entry.file_label(),
            size: entry.size_bytes,
            sha256: entry.sha256.to_string(),
            tag: None,
        }
    }

    /// The same model's files, with the partial download (and a file being linked in) under
    /// names of one process's own when `tag` is set (`<file>.part.<tag>`): where locks cannot
    /// be trusted to exclude other processes, a process renames into place only bytes it
    /// wrote and verified itself.
    pub fn with_tag(&self, tag: Option<String>) -> Self {
        Self { tag, ..self.clone() }
    }

    /// Temporary files a killed process left while writing this file's side files
    /// (`.<file>.<side>.<random>.tmp` in its state folder: an upload state, a stamp).
    fn temporaries(&self) -> Vec<PathBuf> {
        let side = self.side("");
        let (Some(dir), Some(base)) = (side.parent(), side.file_name().and_then(|n| n.to_str())) else {
            return Vec::new();
        };
        let prefix = format!(".{base}.");
        let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
        entries
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tmp")))
            .map(|e| e.path())
            .collect()
    }

    /// The names of this file staged for an update (`store/staged.rs`): `.strata/update/<file>`
    /// and its side files there.
    pub fn staged(&self) -> Self {
        let dir = self.state.join("update");
        Self { root: dir.clone(), state: dir, ..self.clone() }
    }

    /// The tag of this process's own partial files, when they are its own.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn side(&self, suffix: &str) -> PathBuf {
        self.state.join(format!("{}{suffix}", self.file))
    }

    fn part_stem(&self) -> String {
        match &self.tag {
            None => format!("{}.part", self.file),
            Some(t) => format!("{}.part.{t}", self.file),
        }
    }

    /// The file's path relative to the models directory (and to its state folder): its file
    /// name, or `<unit dir>/<base name>` for a file of a multi-file model.
    pub fn relative_path(&self) -> &str {
        &self.file
    }

    /// Creates the folders the file and its side files live in (a multi-file model's folder
    /// in the models directory and in its state folder), mode 0777 less the umask.
    #[cfg(feature = "registry")]
    pub(crate) fn create_dirs(&self) -> Result<()> {
        for path in [self.model_path(), self.side("")] {
            if let Some(parent) = path.parent() {
                crate::fs::create_dir(parent)?;
            }
        }
        Ok(())
    }

    /// Where the verified file lives.
    pub fn model_path(&self) -> PathBuf {
        self.root.join(&self.file)
    }

    /// The partial download.
    pub fn partial_path(&self) -> PathBuf {
        self.state.join(self.part_stem())
    }

    /// The validator (`ETag`) of the partial download, for `If-Range`.
    pub fn validator_path(&self) -> PathBuf {
        self.state.join(format!("{}.etag", self.part_stem()))
    }

    /// Per-range progress of a parallel partial download.
    pub fn ranges_path(&self) -> PathBuf {
        self.state.join(format!("{}.ranges", self.part_stem()))
    }

    /// A file being linked in from another tool's cache.
    pub fn reuse_path(&self) -> PathBuf {
        match &self.tag {
            None => self.side(".reuse"),
            Some(t) => self.side(&format!(".reuse.{t}")),
        }
    }

    /// The verification stamp.
    pub fn stamp_path(&self) -> PathBuf {
        self.side(".verified")
    }

    /// Where the file came from.
    pub fn provenance_path(&self) -> PathBuf {
        self.side(".origin")
    }

    /// When the file was last used by `ensure()` (this file's modification time).
    pub fn used_path(&self) -> PathBuf {
        self.side(".used")
    }

    /// A chunked upload of the file to a registry in progress (`mirror push oci://…`, see
    /// `upload.rs`).
    pub fn upload_path(&self) -> PathBuf {
        self.side(".upload")
    }

    /// The per-model OS lock file (its claim file, where OS locks do not work, is
    /// `<file>.claim` beside it).
    pub fn lock_path(&self) -> PathBuf {
        self.side(".lock")
    }

    /// The model's lock.
    pub(crate) fn lock(&self) -> Lock {
        Lock::new(&self.lock_path())
    }

    /// Every partial download of the model on disk: the shared one and each process's own,
    /// each as the model's files with its tag.
    pub fn partials(&self) -> Vec<ModelFiles> {
        let side = self.side(".part");
        let (Some(parent), Some(prefix)) = (side.parent(), side.file_name().and_then(|n| n.to_str())) else {
            return Vec::new();
        };
        let Ok(dir) = fs::read_dir(parent) else { return Vec::new() };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let Ok(name) = e.file_name().into_string() else { continue };
            let Some(rest) = name.strip_prefix(prefix) else { continue };
            let tag = match rest.strip_prefix('.') {
                None if rest.is_empty() => None,
                Some(t) if !t.is_empty() && !t.contains('.') && t.contains('-') => Some(t.to_string()),
                _ => continue, // `.etag`, `.ranges`, or another file's name
            };
            if e.file_type().is_ok_and(|t| t.is_file()) {
                out.push(self.with_tag(tag));
            }
        }
        out.sort_by(|a, b| a.tag.cmp(&b.tag));
        out
    }

    /// What is on disk. Symbolic links are not followed: only a regular file at the model
    /// path counts. A partial download is the most advanced of them.
    pub fn status(&self) -> Status {
        match fs::symlink_metadata(self.model_path()) {
            Ok(m) if m.is_file() && m.len() == self.size => return Status::Downloaded,
            Ok(m) => return Status::Invalid { bytes: m.len() },
            Err(_) => {}
        }
        match self.partials().iter().filter_map(ModelFiles::partial_bytes).max() {
            Some(bytes) if bytes > 0 && bytes < self.size => Status::Partial { bytes },
            _ => Status::NotDownloaded,
        }
    }

    /// Why the model cannot be used: [`RegistryError::InvalidFile`] when something of the
    /// wrong size is at its path, else [`RegistryError::NotDownloaded`].
    pub fn not_downloaded(&self, model: String) -> RegistryError {
        match self.status() {
            Status::Invalid { bytes } => RegistryError::InvalidFile {
                model,
                path: self.model_path(),
                found: bytes,
                expected: self.size,
            },
            _ => RegistryError::NotDownloaded { model, path: self.model_path() },
        }
    }

    /// Bytes of the partial download on disk: from the per-range progress of a parallel
    /// download (whose file is preallocated), else the partial file's length.
    pub fn partial_bytes(&self) -> Option<u64> {
        let meta = fs::symlink_metadata(self.partial_path()).ok().filter(|m| m.is_file())?;
        match ranges::read(&self.ranges_path(), self.size) {
            Some(chunks) => Some(chunks.iter().map(|c| c.done).fold(0, u64::saturating_add)),
            None => Some(meta.len()),
        }
    }

    /// Whether another process holds the model's lock (a download in progress).
    pub fn is_locked(&self) -> bool {
        self.lock().is_held_elsewhere()
    }

    /// Deletes this partial download (the shared one, or this tag's) and its side files
    /// (bytes that cannot be resumed).
    #[cfg(feature = "registry")]
    pub(crate) fn discard_partial(&self) {
        for path in [self.partial_path(), self.validator_path(), self.ranges_path(), self.reuse_path()] {
            let _ = fs::remove_file(path);
        }
    }

    /// Deletes the model file, its partial downloads and every side file but the lock.
    /// Returns whether a model file or a partial download was deleted.
    ///
    /// Refuses while another process holds the model's lock (a download in progress), and,
    /// changing nothing, when a file could not be deleted (a directory this user may not
    /// change).
    pub fn remove(&self) -> Result<bool> {
        let _held = self.hold_for_removal()?;
        self.remove_held()
    }

    /// Takes the model's lock, if it was ever used, for a removal; refuses while another
    /// process holds it (a download in progress). Held until the returned guard drops.
    pub(crate) fn hold_for_removal(&self) -> Result<Option<Guard>> {
        self.hold("remove", false)
    }

    /// Takes the model's lock for `what`, refusing while another process holds it; `create`:
    /// even when the lock file does not exist yet (an update), else `None` then.
    pub(crate) fn hold(&self, what: &'static str, create: bool) -> Result<Option<Guard>> {
        let lock = self.lock();
        if !create && !lock.exists() {
            return Ok(None);
        }
        #[cfg(feature = "registry")]
        if create {
            self.create_dirs()?;
        }
        match lock.try_acquire()? {
            crate::fs::lock::Attempt::Acquired(g) => Ok(Some(g)),
            crate::fs::lock::Attempt::Busy(holder) => Err(RegistryError::Busy {
                what,
                model: self.model.clone(),
                holder: Some(match holder {
                    Some(h) => format!("{h}, downloading it"),
                    None => lock.describe(None),
                }),
                waited: None,
            }),
        }
    }

    /// [`ModelFiles::remove`] under a lock already taken by [`ModelFiles::hold_for_removal`].
    /// Every file is checked first: a removal that cannot complete changes nothing.
    pub(crate) fn remove_held(&self) -> Result<bool> {
        let doomed = self.removal_plan()?;
        self.remove_planned(&doomed)
    }

    /// Every file a removal deletes, each checked to be deletable by this process.
    pub(crate) fn removal_plan(&self) -> Result<Vec<PathBuf>> {
        let mut doomed: Vec<PathBuf> = Vec::new();
        let staged = self.staged(); // what an update fetched and left (failed, or cut short)
        for p in self.partials().into_iter().chain(staged.partials()) {
            doomed.extend([p.partial_path(), p.validator_path(), p.ranges_path(), p.reuse_path()]);
        }
        doomed.extend([staged.stamp_path(), staged.provenance_path(), staged.model_path()]);
        doomed.extend(self.temporaries());
        doomed.extend([
            self.validator_path(),
            self.ranges_path(),
            self.reuse_path(),
            self.stamp_path(),
            self.provenance_path(),
            self.used_path(),
            self.upload_path(),
            self.model_path(),
        ]);
        doomed.retain(|p| fs::symlink_metadata(p).is_ok());
        doomed.dedup();
        for path in &doomed {
            may_delete(path)?;
        }
        Ok(doomed)
    }

    /// Deletes what [`ModelFiles::removal_plan`] listed, the model file last. Returns whether
    /// a model file or a partial download was deleted.
    pub(crate) fn remove_planned(&self, doomed: &[PathBuf]) -> Result<bool> {
        let model = self.model_path();
        let mut removed = false;
        // The model file last: until it goes, what is left is a model that is re-verified.
        for path in doomed.iter().filter(|p| **p != model).chain(doomed.iter().filter(|p| **p == model)) {
            let gone = crate::fs::remove_if_present(path)?;
            let is_partial = path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.contains(".part") && !n.ends_with(".etag") && !n.ends_with(".ranges")
            });
            removed |= gone && (*path == model || is_partial);
        }
        Ok(removed)
    }

    /// Where the file came from, as recorded when it was installed.
    pub fn provenance(&self) -> Option<Provenance> {
        Provenance::parse(&fs::read_to_string(self.provenance_path()).ok()?)
    }

    /// Records where the file came from (best effort: a record that cannot be written only
    /// makes `list` say less).
    #[cfg(feature = "registry")]
    pub(crate) fn record_provenance(&self, provenance: &Provenance) {
        if let Ok(text) = serde_json::to_vec(provenance) {
            let _ = crate::fs::write_atomic(&self.provenance_path(), &text);
        }
    }

    /// When the model was last used (recorded by `ensure()`), else when its file was written.
    pub fn last_used(&self) -> Option<SystemTime> {
        fs::metadata(self.used_path())
            .or_else(|_| fs::metadata(self.model_path()))
            .and_then(|m| m.modified())
            .ok()
    }

    /// When the partial download was last written.
    pub fn partial_modified(&self) -> Option<SystemTime> {
        fs::metadata(self.partial_path()).and_then(|m| m.modified()).ok()
    }
}

/// Refuses (before anything is deleted) a file this process could not delete: its
/// directory is not writable, or is sticky and the file is another user's.
fn may_delete(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let refuse = |why: String| {
        RegistryError::storage(
            "remove",
            path,
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, format!("{why}; nothing was removed")),
        )
    };
    if let Err(e) = crate::fs::can_change_entries(dir) {
        return Err(refuse(format!(
            "{} cannot be changed by this user ({e}); in a directory shared by a group, its owner can make it \
             group-writable with `chmod g+w {}`",
            dir.display(),
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let sticky = fs::metadata(dir).is_ok_and(|m| m.mode() & 0o1000 != 0);
        if sticky {
            let me = rustix::process::geteuid().as_raw();
            let owner = fs::symlink_metadata(path).map(|m| m.uid()).unwrap_or(me);
            let dir_owner = fs::metadata(dir).map(|m| m.uid()).unwrap_or(me);
            if me != 0 && owner != me && dir_owner != me {
                return Err(refuse(format!(
                    "{} is sticky and the file belongs to another user; only its owner can remove it",
                    dir.display()
                )));
            }
        }
    }
    Ok(())
}

/// Files hashed by this process where no stamp could be written (a read-only directory).
#[cfg(feature = "registry")]
static VERIFIED_IN_PROCESS: std::sync::Mutex<Vec<(PathBuf, super::stamp::Stamp)>> =
    std::sync::Mutex::new(Vec::new());

#[cfg(feature = "registry")]
impl ModelFiles {
    /// Whether the file is present and unchanged since it was verified: one `stat` and one
    /// read of a tiny stamp file (or, in a read-only models directory, of this process's
    /// memory of having hashed it), no hashing.
    pub fn is_verified(&self) -> bool {
        use super::stamp::Stamp;
        let Ok(meta) = fs::symlink_metadata(self.model_path()) else { return false };
        if !meta.is_file() || meta.len() != self.size {
            return false;
        }
        let now = Stamp::of(&meta, &self.sha256);
        if let Ok(text) = fs::read_to_string(self.stamp_path()) {
            if Stamp::parse(&text).is_some_and(|s| s == now) {
                return true;
            }
        }
        VERIFIED_IN_PROCESS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(p, s)| *p == self.model_path() && *s == now)
    }

    /// Remembers, for this process only, that the file as it is now hashes to the catalog
    /// SHA-256: for a models directory where no stamp can be written.
    pub(crate) fn remember_verified(&self) {
        let Ok(meta) = fs::symlink_metadata(self.model_path()) else { return };
        let stamp = super::stamp::Stamp::of(&meta, &self.sha256);
        VERIFIED_IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner()).push((self.model_path(), stamp));
    }

    /// Records that the file, as it is now, hashes to the catalog SHA-256.
    pub(crate) fn write_stamp(&self) -> Result<()> {
        let path = self.model_path();
        let meta = fs::symlink_metadata(&path).map_err(|e| RegistryError::storage("stat", &path, e))?;
        let line = super::stamp::Stamp::of(&meta, &self.sha256).to_line();
        self.create_dirs()?;
        crate::fs::write_atomic(&self.stamp_path(), line.as_bytes())
    }

    /// Forgets the verification (the next `ensure()` re-hashes).
    pub(crate) fn remove_stamp(&self) {
        let _ = fs::remove_file(self.stamp_path());
    }

    /// Records a use (for `prune`): once per process, as the modification time of a small
    /// file, so that warm calls stay a `stat`. Set to "now" as any member of a shared
    /// directory's group may (not only the file's owner).
    pub(crate) fn touch_used(&self) {
        static TOUCHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        let path = self.used_path();
        let mut touched = TOUCHED.lock().unwrap_or_else(|e| e.into_inner());
        if touched.contains(&path) {
            return;
        }
        if fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).is_ok() {
            crate::fs::touch_now(&path);
        }
        touched.push(path);
    }

    /// The validator saved with the partial download.
    pub(crate) fn read_validator(&self) -> Option<String> {
        fs::read_to_string(self.validator_path()).ok().filter(|v| !v.is_empty())
    }

    /// Saves the partial download's validator.
    pub(crate) fn write_validator(&self, validator: &str) {
        let _ = crate::fs::write_atomic(&self.validator_path(), validator.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::CacheTool;
    use crate::fs::LinkMethod;
    use crate::store::ModelsDir;

    #[cfg(feature = "registry")]
    #[test]
    fn remove_leaves_nothing_of_the_model_but_its_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        dir.create().unwrap();
        let files = dir.files(Catalog::builtin().resolve("minilm").unwrap());
        fs::write(files.model_path(), b"GGUF").unwrap();
        for path in [files.partial_path(), files.validator_path(), files.ranges_path(), files.reuse_path()] {
            fs::write(path, b"x").unwrap();
        }
        let other = files.with_tag(Some("4242-elsewhere".into()));
        for path in [other.partial_path(), other.ranges_path()] {
            fs::write(path, b"x").unwrap();
        }
        assert_eq!(files.partials().len(), 2, "the shared partial and another process's");
        for path in [files.stamp_path(), files.used_path(), files.lock_path()] {
            fs::write(path, b"x").unwrap();
        }
        files.record_provenance(&Provenance::Source { source: "mirror directory /m".into(), xet_hash: None });
        assert!(files.remove().unwrap());
        let left: Vec<_> = fs::read_dir(dir.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, [format!("{}.lock", files.file)], "only the lock stays");
        assert!(!files.model_path().exists());
        assert!(!files.remove().unwrap(), "nothing left to remove");
    }

    #[cfg(feature = "registry")]
    #[test]
    fn provenance_round_trips_and_reads_the_old_plain_format() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        dir.create().unwrap();
        let files = dir.files(Catalog::builtin().resolve("minilm").unwrap());
        let reused = Provenance::Reused {
            tool: CacheTool::HuggingFace,
            path: "/c/blob".into(),
            method: LinkMethod::HardLink,
        };
        files.record_provenance(&reused);
        assert_eq!(files.provenance(), Some(reused.clone()));
        assert_eq!(reused.reused_from(), Some(CacheTool::HuggingFace));
        assert_eq!(reused.to_string(), "Hugging Face cache /c/blob (hard link)");
        fs::write(files.provenance_path(), "Hugging Face https://huggingface.co\n").unwrap();
        assert_eq!(
            files.provenance(),
            Some(Provenance::Source { source: "Hugging Face https://huggingface.co".into(), xet_hash: None })
        );
    }
}
