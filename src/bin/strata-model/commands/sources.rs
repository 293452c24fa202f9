//! `strata-model sources` (alias `doctor`): the models directory, offline state, and each
//! source in order with whether it answers.

use strata_model::Registry;

use crate::exit::Failure;
use crate::json::{SourceCheck, Sources};
use crate::output::{emit, emit_json, Ui};

pub fn run(registry: &Registry, ui: &Ui) -> Result<(), Failure> {
    let config = registry.config();
    let sources = strata_model::sources::from_config(config)?;
    let checks: Vec<SourceCheck> = sources
        .iter()
        .map(|s| {
            let (ok, detail) = match s.check() {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            SourceCheck { source: s.to_string(), ok, detail }
        })
        .collect();
    let dir = registry.models_dir().root();
    let custom = registry.catalog().custom_entries().count();
    if ui.json {
        return emit_json(&Sources {
            models_dir: dir.to_path_buf(),
            catalog_file: config.catalog_file(),
            custom_models: custom,
            offline: config.offline(),
            sources: checks,
        });
    }
    let mut out = format!("Models directory: {}", dir.display());
    out.push_str(if dir.is_dir() { "\n" } else { " (not created yet)\n" });
    out.push_str(&format!("Custom catalog:   {} ({custom} models)\n", config.catalog_file().display()));
    out.push_str(&format!(
        "Offline:          {}\n\nSources, in order:\n",
        if config.offline() { "yes (no network source is used)" } else { "no" }
    ));
    for (i, c) in checks.iter().enumerate() {
        let status =
            if c.ok { ui.paint(&c.detail, "32") } else { ui.paint(&format!("FAILED: {}", c.detail), "31") };
        out.push_str(&format!("  {}. {}\n     {status}\n", i + 1, c.source));
    }
    if checks.is_empty() {
        out.push_str("  none: offline with no local mirror\n");
    }
    emit(&out)
}
