//! `strata-model path NAME…`: the local path of each downloaded model (exit 4 when one is
//! not downloaded).

use strata_model::{Registry, RegistryError};

use crate::exit::{exit_code, Failure};
use crate::json::PathDoc;
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String]) -> Result<(), Failure> {
    let mut docs = Vec::new();
    let mut missing: Vec<RegistryError> = Vec::new();
    for name in names {
        let entry = registry.resolve(name)?;
        let found = registry.path(name)?;
        let path = registry.models_dir().model_path(entry);
        match &found {
            Some(p) if !ui.json => emit(Out::line(p))?,
            Some(_) => {}
            None => {
                let unit = registry.models_dir().unit(entry);
                let files = unit.missing().map_or_else(|| unit.first(), |(_, f)| f);
                missing.push(files.not_downloaded(entry.display_name()));
            }
        }
        let files = registry.info_of(entry).files;
        docs.push(PathDoc { name: entry.display_name(), path, downloaded: found.is_some(), files });
    }
    if ui.json {
        match docs.len() {
            1 => emit_json(&docs[0])?,
            _ => emit_json(&docs)?,
        }
    }
    match missing.len() {
        0 => Ok(()),
        _ if names.len() == 1 => Err(missing.remove(0).into()),
        n => {
            for e in &missing {
                eprintln!("strata-model: error: {}", e.report());
            }
            Err(Failure::Message(
                format!("{n} of {} models are not downloaded", names.len()),
                exit_code(&missing[0]),
            ))
        }
    }
}
