//! The OCI artifact a model is pushed as, in the CNCF ModelPack form (model-spec
//! `docs/spec.md`, `docs/config.md`): an image manifest with `artifactType`
//! `application/vnd.cncf.model.manifest.v1+json`, one raw layer per file (the GGUF file
//! itself, so its digest is the catalog's SHA-256; a multi-file model's shards in order, then
//! its sidecars) annotated with its path in the repository, and a config blob
//! describing the model (name, arch, quantization, source repository and revision; the
//! layer's digest as its `diff_id`).

use serde::Serialize;

use crate::catalog::ModelEntry;

/// The media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// ModelPack: the artifact type of a model manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
/// ModelPack: the media type of the model config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
/// ModelPack: an unarchived, uncompressed weights file.
pub const WEIGHT_MEDIA_TYPE: &str = "application/vnd.cncf.model.weight.v1.raw";

/// The tag a model is pushed under: its name with `:` as `-` (`minilm:f16` → `minilm-f16`).
pub fn tag_for(entry: &ModelEntry) -> String {
    entry.display_name().replace(':', "-")
}

#[derive(Serialize)]
struct Descriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<std::collections::BTreeMap<&'a str, String>>,
}

/// The config blob of `entry` (ModelPack `application/vnd.cncf.model.config.v1+json`).
pub fn config_blob(entry: &ModelEntry) -> Vec<u8> {
    let doc = serde_json::json!({
        "descriptor": {
            "name": entry.display_name(),
            "description": entry.description,
            "sourceURL": entry.source_url(),
            "revision": entry.pinned_revision(),
            "licenses": [entry.license],
        },
        "config": {
            "architecture": entry.arch,
            "format": "gguf",
            "quantization": entry.quant,
        },
        "modelfs": {
            "type": "layers",
            "diff_ids": entry.model_files().iter().map(|f| format!("sha256:{}", f.sha256)).collect::<Vec<_>>(),
        },
    });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

/// The image manifest of `entry`, whose config blob is `config`.
pub fn manifest(entry: &ModelEntry, config: &[u8]) -> Vec<u8> {
    // One layer per file (a multi-file model's shards in order, then its sidecars), each
    // titled with its path in the repository.
    let layers: Vec<Descriptor<'_>> = entry
        .model_files()
        .iter()
        .map(|f| Descriptor {
            media_type: WEIGHT_MEDIA_TYPE,
            digest: format!("sha256:{}", f.sha256),
            size: f.size_bytes,
            annotations: Some(
                [
                    ("org.opencontainers.image.title", f.path.to_string()),
                    ("org.cncf.model.filepath", f.path.to_string()),
                ]
                .into_iter()
                .collect(),
            ),
        })
        .collect();
    let manifest_annotations: std::collections::BTreeMap<&str, String> = [
        ("org.opencontainers.image.source", entry.source_url()),
        ("org.opencontainers.image.revision", entry.pinned_revision()),
        ("org.opencontainers.image.title", entry.display_name()),
    ]
    .into_iter()
    .collect();
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": Descriptor {
            media_type: CONFIG_MEDIA_TYPE,
            digest: format!("sha256:{}", crate::digest::sha256_hex(config)),
            size: config.len() as u64,
            annotations: None,
        },
        "layers": layers,
        "annotations": manifest_annotations,
    });
    serde_json::to_vec_pretty(&doc).expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_a_modelpack_artifact_whose_layer_is_the_file() {
        let entry = crate::catalog::Catalog::builtin().resolve("minilm:f16").unwrap().clone();
        assert_eq!(tag_for(&entry), "minilm-f16");
        let config = config_blob(&entry);
        let m: serde_json::Value = serde_json::from_slice(&manifest(&entry, &config)).unwrap();
        assert_eq!(m["artifactType"], ARTIFACT_TYPE);
        assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(m["config"]["size"], config.len());
        let layer = &m["layers"][0];
        assert_eq!(layer["mediaType"], WEIGHT_MEDIA_TYPE);
        assert_eq!(layer["digest"], format!("sha256:{}", entry.sha256));
        assert_eq!(layer["size"], entry.size_bytes);
        assert_eq!(layer["annotations"]["org.cncf.model.filepath"], "all-MiniLM-L6-v2.F16.gguf");
        let c: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(
            (&c["config"]["architecture"], &c["config"]["quantization"]),
            (&"bert".into(), &"f16".into())
        );
        assert_eq!(c["descriptor"]["revision"], entry.revision.to_string());
    }
}
