//! Many models at once: `download a b c`, `download --all` and [`Registry::ensure_many`] fetch
//! every model not yet verified concurrently, under one connection budget — `--connections`,
//! or what one file of their total size would get — shared among them by size (and the rate
//! cap likewise), each model still locked, verified and reported on its own; a failure does
//! not stop the others.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use super::Registry;
use crate::catalog::ModelEntry;
use crate::download::{auto_connections, give, shares, take};
use crate::error::Result;

impl Registry {
    /// [`Registry::ensure`] of every name at once: the results in the order of `names`, each
    /// model's path or its own error (an unknown name included). Models already verified
    /// return at once; the others are fetched concurrently under one connection budget
    /// ([`crate::Config::connections`], else [`auto_connections`] of their total size) shared
    /// by size, at most one model a connection at a time when there are more models than
    /// connections. Progress events come from several models at once, each naming its model.
    ///
    /// ```no_run
    /// let registry = strata_model::Registry::from_env()?;
    /// for (name, result) in ["minilm", "nomic-embed"].iter().zip(registry.ensure_many(&["minilm", "nomic-embed"])) {
    ///     match result {
    ///         Ok(path) => println!("{name}: {}", path.display()),
    ///         Err(e) => eprintln!("{name}: {}", e.report()),
    ///     }
    /// }
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    pub fn ensure_many(&self, names: &[&str]) -> Vec<Result<PathBuf>> {
        let entries: Vec<Option<ModelEntry>> = names.iter().map(|n| self.resolve(n).ok().cloned()).collect();
        // The models that need bytes share the budget; the others are warm or errors.
        let cold: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.as_ref().is_some_and(|e| !self.dir.unit(e).is_verified()))
            .map(|(i, _)| i)
            .collect();
        let sizes: Vec<u64> =
            cold.iter().filter_map(|&i| entries[i].as_ref()).map(ModelEntry::total_size).collect();
        let budget = self.config.connections().unwrap_or_else(|| auto_connections(sizes.iter().sum())).max(1);
        let share = shares(&sizes, budget);
        // One set of sources (one HTTPS client, one pool of connections) for every model.
        // (When they cannot be built, each model builds its own and says why.)
        let built = match (&self.sources, cold.is_empty()) {
            (None, false) => crate::sources::from_config(&self.config).ok(),
            _ => None,
        };
        let shared = built.as_deref();
        let free = Mutex::new(budget);
        let returned = Condvar::new();
        let mut results: Vec<Option<Result<PathBuf>>> = Vec::with_capacity(names.len());
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for (i, entry) in entries.iter().enumerate() {
                let Some(entry) = entry else {
                    // A name that does not resolve: its own error.
                    results.push(Some(self.ensure(names[i])));
                    continue;
                };
                let Some(k) = cold.iter().position(|&c| c == i) else {
                    results.push(Some(self.ensure_entry(entry)));
                    continue;
                };
                results.push(None);
                let connections = share[k];
                let max_rate = self
                    .config
                    .max_rate()
                    .map(|r| (r.saturating_mul(connections as u64) / budget as u64).max(1));
                let (free, returned) = (&free, &returned);
                let context = crate::trace::Context::current();
                handles.push((
                    i,
                    scope.spawn(move || {
                        let _context = context.enter();
                        take(free, returned, connections);
                        let result = self.ensure_entry_with(entry, Some(connections), max_rate, shared);
                        give(free, returned, connections);
                        result
                    }),
                ));
            }
            for (i, handle) in handles {
                match handle.join() {
                    Ok(result) => results[i] = Some(result),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        let not_run = || Err(crate::error::RegistryError::config("ensure_many", "a model was not ensured"));
        results.into_iter().map(|r| r.unwrap_or_else(not_run)).collect()
    }
}
