//! [`Registry`]: a configured catalog and models directory, and [`ModelRegistry`], the
//! associated functions that use the environment's configuration.

use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use crate::catalog::{Catalog, ModelEntry, ModelTask, Origin};
use crate::config::Config;
use crate::custom::{self, CustomModel};
use crate::error::{RegistryError, Result};
use crate::gguf::{self, GgufHeader};
use crate::store::{ModelsDir, Status};

/// A catalog entry together with what is on disk for it: the rows of `strata-model list`, and
/// its `--json` format.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    /// The name that selects this entry (`minilm`, `minilm:f16`).
    pub name: String,
    /// The base model name (`minilm`).
    pub model: String,
    /// Quantization.
    pub quant: String,
    /// Whether the bare model name selects this variant.
    pub default_variant: bool,
    /// One line for people.
    pub description: String,
    /// Hugging Face repository.
    pub hf_repo: String,
    /// Pinned commit.
    pub revision: String,
    /// File name.
    pub hf_filename: String,
    /// Exact size in bytes.
    pub size_bytes: u64,
    /// SHA-256.
    pub sha256: String,
    /// GGUF architecture.
    pub arch: String,
    /// Embedding dimension.
    pub embedding_dim: u32,
    /// Task.
    pub task: ModelTask,
    /// Licence.
    pub license: String,
    /// Built in or custom.
    pub origin: Origin,
    /// Aliases of the model.
    pub aliases: Vec<String>,
    /// The pinned download URL on the configured Hugging Face endpoint.
    pub url: String,
    /// `downloaded`, `partial`, `invalid` or `not downloaded`.
    pub status: &'static str,
    /// Bytes of a partial download, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_bytes: Option<u64>,
    /// Where the file is (or will be).
    pub path: PathBuf,
    /// Where the file came from (a source, or another tool's cache), when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_from: Option<String>,
    /// Whether `prune` must keep it.
    pub pinned: bool,
    /// The on-disk state, in full.
    #[serde(skip)]
    pub state: Status,
}

impl ModelInfo {
    /// The status as `list` shows it: `downloaded`, `partial NN%`, `invalid`, `not downloaded`.
    pub fn status_label(&self) -> String {
        self.state.label(self.size_bytes)
    }
}

/// A catalog (built-in plus custom) over one models directory, with its configuration.
///
/// Tests and embedders build one explicitly; [`ModelRegistry`] builds one from the
/// environment for each call.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let registry = strata_model::Registry::new(strata_model::Config::new(dir.path()))?;
/// assert!(!registry.is_downloaded("minilm")?);
/// assert_eq!(registry.path("minilm")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    config: Config,
    catalog: Catalog,
    dir: ModelsDir,
    #[cfg(feature = "registry")]
    sources: Option<std::sync::Arc<Vec<Box<dyn crate::sources::ModelSource>>>>,
    #[cfg(feature = "registry")]
    progress: Option<crate::resolver::ProgressFn>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .field("models_dir", &self.dir.root())
            .field("custom_models", &self.catalog.custom_entries().count())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry for `config`; reads (and validates) the custom catalog file.
    pub fn new(config: Config) -> Result<Self> {
        let custom = custom::read(&config.catalog_file())?;
        Ok(Self {
            dir: ModelsDir::new(config.models_dir()),
            catalog: Catalog::with_custom(custom.models, custom.aliases),
            config,
            #[cfg(feature = "registry")]
            sources: None,
            #[cfg(feature = "registry")]
            progress: None,
        })
    }

    /// A registry configured from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalog in effect.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The models directory.
    pub fn models_dir(&self) -> &ModelsDir {
        &self.dir
    }

    /// Resolves a name to its catalog entry (see [`Catalog::resolve`]).
    pub fn resolve(&self, name: &str) -> Result<&ModelEntry> {
        self.catalog.resolve(name)
    }

    /// Every catalog entry with its status.
    pub fn list(&self) -> Vec<ModelInfo> {
        self.catalog.entries().iter().map(|e| self.info_of(e)).collect()
    }

    /// One entry with its status.
    pub fn info(&self, name: &str) -> Result<ModelInfo> {
        Ok(self.info_of(self.resolve(name)?))
    }

    /// The entry's row of [`Registry::list`].
    pub fn info_of(&self, e: &ModelEntry) -> ModelInfo {
        let state = self.dir.status(e);
        ModelInfo {
            name: e.display_name(),
            model: e.name.to_string(),
            quant: e.quant.to_string(),
            default_variant: e.default_variant,
            description: e.description.to_string(),
            hf_repo: e.hf_repo.to_string(),
            revision: e.revision.to_string(),
            hf_filename: e.hf_filename.to_string(),
            size_bytes: e.size_bytes,
            sha256: e.sha256.to_string(),
            arch: e.arch.to_string(),
            embedding_dim: e.embedding_dim,
            task: e.task,
            license: e.license.to_string(),
            origin: e.origin,
            aliases: self.catalog.aliases_of(&e.name),
            url: e.hf_url(self.config.endpoint()),
            status: match state {
                Status::Downloaded => "downloaded",
                Status::Partial { .. } => "partial",
                Status::Invalid { .. } => "invalid",
                Status::NotDownloaded => "not downloaded",
            },
            partial_bytes: match state {
                Status::Partial { bytes } => Some(bytes),
                _ => None,
            },
            path: self.dir.model_path(e),
            installed_from: if state == Status::Downloaded { self.dir.origin(e) } else { None },
            pinned: self.dir.is_pinned(e),
            state,
        }
    }

    /// The path of the model's file when it is present with the catalog size; `None` when it
    /// is not downloaded. A cheap check (one `stat`); `ensure()` (feature `registry`) is what verifies.
    pub fn path(&self, name: &str) -> Result<Option<PathBuf>> {
        let e = self.resolve(name)?;
        Ok((self.dir.status(e) == Status::Downloaded).then(|| self.dir.model_path(e)))
    }

    /// Whether the model's file is present with the catalog size.
    pub fn is_downloaded(&self, name: &str) -> Result<bool> {
        Ok(self.path(name)?.is_some())
    }

    /// Reads the GGUF header of the model's downloaded file.
    pub fn read_header(&self, name: &str) -> Result<GgufHeader> {
        let e = self.resolve(name)?;
        let path = self.dir.model_path(e);
        if self.dir.status(e) != Status::Downloaded {
            return Err(RegistryError::NotDownloaded { model: e.display_name(), path });
        }
        let file = fs::File::open(&path).map_err(|err| RegistryError::storage("open", &path, err))?;
        gguf::read_header(std::io::BufReader::with_capacity(64 * 1024, file))
            .map_err(|err| RegistryError::InvalidGguf { path, reason: err.to_string() })
    }

    /// Deletes the model's file and any partial download of it. Returns whether anything was
    /// deleted.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.dir.remove(self.resolve(name)?)
    }

    /// Adds a custom model to the catalog file (atomically: the file is replaced whole, or
    /// left as it was). The registry itself is not changed; build a new one to see the model.
    pub fn register(&self, model: &CustomModel) -> Result<ModelEntry> {
        custom::register(&self.config.catalog_file(), &self.catalog_lock_dir(), model)
    }

    /// Removes a custom model from the catalog file (atomically). Its downloaded file, if any,
    /// stays in the models directory.
    pub fn unregister(&self, name: &str) -> Result<ModelEntry> {
        custom::unregister(&self.config.catalog_file(), &self.catalog_lock_dir(), name)
    }

    /// Uses these sources, in this order, instead of those the configuration names
    /// (`STRATA_MODELS_MIRROR`, then Hugging Face).
    #[cfg(feature = "registry")]
    pub fn with_sources(mut self, sources: Vec<Box<dyn crate::sources::ModelSource>>) -> Self {
        self.sources = Some(std::sync::Arc::new(sources));
        self
    }

    /// Replaces the configuration's transfer settings: connections per download and a rate
    /// cap (bytes per second).
    #[cfg(feature = "registry")]
    pub fn with_transfer(mut self, connections: Option<usize>, max_rate: Option<u64>) -> Self {
        self.config = self.config.connections(connections).max_rate(max_rate);
        self
    }

    /// Does not look in other tools' caches before downloading.
    pub fn without_reuse(mut self) -> Self {
        self.config = self.config.caches(Vec::new());
        self
    }

    /// Calls `progress` as downloads advance (and when waiting for another process).
    #[cfg(feature = "registry")]
    pub fn with_progress(mut self, progress: crate::resolver::ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Returns the path of the model's verified file, downloading it first if needed.
    ///
    /// A warm call (the file is present and unchanged since it was verified) costs a `stat`
    /// and the read of a tiny stamp: no hashing, no network. Otherwise the model's lock is
    /// taken (waiting for another process that holds it), and the sources are tried in order;
    /// the bytes are verified (size, GGUF magic, SHA-256) before they reach the model path.
    ///
    /// ```no_run
    /// let registry = strata_model::Registry::from_env()?;
    /// let path = registry.ensure("minilm")?;
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    #[cfg(feature = "registry")]
    pub fn ensure(&self, name: &str) -> Result<PathBuf> {
        let entry = self.resolve(name)?.clone();
        self.ensure_entry(&entry)
    }

    /// [`Registry::ensure`] for one quantization of a model: `ensure_with_quant("minilm", "f16")`.
    #[cfg(feature = "registry")]
    pub fn ensure_with_quant(&self, name: &str, quant: &str) -> Result<PathBuf> {
        let base = name.split_once(':').map_or(name, |(b, _)| b);
        self.ensure(&format!("{base}:{quant}"))
    }

    /// For an inference engine: ensures the model only if its architecture is one the engine
    /// can load, and returns [`RegistryError::UnsupportedArch`] before downloading anything
    /// otherwise.
    ///
    /// ```no_run
    /// let registry = strata_model::Registry::from_env()?;
    /// let path = registry.ensure_for_engine("minilm", &["bert", "gemma-embedding", "qwen3"])?;
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    #[cfg(feature = "registry")]
    pub fn ensure_for_engine(&self, name: &str, supported_archs: &[&str]) -> Result<PathBuf> {
        let entry = self.resolve(name)?.clone();
        if !supported_archs.iter().any(|a| a.eq_ignore_ascii_case(&entry.arch)) {
            return Err(RegistryError::UnsupportedArch {
                model: entry.display_name(),
                arch: entry.arch.to_string(),
            });
        }
        self.ensure_entry(&entry)
    }

    #[cfg(feature = "registry")]
    fn ensure_entry(&self, entry: &ModelEntry) -> Result<PathBuf> {
        let built;
        let sources: &[Box<dyn crate::sources::ModelSource>] = match &self.sources {
            Some(s) => s,
            None => {
                // Built only when the warm check fails: the warm path loads no certificates.
                if self.dir.is_verified(entry) {
                    self.dir.touch_used(entry);
                    return Ok(self.dir.model_path(entry));
                }
                built = crate::sources::from_config(&self.config)?;
                &built
            }
        };
        let offline_url = self.config.is_offline().then(|| entry.hf_url(self.config.endpoint()));
        let path = crate::resolver::Resolver::new(
            &self.dir,
            sources,
            self.config.retry_policy(),
            self.progress.as_ref(),
        )
        .connections(self.config.connection_count())
        .max_rate(self.config.rate_cap())
        .reuse(self.config.cache_dirs())
        .ensure(entry, offline_url.as_deref())?;
        self.dir.touch_used(entry);
        Ok(path)
    }

    /// Re-hashes the model's file in full. On success the verification stamp is renewed; on
    /// a mismatch it is dropped (the next `ensure()` replaces the file) and the error is
    /// [`RegistryError::ChecksumMismatch`].
    #[cfg(feature = "registry")]
    pub fn verify(&self, name: &str) -> Result<PathBuf> {
        let entry = self.resolve(name)?.clone();
        let path = self.dir.model_path(&entry);
        if self.dir.status(&entry) != Status::Downloaded {
            return Err(RegistryError::NotDownloaded { model: entry.display_name(), path });
        }
        let actual = crate::resolver::hash_file(&path)?;
        if actual != entry.sha256 {
            self.dir.remove_stamp(&entry);
            return Err(RegistryError::ChecksumMismatch {
                file: entry.hf_filename.to_string(),
                expected: entry.sha256.to_string(),
                actual,
            });
        }
        self.dir.write_stamp(&entry)?;
        Ok(path)
    }

    /// Sets a user alias (`default-embed` → `minilm`), stored with the custom catalog
    /// (atomically). The registry itself is not changed; build a new one to use it.
    pub fn set_alias(&self, alias: &str, target: &str) -> Result<(String, String)> {
        custom::set_alias(&self.config.catalog_file(), &self.catalog_lock_dir(), alias, target)
    }

    /// Removes a user alias. Returns its target.
    pub fn remove_alias(&self, alias: &str) -> Result<String> {
        custom::remove_alias(&self.config.catalog_file(), &self.catalog_lock_dir(), alias)
    }

    fn catalog_lock_dir(&self) -> PathBuf {
        let file = self.config.catalog_file();
        match file.parent() {
            Some(p) if p == self.dir.root() => self.dir.state_dir(),
            Some(p) => p.to_path_buf(),
            None => self.dir.state_dir(),
        }
    }
}

/// The design document's API: associated functions that read the configuration from the
/// environment (`STRATA_MODELS_DIR`, `STRATA_MODELS_CATALOG`, ...) on each call.
///
/// ```no_run
/// use strata_model::ModelRegistry;
/// for m in ModelRegistry::list()? {
///     println!("{}: {} ({})", m.name, m.description, m.status_label());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(dir: &std::path::Path) -> Registry {
        Registry::new(Config::new(dir)).unwrap()
    }

    #[test]
    fn list_covers_the_catalog_with_statuses() {
        let tmp = tempfile::tempdir().unwrap();
        let r = registry(tmp.path());
        let list = r.list();
        assert_eq!(list.len(), crate::catalog::BUILTIN.len());
        assert!(list.iter().all(|m| m.status == "not downloaded"));
        assert_eq!(list[1].name, "minilm:f16");
        assert_eq!(list[0].aliases, ["all-minilm", "all-minilm-l6-v2"]);
    }

    #[test]
    fn register_then_find_then_unregister() {
        let tmp = tempfile::tempdir().unwrap();
        let r = registry(tmp.path());
        let bytes = gguf::test_header("bert", 8, 7);
        let model = CustomModel {
            name: "tiny".into(),
            hf_repo: "test/tiny".into(),
            hf_filename: "tiny-Q8_0.gguf".into(),
            revision: "1".repeat(40),
            sha256: "2".repeat(64),
            size_bytes: bytes.len() as u64,
            ..Default::default()
        };
        r.register(&model).unwrap();
        let r = registry(tmp.path());
        assert_eq!(r.resolve("TINY").unwrap().origin, Origin::Custom);
        assert!(!r.is_downloaded("tiny").unwrap());
        fs::write(tmp.path().join("tiny-Q8_0.gguf"), &bytes).unwrap();
        assert_eq!(r.path("tiny").unwrap(), Some(tmp.path().join("tiny-Q8_0.gguf")));
        assert_eq!(r.read_header("tiny").unwrap().architecture.as_deref(), Some("bert"));
        assert!(r.remove("tiny").unwrap());
        assert!(matches!(r.read_header("tiny"), Err(RegistryError::NotDownloaded { .. })));
        r.unregister("tiny").unwrap();
        assert!(registry(tmp.path()).resolve("tiny").is_err());
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(names.iter().all(|n| n == "catalog.json" || n == ".strata"), "{names:?}");
    }
}
