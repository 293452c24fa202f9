//! [`Registry`]: a configured catalog and models directory — the whole API, one method per
//! operation: here the catalog, the models directory and `ensure()`; `add` from a Hub
//! reference in `add.rs`, prune and pins in `prune.rs`, `mirror push` in `push.rs`,
//! `catalog check` in `check.rs`, `share` in `share.rs`. [`ModelRegistry`] is the design
//! document's API of associated functions over the environment's configuration.

use std::fs;
use std::path::PathBuf;

use crate::catalog::{custom, Catalog, CustomModel, ModelEntry};
use crate::config::Config;
use crate::error::{RegistryError, Result};
use crate::gguf::{self, GgufHeader};
use crate::store::{ModelFiles, ModelsDir, Status};

#[cfg(feature = "registry")]
mod add;
#[cfg(feature = "tokio")]
mod async_api;
#[cfg(feature = "registry")]
mod caches;
#[cfg(feature = "registry")]
mod check;
mod info;
#[cfg(feature = "registry")]
mod many;
mod model_registry;
#[cfg(feature = "registry")]
mod outdated;
#[cfg(feature = "registry")]
mod prune;
#[cfg(feature = "registry")]
mod push;
#[cfg(feature = "registry")]
mod share;
mod untracked;
#[cfg(feature = "registry")]
mod update;

#[cfg(feature = "registry")]
pub use add::{AddOptions, AddReport, FactFrom, OciAdded, Projector, HEADER_READ_LIMIT};
#[cfg(feature = "registry")]
pub use caches::CacheLocation;
#[cfg(feature = "registry")]
pub use check::{CheckRow, Verdict};
pub use info::{FileInfo, ModelInfo};
pub use model_registry::ModelRegistry;
#[cfg(feature = "registry")]
pub use outdated::{FileNow, Freshness, Outdated};
#[cfg(feature = "registry")]
pub use prune::{PruneReport, Pruned, STALE_PARTIAL};
#[cfg(feature = "registry")]
pub use push::{PushAction, PushReport};
#[cfg(feature = "registry")]
pub use share::{ShareAction, ShareReport, SnapshotEntry};
pub use untracked::UntrackedFile;
#[cfg(feature = "registry")]
pub use update::{Update, UpdateAction};

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
    progress: Option<crate::progress::ProgressFn>,
    /// Flags that stop a download ([`Registry::with_cancel`], an async call's drop).
    #[cfg(feature = "registry")]
    cancel: Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>,
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
        Ok(Self::with_catalog(config, Catalog::with_custom(custom.models, custom.aliases)))
    }

    fn with_catalog(config: Config, catalog: Catalog) -> Self {
        Self {
            dir: ModelsDir::new(config.models_dir()),
            catalog,
            config,
            #[cfg(feature = "registry")]
            sources: None,
            #[cfg(feature = "registry")]
            progress: None,
            #[cfg(feature = "registry")]
            cancel: Vec::new(),
        }
    }

    /// [`Registry::new`], except that a custom catalog file that cannot be used leaves the
    /// built-in models usable: the registry then has the built-in catalog only, and the
    /// problem is returned beside it (the command line prints it as a warning).
    pub fn new_keeping_builtins(config: Config) -> Result<(Self, Option<RegistryError>)> {
        match Self::new(config.clone()) {
            Ok(r) => Ok((r, None)),
            Err(e @ RegistryError::InvalidCatalog { .. }) => {
                Ok((Self::with_catalog(config, Catalog::builtin()), Some(e)))
            }
            Err(e) => Err(e),
        }
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

    /// The files of one entry in the models directory.
    pub fn files(&self, entry: &ModelEntry) -> ModelFiles {
        self.dir.files(entry)
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
        let unit = self.dir.unit(e);
        let files = unit.first();
        let statuses = unit.statuses();
        let state = unit.status_of(&statuses);
        let provenance = if state == Status::Downloaded { files.provenance() } else { None };
        ModelInfo {
            name: e.display_name(),
            entry: e.clone(),
            aliases: self.catalog.aliases_of(&e.name),
            url: e.origin_url(self.config.hf_endpoint()).to_string(),
            status: state.as_str(),
            partial_bytes: match state {
                Status::Partial { bytes } => Some(bytes),
                _ => None,
            },
            path: files.model_path(),
            total_bytes: unit.size(),
            files: info::FileInfo::of(&unit, &statuses),
            installed_from: provenance.as_ref().map(ToString::to_string),
            reused_from: provenance.as_ref().and_then(|p| p.reused_from()),
            pinned: self.dir.is_pinned(e),
            state,
            provenance,
        }
    }

    /// The path of the model's file (a multi-file model's first shard, the file an engine
    /// opens) when it is present with the catalog size (every file of a multi-file model);
    /// `None` when it is not downloaded. A cheap check (one `stat`); `ensure()` (feature `registry`) is what verifies.
    pub fn path(&self, name: &str) -> Result<Option<PathBuf>> {
        let entry = self.resolve(name)?;
        #[cfg(feature = "registry")]
        self.install_staged_files(entry)?; // an update cut short after its re-pin
        let unit = self.dir.unit(entry);
        Ok((unit.status() == Status::Downloaded).then(|| unit.model_path()))
    }

    /// Whether the model's file is present with the catalog size.
    pub fn is_downloaded(&self, name: &str) -> Result<bool> {
        Ok(self.path(name)?.is_some())
    }

    /// Reads the GGUF header of the model's downloaded file: its whole key-value section (up to
    /// [`gguf::MAX_HEADER_BYTES`]), so keys after the tokenizer's arrays, such as the
    /// `general.file_type` llama.cpp's quantizer writes last, are read.
    pub fn read_header(&self, name: &str) -> Result<GgufHeader> {
        let e = self.resolve(name)?;
        let files = self.dir.files(e);
        let path = files.model_path();
        if files.status() != Status::Downloaded {
            return Err(files.not_downloaded(e.display_name()));
        }
        let file = fs::File::open(&path).map_err(|err| RegistryError::storage("open", &path, err))?;
        gguf::read_header(std::io::BufReader::with_capacity(64 * 1024, file))
            .map_err(|source| RegistryError::InvalidGguf { path, source })
    }

    /// How the GGUF header of `entry`'s file contradicts the catalog entry: its architecture
    /// or its embedding length, each as a sentence (empty when they agree or are unknown).
    pub fn header_mismatches(entry: &ModelEntry, header: &GgufHeader) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(arch) = header
            .architecture
            .as_deref()
            .filter(|a| *a != entry.arch && entry.arch != crate::catalog::UNKNOWN)
        {
            out.push(format!("the file's architecture is `{arch}`, the catalog says `{}`", entry.arch));
        }
        if let Some(dim) = header
            .embedding_length
            .filter(|d| entry.embedding_dim != 0 && *d != u64::from(entry.embedding_dim))
        {
            out.push(format!(
                "the file's embedding length is {dim}, the catalog says {}",
                entry.embedding_dim
            ));
        }
        out
    }

    /// Deletes the model's file (every file of a multi-file model, or none), any partial
    /// download of it, and its side files (all but its lock file). Returns whether a file or a
    /// partial download was deleted.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.dir.unit(self.resolve(name)?).remove()
    }

    /// Adds a custom model to the catalog file (atomically: the file is replaced whole, or
    /// left as it was). The registry itself is not changed; build a new one to see the model.
    pub fn register(&self, model: &CustomModel) -> Result<ModelEntry> {
        custom::register(&self.config.catalog_file(), &self.catalog_lock_dir(), model)
    }

    /// Removes a custom model from the catalog file (atomically). Its downloaded file, if any,
    /// stays in the models directory (an untracked file: [`Registry::untracked_files`]).
    pub fn unregister(&self, name: &str) -> Result<ModelEntry> {
        custom::unregister(&self.config.catalog_file(), &self.catalog_lock_dir(), name)
    }

    /// [`Registry::unregister`], then deletes the model's file, partial download and side
    /// files. Refuses, changing nothing, while another process is downloading the model.
    /// Returns the entry and whether a file was deleted.
    pub fn unregister_and_remove(&self, name: &str) -> Result<(ModelEntry, bool)> {
        let unit = self.dir.unit(self.resolve(name)?);
        // The model's locks (every file's) are taken before the catalog is touched, and held
        // to the end.
        let _held = unit.hold_for_removal()?;
        let entry = self.unregister(name)?;
        Ok((entry, unit.remove_held()?))
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
        self.config = self.config.with_connections(connections).with_max_rate(max_rate);
        self
    }

    /// Gives up waiting for another process that holds a model after `timeout` (see
    /// [`Config::with_lock_timeout`]).
    pub fn with_lock_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.config = self.config.with_lock_timeout(timeout);
        self
    }

    /// Does not look in other tools' caches before downloading.
    pub fn without_reuse(mut self) -> Self {
        self.config = self.config.with_caches(Vec::new());
        self
    }

    /// Calls `progress` as downloads advance (and when waiting for another process).
    #[cfg(feature = "registry")]
    pub fn with_progress(mut self, progress: crate::progress::ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Stops a download of this registry (or of its clones made afterwards) when `flag`
    /// becomes true: at the next buffer of the transfer, between sources, or while waiting
    /// for another process. The call then returns [`RegistryError::Cancelled`]; the bytes
    /// received stay on disk as a partial download (synced, with its ranges file), which the
    /// next call resumes; the lock is released; no other source is tried. A verified file
    /// is never affected: a flag set before the call leaves the warm path as it is. Several
    /// flags may be given: any one stops. (The async calls of feature `tokio` set one of
    /// their own when their future is dropped.)
    ///
    /// ```
    /// use std::sync::{atomic::AtomicBool, Arc};
    /// let dir = tempfile::tempdir()?;
    /// let stop = Arc::new(AtomicBool::new(true)); // set by another thread, a signal handler, ...
    /// let registry = strata_model::Registry::new(strata_model::Config::new(dir.path()))?.with_cancel(stop);
    /// let err = registry.ensure("minilm").unwrap_err();
    /// assert_eq!(err.kind(), strata_model::ErrorKind::Cancelled);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "registry")]
    pub fn with_cancel(mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.cancel.push(flag);
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
        let supported = |arch: &str| supported_archs.iter().any(|a| a.eq_ignore_ascii_case(arch));
        // An entry that does not name its arch is judged by its file's header alone.
        if entry.arch != crate::catalog::UNKNOWN && !supported(&entry.arch) {
            return Err(RegistryError::UnsupportedArch {
                model: entry.display_name(),
                arch: entry.arch.to_string(),
            });
        }
        let path = self.ensure_entry(&entry)?;
        // The file's own header has the last word (a custom entry may name the wrong arch).
        // A verified file's bytes are those of the pin, so its arch is read once per process:
        // the warm path stays a stat and a stamp.
        static READ: std::sync::Mutex<Vec<(PathBuf, Option<String>)>> = std::sync::Mutex::new(Vec::new());
        let known = READ
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, a)| a.clone());
        let arch = match known {
            Some(arch) => arch,
            None => {
                let file = fs::File::open(&path).map_err(|e| RegistryError::storage("open", &path, e))?;
                // The architecture comes before the tokenizer: no need to read past it.
                let header = gguf::read_header_prefix(std::io::BufReader::with_capacity(64 * 1024, file))
                    .map_err(|source| RegistryError::InvalidGguf { path: path.clone(), source })?;
                READ.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((path.clone(), header.architecture.clone()));
                header.architecture
            }
        };
        match arch {
            Some(arch) if !supported(&arch) => {
                Err(RegistryError::UnsupportedArch { model: entry.display_name(), arch })
            }
            _ => Ok(path),
        }
    }

    #[cfg(feature = "registry")]
    fn ensure_entry(&self, entry: &ModelEntry) -> Result<PathBuf> {
        self.ensure_entry_with(entry, self.config.connections(), self.config.max_rate(), None)
    }

    /// [`Registry::ensure`] of `entry` with these connections, rate cap and (when given)
    /// sources: a share of one budget and one client, for several models at once.
    #[cfg(feature = "registry")]
    pub(crate) fn ensure_entry_with(
        &self,
        entry: &ModelEntry,
        connections: Option<usize>,
        max_rate: Option<u64>,
        shared: Option<&[Box<dyn crate::sources::ModelSource>]>,
    ) -> Result<PathBuf> {
        if self.sources.is_none() && shared.is_none() && !entry.is_multi_file() {
            // The warm path of a single file: a `stat` and a stamp, nothing built or cloned.
            let files = self.dir.files(entry);
            if files.is_verified() {
                files.touch_used();
                crate::trace::emit!(TRACE, file = %entry.hf_filename, "already verified");
                return Ok(files.model_path());
            }
        }
        let files = self.dir.unit(entry);
        let built;
        let sources: &[Box<dyn crate::sources::ModelSource>] = match (&self.sources, shared) {
            (Some(s), _) => s,
            (None, Some(s)) => s,
            (None, None) => {
                // Built only when the warm check fails: the warm path loads no certificates.
                if entry.is_multi_file() && files.is_verified() {
                    files.touch_used();
                    crate::trace::emit!(TRACE, file = %entry.hf_filename, "already verified");
                    return Ok(files.model_path());
                }
                built = crate::sources::from_config(&self.config)?;
                &built
            }
        };
        let path =
            crate::download::Resolver::new(&self.dir, sources, self.config.retry(), self.progress.as_ref())
                .with_own_source(crate::sources::own_source(entry, &self.config)?.as_deref())
                .with_connections(connections)
                .with_max_rate(max_rate)
                .with_caches(self.config.caches())
                .with_lock_timeout(self.config.lock_timeout())
                .with_cancel(crate::download::Cancel(&self.cancel))
                .ensure_model(entry, self.config.offline().then(|| self.config.hf_endpoint()))?;
        files.touch_used();
        if self.config.share_hf_cache() && entry.oci.is_none() {
            // A cache that cannot be written does not fail the download; it is reported.
            let cache = self.config.hf_hub_cache();
            let shared = match cache {
                Some(cache) => files.parts().iter().try_for_each(|(file, part)| {
                    share::share_verified(cache, file, &part.model_path()).map(drop)
                }),
                None => Err(share::unknown_cache()),
            };
            if let Err(e) = shared {
                crate::progress::Reporter(self.progress.as_ref()).send(
                    crate::progress::Progress::ShareFailed {
                        model: &entry.display_name(),
                        cache,
                        reason: &e.report().to_string(),
                    },
                );
            }
        }
        Ok(path)
    }

    /// Re-hashes the model's file (every file of a multi-file model) in full. On success the verification stamp is renewed; on
    /// a mismatch the file is deleted and the error is [`RegistryError::CorruptFile`]; a file
    /// of the wrong size is [`RegistryError::InvalidFile`].
    #[cfg(feature = "registry")]
    pub fn verify(&self, name: &str) -> Result<PathBuf> {
        let entry = self.resolve(name)?;
        let unit = self.dir.unit(entry);
        if let Some((_, files)) = unit.missing() {
            return Err(files.not_downloaded(entry.display_name()));
        }
        for (file, _) in unit.parts() {
            self.verify_file(file)?;
        }
        Ok(unit.model_path())
    }

    /// [`Registry::verify`] of one file.
    #[cfg(feature = "registry")]
    fn verify_file(&self, entry: &ModelEntry) -> Result<PathBuf> {
        let files = self.dir.files(entry);
        let path = files.model_path();
        if files.status() != Status::Downloaded {
            return Err(files.not_downloaded(entry.display_name()));
        }
        let stamped = files.is_verified();
        let actual = crate::digest::hash_file(&path)?;
        if actual != entry.sha256 {
            // The model path never holds bytes that do not verify: the file goes.
            files.remove_stamp();
            let kept = fs::remove_file(&path).err().map(|e| e.to_string());
            return Err(RegistryError::CorruptFile {
                model: entry.display_name(),
                path,
                expected: entry.sha256.to_string(),
                actual,
                kept,
            });
        }
        if !stamped {
            files.forget_provenance(); // put there by other means than the one recorded
        }
        match files.write_stamp() {
            // A read-only models directory (a container image): the bytes are verified, the
            // stamp just cannot be saved.
            Err(RegistryError::StorageError { source, .. }) if crate::fs::is_read_only(&source) => {
                files.remember_verified();
                Ok(path)
            }
            other => other.map(|()| path),
        }
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

#[cfg(test)]
mod tests;
