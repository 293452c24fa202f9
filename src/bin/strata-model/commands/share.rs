//! `strata-model share NAME… | --all`: makes downloaded models visible in the Hugging Face
//! hub cache.

use strata_model::{Registry, ShareAction};

use crate::exit::Failure;
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String], dry_run: bool) -> Result<(), Failure> {
    let reports = registry.share(names, dry_run)?;
    if ui.json {
        return emit_json(&reports);
    }
    let mut out = String::new();
    for r in &reports {
        let verb = match r.action {
            ShareAction::Shared(method) => format!("shared ({})", method.as_str()),
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
