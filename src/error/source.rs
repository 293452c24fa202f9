//! [`SourceError`]: why one source did not serve a file, classified where it is made.

use std::time::Duration;

use super::kind::{BoxError, ErrorKind};
use super::report::Report;

/// Why a source did not serve a file. The resolver decides from the variant whether to retry
/// the same source, try the next one quietly, or record the failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source does not have the file: the next source is tried, quietly.
    #[error("{}", .detail.as_deref().unwrap_or("not found"))]
    NotFound {
        /// What the source said, when it said more than "not found" (the Hub's
        /// `X-Error-Code`: no such repository, revision or file).
        detail: Option<String>,
    },

    /// A failure worth retrying from the same source (connection reset, timeout, 408, 429,
    /// 5xx), after `retry_after` when the source said so.
    #[error("{reason}")]
    Transient {
        /// Where and what, without the cause (`https://cdn.example/f.gguf: HTTP 503`).
        reason: String,
        /// How long the source asked to wait.
        retry_after: Option<Duration>,
        /// The underlying error (an I/O or TLS error), when there is one.
        #[source]
        cause: Option<BoxError>,
    },

    /// The server asks to wait before the next request (HTTP 429 with `RateLimit` or
    /// `Retry-After`): not a failure of the source; the transfer waits, up to the retry
    /// policy's `rate_limit_wait`.
    #[error("{reason}")]
    RateLimited {
        /// Where and what.
        reason: String,
        /// How long the server asked to wait.
        wait: Duration,
    },

    /// Transient failures in a row, with no progress, until the retry policy gave up.
    #[error("{} (gave up after {tries} tries in a row)", Report::new(&**.last))]
    GaveUp {
        /// How many tries were made.
        tries: u32,
        /// The last failure.
        last: Box<SourceError>,
    },

    /// The source reports (or holds) a file of another size than the catalog's.
    #[error("{location} has {actual} bytes, the catalog says {expected}")]
    WrongSize {
        /// Where, without credentials.
        location: String,
        /// The size the source reports.
        actual: u64,
        /// The catalog's size.
        expected: u64,
    },

    /// The source reports another SHA-256 than the catalog's (the Hub's `X-Linked-Etag`),
    /// before any byte is fetched.
    #[error("{location} reports sha256 {actual}, the catalog pins {expected}")]
    WrongSha256 {
        /// Where, without credentials.
        location: String,
        /// The SHA-256 the source reports.
        actual: String,
        /// The catalog's SHA-256.
        expected: String,
    },

    /// An answer that cannot be right for the request (a `Content-Range` other than the one
    /// asked for, a contradicting `Content-Length`): not retried; the next source is tried.
    #[error("{location}: protocol error: {reason}")]
    Protocol {
        /// Where, without credentials.
        location: String,
        /// What was asked and what came back.
        reason: String,
    },

    /// The first bytes are not the GGUF magic (an HTML error page, a login form).
    #[error("{location} did not send a GGUF file (it starts with {head:?}; an error page?)")]
    NotGguf {
        /// Where, without credentials.
        location: String,
        /// The first bytes, as text.
        head: String,
    },

    /// Every byte arrived but the SHA-256 is not the catalog's; the bytes were discarded.
    #[error(
        "checksum mismatch, the bytes were discarded:\n      expected sha256 {expected}\n      actual   sha256 {actual}"
    )]
    ChecksumMismatch {
        /// The catalog's SHA-256.
        expected: String,
        /// The SHA-256 of the bytes received.
        actual: String,
    },

    /// The source refused access: an HTTP 401 or 403 that no new URL fixes (a gated or private
    /// repository, a token or credentials without access, a mirror or bucket that refuses
    /// us). Not retried; the next source is tried.
    #[error("{reason}")]
    Denied {
        /// What was refused and what to do about it (accept a license, set a token, log in).
        reason: String,
    },

    /// A failure that retrying will not fix (a refused redirect, a bad certificate): the
    /// next source is tried.
    #[error("{reason}")]
    Failed {
        /// The class of failure.
        kind: ErrorKind,
        /// What happened and what to do about it, without the cause.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        cause: Option<BoxError>,
    },
}

impl SourceError {
    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotDownloaded,
            Self::Transient { .. } | Self::RateLimited { .. } | Self::GaveUp { .. } => ErrorKind::Network,
            Self::Protocol { .. } | Self::Denied { .. } => ErrorKind::Network,
            Self::WrongSize { .. }
            | Self::WrongSha256 { .. }
            | Self::NotGguf { .. }
            | Self::ChecksumMismatch { .. } => ErrorKind::Integrity,
            Self::Failed { kind, .. } => *kind,
        }
    }

    /// The source does not have the file.
    pub fn not_found() -> Self {
        Self::NotFound { detail: None }
    }

    /// Whether the source does not have the file.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// A failure that retrying will not fix.
    pub fn failed(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Self::Failed { kind, reason: reason.into(), cause: None }
    }

    /// A failure that retrying will not fix, with its cause.
    pub fn failed_by(kind: ErrorKind, reason: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Failed { kind, reason: reason.into(), cause: Some(cause.into()) }
    }

    /// Access refused (see [`SourceError::Denied`]).
    pub fn denied(reason: impl Into<String>) -> Self {
        Self::Denied { reason: reason.into() }
    }

    /// A transient failure.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient { reason: reason.into(), retry_after: None, cause: None }
    }

    /// A transient failure with its cause.
    pub fn transient_by(reason: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Transient { reason: reason.into(), retry_after: None, cause: Some(cause.into()) }
    }

    /// Whether retrying the same source may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}
