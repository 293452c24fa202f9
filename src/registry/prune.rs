//! Keeping the models directory within a disk budget: least-recently-used models go first,
//! never a pinned one nor one another process holds locked; partial downloads untouched for
//! a week go too.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Registry, UntrackedFile};
use crate::error::Result;
use crate::store::Status;

/// Partial downloads older than this are stale.
pub const STALE_PARTIAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A model (or a partial download of one) and its bytes, in a [`PruneReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// The name that selects the entry.
    pub name: String,
    /// Its bytes on disk.
    pub size_bytes: u64,
}

/// What `prune` removed (or, in a dry run, would remove) and kept.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Models removed, least recently used first.
    pub removed: Vec<Pruned>,
    /// Stale partial downloads removed.
    pub stale_partials: Vec<Pruned>,
    /// Partial downloads kept (touched within a week, or being downloaded): counted, resumable.
    pub partials: Vec<Pruned>,
    /// Models kept because they are pinned.
    pub pinned: Vec<String>,
    /// Models kept because another process holds their lock.
    pub locked: Vec<String>,
    /// `.gguf` files no catalog entry names: counted in the budget, never deleted.
    pub untracked: Vec<UntrackedFile>,
    /// Bytes of models, partials and untracked files before.
    pub bytes_before: u64,
    /// Bytes after (or that would remain).
    pub bytes_after: u64,
    /// The budget.
    pub max_bytes: u64,
    /// Whether anything was actually deleted.
    pub dry_run: bool,
}

impl Registry {
    /// Removes least-recently-used models (last use as recorded by `ensure()`) until the
    /// models directory holds at most `max_bytes` of models (a multi-file model whole, or
    /// not at all), partial downloads and untracked
    /// `.gguf` files, and removes partial downloads untouched for a week. Pinned models,
    /// models another process holds locked and untracked files (which may be nobody else's
    /// copy) are kept. With `dry_run`, nothing is deleted.
    pub fn prune(&self, max_bytes: u64, dry_run: bool) -> Result<PruneReport> {
        let dir = self.models_dir();
        let mut report = PruneReport { max_bytes, dry_run, ..Default::default() };
        let now = SystemTime::now();
        let mut models = Vec::new();
        for entry in self.catalog().entries() {
            let name = entry.display_name();
            let unit = dir.unit(entry);
            let locked = unit.parts().iter().any(|(_, files)| files.is_locked());
            for partial in unit.parts().iter().flat_map(|(_, files)| files.partials()) {
                let Some(bytes) = partial.partial_bytes() else { continue };
                let age =
                    partial.partial_modified().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                report.bytes_before = report.bytes_before.saturating_add(bytes);
                if age > STALE_PARTIAL && !locked {
                    if !dry_run {
                        partial.discard_partial();
                    }
                    report.stale_partials.push(Pruned { name: name.clone(), size_bytes: bytes });
                } else {
                    report.bytes_after = report.bytes_after.saturating_add(bytes);
                    report.partials.push(Pruned { name: name.clone(), size_bytes: bytes });
                }
            }
            if unit.status() == Status::Downloaded {
                report.bytes_before = report.bytes_before.saturating_add(unit.size());
                report.bytes_after = report.bytes_after.saturating_add(unit.size());
                models.push((entry, unit));
            } else {
                // The verified files of a multi-file model not yet whole: kept, as a partial
                // download is (the next download needs only the rest).
                let have: u64 = unit
                    .parts()
                    .iter()
                    .filter(|(_, f)| f.status() == Status::Downloaded)
                    .map(|(e, _)| e.size_bytes)
                    .fold(0, u64::saturating_add);
                if have > 0 {
                    report.bytes_before = report.bytes_before.saturating_add(have);
                    report.bytes_after = report.bytes_after.saturating_add(have);
                    report.partials.push(Pruned { name: name.clone(), size_bytes: have });
                }
            }
        }
        report.untracked = self.untracked_files();
        let untracked = report.untracked.iter().map(|f| f.size_bytes).fold(0, u64::saturating_add);
        report.bytes_before = report.bytes_before.saturating_add(untracked);
        report.bytes_after = report.bytes_after.saturating_add(untracked);
        models.sort_by_key(|(_, unit)| unit.first().last_used().unwrap_or(SystemTime::UNIX_EPOCH));
        for (entry, unit) in models {
            if report.bytes_after <= max_bytes {
                break;
            }
            let name = entry.display_name();
            if dir.is_pinned(entry) {
                report.pinned.push(name);
                continue;
            }
            if unit.parts().iter().any(|(_, files)| files.is_locked()) {
                report.locked.push(name);
                continue;
            }
            if !dry_run {
                unit.remove()?;
            }
            report.bytes_after -= unit.size();
            report.removed.push(Pruned { name, size_bytes: unit.size() });
        }
        Ok(report)
    }

    /// Pins a model: `prune` never removes it. Returns `false` when it was pinned already.
    pub fn pin(&self, name: &str) -> Result<bool> {
        self.models_dir().set_pinned(self.resolve(name)?, true)
    }

    /// Unpins a model. Returns `false` when it was not pinned.
    pub fn unpin(&self, name: &str) -> Result<bool> {
        self.models_dir().set_pinned(self.resolve(name)?, false)
    }
}
