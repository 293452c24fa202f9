//! `strata-model prune --max-size SIZE`: least-recently-used models go until the budget fits.

use strata_model::{ByteSize, Registry};

use crate::exit::Failure;
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, max_size: u64, dry_run: bool) -> Result<(), Failure> {
    let r = registry.prune(max_size, dry_run)?;
    if ui.json {
        return emit_json(&r);
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    let mut out = String::new();
    for p in &r.stale_partials {
        out.push_str(&format!("{verb} stale partial of {} ({})\n", p.name, ByteSize(p.size_bytes)));
    }
    for p in &r.removed {
        out.push_str(&format!("{verb} {} ({})\n", p.name, ByteSize(p.size_bytes)));
    }
    for name in &r.pinned {
        out.push_str(&format!("kept {name} (pinned)\n"));
    }
    for name in &r.locked {
        out.push_str(&format!("kept {name} (in use by another process)\n"));
    }
    for f in &r.untracked {
        out.push_str(&format!(
            "kept {} ({}, untracked: prune never deletes it)\n",
            f.file,
            ByteSize(f.size_bytes)
        ));
    }
    out.push_str(&format!(
        "{} → {} (budget {})",
        ByteSize(r.bytes_before),
        ByteSize(r.bytes_after),
        ByteSize(r.max_bytes)
    ));
    if r.bytes_after > r.max_bytes {
        // What is left over the budget, and what the user can do about each.
        let mut ways = vec!["raise the budget"];
        if !r.pinned.is_empty() {
            ways.push("unpin models");
        }
        if !r.untracked.is_empty() {
            ways.push("delete untracked files");
        }
        if !r.partials.is_empty() {
            ways.push("remove partial downloads (`strata-model remove NAME`)");
        }
        if !r.locked.is_empty() {
            ways.push("wait for the downloads in progress");
        }
        out.push_str(&format!("; still over budget: {}", ways.join(", ")));
    }
    out.push('\n');
    emit(&out)
}
