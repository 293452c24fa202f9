//! The async API (feature `tokio`): [`Registry::ensure_async`] and its siblings, and the
//! [`ModelRegistry`] equivalents. Each runs the blocking engine on the blocking pool of the
//! tokio runtime it is awaited in (`spawn_blocking`), so the calling task and its executor
//! thread are never blocked; the future owns a guard whose drop sets a cancel flag, which
//! stops the download at its next buffer (see [`Registry::with_cancel`]).
//!
//! No runtime is ever built here: a future polled outside a tokio runtime (another
//! executor, or none) returns [`RegistryError::NoRuntime`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{ModelRegistry, Registry};
use crate::error::{RegistryError, Result};

/// Owned by the future of an async call: dropping the future (a timeout, a `select!` that
/// took another branch, an aborted task, a runtime shutting down) drops it, which sets the
/// flag the blocking work watches.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `work` on the blocking pool of the runtime this future is polled in, with a flag
/// that is set when the future is dropped before it completes. `call` names the method in
/// [`RegistryError::NoRuntime`]; `model` names the model in [`RegistryError::Cancelled`].
async fn on_blocking_pool<T: Send + 'static>(
    call: &'static str,
    model: String,
    work: impl FnOnce(Arc<AtomicBool>) -> Result<T> + Send + 'static,
) -> Result<T> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| RegistryError::NoRuntime { call })?;
    let stop = Arc::new(AtomicBool::new(false));
    let _guard = StopOnDrop(stop.clone());
    // The caller's subscriber and span (`.instrument(span)`, a scoped `with_default`) go to
    // the blocking thread, as they go to a download's connections.
    let context = crate::trace::Context::current();
    match runtime
        .spawn_blocking(move || {
            let _traced = context.enter();
            work(stop)
        })
        .await
    {
        Ok(result) => result,
        // A panic in the work is the caller's, as it would be in the blocking call.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime shut down before the work began: nothing was done.
        Err(_) => Err(RegistryError::Cancelled { model, partial_kept: None }),
    }
}

impl Registry {
    /// [`Registry::ensure`] for async code (feature `tokio`): the same work, lock, sources,
    /// verification and progress callback ([`Registry::with_progress`], called from the
    /// blocking pool's thread), run on the blocking pool of the tokio runtime the future is
    /// awaited in, so that neither the calling task nor its executor thread is ever blocked,
    /// on a current-thread runtime as on a multi-thread one. Even a warm call (a `stat` and a
    /// stamp read) takes that hop: some microseconds.
    ///
    /// The future is `'static` (it holds a clone of the registry): it can be spawned.
    ///
    /// **Dropping the future stops the download** (a timeout, a `select!`, an aborted task): its
    /// transfer stops at the next buffer (a request still waiting for its answer finishes
    /// first, within the read timeout), the partial download and its ranges file are synced
    /// and kept, the model's lock is released, and nothing reaches the model path; the next
    /// call, async or not, in this process or another, resumes from the bytes kept. The
    /// blocking thread may run a few milliseconds after the drop; a call made meanwhile
    /// waits for its lock like any other. A model path only ever holds the verified file.
    ///
    /// # Errors
    ///
    /// Those of [`Registry::ensure`]; [`RegistryError::NoRuntime`] when polled outside a
    /// tokio runtime (no runtime is ever built here).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), strata_model::RegistryError> {
    /// let registry = strata_model::Registry::from_env()?;
    /// let path = registry.ensure_async("minilm").await?;
    /// // At most 10 minutes: on timeout the future is dropped and the download stops,
    /// // keeping what it fetched for the next call.
    /// let f16 = tokio::time::timeout(std::time::Duration::from_secs(600), registry.ensure_async("minilm:f16")).await;
    /// # Ok(()) }
    /// ```
    pub fn ensure_async(&self, name: &str) -> impl Future<Output = Result<PathBuf>> + Send + 'static {
        let (registry, name) = (self.clone(), name.to_owned());
        on_blocking_pool("Registry::ensure_async", name.clone(), move |stop| {
            registry.with_cancel(stop).ensure(&name)
        })
    }

    /// [`Registry::ensure_with_quant`] for async code: see [`Registry::ensure_async`].
    pub fn ensure_with_quant_async(
        &self,
        name: &str,
        quant: &str,
    ) -> impl Future<Output = Result<PathBuf>> + Send + 'static {
        let (registry, name, quant) = (self.clone(), name.to_owned(), quant.to_owned());
        on_blocking_pool("Registry::ensure_with_quant_async", format!("{name}:{quant}"), move |stop| {
            registry.with_cancel(stop).ensure_with_quant(&name, &quant)
        })
    }

    /// [`Registry::ensure_for_engine`] for async code: see [`Registry::ensure_async`]. An
    /// architecture the engine cannot load is refused before anything is downloaded.
    pub fn ensure_for_engine_async(
        &self,
        name: &str,
        supported_archs: &[&str],
    ) -> impl Future<Output = Result<PathBuf>> + Send + 'static {
        let (registry, name) = (self.clone(), name.to_owned());
        let archs: Vec<String> = supported_archs.iter().map(|a| (*a).to_owned()).collect();
        on_blocking_pool("Registry::ensure_for_engine_async", name.clone(), move |stop| {
            let archs: Vec<&str> = archs.iter().map(String::as_str).collect();
            registry.with_cancel(stop).ensure_for_engine(&name, &archs)
        })
    }
}

impl ModelRegistry {
    /// [`ModelRegistry::ensure`] for async code (feature `tokio`): the configuration is read
    /// from the environment on the blocking pool too; see [`Registry::ensure_async`] for
    /// what dropping the future does and [`RegistryError::NoRuntime`].
    ///
    /// ```no_run
    /// #[tokio::main]
    /// async fn main() -> Result<(), strata_model::RegistryError> {
    ///     let path = strata_model::ModelRegistry::ensure_async("minilm").await?;
    ///     println!("{}", path.display());
    ///     Ok(())
    /// }
    /// ```
    pub fn ensure_async(name: &str) -> impl Future<Output = Result<PathBuf>> + Send + 'static {
        let name = name.to_owned();
        on_blocking_pool("ModelRegistry::ensure_async", name.clone(), move |stop| {
            Registry::from_env()?.with_cancel(stop).ensure(&name)
        })
    }

    /// [`ModelRegistry::ensure_with_quant`] for async code: see [`ModelRegistry::ensure_async`].
    pub fn ensure_with_quant_async(
        name: &str,
        quant: &str,
    ) -> impl Future<Output = Result<PathBuf>> + Send + 'static {
        let (name, quant) = (name.to_owned(), quant.to_owned());
        on_blocking_pool("ModelRegistry::ensure_with_quant_async", format!("{name}:{quant}"), move |stop| {
            Registry::from_env()?.with_cancel(stop).ensure_with_quant(&name, &quant)
        })
    }

    /// [`ModelRegistry::ensure_for_engine`] for async code: see [`ModelRegistry::ensure_async`].
    pub fn ensure_for_engine_async(
        name: &str,
        supported_archs: &[&str],
    ) -> impl Future<Output = Result<PathBuf>> + Send + 'static {
        let name = name.to_owned();
        let archs: Vec<String> = supported_archs.iter().map(|a| (*a).to_owned()).collect();
        on_blocking_pool("ModelRegistry::ensure_for_engine_async", name.clone(), move |stop| {
            let archs: Vec<&str> = archs.iter().map(String::as_str).collect();
            Registry::from_env()?.with_cancel(stop).ensure_for_engine(&name, &archs)
        })
    }
}
