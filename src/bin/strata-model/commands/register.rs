//! `strata-model register NAME --repo … --file … --revision … --sha256 … --size …`: adds a
//! custom model to the custom catalog.

use strata_model::{ByteSize, CustomModel, ModelTask, Registry};

use crate::cli::RegisterArgs;
use crate::exit::Failure;
use crate::output::{emit, emit_json, Ui};

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
    };
    let entry = registry.register(&model)?;
    if ui.json {
        return emit_json(&registry.info_of(&entry));
    }
    emit(&format!(
        "registered {} ({}, {}) in {}\n",
        entry.display_name(),
        entry.hf_filename,
        ByteSize(entry.size_bytes),
        registry.config().catalog_file().display()
    ))
}
