//! `strata-model add hf.co/OWNER/REPO[:QUANT | /FILE.gguf][@REVISION]`: adds a model from the
//! Hub to the custom catalog, pinned to the commit the revision points to now; `add
//! oci://HOST/REPOSITORY:TAG` (or `@sha256:DIGEST`) adopts an artifact from an OCI registry,
//! pinned to its manifest's digest.

use strata_model::{AddOptions, ByteSize, FactFrom, FileRole, ModelTask, Projector, Registry};

use crate::cli::AddArgs;
use crate::exit::Failure;
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, args: &AddArgs) -> Result<(), Failure> {
    let options = AddOptions {
        name: args.name.clone(),
        revision: args.revision.clone(),
        file: args.file.clone(),
        arch: args.arch.clone(),
        dim: args.dim,
        task: args.task.as_deref().and_then(ModelTask::parse),
        projector: match (&args.mmproj, args.no_mmproj) {
            (_, true) => Projector::Skip,
            (Some(file), false) => Projector::File(file.clone()),
            (None, false) => Projector::Default,
        },
        dry_run: args.dry_run,
    };
    let report = registry.add(&args.reference, &options)?;
    if let Some(given) = &args.name {
        ui.note_lowercased("model", given, &report.entry.name);
    }
    if ui.json {
        return emit_json(&report);
    }
    let e = &report.entry;
    let from = |f: FactFrom| match f {
        FactFrom::Header => "from the GGUF header",
        FactFrom::Option => "as given",
        FactFrom::Default => "not stated; the default",
    };
    let verb = if report.written { "added" } else { "would add (dry run)" };
    let mut out = Out::new(&format!("{verb} {} from {}\n", e.display_name(), report.reference));
    if e.is_multi_file() {
        let shards = e.files.iter().filter(|f| f.role == FileRole::Weights).count();
        let what = if shards > 1 { format!("{shards} shards") } else { "1 file".into() };
        out.push_str(&format!("  files     {what} of weights, {} in all\n", ByteSize(e.total_size())));
        for f in e.files.iter() {
            out.push_str(&format!(
                "    {:<8} {} ({}, sha256 {})\n",
                f.role.as_str(),
                f.path,
                ByteSize(f.size_bytes),
                f.sha256
            ));
        }
        match e.files.iter().find(|f| f.role == FileRole::Mmproj) {
            Some(p) => out.push_str(&format!("  projector {} (--no-mmproj to leave it out)\n", p.path)),
            None => out.push_str("  projector none\n"),
        }
        out.push_str(&format!("  stored in {}/ in the models directory\n", e.unit_dir().unwrap_or_default()));
    } else {
        out.push_str(&format!("  file      {} ({})\n", e.hf_filename, ByteSize(e.size_bytes)));
    }
    match &report.oci {
        Some(oci) => {
            let via = match &oci.index_digest {
                Some(index) => format!(", through the index {index}"),
                None => String::new(),
            };
            out.push_str(&format!(
                "  manifest  {} ({} artifact{via}; what {} points to now)\n",
                oci.manifest_digest, oci.kind, report.revision
            ));
            out.push_str(&format!("  pinned    {}\n", oci.pinned));
        }
        None => {
            out.push_str(&format!("  commit    {} (what {} points to now)\n", e.revision, report.revision))
        }
    }
    if !e.is_multi_file() {
        out.push_str(&format!("  sha256    {}\n", e.sha256));
    }
    out.push_str(&format!("  arch      {} ({})\n", e.arch, from(report.arch_from)));
    out.push_str(&format!("  dim       {} ({})\n", e.embedding_dim, from(report.dim_from)));
    out.push_str(&format!("  task      {} ({})\n", e.task.as_str(), from(report.task_from)));
    out.push_str(&format!(
        "  header    {} read, {} fetched of the file's {}\n",
        ByteSize(report.header_bytes),
        ByteSize(report.fetched_bytes),
        ByteSize(e.size_bytes)
    ));
    if report.task_from == FactFrom::Default {
        out.push_str("  the header names no pooling: if this is an embedding model, add it again with --task embedding\n");
    }
    if report.written {
        out.push_str("in ");
        out.push_path(&registry.config().catalog_file());
        out.push_str(&format!("; run `strata-model download {}`\n", e.display_name()));
    }
    emit(&out)
}
