//! `strata-model path NAME`: the local path of a downloaded model (exit 4 when it is not).

use strata_model::{Registry, RegistryError};

use crate::exit::Failure;
use crate::json::PathDoc;
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, name: &str) -> Result<(), Failure> {
    let entry = registry.resolve(name)?;
    let found = registry.path(name)?;
    let path = registry.models_dir().model_path(entry);
    if ui.json {
        emit_json(&PathDoc { name: entry.display_name(), path: path.clone(), downloaded: found.is_some() })?;
    } else if let Some(p) = &found {
        emit(&format!("{}\n", p.display()))?;
    }
    match found {
        Some(_) => Ok(()),
        None => Err(RegistryError::NotDownloaded { model: entry.display_name(), path }.into()),
    }
}
