//! `strata-model verify [NAME… | --all]`: re-hashes downloaded models in full.

use strata_model::{Registry, RegistryError, Status};

use crate::exit::{exit_code, Failure};
use crate::json::Checked;
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String], all: bool) -> Result<(), Failure> {
    let names: Vec<String> = if all || names.is_empty() {
        registry.list().into_iter().filter(|m| m.state == Status::Downloaded).map(|m| m.name).collect()
    } else {
        names.to_vec()
    };
    let mut results = Vec::new();
    let mut out = Out::default();
    let mut failed = 0;
    let mut worst: Option<RegistryError> = None;
    for name in &names {
        let result = registry.verify(name);
        results.push(Checked::of(name, &result));
        match result {
            Ok(path) => {
                out.push_str(&format!("ok      {name}  "));
                out.push_path(&path);
                out.push_str("\n");
                let entry = registry.resolve(name)?;
                if let Ok(header) = registry.read_header(name) {
                    for warning in Registry::header_mismatches(entry, &header) {
                        out.push_str(&format!("        warning: {warning}\n"));
                    }
                }
            }
            Err(e) => {
                out.push_str(&format!("FAILED  {name}: {}\n", e.report()));
                failed += 1;
                worst.get_or_insert(e);
            }
        }
    }
    if ui.json {
        emit_json(&results)?;
    } else if names.is_empty() {
        emit("no model is downloaded; nothing to verify\n")?;
    } else {
        emit(&out)?;
    }
    match worst {
        None => Ok(()),
        Some(e) => Err(Failure::Message(
            format!("{failed} of {} models failed verification", names.len()),
            exit_code(&e),
        )),
    }
}
