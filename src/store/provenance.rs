//! [`Provenance`]: where a model's file came from, recorded beside it when it was installed
//! (`.strata/<file>.origin`, JSON).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::CacheTool;
use crate::fs::LinkMethod;

/// Where a model file came from, recorded when it was installed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// Downloaded (or copied) from a source.
    Source {
        /// The source, as it displays itself (`Hugging Face https://huggingface.co`).
        source: String,
        /// The file's Xet file id (`X-Xet-Hash`), when the Hub stores it in Xet: what a later
        /// download of another version needs to rebuild that one from this file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        xet_hash: Option<String>,
    },
    /// Reused from another tool's cache.
    Reused {
        /// The tool.
        tool: CacheTool,
        /// The file in its cache.
        #[serde(
            serialize_with = "crate::json_path::serialize",
            deserialize_with = "crate::json_path::deserialize"
        )]
        path: PathBuf,
        /// How its bytes were put in the models directory.
        method: LinkMethod,
    },
}

impl Provenance {
    /// The other tool whose cache the file was reused from, if it was.
    pub fn reused_from(&self) -> Option<CacheTool> {
        match self {
            Self::Reused { tool, .. } => Some(*tool),
            Self::Source { .. } => None,
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        // Files written before the format was JSON hold the source's name alone.
        serde_json::from_str(text)
            .ok()
            .or_else(|| Some(Self::Source { source: text.to_string(), xet_hash: None }))
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source { source, .. } => f.write_str(source),
            Self::Reused { tool, path, method } => {
                write!(f, "{tool} {} ({})", path.display(), method.as_str())
            }
        }
    }
}
