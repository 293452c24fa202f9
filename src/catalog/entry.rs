//! One catalog entry: a model at one quantization, pinned to a commit, a size and a SHA-256.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use url::Url;

pub(crate) use super::files::is_hex;
use super::files::{base_name, unit_dir, FileRole, ModelFile};
use super::oci_reference::OciReference;

/// What a custom entry holds where its architecture, quantization or license was not given.
/// `--json` shows it (and an empty description, and an embedding dimension of 0) as `null`.
pub const UNKNOWN: &str = "unknown";

fn known_or_null<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() || v == UNKNOWN {
        s.serialize_none()
    } else {
        s.serialize_str(v)
    }
}

fn nonempty_or_null<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.serialize_str(v)
    }
}

fn nonzero_or_null<S: serde::Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    if *v == 0 {
        s.serialize_none()
    } else {
        s.serialize_u32(*v)
    }
}

/// What a model is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelTask {
    /// Turns text into a vector.
    Embedding,
    /// Generates text.
    Generation,
}

impl ModelTask {
    /// The lower-case name used in catalog files and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedding => "embedding",
            Self::Generation => "generation",
        }
    }

    /// Parses `embedding` or `generation` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "embedding" => Some(Self::Embedding),
            "generation" => Some(Self::Generation),
            _ => None,
        }
    }
}

impl std::str::FromStr for ModelTask {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("`{s}` is not `embedding` or `generation`"))
    }
}

impl<'de> Deserialize<'de> for ModelTask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for ModelTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a catalog entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Compiled into this crate.
    Builtin,
    /// Read from the custom catalog file.
    Custom,
}

/// One file a model name can resolve to: a model at one quantization.
///
/// Serialized (in `--json` output) with its base name under `model`, so that `name` is free
/// for the name that selects the entry (`minilm:f16`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelEntry {
    /// Base name, lower case (`minilm`). Variants of one model share it.
    #[serde(rename = "model")]
    pub name: Cow<'static, str>,
    /// Quantization, lower case (`q8_0`, `f16`), or [`UNKNOWN`].
    #[serde(serialize_with = "known_or_null")]
    pub quant: Cow<'static, str>,
    /// Whether a bare `name` (without `:quant`) selects this variant.
    pub default_variant: bool,
    /// One line for people (empty when a custom entry gives none).
    #[serde(serialize_with = "known_or_null")]
    pub description: Cow<'static, str>,
    /// Hugging Face repository, `owner/name` (empty, `null` in `--json`, for a model adopted
    /// from an OCI registry).
    #[serde(serialize_with = "nonempty_or_null")]
    pub hf_repo: Cow<'static, str>,
    /// The commit every download is pinned to (40 lower-case hex digits; empty, `null` in
    /// `--json`, for a model adopted from an OCI registry).
    #[serde(serialize_with = "nonempty_or_null")]
    pub revision: Cow<'static, str>,
    /// File name in the repository, and in the models directory.
    pub hf_filename: Cow<'static, str>,
    /// Exact size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the file (64 lower-case hex digits).
    pub sha256: Cow<'static, str>,
    /// GGUF `general.architecture`, or [`UNKNOWN`].
    #[serde(serialize_with = "known_or_null")]
    pub arch: Cow<'static, str>,
    /// Embedding dimension (0 for generative models or when unknown).
    #[serde(serialize_with = "nonzero_or_null")]
    pub embedding_dim: u32,
    /// What the model does.
    pub task: ModelTask,
    /// License identifier (`apache-2.0`, `mit`, `gemma`), or [`UNKNOWN`].
    #[serde(serialize_with = "known_or_null")]
    pub license: Cow<'static, str>,
    /// Built in or custom.
    pub origin: Origin,
    /// The branch or tag the pin was taken from (`main`), which `outdated` asks the Hub about;
    /// `None` when unknown (an entry registered by hand, or pinned from a commit).
    pub tracks: Option<Cow<'static, str>>,
    /// Every file of a multi-file model in order, the weights first (the split's shards in
    /// order), then sidecars; `hf_filename`, `size_bytes` and `sha256` describe one of them
    /// (the first, in a catalog's entry; see [`ModelEntry::file_entries`]). Empty for a
    /// model of one file, which `hf_filename`, `size_bytes` and `sha256` describe.
    /// (Left out of the entry's JSON: [`crate::ModelInfo`] gives every file with what is on
    /// disk for it.)
    #[serde(skip)]
    pub files: Cow<'static, [ModelFile]>,
    /// For a model adopted from an OCI registry (`add oci://…`): its manifest there, pinned by
    /// digest. Its files download from that registry by SHA-256 (after any configured
    /// mirror), never from the Hub; `hf_repo` and `revision` are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciReference>,
}

impl ModelEntry {
    /// The name that selects exactly this entry: `minilm` for a default variant,
    /// `minilm:f16` otherwise.
    pub fn display_name(&self) -> String {
        if self.default_variant {
            self.name.to_string()
        } else {
            format!("{}:{}", self.name, self.quant)
        }
    }

    /// The name of the model in messages about this entry's file: [`ModelEntry::display_name`],
    /// and for a file of a multi-file model its base name too
    /// (`big (Big-Q4_K_M-00002-of-00003.gguf)`).
    pub fn file_label(&self) -> String {
        if self.is_multi_file() {
            format!("{} ({})", self.display_name(), base_name(&self.hf_filename))
        } else {
            self.display_name()
        }
    }

    /// Whether the model is several files (shards, sidecars) downloaded and removed as one.
    pub fn is_multi_file(&self) -> bool {
        !self.files.is_empty()
    }

    /// Every file of the model, in order (one, for a single-file model).
    pub fn model_files(&self) -> Cow<'_, [ModelFile]> {
        if self.files.is_empty() {
            Cow::Owned(vec![ModelFile {
                path: self.hf_filename.clone(),
                size_bytes: self.size_bytes,
                sha256: self.sha256.clone(),
                role: FileRole::Weights,
            }])
        } else {
            Cow::Borrowed(&self.files)
        }
    }

    /// The bytes of every file of the model.
    pub fn total_size(&self) -> u64 {
        self.model_files().iter().map(|f| f.size_bytes).fold(0, u64::saturating_add)
    }

    /// One entry per file of the model, in order, each with that file's `hf_filename`,
    /// `size_bytes` and `sha256` (and the rest of the model's fields): what the resolver,
    /// the sources and the store work on, file by file. A single-file model's is itself.
    pub fn file_entries(&self) -> Vec<ModelEntry> {
        if self.files.is_empty() {
            return vec![self.clone()];
        }
        self.files
            .iter()
            .map(|f| ModelEntry {
                hf_filename: f.path.clone(),
                size_bytes: f.size_bytes,
                sha256: f.sha256.clone(),
                ..self.clone()
            })
            .collect()
    }

    /// The role of the file this entry describes (its `hf_filename`).
    pub fn role(&self) -> FileRole {
        self.files.iter().find(|f| f.path == self.hf_filename).map_or(FileRole::Weights, |f| f.role)
    }

    /// The folder of the models directory that holds a multi-file model's files (see
    /// [`unit_dir`](super::unit_dir)); `None` for a single-file model.
    pub fn unit_dir(&self) -> Option<String> {
        self.files.first().map(|f| unit_dir(&f.path))
    }

    /// Where the file this entry describes lives, relative to the models directory: its
    /// Hugging Face file name for a single-file model, `<unit dir>/<base name>` for a file
    /// of a multi-file model.
    pub fn local_file(&self) -> String {
        match self.unit_dir() {
            Some(dir) => format!("{dir}/{}", base_name(&self.hf_filename)),
            None => self.hf_filename.to_string(),
        }
    }

    /// Where a mirror (a directory, a bucket) may hold the file this entry describes, in the
    /// order tried: for a file of a multi-file model, the models directory's own layout first
    /// (`<unit dir>/<base name>`: unambiguous; a plain copy of a models directory is a mirror,
    /// and `mirror push` puts a file there when another model's file holds its repository
    /// path), then its repository path (`Q4_K_M/Big-…gguf`, where `mirror push` puts it
    /// otherwise); for a single-file model, its file name.
    pub fn mirror_paths(&self) -> Vec<String> {
        let mut paths = Vec::with_capacity(2);
        if self.is_multi_file() {
            paths.push(self.local_file());
        }
        paths.push(self.hf_filename.to_string());
        paths
    }

    /// Where the model's files come from, for people: the Hub repository (`owner/name`), or
    /// the registry's repository (`oci://host/repository`) of a model adopted from one.
    pub fn repository(&self) -> String {
        match &self.oci {
            Some(r) => r.repository_location(),
            None => self.hf_repo.to_string(),
        }
    }

    /// Where the model was published, as a URL for people and manifests: the Hub
    /// repository's page, or the pinned `oci://` reference of a model adopted from a registry.
    pub fn source_url(&self) -> String {
        match &self.oci {
            Some(r) => r.to_string(),
            None => format!("https://huggingface.co/{}", self.hf_repo),
        }
    }

    /// The revision the model is pinned to: the Hub commit, or `sha256:<manifest digest>`.
    pub fn pinned_revision(&self) -> String {
        match self.oci.as_ref().and_then(|r| r.digest.as_ref()) {
            Some(d) => format!("sha256:{d}"),
            None => self.revision.to_string(),
        }
    }

    /// The URL this entry's file is fetched from when no mirror has it: the pinned Hub URL
    /// ([`ModelEntry::hf_url`]), or, for a model adopted from a registry, its blob there
    /// (`https://host/v2/<repository>/blobs/sha256:<sha256>`).
    pub fn origin_url(&self, hf_endpoint: &Url) -> Url {
        match &self.oci {
            Some(r) => {
                let mut url = r.registry.clone();
                if let Ok(mut s) = url.path_segments_mut() {
                    s.clear()
                        .push("v2")
                        .extend(r.repository.split('/'))
                        .extend(["blobs", &format!("sha256:{}", self.sha256)]);
                }
                url
            }
            None => self.hf_url(hf_endpoint),
        }
    }

    /// The download URL of this entry on a Hugging Face endpoint, pinned to the entry's
    /// revision: `{endpoint}/{owner}/{repo}/resolve/{revision}/{file}`, each segment
    /// percent-encoded.
    ///
    /// ```
    /// let mut entry = strata_model::Catalog::builtin().resolve("minilm")?.clone();
    /// entry.hf_filename = "a #1?.gguf".into();
    /// let url = entry.hf_url(&"https://hub.example/mirror/".parse().unwrap());
    /// assert_eq!(
    ///     url.as_str(),
    ///     "https://hub.example/mirror/leliuga/all-MiniLM-L6-v2-GGUF/resolve/\
    ///      ddf2e25d5b8530422e7b14aa39f33a657ff9aec0/a%20%231%3F.gguf"
    /// );
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    pub fn hf_url(&self, endpoint: &Url) -> Url {
        let mut url = endpoint.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(self.hf_repo.split('/'));
            segments.extend(["resolve", &*self.revision]);
            segments.extend(self.hf_filename.split('/'));
        }
        url
    }
}
