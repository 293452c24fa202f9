//! One catalog entry: a model at one quantization, pinned to a commit, a size and a SHA-256.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use url::Url;

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
    /// Hugging Face repository, `owner/name`.
    pub hf_repo: Cow<'static, str>,
    /// The commit every download is pinned to (40 lower-case hex digits).
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
            segments.extend(["resolve", &*self.revision, &*self.hf_filename]);
        }
        url
    }
}

/// Whether `s` is `len` lower-case hex digits.
pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
