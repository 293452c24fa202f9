//! Partial downloads: moving one (data and side files) between this process's own name and
//! the shared one, handing one back for any process to resume, installing a verified one, and
//! refusing early when a file cannot fit.

use std::fs;

use std::path::Path;

use crate::catalog::ModelEntry;
use crate::error::{RegistryError, Result};
use crate::size::ByteSize;
use crate::store::{ModelFiles, ModelsDir, Provenance};

/// Renames the partial download `from` (data and side files) to `to`'s names: the side files
/// first, the data last, so that a partial found under its new name has them.
pub(super) fn move_partial(from: &ModelFiles, to: &ModelFiles) {
    for (a, b) in [(from.ranges_path(), to.ranges_path()), (from.validator_path(), to.validator_path())] {
        if fs::rename(&a, &b).is_err() {
            let _ = fs::remove_file(&b);
        }
    }
    let _ = fs::rename(from.partial_path(), to.partial_path());
}

/// Where this process's own partial was kept (it stopped without the file), puts it back
/// under the shared name for any process to resume, unless another is there already.
pub(super) fn hand_back(work: &ModelFiles, files: &ModelFiles) {
    if fs::symlink_metadata(work.partial_path()).is_ok()
        && fs::symlink_metadata(files.partial_path()).is_err()
    {
        move_partial(work, files);
    }
}

/// Installs the verified, synced partial download `partial` as `files`' model file: one
/// rename, the directory synced, the partial's side files gone, the stamp and `provenance`
/// written.
pub(super) fn install(
    dir: &ModelsDir,
    files: &ModelFiles,
    partial: &Path,
    provenance: &Provenance,
) -> Result<()> {
    let path = files.model_path();
    fs::rename(partial, &path).map_err(|e| RegistryError::storage("rename into place", &path, e))?;
    let _ = fs::File::open(dir.root()).and_then(|d| d.sync_all());
    files.discard_partial();
    // The provenance first: a stamp never stands beside another file's provenance.
    files.record_provenance(provenance);
    files.write_stamp()?;
    Ok(())
}

/// Refuses early, before any transfer, when the file cannot fit.
pub(super) fn check_space(dir: &ModelsDir, entry: &ModelEntry, files: &ModelFiles) -> Result<()> {
    let have = files.partial_bytes().unwrap_or(0).min(entry.size_bytes);
    let need = entry.size_bytes - have;
    match crate::fs::available_space(dir.root()) {
        Some(free) if free < need => Err(RegistryError::storage(
            "download into",
            dir.root(),
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "not enough space for {}: it needs {need} more bytes ({}), {free} bytes ({}) are free",
                    entry.hf_filename,
                    ByteSize(need),
                    ByteSize(free),
                ),
            ),
        )),
        _ => Ok(()),
    }
}
