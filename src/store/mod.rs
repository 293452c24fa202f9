//! The models directory: a flat folder of model files under their Hugging Face names, with all
//! hidden state (partial downloads, locks, verification stamps) under `<dir>/.strata/`, so a
//! plain copy of the directory is a valid mirror. [`ModelFiles`] owns one model's files.

use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::ModelEntry;
use crate::error::Result;

mod files;
mod provenance;
pub mod ranges;
#[cfg(feature = "registry")]
mod staged;
#[cfg_attr(not(feature = "registry"), allow(dead_code))]
mod stamp;
mod unit;
#[cfg(feature = "registry")]
mod upload;

pub use files::{ModelFiles, Status};
pub use provenance::Provenance;
pub use unit::ModelUnit;
#[cfg(feature = "registry")]
pub use upload::UploadState;

/// The name of the hidden state folder inside the models directory.
pub const STATE_DIR: &str = ".strata";

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

    /// The files of `entry`.
    pub fn files(&self, entry: &ModelEntry) -> ModelFiles {
        ModelFiles::new(&self.root, self.state_dir(), entry)
    }

    /// Every file of `entry`'s model (one for a single-file model).
    pub fn unit(&self, entry: &ModelEntry) -> ModelUnit {
        ModelUnit::new(
            entry
                .file_entries()
                .into_iter()
                .map(|e| {
                    let f = self.files(&e);
                    (e, f)
                })
                .collect(),
        )
    }

    /// Where the entry's verified file lives (a multi-file model's first shard).
    pub fn model_path(&self, entry: &ModelEntry) -> PathBuf {
        self.root.join(entry.local_file())
    }

    /// Creates the directory and its state folder (mode 0755) if missing.
    pub fn create(&self) -> Result<()> {
        crate::fs::create_dir(&self.root)?;
        crate::fs::create_dir(&self.state_dir())
    }

    /// The regular `.gguf` files in the directory and in its folders one level down (where
    /// multi-file models live; never its state folder), by path relative to it (`a.gguf`,
    /// `Big-Q4_K_M/Big-Q4_K_M-00001-of-00002.gguf`) with their sizes, sorted. Symbolic links
    /// are not followed.
    pub fn gguf_files(&self) -> Vec<(String, u64)> {
        let mut files = Vec::new();
        let list = |dir: &Path, prefix: &str, files: &mut Vec<(String, u64)>, subdirs: &mut Vec<String>| {
            let Ok(read) = fs::read_dir(dir) else { return };
            for e in read.flatten() {
                let Ok(name) = e.file_name().into_string() else { continue };
                let Ok(meta) = e.path().symlink_metadata() else { continue };
                if meta.is_file() && name.to_ascii_lowercase().ends_with(".gguf") {
                    files.push((format!("{prefix}{name}"), meta.len()));
                } else if meta.is_dir() && !name.starts_with('.') {
                    subdirs.push(name);
                }
            }
        };
        let mut subdirs = Vec::new();
        list(&self.root, "", &mut files, &mut subdirs);
        for sub in subdirs {
            list(&self.root.join(&sub), &format!("{sub}/"), &mut files, &mut Vec::new());
        }
        files.sort();
        files
    }

    /// The list of pinned model files (one file name a line).
    pub fn pins_path(&self) -> PathBuf {
        self.state_dir().join("pinned")
    }

    /// The pinned file names.
    pub fn pinned(&self) -> Vec<String> {
        fs::read_to_string(self.pins_path())
            .map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Whether the entry is pinned (prune never removes it).
    pub fn is_pinned(&self, entry: &ModelEntry) -> bool {
        let key = pin_key(entry);
        self.pinned().contains(&key)
    }

    /// Pins or unpins the entry (the list is rewritten atomically, under a lock, so that two
    /// processes pinning at once both count). Returns whether that changed anything (`false`:
    /// it was already so).
    pub fn set_pinned(&self, entry: &ModelEntry, pinned: bool) -> Result<bool> {
        if self.is_pinned(entry) == pinned {
            return Ok(false);
        }
        self.create()?;
        let _lock = crate::fs::lock::Lock::new(&self.state_dir().join("pinned.lock")).acquire_blocking()?;
        if self.is_pinned(entry) == pinned {
            return Ok(false);
        }
        let mut pins = self.pinned();
        let key = pin_key(entry);
        pins.retain(|f| *f != key);
        if pinned {
            pins.push(key);
        }
        let mut text = pins.join("\n");
        text.push('\n');
        crate::fs::write_atomic(&self.pins_path(), text.as_bytes())?;
        Ok(true)
    }
}

/// What the list of pins holds for `entry`: its file name, or the path of a multi-file
/// model's first file in the models directory (`Big-Q4_K_M/Big-Q4_K_M-00001-of-00002.gguf`).
fn pin_key(entry: &ModelEntry) -> String {
    if entry.is_multi_file() {
        entry.local_file()
    } else {
        entry.hf_filename.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::error::RegistryError;

    #[test]
    fn status_follows_what_is_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path().join("models"));
        let catalog = Catalog::builtin();
        let mut entry = catalog.resolve("minilm").unwrap().clone();
        entry.size_bytes = 100;
        let files = dir.files(&entry);
        assert_eq!(files.status(), Status::NotDownloaded);
        assert!(!dir.root().exists(), "status creates nothing");

        dir.create().unwrap();
        fs::write(files.partial_path(), [0u8; 37]).unwrap();
        assert_eq!(files.status(), Status::Partial { bytes: 37 });
        assert_eq!(files.status().label(entry.size_bytes), "partial 37%");

        fs::write(files.model_path(), [0u8; 99]).unwrap();
        assert_eq!(files.status(), Status::Invalid { bytes: 99 });
        fs::write(files.model_path(), [0u8; 100]).unwrap();
        assert_eq!(files.status(), Status::Downloaded);

        assert!(files.remove().unwrap());
        assert!(!files.model_path().exists() && !files.partial_path().exists());
        assert!(!files.remove().unwrap());
    }

    #[test]
    fn remove_refuses_while_another_holder_has_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        dir.create().unwrap();
        let files = dir.files(Catalog::builtin().resolve("minilm").unwrap());
        fs::write(files.partial_path(), b"GGUF").unwrap();
        let holder = fs::File::create(files.lock_path()).unwrap();
        holder.lock().unwrap();
        fs::write(files.lock_path(), "pid=4242 host=node7\n").unwrap();
        let err = files.remove().unwrap_err();
        assert!(matches!(&err, RegistryError::Busy { what: "remove", .. }), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Busy);
        let text = err.report().to_string();
        assert!(text.contains("pid 4242 on node7, downloading it") && text.contains("try again"), "{text}");
        assert!(files.partial_path().exists(), "nothing was deleted");
        assert!(files.is_locked());
        drop(holder);
        assert!(files.remove().unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn directories_follow_the_umask_and_symlinks_do_not_count() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path().join("a/b"));
        dir.create().unwrap();
        let mode = fs::metadata(dir.root()).unwrap().permissions().mode() & 0o777;
        fs::create_dir(tmp.path().join("plain")).unwrap(); // 0777 less the umask
        let plain = fs::metadata(tmp.path().join("plain")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, plain, "the umask decides: {mode:o}");
        assert_eq!(mode & 0o700, 0o700, "owner rwx: {mode:o}");
        let entry = Catalog::builtin().resolve("minilm").unwrap().clone();
        let target = tmp.path().join("elsewhere.gguf");
        fs::write(&target, vec![0u8; entry.size_bytes as usize]).unwrap();
        std::os::unix::fs::symlink(&target, dir.model_path(&entry)).unwrap();
        assert!(matches!(dir.files(&entry).status(), Status::Invalid { .. }));
    }
}
