//! The built-in catalog: data only. Every row is pinned to a Hugging Face commit, an exact
//! size and a SHA-256, checked against several independent public sources (see SPEC.md).

use std::borrow::Cow;

use super::entry::{ModelEntry, ModelTask, Origin};

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
        // Every row was taken from its repository's `main`.
        tracks: Some(Cow::Borrowed("main")),
        files: Cow::Borrowed(&[]),
        oci: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::entry::is_hex;
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
}
