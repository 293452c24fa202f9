//! `strata-model unregister NAME`: removes a custom model from the custom catalog (its file
//! stays).

use strata_model::{Registry, Status};

use crate::exit::Failure;
use crate::json::Unregistered;
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, name: &str) -> Result<(), Failure> {
    let entry = registry.unregister(name)?;
    let info = registry.info_of(&entry);
    let left = (info.state != Status::NotDownloaded).then(|| info.path.clone());
    if ui.json {
        return emit_json(&Unregistered { name: entry.display_name(), unregistered: true, file_left: left });
    }
    let mut out = format!("unregistered {}\n", entry.display_name());
    if let Some(p) = left {
        out.push_str(&format!(
            "note: its file was left in place: {} (delete it by hand if unwanted)\n",
            p.display()
        ));
    }
    emit(&out)
}
