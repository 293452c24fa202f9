//! One module per command: each takes the registry and the output settings, calls the
//! library, and renders the result as text or as its JSON document (see `json.rs`).

pub mod add;
pub mod alias;
pub mod catalog;
pub mod download;
pub mod info;
pub mod list;
pub mod mirror;
pub mod outdated;
pub mod path;
pub mod pin;
pub mod prune;
pub mod register;
pub mod remove;
pub mod share;
pub mod sources;
pub mod unregister;
pub mod update;
pub mod verify;

use strata_model::RegistryError;

use crate::exit::{exit_code, Failure};
use crate::output::{emit, emit_json, Out, Ui};

/// Runs `one` on each name. One name: its text or JSON object, or its error, as before.
/// Several: each is done even when another fails; the JSON is an array; each failure is said
/// on stderr, and the command fails with the first failure's exit code.
pub fn each<T: serde::Serialize>(
    ui: &Ui,
    names: &[String],
    verb: &str,
    mut one: impl FnMut(&str) -> Result<(T, Out), RegistryError>,
) -> Result<(), Failure> {
    let mut docs = Vec::new();
    let mut first: Option<RegistryError> = None;
    let mut failed = 0;
    for name in names {
        match one(name) {
            Ok((doc, text)) => {
                if !ui.json {
                    emit(&text)?;
                }
                docs.push(doc);
            }
            Err(e) if names.len() == 1 => return Err(e.into()),
            Err(e) => {
                eprintln!("strata-model: error: {name}: {}", e.report());
                failed += 1;
                first.get_or_insert(e);
            }
        }
    }
    if ui.json {
        match docs.len() {
            1 if names.len() == 1 => emit_json(&docs[0])?,
            _ => emit_json(&docs)?,
        }
    }
    match first {
        None => Ok(()),
        Some(e) => {
            Err(Failure::Message(format!("{failed} of {} could not be {verb}", names.len()), exit_code(&e)))
        }
    }
}
