//! Keeping the models directory within a disk budget: least-recently-used models go first,
//! never a pinned one nor one another process holds locked; partial downloads untouched for
//! a week go too.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::Registry;
use crate::error::Result;
use crate::store::Status;

/// Partial downloads older than this are stale.
pub const STALE_PARTIAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What `prune` removed (or, in a dry run, would remove) and kept.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Models removed, least recently used first: (name, bytes).
    pub removed: Vec<(String, u64)>,
    /// Stale partial downloads removed: (name, bytes).
    pub stale_partials: Vec<(String, u64)>,
    /// Models kept because they are pinned.
    pub pinned: Vec<String>,
    /// Models kept because another process holds their lock.
    pub locked: Vec<String>,
    /// Bytes of models and partials before.
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
    /// models directory holds at most `max_bytes` of models and partial downloads, and
    /// removes partial downloads untouched for a week. Pinned models and models another
    /// process holds locked are kept. With `dry_run`, nothing is deleted.
    pub fn prune(&self, max_bytes: u64, dry_run: bool) -> Result<PruneReport> {
        let dir = self.models_dir();
        let mut report = PruneReport { max_bytes, dry_run, ..Default::default() };
        let now = SystemTime::now();
        let mut models = Vec::new();
        for entry in self.catalog().entries() {
            let name = entry.display_name();
            let files = dir.files(entry);
            if let Some(bytes) = files.partial_bytes() {
                let age =
                    files.partial_modified().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                report.bytes_before += bytes;
                if age > STALE_PARTIAL && !files.is_locked() {
                    if !dry_run {
                        files.discard_partial();
                    }
                    report.stale_partials.push((name.clone(), bytes));
                } else {
                    report.bytes_after += bytes;
                }
            }
            if files.status() == Status::Downloaded {
                report.bytes_before += entry.size_bytes;
                report.bytes_after += entry.size_bytes;
                models.push((entry, files));
            }
        }
        models.sort_by_key(|(_, files)| files.last_used().unwrap_or(SystemTime::UNIX_EPOCH));
        for (entry, files) in models {
            if report.bytes_after <= max_bytes {
                break;
            }
            let name = entry.display_name();
            if dir.is_pinned(entry) {
                report.pinned.push(name);
                continue;
            }
            if files.is_locked() {
                report.locked.push(name);
                continue;
            }
            if !dry_run {
                files.remove()?;
            }
            report.bytes_after -= entry.size_bytes;
            report.removed.push((name, entry.size_bytes));
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
