//! `add`: a custom catalog entry from a Hub reference (`hf.co/owner/repo:Q8_0`), pinned for
//! the user. The Hub's model API (asked as huggingface_hub's `model_info(files_metadata=True)`
//! asks it) names the commit the revision points to and each file's LFS size and SHA-256; the
//! entry pins that commit, never a branch. Arch, embedding dimension and task come from the
//! file's own GGUF header, read with range requests of its first bytes through the pinned
//! `resolve` URL — never the whole file. The entry is then written exactly as `register`
//! writes it.

use serde::Serialize;

use super::Registry;
use crate::catalog::{
    custom, infer_quant, non_portable_file_name, quant_name, valid_name, CustomFile, CustomModel, FileRole,
    HubReference, ModelEntry, ModelTask, Select,
};
use crate::error::{ErrorKind, RegistryError, Result, SourceError};
use crate::gguf::GgufHeader;
use crate::sources::{HttpSource, Sibling};

mod choose;
mod header;
mod oci;
mod oci_files;
pub(super) mod prefix;

pub use choose::Projector;
use choose::{choose, projector};
use header::HeaderError;

/// The first range asked for when reading a header; each next one is 4 times larger.
pub(super) const FIRST_READ: u64 = 256 * 1024;
/// The most of a file read for its header. A GGUF file's own keys come first and are small;
/// only the tokenizer's arrays (after them) are large, and they are not read.
pub const HEADER_READ_LIMIT: u64 = 16 * 1024 * 1024;

/// What `add` may be told besides the reference.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// The model's name (default: the repository's name, lowercased, without `-GGUF`).
    pub name: Option<String>,
    /// The revision to look up (default: the reference's `@REVISION`, else `main`).
    pub revision: Option<String>,
    /// The file (default: the reference's `:QUANT` or `/FILE.gguf`, else the only GGUF).
    pub file: Option<String>,
    /// Overrides the header's `general.architecture`.
    pub arch: Option<String>,
    /// Overrides the header's embedding length.
    pub dim: Option<u32>,
    /// The task, when the header does not say (or to override it).
    pub task: Option<ModelTask>,
    /// The projector to add beside the weights (default: the one llama.cpp would load, when
    /// the repository has one).
    pub projector: Projector,
    /// Check everything and write nothing.
    pub dry_run: bool,
}

/// Where one fact of the entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactFrom {
    /// The file's GGUF header.
    Header,
    /// An option given to `add`.
    Option,
    /// Nothing said: the default (`generation`, dimension 0, arch `unknown`).
    Default,
}

/// What `add` found and wrote (or, in a dry run, would write).
#[derive(Clone, Debug, Serialize)]
pub struct AddReport {
    /// The reference, as understood.
    pub reference: String,
    /// The revision asked for (`main`, a tag, a commit).
    pub revision: String,
    /// The model as written to the custom catalog.
    pub model: CustomModel,
    /// The catalog entry.
    #[serde(skip)]
    pub entry: ModelEntry,
    /// Where the architecture came from.
    pub arch_from: FactFrom,
    /// Where the embedding dimension came from.
    pub dim_from: FactFrom,
    /// Where the task came from.
    pub task_from: FactFrom,
    /// Bytes of the file the header parser read.
    pub header_bytes: u64,
    /// Bytes of the file asked for with range requests (the first 256 KiB, for most files).
    pub fetched_bytes: u64,
    /// Whether the catalog file was written (false in a dry run).
    pub written: bool,
    /// What was read from an OCI registry (`add oci://…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciAdded>,
}

/// What `add` read from the registry.
#[derive(Clone, Debug, Serialize)]
pub struct OciAdded {
    /// The reference pinned in the entry (`oci://host/repo:tag@sha256:<manifest digest>`).
    pub pinned: String,
    /// The manifest's digest, `sha256:<hex>`.
    pub manifest_digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// Its `artifactType`, when it has one.
    pub artifact_type: Option<String>,
    /// The kind of artifact: `modelpack`, `docker-model-runner` or `plain`.
    pub kind: &'static str,
    /// The index the manifest was found through (`sha256:<hex>`), when the tag names one.
    pub index_digest: Option<String>,
}

impl Registry {
    /// Adds a model to the custom catalog from a Hub reference: `hf.co/OWNER/REPO`,
    /// `huggingface.co/OWNER/REPO`, `hf://OWNER/REPO` or `OWNER/REPO`, with `:QUANT` or
    /// `/FILE.gguf` and `@REVISION` (see [`HubReference`]). The entry is pinned to the commit
    /// the revision points to now, with the file's LFS size and SHA-256; arch, dimension and
    /// task come from its GGUF header (the first bytes only). Token, proxy, CA and offline
    /// settings are those of downloads.
    ///
    /// ```no_run
    /// let registry = strata_model::Registry::from_env()?;
    /// let report = registry.add_from_hub("hf.co/ggml-org/embeddinggemma-300M-GGUF:Q8_0", &Default::default())?;
    /// println!("{} pinned at {}", report.entry.display_name(), report.entry.revision);
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    pub fn add_from_hub(&self, reference: &str, options: &AddOptions) -> Result<AddReport> {
        let mut parsed = HubReference::parse(reference).map_err(|e| RegistryError::CannotAdd {
            reference: reference.trim().to_string(),
            reason: e.to_string(),
            kind: ErrorKind::UnknownModel,
            source: None,
        })?;
        let fail = |parsed: &HubReference, kind: ErrorKind, reason: String| RegistryError::CannotAdd {
            reference: parsed.to_string(),
            reason,
            kind,
            source: None,
        };
        match (&options.revision, &parsed.revision) {
            (Some(a), Some(b)) if a != b => {
                return Err(fail(
                    &parsed,
                    ErrorKind::UnknownModel,
                    format!("two revisions given, @{b} and --revision {a}"),
                ))
            }
            (Some(a), _) => parsed.revision = Some(a.clone()),
            _ => {}
        }
        if let Some(file) = &options.file {
            if parsed.select.is_some() {
                return Err(fail(
                    &parsed,
                    ErrorKind::UnknownModel,
                    "give the file in the reference or with --file, not both".into(),
                ));
            }
            parsed.select = Some(Select::File(file.clone()));
        }
        if self.config().offline() {
            return Err(fail(
                &parsed,
                ErrorKind::Config,
                "network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE) and `add` asks the Hub; turn it back on, \
                 or use `register` with the commit, size and SHA-256"
                    .into(),
            ));
        }
        let revision = parsed.revision.clone().unwrap_or_else(|| "main".to_string());
        let source = HttpSource::hugging_face(self.config())?;
        let hub = |e: SourceError, what: String| RegistryError::CannotAdd {
            reference: parsed.to_string(),
            reason: what,
            kind: if e.is_not_found() { ErrorKind::UnknownModel } else { e.kind() },
            source: Some(Box::new(e)),
        };
        let repo_id = parsed.repo_id();
        let info = source
            .model_info(&repo_id, &revision)
            .map_err(|e| hub(e, format!("asking the Hub about {repo_id} at {revision}")))?;
        let chosen =
            choose(&parsed, &info, &revision).map_err(|(kind, reason)| fail(&parsed, kind, reason))?;
        let first = chosen.weights[0];
        let projector = projector(&info, &first.rfilename, &options.projector)
            .map_err(|reason| fail(&parsed, ErrorKind::UnknownModel, reason))?;
        let mut picked: Vec<(&Sibling, FileRole)> =
            chosen.weights.iter().map(|s| (*s, FileRole::Weights)).collect();
        picked.extend(projector.map(|p| (p, FileRole::Mmproj)));
        let mut files = Vec::new();
        for (sibling, role) in &picked {
            let Some(lfs) = &sibling.lfs else {
                return Err(fail(
                    &parsed,
                    ErrorKind::Unsupported,
                    format!(
                        "{} is not stored with Git LFS, so the Hub gives no SHA-256 to pin; use `register` with a hash you computed",
                        sibling.rfilename
                    ),
                ));
            };
            // A model's file is stored under its base name on the Hub: one that FAT, exFAT or
            // Windows would refuse at download time is refused now, before anything is read.
            let base = sibling.rfilename.rsplit('/').next().unwrap_or(&sibling.rfilename);
            if let Some(reason) = non_portable_file_name(base) {
                return Err(fail(
                    &parsed,
                    ErrorKind::Unsupported,
                    format!(
                        "the file `{}` {reason}; a model is stored under its file name on the Hub: \
                         upload a copy under another name and add that",
                        sibling.rfilename.escape_debug()
                    ),
                ));
            }
            files.push(CustomFile {
                path: sibling.rfilename.clone(),
                size_bytes: lfs.size,
                sha256: lfs.sha256.clone(),
                role: *role,
            });
        }
        let name = match &options.name {
            Some(n) => n.trim().to_string(),
            None => {
                let lower = parsed.repo.to_ascii_lowercase();
                let base =
                    lower.strip_suffix("-gguf").or_else(|| lower.strip_suffix("_gguf")).unwrap_or(&lower);
                if !valid_name(base) {
                    return Err(fail(
                        &parsed,
                        ErrorKind::Config,
                        format!("`{base}` (from the repository's name) is not a valid model name; choose one with --name"),
                    ));
                }
                base.to_string()
            }
        };
        let quant = match &parsed.select {
            Some(Select::Quant(q))
                if infer_quant(&quant_name(&first.rfilename)) != q.to_ascii_lowercase() =>
            {
                Some(q.to_ascii_lowercase())
            }
            _ => None,
        };
        let mut model = CustomModel {
            name,
            hf_repo: repo_id.clone(),
            revision: info.sha.clone(),
            quant,
            description: Some(format!("added from hf.co/{repo_id} at {revision}")),
            // A branch or tag keeps being followed by `outdated`; a commit is the pin itself.
            tracks: (!crate::catalog::is_hex(&revision.to_ascii_lowercase(), 40)).then(|| revision.clone()),
            ..Default::default()
        };
        // One file at the top of the repository: a single-file entry, as before; anything
        // else (shards, a projector, a folder) lists its files.
        if files.len() == 1 && !files[0].path.contains('/') {
            let file = files.remove(0);
            (model.hf_filename, model.sha256, model.size_bytes) = (file.path, file.sha256, file.size_bytes);
        } else {
            model.files = files;
        }
        // Everything the catalog checks, before a byte of the file is read.
        let catalog_file = self.config().catalog_file();
        let entry = custom::check_new(&catalog_file, &model)?;

        let facts = header::read(&source, &entry, options).map_err(|e| match e {
            HeaderError::Source(e, what) => hub(e, what),
            HeaderError::Refused(kind, reason) => fail(&parsed, kind, reason),
        })?;
        let (arch_from, dim_from, task_from) = apply_facts(&mut model, &facts.header, options);
        let entry =
            if options.dry_run { custom::check_new(&catalog_file, &model)? } else { self.register(&model)? };
        model.name = entry.name.to_string();
        Ok(AddReport {
            reference: parsed.to_string(),
            revision,
            model,
            entry,
            arch_from,
            dim_from,
            task_from,
            header_bytes: facts.read,
            fetched_bytes: facts.asked,
            written: !options.dry_run,
            oci: None,
        })
    }
}

/// Sets `model`'s arch, dimension and task from `options`, else the header; says where each
/// came from (arch, dimension, task). What `add` does alike for the Hub and for registries.
pub(super) fn apply_facts(
    model: &mut CustomModel,
    header: &GgufHeader,
    options: &AddOptions,
) -> (FactFrom, FactFrom, FactFrom) {
    let (arch, arch_from) = pick(options.arch.clone(), header.architecture.clone());
    let (dim, dim_from) = pick(options.dim, header.embedding_length.and_then(|d| u32::try_from(d).ok()));
    let (task, task_from) = pick(options.task, task_of(header));
    model.arch = arch;
    model.embedding_dim = dim;
    model.task = Some(task.unwrap_or(ModelTask::Generation));
    (arch_from, dim_from, task_from)
}

/// The option when given, else the header's value, else nothing; and where it came from.
fn pick<T>(option: Option<T>, header: Option<T>) -> (Option<T>, FactFrom) {
    match (option, header) {
        (Some(v), _) => (Some(v), FactFrom::Option),
        (None, Some(v)) => (Some(v), FactFrom::Header),
        (None, None) => (None, FactFrom::Default),
    }
}

/// The task the header states: an embedding model pools its token vectors (`pooling_type`
/// mean, CLS or last — llama.cpp's `LLAMA_POOLING_TYPE_*` 1 to 3). Nothing else is a statement.
fn task_of(header: &GgufHeader) -> Option<ModelTask> {
    matches!(header.pooling_type, Some(1..=3)).then_some(ModelTask::Embedding)
}
