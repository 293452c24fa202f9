//! The catalog: which models exist, where their bytes live, and what their bytes must hash to.
//!
//! The built-in rows are facts pinned to a Hugging Face commit; a custom catalog file adds rows
//! without recompiling (see [`crate::custom`]). Names are case-insensitive, `name:quant` selects
//! a variant, and aliases resolve to entries.

use std::borrow::Cow;

use serde::Serialize;

use crate::error::{RegistryError, Result};

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    /// Base name, lower case (`minilm`). Variants of one model share it.
    pub name: Cow<'static, str>,
    /// Quantization, lower case (`q8_0`, `f16`).
    pub quant: Cow<'static, str>,
    /// Whether a bare `name` (without `:quant`) selects this variant.
    pub default_variant: bool,
    /// One line for people.
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
    /// GGUF `general.architecture`.
    pub arch: Cow<'static, str>,
    /// Embedding dimension (0 for generative models or when unknown).
    pub embedding_dim: u32,
    /// What the model does.
    pub task: ModelTask,
    /// Licence identifier (`apache-2.0`, `mit`, `gemma`).
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

    /// The download URL of this entry on a Hugging Face endpoint (no trailing slash),
    /// pinned to the entry's revision.
    pub fn hf_url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.hf_repo,
            self.revision,
            self.hf_filename
        )
    }
}

#[allow(clippy::too_many_arguments)]
const fn builtin(
    name: &'static str,
    quant: &'static str,
    default_variant: bool,
    hf_repo: &'static str,
    revision: &'static str,
    hf_filename: &'static str,
    size_bytes: u64,
    sha256: &'static str,
    arch: &'static str,
    embedding_dim: u32,
    license: &'static str,
    description: &'static str,
) -> ModelEntry {
    ModelEntry {
        name: Cow::Borrowed(name),
        quant: Cow::Borrowed(quant),
        default_variant,
        description: Cow::Borrowed(description),
        hf_repo: Cow::Borrowed(hf_repo),
        revision: Cow::Borrowed(revision),
        hf_filename: Cow::Borrowed(hf_filename),
        size_bytes,
        sha256: Cow::Borrowed(sha256),
        arch: Cow::Borrowed(arch),
        embedding_dim,
        task: ModelTask::Embedding,
        license: Cow::Borrowed(license),
        origin: Origin::Builtin,
    }
}

const MINILM_REPO: &str = "leliuga/all-MiniLM-L6-v2-GGUF";
const MINILM_REV: &str = "ddf2e25d5b8530422e7b14aa39f33a657ff9aec0";
const NOMIC_REPO: &str = "nomic-ai/nomic-embed-text-v1.5-GGUF";
const NOMIC_REV: &str = "0188c9bf409793f810680a5a431e7b899c46104c";

/// The built-in catalog, in display order. Every row is pinned to a commit of its repository.
pub const BUILTIN: &[ModelEntry] = &[
    builtin(
        "minilm",
        "q8_0",
        true,
        MINILM_REPO,
        MINILM_REV,
        "all-MiniLM-L6-v2.Q8_0.gguf",
        25_008_064,
        "e5ec722e8c82dc4ffaf965175ca472f5da3f97b695590b5b0780bdbfa29bcaf3",
        "bert",
        384,
        "apache-2.0",
        "all-MiniLM-L6-v2: small, fast English sentence embeddings",
    ),
    builtin(
        "minilm",
        "f16",
        false,
        MINILM_REPO,
        MINILM_REV,
        "all-MiniLM-L6-v2.F16.gguf",
        45_949_216,
        "797b70c4edf85907fe0a49eb85811256f65fa0f7bf52166b147fd16be2be4662",
        "bert",
        384,
        "apache-2.0",
        "all-MiniLM-L6-v2 at half precision",
    ),
    builtin(
        "embeddinggemma",
        "q8_0",
        true,
        "ggml-org/embeddinggemma-300M-GGUF",
        "0f741b5a6585bd53aeb15cd1372c56f2a0f65e12",
        "embeddinggemma-300M-Q8_0.gguf",
        333_590_944,
        "b5ce9d77a3fc4b3b39ccb5643c36777911cc4eb46a66962eadfa3f5f60490d63",
        "gemma-embedding",
        768,
        "gemma",
        "EmbeddingGemma 300M: multilingual embeddings (Gemma terms of use)",
    ),
    builtin(
        "nomic-embed",
        "q8_0",
        true,
        NOMIC_REPO,
        NOMIC_REV,
        "nomic-embed-text-v1.5.Q8_0.gguf",
        146_146_432,
        "3e24342164b3d94991ba9692fdc0dd08e3fd7362e0aacc396a9a5c54a544c3b7",
        "nomic-bert",
        768,
        "apache-2.0",
        "nomic-embed-text v1.5: long-context English embeddings",
    ),
    builtin(
        "nomic-embed",
        "f16",
        false,
        NOMIC_REPO,
        NOMIC_REV,
        "nomic-embed-text-v1.5.f16.gguf",
        274_290_560,
        "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb",
        "nomic-bert",
        768,
        "apache-2.0",
        "nomic-embed-text v1.5 at half precision",
    ),
    builtin(
        "nomic-embed",
        "q4_k_m",
        false,
        NOMIC_REPO,
        NOMIC_REV,
        "nomic-embed-text-v1.5.Q4_K_M.gguf",
        84_106_624,
        "d4e388894e09cf3816e8b0896d81d265b55e7a9fff9ab03fe8bf4ef5e11295ac",
        "nomic-bert",
        768,
        "apache-2.0",
        "nomic-embed-text v1.5, 4-bit (Q4_K_M)",
    ),
    builtin(
        "bge-m3",
        "q8_0",
        true,
        "gpustack/bge-m3-GGUF",
        "2d48f1737679ad900d5c26c5aad5410e9c70fdca",
        "bge-m3-Q8_0.gguf",
        634_553_760,
        "950f4a8e5e19477a6d3c26d2f162233c20002c601f75e4b002e3239997821167",
        "bert",
        1024,
        "mit",
        "BGE-M3: multilingual, multi-granularity embeddings",
    ),
    builtin(
        "qwen3-embed",
        "q8_0",
        true,
        "Qwen/Qwen3-Embedding-8B-GGUF",
        "69d0e58a13e463cd99a9b83e3f5fee7c10265fab",
        "Qwen3-Embedding-8B-Q8_0.gguf",
        8_047_105_824,
        "d20ddc71e8a5c4344f2343481e242233a997dc5eaff442427a945836c97b4deb",
        "qwen3",
        4096,
        "apache-2.0",
        "Qwen3-Embedding 8B: large multilingual embeddings",
    ),
    builtin(
        "qwen3-embed-0.6b",
        "q8_0",
        true,
        "Qwen/Qwen3-Embedding-0.6B-GGUF",
        "370f27d7550e0def9b39c1f16d3fbaa13aa67728",
        "Qwen3-Embedding-0.6B-Q8_0.gguf",
        639_150_592,
        "06507c7b42688469c4e7298b0a1e16deff06caf291cf0a5b278c308249c3e439",
        "qwen3",
        1024,
        "apache-2.0",
        "Qwen3-Embedding 0.6B: compact multilingual embeddings",
    ),
];

/// Built-in aliases: `(alias, model name)`. Aliases are lower case and resolve before variants,
/// so `nomic:f16` works like `nomic-embed:f16`.
pub const BUILTIN_ALIASES: &[(&str, &str)] = &[
    ("all-minilm", "minilm"),
    ("all-minilm-l6-v2", "minilm"),
    ("gemma-embed", "embeddinggemma"),
    ("embedding-gemma", "embeddinggemma"),
    ("nomic", "nomic-embed"),
    ("nomic-embed-text", "nomic-embed"),
    ("bge", "bge-m3"),
    ("qwen3-embed-8b", "qwen3-embed"),
    ("qwen3-embedding", "qwen3-embed"),
];

/// The whole catalog in effect: the built-in rows plus any custom ones.
#[derive(Clone, Debug)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
    user_aliases: Vec<(String, String)>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Catalog {
    /// The built-in catalog alone.
    pub fn builtin() -> Self {
        Self { entries: BUILTIN.to_vec(), user_aliases: Vec::new() }
    }

    /// The built-in catalog followed by `custom` entries and user aliases (already validated).
    pub fn with_custom(custom: Vec<ModelEntry>, user_aliases: Vec<(String, String)>) -> Self {
        let mut entries = BUILTIN.to_vec();
        entries.extend(custom);
        Self { entries, user_aliases }
    }

    /// The aliases the user set, `(alias, target)`.
    pub fn user_aliases(&self) -> &[(String, String)] {
        &self.user_aliases
    }

    /// Every entry, built-in first, in display order.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// The custom entries only.
    pub fn custom_entries(&self) -> impl Iterator<Item = &ModelEntry> {
        self.entries.iter().filter(|e| e.origin == Origin::Custom)
    }

    /// The aliases that point at `name` (a base name): built-in ones, then the user's.
    pub fn aliases_of(&self, name: &str) -> Vec<String> {
        let builtin = BUILTIN_ALIASES.iter().filter(|(_, n)| *n == name).map(|(a, _)| a.to_string());
        let user =
            self.user_aliases.iter().filter(|(_, t)| self.resolve_plain(t).is_ok_and(|e| e.name == name));
        builtin.chain(user.map(|(a, _)| a.clone())).collect()
    }

    /// The variants of one model (same base name), default first.
    pub fn variants(&self, name: &str) -> Vec<&ModelEntry> {
        let mut v: Vec<&ModelEntry> = self.entries.iter().filter(|e| e.name == name).collect();
        v.sort_by_key(|e| !e.default_variant);
        v
    }

    /// Whether `name` (any case) is taken by a built-in model name or alias.
    pub fn is_builtin_name(name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        BUILTIN.iter().any(|e| e.name == lower.as_str()) || BUILTIN_ALIASES.iter().any(|(a, _)| *a == lower)
    }

    /// Resolves a user-supplied name to one entry.
    ///
    /// Accepts, case-insensitively: a model name (`minilm`), an alias (`all-minilm`), either
    /// with a quantization (`minilm:f16`, `minilm:Q8_0`), or a catalog file name
    /// (`all-MiniLM-L6-v2.F16.gguf`). An unknown name is [`RegistryError::UnknownModel`] with
    /// the closest names suggested.
    ///
    /// ```
    /// use strata_model::Catalog;
    /// let catalog = Catalog::builtin();
    /// assert_eq!(catalog.resolve("MiniLM:F16")?.hf_filename, "all-MiniLM-L6-v2.F16.gguf");
    /// assert_eq!(catalog.resolve("nomic")?.name, "nomic-embed");
    /// assert!(catalog.resolve("minilmm").is_err());
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    pub fn resolve(&self, input: &str) -> Result<&ModelEntry> {
        let lower = input.trim().to_ascii_lowercase();
        let (base, quant) =
            lower.split_once(':').map_or((lower.as_str(), None), |(b, q)| (b.trim(), Some(q.trim())));
        if let Some((_, target)) = self.user_aliases.iter().find(|(a, _)| a == base) {
            // A user alias: its target, at the quantization asked for, else the target's.
            let (target_base, target_quant) =
                target.split_once(':').map_or((target.as_str(), None), |(b, q)| (b, Some(q)));
            return match quant.filter(|q| !q.is_empty()).or(target_quant) {
                Some(q) => self.resolve_plain(&format!("{target_base}:{q}")),
                None => self.resolve_plain(target_base),
            };
        }
        self.resolve_plain(input)
    }

    /// [`Catalog::resolve`] without user aliases (so that aliases never chain).
    fn resolve_plain(&self, input: &str) -> Result<&ModelEntry> {
        let trimmed = input.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower.ends_with(".gguf") {
            if let Some(e) = self.entries.iter().find(|e| e.hf_filename.eq_ignore_ascii_case(trimmed)) {
                return Ok(e);
            }
        }
        let (base, quant) = match lower.split_once(':') {
            Some((b, q)) => (b.trim(), Some(q.trim())),
            None => (lower.as_str(), None),
        };
        let base = BUILTIN_ALIASES.iter().find(|(a, _)| *a == base).map(|(_, n)| *n).unwrap_or(base);
        let variants = self.variants(base);
        if variants.is_empty() || base.is_empty() {
            return Err(RegistryError::UnknownModel {
                name: trimmed.to_string(),
                suggestions: self.suggest(base),
            });
        }
        match quant {
            None | Some("") => Ok(variants[0]),
            Some(q) => {
                variants.iter().copied().find(|e| e.quant == q).ok_or_else(|| RegistryError::UnknownQuant {
                    model: base.to_string(),
                    quant: q.to_string(),
                    available: variants.iter().map(|e| e.display_name()).collect(),
                })
            }
        }
    }

    /// Up to three catalog names close to `input`, best first.
    pub fn suggest(&self, input: &str) -> Vec<String> {
        let input = input.to_ascii_lowercase();
        let mut scored: Vec<(usize, String)> = Vec::new();
        let candidates = self
            .entries
            .iter()
            .map(|e| (e.name.to_string(), e.name.to_string()))
            .chain(BUILTIN_ALIASES.iter().map(|(a, n)| (a.to_string(), n.to_string())));
        for (candidate, target) in candidates {
            let d = levenshtein(&input, &candidate);
            let close = d <= (candidate.len().max(input.len()) / 3).max(1);
            let contains = input.len() >= 3 && (candidate.contains(&input) || input.contains(&candidate));
            if close || contains {
                let score = if close { d } else { d + 10 };
                match scored.iter_mut().find(|(_, t)| *t == target) {
                    Some(existing) if existing.0 > score => existing.0 = score,
                    Some(_) => {}
                    None => scored.push((score, target)),
                }
            }
        }
        scored.sort();
        scored.into_iter().take(3).map(|(_, n)| n).collect()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_row_holds_the_invariants() {
        for e in BUILTIN {
            assert!(is_hex(&e.sha256, 64), "{}: sha256 must be 64 lower-case hex", e.display_name());
            assert!(is_hex(&e.revision, 40), "{}: revision must be 40 lower-case hex", e.display_name());
            assert!(e.hf_filename.ends_with(".gguf"), "{}", e.hf_filename);
            assert!(!e.hf_filename.contains(['/', '\\']) && !e.hf_filename.starts_with('.'));
            assert!(!e.hf_filename.contains(".."));
            let (owner, repo) = e.hf_repo.split_once('/').expect("owner/name");
            assert!(!owner.is_empty() && !repo.is_empty() && !repo.contains('/'));
            assert!(e.size_bytes > 0 && e.embedding_dim > 0);
            assert_eq!(e.name, e.name.to_ascii_lowercase());
            assert_eq!(e.quant, e.quant.to_ascii_lowercase());
            assert!(!e.name.contains(':'));
            assert_eq!(e.origin, Origin::Builtin);
            assert!(!e.description.is_empty() && !e.license.is_empty() && !e.arch.is_empty());
        }
    }

    #[test]
    fn names_aliases_and_files_are_unique() {
        let mut names = HashSet::new();
        let mut files = HashSet::new();
        let mut hashes = HashSet::new();
        for e in BUILTIN {
            assert!(names.insert(e.display_name()), "duplicate name {}", e.display_name());
            assert!(files.insert(e.hf_filename.to_ascii_lowercase()), "duplicate file {}", e.hf_filename);
            assert!(hashes.insert(e.sha256.clone()), "duplicate hash {}", e.sha256);
        }
        let mut aliases = HashSet::new();
        for (alias, target) in BUILTIN_ALIASES {
            assert!(aliases.insert(*alias), "duplicate alias {alias}");
            assert!(!BUILTIN.iter().any(|e| e.name == *alias), "alias {alias} shadows a model");
            assert!(BUILTIN.iter().any(|e| e.name == *target), "alias {alias} points nowhere");
            assert_eq!(*alias, alias.to_ascii_lowercase());
        }
    }

    #[test]
    fn exactly_one_default_variant_per_model() {
        let names: HashSet<_> = BUILTIN.iter().map(|e| e.name.clone()).collect();
        for name in names {
            let defaults = BUILTIN.iter().filter(|e| e.name == name && e.default_variant).count();
            assert_eq!(defaults, 1, "{name} must have exactly one default variant");
            let quants: Vec<_> = BUILTIN.iter().filter(|e| e.name == name).map(|e| &e.quant).collect();
            let unique: HashSet<_> = quants.iter().collect();
            assert_eq!(quants.len(), unique.len(), "{name}: duplicate quant");
        }
    }

    /// The exact facts of the design document's five models (as corrected by SPEC.md).
    #[test]
    fn exact_values_of_the_design_documents_models() {
        let c = Catalog::builtin();
        let check =
            |name: &str, repo: &str, rev: &str, file: &str, size: u64, sha: &str, arch: &str, dim: u32| {
                let e = c.resolve(name).unwrap();
                assert_eq!(
                    (
                        &*e.hf_repo,
                        &*e.revision,
                        &*e.hf_filename,
                        e.size_bytes,
                        &*e.sha256,
                        &*e.arch,
                        e.embedding_dim
                    ),
                    (repo, rev, file, size, sha, arch, dim),
                    "{name}"
                );
                assert_eq!(e.quant, "q8_0");
                assert_eq!(e.task, ModelTask::Embedding);
            };
        check(
            "minilm",
            "leliuga/all-MiniLM-L6-v2-GGUF",
            "ddf2e25d5b8530422e7b14aa39f33a657ff9aec0",
            "all-MiniLM-L6-v2.Q8_0.gguf",
            25008064,
            "e5ec722e8c82dc4ffaf965175ca472f5da3f97b695590b5b0780bdbfa29bcaf3",
            "bert",
            384,
        );
        check(
            "embeddinggemma",
            "ggml-org/embeddinggemma-300M-GGUF",
            "0f741b5a6585bd53aeb15cd1372c56f2a0f65e12",
            "embeddinggemma-300M-Q8_0.gguf",
            333590944,
            "b5ce9d77a3fc4b3b39ccb5643c36777911cc4eb46a66962eadfa3f5f60490d63",
            "gemma-embedding",
            768,
        );
        check(
            "nomic-embed",
            "nomic-ai/nomic-embed-text-v1.5-GGUF",
            "0188c9bf409793f810680a5a431e7b899c46104c",
            "nomic-embed-text-v1.5.Q8_0.gguf",
            146146432,
            "3e24342164b3d94991ba9692fdc0dd08e3fd7362e0aacc396a9a5c54a544c3b7",
            "nomic-bert",
            768,
        );
        check(
            "bge-m3",
            "gpustack/bge-m3-GGUF",
            "2d48f1737679ad900d5c26c5aad5410e9c70fdca",
            "bge-m3-Q8_0.gguf",
            634553760,
            "950f4a8e5e19477a6d3c26d2f162233c20002c601f75e4b002e3239997821167",
            "bert",
            1024,
        );
        check(
            "qwen3-embed",
            "Qwen/Qwen3-Embedding-8B-GGUF",
            "69d0e58a13e463cd99a9b83e3f5fee7c10265fab",
            "Qwen3-Embedding-8B-Q8_0.gguf",
            8047105824,
            "d20ddc71e8a5c4344f2343481e242233a997dc5eaff442427a945836c97b4deb",
            "qwen3",
            4096,
        );
        assert_eq!(c.resolve("embeddinggemma").unwrap().license, "gemma");
    }

    #[test]
    fn resolution_is_case_insensitive_with_aliases_and_quants() {
        let c = Catalog::builtin();
        assert_eq!(c.resolve("MINILM").unwrap().quant, "q8_0");
        assert_eq!(c.resolve(" minilm ").unwrap().quant, "q8_0");
        assert_eq!(c.resolve("minilm:q8_0").unwrap().hf_filename, "all-MiniLM-L6-v2.Q8_0.gguf");
        assert_eq!(c.resolve("all-minilm:F16").unwrap().hf_filename, "all-MiniLM-L6-v2.F16.gguf");
        assert_eq!(c.resolve("nomic:q4_k_m").unwrap().size_bytes, 84106624);
        assert_eq!(c.resolve("gemma-embed").unwrap().name, "embeddinggemma");
        assert_eq!(c.resolve("bge").unwrap().name, "bge-m3");
        assert_eq!(c.resolve("qwen3-embed-0.6b").unwrap().size_bytes, 639150592);
        assert_eq!(c.resolve("bge-m3-q8_0.GGUF").unwrap().name, "bge-m3");
        assert_eq!(c.resolve("minilm:").unwrap().quant, "q8_0");
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let c = Catalog::builtin();
        match c.resolve("minilmm") {
            Err(RegistryError::UnknownModel { name, suggestions }) => {
                assert_eq!(name, "minilmm");
                assert_eq!(suggestions.first().map(String::as_str), Some("minilm"));
            }
            other => panic!("expected UnknownModel, got {other:?}"),
        }
        match c.resolve("nomic-embd") {
            Err(RegistryError::UnknownModel { suggestions, .. }) => assert_eq!(suggestions[0], "nomic-embed"),
            other => panic!("{other:?}"),
        }
        match c.resolve("zzzzzzzzzz") {
            Err(RegistryError::UnknownModel { suggestions, .. }) => assert!(suggestions.is_empty()),
            other => panic!("{other:?}"),
        }
        for bad in ["", ":", ":q8_0", "   ", "minilm:f16:x", "\0", "ünïcödé"] {
            assert!(c.resolve(bad).is_err(), "{bad:?} must not resolve");
        }
        let msg = c.resolve("minilmm").unwrap_err().to_string();
        assert!(msg.contains("did you mean `minilm`"), "{msg}");
    }

    #[test]
    fn unknown_quant_lists_the_variants() {
        let err = Catalog::builtin().resolve("minilm:q4_0").unwrap_err();
        match &err {
            RegistryError::UnknownQuant { model, quant, available } => {
                assert_eq!((model.as_str(), quant.as_str()), ("minilm", "q4_0"));
                assert_eq!(available, &["minilm".to_string(), "minilm:f16".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("minilm:f16"));
    }

    #[test]
    fn urls_are_pinned_to_the_revision() {
        let e = Catalog::builtin().resolve("minilm").unwrap().clone();
        assert_eq!(
            e.hf_url("https://huggingface.co/"),
            "https://huggingface.co/leliuga/all-MiniLM-L6-v2-GGUF/resolve/ddf2e25d5b8530422e7b14aa39f33a657ff9aec0/all-MiniLM-L6-v2.Q8_0.gguf"
        );
    }
}
