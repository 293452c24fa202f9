//! The questions a program asks of a [`RegistryError`] to decide what to do next — retry,
//! fall back to another model, or fail — without matching variants or messages.
//!
//! Each answers from the variant and, for [`RegistryError::AllSourcesFailed`], from every
//! source's own failure, classified where it was made ([`SourceError`]'s variants). They are
//! finer than [`RegistryError::kind`] and not a partition: [`is_not_found`], [`is_offline`] and
//! [`is_transient`] exclude one another and the others; [`is_integrity`] and
//! [`is_permission`] can both hold (one source served bad bytes, another refused access);
//! an error may answer none (a configuration error, an unsupported architecture, a download
//! stopped by its caller, a storage error other than permissions): then fail, with
//! [`RegistryError::report`].
//!
//! [`is_not_found`]: RegistryError::is_not_found
//! [`is_offline`]: RegistryError::is_offline
//! [`is_transient`]: RegistryError::is_transient
//! [`is_integrity`]: RegistryError::is_integrity
//! [`is_permission`]: RegistryError::is_permission

use std::io::ErrorKind as Io;

use super::{ErrorKind, RegistryError, SourceError};

impl RegistryError {
    /// Whether what was asked for does not exist, so that asking again the same way cannot
    /// succeed (fall back to another model, or fail):
    ///
    /// - the name or quantization is not in the catalog ([`UnknownModel`], [`UnknownQuant`]),
    ///   or `unregister` was given a name that is no model at all ([`NotCustom`] of a name
    ///   that is not built in either);
    /// - the file is not in the models directory, for a call that only reads it
    ///   ([`NotDownloaded`], or [`InvalidFile`]: something else is at its path);
    /// - every source tried (at least one) answered that it does not have the file
    ///   ([`AllSourcesFailed`]: the entry's repository, revision or file name may be wrong, or
    ///   the mirrors do not hold it);
    /// - `add` found no such repository, revision or GGUF file ([`CannotAdd`]).
    ///
    /// Offline mode's "not here" is [`is_offline`](Self::is_offline) instead.
    ///
    /// [`UnknownModel`]: RegistryError::UnknownModel
    /// [`UnknownQuant`]: RegistryError::UnknownQuant
    /// [`NotCustom`]: RegistryError::NotCustom
    /// [`NotDownloaded`]: RegistryError::NotDownloaded
    /// [`InvalidFile`]: RegistryError::InvalidFile
    /// [`AllSourcesFailed`]: RegistryError::AllSourcesFailed
    /// [`CannotAdd`]: RegistryError::CannotAdd
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::UnknownModel { .. }
            | Self::UnknownQuant { .. }
            | Self::NotDownloaded { .. }
            | Self::InvalidFile { .. } => true,
            Self::NotCustom { builtin, .. } => !builtin,
            Self::AllSourcesFailed { attempts, .. } => {
                !attempts.is_empty() && attempts.iter().all(|a| a.error.is_not_found())
            }
            Self::CannotAdd { kind, .. } => *kind == ErrorKind::UnknownModel,
            Self::DownloadFailed { source, .. } => {
                source.downcast_ref().is_some_and(SourceError::is_not_found)
            }
            _ => false,
        }
    }

    /// Whether network access is off (`STRATA_OFFLINE`, `HF_HUB_OFFLINE`,
    /// [`Config::with_offline`](crate::Config::with_offline)) and the model is neither in the
    /// models directory nor in a local mirror ([`RegistryError::Offline`]): turn the network
    /// on, place the file by hand (the error says which file, its size, SHA-256 and where), or
    /// fall back to a model that is here. Only this configured mode: a network that cannot be
    /// reached is [`is_transient`](Self::is_transient).
    pub fn is_offline(&self) -> bool {
        matches!(self, Self::Offline { .. })
    }

    /// Whether the same call, made again later with nothing changed, may succeed (retry, with
    /// a delay):
    ///
    /// - every source that failed (at least one; sources that do not have the file are not
    ///   counted either way) failed for a transient network reason, after the retry policy's
    ///   own retries: a connection refused, reset or timed out, a body that stalled or ended
    ///   early, HTTP 408, 429 or 5xx, a server asking to wait longer than the download waits
    ///   ([`SourceError::Transient`], [`SourceError::GaveUp`], [`SourceError::RateLimited`]).
    ///   One source that failed otherwise (bytes that did not verify, access refused, a
    ///   certificate not trusted, a protocol error, a host name that does not resolve) makes
    ///   the error not transient: a retry would meet it again;
    /// - another process holds the model ([`RegistryError::Busy`]: the lock timeout ran out,
    ///   or a removal was refused while it downloads): retry when it is done;
    /// - `add` or a `mirror push` upload failed for such a transient reason.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Busy { .. } => true,
            Self::AllSourcesFailed { attempts, .. } => {
                let failed = attempts.iter().filter(|a| !a.error.is_not_found());
                failed.clone().count() > 0 && failed.map(|a| &a.error).all(transient)
            }
            Self::CannotAdd { source, .. } => source.as_deref().is_some_and(transient),
            Self::DownloadFailed { source, .. } => source.downcast_ref().is_some_and(transient),
            _ => false,
        }
    }

    /// Whether bytes failed verification — a SHA-256, a size or a format — so that the
    /// source may be corrupt or tampered with (alert; a retry from the same source will not
    /// help):
    ///
    /// - a file whose SHA-256 is not the pinned one ([`ChecksumMismatch`], [`CorruptFile`]:
    ///   `verify` deleted it), or that is not a readable GGUF file ([`InvalidGguf`]);
    /// - a source (any one of those tried) served the wrong size, a SHA-256 other than the
    ///   pinned one, or not a GGUF file ([`AllSourcesFailed`]), or `add` found such a file.
    ///
    /// A file of the wrong size found at the model path is [`is_not_found`](Self::is_not_found)
    /// ([`InvalidFile`]: the next download replaces it), not this.
    ///
    /// [`ChecksumMismatch`]: RegistryError::ChecksumMismatch
    /// [`CorruptFile`]: RegistryError::CorruptFile
    /// [`InvalidGguf`]: RegistryError::InvalidGguf
    /// [`AllSourcesFailed`]: RegistryError::AllSourcesFailed
    /// [`InvalidFile`]: RegistryError::InvalidFile
    pub fn is_integrity(&self) -> bool {
        match self {
            Self::ChecksumMismatch { .. } | Self::CorruptFile { .. } | Self::InvalidGguf { .. } => true,
            Self::AllSourcesFailed { attempts, .. } => {
                attempts.iter().any(|a| a.kind() == ErrorKind::Integrity)
            }
            Self::CannotAdd { kind, .. } => *kind == ErrorKind::Integrity,
            _ => false,
        }
    }

    /// Whether access was refused, locally or by a source (fix the permissions or the
    /// credentials; a retry will not help):
    ///
    /// - the models directory (or another local file) cannot be read or written for lack of
    ///   permission, or is on a read-only filesystem ([`RegistryError::StorageError`] whose
    ///   I/O error is `PermissionDenied` or `ReadOnlyFilesystem`);
    /// - a source (any one of those tried) refused access ([`SourceError::Denied`]: HTTP 401
    ///   or 403 for a gated or private repository, a token or credentials without access, a
    ///   mirror or bucket refusing us; a mirror directory this user may not read), or `add` or
    ///   a `mirror push` upload was refused so.
    pub fn is_permission(&self) -> bool {
        match self {
            Self::StorageError { source, .. } => {
                matches!(source.kind(), Io::PermissionDenied | Io::ReadOnlyFilesystem)
            }
            Self::AllSourcesFailed { attempts, .. } => attempts.iter().any(|a| denied(&a.error)),
            Self::CannotAdd { source, .. } => source.as_deref().is_some_and(denied),
            Self::DownloadFailed { source, .. } => source.downcast_ref().is_some_and(denied),
            _ => false,
        }
    }
}

/// A source's failure that a later try may not meet (see [`RegistryError::is_transient`]).
fn transient(e: &SourceError) -> bool {
    matches!(e, SourceError::Transient { .. } | SourceError::GaveUp { .. } | SourceError::RateLimited { .. })
}

fn denied(e: &SourceError) -> bool {
    match e {
        SourceError::Denied { .. } => true,
        // A mirror directory (a local source) this user may not read.
        SourceError::Failed { cause: Some(cause), .. } => cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| matches!(io.kind(), Io::PermissionDenied | Io::ReadOnlyFilesystem)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::Attempt;
    use super::*;

    /// Which predicates hold, in the order not found, offline, transient, integrity,
    /// permission.
    fn answers(e: &RegistryError) -> [bool; 5] {
        [e.is_not_found(), e.is_offline(), e.is_transient(), e.is_integrity(), e.is_permission()]
    }

    const NONE: [bool; 5] = [false; 5];
    const NOT_FOUND: [bool; 5] = [true, false, false, false, false];
    const OFFLINE: [bool; 5] = [false, true, false, false, false];
    const TRANSIENT: [bool; 5] = [false, false, true, false, false];
    const INTEGRITY: [bool; 5] = [false, false, false, true, false];
    const PERMISSION: [bool; 5] = [false, false, false, false, true];

    fn all_failed(errors: Vec<SourceError>) -> RegistryError {
        RegistryError::AllSourcesFailed {
            model: "m".into(),
            file: "f.gguf".into(),
            attempts: errors.into_iter().map(|error| Attempt { source: "s".into(), error }).collect(),
            partial_kept: None,
        }
    }

    fn io(kind: Io) -> RegistryError {
        RegistryError::storage("write", "/m/f.gguf", std::io::Error::new(kind, "x"))
    }

    fn mismatch() -> SourceError {
        SourceError::ChecksumMismatch { expected: "a".into(), actual: "b".into() }
    }

    fn gave_up() -> SourceError {
        SourceError::GaveUp { tries: 4, last: Box::new(SourceError::transient("reset")) }
    }

    fn add(kind: ErrorKind, source: Option<SourceError>) -> RegistryError {
        RegistryError::CannotAdd {
            reference: "hf.co/a/b".into(),
            reason: "x".into(),
            kind,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn not_found_is_a_name_or_a_file_nobody_has() {
        let unknown = RegistryError::UnknownModel { name: "x".into(), suggestions: vec![] };
        assert_eq!(answers(&unknown), NOT_FOUND);
        let quant = RegistryError::UnknownQuant { model: "m".into(), quant: "q".into(), available: vec![] };
        assert_eq!(answers(&quant), NOT_FOUND);
        let local = RegistryError::NotDownloaded { model: "m".into(), path: PathBuf::from("/m/f") };
        assert_eq!(answers(&local), NOT_FOUND);
        assert_eq!(answers(&RegistryError::NotCustom { name: "x".into(), builtin: false }), NOT_FOUND);
        assert_eq!(answers(&RegistryError::NotCustom { name: "minilm".into(), builtin: true }), NONE);
        let nowhere = all_failed(vec![SourceError::not_found(), SourceError::not_found()]);
        assert_eq!(answers(&nowhere), NOT_FOUND);
        assert_eq!(answers(&add(ErrorKind::UnknownModel, Some(SourceError::not_found()))), NOT_FOUND);
        // One source that failed otherwise decides.
        assert_eq!(answers(&all_failed(vec![SourceError::not_found(), gave_up()])), TRANSIENT);
        // No source configured: nothing was asked, nothing answered.
        assert_eq!(answers(&all_failed(vec![])), NONE);
    }

    #[test]
    fn offline_is_the_configured_mode_only() {
        let offline = RegistryError::Offline {
            model: "m".into(),
            url: "https://hub/f".into(),
            size: 1,
            sha256: "a".into(),
            path: PathBuf::from("/m/f"),
        };
        assert_eq!(answers(&offline), OFFLINE);
        let unreachable = SourceError::GaveUp {
            tries: 2,
            last: Box::new(SourceError::transient("https://hub/f: connection failed")),
        };
        assert_eq!(answers(&all_failed(vec![unreachable])), TRANSIENT);
    }

    #[test]
    fn transient_is_every_failed_source_transient_or_a_lock_held() {
        let rate = SourceError::Transient {
            reason: "wait".into(),
            retry_after: Some(Duration::from_secs(600)),
            cause: None,
        };
        assert_eq!(answers(&all_failed(vec![gave_up(), SourceError::not_found(), rate])), TRANSIENT);
        let busy = RegistryError::Busy {
            what: "download",
            model: "m".into(),
            holder: None,
            waited: Some(Duration::ZERO),
        };
        assert_eq!(answers(&busy), TRANSIENT);
        assert_eq!(answers(&add(ErrorKind::Network, Some(gave_up()))), TRANSIENT);
        let push = RegistryError::DownloadFailed { url: "oci://r/m".into(), source: Box::new(gave_up()) };
        assert_eq!(answers(&push), TRANSIENT);
        let text = RegistryError::DownloadFailed { url: "s3://b/f".into(), source: "upload failed".into() };
        assert_eq!(answers(&text), NONE, "a cause that is not a source's failure is not guessed at");
        // Not transient: a retry would meet these again.
        let protocol = SourceError::Protocol { location: "l".into(), reason: "r".into() };
        let certificate =
            SourceError::failed(ErrorKind::Network, "the server's certificate is not trusted here");
        for other in [protocol, certificate] {
            assert_eq!(answers(&all_failed(vec![gave_up(), other])), NONE);
        }
        assert_eq!(answers(&io(Io::TimedOut)), NONE);
    }

    #[test]
    fn integrity_is_bytes_that_did_not_verify() {
        let corrupt = RegistryError::CorruptFile {
            model: "m".into(),
            path: PathBuf::from("/m/f"),
            expected: "a".into(),
            actual: "b".into(),
            kept: None,
        };
        assert_eq!(answers(&corrupt), INTEGRITY);
        let checksum =
            RegistryError::ChecksumMismatch { file: "f".into(), expected: "a".into(), actual: "b".into() };
        assert_eq!(answers(&checksum), INTEGRITY);
        let size = SourceError::WrongSize { location: "l".into(), actual: 1, expected: 2 };
        let html = SourceError::NotGguf { location: "l".into(), head: "<html>".into() };
        for bad in [size, html, mismatch()] {
            assert_eq!(answers(&all_failed(vec![SourceError::not_found(), bad])), INTEGRITY);
        }
        // Any source that served bad bytes: a transient failure elsewhere does not hide it.
        assert_eq!(answers(&all_failed(vec![mismatch(), gave_up()])), INTEGRITY);
        assert_eq!(answers(&add(ErrorKind::Integrity, None)), INTEGRITY);
        let wrong_size_here = RegistryError::InvalidFile {
            model: "m".into(),
            path: PathBuf::from("/m/f"),
            found: 1,
            expected: 2,
        };
        assert_eq!(answers(&wrong_size_here), NOT_FOUND, "replaced by the next download");
    }

    #[test]
    fn permission_is_access_refused_here_or_by_a_source() {
        assert_eq!(answers(&io(Io::PermissionDenied)), PERMISSION);
        assert_eq!(answers(&io(Io::ReadOnlyFilesystem)), PERMISSION);
        assert_eq!(answers(&io(Io::StorageFull)), NONE);
        let gated =
            SourceError::denied("HTTP 401: the repository is gated: accept its license and set HF_TOKEN");
        assert_eq!(answers(&all_failed(vec![SourceError::not_found(), gated])), PERMISSION);
        let both = all_failed(vec![SourceError::denied("HTTP 403"), mismatch()]);
        assert_eq!(answers(&both), [false, false, false, true, true]);
        assert_eq!(answers(&add(ErrorKind::Network, Some(SourceError::denied("HTTP 403")))), PERMISSION);
        let push = RegistryError::DownloadFailed {
            url: "oci://r/m".into(),
            source: Box::new(SourceError::denied("403")),
        };
        assert_eq!(answers(&push), PERMISSION);
    }

    #[test]
    fn errors_that_answer_none() {
        let cancelled = RegistryError::Cancelled { model: "m".into(), partial_kept: Some(5) };
        assert_eq!(answers(&cancelled), NONE);
        assert_eq!(cancelled.kind(), ErrorKind::Cancelled);
        assert_eq!(answers(&RegistryError::NoRuntime { call: "Registry::ensure_async" }), NONE);
        assert_eq!(answers(&RegistryError::config("STRATA_MODELS_DIR", "empty")), NONE);
        let arch = RegistryError::UnsupportedArch { model: "m".into(), arch: "llama".into() };
        assert_eq!(answers(&arch), NONE);
    }
}
