//! `strata-model download NAME… | --all`: downloads (verified) every model at once, under one
//! connection budget, and prints each path in the order given.

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
    // Every model at once, under one connection budget.
    let all_results = registry.ensure_many(&names.iter().map(String::as_str).collect::<Vec<_>>());
    crate::progress::clear();
    for (name, result) in names.iter().zip(all_results) {
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
