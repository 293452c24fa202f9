//! `strata-model alias set|remove|list`: the user's own names for models.

use strata_model::Registry;

use crate::cli::AliasCommand;
use crate::exit::Failure;
use crate::json::{AliasRemoved, AliasSet};
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, action: &AliasCommand) -> Result<(), Failure> {
    match action {
        AliasCommand::Set { alias, target } => {
            let lower = alias.trim().to_ascii_lowercase();
            let before =
                registry.catalog().user_aliases().iter().find(|(a, _)| *a == lower).map(|(_, t)| t.clone());
            let given = alias.clone();
            let (alias, target) = registry.set_alias(alias, target).map_err(|e| match e {
                // The alias or its target as given is wrong, not the file: a usage error.
                strata_model::RegistryError::InvalidCatalog {
                    field: Some(f),
                    reason,
                    entry: Some(entry),
                    ..
                } if f == "aliases" && entry.starts_with("aliases.") => Failure::Message(
                    format!("alias set {alias} {target}: {reason}"),
                    crate::exit::code::USAGE,
                ),
                other => other.into(),
            })?;
            ui.note_lowercased("alias", &given, &alias);
            let replaced = before.filter(|b| *b != target);
            if ui.json {
                return emit_json(&AliasSet { alias, target, replaced });
            }
            match replaced {
                Some(old) => emit(format!("{alias} -> {target} (was -> {old})\n")),
                None => emit(format!("{alias} -> {target}\n")),
            }
        }
        AliasCommand::Remove { alias } => {
            let target = registry.remove_alias(alias)?;
            if ui.json {
                return emit_json(&AliasRemoved { alias: alias.clone(), removed: target });
            }
            emit(format!("removed {alias} (was -> {target})\n"))
        }
        AliasCommand::List => {
            let aliases = registry.catalog().user_aliases();
            if ui.json {
                let map: std::collections::BTreeMap<&str, &str> =
                    aliases.iter().map(|(a, t)| (a.as_str(), t.as_str())).collect();
                return emit_json(&map);
            }
            let mut out: String = aliases.iter().map(|(a, t)| format!("{a} -> {t}\n")).collect();
            if out.is_empty() {
                out = "no aliases; add one with `strata-model alias set NAME MODEL`\n".into();
            }
            emit(&out)
        }
    }
}
