//! [`UntrackedFile`]: a `.gguf` file in the models directory that no catalog entry names.

use std::path::PathBuf;

use serde::Serialize;

use super::Registry;

/// A `.gguf` file in the models directory that no catalog entry names (copied in by hand,
/// or left by `unregister`). `list` shows it and `prune` counts it, never deletes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UntrackedFile {
    /// Its path relative to the models directory (`a.gguf`; `Big-Q4_K_M/…` in a folder, as a
    /// multi-file model left by `unregister`).
    pub file: String,
    /// Its path.
    #[serde(serialize_with = "crate::json_path::serialize")]
    pub path: PathBuf,
    /// Its size.
    pub size_bytes: u64,
}

impl Registry {
    /// The `.gguf` files in the models directory (and its folders one level down) that no
    /// catalog entry names, by path relative to it.
    pub fn untracked_files(&self) -> Vec<UntrackedFile> {
        let dir = self.models_dir();
        let tracked: std::collections::HashSet<String> =
            self.catalog().entries().iter().flat_map(|e| e.file_entries()).map(|e| e.local_file()).collect();
        dir.gguf_files()
            .into_iter()
            .filter(|(file, _)| !tracked.contains(file))
            .map(|(file, size_bytes)| UntrackedFile { path: dir.root().join(&file), file, size_bytes })
            .collect()
    }
}
