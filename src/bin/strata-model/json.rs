//! Every `--json` document the command line prints, in one place. Each command prints exactly
//! one JSON document on stdout:
//!
//! | command            | document |
//! |--------------------|----------|
//! | `list`             | [`List`]: the models ([`ModelInfo`]), untracked files and totals |
//! | `info`             | [`Info`]: a [`ModelInfo`] plus `gguf` and `gguf_error` (an array for several names) |
//! | `path`             | [`PathDoc`] (an array of them for several names) |
//! | `download`         | an array of [`Checked`] |
//! | `verify`           | an array of [`Checked`] |
//! | `remove`           | [`Removed`] (an array of them for several names) |
//! | `add`              | [`strata_model::AddReport`], with `model` the entry as written |
//! | `register`         | the new entry's [`ModelInfo`] |
//! | `unregister`       | [`Unregistered`] |
//! | `pin`, `unpin`     | [`Pinned`] (an array of them for several names) |
//! | `prune`            | [`strata_model::PruneReport`] |
//! | `alias set`        | [`AliasSet`] |
//! | `alias remove`     | [`AliasRemoved`] |
//! | `alias list`       | an object, alias → target |
//! | `mirror push`      | an array of [`strata_model::PushReport`] |
//! | `share`            | an array of [`strata_model::ShareReport`] |
//! | `catalog check`    | an array of [`strata_model::CheckRow`] |
//! | `sources`          | [`Sources`] |
//!
//! A command that fails before printing its document prints [`ErrorDoc`] instead:
//! `{"error": {"kind", "message", "exit_code"}}`.

use std::path::PathBuf;

use serde::Serialize;
use strata_model::gguf::GgufHeader;
use strata_model::{ByteSize, ModelInfo, Status, UntrackedFile};

/// `list --json`.
#[derive(Serialize)]
pub struct List {
    /// Every catalog entry with its status (the downloaded ones with `--downloaded`).
    pub models: Vec<ModelInfo>,
    /// `.gguf` files in the models directory that no catalog entry names.
    pub untracked: Vec<UntrackedFile>,
    /// Entries in the catalog.
    pub catalog_models: usize,
    /// Entries downloaded.
    pub downloaded_models: usize,
    /// Bytes of the downloaded models.
    pub downloaded_bytes: u64,
    /// Bytes of partial downloads.
    pub partial_bytes: u64,
    /// Bytes of untracked files.
    pub untracked_bytes: u64,
}

impl List {
    /// The totals over every entry (`models` left empty).
    pub fn new(all: &[ModelInfo], untracked: Vec<UntrackedFile>) -> Self {
        let downloaded = all.iter().filter(|m| m.state == Status::Downloaded);
        Self {
            models: Vec::new(),
            catalog_models: all.len(),
            downloaded_models: downloaded.clone().count(),
            downloaded_bytes: downloaded.map(|m| m.entry.total_size()).fold(0, u64::saturating_add),
            partial_bytes: all.iter().filter_map(|m| m.partial_bytes).fold(0, u64::saturating_add),
            untracked_bytes: untracked.iter().map(|f| f.size_bytes).fold(0, u64::saturating_add),
            untracked,
        }
    }

    /// `Total: 2 of 9 models downloaded, 660 MB (…)`, a line.
    pub fn total_line(&self) -> String {
        let mut line = format!(
            "Total: {} of {} models downloaded, {}",
            self.downloaded_models,
            self.catalog_models,
            ByteSize(self.downloaded_bytes)
        );
        let mut more = Vec::new();
        if self.partial_bytes > 0 {
            more.push(format!("{} in partial downloads", ByteSize(self.partial_bytes)));
        }
        if self.untracked_bytes > 0 {
            more.push(format!("{} untracked", ByteSize(self.untracked_bytes)));
        }
        if !more.is_empty() {
            line.push_str(&format!("; {}", more.join(", ")));
        }
        line.push('\n');
        line
    }
}

/// `info --json`.
#[derive(Serialize)]
pub struct Info {
    /// The entry and its status.
    #[serde(flatten)]
    pub model: ModelInfo,
    /// The file's GGUF header, when downloaded and readable.
    pub gguf: Option<GgufHeader>,
    /// Why the header could not be read, else null.
    pub gguf_error: Option<String>,
}

/// `path --json`.
#[derive(Serialize)]
pub struct PathDoc {
    /// The name that selects the entry.
    pub name: String,
    /// Where the file is (or would be).
    #[serde(serialize_with = "strata_model::json_path::serialize")]
    pub path: PathBuf,
    /// Whether it is there.
    pub downloaded: bool,
    /// Every file of the model with its role (the shards and sidecars of a multi-file model).
    pub files: Vec<strata_model::FileInfo>,
}

/// One model of `download --json` or `verify --json`: its verified file, or why not.
#[derive(Serialize)]
pub struct Checked {
    /// The name as given.
    pub name: String,
    /// Whether the file is in place and hashes to the catalog SHA-256.
    pub ok: bool,
    /// The verified file, else null.
    #[serde(serialize_with = "strata_model::json_path::serialize_opt")]
    pub path: Option<PathBuf>,
    /// Why it is not, else null.
    pub error: Option<String>,
}

impl Checked {
    /// The document of `result` for `name`.
    pub fn of(name: &str, result: &Result<PathBuf, strata_model::RegistryError>) -> Self {
        match result {
            Ok(path) => Self { name: name.to_string(), ok: true, path: Some(path.clone()), error: None },
            Err(e) => {
                Self { name: name.to_string(), ok: false, path: None, error: Some(e.report().to_string()) }
            }
        }
    }
}

/// `remove --json`.
#[derive(Serialize)]
pub struct Removed {
    /// The name that selects the entry.
    pub name: String,
    /// Whether a file or a partial download was deleted.
    pub removed: bool,
    /// The model path.
    #[serde(serialize_with = "strata_model::json_path::serialize")]
    pub path: PathBuf,
}

/// `unregister --json`.
#[derive(Serialize)]
pub struct Unregistered {
    /// The entry's name.
    pub name: String,
    /// Always `true` (a failure is an error).
    pub unregistered: bool,
    /// Whether its file was deleted (`--remove-file`).
    pub file_removed: bool,
    /// The model file left in the models directory, if any.
    #[serde(serialize_with = "strata_model::json_path::serialize_opt")]
    pub file_left: Option<PathBuf>,
}

/// `pin --json` and `unpin --json`.
#[derive(Serialize)]
pub struct Pinned {
    /// The name that selects the entry.
    pub name: String,
    /// Whether it is pinned now.
    pub pinned: bool,
    /// Whether that changed (`false`: it was already so).
    pub changed: bool,
}

/// `alias set --json`.
#[derive(Serialize)]
pub struct AliasSet {
    /// The alias, lower case.
    pub alias: String,
    /// What it stands for.
    pub target: String,
    /// What it stood for before, when this replaced another target.
    pub replaced: Option<String>,
}

/// `alias remove --json`.
#[derive(Serialize)]
pub struct AliasRemoved {
    /// The alias as given.
    pub alias: String,
    /// What it stood for.
    pub removed: String,
}

/// `sources --json`.
#[derive(Serialize)]
pub struct Sources {
    /// The models directory.
    #[serde(serialize_with = "strata_model::json_path::serialize")]
    pub models_dir: PathBuf,
    /// The custom catalog file.
    #[serde(serialize_with = "strata_model::json_path::serialize")]
    pub catalog_file: PathBuf,
    /// How many custom models it holds.
    pub custom_models: usize,
    /// Whether network access is off.
    pub offline: bool,
    /// Where the Hub token comes from: `HF_TOKEN`, the token file's path, or null (no token).
    /// Never the token.
    pub token: Option<String>,
    /// The Hugging Face hub cache that `share` writes to.
    #[serde(serialize_with = "strata_model::json_path::serialize_opt")]
    pub hf_hub_cache: Option<PathBuf>,
    /// Each source, in order.
    pub sources: Vec<SourceCheck>,
    /// Every other tool's cache location looked in before a download, in order.
    pub caches: Vec<strata_model::CacheLocation>,
}

/// One source of [`Sources`].
#[derive(Clone, Serialize)]
pub struct SourceCheck {
    /// The source, as it displays itself.
    pub source: String,
    /// Whether it answered.
    pub ok: bool,
    /// What it answered, or why not.
    pub detail: String,
}

/// The document of a failed command under `--json`.
#[derive(Serialize)]
pub struct ErrorDoc {
    /// What went wrong.
    pub error: ErrorBody,
}

/// [`ErrorDoc`]'s content.
#[derive(Serialize)]
pub struct ErrorBody {
    /// The class, from the exit code: `usage`, `unknown_model`, `not_downloaded`, `network`,
    /// `integrity`, `storage`, `config`, `unsupported`, `busy` or `failure`.
    pub kind: &'static str,
    /// The message, as stderr shows it.
    pub message: String,
    /// The exit code.
    pub exit_code: u8,
}

impl ErrorDoc {
    /// The document for `message` and exit code `code`.
    pub fn new(message: &str, code: u8) -> Self {
        use crate::exit::code as c;
        let kind = match code {
            c::USAGE => "usage",
            c::UNKNOWN_MODEL => "unknown_model",
            c::NOT_DOWNLOADED => "not_downloaded",
            c::NETWORK => "network",
            c::INTEGRITY => "integrity",
            c::STORAGE => "storage",
            c::CONFIG => "config",
            c::UNSUPPORTED => "unsupported",
            c::BUSY => "busy",
            _ => "failure",
        };
        Self { error: ErrorBody { kind, message: message.to_string(), exit_code: code } }
    }
}
