//! [`UploadState`]: a chunked upload of a model's file to an OCI registry that is in progress,
//! kept beside the model (`.strata/<file>.upload`, JSON, mode 0600) so that the next
//! `mirror push` of the same blob to the same repository resumes it instead of starting again.
//! Its `location` is the registry's upload URL, whose query is the registry's own upload state:
//! a secret-ish URL that is never shown (errors and logs redact it).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ModelFiles;
use crate::error::Result;

/// Where a chunked upload stands: the registry (`host[:port]`), the repository, the blob's
/// digest (`sha256:<hex>`), the upload URL the registry gave last and how many bytes it said
/// it held then.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    /// `host[:port]`.
    pub registry: String,
    /// The repository.
    pub repository: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The upload URL (its `Location`), query included.
    pub location: String,
    /// The bytes the registry said it held.
    pub offset: u64,
}

impl fmt::Debug for UploadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadState")
            .field("registry", &self.registry)
            .field("repository", &self.repository)
            .field("digest", &self.digest)
            .field("location", &"(redacted)")
            .field("offset", &self.offset)
            .finish()
    }
}

impl ModelFiles {
    /// The upload of this file in progress, if one was saved and can be read (a file that
    /// cannot be read is no upload: the push starts a new one and replaces it).
    pub fn upload_state(&self) -> Option<UploadState> {
        // A regular file of a few hundred bytes: never a FIFO, a device or a link to one.
        let path = self.upload_path();
        std::fs::symlink_metadata(&path).ok().filter(|m| m.is_file() && m.len() <= 64 * 1024)?;
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(&path).ok()?, 64 * 1024),
            &mut text,
        )
        .ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Saves where an upload of this file stands (atomically, readable by its owner only).
    pub(crate) fn save_upload_state(&self, state: &UploadState) -> Result<()> {
        self.create_dirs()?;
        let path = self.upload_path();
        let bytes = serde_json::to_vec(state).unwrap_or_default();
        let mut file = crate::fs::AtomicFile::create_with_mode(&path, 0o600)?;
        std::io::Write::write_all(file.file(), &bytes)
            .map_err(|e| crate::error::RegistryError::storage("write", &path, e))?;
        file.commit()
    }

    /// Forgets the upload in progress (complete, or unknown to the registry). Best effort.
    pub(crate) fn remove_upload_state(&self) {
        let _ = std::fs::remove_file(self.upload_path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_upload_url() {
        let state = UploadState {
            registry: "reg.example:5000".into(),
            repository: "team/models".into(),
            digest: "sha256:ab".into(),
            location: "https://reg.example:5000/v2/team/models/blobs/uploads/u?_state=SECRET".into(),
            offset: 7,
        };
        let shown = format!("{state:?}");
        assert!(!shown.contains("SECRET") && shown.contains("offset: 7"), "{shown}");
    }
}
