//! [`ModelUnit`]: every file of one model, downloaded and removed as one. A single-file
//! model is a unit of one; a multi-file model's files (split weights, sidecars) live side by
//! side in a folder of the models directory named after its weights, their side files in the
//! same folder under `.strata/`.

use std::path::PathBuf;

use super::files::{ModelFiles, Status};
use crate::catalog::ModelEntry;
use crate::error::Result;

/// Every file of one model: one [`ModelFiles`] per file, in the catalog's order (the weights'
/// first shard first).
#[derive(Clone, Debug)]
pub struct ModelUnit {
    parts: Vec<(ModelEntry, ModelFiles)>,
    size: u64,
}

impl ModelUnit {
    pub(super) fn new(parts: Vec<(ModelEntry, ModelFiles)>) -> Self {
        let size = parts.iter().map(|(e, _)| e.size_bytes).fold(0, u64::saturating_add);
        Self { parts, size }
    }

    /// Each file: the entry that describes it (see [`ModelEntry::file_entries`]) and its
    /// files in the models directory.
    pub fn parts(&self) -> &[(ModelEntry, ModelFiles)] {
        &self.parts
    }

    /// The first file's: the file an engine opens.
    pub fn first(&self) -> &ModelFiles {
        &self.parts[0].1
    }

    /// The path of the file an engine opens (the weights, their first shard).
    pub fn model_path(&self) -> PathBuf {
        self.first().model_path()
    }

    /// The bytes of every file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// What is on disk for the model as a whole: downloaded when every file is; invalid when
    /// one is; else partial, counting every byte on disk (verified files and partial
    /// downloads) against the model's total size; else not downloaded.
    pub fn status(&self) -> Status {
        self.status_of(&self.statuses())
    }

    /// What is on disk for each file, in order.
    pub fn statuses(&self) -> Vec<Status> {
        self.parts.iter().map(|(_, files)| files.status()).collect()
    }

    /// [`ModelUnit::status`] from each file's (as [`ModelUnit::statuses`] gives them).
    pub fn status_of(&self, statuses: &[Status]) -> Status {
        if let [one] = statuses {
            return *one;
        }
        let mut bytes = 0;
        let mut downloaded = 0;
        for ((entry, _), status) in self.parts.iter().zip(statuses) {
            match *status {
                Status::Downloaded => {
                    bytes = u64::saturating_add(bytes, entry.size_bytes);
                    downloaded += 1;
                }
                Status::Partial { bytes: b } => bytes = u64::saturating_add(bytes, b),
                invalid @ Status::Invalid { .. } => return invalid,
                Status::NotDownloaded => {}
            }
        }
        if downloaded == self.parts.len() {
            Status::Downloaded
        } else if bytes > 0 {
            Status::Partial { bytes }
        } else {
            Status::NotDownloaded
        }
    }

    /// The first file that is not downloaded (with the catalog size), if one is not.
    pub fn missing(&self) -> Option<&(ModelEntry, ModelFiles)> {
        self.parts.iter().find(|(_, f)| f.status() != Status::Downloaded)
    }

    /// Whether every file is present and unchanged since it was verified (a `stat` and a
    /// stamp read each; no hashing).
    #[cfg(feature = "registry")]
    pub fn is_verified(&self) -> bool {
        self.parts.iter().all(|(_, f)| f.is_verified())
    }

    /// Deletes every file of the model, their partial downloads and side files (all but the
    /// locks), or nothing: it refuses while another process holds any of them, and, changing
    /// nothing, when one of them could not be deleted. Returns whether a model file or a
    /// partial download was deleted.
    pub fn remove(&self) -> Result<bool> {
        let _held = self.hold_for_removal()?;
        self.remove_held()
    }

    /// Takes every file's lock for a removal (see [`ModelFiles::hold_for_removal`]); refuses
    /// while another process holds one. Held until the returned guards drop.
    pub(crate) fn hold_for_removal(&self) -> Result<Vec<Option<crate::fs::lock::Guard>>> {
        self.parts.iter().map(|(_, files)| files.hold_for_removal()).collect()
    }

    /// Every file's lock for an update, made when it does not exist yet.
    #[cfg(feature = "registry")]
    pub(crate) fn hold_for_update(&self) -> Result<Vec<Option<crate::fs::lock::Guard>>> {
        self.parts.iter().map(|(_, files)| files.hold("update", true)).collect()
    }

    /// [`ModelUnit::remove`] with every file's lock already taken.
    pub(crate) fn remove_held(&self) -> Result<bool> {
        let mut plans = Vec::new();
        for (_, files) in &self.parts {
            plans.push(files.removal_plan()?);
        }
        let mut removed = false;
        for ((_, files), plan) in self.parts.iter().zip(&plans) {
            removed |= files.remove_planned(plan)?;
        }
        if self.first().relative_path().contains('/') {
            // The model's folder goes when empty (never the folder of its state: a waiter may
            // hold a lock file in it open).
            if let Some(dir) = self.model_path().parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        Ok(removed)
    }

    /// Records a use of every file (for `prune`).
    #[cfg(feature = "registry")]
    pub(crate) fn touch_used(&self) {
        for (_, files) in &self.parts {
            files.touch_used();
        }
    }
}
