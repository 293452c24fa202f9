//! This process's own partial download and the shared one: moving a partial (data and side
//! files) between their names, and handing one back for any process to resume.

use std::fs;

use crate::store::ModelFiles;

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
