//! `strata-model info NAME…`: each model's details, and its GGUF header when downloaded.

use strata_model::{ByteSize, Registry, Status};

use crate::exit::Failure;
use crate::json::Info;
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String]) -> Result<(), Failure> {
    if ui.json {
        let docs: Vec<Info> = names.iter().map(|n| document(registry, n)).collect::<Result<_, _>>()?;
        return match docs.len() {
            1 => emit_json(&docs[0]),
            _ => emit_json(&docs),
        };
    }
    let mut out = Out::default();
    for name in names {
        if !out.is_empty() {
            out.push_str("\n");
        }
        text(registry, name, &mut out)?;
    }
    emit(&out)
}

fn document(registry: &Registry, name: &str) -> Result<Info, strata_model::RegistryError> {
    let m = registry.info(name)?;
    let (gguf, gguf_error) = match (m.state == Status::Downloaded).then(|| registry.read_header(name)) {
        Some(Ok(h)) => (Some(h), None),
        Some(Err(e)) => (None, Some(e.report().to_string())),
        None => (None, None),
    };
    Ok(Info { model: m, gguf, gguf_error })
}

fn text(registry: &Registry, name: &str, out: &mut Out) -> Result<(), strata_model::RegistryError> {
    let m = registry.info(name)?;
    let header = (m.state == Status::Downloaded).then(|| registry.read_header(name));
    let e = &m.entry;
    let variants: Vec<String> =
        registry.catalog().variants(&e.name).iter().map(|v| v.display_name()).collect();
    let description = if e.description.is_empty() { "custom model" } else { &e.description };
    out.push_str(&format!("{} ({})\n  {description}\n\n", m.name, e.quant));
    let field = |out: &mut Out, k: &str, v: String| out.push_str(&format!("  {k:<14} {v}\n"));
    let mut field = |k: &str, v: String| field(out, k, v);
    match &e.oci {
        Some(r) => {
            field("registry", format!("{r} (adopted from an OCI registry; downloads from it by digest)"))
        }
        None => field("repository", format!("{} @ {}", e.hf_repo, e.revision)),
    }
    if e.is_multi_file() {
        for f in &m.files {
            field(
                "file",
                format!(
                    "{} {} ({}, sha256 {}): {}",
                    f.role.as_str(),
                    f.repo_path,
                    ByteSize(f.size_bytes),
                    f.sha256,
                    f.status
                ),
            );
        }
        field(
            "size",
            format!("{} ({} bytes) in {} files", ByteSize(e.total_size()), e.total_size(), m.files.len()),
        );
    } else {
        field("file", e.hf_filename.to_string());
        field("size", format!("{} ({} bytes)", ByteSize(e.size_bytes), e.size_bytes));
        field("sha256", e.sha256.to_string());
    }
    field("arch", e.arch.to_string());
    field("dim", if e.embedding_dim == 0 { "unknown".into() } else { e.embedding_dim.to_string() });
    field("task", e.task.to_string());
    field("license", e.license.to_string());
    field("variants", variants.join(", "));
    if !m.aliases.is_empty() {
        field("aliases", m.aliases.join(", "));
    }
    field("origin", format!("{:?}", e.origin).to_lowercase());
    field("url", m.url.clone());
    field("status", m.status_label());
    if let Some(from) = &m.installed_from {
        field("installed from", from.clone());
    }
    if m.pinned {
        field("pinned", "yes (prune keeps it)".into());
    }
    out.push_str(&format!("  {:<14} ", "path"));
    out.push_path(&m.path);
    out.push_str("\n");
    let mut field = |k: &str, v: String| out.push_str(&format!("  {k:<14} {v}\n"));
    match &header {
        Some(Ok(h)) => {
            field(
                "gguf",
                format!(
                    "version {}, arch {}, embedding length {}, file type {}, {} tensors, {} metadata keys",
                    h.version,
                    h.architecture.as_deref().unwrap_or("?"),
                    h.embedding_length.map_or("?".into(), |d| d.to_string()),
                    h.file_type_name()
                        .map_or_else(|| h.file_type.map_or("?".into(), |t| t.to_string()), str::to_string),
                    h.tensor_count,
                    h.kv_count
                ),
            );
            for warning in Registry::header_mismatches(e, h) {
                field("warning", warning);
            }
        }
        Some(Err(err)) => field("gguf", format!("unreadable: {}", err.report())),
        None => {}
    }
    Ok(())
}
