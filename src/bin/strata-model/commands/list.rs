//! `strata-model list`: every catalog model and its status, the `.gguf` files no entry names,
//! and a total.

use strata_model::{ByteSize, ModelInfo, Origin, Registry, Status};

use crate::exit::Failure;
use crate::json::List;
use crate::output::{emit, emit_json, Out, Table, Ui};

pub fn run(registry: &Registry, ui: &Ui, downloaded_only: bool) -> Result<(), Failure> {
    let all = registry.list();
    let untracked = registry.untracked_files();
    let doc = List::new(&all, untracked);
    let models: Vec<ModelInfo> =
        all.into_iter().filter(|m| !downloaded_only || m.state == Status::Downloaded).collect();
    if ui.json {
        return emit_json(&List { models, ..doc });
    }
    let user_aliases = registry.catalog().user_aliases();
    let notes: Vec<String> = models
        .iter()
        .map(|m| {
            let mut notes = Vec::new();
            if m.entry.origin == Origin::Custom {
                notes.push("custom".to_string());
            }
            if m.pinned {
                notes.push("pinned".to_string());
            }
            let mine: Vec<&str> = m
                .aliases
                .iter()
                .filter(|a| user_aliases.iter().any(|(u, _)| u == *a))
                .map(String::as_str)
                .collect();
            if !mine.is_empty() && m.entry.default_variant {
                notes.push(format!("alias {}", mine.join(", ")));
            }
            notes.join(", ")
        })
        .collect();
    let mut columns =
        vec![("NAME", false), ("ARCH", false), ("DIM", true), ("SIZE", true), ("STATUS", false)];
    let with_notes = notes.iter().any(|n| !n.is_empty());
    if with_notes {
        columns.push(("NOTES", false));
    }
    let mut table = Table::new(&columns);
    for (m, note) in models.iter().zip(&notes) {
        let dim =
            if m.entry.embedding_dim == 0 { "-".to_string() } else { m.entry.embedding_dim.to_string() };
        let status = match m.reused_from {
            Some(tool) => format!("{} (from {tool})", m.status_label()),
            None => m.status_label(),
        };
        let mut row = vec![
            m.name.clone(),
            m.entry.arch.to_string(),
            dim,
            ByteSize(m.entry.total_size()).to_string(),
            status,
        ];
        if with_notes {
            row.push(note.clone());
        }
        table.push(row);
    }
    let mut out = Out::new(if downloaded_only { "Downloaded models:\n\n" } else { "Available models:\n\n" });
    if models.is_empty() {
        out.push_str("  (none)\n");
    } else {
        const STATUS: usize = 4;
        out.push_str(&table.render(|row, col, cell| match (col, models[row].state) {
            (STATUS, Status::Downloaded) => ui.paint(&cell, "32"),
            (STATUS, Status::Partial { .. }) => ui.paint(&cell, "33"),
            (STATUS, Status::Invalid { .. }) => ui.paint(&cell, "31"),
            _ => cell,
        }));
    }
    if !doc.untracked.is_empty() {
        out.push_str("\nUntracked files (no catalog entry names them; register or delete them):\n");
        let mut files = Table::new(&[("FILE", false), ("SIZE", true)]);
        for f in &doc.untracked {
            files.push(vec![f.file.clone(), ByteSize(f.size_bytes).to_string()]);
        }
        out.push_str(&files.render(|_, _, cell| cell));
    }
    out.push_str("\n");
    out.push_str(&doc.total_line());
    out.push_str("Models directory: ");
    out.push_path(registry.models_dir().root());
    out.push_str("\n");
    let custom = registry.catalog().custom_entries().count();
    if custom > 0 {
        out.push_str("Custom catalog: ");
        out.push_path(&registry.config().catalog_file());
        out.push_str(&format!(" ({custom} model{})\n", if custom == 1 { "" } else { "s" }));
    }
    emit(&out)
}
