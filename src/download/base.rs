//! The verified old version of a file a delta starts from ([`Base`], `delta.rs`), and what a
//! delta asks the Hub before it needs it ([`prepare`]: asked ahead, at the same time as other
//! requests, it costs no round trip of its own).

use crate::catalog::ModelEntry;
use crate::error::{Report, SourceError};
use crate::sources::xet::client::XetToken;
use crate::sources::HttpSource;
use crate::store::ModelFiles;

/// The verified old version of a file, to rebuild its new version from.
#[derive(Clone, Copy)]
pub(crate) struct Base<'a> {
    /// The old pin's entry for the file.
    pub(crate) entry: &'a ModelEntry,
    /// The old file's names (its model path holds the verified old bytes).
    pub(crate) files: &'a ModelFiles,
    /// What was asked ahead ([`prepare`]), if it was.
    pub(crate) prepared: Option<&'a Prepared>,
}

/// What a delta asks the Hub before the reconstructions, asked ahead at the same time as
/// other requests (`update` asks it while it reads the new header): a read token for the new
/// revision, and the old files' Xet ids (from their resolution).
pub(crate) struct Prepared {
    pub(super) token: Result<XetToken, String>,
    pub(super) old_ids: Vec<(String, Result<Option<String>, String>)>,
}

/// Asks, at once, a read token for `new`'s revision and the Xet id of each of `old`'s files.
pub(crate) fn prepare(hub: &HttpSource, new: &ModelEntry, old: &[ModelEntry]) -> Prepared {
    let said = |what: &str, e: SourceError| format!("{what}: {}", Report::new(&e));
    std::thread::scope(|s| {
        let ids: Vec<_> = old
            .iter()
            .map(|e| (e.hf_filename.to_string(), s.spawn(move || hub.inspect(e).map(|l| l.xet_hash))))
            .collect();
        let token = hub
            .xet_read_token(&new.hf_repo, &new.revision)
            .map_err(|e| said("asking for a Xet read token", e));
        let old_ids = ids
            .into_iter()
            .map(|(name, h)| {
                let id = match h.join() {
                    Ok(r) => r.map_err(|e| said("resolving the old file", e)),
                    Err(_) => Err("a thread of the delta panicked".into()),
                };
                (name, id)
            })
            .collect();
        Prepared { token, old_ids }
    })
}
