//! The one error type of the crate, [`RegistryError`], and its classification.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Everything that can go wrong while turning a model name into a verified file.
///
/// Every message says what happened and what to do next. Messages never contain a secret
/// (`HF_TOKEN`, cloud keys): URLs are shown without credentials.
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

    /// A transfer failed (network error, HTTP error status, unreadable mirror).
    #[error("download of {url} failed: {source}")]
    DownloadFailed {
        /// Where the bytes were fetched from, without credentials.
        url: String,
        /// The underlying cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The bytes fetched do not have the SHA-256 pinned in the catalog.
    #[error(
        "checksum mismatch for {file}:\n  expected sha256 {expected}\n  actual   sha256 {actual}\n\
         the bytes were discarded; the source may be corrupt or tampered with"
    )]
    ChecksumMismatch {
        /// The file name.
        file: String,
        /// The SHA-256 pinned in the catalog.
        expected: String,
        /// The SHA-256 of the bytes received.
        actual: String,
    },

    /// Reading or writing the models directory (or another local file) failed.
    #[error("storage error: cannot {action} {}: {source}{}", .path.display(), storage_hint(.source))]
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

    /// A file is not a readable GGUF file.
    #[error("{} is not a valid GGUF file: {reason}", .path.display())]
    InvalidGguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
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

fn attempts_list(attempts: &[Attempt]) -> String {
    let mut s = String::new();
    for a in attempts {
        let _ = write!(s, "\n  - {}: {}", a.source, a.reason);
    }
    if attempts.is_empty() {
        s.push_str(" no source is configured");
    }
    s
}

/// One source's failure to serve a file, in [`RegistryError::AllSourcesFailed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The source, as it displays itself.
    pub source: String,
    /// The class of the failure.
    pub kind: ErrorKind,
    /// What happened.
    pub reason: String,
}

fn storage_hint(err: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::PermissionDenied | K::ReadOnlyFilesystem => {
            "; check the permissions, or set STRATA_MODELS_DIR to a writable directory"
        }
        K::StorageFull | K::QuotaExceeded => "; free some space or set STRATA_MODELS_DIR elsewhere",
        _ => "",
    }
}

/// The broad class of a [`RegistryError`]: what a caller (or the command line's exit code)
/// needs to decide what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The name (or quantization) is not in the catalog.
    UnknownModel,
    /// The model is not on disk (and nothing was asked to fetch it).
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
}

impl RegistryError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownModel { .. } | Self::UnknownQuant { .. } | Self::NotCustom { .. } => {
                ErrorKind::UnknownModel
            }
            Self::NotDownloaded { .. } | Self::Offline { .. } => ErrorKind::NotDownloaded,
            Self::AllSourcesFailed { attempts, .. } => {
                let failed = attempts.iter().filter(|a| a.kind != ErrorKind::NotDownloaded);
                if failed.clone().count() > 0 && failed.clone().all(|a| a.kind == ErrorKind::Integrity) {
                    ErrorKind::Integrity
                } else if failed.clone().any(|a| a.kind == ErrorKind::Storage) {
                    ErrorKind::Storage
                } else {
                    ErrorKind::Network
                }
            }
            Self::DownloadFailed { .. } => ErrorKind::Network,
            Self::ChecksumMismatch { .. } | Self::InvalidGguf { .. } => ErrorKind::Integrity,
            Self::StorageError { .. } => ErrorKind::Storage,
            Self::InvalidCatalog { .. } | Self::InvalidConfig { .. } => ErrorKind::Config,
            Self::UnsupportedArch { .. } => ErrorKind::Unsupported,
        }
    }

    pub(crate) fn storage(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::StorageError { action, path: path.into(), source }
    }

    pub(crate) fn config(variable: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidConfig { variable: variable.into(), reason: reason.into() }
    }
}

/// The result type of this crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
