//! `strata-model unregister NAME [--remove-file]`: removes a custom model from the custom
//! catalog; its file stays (untracked) unless `--remove-file`.

use strata_model::{Registry, Status};

use crate::exit::Failure;
use crate::json::Unregistered;
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, name: &str, remove_file: bool) -> Result<(), Failure> {
    let (entry, removed) =
        if remove_file { registry.unregister_and_remove(name)? } else { (registry.unregister(name)?, false) };
    let info = registry.info_of(&entry);
    let left = (info.state != Status::NotDownloaded).then(|| info.path.clone());
    if ui.json {
        return emit_json(&Unregistered {
            name: entry.display_name(),
            unregistered: true,
            file_removed: removed,
            file_left: left,
        });
    }
    let mut out = Out::new(&format!("unregistered {}\n", entry.display_name()));
    if removed {
        out.push_str("removed its file ");
        out.push_path(&info.path);
        out.push_str("\n");
    }
    emit(&out)?;
    if let Some(p) = left {
        ui.note(&format!(
            "its file stays, untracked: {} (`strata-model list` shows it; delete it by hand, \
             or pass --remove-file next time)",
            p.display()
        ));
    }
    Ok(())
}
