//! The verified old version of a file a delta starts from ([`Base`], `delta.rs`), and what a
//! delta asks the Hub before it needs it ([`prepare`]: asked ahead, at the same time as other
//! requests, it costs no round trip of its own).

use crate::catalog::ModelEntry;
use crate::error::{Report, SourceError};
use crate::sources::xet::client::XetToken;
use crate::sources::HttpSource;
use crate::store::{ModelFiles, Provenance};

use std::path::PathBuf;

/// The verified old version of a file, to rebuild its new version from.
pub(crate) struct Base<'a> {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// The SHA-256 it was verified to have (checked again as it is read).
    pub(crate) sha256: String,
    /// Its size.
    pub(crate) size: u64,
    /// Its Xet file id, or how to learn it.
    pub(crate) id: OldId<'a>,
}

/// How a delta learns the old file's Xet id.
pub(crate) enum OldId<'a> {
    /// Recorded when it was downloaded (its provenance).
    Known(String),
    /// Its resolution asked ahead, with a token ([`prepare`]): under this file name.
    Prepared(&'a Prepared, &'a str),
    /// To be resolved now: the old pin's entry for it (with a token, at once).
    Resolve(&'a ModelEntry),
}

impl<'a> Base<'a> {
    /// The verified file of `entry` (an earlier pin) in `files`.
    pub(crate) fn of(entry: &ModelEntry, files: &ModelFiles, id: OldId<'a>) -> Self {
        Self { path: files.model_path(), sha256: entry.sha256.to_string(), size: entry.size_bytes, id }
    }

    /// The file at `files`' model path when it is an earlier version of `entry`'s: verified
    /// (its stamp still describes it) with another SHA-256 than the pin's, downloaded from the
    /// Hub with its Xet id recorded. A catalog whose pin moved (a new release's built-in row,
    /// an edited custom entry) finds it there.
    pub(crate) fn earlier(entry: &ModelEntry, files: &ModelFiles) -> Option<Self> {
        let sha256 = files.verified_as().filter(|s| *s != *entry.sha256)?;
        let Some(Provenance::Source { xet_hash: Some(id), .. }) = files.provenance() else { return None };
        let size = std::fs::metadata(files.model_path()).ok()?.len();
        Some(Self { path: files.model_path(), sha256, size, id: OldId::Known(id) })
    }
}

/// What a delta asks the Hub before the reconstructions, asked ahead at the same time as
/// other requests (`update` asks it while it reads the new header): a read token for the new
/// revision, and the old files' Xet ids (from their resolution).
pub(crate) struct Prepared {
    pub(super) token: Result<XetToken, String>,
    old_ids: Vec<(String, Result<Option<String>, String>)>,
}

impl Prepared {
    /// The Xet id asked for the old file `name` (`None`: not in Xet).
    pub(super) fn old_id(&self, name: &str) -> Result<Option<String>, String> {
        self.old_ids
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| Err(format!("the Xet id of {name} was not asked")))
    }
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
