//! [`ModelRegistry`]: the design document's API, associated functions that build a
//! [`Registry`] from the environment on each call.

use std::path::PathBuf;

use super::{ModelInfo, Registry};
use crate::catalog::{CustomModel, ModelEntry};
use crate::error::Result;

/// The design document's API: associated functions that read the configuration from the
/// environment (`STRATA_MODELS_DIR`, `STRATA_MODELS_CATALOG`, ...) on each call.
///
/// ```no_run
/// use strata_model::ModelRegistry;
/// for m in ModelRegistry::list()? {
///     println!("{}: {} ({})", m.name, m.entry.description, m.status_label());
/// }
/// if let Some(path) = ModelRegistry::path("minilm") {
///     println!("minilm is at {}", path.display());
/// }
/// # Ok::<(), strata_model::RegistryError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ModelRegistry;

impl ModelRegistry {
    /// Every catalog entry (built-in and custom) with its status.
    pub fn list() -> Result<Vec<ModelInfo>> {
        Ok(Registry::from_env()?.list())
    }

    /// The model's path when it is downloaded; `None` when it is not, or when the name or the
    /// configuration is invalid (use [`Registry::path`] to see why).
    pub fn path(name: &str) -> Option<PathBuf> {
        Registry::from_env().ok()?.path(name).ok().flatten()
    }

    /// Whether the model is downloaded (`false` on any error, see [`ModelRegistry::path`]).
    pub fn is_downloaded(name: &str) -> bool {
        Self::path(name).is_some()
    }

    /// Deletes the model's file and any partial download of it.
    pub fn remove(name: &str) -> Result<bool> {
        Registry::from_env()?.remove(name)
    }

    /// Adds a custom model to the catalog file.
    pub fn register(model: &CustomModel) -> Result<ModelEntry> {
        Registry::from_env()?.register(model)
    }

    /// Removes a custom model from the catalog file.
    pub fn unregister(name: &str) -> Result<ModelEntry> {
        Registry::from_env()?.unregister(name)
    }

    /// Returns the path of the model's verified file, downloading it first if needed (see
    /// [`Registry::ensure`]).
    ///
    /// ```no_run
    /// let path = strata_model::ModelRegistry::ensure("minilm")?;
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    #[cfg(feature = "registry")]
    pub fn ensure(name: &str) -> Result<PathBuf> {
        Registry::from_env()?.ensure(name)
    }

    /// Ensures one quantization of a model (`ensure_with_quant("minilm", "f16")`).
    #[cfg(feature = "registry")]
    pub fn ensure_with_quant(name: &str, quant: &str) -> Result<PathBuf> {
        Registry::from_env()?.ensure_with_quant(name, quant)
    }

    /// Ensures a model for an engine that loads only `supported_archs` (see
    /// [`Registry::ensure_for_engine`]).
    #[cfg(feature = "registry")]
    pub fn ensure_for_engine(name: &str, supported_archs: &[&str]) -> Result<PathBuf> {
        Registry::from_env()?.ensure_for_engine(name, supported_archs)
    }
}
