//! [`ErrorKind`], the class of every error, and [`BoxError`], a kept cause: below both error
//! types.

/// A boxed cause, kept typed for callers that want to inspect it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The broad class of an error: what a caller (or the command line's exit code) needs to
/// decide what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The name (or quantization) is not in the catalog.
    UnknownModel,
    /// The model is not on disk (and nothing was asked to fetch it), or a source lacks it.
    NotDownloaded,
    /// A network transfer failed.
    Network,
    /// Bytes failed verification (hash, size or format).
    Integrity,
    /// Local storage failed.
    Storage,
    /// Configuration or a custom catalog is invalid.
    Config,
    /// The model's architecture is not supported by the engine.
    Unsupported,
    /// Another process holds the model (a download in progress) and waiting ran out.
    Busy,
    /// The caller stopped the operation (a dropped async call, a cancel flag).
    Cancelled,
}
