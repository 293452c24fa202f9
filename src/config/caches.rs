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

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::vars;
use crate::error::{RegistryError, Result};

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

/// The environment as the crate reads it: a variable's raw value (`None` when unset or empty).
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// `variable`'s value as a path, with a leading `~` (alone or before a `/`) expanded to `home`.
/// A `~` with no home directory known is an error naming the variable: it would otherwise
/// become a literal folder named `~` in the working directory.
pub(crate) fn expand(variable: &str, value: &OsStr, home: Option<&Path>) -> Result<PathBuf> {
    let path = Path::new(value);
    let mut parts = path.components();
    match parts.next() {
        Some(std::path::Component::Normal(first)) if first == "~" => {}
        Some(std::path::Component::Normal(first)) if first.as_encoded_bytes().starts_with(b"~") => {
            return Err(RegistryError::config(
                variable,
                format!(
                    "`{}`: `~user` is not expanded (only `~` is, to your home directory); give an absolute path",
                    path.display()
                ),
            ));
        }
        _ => return Ok(path.to_path_buf()),
    }
    match home {
        Some(h) => Ok(h.join(parts.as_path())),
        None => Err(RegistryError::config(
            variable,
            format!(
                "`{}` starts with `~` but the home directory is unknown (HOME is unset and this user has \
                 no home in the password database); give an absolute path",
                path.display()
            ),
        )),
    }
}

/// A path variable, expanded (see [`expand`]).
pub(crate) fn path_var(get: Env<'_>, variable: &str, home: Option<&Path>) -> Result<Option<PathBuf>> {
    get(variable).map(|v| expand(variable, &v, home)).transpose()
}

/// The Hugging Face home: `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface`.
pub(crate) fn hf_home(get: Env<'_>, home: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(p) = path_var(get, vars::HF_HOME, home)? {
        return Ok(Some(p));
    }
    if let Some(p) = path_var(get, vars::XDG_CACHE_HOME, home)? {
        return Ok(Some(p.join("huggingface")));
    }
    Ok(home.map(|h| h.join(".cache").join("huggingface")))
}

/// The hub cache huggingface_hub uses: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else
/// `$HF_HOME/hub` (see [`hf_home`]).
pub(crate) fn hf_hub_cache(get: Env<'_>, home: Option<&Path>) -> Result<Option<PathBuf>> {
    for var in [vars::HF_HUB_CACHE, vars::HUGGINGFACE_HUB_CACHE] {
        if let Some(p) = path_var(get, var, home)? {
            return Ok(Some(p));
        }
    }
    Ok(hf_home(get, home)?.map(|h| h.join("hub")))
}

/// LM Studio's models folders: for its home (`LMSTUDIO_HOME`, the pointer file, or the
/// defaults), `downloadsFolder` from its `settings.json`, else `<home>/models`.
fn lm_studio(get: Env<'_>, home: Option<&Path>) -> Result<Vec<(PathBuf, &'static str)>> {
    let mut homes: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(p) = path_var(get, vars::LMSTUDIO_HOME, home)? {
        homes.push((p, vars::LMSTUDIO_HOME));
    }
    if let Some(h) = home {
        // LM Studio's own files: a path in them that cannot be used is skipped, not an error.
        if let Ok(text) = std::fs::read_to_string(h.join(".lmstudio-home-pointer")) {
            let pointed = text.trim();
            if !pointed.is_empty() {
                if let Ok(p) = expand("~/.lmstudio-home-pointer", OsStr::new(pointed), home) {
                    homes.push((p, "~/.lmstudio-home-pointer"));
                }
            }
        }
        homes.push((h.join(".cache").join("lm-studio"), "default"));
        homes.push((h.join(".lmstudio"), "default"));
    }
    Ok(homes
        .into_iter()
        .map(|(dir, from)| {
            let relocated = std::fs::read(dir.join("settings.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|v| v.get("downloadsFolder")?.as_str().map(str::to_string))
                .and_then(|p| expand("LM Studio settings.json", OsStr::new(&p), home).ok());
            match relocated {
                Some(models) => (models, "LM Studio settings.json (downloadsFolder)"),
                None => (dir.join("models"), from),
            }
        })
        .collect())
}

/// Every cache folder of every tool, from the environment lookup `get` (a variable's raw
/// value) and the home directory, in the order they are searched (duplicates removed).
///
/// # Errors
/// [`RegistryError::InvalidConfig`] naming the variable when a value starts with `~` and no
/// home directory is known.
pub fn default_dirs(get: &dyn Fn(&str) -> Option<OsString>, home: Option<PathBuf>) -> Result<Vec<CacheDir>> {
    let home = home.as_deref();
    let var = |name: &str| path_var(get, name, home);
    let mut dirs: Vec<CacheDir> = Vec::new();
    let mut push = |tool, path: PathBuf, layout, from| {
        if !dirs.iter().any(|d| d.path == path && d.layout == layout) {
            dirs.push(CacheDir { tool, path, layout, from });
        }
    };
    use CacheTool::*;
    use Layout::*;
    // Hugging Face: every variable huggingface_hub reads, then the defaults.
    for name in [vars::HF_HUB_CACHE, vars::HUGGINGFACE_HUB_CACHE] {
        if let Some(p) = var(name)? {
            push(HuggingFace, p, Hub, name);
        }
    }
    if let Some(p) = var(vars::HF_HOME)? {
        push(HuggingFace, p.join("hub"), Hub, vars::HF_HOME);
    }
    let xdg_cache = var(vars::XDG_CACHE_HOME)?;
    if let Some(p) = &xdg_cache {
        push(HuggingFace, p.join("huggingface").join("hub"), Hub, vars::XDG_CACHE_HOME);
    }
    if let Some(h) = home {
        push(HuggingFace, h.join(".cache/huggingface/hub"), Hub, "default");
    }
    // llama.cpp: LLAMA_CACHE holds flat files (before March 2026) or the hub layout (since).
    if let Some(p) = var(vars::LLAMA_CACHE)? {
        push(LlamaCpp, p.clone(), LlamaFlat, vars::LLAMA_CACHE);
        push(LlamaCpp, p, Hub, vars::LLAMA_CACHE);
    }
    if let Some(p) = &xdg_cache {
        push(LlamaCpp, p.join("llama.cpp"), LlamaFlat, vars::XDG_CACHE_HOME);
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
    if let Some(p) = var(vars::OLLAMA_MODELS)? {
        push(Ollama, p, OllamaBlobs, vars::OLLAMA_MODELS);
    }
    if let Some(h) = home {
        push(Ollama, h.join(".ollama/models"), OllamaBlobs, "default");
    }
    push(Ollama, PathBuf::from("/usr/share/ollama/.ollama/models"), OllamaBlobs, "default (Linux service)");
    // RamaLama.
    if let Some(p) = var(vars::XDG_DATA_HOME)? {
        push(RamaLama, p.join("ramalama/store"), RamaLamaStore, vars::XDG_DATA_HOME);
    }
    if let Some(h) = home {
        push(RamaLama, h.join(".local/share/ramalama/store"), RamaLamaStore, "default");
    }
    push(RamaLama, PathBuf::from("/var/lib/ramalama/store"), RamaLamaStore, "default (root)");
    // LM Studio.
    for (path, from) in lm_studio(get, home)? {
        push(CacheTool::LmStudio, path, Layout::LmStudio, from);
    }
    Ok(dirs)
}

/// The registry credential files, in the order podman and skopeo read them
/// (containers-auth.json(5)), then Docker's.
pub(crate) fn registry_auth_files(get: Env<'_>, home: Option<&Path>) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    match path_var(get, vars::REGISTRY_AUTH_FILE, home)? {
        Some(f) => files.push(f),
        None => {
            files.extend(path_var(get, vars::XDG_RUNTIME_DIR, home)?.map(|d| d.join("containers/auth.json")))
        }
    }
    let config_home = path_var(get, vars::XDG_CONFIG_HOME, home)?.or_else(|| home.map(|h| h.join(".config")));
    files.extend(config_home.map(|d| d.join("containers/auth.json")));
    let docker = path_var(get, vars::DOCKER_CONFIG, home)?.or_else(|| home.map(|h| h.join(".docker")));
    files.extend(docker.map(|d| d.join("config.json")));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn dirs(pairs: &[(&str, &str)], home: &Path) -> Vec<CacheDir> {
        let map: HashMap<String, OsString> =
            pairs.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        default_dirs(&|k| map.get(k).cloned(), Some(home.to_path_buf())).unwrap()
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
            hf_hub_cache(&|k| (k == "HF_HOME").then(|| OsString::from("~/x")), Some(home)).unwrap(),
            Some("/h/x/hub".into())
        );
        let err = hf_hub_cache(&|k| (k == "HF_HOME").then(|| OsString::from("~/x")), None).unwrap_err();
        assert!(
            err.to_string().contains("HF_HOME") && err.to_string().contains("home directory is unknown"),
            "{err}"
        );
        assert_eq!(expand("V", OsStr::new("~"), Some(home)).unwrap(), Path::new("/h"));
        let err = expand("V", OsStr::new("~x/y"), Some(home)).unwrap_err().to_string();
        assert!(err.contains("`~user` is not expanded"), "{err}");
        assert_eq!(expand("V", OsStr::new("a/~"), None).unwrap(), Path::new("a/~"));
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
