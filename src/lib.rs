//! # strata-model
//!
//! Turns a friendly model name (`minilm`) into a verified GGUF file on local disk, for Strata
//! and its inference engine.
//!
//! The flow, one way, top to bottom (see `ARCHITECTURE.md`):
//!
//! - [`catalog`]: which models exist — the built-in rows pinned to a Hugging Face commit and a
//!   SHA-256, aliases (`all-minilm`), variants (`minilm:f16`), and the custom catalog file.
//! - [`store`]: the models directory (`STRATA_MODELS_DIR`, else `~/.strata/models`) and, per
//!   model, [`ModelFiles`]: the file and its side files under `.strata/`.
//! - [`sources`]: places that serve a file's bytes (mirror directories, Hugging Face, HTTPS
//!   mirrors, buckets), and the one parser of location strings.
//! - [`download`]: the resolver (lock, reuse, sources in order, verification, install) and the
//!   parallel transfer engine.
//! - [`Registry`] and [`ModelRegistry`]: the API.
//!
//! Below them: [`config`] (every environment variable), errors ([`RegistryError`]), [`gguf`]
//! (a bounded header reader), sizes ([`ByteSize`]) and progress events ([`Progress`]).
//!
//! With `registry`, downloads also emit `tracing` events and an `ensure` span for operators
//! (what was fetched or reused and from where, retries, fallbacks, each HTTP request), and
//! nothing at all unless the host installs a subscriber; never a token or a URL's query. See
//! the README's "Logging" section for each level.
//!
//! ```
//! use strata_model::{Config, Registry};
//!
//! let dir = tempfile::tempdir()?;
//! let registry = Registry::new(Config::new(dir.path()))?;
//! let minilm = registry.resolve("all-minilm")?;
//! assert_eq!(minilm.hf_filename, "all-MiniLM-L6-v2.Q8_0.gguf");
//! assert_eq!(minilm.size_bytes, 25_008_064);
//! assert_eq!(registry.path("minilm")?, None); // not downloaded yet
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `default` is the catalog and the filesystem only (no HTTP dependency);
//! `registry` adds downloads; `cli` builds the `strata-model` command-line tool; `cloud` adds
//! S3, GCS and Azure mirrors; `tokio` adds `Registry::ensure_async` and its siblings, which run
//! the blocking engine on the host runtime's blocking pool. The HTTPS sources speak rustls
//! with ring (`rustls`, a default feature) or the platform's TLS, OpenSSL on Linux
//! (`native-tls`, which wins when both are on); `registry` without either is a compile error.
//! Items that need a feature say so on docs.rs.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs; stable never
// sees the attribute.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod catalog;
pub mod config;
#[cfg(feature = "registry")]
mod digest;
#[cfg(feature = "registry")]
pub mod download;
mod error;
mod fs;
pub mod gguf;
pub mod json_path;
#[cfg(feature = "registry")]
mod progress;
mod registry;
#[cfg(feature = "registry")]
mod shown;
mod size;
#[cfg(feature = "registry")]
pub mod sources;
pub mod store;
#[cfg(feature = "registry")]
mod trace;

pub use catalog::{Catalog, CustomModel, FileRole, ModelEntry, ModelFile, ModelTask, Origin};
pub use config::{CacheTool, Config, RetryPolicy, Secret, TokenSource};
#[cfg(feature = "registry")]
pub use digest::hash_file;
pub use error::{Attempt, BoxError, ErrorKind, RegistryError, Report, Result, SourceError};
pub use fs::LinkMethod;
#[cfg(feature = "registry")]
pub use progress::{Progress, ProgressFn};
#[cfg(feature = "registry")]
pub use registry::{
    AddOptions, AddReport, CacheLocation, CheckRow, FactFrom, FileNow, Freshness, OciAdded, Outdated,
    Projector, PruneReport, Pruned, PushAction, PushReport, ShareAction, ShareReport, SnapshotEntry, Update,
    UpdateAction, Verdict, HEADER_READ_LIMIT, STALE_PARTIAL,
};
pub use registry::{FileInfo, ModelInfo, ModelRegistry, Registry, UntrackedFile};
pub use size::{ByteSize, ParseSizeError};
#[cfg(feature = "registry")]
pub use sources::{Fetch, FetchRequest, ModelSource};
pub use store::{ModelFiles, ModelsDir, Provenance, Status};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(all(doctest, feature = "registry"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
