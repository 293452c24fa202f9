//! The crate's error types: [`RegistryError`] (what a caller of the registry sees),
//! [`SourceError`] (why one source did not serve a file), their class [`ErrorKind`], and
//! [`Report`], which renders an error with its causes.
//!
//! A message never repeats its cause: a variant with a cause returns it from
//! [`std::error::Error::source`] and leaves it out of its own `Display`. [`Report`] (or
//! [`RegistryError::report`]) renders the whole chain on one line, then a hint that says what
//! to do next; that is what the command line prints. Messages never contain a secret
//! (`HF_TOKEN`, cloud keys): URLs are shown without credentials or query.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

mod kind;
mod predicates;
mod report;
mod source;

pub use kind::{BoxError, ErrorKind};
pub use report::Report;
pub use source::SourceError;

/// Everything that can go wrong while turning a model name into a verified file.
///
/// A program decides what to do next from [`is_transient`](Self::is_transient) (retry later),
/// [`is_not_found`](Self::is_not_found) and [`is_offline`](Self::is_offline) (fall back to
/// another model), [`is_integrity`](Self::is_integrity) and
/// [`is_permission`](Self::is_permission) (fail, and say what to fix), with no string
/// matching; [`kind`](Self::kind) is the coarser class the command line's exit code follows.
/// The first three exclude one another and the last two; an error may answer none of them (a
/// configuration error, an architecture the engine cannot load, a download its caller
/// stopped, a storage error other than permissions): fail with its [`report`](Self::report).
///
/// ```
/// use std::time::Duration;
/// use strata_model::RegistryError;
///
/// enum Next {
///     RetryAfter(Duration),
///     FallBack,
///     Fail(String),
/// }
///
/// /// What a host does after its `tries`-th failed `ensure`.
/// fn decide(err: &RegistryError, tries: u32) -> Next {
///     if err.is_transient() && tries < 5 {
///         Next::RetryAfter(Duration::from_secs(1 << tries))
///     } else if err.is_not_found() || err.is_offline() {
///         Next::FallBack // to a model that is on disk, or that the engine also loads
///     } else if err.is_integrity() {
///         Next::Fail(format!("refusing a corrupt or tampered model: {}", err.report()))
///     } else {
///         Next::Fail(err.report().to_string()) // permissions, configuration, ...
///     }
/// }
///
/// let busy = RegistryError::Busy {
///     what: "download",
///     model: "minilm".into(),
///     holder: Some("pid 4242 on node7".into()),
///     waited: Some(Duration::from_secs(60)),
/// };
/// assert!(matches!(decide(&busy, 1), Next::RetryAfter(_)));
/// let unknown = RegistryError::UnknownModel { name: "minilm-xl".into(), suggestions: vec![] };
/// assert!(matches!(decide(&unknown, 1), Next::FallBack));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is not in the catalog (built-in or custom), nor an alias of an entry.
    #[error("unknown model `{name}`{}; run `strata-model list` to see every model", suggest(.suggestions))]
    UnknownModel {
        /// The name as given.
        name: String,
        /// The closest catalog names, best first (possibly empty).
        suggestions: Vec<String>,
    },

    /// The model exists but has no variant with this quantization.
    #[error("model `{model}` has no `{quant}` variant; available: {}", .available.join(", "))]
    UnknownQuant {
        /// The model's base name.
        model: String,
        /// The quantization asked for.
        quant: String,
        /// The names of the variants that do exist (`minilm`, `minilm:f16`).
        available: Vec<String>,
    },

    /// The model is in the catalog but its file is not in the models directory.
    #[error("model `{model}` is not downloaded (expected at {}); run `strata-model download {model}`", .path.display())]
    NotDownloaded {
        /// The model's name.
        model: String,
        /// Where the file would be.
        path: PathBuf,
    },

    /// Something is at the model's path, but not the model: the wrong size, or not a regular
    /// file. Every command calls it invalid; the next download replaces it.
    #[error(
        "model `{model}` is not downloaded: the file at {} is invalid ({found} bytes, the catalog says {expected}); run `strata-model download {model}` to replace it",
        .path.display()
    )]
    InvalidFile {
        /// The model's name.
        model: String,
        /// The file.
        path: PathBuf,
        /// Its size.
        found: u64,
        /// The catalog's size.
        expected: u64,
    },

    /// A transfer to or from a remote store failed (an upload of `mirror push`, a listing).
    #[error("transfer to or from {url} failed")]
    DownloadFailed {
        /// The remote location, without credentials.
        url: String,
        /// The underlying cause.
        #[source]
        source: BoxError,
    },

    /// The bytes of a local file do not have the SHA-256 pinned in the catalog.
    #[error(
        "checksum mismatch for {file}:\n  expected sha256 {expected}\n  actual   sha256 {actual}\n\
         the bytes were discarded; the source may be corrupt or tampered with"
    )]
    ChecksumMismatch {
        /// The file name.
        file: String,
        /// The SHA-256 pinned in the catalog.
        expected: String,
        /// The SHA-256 of the bytes read.
        actual: String,
    },

    /// Reading or writing the models directory (or another local file) failed.
    #[error("storage error: cannot {action} {}", .path.display())]
    StorageError {
        /// What was being done ("create directory", "write", "rename", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The inference engine cannot load this model's architecture; nothing was downloaded.
    #[error(
        "model `{model}` has architecture `{arch}`, which this engine cannot load; \
         choose a model with a supported architecture (see `strata-model list`)"
    )]
    UnsupportedArch {
        /// The model's name.
        model: String,
        /// Its GGUF `general.architecture`.
        arch: String,
    },

    /// A custom catalog file (or a model given to `register`) is malformed.
    #[error("invalid custom catalog {}{}{}: {reason}", .file.display(),
        .entry.as_ref().map(|e| format!(", entry {e}")).unwrap_or_default(),
        .field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default())]
    InvalidCatalog {
        /// The catalog file.
        file: PathBuf,
        /// The entry, e.g. `models[2] (my-model)`, when the problem is inside one.
        entry: Option<String>,
        /// The field, when the problem is one field.
        field: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
        /// The JSON syntax error, when the file is not JSON.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// `unregister` was asked to remove something that is not a custom model.
    #[error("`{name}` is not a custom model{}", if *.builtin { "; built-in models cannot be unregistered" } else { "; run `strata-model list` to see custom models" })]
    NotCustom {
        /// The name as given.
        name: String,
        /// Whether the name is a built-in model.
        builtin: bool,
    },

    /// A configuration value (environment variable or option) is invalid.
    #[error("invalid configuration: {variable}: {reason}")]
    InvalidConfig {
        /// The variable or option, e.g. `STRATA_MODELS_DIR`.
        variable: String,
        /// What is wrong and how to fix it.
        reason: String,
        /// The underlying cause, when there is one (a file that cannot be read).
        #[source]
        source: Option<BoxError>,
    },

    /// Every source was tried and none produced the verified file.
    #[error("could not get `{model}` ({file}) from any source:{}{}", attempts_list(.attempts),
        .partial_kept.map(|b| format!("\n{b} bytes of a partial download were kept; run the same command again to resume")).unwrap_or_default())]
    AllSourcesFailed {
        /// The model's name.
        model: String,
        /// The file name.
        file: String,
        /// Each source tried, in order, and why it did not serve the file.
        attempts: Vec<Attempt>,
        /// Bytes of a resumable partial download left on disk.
        partial_kept: Option<u64>,
    },

    /// Offline (`STRATA_OFFLINE`/`HF_HUB_OFFLINE`) and the model is neither in the models
    /// directory nor in a local mirror.
    #[error("`{model}` is not downloaded and network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE); \
        to install it by hand, fetch {url}\n  ({size} bytes, sha256 {sha256})\nand place it at {}, \
        or turn network access back on", .path.display())]
    Offline {
        /// The model's name.
        model: String,
        /// Where the file would be downloaded from.
        url: String,
        /// Its exact size.
        size: u64,
        /// Its SHA-256.
        sha256: String,
        /// Where to put it.
        path: PathBuf,
    },

    /// `verify` found a downloaded file whose bytes no longer have the catalog's SHA-256
    /// (corrupted on disk, or changed by hand). The file was deleted, unless `kept` says why
    /// it could not be.
    #[error(
        "{} is corrupt: its sha256 is {actual}, the catalog pins {expected}; {}",
        .path.display(),
        match .kept { Some(why) => format!("it could not be deleted ({why}): delete it, then run `strata-model download {model}`"), None => format!("it was deleted; run `strata-model download {model}` to fetch it again") }
    )]
    CorruptFile {
        /// The model.
        model: String,
        /// The file.
        path: PathBuf,
        /// The SHA-256 pinned in the catalog.
        expected: String,
        /// The SHA-256 of the bytes on disk.
        actual: String,
        /// Why the file is still there, when it could not be deleted.
        kept: Option<String>,
    },

    /// `add` could not make a catalog entry from a Hub reference: the repository, revision
    /// or file is not there, it is not one LFS GGUF file, or the Hub could not be asked.
    #[error("cannot add {reference}: {reason}")]
    CannotAdd {
        /// The reference as understood (`hf.co/owner/repo:Q8_0`).
        reference: String,
        /// What is wrong and what to do next.
        reason: String,
        /// The class of the failure.
        kind: ErrorKind,
        /// The Hub's answer, when the failure was one.
        #[source]
        source: Option<Box<SourceError>>,
    },

    /// `update` could not re-pin a model (the Hub's answer, the new file, a race); the old pin
    /// and files stay, unless `reason` says otherwise.
    #[error("cannot update `{model}`: {reason}")]
    CannotUpdate {
        /// The model.
        model: String,
        /// What is wrong and what to do next.
        reason: String,
        /// The class of the failure.
        kind: ErrorKind,
        /// The Hub's answer, when the failure was one.
        #[source]
        source: Option<Box<SourceError>>,
    },

    /// Another process holds the model (it is downloading it, or removing it) and the wait
    /// for it ran out ([`crate::Config::lock_timeout`]), or a removal was refused while it
    /// holds it.
    #[error("{what} `{model}`: another process holds it{}{}",
        .holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default(),
        .waited.map(waited_for).unwrap_or_default())]
    Busy {
        /// What could not be done (`download`, `remove`).
        what: &'static str,
        /// The model.
        model: String,
        /// Who holds it, as it recorded itself: `pid 4242 on node7`, when known.
        holder: Option<String>,
        /// How long this process waited, when it waited.
        waited: Option<Duration>,
    },

    /// A file is not a readable GGUF file.
    #[error("{} is not a valid GGUF file", .path.display())]
    InvalidGguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::gguf::GgufError,
    },

    /// The caller stopped the download: the future of an async call (feature `tokio`) was
    /// dropped, or a flag given to `Registry::with_cancel` was set. Nothing reached the model
    /// path; the bytes received are kept as a partial download, which the next call resumes.
    #[error("the download of `{model}` was stopped by its caller{}", .partial_kept
        .map(|b| format!("; {b} bytes of a partial download were kept: the next call resumes it"))
        .unwrap_or_default())]
    Cancelled {
        /// The model.
        model: String,
        /// Bytes of the resumable partial download left on disk.
        partial_kept: Option<u64>,
    },

    /// An async call (feature `tokio`) was polled outside a tokio runtime: it runs its work on
    /// the blocking pool of the runtime it is polled in, and never builds one of its own.
    #[error(
        "{call} needs a tokio runtime and was polled outside one: await it in a task of a runtime \
        (`#[tokio::main]`, `Runtime::block_on`), or call the blocking method on a thread of your own"
    )]
    NoRuntime {
        /// The method (`Registry::ensure_async`).
        call: &'static str,
    },
}

fn suggest(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        many => {
            let mut s = String::from(" (did you mean one of ");
            for (i, name) in many.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(s, "{sep}`{name}`");
            }
            s.push_str("?)");
            s
        }
    }
}

fn waited_for(waited: Duration) -> String {
    match waited.as_millis() {
        0 => "; did not wait (the lock timeout is 0)".into(),
        ms if ms < 1000 => format!("; gave up after waiting {ms} ms (the lock timeout)"),
        _ => format!("; gave up after waiting {} s (the lock timeout)", waited.as_secs()),
    }
}

fn attempts_list(attempts: &[Attempt]) -> String {
    let mut s = String::new();
    for a in attempts {
        let _ = write!(s, "\n  - {}: {}", a.source, Report::new(&a.error));
    }
    if attempts.is_empty() {
        s.push_str(" no source is configured");
    }
    s
}

/// One source's failure to serve a file, in [`RegistryError::AllSourcesFailed`].
#[derive(Debug)]
pub struct Attempt {
    /// The source, as it displays itself.
    pub source: String,
    /// Why it did not serve the file.
    pub error: SourceError,
}

impl Attempt {
    /// The class of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

impl RegistryError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownModel { .. } | Self::UnknownQuant { .. } | Self::NotCustom { .. } => {
                ErrorKind::UnknownModel
            }
            Self::NotDownloaded { .. } | Self::InvalidFile { .. } | Self::Offline { .. } => {
                ErrorKind::NotDownloaded
            }
            Self::AllSourcesFailed { attempts, .. } => {
                let failed = attempts.iter().map(Attempt::kind).filter(|k| *k != ErrorKind::NotDownloaded);
                if failed.clone().count() > 0 && failed.clone().all(|k| k == ErrorKind::Integrity) {
                    ErrorKind::Integrity
                } else if failed.clone().any(|k| k == ErrorKind::Storage) {
                    ErrorKind::Storage
                } else {
                    ErrorKind::Network
                }
            }
            Self::DownloadFailed { .. } => ErrorKind::Network,
            Self::ChecksumMismatch { .. } | Self::InvalidGguf { .. } | Self::CorruptFile { .. } => {
                ErrorKind::Integrity
            }
            Self::StorageError { .. } => ErrorKind::Storage,
            Self::InvalidCatalog { .. } | Self::InvalidConfig { .. } | Self::NoRuntime { .. } => {
                ErrorKind::Config
            }
            Self::UnsupportedArch { .. } => ErrorKind::Unsupported,
            Self::CannotAdd { kind, .. } | Self::CannotUpdate { kind, .. } => *kind,
            Self::Busy { .. } => ErrorKind::Busy,
            Self::Cancelled { .. } => ErrorKind::Cancelled,
        }
    }

    /// What to do next, when the message alone does not say it.
    pub fn hint(&self) -> Option<&'static str> {
        use std::io::ErrorKind as K;
        match self {
            Self::StorageError { source, .. } => match source.kind() {
                K::PermissionDenied | K::ReadOnlyFilesystem => Some(
                    "check the permissions (a directory shared by a group needs group write, `chmod g+w`, and \
                     its members umask 0002); for the models directory, you can also set STRATA_MODELS_DIR to a \
                     writable directory",
                ),
                K::StorageFull | K::QuotaExceeded => {
                    Some("free some space (for the models directory, you can also set STRATA_MODELS_DIR elsewhere)")
                }
                _ => None,
            },
            Self::Busy { waited: Some(_), .. } => {
                Some("try again when it has finished, or wait longer (--lock-timeout, STRATA_LOCK_TIMEOUT)")
            }
            Self::Busy { waited: None, .. } => Some("try again when it has finished"),
            Self::AllSourcesFailed { attempts, .. }
                if !attempts.is_empty() && attempts.iter().all(|a| a.error.is_not_found()) =>
            {
                Some(
                    "no source has the file: check the entry's repository, file and revision \
                     (`strata-model info NAME`, `strata-model catalog check NAME`) and what the mirrors hold",
                )
            }
            _ => None,
        }
    }

    /// The message with its causes and hint on one line, as the command line prints it.
    ///
    /// ```
    /// let err = strata_model::RegistryError::StorageError {
    ///     action: "write",
    ///     path: "/m/x.gguf".into(),
    ///     source: std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"),
    /// };
    /// assert_eq!(err.to_string(), "storage error: cannot write /m/x.gguf");
    /// assert_eq!(
    ///     err.report().to_string(),
    ///     "storage error: cannot write /m/x.gguf: disk full; free some space (for the models directory, \
    ///      you can also set STRATA_MODELS_DIR elsewhere)"
    /// );
    /// ```
    pub fn report(&self) -> Report<'_> {
        Report::with_hint(self, self.hint().map(Cow::Borrowed))
    }

    pub(crate) fn storage(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::StorageError { action, path: path.into(), source }
    }

    pub(crate) fn config(variable: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidConfig { variable: variable.into(), reason: reason.into(), source: None }
    }

    pub(crate) fn config_caused(
        variable: impl Into<String>,
        reason: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::InvalidConfig { variable: variable.into(), reason: reason.into(), source: Some(source.into()) }
    }
}

/// The result type of this crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_join_causes_once_and_end_with_the_hint() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let err = RegistryError::storage("write", "/m/f", io);
        assert_eq!(err.to_string(), "storage error: cannot write /m/f");
        assert_eq!(
            err.report().to_string(),
            "storage error: cannot write /m/f: denied; check the permissions (a directory shared by a \
             group needs group write, `chmod g+w`, and its members umask 0002); for the models \
             directory, you can also set STRATA_MODELS_DIR to a writable directory"
        );
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let transient = SourceError::transient_by("https://cdn/f", reset);
        let gave_up = SourceError::GaveUp { tries: 3, last: Box::new(transient) };
        assert_eq!(gave_up.to_string(), "https://cdn/f: reset by peer (gave up after 3 tries in a row)");
        assert_eq!(gave_up.kind(), ErrorKind::Network);
    }

    #[test]
    fn all_sources_failed_is_classified_by_its_attempts() {
        let all = |errors: Vec<SourceError>| RegistryError::AllSourcesFailed {
            model: "m".into(),
            file: "f.gguf".into(),
            attempts: errors.into_iter().map(|error| Attempt { source: "s".into(), error }).collect(),
            partial_kept: None,
        };
        let mismatch = || SourceError::ChecksumMismatch { expected: "a".into(), actual: "b".into() };
        assert_eq!(all(vec![mismatch(), SourceError::not_found()]).kind(), ErrorKind::Integrity);
        assert_eq!(all(vec![mismatch(), SourceError::transient("x")]).kind(), ErrorKind::Network);
        assert_eq!(all(vec![SourceError::failed(ErrorKind::Storage, "x")]).kind(), ErrorKind::Storage);
        assert_eq!(all(vec![]).kind(), ErrorKind::Network);
    }
}
