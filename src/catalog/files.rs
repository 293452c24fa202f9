//! The files of a multi-file model: the weights split in shards by llama.cpp's `gguf-split`
//! (`NAME-00001-of-00003.gguf`, …), sidecars beside them (a vision model's `mmproj`
//! projector, a draft model), each pinned to its repository path, size and SHA-256.
//!
//! A multi-file model is one unit: it is downloaded when every file is verified, and removed
//! whole. Its files keep their base names side by side in one folder of the models
//! directory, named after the weights ([`unit_dir`]), so llama.cpp finds the shards from the
//! first and the projector by name, and two models that both ship `mmproj-F16.gguf` do not
//! collide.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// What a file of a model is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    /// The weights, or one shard of them (shards in order, the first is the file an engine
    /// opens).
    #[default]
    Weights,
    /// A multimodal projector (`mmproj-*.gguf`), loaded beside the weights.
    Mmproj,
    /// A draft model for speculative decoding.
    Draft,
}

impl FileRole {
    /// The lower-case name used in catalog files and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weights => "weights",
            Self::Mmproj => "mmproj",
            Self::Draft => "draft",
        }
    }
}

impl std::fmt::Display for FileRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of a model: where it is in the repository, its exact size and SHA-256, its role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelFile {
    /// Path in the repository, `/`-separated (`Q4_K_M/Big-Q4_K_M-00001-of-00002.gguf`).
    pub path: Cow<'static, str>,
    /// Exact size in bytes.
    pub size_bytes: u64,
    /// SHA-256 (64 lower-case hex digits).
    pub sha256: Cow<'static, str>,
    /// What the file is.
    pub role: FileRole,
}

impl ModelFile {
    /// The file's base name (the last segment of its path): its name in the models directory.
    pub fn base_name(&self) -> &str {
        base_name(&self.path)
    }
}

/// The last segment of a `/`-separated repository path.
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A shard's place in a split, read from its name as llama.cpp does
/// (`^(.+)-([0-9]{5})-of-([0-9]{5})\.gguf$`, any case): the prefix, the shard's number (from
/// 1) and the number of shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitName<'a> {
    /// The name before `-00001-of-00003.gguf`.
    pub prefix: &'a str,
    /// The shard's number, from 1.
    pub index: u32,
    /// The number of shards.
    pub count: u32,
}

/// Reads a shard's place in its split from its base name (`None`: not a shard's name).
///
/// ```
/// use strata_model::catalog::split_name;
/// let s = split_name("Big-Q4_K_M-00002-of-00003.gguf").unwrap();
/// assert_eq!((s.prefix, s.index, s.count), ("Big-Q4_K_M", 2, 3));
/// assert!(split_name("Big-Q4_K_M.gguf").is_none());
/// ```
pub fn split_name(base: &str) -> Option<SplitName<'_>> {
    let stem = strip_gguf(base)?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, index) = rest.rsplit_once('-')?;
    let five =
        |s: &str| (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten();
    let (index, count) = (five(index)?, five(count)?);
    (!prefix.is_empty()).then_some(SplitName { prefix, index, count })
}

/// `name` without its `.gguf` (any case), when it has one.
fn strip_gguf(name: &str) -> Option<&str> {
    let cut = name.len().checked_sub(5)?;
    (name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".gguf")).then(|| &name[..cut])
}

/// Whether `s` is `len` lower-case hex digits.
pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A file's name for reading its quantization: the base name of `path`, without a shard's
/// `-00001-of-00003` (`Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf` → `Big-Q4_K_M.gguf`).
pub(crate) fn quant_name(path: &str) -> String {
    let base = base_name(path);
    split_name(base).map_or_else(|| base.to_string(), |s| format!("{}.gguf", s.prefix))
}

/// The folder of the models directory that holds a multi-file model, named after its first
/// file (`first`, a repository path): the base name without `.gguf` and without the shard
/// suffix `-00001-of-00003` (`Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf` → `Big-Q4_K_M`).
pub fn unit_dir(first: &str) -> String {
    let base = base_name(first);
    match split_name(base) {
        Some(split) => split.prefix.to_string(),
        None => strip_gguf(base).unwrap_or(base).to_string(),
    }
}

/// Why `path` cannot be the repository path of a model's file, if it cannot: each segment
/// a plain name (no `..`, no hidden segment, no `\`, `:` or control character), the last
/// one a `.gguf` file name.
pub(crate) fn invalid_repo_path(path: &str, invalid_file_name: fn(&str) -> Option<String>) -> Option<String> {
    if path.starts_with('/') || path.ends_with('/') || path.contains("//") {
        return Some("is not a relative path of `/`-separated names".into());
    }
    if path.len() > 400 {
        return Some("is longer than 400 bytes".into());
    }
    let mut segments: Vec<&str> = path.split('/').collect();
    let last = segments.pop().unwrap_or_default();
    for segment in segments {
        if segment == ".." || segment == "." {
            return Some(format!("has `{segment}` in it; give the file's path inside the repository"));
        }
        if let Some(reason) = invalid_file_name(&format!("{segment}.gguf")) {
            return Some(format!(
                "has a folder `{}` that {}",
                segment.escape_debug(),
                reason.trim_start_matches("is ")
            ));
        }
    }
    invalid_file_name(last).map(|reason| format!("has a file name `{}` that {reason}", last.escape_debug()))
}

/// A file of a multi-file model as written in the custom catalog (`"files": [...]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFile {
    /// Path in the repository (`Q4_K_M/Big-Q4_K_M-00001-of-00002.gguf`).
    pub path: String,
    /// Exact size in bytes.
    pub size_bytes: u64,
    /// SHA-256 (64 hex digits).
    pub sha256: String,
    /// What the file is (default `weights`).
    #[serde(default)]
    pub role: FileRole,
}

impl From<&ModelFile> for CustomFile {
    fn from(f: &ModelFile) -> Self {
        Self {
            path: f.path.to_string(),
            size_bytes: f.size_bytes,
            sha256: f.sha256.to_string(),
            role: f.role,
        }
    }
}

/// The largest file a catalog entry may name: 1 PiB. Larger is no model file, and a size
/// near `u64::MAX` would overflow every sum of sizes.
pub const MAX_FILE_SIZE: u64 = 1 << 50;

/// Why `size` is refused as a file's size.
pub(crate) fn too_large(size: u64) -> String {
    format!("{size} bytes is more than 1 PiB ({MAX_FILE_SIZE} bytes); give the file's exact size")
}

/// Checks the files of a multi-file model and normalizes them: each path inside the
/// repository (see [`invalid_repo_path`]), each size above 0, each SHA-256 64 hex digits;
/// the weights first, in shard order when split (`NAME-00001-of-0000N.gguf` … with one
/// prefix and `N` files), at most one file of each sidecar role, no two base names alike
/// (they sit side by side). `Err((index, field, reason))`.
pub(crate) fn check_files(
    files: &[CustomFile],
    invalid_file_name: fn(&str) -> Option<String>,
) -> Result<Vec<ModelFile>, (usize, &'static str, String)> {
    let mut out: Vec<ModelFile> = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let path = f.path.trim();
        if let Some(reason) = invalid_repo_path(path, invalid_file_name) {
            return Err((i, "path", format!("`{}` {reason}", path.escape_debug())));
        }
        let sha256 = f.sha256.trim().to_ascii_lowercase();
        if !is_hex(&sha256, 64) {
            return Err((
                i,
                "sha256",
                format!("`{}` is not a SHA-256; expected 64 hex digits", f.sha256.escape_debug()),
            ));
        }
        if f.size_bytes == 0 {
            return Err((i, "size_bytes", "must be the file's exact size in bytes, greater than 0".into()));
        }
        if f.size_bytes > MAX_FILE_SIZE {
            return Err((i, "size_bytes", too_large(f.size_bytes)));
        }
        if i == 0 && f.role != FileRole::Weights {
            return Err((i, "role", "the first file must be the weights (the file an engine opens)".into()));
        }
        if f.role == FileRole::Weights && out.last().is_some_and(|p| p.role != FileRole::Weights) {
            return Err((i, "role", "the weights come first, then the sidecars".into()));
        }
        if f.role != FileRole::Weights && out.iter().any(|p| p.role == f.role) {
            return Err((i, "role", format!("a second `{}` file; a model has at most one", f.role)));
        }
        let base = base_name(path);
        if let Some(other) = out.iter().find(|p| p.base_name().eq_ignore_ascii_case(base)) {
            return Err((
                i,
                "path",
                format!(
                    "`{base}` is also the name of `{}`; the files of a model sit side by side in one folder",
                    other.path
                ),
            ));
        }
        out.push(ModelFile {
            path: Cow::Owned(path.to_string()),
            size_bytes: f.size_bytes,
            sha256: Cow::Owned(sha256),
            role: f.role,
        });
    }
    if out.is_empty() {
        return Err((
            0,
            "files",
            "is empty; list the model's files, or give `hf_filename` for a single file".into(),
        ));
    }
    let weights: Vec<&ModelFile> = out.iter().filter(|f| f.role == FileRole::Weights).collect();
    // A shard's name (`-00001-of-00003`) says the split is whole only with every shard.
    let named_as_split = weights.iter().any(|w| split_name(w.base_name()).is_some_and(|s| s.count > 1));
    if weights.len() > 1 || named_as_split {
        let first = split_name(weights[0].base_name());
        for (i, w) in weights.iter().enumerate() {
            let ok = split_name(w.base_name()).is_some_and(|s| {
                first.as_ref().is_some_and(|f| f.prefix == s.prefix)
                    && s.index as usize == i + 1
                    && s.count as usize == weights.len()
            });
            if !ok {
                return Err((i, "path", format!(
                    "`{}` is not shard {} of {}: split weights are named `NAME-{:05}-of-{:05}.gguf` (as `gguf-split` writes them), in order, with one NAME",
                    w.path, i + 1, weights.len(), i + 1, weights.len()
                )));
            }
        }
    }
    let folder = unit_dir(&out[0].path);
    if let Some(reason) = reserved_folder(&folder) {
        return Err((0, "path", format!(
            "the model would be stored in a folder `{folder}`, {reason}; a model is stored under its file names on the Hub: upload a copy under another name"
        )));
    }
    Ok(out)
}

/// Why a multi-file model's folder may not have this name in the models directory, if it may
/// not: a name strata-model gives its own files there (`catalog.json`, the names under
/// `.strata/`: `pinned`, `*.lock`, a single-file model's `<file>.gguf.*` side files).
fn reserved_folder(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower == "catalog.json"
        || lower == "pinned"
        || lower.ends_with(".lock")
        || lower.starts_with("catalog.json.")
    {
        Some("a name strata-model keeps for its own files")
    } else if lower.contains(".gguf") {
        Some("which holds `.gguf` and could be taken for another model's file or side file")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_past_one_pib_is_refused_naming_the_file_and_sums_saturate() {
        let file = |path: &str, size_bytes| CustomFile {
            path: path.into(),
            size_bytes,
            sha256: "ab".repeat(32),
            role: FileRole::Weights,
        };
        let files = [file("m-00001-of-00002.gguf", 10), file("m-00002-of-00002.gguf", u64::MAX)];
        let (i, field, reason) = check_files(&files, |_| None).unwrap_err();
        assert_eq!((i, field), (1, "size_bytes"));
        assert!(reason.contains("more than 1 PiB"), "{reason}");
        let at_most = [file("m-00001-of-00002.gguf", MAX_FILE_SIZE), file("m-00002-of-00002.gguf", 1)];
        assert!(check_files(&at_most, |_| None).is_ok());
        // Entries built in code are not checked: their sums saturate rather than overflow.
        let entry = crate::catalog::ModelEntry {
            files: check_files(&at_most, |_| None)
                .unwrap()
                .into_iter()
                .map(|f| ModelFile { size_bytes: u64::MAX, ..f })
                .collect::<Vec<_>>()
                .into(),
            ..crate::catalog::Catalog::builtin().entries()[0].clone()
        };
        assert_eq!(entry.total_size(), u64::MAX);
    }

    #[test]
    fn shard_names_are_read_as_llama_cpp_reads_them() {
        let s = split_name("model-q4_k_m-00001-of-00012.GGUF").unwrap();
        assert_eq!((s.prefix, s.index, s.count), ("model-q4_k_m", 1, 12));
        for not in [
            "model-0001-of-00002.gguf",
            "model-00001-of-00002.bin",
            "-00001-of-00002.gguf",
            "x-00001-of-2.gguf",
            ".gguf",
            "",
        ] {
            assert!(split_name(not).is_none(), "{not}");
        }
        assert!(split_name("é-00001-of-00002.ggu").is_none());
    }

    #[test]
    fn a_unit_is_stored_under_its_weights_name() {
        assert_eq!(unit_dir("Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf"), "Big-Q4_K_M");
        assert_eq!(unit_dir("gemma-3-4b-it-Q4_K_M.gguf"), "gemma-3-4b-it-Q4_K_M");
    }

    #[test]
    fn repository_paths_stay_inside_the_repository() {
        let plain = |s: &str| {
            (!s.ends_with(".gguf") || s.starts_with('.') || s.contains([':', '\\']))
                .then(|| "is not allowed".to_string())
        };
        assert!(invalid_repo_path("Q4_K_M/a.gguf", plain).is_none());
        assert!(invalid_repo_path("a.gguf", plain).is_none());
        for bad in [
            "../a.gguf",
            "Q4/../a.gguf",
            "/a.gguf",
            "Q4//a.gguf",
            "Q4/",
            ".hidden/a.gguf",
            "Q4/a.bin",
            "C:/a.gguf",
            "./a.gguf",
        ] {
            assert!(invalid_repo_path(bad, plain).is_some(), "{bad}");
        }
    }
}
