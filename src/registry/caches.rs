//! What `sources` shows of other tools' caches: every location looked at, whether it exists,
//! and how many catalog models it seems to hold (found by name or content and of the right
//! size; hashed only when one is about to be reused).

use std::path::PathBuf;

use serde::Serialize;

use super::Registry;
use crate::config::CacheTool;

/// One cache location of another tool.
#[derive(Clone, Debug, Serialize)]
pub struct CacheLocation {
    /// The tool.
    pub tool: CacheTool,
    /// The folder.
    #[serde(serialize_with = "crate::json_path::serialize")]
    pub path: PathBuf,
    /// Where the location comes from: a variable, a file, or `default`.
    pub from: &'static str,
    /// Whether the folder exists.
    pub exists: bool,
    /// Catalog models found there with the right size (not yet hashed).
    pub models: Vec<String>,
}

impl Registry {
    /// Every other tool's cache location searched before a download, in search order.
    pub fn cache_locations(&self) -> Vec<CacheLocation> {
        self.config()
            .caches()
            .iter()
            .map(|dir| {
                let one = std::slice::from_ref(dir);
                let models = self
                    .catalog()
                    .entries()
                    .iter()
                    .filter(|e| !crate::download::candidates(one, e).is_empty())
                    .map(|e| e.display_name())
                    .collect();
                CacheLocation {
                    tool: dir.tool,
                    path: dir.path.clone(),
                    from: dir.from,
                    exists: dir.path.is_dir(),
                    models,
                }
            })
            .collect()
    }
}
