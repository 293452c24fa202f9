//! `strata-model alias set|remove|list`: the user's own names for models.

use strata_model::Registry;

use crate::cli::AliasCommand;
use crate::exit::Failure;
use crate::json::{AliasRemoved, AliasSet};
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui, action: &AliasCommand) -> Result<(), Failure> {
    match action {
        AliasCommand::Set { alias, target } => {
            let (alias, target) = registry.set_alias(alias, target)?;
            if ui.json {
                return emit_json(&AliasSet { alias, target });
            }
            emit(&format!("{alias} -> {target}\n"))
        }
        AliasCommand::Remove { alias } => {
            let target = registry.remove_alias(alias)?;
            if ui.json {
                return emit_json(&AliasRemoved { alias: alias.clone(), removed: target });
            }
            emit(&format!("removed {alias} (was -> {target})\n"))
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
