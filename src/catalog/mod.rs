//! The catalog: which models exist, where their bytes live, and what their bytes must hash to.
//!
//! The built-in rows ([`builtin`]) are facts pinned to a Hugging Face commit; a custom catalog
//! file adds rows without recompiling ([`custom`]). Names are case-insensitive, `name:quant`
//! selects a variant, and aliases resolve to entries.

use crate::error::{RegistryError, Result};

pub mod builtin;
pub mod custom;
mod custom_model;
mod entry;
mod file_names;
mod files;
mod oci_reference;
pub mod reference;

pub use builtin::{BUILTIN, BUILTIN_ALIASES};
pub use custom_model::CustomModel;
#[cfg(feature = "registry")]
pub(crate) use custom_model::{infer_quant, valid_name};
pub use entry::{ModelEntry, ModelTask, Origin, UNKNOWN};
#[cfg(feature = "registry")]
pub(crate) use file_names::{invalid_file_name, is_bidi_control, non_portable_file_name};
#[cfg(feature = "registry")]
pub(crate) use files::{is_hex, quant_name};
pub use files::{split_name, unit_dir, CustomFile, FileRole, ModelFile, SplitName, MAX_FILE_SIZE};
pub use oci_reference::{valid_repository, valid_tag, OciReference, ParseOciError};
pub use reference::{HubReference, ParseReferenceError, Select};

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

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

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
        let hub: Url = "https://huggingface.co".parse().unwrap();
        assert_eq!(
            e.hf_url(&hub).as_str(),
            "https://huggingface.co/leliuga/all-MiniLM-L6-v2-GGUF/resolve/ddf2e25d5b8530422e7b14aa39f33a657ff9aec0/all-MiniLM-L6-v2.Q8_0.gguf"
        );
        let mut odd = e.clone();
        odd.hf_filename = "x#y?z w.gguf".into();
        assert!(odd.hf_url(&hub).as_str().ends_with("/x%23y%3Fz%20w.gguf"), "{}", odd.hf_url(&hub));
    }

    #[test]
    fn entries_serialize_their_base_name_as_model() {
        let catalog = Catalog::builtin();
        let v = serde_json::to_value(catalog.resolve("minilm:f16").unwrap()).unwrap();
        assert_eq!((v["model"].as_str(), v["quant"].as_str()), (Some("minilm"), Some("f16")));
        assert!(v.get("name").is_none());
    }
}
