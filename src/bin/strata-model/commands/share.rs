//! `strata-model share NAME… | --all`: makes downloaded models visible in the Hugging Face
//! hub cache.

use strata_model::{Registry, ShareAction, SnapshotEntry};

use crate::exit::Failure;
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String], dry_run: bool) -> Result<(), Failure> {
    let reports = registry.share(names, dry_run)?;
    if reports.iter().any(|r| r.snapshot_entry.is_some_and(|e| e != SnapshotEntry::SymbolicLink)) {
        let cache = registry.config().hf_hub_cache().map(|c| format!(" {}", c.display())).unwrap_or_default();
        ui.note(&format!(
            "symbolic links fail in the Hugging Face cache{cache}: each new snapshot entry holds the bytes itself \
             (a hard link of the blob, else the blob moved there, else a copy), as huggingface_hub makes them there"
        ));
    }
    if ui.json {
        return emit_json(&reports);
    }
    let mut out = String::new();
    for r in &reports {
        let verb = match r.action {
            // The usual entry, a symbolic link to the blob, goes without saying: the blob's
            // method is shown. Another entry is named.
            ShareAction::Shared(method) => match r.snapshot_entry {
                None | Some(SnapshotEntry::SymbolicLink) => format!("shared ({})", method.as_str()),
                Some(how) => format!("shared (entry: {})", how.as_str()),
            },
            ShareAction::Present => "present".to_string(),
            ShareAction::WouldShare => "would share".to_string(),
        };
        out.push_str(&format!("{verb:<20} {:<20} {}\n", r.name, r.snapshot.display()));
    }
    if reports.is_empty() {
        out.push_str("no model is downloaded; nothing to share\n");
    }
    emit(&out)
}
