//! The [`ModelSource`] trait and its contract: what every kind of source does, and what it
//! leaves to the resolver.

use std::fmt;
use std::io::Read;

use crate::catalog::ModelEntry;
use crate::error::SourceError;

/// What to fetch: the bytes of a file from `offset`, up to `end` (exclusive) when set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchRequest {
    /// The first byte wanted.
    pub offset: u64,
    /// One past the last byte wanted; `None` for the rest of the file.
    pub end: Option<u64>,
    /// A validator from an earlier response (an `ETag`): when the file changed since, the
    /// source may serve the whole file from byte 0 instead of the range (HTTP `If-Range`).
    pub if_range: Option<String>,
}

/// An open stream of a file's bytes.
pub struct Fetch {
    /// The bytes, starting at [`Fetch::start`].
    pub body: Box<dyn Read + Send>,
    /// The offset of the body's first byte: the requested offset, or 0 when the source
    /// ignored the range and serves the whole file.
    pub start: u64,
    /// The total size of the file as the source reports it, when it does.
    pub total: Option<u64>,
    /// A validator for resuming later (`If-Range`), when the source gives one.
    pub validator: Option<String>,
    /// Where the bytes come from, for messages (never with credentials).
    pub location: String,
}

impl fmt::Debug for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetch")
            .field("start", &self.start)
            .field("total", &self.total)
            .field("validator", &self.validator)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A place that serves the bytes of catalog files.
///
/// # Contract
/// - [`ModelSource::fetch`] returns [`SourceError::NotFound`] when the source does not have
///   the file, and never blocks forever (network sources have timeouts).
/// - The body starts at [`Fetch::start`], which is the requested offset or 0.
/// - A source does not verify: the resolver checks the size, the GGUF magic and the SHA-256
///   of every byte it receives.
/// - `Display` names the source (`mirror directory /srv/models`, `Hugging Face
///   https://huggingface.co`) without credentials.
pub trait ModelSource: Send + Sync + fmt::Debug + fmt::Display {
    /// Opens the bytes of `entry`'s file as `request` asks.
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError>;

    /// Whether using this source makes network connections (offline mode skips those).
    fn is_network(&self) -> bool;

    /// Whether the source can have `entry`'s file at all: the Hub has no file of a model
    /// adopted from an OCI registry, so the resolver does not ask it. Default: yes.
    fn serves(&self, entry: &ModelEntry) -> bool {
        let _ = entry;
        true
    }

    /// The source as its own type, for what only one kind of source can do (the Hub's Xet
    /// delta, `sources::hub`). Default: `None`.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// Whether the source answers at all (for `strata-model sources`): a short description
    /// when it does, why not when it does not.
    fn check(&self) -> Result<String, String> {
        Ok("not checked".into())
    }
}
