//! [`ModelInfo`]: a catalog entry with what is on disk for it — the rows of
//! `strata-model list` and the objects of its `--json` output.

use std::path::PathBuf;

use serde::Serialize;

use crate::catalog::{FileRole, ModelEntry};
use crate::config::CacheTool;
use crate::store::{ModelUnit, Provenance, Status};

/// A catalog entry together with what is on disk for it.
///
/// Its JSON form is the entry's fields (base name under `model`) plus `name`, `aliases`,
/// `url`, `status`, `partial_bytes`, `path`, `total_bytes`, `files`, `installed_from`, `reused_from` and `pinned`:
/// every key always present, `null` where a value is unknown or does not apply. For a model of
/// several files, the entry's `hf_filename`, `size_bytes` and `sha256` are its first file's;
/// `total_bytes` and `files` give them all.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    /// The name that selects this entry (`minilm`, `minilm:f16`).
    pub name: String,
    /// The catalog entry.
    #[serde(flatten)]
    pub entry: ModelEntry,
    /// Aliases of the model.
    pub aliases: Vec<String>,
    /// The pinned download URL on the configured Hugging Face endpoint.
    pub url: String,
    /// `downloaded`, `partial`, `invalid` or `not downloaded`.
    pub status: &'static str,
    /// Bytes of a partial download, when there is one.
    pub partial_bytes: Option<u64>,
    /// Where the file is (or will be).
    #[serde(serialize_with = "crate::json_path::serialize")]
    pub path: PathBuf,
    /// The bytes of every file of the model (the entry's `size_bytes` is its first file's).
    pub total_bytes: u64,
    /// Every file of the model with its role, in order (one for a single-file model; the
    /// shards and sidecars of a multi-file one).
    #[serde(rename = "files")]
    pub files: Vec<FileInfo>,
    /// Where the file came from (a source, or another tool's cache file and how it was
    /// linked), when recorded.
    pub installed_from: Option<String>,
    /// The other tool whose cache the file was reused from, if it was.
    pub reused_from: Option<CacheTool>,
    /// Whether `prune` must keep it.
    pub pinned: bool,
    /// The on-disk state, in full.
    #[serde(skip)]
    pub state: Status,
    /// Where the file came from, typed.
    #[serde(skip)]
    pub provenance: Option<Provenance>,
}

impl ModelInfo {
    /// The status as `list` shows it: `downloaded`, `partial NN%`, `invalid`, `not downloaded`.
    pub fn status_label(&self) -> String {
        self.state.label(self.entry.total_size())
    }
}

/// One file of a model and what is on disk for it.
#[derive(Clone, Debug, Serialize)]
pub struct FileInfo {
    /// Its path in the repository (`Q4_K_M/Big-Q4_K_M-00001-of-00002.gguf`).
    pub repo_path: String,
    /// What it is: `weights` (a shard of them), `mmproj`, `draft`.
    pub role: FileRole,
    /// Exact size in bytes.
    pub size_bytes: u64,
    /// Its pinned SHA-256.
    pub sha256: String,
    /// Where it is (or will be) in the models directory.
    #[serde(serialize_with = "crate::json_path::serialize")]
    pub path: PathBuf,
    /// `downloaded`, `partial`, `invalid` or `not downloaded`.
    pub status: &'static str,
}

impl FileInfo {
    /// Every file of `unit`, with what is on disk for each (`statuses`, as
    /// [`ModelUnit::statuses`] gives them).
    pub(crate) fn of(unit: &ModelUnit, statuses: &[Status]) -> Vec<FileInfo> {
        unit.parts()
            .iter()
            .zip(statuses)
            .map(|((e, files), status)| FileInfo {
                repo_path: e.hf_filename.to_string(),
                role: e.role(),
                size_bytes: e.size_bytes,
                sha256: e.sha256.to_string(),
                path: files.model_path(),
                status: status.as_str(),
            })
            .collect()
    }
}
