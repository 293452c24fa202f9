//! `strata-model remove NAME…`: deletes each model's file, any partial download, and its side
//! files.

use strata_model::Registry;

use crate::exit::Failure;
use crate::json::Removed;
use crate::output::{Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String]) -> Result<(), Failure> {
    super::each(ui, names, "removed", |name| {
        let entry = registry.resolve(name)?;
        let removed = registry.remove(name)?;
        let path = registry.models_dir().model_path(entry);
        let text = if removed {
            let mut out = Out::new(&format!("removed {} (", entry.display_name()));
            out.push_path(&path);
            out.push_str(")\n");
            out
        } else {
            Out::new(&format!("{} was not downloaded; nothing to remove\n", entry.display_name()))
        };
        Ok((Removed { name: entry.display_name(), removed, path }, text))
    })
}
