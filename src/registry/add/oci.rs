//! `add oci://HOST[:PORT]/REPOSITORY:TAG` (or `@sha256:DIGEST`): a custom entry adopted from an
//! artifact in an OCI registry that someone else published. The manifest is read (through an
//! index naming one manifest), its GGUF layers are selected — ModelPack weight layers
//! (`application/vnd.cncf.model.weight.v1.raw`, and Docker Model Runner's older
//! `…weight.v1.gguf`), Docker Model Runner's `application/vnd.docker.ai.gguf.v3` and
//! `application/vnd.docker.ai.mmproj`, and any layer whose title ends in `.gguf` — and the
//! entry pins the manifest's digest and each layer's digest (its SHA-256) and size. Arch,
//! dimension and task come from the first layer's GGUF header, read by range from its blob.

use super::header::{self, HeaderError};
use super::oci_files::{file_names, Chosen};
use super::{AddOptions, AddReport, OciAdded, Projector};
use crate::catalog::{
    custom, infer_quant, split_name, valid_name, CustomModel, FileRole, OciReference, MAX_FILE_SIZE,
};
use crate::error::{ErrorKind, RegistryError, Result, SourceError};
use crate::shown::{bounded_list, printable};
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
        let (files, generated) =
            file_names(&chosen, &name, &parsed).map_err(|(kind, reason)| fail(kind, reason))?;
        // Two models cannot share a file: say what changes the name of this one.
        let taken = |e: RegistryError| match e {
            RegistryError::InvalidCatalog { field: Some(field), reason, .. }
                if field == "hf_filename" || field.starts_with("files") =>
            {
                let reason = reason.split("; a model is stored under").next().unwrap_or(&reason).to_string();
                fail(
                    ErrorKind::Config,
                    if generated {
                        format!("{reason}; give another --name (a layer without a title is stored as <name>-<tag>.gguf)")
                    } else {
                        format!("{reason}; the file is named by its layer's title, which --name does not change: unregister the other model first")
                    },
                )
            }
            e => e,
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
        let entry = custom::check_new(&catalog_file, &model).map_err(taken)?;
        let facts = header::read(&source, &entry, options).map_err(|e| match e {
            HeaderError::Source(e, what) => registry_error(e, what),
            HeaderError::Refused(kind, reason) => fail(kind, reason),
        })?;
        let (arch_from, dim_from, task_from) = super::apply_facts(&mut model, &facts.header, options);
        let entry = if options.dry_run {
            custom::check_new(&catalog_file, &model).map_err(taken)?
        } else {
            self.register(&model).map_err(taken)?
        };
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
                media_type: printable(&manifest.media_type),
                artifact_type: manifest.artifact_type.as_deref().map(printable),
                kind,
                index_digest: manifest.via_index.as_ref().map(|d| format!("sha256:{d}")),
            }),
        })
    }
}

/// The layer's file name as its publisher gave it (the title, else the ModelPack path).
pub(super) fn given_name(layer: &Descriptor) -> Option<&str> {
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
                archived.push(printable(&format!("{m} {}", name.unwrap_or(&layer.digest))));
                None
            }
            _ if is_gguf_name => Some(if is_projector_name { FileRole::Mmproj } else { FileRole::Weights }),
            _ => None,
        };
        let Some(role) = role else { continue };
        let Some(sha256) = layer.sha256() else {
            return Err((
                ErrorKind::Unsupported,
                format!(
                    "the layer {} is named by `{}`, not by a SHA-256; strata-model verifies every file by SHA-256",
                    printable(name.unwrap_or("(untitled)")),
                    printable(&layer.digest)
                ),
            ));
        };
        if layer.size == 0 {
            return Err((ErrorKind::Integrity, format!("the layer sha256:{sha256} says it has 0 bytes")));
        }
        if layer.size > MAX_FILE_SIZE {
            return Err((
                ErrorKind::Integrity,
                format!(
                    "the layer sha256:{sha256} says it has {} bytes, more than 1 PiB: no model's file is that large; the manifest's size is wrong",
                    layer.size
                ),
            ));
        }
        chosen.push(Chosen { layer, sha256, role, name: name.map(str::to_string) });
    }
    let weights = chosen.iter().filter(|c| c.role == FileRole::Weights).count();
    if weights == 0 {
        let layers = bounded_list(
            manifest
                .layers
                .iter()
                .map(|l| printable(&format!("{} {}", l.media_type, given_name(l).unwrap_or(&l.digest)))),
            "; ",
        );
        let reason = if archived.is_empty() {
            format!(
                "not a GGUF model: no layer is a GGUF file (a ModelPack weight, Docker Model Runner's {DOCKER_GGUF}, or a title ending in .gguf); its layers: {}",
                if layers.is_empty() { "none".into() } else { layers }
            )
        } else {
            format!(
                "its weights are tar archives ({}); strata-model adds raw GGUF layers ({MODELPACK_WEIGHT_RAW}), which it can fetch by range and verify by digest: package the GGUF file unarchived",
                bounded_list(archived, "; ")
            )
        };
        return Err((ErrorKind::Unsupported, reason));
    }
    if chosen.iter().filter(|c| c.role == FileRole::Mmproj).count() > 1 {
        let names = bounded_list(
            chosen
                .iter()
                .filter(|c| c.role == FileRole::Mmproj)
                .map(|c| c.name.as_deref().map_or_else(|| format!("sha256:{}", c.sha256), printable)),
            ", ",
        );
        return Err((
            ErrorKind::Unsupported,
            format!("several projectors ({names}); add it with --no-mmproj, or publish one projector"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{invalid_file_name, non_portable_file_name, CustomFile};

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

    const RAW: &str = MODELPACK_WEIGHT_RAW;

    fn paths(files: &[CustomFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn untitled_layers_get_names_from_the_model_name_and_the_tag_or_digest() {
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
        let (files, generated) = file_names(&chosen, &base, &tagged).unwrap();
        assert!(generated);
        assert_eq!(paths(&files), ["embed-Q4_K_M.gguf", "mmproj-embed-Q4_K_M.gguf"]);
        assert_eq!(files[0].sha256, "04".repeat(32));
        let by_digest = OciReference::parse(&format!("oci://h/ai/embed@sha256:{}", "ef".repeat(32))).unwrap();
        assert_eq!(file_names(&chosen, &base, &by_digest).unwrap().0[0].path, "embed-efefefefefef.gguf");
        // --name is the stem: two registries' `m:t` need not collide.
        let mt = OciReference::parse("oci://a.example/x/m:t").unwrap();
        assert_eq!(file_names(&chosen, "m-from-a", &mt).unwrap().0[0].path, "m-from-a-t.gguf");
    }

    #[test]
    fn valid_tags_make_valid_file_names() {
        let m = manifest("x", vec![layer(DOCKER_GGUF, None, 1), layer(DOCKER_MMPROJ, None, 2)]);
        let (_, chosen) = select(&m).unwrap();
        for tag in ["a.", "a..b", "a...", "_", &"t".repeat(128), &format!("v1.{}.", "x.".repeat(60))] {
            let r = OciReference::parse(&format!("oci://h/x:{tag}")).unwrap();
            for name in ["x", &"n".repeat(64)] {
                let (files, _) = file_names(&chosen, name, &r).unwrap();
                for f in &files {
                    assert!(f.path.len() <= 120, "{}", f.path);
                    assert_eq!(invalid_file_name(&f.path), None, "{}", f.path);
                    assert_eq!(non_portable_file_name(&f.path), None, "{}", f.path);
                }
            }
        }
        let r = OciReference::parse("oci://h/x:a.").unwrap();
        assert_eq!(file_names(&chosen, "x", &r).unwrap().0[0].path, "x-a.gguf");
    }

    #[test]
    fn a_title_with_bidi_controls_is_not_a_file_name() {
        let m = manifest("x", vec![layer(RAW, Some("evil\u{202E}fuggg.gguf"), 1)]);
        let (_, chosen) = select(&m).unwrap();
        let r = OciReference::parse("oci://h/x:t").unwrap();
        assert_eq!(paths(&file_names(&chosen, "x", &r).unwrap().0), ["x-t.gguf"]);
    }

    /// The files of a manifest of `layers`, added as `m` from `r`.
    fn named(
        layers: Vec<Descriptor>,
        r: &OciReference,
    ) -> Result<(Vec<CustomFile>, bool), (ErrorKind, String)> {
        let m = manifest("x", layers);
        let (_, chosen) = select(&m).unwrap();
        file_names(&chosen, "m", r)
    }

    #[test]
    fn several_weights_must_be_one_whole_split() {
        let r = OciReference::parse("oci://h/ai/m:dup").unwrap();
        // Two untitled GGUF layers (or a titled one and an untitled one): no invented shard names.
        for layers in [
            vec![layer(DOCKER_GGUF, None, 5), layer(DOCKER_GGUF, None, 6)],
            vec![layer("application/octet-stream", Some("a.gguf"), 5), layer(DOCKER_GGUF, None, 6)],
        ] {
            let (kind, why) = named(layers, &r).unwrap_err();
            assert_eq!(kind, ErrorKind::Unsupported);
            assert!(
                why.contains("several GGUF layers that are not one split's shards")
                    && why.contains("one model per reference"),
                "{why}"
            );
            assert!(!why.contains("-of-"), "{why}");
        }
        // One shard of two: not whole.
        let (kind, why) = named(vec![layer(RAW, Some("big-00001-of-00002.gguf"), 1)], &r).unwrap_err();
        assert_eq!(kind, ErrorKind::Integrity);
        assert!(why.contains("split not whole") && why.contains("big-00001-of-00002.gguf"), "{why}");
        // Shards 1 and 3 of 3.
        let gap = vec![
            layer(RAW, Some("big-00003-of-00003.gguf"), 3),
            layer(RAW, Some("big-00001-of-00003.gguf"), 1),
        ];
        assert!(named(gap, &r).unwrap_err().1.contains("split not whole"));
        // A whole split, in any order in the manifest.
        let whole = vec![
            layer(RAW, Some("big-00002-of-00002.gguf"), 2),
            layer(RAW, Some("big-00001-of-00002.gguf"), 1),
        ];
        let (files, generated) = named(whole, &r).unwrap();
        assert!(!generated);
        assert_eq!(paths(&files), ["big-00001-of-00002.gguf", "big-00002-of-00002.gguf"]);
    }
}
