//! Why a transfer stops without the file ([`Stop`]), and the flags a caller sets to ask a
//! download to stop ([`Cancel`]): a dropped async call, or a caller's own flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::catalog::ModelEntry;
use crate::error::{RegistryError, SourceError};
use crate::store::ModelFiles;

/// Why a transfer (or one source's turn in the resolver) stopped without the file.
pub(crate) enum Stop {
    /// The source did not serve it.
    Source(SourceError),
    /// Local storage failed: no other source can help.
    Storage(RegistryError),
    /// The source ignored a range request while several connections were in use.
    RangesUnsupported,
    /// The caller asked the download to stop ([`Cancel`]): not a failure of the source. The
    /// partial download and its ranges file are kept, synced, for the next call to resume.
    Cancelled,
}

/// The flags that ask a download to stop: it stops when any one is set. Checked at every
/// buffer of the transfer, between sources, and while waiting for another process's lock.
#[derive(Clone, Copy, Default)]
pub(crate) struct Cancel<'a>(pub(crate) &'a [Arc<AtomicBool>]);

impl Cancel<'_> {
    /// Whether a stop was asked for.
    pub(crate) fn is_set(self) -> bool {
        self.0.iter().any(|f| f.load(Ordering::Relaxed))
    }
}

/// A source that answered with something other than a GGUF file (`head`: its first bytes).
pub(crate) fn not_gguf(location: &str, head: &[u8]) -> Stop {
    Stop::Source(SourceError::NotGguf {
        location: location.to_string(),
        head: String::from_utf8_lossy(head).into_owned(),
    })
}

/// The error of a download stopped by its caller, with what it kept on disk.
pub(super) fn cancelled(entry: &ModelEntry, work: &ModelFiles) -> RegistryError {
    let partial_kept = work.partial_bytes().filter(|&n| n > 0);
    crate::trace::record("outcome", "cancelled");
    crate::trace::emit!(
        INFO,
        kept = partial_kept.unwrap_or(0),
        "stopped, as the caller asked; the partial download is kept"
    );
    RegistryError::Cancelled { model: entry.file_label(), partial_kept }
}
