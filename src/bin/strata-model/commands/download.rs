//! `strata-model download NAME… | --all`: downloads (verified) and prints each path.

use strata_model::{Registry, RegistryError};

use crate::exit::{exit_code, Failure};
use crate::json::Checked;
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: Registry, ui: &Ui, names: &[String], all: bool, quiet: bool) -> Result<(), Failure> {
    let names: Vec<String> =
        if all { registry.list().into_iter().map(|m| m.name).collect() } else { names.to_vec() };
    let registry = match crate::progress::reporter(quiet, ui.json) {
        Some(r) => registry.with_progress(r),
        None => registry,
    };
    let mut results = Vec::new();
    let mut failed = 0;
    let mut first_error: Option<RegistryError> = None;
    for name in &names {
        let result = registry.ensure(name);
        crate::progress::clear();
        results.push(Checked::of(name, &result));
        match result {
            Ok(path) => {
                if !ui.json {
                    emit(Out::line(&path))?;
                }
            }
            Err(e) => {
                if names.len() > 1 && !ui.json {
                    eprintln!("strata-model: error: {name}: {}", e.report());
                }
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if ui.json {
        emit_json(&results)?;
    }
    match first_error {
        None => Ok(()),
        Some(e) if names.len() == 1 => Err(e.into()),
        Some(e) => {
            Err(Failure::Message(format!("{failed} of {} downloads failed", names.len()), exit_code(&e)))
        }
    }
}
