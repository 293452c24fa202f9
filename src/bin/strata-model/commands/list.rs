//! `strata-model list`: every catalog model and its status.

use strata_model::{ByteSize, Registry, Status};

use crate::exit::Failure;
use crate::output::{emit, emit_json, Table, Ui};

pub fn run(registry: &Registry, ui: &Ui) -> Result<(), Failure> {
    let models = registry.list();
    if ui.json {
        return emit_json(&models);
    }
    let mut table = Table::new(["NAME", "ARCH", "DIM", "SIZE", "STATUS"], [false, false, true, true, false]);
    for m in &models {
        let dim =
            if m.entry.embedding_dim == 0 { "-".to_string() } else { m.entry.embedding_dim.to_string() };
        let status = match m.reused_from {
            Some(tool) => format!("{} (from {tool})", m.status_label()),
            None => m.status_label(),
        };
        table.push([
            m.name.clone(),
            m.entry.arch.to_string(),
            dim,
            ByteSize(m.entry.size_bytes).to_string(),
            status,
        ]);
    }
    let mut out = String::from("Available models:\n\n");
    out.push_str(&table.render(|i, status| match models[i].state {
        Status::Downloaded => ui.paint(status, "32"),
        Status::Partial { .. } => ui.paint(status, "33"),
        Status::Invalid { .. } => ui.paint(status, "31"),
        Status::NotDownloaded => status.to_string(),
    }));
    out.push_str(&format!("\nModels directory: {}\n", registry.models_dir().root().display()));
    let custom = registry.catalog().custom_entries().count();
    if custom > 0 {
        out.push_str(&format!(
            "Custom catalog: {} ({custom} model{})\n",
            registry.config().catalog_file().display(),
            if custom == 1 { "" } else { "s" }
        ));
    }
    emit(&out)
}
