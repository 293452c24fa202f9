//! A new version of a model's file, fetched and verified beside the old one before it
//! replaces it (`update`): the old verified file keeps serving until the new one is verified,
//! then is replaced with one rename. Staged files live under `.strata/update/` (the file, its
//! partial download, its lock and stamp), apart from the model's own names, so that a
//! download of the old pin and the staged one never share a partial. An earlier pin's
//! verified file still in place is told by its stamp (`verified_as`), for a delta.

use std::fs;

use super::files::ModelFiles;
use crate::error::{RegistryError, Result};

#[cfg(feature = "registry")]
impl ModelFiles {
    /// Puts the verified file `staged` (this file's staged names) in place of this one with one
    /// rename, and stamps it: the model path never holds anything but a verified file. The
    /// staged side files go.
    pub(crate) fn install_staged(&self, staged: &ModelFiles) -> Result<()> {
        let (from, to) = (staged.model_path(), self.model_path());
        self.create_dirs()?;
        fs::rename(&from, &to).map_err(|e| RegistryError::storage("rename into place", &to, e))?;
        // The provenance before the stamp: a stamp never stands beside another file's.
        match staged.provenance() {
            Some(p) => self.record_provenance(&p),
            None => self.forget_provenance(),
        }
        self.write_stamp()?;
        for side in [staged.stamp_path(), staged.provenance_path(), staged.used_path()] {
            let _ = fs::remove_file(side);
        }
        Ok(())
    }

    /// The SHA-256 the file at the model path was verified to have, whatever the pin is now,
    /// when it is still as its stamp describes it (an earlier pin's verified file, for a
    /// delta); `None` without a stamp or when the file changed since.
    pub(crate) fn verified_as(&self) -> Option<String> {
        let meta = fs::symlink_metadata(self.model_path()).ok().filter(fs::Metadata::is_file)?;
        let stamp = super::stamp::Stamp::parse(&fs::read_to_string(self.stamp_path()).ok()?)?;
        (stamp == super::stamp::Stamp::of(&meta, stamp.sha256())).then(|| stamp.sha256().to_string())
    }

    /// [`ModelFiles::verified_as`], and when the stamp went stale (the directory copied or
    /// restored) but names a SHA-256 other than `pin`'s: the file hashed against it and, when
    /// it still is that version, stamped anew as it. `stop` ends the hashing (then `None`).
    pub(crate) fn earlier_version(&self, pin: &str, stop: &dyn Fn() -> bool) -> Option<String> {
        if let Some(sha) = self.verified_as() {
            return Some(sha);
        }
        let path = self.model_path();
        let stamp = super::stamp::Stamp::parse(&fs::read_to_string(self.stamp_path()).ok()?)?;
        let sha = stamp.sha256().to_string();
        if sha == pin || crate::digest::hash_file_until(&path, stop).ok()?? != sha {
            return None;
        }
        let meta = fs::symlink_metadata(&path).ok().filter(fs::Metadata::is_file)?;
        let line = super::stamp::Stamp::of(&meta, &sha).to_line();
        crate::fs::write_atomic(&self.stamp_path(), line.as_bytes()).ok()?;
        Some(sha)
    }

    /// The Xet file id recorded beside the file when it was downloaded from the Hub (its
    /// provenance), if one was.
    pub(crate) fn recorded_xet_id(&self) -> Option<String> {
        match self.provenance()? {
            super::Provenance::Source { xet_hash, .. } => xet_hash,
            super::Provenance::Reused { .. } => None,
        }
    }

    /// Deletes the recorded provenance (it described another file than the one now there).
    pub(crate) fn forget_provenance(&self) {
        let _ = fs::remove_file(self.provenance_path());
    }
}
