//! Where other tools keep model files that strata-model may reuse: the Hugging Face hub
//! cache, llama.cpp's cache and LM Studio's models folder. Locations only; looking inside
//! them is the download's job.

use std::path::PathBuf;

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
}

impl CacheTool {
    /// How messages name the tool's cache (`Hugging Face cache`).
    pub fn label(self) -> &'static str {
        match self {
            Self::HuggingFace => "Hugging Face cache",
            Self::LlamaCpp => "llama.cpp cache",
            Self::LmStudio => "LM Studio",
        }
    }
}

impl std::fmt::Display for CacheTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The layout of a cache folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `models--{org}--{name}/blobs/<sha256>` and `snapshots/<rev>/<file>`.
    Hub,
    /// `<publisher>/<repo>/<file>`.
    LmStudio,
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
}

/// The usual cache folders, from the environment lookup `get` and the home directory.
pub fn default_dirs(get: &dyn Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Vec<CacheDir> {
    let mut dirs = Vec::new();
    let mut push = |tool, path: PathBuf, layout| {
        if !dirs.iter().any(|d: &CacheDir| d.path == path) {
            dirs.push(CacheDir { tool, path, layout });
        }
    };
    if let Some(p) = get(vars::HF_HUB_CACHE) {
        push(CacheTool::HuggingFace, PathBuf::from(p), Layout::Hub);
    }
    if let Some(p) = get(vars::HF_HOME) {
        push(CacheTool::HuggingFace, PathBuf::from(p).join("hub"), Layout::Hub);
    }
    if let Some(p) = get(vars::LLAMA_CACHE) {
        push(CacheTool::LlamaCpp, PathBuf::from(p), Layout::Hub);
    }
    if let Some(h) = home {
        push(CacheTool::HuggingFace, h.join(".cache/huggingface/hub"), Layout::Hub);
        push(CacheTool::LlamaCpp, h.join(".cache/llama.cpp"), Layout::Hub);
        push(CacheTool::LmStudio, h.join(".lmstudio/models"), Layout::LmStudio);
        push(CacheTool::LmStudio, h.join(".cache/lm-studio/models"), Layout::LmStudio);
    }
    dirs
}
