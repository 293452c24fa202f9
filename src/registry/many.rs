//! Many models at once: `download a b c`, `download --all` and [`Registry::ensure_many`] fetch
//! every model not yet verified concurrently, under one connection budget — `--connections`,
//! or what one file of their total size would get — shared among them by size (and the rate
//! cap likewise), each model still locked, verified and reported on its own; a failure does
//! not stop the others.

use std::path::PathBuf;

use super::Registry;
use crate::catalog::ModelEntry;
use crate::download::{auto_connections, share_out};
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
        // A name that does not resolve, or a model already verified, is answered at once (by
        // `ensure`, which also gives an unknown name its own error); the others share the
        // budget.
        let mut results: Vec<Option<Result<PathBuf>>> = Vec::with_capacity(names.len());
        let mut cold: Vec<(usize, &ModelEntry)> = Vec::new();
        // A model named twice (`big big`, or a name and its alias) is fetched once, then
        // answered again (warm) for the second name: never a wait on itself.
        let mut again: Vec<usize> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match self.resolve(name) {
                Ok(entry) if cold.iter().any(|(_, e)| *e == entry) => {
                    results.push(None);
                    again.push(i);
                }
                Ok(entry) if !self.dir.unit(entry).is_verified() => {
                    results.push(None);
                    cold.push((i, entry));
                }
                _ => results.push(Some(self.ensure(name))),
            }
        }
        let sizes: Vec<u64> = cold.iter().map(|(_, e)| e.total_size()).collect();
        let budget = self
            .config
            .connections()
            .unwrap_or_else(|| auto_connections(sizes.iter().fold(0, |a, &s| a.saturating_add(s))));
        // One set of sources (one HTTPS client, one pool of connections) for every model.
        // (When they cannot be built, each model builds its own and says why.)
        let built = match (&self.sources, cold.is_empty()) {
            (None, false) => crate::sources::from_config(&self.config).ok(),
            _ => None,
        };
        let shared = built.as_deref();
        let fetched = share_out(&sizes, budget, self.config.max_rate(), |k, connections, max_rate| {
            self.ensure_entry_with(cold[k].1, Some(connections), max_rate, shared)
        });
        for ((i, _), result) in cold.iter().zip(fetched) {
            results[*i] = Some(result);
        }
        for i in again {
            results[i] = Some(self.ensure(names[i]));
        }
        let not_run = || Err(crate::error::RegistryError::config("ensure_many", "a model was not ensured"));
        results.into_iter().map(|r| r.unwrap_or_else(not_run)).collect()
    }
}
