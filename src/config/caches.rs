//! Where other tools keep model files that strata-model may reuse, as each tool finds them:
//!
//! | tool | locations | layout |
//! |---|---|---|
//! | Hugging Face (huggingface_hub `constants.py`) | `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub` | `models--{org}--{name}/blobs/<sha256>` |
//! | llama.cpp (`common.cpp` `fs_get_cache_directory`, `download.cpp`) | `LLAMA_CACHE`, `$XDG_CACHE_HOME/llama.cpp`, `~/.cache/llama.cpp`, `~/Library/Caches/llama.cpp`, `%LOCALAPPDATA%\llama.cpp` | flat `<owner>_<repo>_<file>`; since March 2026 the hub layout, at `LLAMA_CACHE` or the Hugging Face chain |
//! | Ollama | `OLLAMA_MODELS`, `~/.ollama/models`, `/usr/share/ollama/.ollama/models` | `blobs/sha256-<hex>` (older: `sha256:<hex>`) |
//! | RamaLama (`config.py`, `model_store/`) | `$XDG_DATA_HOME/ramalama/store`, `~/.local/share/ramalama/store`, `/var/lib/ramalama/store` | `<type>/<org>/<name>/blobs/sha256-<hex>` |
//! | LM Studio (lmstudio-js `findLMStudioHome`) | `LMSTUDIO_HOME`, the path in `~/.lmstudio-home-pointer`, `~/.cache/lm-studio`, `~/.lmstudio`; its `models` folder or `downloadsFolder` from `settings.json` | `<publisher>/<repo>/<file>` |
//!
//! Locations only; looking inside them is the download's job. `~` in a variable is expanded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::vars;

/// Another tool whose cache may hold a catalog file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CacheTool {
    /// huggingface_hub, transformers and friends.
    #[serde(rename = "huggingface")]
    HuggingFace,
    /// llama.cpp.
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    /// LM Studio.
    LmStudio,
    /// Ollama.
    Ollama,
    /// RamaLama.
    #[serde(rename = "ramalama")]
    RamaLama,
}

impl CacheTool {
    /// How messages name the tool's cache (`Hugging Face cache`).
    pub fn label(self) -> &'static str {
        match self {
            Self::HuggingFace => "Hugging Face cache",
            Self::LlamaCpp => "llama.cpp cache",
            Self::LmStudio => "LM Studio",
            Self::Ollama => "Ollama",
            Self::RamaLama => "RamaLama",
        }
    }
}

impl std::fmt::Display for CacheTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The layout of a cache folder: how a file is found in it, by name or by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// The Hugging Face hub cache: `models--{org}--{name}/blobs/<sha256>` (in any
    /// repository's folder: blobs are named by content) and `snapshots/<rev>/<file>`.
    Hub,
    /// llama.cpp's flat files: `<owner>_<repo>_<file>`.
    LlamaFlat,
    /// LM Studio's models folder: `<publisher>/<repo>/<file>`.
    LmStudio,
    /// Ollama's blobs: `blobs/sha256-<hex>`, or `blobs/sha256:<hex>` in older builds.
    OllamaBlobs,
    /// RamaLama's store: `<type>/<org>/<name>/blobs/sha256-<hex>`.
    RamaLamaStore,
}

/// A cache folder of another tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheDir {
    /// Which tool.
    pub tool: CacheTool,
    /// The folder.
    pub path: PathBuf,
    /// Its layout.
    pub layout: Layout,
    /// Where the location comes from: a variable (`HF_HUB_CACHE`), a file, or `default`.
    pub from: &'static str,
}

/// A variable's value as a path, with a leading `~` expanded.
pub(crate) fn expand(value: &str, home: Option<&Path>) -> PathBuf {
    match (value, home) {
        ("~", Some(h)) => h.to_path_buf(),
        (v, Some(h)) if v.starts_with("~/") => h.join(&v[2..]),
        (v, _) => PathBuf::from(v),
    }
}

/// The Hugging Face home: `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface`.
pub(crate) fn hf_home(get: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    get(vars::HF_HOME)
        .map(|v| expand(&v, home))
        .or_else(|| get(vars::XDG_CACHE_HOME).map(|v| expand(&v, home).join("huggingface")))
        .or_else(|| home.map(|h| h.join(".cache").join("huggingface")))
}

/// The hub cache huggingface_hub uses: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else
/// `$HF_HOME/hub` (see [`hf_home`]).
pub(crate) fn hf_hub_cache(get: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    get(vars::HF_HUB_CACHE)
        .or_else(|| get(vars::HUGGINGFACE_HUB_CACHE))
        .map(|v| expand(&v, home))
        .or_else(|| hf_home(get, home).map(|h| h.join("hub")))
}

/// LM Studio's models folders: for its home (`LMSTUDIO_HOME`, the pointer file, or the
/// defaults), `downloadsFolder` from its `settings.json`, else `<home>/models`.
fn lm_studio(get: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let mut homes: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(v) = get(vars::LMSTUDIO_HOME) {
        homes.push((expand(&v, home), vars::LMSTUDIO_HOME));
    }
    if let Some(h) = home {
        if let Ok(text) = std::fs::read_to_string(h.join(".lmstudio-home-pointer")) {
            let pointed = text.trim();
            if !pointed.is_empty() {
                homes.push((expand(pointed, home), "~/.lmstudio-home-pointer"));
            }
        }
        homes.push((h.join(".cache").join("lm-studio"), "default"));
        homes.push((h.join(".lmstudio"), "default"));
    }
    homes
        .into_iter()
        .map(|(dir, from)| {
            let relocated = std::fs::read(dir.join("settings.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|v| v.get("downloadsFolder")?.as_str().map(|p| expand(p, home)));
            match relocated {
                Some(models) => (models, "LM Studio settings.json (downloadsFolder)"),
                None => (dir.join("models"), from),
            }
        })
        .collect()
}

/// Every cache folder of every tool, from the environment lookup `get` and the home
/// directory, in the order they are searched (duplicates removed).
pub fn default_dirs(get: &dyn Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Vec<CacheDir> {
    let home = home.as_deref();
    let mut dirs: Vec<CacheDir> = Vec::new();
    let mut push = |tool, path: PathBuf, layout, from| {
        if !dirs.iter().any(|d| d.path == path && d.layout == layout) {
            dirs.push(CacheDir { tool, path, layout, from });
        }
    };
    use CacheTool::*;
    use Layout::*;
    // Hugging Face: every variable huggingface_hub reads, then the defaults.
    for var in [vars::HF_HUB_CACHE, vars::HUGGINGFACE_HUB_CACHE] {
        if let Some(v) = get(var) {
            push(HuggingFace, expand(&v, home), Hub, var);
        }
    }
    if let Some(v) = get(vars::HF_HOME) {
        push(HuggingFace, expand(&v, home).join("hub"), Hub, vars::HF_HOME);
    }
    if let Some(v) = get(vars::XDG_CACHE_HOME) {
        push(HuggingFace, expand(&v, home).join("huggingface").join("hub"), Hub, vars::XDG_CACHE_HOME);
    }
    if let Some(h) = home {
        push(HuggingFace, h.join(".cache/huggingface/hub"), Hub, "default");
    }
    // llama.cpp: LLAMA_CACHE holds flat files (before March 2026) or the hub layout (since).
    if let Some(v) = get(vars::LLAMA_CACHE) {
        push(LlamaCpp, expand(&v, home), LlamaFlat, vars::LLAMA_CACHE);
        push(LlamaCpp, expand(&v, home), Hub, vars::LLAMA_CACHE);
    }
    if let Some(v) = get(vars::XDG_CACHE_HOME) {
        push(LlamaCpp, expand(&v, home).join("llama.cpp"), LlamaFlat, vars::XDG_CACHE_HOME);
    }
    if let Some(h) = home {
        push(LlamaCpp, h.join(".cache/llama.cpp"), LlamaFlat, "default");
        if cfg!(target_os = "macos") {
            push(LlamaCpp, h.join("Library/Caches/llama.cpp"), LlamaFlat, "default");
        }
    }
    if cfg!(windows) {
        if let Some(v) = get(vars::LOCALAPPDATA) {
            push(LlamaCpp, PathBuf::from(v).join("llama.cpp"), LlamaFlat, vars::LOCALAPPDATA);
        }
    }
    // Ollama.
    if let Some(v) = get(vars::OLLAMA_MODELS) {
        push(Ollama, expand(&v, home), OllamaBlobs, vars::OLLAMA_MODELS);
    }
    if let Some(h) = home {
        push(Ollama, h.join(".ollama/models"), OllamaBlobs, "default");
    }
    push(Ollama, PathBuf::from("/usr/share/ollama/.ollama/models"), OllamaBlobs, "default (Linux service)");
    // RamaLama.
    if let Some(v) = get(vars::XDG_DATA_HOME) {
        push(RamaLama, expand(&v, home).join("ramalama/store"), RamaLamaStore, vars::XDG_DATA_HOME);
    }
    if let Some(h) = home {
        push(RamaLama, h.join(".local/share/ramalama/store"), RamaLamaStore, "default");
    }
    push(RamaLama, PathBuf::from("/var/lib/ramalama/store"), RamaLamaStore, "default (root)");
    // LM Studio.
    for (path, from) in lm_studio(get, home) {
        push(CacheTool::LmStudio, path, Layout::LmStudio, from);
    }
    dirs
}

/// The registry credential files, in the order podman and skopeo read them
/// (containers-auth.json(5)), then Docker's.
pub(crate) fn registry_auth_files(get: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    match get(vars::REGISTRY_AUTH_FILE) {
        Some(f) => files.push(expand(&f, home)),
        None => {
            files.extend(get(vars::XDG_RUNTIME_DIR).map(|d| expand(&d, home).join("containers/auth.json")))
        }
    }
    let config_home =
        get(vars::XDG_CONFIG_HOME).map(|d| expand(&d, home)).or_else(|| home.map(|h| h.join(".config")));
    files.extend(config_home.map(|d| d.join("containers/auth.json")));
    let docker =
        get(vars::DOCKER_CONFIG).map(|d| expand(&d, home)).or_else(|| home.map(|h| h.join(".docker")));
    files.extend(docker.map(|d| d.join("config.json")));
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn dirs(pairs: &[(&str, &str)], home: &Path) -> Vec<CacheDir> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        default_dirs(&|k| map.get(k).cloned(), Some(home.to_path_buf()))
    }

    #[test]
    fn every_variable_is_honoured_and_tilde_expanded() {
        let home = Path::new("/h");
        let d = dirs(
            &[
                ("HF_HUB_CACHE", "~/hub"),
                ("HUGGINGFACE_HUB_CACHE", "/old/hub"),
                ("HF_HOME", "~/hf"),
                ("XDG_CACHE_HOME", "/xdg"),
                ("LLAMA_CACHE", "~/llama"),
                ("OLLAMA_MODELS", "~/ollama"),
                ("XDG_DATA_HOME", "/data"),
            ],
            home,
        );
        let has = |tool, path: &str, layout| {
            d.iter().any(|c| c.tool == tool && c.path == Path::new(path) && c.layout == layout)
        };
        assert!(has(CacheTool::HuggingFace, "/h/hub", Layout::Hub));
        assert!(has(CacheTool::HuggingFace, "/old/hub", Layout::Hub));
        assert!(has(CacheTool::HuggingFace, "/h/hf/hub", Layout::Hub));
        assert!(has(CacheTool::HuggingFace, "/xdg/huggingface/hub", Layout::Hub));
        assert!(has(CacheTool::HuggingFace, "/h/.cache/huggingface/hub", Layout::Hub));
        assert!(has(CacheTool::LlamaCpp, "/h/llama", Layout::LlamaFlat));
        assert!(has(CacheTool::LlamaCpp, "/h/llama", Layout::Hub));
        assert!(has(CacheTool::LlamaCpp, "/xdg/llama.cpp", Layout::LlamaFlat));
        assert!(has(CacheTool::LlamaCpp, "/h/.cache/llama.cpp", Layout::LlamaFlat));
        assert!(has(CacheTool::Ollama, "/h/ollama", Layout::OllamaBlobs));
        assert!(has(CacheTool::Ollama, "/h/.ollama/models", Layout::OllamaBlobs));
        assert!(has(CacheTool::RamaLama, "/data/ramalama/store", Layout::RamaLamaStore));
        assert!(has(CacheTool::LmStudio, "/h/.lmstudio/models", Layout::LmStudio));
        assert_eq!(
            hf_hub_cache(&|k| (k == "HF_HOME").then(|| "~/x".to_string()), Some(home)),
            Some("/h/x/hub".into())
        );
    }

    #[test]
    fn lm_studio_follows_its_pointer_and_relocated_models_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        let studio = home.join("elsewhere/lms");
        std::fs::create_dir_all(&studio).unwrap();
        std::fs::write(home.join(".lmstudio-home-pointer"), format!("{}\n", studio.display())).unwrap();
        std::fs::write(studio.join("settings.json"), r#"{"downloadsFolder": "~/big-disk/models"}"#).unwrap();
        let d = dirs(&[], home);
        let lm: Vec<_> = d.iter().filter(|c| c.tool == CacheTool::LmStudio).collect();
        assert_eq!(lm[0].path, home.join("big-disk/models"));
        assert_eq!(lm[1].path, home.join(".cache/lm-studio/models"));
    }
}
