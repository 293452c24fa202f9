//! `strata-model sources` (alias `doctor`): the models directory, offline state, and each
//! source in order with whether it answers.

use strata_model::{Registry, TokenSource};

use crate::exit::Failure;
use crate::json::{SourceCheck, Sources};
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: &Registry, ui: &Ui) -> Result<(), Failure> {
    let config = registry.config();
    let sources = strata_model::sources::from_config(config)?;
    // One catalog file each source should have: a downloaded model's, else a custom model's
    // (a mirror may hold only some built-in models; those it is used for are the test).
    let list = registry.list();
    let probe = list
        .iter()
        .find(|m| m.state == strata_model::Status::Downloaded)
        .or_else(|| list.iter().find(|m| m.entry.origin == strata_model::Origin::Custom))
        .map(|m| &m.entry);
    let checks: Vec<SourceCheck> = sources
        .iter()
        .map(|s| {
            let (ok, detail) = match (s.check(), probe) {
                (Ok(d), Some(entry)) => match has_file(s.as_ref(), entry) {
                    Ok(()) => (true, format!("{d}; has {}", entry.hf_filename)),
                    Err(why) => (false, format!("{d}, but {why}")),
                },
                (Ok(d), None) => (true, d),
                (Err(d), _) => (false, d),
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
        emit_json(&Sources {
            models_dir: dir.to_path_buf(),
            catalog_file: config.catalog_file(),
            custom_models: custom,
            offline: config.offline(),
            token,
            hf_hub_cache: config.hf_hub_cache().map(|p| p.to_path_buf()),
            sources: checks.clone(),
            caches,
        })?;
        return failed(&checks);
    }
    let mut out = Out::new("Models directory: ");
    out.push_path(dir);
    out.push_str(if dir.is_dir() { "\n" } else { " (not created yet)\n" });
    let models = if custom == 1 { "model" } else { "models" };
    out.push_str("Custom catalog:   ");
    out.push_path(&config.catalog_file());
    out.push_str(&format!(" ({custom} custom {models})\n"));
    out.push_str(&format!(
        "Offline:          {}\n",
        if config.offline() { "yes (no network source is used)" } else { "no" }
    ));
    out.push_str(&format!(
        "Hub token:        {}\n",
        token.map_or("none (set HF_TOKEN, or run `hf auth login`)".into(), |t| format!("from {t}"))
    ));
    if let Some(cache) = config.hf_hub_cache() {
        out.push_str("Shares into:      ");
        out.push_path(cache);
        out.push_str(" (strata-model share)\n");
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
        out.push_str(&format!("  {:<18} ", c.tool.label()));
        out.push_path(&c.path);
        out.push_str(&format!(" ({}): {state}\n", c.from));
    }
    emit(&out)?;
    failed(&checks)
}

/// Whether `source` serves `entry`'s file: its first byte is asked for.
fn has_file(source: &dyn strata_model::ModelSource, entry: &strata_model::ModelEntry) -> Result<(), String> {
    let request = strata_model::FetchRequest { offset: 0, end: Some(1), if_range: None };
    match source.fetch(entry, &request) {
        Ok(mut fetch) => {
            let _ = std::io::Read::read(&mut fetch.body, &mut [0u8; 1]);
            Ok(())
        }
        Err(e) if e.is_not_found() => Err(format!(
            "it has no {} ({}): check the location's path or prefix",
            entry.hf_filename,
            strata_model::Report::new(&e)
        )),
        Err(e) => Err(format!("fetching {} failed: {}", entry.hf_filename, strata_model::Report::new(&e))),
    }
}

/// The command fails (exit 5) when a source failed its check.
fn failed(checks: &[SourceCheck]) -> Result<(), Failure> {
    match checks.iter().filter(|c| !c.ok).count() {
        0 => Ok(()),
        n => Err(Failure::Message(
            format!("{n} of {} sources failed their check", checks.len()),
            crate::exit::code::NETWORK,
        )),
    }
}
