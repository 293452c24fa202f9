//! [`UntrackedFile`]: a `.gguf` file in the models directory that no catalog entry names.

use std::path::PathBuf;

use serde::Serialize;

use super::Registry;

/// A `.gguf` file in the models directory that no catalog entry names (copied in by hand,
/// or left by `unregister`). `list` shows it and `prune` counts it, never deletes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UntrackedFile {
    /// Its file name.
    pub file: String,
    /// Its path.
    #[serde(serialize_with = "crate::json_path::serialize")]
    pub path: PathBuf,
    /// Its size.
    pub size_bytes: u64,
}

impl Registry {
    /// The `.gguf` files in the models directory that no catalog entry names, by file name.
    pub fn untracked_files(&self) -> Vec<UntrackedFile> {
        let dir = self.models_dir();
        let catalog = self.catalog();
        dir.gguf_files()
            .into_iter()
            .filter(|(file, _)| !catalog.entries().iter().any(|e| *e.hf_filename == **file))
            .map(|(file, size_bytes)| UntrackedFile { path: dir.root().join(&file), file, size_bytes })
            .collect()
    }
}
