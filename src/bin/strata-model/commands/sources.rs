//! `strata-model sources` (alias `doctor`): the models directory, offline state, and each
//! source in order with whether it answers.

use strata_model::{Registry, TokenSource};

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
    let token = match config.resolve_hf_token().1 {
        TokenSource::Variable => Some("HF_TOKEN".to_string()),
        TokenSource::File(path) => Some(path.display().to_string()),
        TokenSource::None => None,
    };
    let caches = registry.cache_locations();
    if ui.json {
        return emit_json(&Sources {
            models_dir: dir.to_path_buf(),
            catalog_file: config.catalog_file(),
            custom_models: custom,
            offline: config.offline(),
            token,
            hf_hub_cache: config.hf_hub_cache().map(|p| p.to_path_buf()),
            sources: checks,
            caches,
        });
    }
    let mut out = format!("Models directory: {}", dir.display());
    out.push_str(if dir.is_dir() { "\n" } else { " (not created yet)\n" });
    out.push_str(&format!("Custom catalog:   {} ({custom} models)\n", config.catalog_file().display()));
    out.push_str(&format!(
        "Offline:          {}\n",
        if config.offline() { "yes (no network source is used)" } else { "no" }
    ));
    out.push_str(&format!(
        "Hub token:        {}\n",
        token.map_or("none (set HF_TOKEN, or run `hf auth login`)".into(), |t| format!("from {t}"))
    ));
    if let Some(cache) = config.hf_hub_cache() {
        out.push_str(&format!("Shares into:      {} (strata-model share)\n", cache.display()));
    }
    out.push_str("\nSources, in order:\n");
    for (i, c) in checks.iter().enumerate() {
        let status =
            if c.ok { ui.paint(&c.detail, "32") } else { ui.paint(&format!("FAILED: {}", c.detail), "31") };
        out.push_str(&format!("  {}. {}\n     {status}\n", i + 1, c.source));
    }
    if checks.is_empty() {
        out.push_str("  none: offline with no local mirror\n");
    }
    out.push_str("\nOther tools' caches, looked in before any source (by name or content, then hashed):\n");
    if caches.is_empty() {
        out.push_str("  none (STRATA_REUSE_CACHES=0)\n");
    }
    for c in &caches {
        let state = match (c.exists, c.models.len()) {
            (false, _) => "absent".to_string(),
            (true, 0) => "no catalog model".to_string(),
            (true, _) => ui.paint(&format!("holds {}", c.models.join(", ")), "32"),
        };
        out.push_str(&format!("  {:<18} {} ({}): {state}\n", c.tool.label(), c.path.display(), c.from));
    }
    emit(&out)
}
