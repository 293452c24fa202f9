//! # strata-model
//!
//! Turns a friendly model name (`minilm`) into a verified GGUF file on local disk, for Strata
//! and its inference engine.
//!
//! - [`catalog`]: the built-in models, pinned to a Hugging Face commit and a SHA-256, with
//!   aliases (`all-minilm`) and quantization variants (`minilm:f16`).
//! - [`custom`]: models added without recompiling, from a JSON catalog file.
//! - [`store`]: the models directory (`STRATA_MODELS_DIR`, else `~/.strata/models`).
//! - [`gguf`]: a bounded reader for GGUF headers.
//! - [`Registry`] and [`ModelRegistry`]: the API.
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
//! `registry` adds downloads; `cli` builds the `strata-model` command-line tool.

#![deny(missing_docs)]

pub mod catalog;
#[cfg(feature = "registry")]
pub mod check;
pub mod config;
pub mod custom;
mod error;
pub mod gguf;
#[cfg(feature = "registry")]
pub mod mirror;
#[cfg(feature = "registry")]
mod prune;
mod registry;
#[cfg(feature = "registry")]
pub mod resolver;
pub mod reuse;
#[cfg(feature = "registry")]
pub mod sources;
pub mod store;
#[cfg(feature = "registry")]
mod transfer;

pub use catalog::{Catalog, ModelEntry, ModelTask, Origin};
pub use config::{Config, RetryPolicy, Secret};
pub use custom::CustomModel;
pub use error::{Attempt, ErrorKind, RegistryError, Result};
#[cfg(feature = "registry")]
pub use prune::PruneReport;
pub use registry::{ModelInfo, ModelRegistry, Registry};
#[cfg(feature = "registry")]
pub use resolver::{Progress, ProgressFn};
#[cfg(feature = "registry")]
pub use sources::{Fetch, FetchRequest, ModelSource, SourceError};
pub use store::{ModelsDir, Status};
