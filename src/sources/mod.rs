//! Sources: places that serve the bytes of catalog files.
//!
//! A source is small: it opens a file's bytes from an offset (optionally up to an end) and
//! says plainly when it does not have the file. The [resolver](crate::resolver) owns
//! everything else — order, locking, the partial file, resume, hashing, verification,
//! retries and the atomic rename — so every source gets those for free.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use crate::catalog::ModelEntry;
use crate::config::Config;
use crate::error::{ErrorKind, RegistryError, Result};

mod http;
mod mirror;
#[cfg(feature = "cloud")]
mod object_store;

pub use http::{HttpSource, HuggingFace, Linked};
pub use mirror::MirrorDir;
#[cfg(feature = "cloud")]
pub use object_store::ObjectStoreSource;

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

/// Why a source did not serve a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The source does not have the file: the next source is tried, quietly.
    NotFound,
    /// A failure worth retrying from the same source (connection reset, timeout, 408, 429,
    /// 5xx), after `retry_after` when the source said so.
    Transient {
        /// What happened.
        reason: String,
        /// How long the source asked to wait.
        retry_after: Option<Duration>,
    },
    /// A failure that retrying will not fix (403, a refused redirect, a bad certificate):
    /// the next source is tried.
    Failed {
        /// The class of failure (network, integrity, ...).
        kind: ErrorKind,
        /// What happened and what to do about it.
        reason: String,
    },
}

impl SourceError {
    pub(crate) fn failed(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Self::Failed { kind, reason: reason.into() }
    }

    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Self::Transient { reason: reason.into(), retry_after: None }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::Transient { reason, .. } | Self::Failed { reason, .. } => f.write_str(reason),
        }
    }
}

impl std::error::Error for SourceError {}

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

    /// Whether the source answers at all (for `strata-model sources`): a short description
    /// when it does, why not when it does not.
    fn check(&self) -> Result<String, String> {
        Ok("not checked".into())
    }
}

/// The sources a configuration names, in order: each `STRATA_MODELS_MIRROR` entry, then
/// Hugging Face. In offline mode the network sources are left out.
pub fn from_config(config: &Config) -> Result<Vec<Box<dyn ModelSource>>> {
    let mut sources: Vec<Box<dyn ModelSource>> = Vec::new();
    for raw in config.mirror_entries() {
        if raw.is_empty() {
            continue;
        }
        let source = mirror_entry(raw, config)?;
        if !(config.is_offline() && source.is_network()) {
            sources.push(source);
        }
    }
    if !config.is_offline() {
        sources.push(Box::new(HttpSource::hugging_face(config)?));
    }
    Ok(sources)
}

/// The source for one `STRATA_MODELS_MIRROR` entry: a directory path, a `file://` URL, an
/// `https://` mirror, or (with the `cloud` feature) an `s3://`, `gs://` or `az://` bucket.
pub fn mirror_entry(raw: &str, config: &Config) -> Result<Box<dyn ModelSource>> {
    let variable = crate::config::vars::MODELS_MIRROR;
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(Box::new(HttpSource::mirror(raw, config)?));
    }
    if lower.starts_with("http://") {
        return Err(RegistryError::config(
            variable,
            format!("`{}`: plain HTTP mirrors are refused; use https://", http::redact(raw)),
        ));
    }
    if ["s3://", "gs://", "az://"].iter().any(|p| lower.starts_with(p)) {
        #[cfg(feature = "cloud")]
        return Ok(Box::new(ObjectStoreSource::from_url(raw, config)?));
        #[cfg(not(feature = "cloud"))]
        return Err(RegistryError::config(
            variable,
            format!("`{raw}` needs the `cloud` feature; build strata-model with --features cloud"),
        ));
    }
    if let Some(rest) = raw.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(RegistryError::config(
                variable,
                format!("`{raw}`: a file URL needs an absolute path (file:///srv/models)"),
            ));
        }
        return Ok(Box::new(MirrorDir::new(percent_decode(rest))));
    }
    match raw.split_once("://") {
        Some((scheme, _)) if scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+') => {
            Err(RegistryError::config(
                variable,
                format!(
                    "`{scheme}://` is not a kind of mirror; \
                     use a directory, file://, https://, s3://, gs:// or az://"
                ),
            ))
        }
        _ => Ok(Box::new(MirrorDir::new(raw))),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod mock {
    use super::*;

    mockall::mock! {
        /// A source whose answers a test scripts.
        pub Source {}
        impl ModelSource for Source {
            fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError>;
            fn is_network(&self) -> bool;
        }
        impl fmt::Display for Source {
            fn fmt<'a>(&self, f: &mut fmt::Formatter<'a>) -> fmt::Result;
        }
    }

    impl fmt::Debug for MockSource {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("MockSource")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mirror: &str, offline: bool) -> Config {
        Config::new("/tmp/m")
            .mirrors(mirror.split(',').map(|s| s.trim().to_string()).collect())
            .offline(offline)
    }

    #[test]
    fn mirror_entries_come_first_and_offline_drops_the_hub() {
        let names = |c: &Config| from_config(c).unwrap().iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&config("/a, file:///b%20c,, https://m.internal/x/", false)),
            [
                "mirror directory /a",
                "mirror directory /b c",
                "HTTPS mirror https://m.internal/x",
                "Hugging Face https://huggingface.co"
            ]
        );
        assert_eq!(names(&config("/a, https://m.internal/x", true)), ["mirror directory /a"]);
        assert!(names(&config("", true)).is_empty());
    }

    #[test]
    fn unknown_schemes_and_relative_file_urls_are_configuration_errors() {
        for bad in ["ftp://x/y", "s3x://b", "file://relative/path", "gopher://h", "http://plain/x"] {
            let err = from_config(&config(bad, false)).unwrap_err();
            assert!(err.to_string().contains("STRATA_MODELS_MIRROR"), "{bad}: {err}");
        }
    }
}
