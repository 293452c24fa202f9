//! `add oci://HOST[:PORT]/REPOSITORY:TAG` (or `@sha256:DIGEST`): a custom entry adopted from an
//! artifact in an OCI registry that someone else published. The manifest is read (through an
//! index naming one manifest), its GGUF layers are selected — ModelPack weight layers
//! (`application/vnd.cncf.model.weight.v1.raw`, and Docker Model Runner's older
//! `…weight.v1.gguf`), Docker Model Runner's `application/vnd.docker.ai.gguf.v3` and
//! `application/vnd.docker.ai.mmproj`, and any layer whose title ends in `.gguf` — and the
//! entry pins the manifest's digest and each layer's digest (its SHA-256) and size. Arch,
//! dimension and task come from the first layer's GGUF header, read by range from its blob.

use super::header::{self, HeaderError};
use super::{pick, task_of, AddOptions, AddReport, OciAdded, Projector};
use crate::catalog::{
    custom, infer_quant, invalid_file_name, non_portable_file_name, split_name, valid_name, CustomFile,
    CustomModel, FileRole, ModelTask, OciReference,
};
use crate::error::{ErrorKind, RegistryError, Result, SourceError};
use crate::sources::{Descriptor, Manifest, OciSource};
use crate::Registry;

/// ModelPack: an unarchived, uncompressed weights file (model-spec `docs/spec.md`).
const MODELPACK_WEIGHT_RAW: &str = "application/vnd.cncf.model.weight.v1.raw";
/// Docker Model Runner's own ModelPack GGUF weight type (`modelpack/types.go`: kept for
/// artifacts of its older versions).
const MODELPACK_WEIGHT_GGUF: &str = "application/vnd.cncf.model.weight.v1.gguf";
/// ModelPack weights in a tar archive, maybe compressed (`.tar`, `.tar+gzip`, `.tar+zstd`).
const MODELPACK_WEIGHT_TAR: &str = "application/vnd.cncf.model.weight.v1.tar";
/// Docker Model Runner: a GGUF v3 file (`types/config.go`, `MediaTypeGGUF`).
const DOCKER_GGUF: &str = "application/vnd.docker.ai.gguf.v3";
/// Docker Model Runner: a multimodal projector (`MediaTypeMultimodalProjector`).
const DOCKER_MMPROJ: &str = "application/vnd.docker.ai.mmproj";
/// The layer's file name (image-spec `annotations.md`).
const TITLE: &str = "org.opencontainers.image.title";
/// The layer's path in the model (ModelPack, Docker Model Runner).
const FILEPATH: &str = "org.cncf.model.filepath";

/// A GGUF layer chosen for the entry.
struct Chosen<'a> {
    layer: &'a Descriptor,
    sha256: String,
    role: FileRole,
    name: Option<String>,
}

impl Registry {
    /// Adds a model from a Hub reference ([`Registry::add_from_hub`]) or, for `oci://…`, from
    /// an artifact in an OCI registry ([`Registry::add_from_oci`]).
    pub fn add(&self, reference: &str, options: &AddOptions) -> Result<AddReport> {
        // Any `oci:` reference (even misspelt, `oci:/…`) is the OCI parser's: it never echoes
        // credentials.
        let is_oci = reference.trim().get(..4).is_some_and(|s| s.eq_ignore_ascii_case("oci:"));
        if is_oci {
            self.add_from_oci(reference, options)
        } else {
            self.add_from_hub(reference, options)
        }
    }

    /// Adds a model to the custom catalog from an artifact in an OCI registry:
    /// `oci://HOST[:PORT]/REPOSITORY:TAG` or `…@sha256:DIGEST`. The entry pins the manifest's
    /// digest and each GGUF layer's digest and size, and downloads from that registry (after
    /// any configured mirror) with its credentials; arch, dimension and task come from the
    /// first layer's GGUF header (the first bytes only).
    ///
    /// ```no_run
    /// let registry = strata_model::Registry::from_env()?;
    /// let report = registry.add_from_oci("oci://registry.internal:5000/ml/embed:q8_0", &Default::default())?;
    /// println!("{} pinned at {}", report.entry.display_name(), report.entry.pinned_revision());
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    pub fn add_from_oci(&self, reference: &str, options: &AddOptions) -> Result<AddReport> {
        let fail_raw = |kind: ErrorKind, reason: String| RegistryError::CannotAdd {
            reference: OciReference::shown(reference),
            reason,
            kind,
            source: None,
        };
        let parsed =
            OciReference::parse(reference).map_err(|e| fail_raw(ErrorKind::UnknownModel, e.to_string()))?;
        let fail = |kind: ErrorKind, reason: String| RegistryError::CannotAdd {
            reference: parsed.to_string(),
            reason,
            kind,
            source: None,
        };
        for (given, flag) in [
            (options.revision.is_some(), "--revision"),
            (options.file.is_some(), "--file"),
            (matches!(options.projector, Projector::File(_)), "--mmproj"),
        ] {
            if given {
                return Err(fail(
                    ErrorKind::UnknownModel,
                    format!("{flag} is for Hub references; an oci:// reference names its manifest by :TAG or @sha256:DIGEST"),
                ));
            }
        }
        if self.config().offline() {
            return Err(fail(
                ErrorKind::Config,
                "network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE) and `add` asks the registry; turn it back on".into(),
            ));
        }
        let source = OciSource::new(&parsed.registry, &parsed.repository, self.config())?;
        let registry_error = |e: SourceError, what: String| RegistryError::CannotAdd {
            reference: parsed.to_string(),
            reason: what,
            kind: if e.is_not_found() { ErrorKind::UnknownModel } else { e.kind() },
            source: Some(Box::new(e)),
        };
        let asked = parsed.manifest_reference();
        let manifest = source.manifest(&asked).map_err(|e| {
            registry_error(e, format!("reading the manifest `{asked}` of {}", parsed.repository_location()))
        })?;
        let (kind, mut chosen) = select(&manifest).map_err(|(kind, reason)| fail(kind, reason))?;
        if matches!(options.projector, Projector::Skip) {
            chosen.retain(|c| c.role != FileRole::Mmproj);
        }
        let base = default_name(&parsed);
        let files =
            file_names(&chosen, &base, &parsed).map_err(|reason| fail(ErrorKind::Unsupported, reason))?;
        let pinned = parsed.pinned(&manifest.digest);
        let name = match &options.name {
            Some(n) => n.trim().to_string(),
            None if valid_name(&base) => base.clone(),
            None => {
                return Err(fail(
                    ErrorKind::Config,
                    format!(
                    "`{base}` (from the repository's name) is not a valid model name; choose one with --name"
                ),
                ))
            }
        };
        let tag_quant = parsed
            .tag
            .as_deref()
            .map(|t| infer_quant(&format!("{}-{t}.gguf", base)))
            .filter(|q| q != crate::catalog::UNKNOWN && *q != infer_quant(&files[0].path));
        let mut model = CustomModel {
            name,
            quant: tag_quant,
            description: Some(format!("added from {parsed}")),
            oci: Some(pinned.to_string()),
            ..Default::default()
        };
        let mut files = files;
        if files.len() == 1 {
            let file = files.remove(0);
            (model.hf_filename, model.sha256, model.size_bytes) = (file.path, file.sha256, file.size_bytes);
        } else {
            model.files = files;
        }
        // Everything the catalog checks, before a byte of a blob is read.
        let catalog_file = self.config().catalog_file();
        let entry = custom::check_new(&catalog_file, &model)?;
        let facts = header::read(&source, &entry, options).map_err(|e| match e {
            HeaderError::Source(e, what) => registry_error(e, what),
            HeaderError::Refused(kind, reason) => fail(kind, reason),
        })?;
        let header = facts.header;
        let (arch, arch_from) = pick(options.arch.clone(), header.architecture.clone());
        let (dim, dim_from) = pick(options.dim, header.embedding_length.and_then(|d| u32::try_from(d).ok()));
        let (task, task_from) = pick(options.task, task_of(&header));
        model.arch = arch;
        model.embedding_dim = dim;
        model.task = Some(task.unwrap_or(ModelTask::Generation));
        let entry =
            if options.dry_run { custom::check_new(&catalog_file, &model)? } else { self.register(&model)? };
        model.name = entry.name.to_string();
        Ok(AddReport {
            reference: parsed.to_string(),
            revision: parsed.tag.clone().unwrap_or_else(|| asked.clone()),
            model,
            entry,
            arch_from,
            dim_from,
            task_from,
            header_bytes: facts.read,
            fetched_bytes: facts.asked,
            written: !options.dry_run,
            oci: Some(OciAdded {
                pinned: pinned.to_string(),
                manifest_digest: format!("sha256:{}", manifest.digest),
                media_type: manifest.media_type.clone(),
                artifact_type: manifest.artifact_type.clone(),
                kind,
                index_digest: manifest.via_index.as_ref().map(|d| format!("sha256:{d}")),
            }),
        })
    }
}

/// The layer's file name as its publisher gave it (the title, else the ModelPack path).
fn given_name(layer: &Descriptor) -> Option<&str> {
    layer.annotations.get(TITLE).or_else(|| layer.annotations.get(FILEPATH)).map(String::as_str)
}

/// Whether `name` (a title) is a GGUF file's, and a projector's.
fn gguf_name(name: Option<&str>) -> (bool, bool) {
    let base = name.map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_ascii_lowercase());
    match base {
        Some(b) => (b.ends_with(".gguf"), b.starts_with("mmproj")),
        None => (false, false),
    }
}

/// The GGUF layers of `manifest` and their roles (weights in split order, then at most one
/// projector), and the kind of artifact; or why there are none to add.
fn select(manifest: &Manifest) -> std::result::Result<(&'static str, Vec<Chosen<'_>>), (ErrorKind, String)> {
    let modelpack = manifest.artifact_type.as_deref() == Some(crate::sources::oci_manifest::ARTIFACT_TYPE)
        || manifest.config.media_type.starts_with("application/vnd.cncf.model.");
    let docker = manifest.config.media_type.starts_with("application/vnd.docker.ai.");
    let kind = if modelpack {
        "modelpack"
    } else if docker {
        "docker-model-runner"
    } else {
        "plain"
    };
    let mut chosen = Vec::new();
    let mut archived = Vec::new();
    for layer in &manifest.layers {
        let name = given_name(layer);
        let (is_gguf_name, is_projector_name) = gguf_name(name);
        let media = layer.media_type.as_str();
        let role = match media {
            DOCKER_GGUF => Some(if is_projector_name { FileRole::Mmproj } else { FileRole::Weights }),
            DOCKER_MMPROJ => Some(FileRole::Mmproj),
            // A raw weight layer: a GGUF by its name, or (no name) by its header, read next.
            MODELPACK_WEIGHT_RAW | MODELPACK_WEIGHT_GGUF if is_gguf_name || name.is_none() => {
                Some(if is_projector_name { FileRole::Mmproj } else { FileRole::Weights })
            }
            m if m.starts_with(MODELPACK_WEIGHT_TAR) => {
                archived.push(format!("{m} {}", name.unwrap_or(&layer.digest)));
                None
            }
            _ if is_gguf_name => Some(if is_projector_name { FileRole::Mmproj } else { FileRole::Weights }),
            _ => None,
        };
        let Some(role) = role else { continue };
        let Some(sha256) = layer.sha256() else {
            return Err((
                ErrorKind::Unsupported,
                format!("the layer {} is named by `{}`, not by a SHA-256; strata-model verifies every file by SHA-256", name.unwrap_or("(untitled)"), layer.digest),
            ));
        };
        if layer.size == 0 {
            return Err((ErrorKind::Integrity, format!("the layer sha256:{sha256} says it has 0 bytes")));
        }
        chosen.push(Chosen { layer, sha256, role, name: name.map(str::to_string) });
    }
    let weights = chosen.iter().filter(|c| c.role == FileRole::Weights).count();
    if weights == 0 {
        let layers: Vec<String> = manifest
            .layers
            .iter()
            .map(|l| format!("{} {}", l.media_type, given_name(l).unwrap_or(&l.digest)))
            .collect();
        let reason = if archived.is_empty() {
            format!(
                "not a GGUF model: no layer is a GGUF file (a ModelPack weight, Docker Model Runner's {DOCKER_GGUF}, or a title ending in .gguf); its layers: {}",
                if layers.is_empty() { "none".into() } else { layers.join("; ") }
            )
        } else {
            format!(
                "its weights are tar archives ({}); strata-model adds raw GGUF layers ({MODELPACK_WEIGHT_RAW}), which it can fetch by range and verify by digest: package the GGUF file unarchived",
                archived.join("; ")
            )
        };
        return Err((ErrorKind::Unsupported, reason));
    }
    if chosen.iter().filter(|c| c.role == FileRole::Mmproj).count() > 1 {
        let names: Vec<String> = chosen
            .iter()
            .filter(|c| c.role == FileRole::Mmproj)
            .map(|c| c.name.clone().unwrap_or_else(|| format!("sha256:{}", c.sha256)))
            .collect();
        return Err((
            ErrorKind::Unsupported,
            format!(
                "several projectors ({}); add it with --no-mmproj, or publish one projector",
                names.join(", ")
            ),
        ));
    }
    // Weights first, a split's shards in order by their names; then the projector.
    chosen.sort_by_key(|c| {
        let index = c
            .name
            .as_deref()
            .map(|n| n.rsplit('/').next().unwrap_or(n))
            .and_then(split_name)
            .map(|s| s.index);
        (c.role != FileRole::Weights, index)
    });
    Ok((kind, chosen))
}

/// The model's default name: the repository's last component, without `-gguf`.
fn default_name(reference: &OciReference) -> String {
    let last = reference.repository.rsplit('/').next().unwrap_or(&reference.repository);
    last.strip_suffix("-gguf").or_else(|| last.strip_suffix("_gguf")).unwrap_or(last).to_string()
}

/// The file of each chosen layer: its title's base name when that is a GGUF file name the
/// catalog accepts, else one derived from the model's name and the tag (or the digest).
fn file_names(
    chosen: &[Chosen<'_>],
    base: &str,
    reference: &OciReference,
) -> std::result::Result<Vec<CustomFile>, String> {
    let weights = chosen.iter().filter(|c| c.role == FileRole::Weights).count();
    let label = reference
        .tag
        .clone()
        .or_else(|| reference.digest.as_deref().and_then(|d| d.get(..12)).map(str::to_string))
        .unwrap_or_default();
    let mut files = Vec::new();
    let mut index = 0;
    for c in chosen {
        let titled = c
            .name
            .as_deref()
            .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string())
            .filter(|n| invalid_file_name(n).is_none() && non_portable_file_name(n).is_none());
        let path = match (titled, c.role) {
            (Some(n), _) => n,
            (None, FileRole::Weights) if weights > 1 => {
                index += 1;
                format!("{base}-{label}-{index:05}-of-{weights:05}.gguf")
            }
            (None, FileRole::Weights) => format!("{base}-{label}.gguf"),
            (None, _) => format!("mmproj-{base}-{label}.gguf"),
        };
        files.push(CustomFile { path, size_bytes: c.layer.size, sha256: c.sha256.clone(), role: c.role });
    }
    if weights > 1 {
        let names: Vec<&str> =
            files.iter().filter(|f| f.role == FileRole::Weights).map(|f| f.path.as_str()).collect();
        let split: Vec<_> = names.iter().filter_map(|n| split_name(n)).collect();
        let whole = split.len() == weights
            && split.iter().enumerate().all(|(i, s)| {
                s.prefix == split[0].prefix
                    && usize::try_from(s.index).ok() == Some(i + 1)
                    && usize::try_from(s.count).ok() == Some(weights)
            });
        if !whole {
            return Err(format!(
                "the artifact has {weights} GGUF weight layers that are not the shards 1 to {weights} of one split ({}); strata-model adds one model per reference",
                names.join(", ")
            ));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media: &str, title: Option<&str>, seed: u8) -> Descriptor {
        Descriptor {
            media_type: media.into(),
            digest: format!("sha256:{}", format!("{seed:02x}").repeat(32)),
            size: 1000 + u64::from(seed),
            annotations: title
                .map(|t| [(TITLE.to_string(), t.to_string())].into_iter().collect())
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn manifest(config: &str, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            digest: "cd".repeat(32),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            config: Descriptor { media_type: config.into(), ..Default::default() },
            layers,
            annotations: Default::default(),
            via_index: None,
        }
    }

    #[test]
    fn tar_weights_and_manifests_without_gguf_are_refused_saying_why() {
        let tar = manifest(
            "application/vnd.cncf.model.config.v1+json",
            vec![layer("application/vnd.cncf.model.weight.v1.tar+zstd", Some("m.gguf"), 1)],
        );
        let (kind, why) = select(&tar).err().unwrap();
        assert_eq!(kind, ErrorKind::Unsupported);
        assert!(why.contains("tar archives") && why.contains("weight.v1.tar+zstd m.gguf"), "{why}");
        let safetensors = manifest(
            "application/vnd.cncf.model.config.v1+json",
            vec![layer(MODELPACK_WEIGHT_RAW, Some("model.safetensors"), 2)],
        );
        assert!(select(&safetensors).err().unwrap().1.contains("no layer is a GGUF file"));
    }

    #[test]
    fn untitled_layers_get_names_from_the_repository_and_the_tag_or_digest() {
        let m = manifest(
            "application/vnd.docker.ai.model.config.v0.1+json",
            vec![layer(DOCKER_MMPROJ, None, 3), layer(DOCKER_GGUF, Some("../CON.gguf"), 4)],
        );
        let (kind, chosen) = select(&m).unwrap();
        assert_eq!(kind, "docker-model-runner");
        assert_eq!(chosen[0].role, FileRole::Weights);
        let tagged = OciReference::parse("oci://h/ai/embed-gguf:Q4_K_M").unwrap();
        let base = default_name(&tagged);
        assert_eq!(base, "embed");
        let files = file_names(&chosen, &base, &tagged).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["embed-Q4_K_M.gguf", "mmproj-embed-Q4_K_M.gguf"]);
        assert_eq!(files[0].sha256, "04".repeat(32));
        let by_digest = OciReference::parse(&format!("oci://h/ai/embed@sha256:{}", "ef".repeat(32))).unwrap();
        assert_eq!(file_names(&chosen, &base, &by_digest).unwrap()[0].path, "embed-efefefefefef.gguf");
        // Two GGUF weights that are not one split's shards: one model per reference.
        let two = manifest(
            "x",
            vec![layer("application/octet-stream", Some("a.gguf"), 5), layer(DOCKER_GGUF, None, 6)],
        );
        let (_, chosen) = select(&two).unwrap();
        assert!(file_names(&chosen, &base, &tagged)
            .unwrap_err()
            .contains("not the shards 1 to 2 of one split"));
    }
}
