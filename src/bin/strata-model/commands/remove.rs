//! `strata-model remove NAME`: deletes a model's file, any partial download, and its side
//! files.

use strata_model::Registry;

use crate::exit::Failure;
use crate::json::Removed;
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, name: &str) -> Result<(), Failure> {
    let entry = registry.resolve(name)?;
    let removed = registry.remove(name)?;
    let path = registry.models_dir().model_path(entry);
    if ui.json {
        emit_json(&Removed { name: entry.display_name(), removed, path })
    } else if removed {
        emit(&format!("removed {} ({})\n", entry.display_name(), path.display()))
    } else {
        emit(&format!("{} was not downloaded; nothing to remove\n", entry.display_name()))
    }
}
