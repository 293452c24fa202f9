//! `strata-model register NAME --repo … --file … --revision … --sha256 … --size …`: adds a
//! custom model to the custom catalog.

use strata_model::{ByteSize, CustomModel, ModelTask, Registry, RegistryError};

use crate::cli::RegisterArgs;
use crate::exit::{code, Failure};
use crate::output::{emit, emit_json, Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, args: &RegisterArgs) -> Result<(), Failure> {
    let model = CustomModel {
        name: args.name.clone(),
        hf_repo: args.repo.clone(),
        hf_filename: args.file.clone(),
        revision: args.revision.clone(),
        sha256: args.sha256.clone(),
        size_bytes: args.size,
        arch: args.arch.clone(),
        embedding_dim: args.dim,
        quant: args.quant.clone(),
        task: args.task.as_deref().and_then(ModelTask::parse),
        description: args.description.clone(),
        license: args.license.clone(),
        tracks: args.tracks.clone(),
        files: Vec::new(),
        oci: None,
    };
    let entry = registry.register(&model).map_err(|e| flag_error(e, &args.name))?;
    ui.note_lowercased("model", &args.name, &entry.name);
    if ui.json {
        return emit_json(&registry.info_of(&entry));
    }
    let mut out = Out::new(&format!(
        "registered {} ({}, {}) in ",
        entry.display_name(),
        entry.hf_filename,
        ByteSize(entry.size_bytes)
    ));
    out.push_path(&registry.config().catalog_file());
    out.push_str("\n");
    emit(&out)
}

/// A problem with the model given (not with the catalog file) is the user's flag: exit 2,
/// naming the flag.
fn flag_error(e: RegistryError, name: &str) -> Failure {
    match &e {
        RegistryError::InvalidCatalog { entry: Some(entry), field: Some(field), reason, .. }
            if entry == name =>
        {
            let flag = match field.as_str() {
                "name" => "NAME",
                "hf_repo" => "--repo",
                "hf_filename" => "--file",
                "revision" => "--revision",
                "sha256" => "--sha256",
                "size_bytes" => "--size",
                "arch" => "--arch",
                "quant" => "--quant",
                "description" => "--description",
                "license" => "--license",
                _ => return e.into(),
            };
            Failure::Message(format!("{flag}: {reason}"), code::USAGE)
        }
        _ => e.into(),
    }
}
