//! A multi-file model (split weights, sidecars) ensured as one unit: every file fetched in
//! parallel by the resolver's own per-file path (lock, resume, verification, rename), under
//! one connection budget — what a single file of the model's total size would use — shared
//! by size; the model's path is returned only once every file is verified. A file that fails
//! does not stop the others: what verified stays for the next run.

use std::path::PathBuf;

use super::budget::share_out;
use super::resolver::auto_connections;
use super::Resolver;
use crate::catalog::ModelEntry;
use crate::error::Result;
use crate::sources::ModelSource;

impl<'a> Resolver<'a> {
    /// Tries `source` after the others: the model's own origin (the registry a model was
    /// adopted from), whatever the configuration names.
    pub fn with_own_source(mut self, source: Option<&'a dyn ModelSource>) -> Self {
        self.own = source;
        self
    }

    /// The sources to try for `entry`'s file, in order: those that can have it (the Hub has
    /// no file of a model adopted from a registry), then the model's own.
    pub(super) fn sources_for(&self, entry: &ModelEntry) -> Vec<&'a dyn ModelSource> {
        self.sources.iter().map(|s| s.as_ref()).filter(|s| s.serves(entry)).chain(self.own).collect()
    }

    /// Returns the path of the file an engine opens (the weights, their first shard) once
    /// every file of `entry`'s model is verified, fetching those that are not. A single-file
    /// model is [`Resolver::ensure`]. On failure, the error of the first file (in the
    /// catalog's order) that could not be ensured; the files that were verified stay.
    /// `offline_endpoint` (offline mode: the Hugging Face endpoint) only changes the error
    /// when no source has a file: it names that file's pinned URL.
    pub fn ensure_model(&self, entry: &ModelEntry, offline_endpoint: Option<&url::Url>) -> Result<PathBuf> {
        let offline_url =
            |e: &ModelEntry| offline_endpoint.map(|endpoint| e.origin_url(endpoint).to_string());
        if !entry.is_multi_file() {
            return self.ensure(entry, offline_url(entry).as_deref());
        }
        let unit = self.dir.unit(entry);
        let todo: Vec<&ModelEntry> =
            unit.parts().iter().filter(|(_, files)| !files.is_verified()).map(|(e, _)| e).collect();
        if todo.is_empty() {
            crate::trace::emit!(TRACE, file = %entry.hf_filename, files = unit.parts().len(), "already verified");
            return Ok(unit.model_path());
        }
        let sizes: Vec<u64> = todo.iter().map(|e| e.size_bytes).collect();
        let total = sizes.iter().fold(0u64, |a, &s| a.saturating_add(s));
        let budget = self.connections.unwrap_or_else(|| auto_connections(total)).max(1);
        crate::trace::emit!(
            DEBUG,
            model = %entry.display_name(),
            files = todo.len(),
            bytes = total,
            connections = budget,
            "fetching the files of a multi-file model"
        );
        let results = share_out(&sizes, budget, self.max_rate, |i, connections, max_rate| {
            let mut resolver = *self;
            resolver.connections = Some(connections);
            resolver.max_rate = max_rate;
            resolver.ensure(todo[i], offline_url(todo[i]).as_deref())
        });
        let mut first_error = None;
        for result in results {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if unit.parts().iter().all(|(_, f)| f.status() == crate::store::Status::Downloaded) => {
                Ok(unit.model_path())
            }
            None => Err(unit.first().not_downloaded(entry.display_name())),
        }
    }
}
