//! `strata-model pin NAME` and `unpin NAME`: prune never removes a pinned model.

use strata_model::Registry;

use crate::exit::Failure;
use crate::json::Pinned;
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, name: &str, pin: bool) -> Result<(), Failure> {
    if pin {
        registry.pin(name)?
    } else {
        registry.unpin(name)?
    }
    let entry = registry.resolve(name)?;
    if ui.json {
        return emit_json(&Pinned { name: entry.display_name(), pinned: pin });
    }
    emit(&format!("{} {}\n", if pin { "pinned" } else { "unpinned" }, entry.display_name()))
}
