//! `add`: a custom catalog entry from a Hub reference (`hf.co/owner/repo:Q8_0`), pinned for
//! the user. The Hub's model API (asked as huggingface_hub's `model_info(files_metadata=True)`
//! asks it) names the commit the revision points to and each file's LFS size and SHA-256; the
//! entry pins that commit, never a branch. Arch, embedding dimension and task come from the
//! file's own GGUF header, read with range requests of its first bytes through the pinned
//! `resolve` URL — never the whole file. The entry is then written exactly as `register`
//! writes it.

use std::io::{self, Read};

use serde::Serialize;

use super::Registry;
use crate::catalog::{
    custom, infer_quant, non_portable_file_name, valid_name, CustomModel, HubReference, ModelEntry,
    ModelTask, Select,
};
use crate::error::{ErrorKind, RegistryError, Result, SourceError};
use crate::gguf::{self, GgufError, GgufHeader};
use crate::size::ByteSize;
use crate::sources::{FetchRequest, HttpSource, ModelSource, RepoInfo, Sibling};

/// The first range asked for when reading a header; each next one is 4 times larger.
const FIRST_READ: u64 = 256 * 1024;
/// The most of a file read for its header. A GGUF file's own keys come first and are small;
/// only the tokenizer's arrays (after them) are large, and they are not read.
pub const HEADER_READ_LIMIT: u64 = 16 * 1024 * 1024;

/// What `add` may be told besides the reference.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// The model's name (default: the repository's name, lowercased, without `-GGUF`).
    pub name: Option<String>,
    /// The revision to look up (default: the reference's `@REVISION`, else `main`).
    pub revision: Option<String>,
    /// The file (default: the reference's `:QUANT` or `/FILE.gguf`, else the only GGUF).
    pub file: Option<String>,
    /// Overrides the header's `general.architecture`.
    pub arch: Option<String>,
    /// Overrides the header's embedding length.
    pub dim: Option<u32>,
    /// The task, when the header does not say (or to override it).
    pub task: Option<ModelTask>,
    /// Check everything and write nothing.
    pub dry_run: bool,
}

/// Where one fact of the entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactFrom {
    /// The file's GGUF header.
    Header,
    /// An option given to `add`.
    Option,
    /// Nothing said: the default (`generation`, dimension 0, arch `unknown`).
    Default,
}

/// What `add` found and wrote (or, in a dry run, would write).
#[derive(Clone, Debug, Serialize)]
pub struct AddReport {
    /// The reference, as understood.
    pub reference: String,
    /// The revision asked for (`main`, a tag, a commit).
    pub revision: String,
    /// The model as written to the custom catalog.
    pub model: CustomModel,
    /// The catalog entry.
    #[serde(skip)]
    pub entry: ModelEntry,
    /// Where the architecture came from.
    pub arch_from: FactFrom,
    /// Where the embedding dimension came from.
    pub dim_from: FactFrom,
    /// Where the task came from.
    pub task_from: FactFrom,
    /// Bytes of the file the header parser read.
    pub header_bytes: u64,
    /// Bytes of the file asked for with range requests (the first 256 KiB, for most files).
    pub fetched_bytes: u64,
    /// Whether the catalog file was written (false in a dry run).
    pub written: bool,
}

impl Registry {
    /// Adds a model to the custom catalog from a Hub reference: `hf.co/OWNER/REPO`,
    /// `huggingface.co/OWNER/REPO`, `hf://OWNER/REPO` or `OWNER/REPO`, with `:QUANT` or
    /// `/FILE.gguf` and `@REVISION` (see [`HubReference`]). The entry is pinned to the commit
    /// the revision points to now, with the file's LFS size and SHA-256; arch, dimension and
    /// task come from its GGUF header (the first bytes only). Token, proxy, CA and offline
    /// settings are those of downloads.
    ///
    /// ```no_run
    /// let registry = strata_model::Registry::from_env()?;
    /// let report = registry.add_from_hub("hf.co/ggml-org/embeddinggemma-300M-GGUF:Q8_0", &Default::default())?;
    /// println!("{} pinned at {}", report.entry.display_name(), report.entry.revision);
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    pub fn add_from_hub(&self, reference: &str, options: &AddOptions) -> Result<AddReport> {
        let mut parsed = HubReference::parse(reference).map_err(|e| RegistryError::CannotAdd {
            reference: reference.trim().to_string(),
            reason: e.to_string(),
            kind: ErrorKind::UnknownModel,
            source: None,
        })?;
        let fail = |parsed: &HubReference, kind: ErrorKind, reason: String| RegistryError::CannotAdd {
            reference: parsed.to_string(),
            reason,
            kind,
            source: None,
        };
        match (&options.revision, &parsed.revision) {
            (Some(a), Some(b)) if a != b => {
                return Err(fail(
                    &parsed,
                    ErrorKind::UnknownModel,
                    format!("two revisions given, @{b} and --revision {a}"),
                ))
            }
            (Some(a), _) => parsed.revision = Some(a.clone()),
            _ => {}
        }
        if let Some(file) = &options.file {
            if parsed.select.is_some() {
                return Err(fail(
                    &parsed,
                    ErrorKind::UnknownModel,
                    "give the file in the reference or with --file, not both".into(),
                ));
            }
            parsed.select = Some(Select::File(file.clone()));
        }
        if self.config().offline() {
            return Err(fail(
                &parsed,
                ErrorKind::Config,
                "network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE) and `add` asks the Hub; turn it back on, \
                 or use `register` with the commit, size and SHA-256"
                    .into(),
            ));
        }
        let revision = parsed.revision.clone().unwrap_or_else(|| "main".to_string());
        let source = HttpSource::hugging_face(self.config())?;
        let hub = |e: SourceError, what: String| RegistryError::CannotAdd {
            reference: parsed.to_string(),
            reason: what,
            kind: if e.is_not_found() { ErrorKind::UnknownModel } else { e.kind() },
            source: Some(Box::new(e)),
        };
        let repo_id = parsed.repo_id();
        let info = source
            .model_info(&repo_id, &revision)
            .map_err(|e| hub(e, format!("asking the Hub about {repo_id} at {revision}")))?;
        let sibling =
            choose(&parsed, &info, &revision).map_err(|(kind, reason)| fail(&parsed, kind, reason))?;
        let Some(lfs) = &sibling.lfs else {
            return Err(fail(
                &parsed,
                ErrorKind::Unsupported,
                format!(
                    "{} is not stored with Git LFS, so the Hub gives no SHA-256 to pin; use `register` with a hash you computed",
                    sibling.rfilename
                ),
            ));
        };
        // The model's file is stored under the Hub's name: one that FAT, exFAT or Windows
        // would refuse at download time is refused now, before anything is read or written.
        if let Some(reason) = non_portable_file_name(&sibling.rfilename) {
            return Err(fail(
                &parsed,
                ErrorKind::Unsupported,
                format!(
                    "the file `{}` {reason}; a model is stored under its file name on the Hub: \
                     upload a copy under another name and add that",
                    sibling.rfilename.escape_debug()
                ),
            ));
        }
        let name = match &options.name {
            Some(n) => n.trim().to_string(),
            None => {
                let lower = parsed.repo.to_ascii_lowercase();
                let base =
                    lower.strip_suffix("-gguf").or_else(|| lower.strip_suffix("_gguf")).unwrap_or(&lower);
                if !valid_name(base) {
                    return Err(fail(
                        &parsed,
                        ErrorKind::Config,
                        format!("`{base}` (from the repository's name) is not a valid model name; choose one with --name"),
                    ));
                }
                base.to_string()
            }
        };
        let quant = match &parsed.select {
            Some(Select::Quant(q)) if infer_quant(&sibling.rfilename) != q.to_ascii_lowercase() => {
                Some(q.to_ascii_lowercase())
            }
            _ => None,
        };
        let mut model = CustomModel {
            name,
            hf_repo: repo_id.clone(),
            hf_filename: sibling.rfilename.clone(),
            revision: info.sha.clone(),
            sha256: lfs.sha256.clone(),
            size_bytes: lfs.size,
            quant,
            description: Some(format!("added from hf.co/{repo_id} at {revision}")),
            ..Default::default()
        };
        // Everything the catalog checks, before a byte of the file is read.
        let catalog_file = self.config().catalog_file();
        let entry = custom::check_new(&catalog_file, &model)?;

        let mut prefix = Prefix::new(&source, &entry);
        // Ranged economy: the model's own keys come first; the tokenizer's arrays are not read.
        let header = gguf::read_header_prefix(&mut prefix);
        if let Some(e) = prefix.error.take() {
            let file = entry.hf_filename.to_string();
            return Err(hub(e, format!("reading the header of {file}")));
        }
        let header = match header {
            Ok(h) => Some(h),
            Err(_) if prefix.hit_limit && options.arch.is_some() && options.dim.is_some() => None,
            Err(GgufError::Io(_)) if prefix.hit_limit => {
                return Err(fail(
                    &parsed,
                    ErrorKind::Unsupported,
                    format!(
                        "the GGUF header of {} is larger than the {} read; give --arch and --dim",
                        entry.hf_filename,
                        ByteSize(HEADER_READ_LIMIT)
                    ),
                ))
            }
            Err(e) => {
                return Err(fail(
                    &parsed,
                    ErrorKind::Integrity,
                    format!("{} does not start with a readable GGUF header: {e}", entry.hf_filename),
                ))
            }
        };
        let header = header.unwrap_or_default();
        let (arch, arch_from) = pick(options.arch.clone(), header.architecture.clone());
        let (dim, dim_from) = pick(options.dim, header.embedding_length.and_then(|d| u32::try_from(d).ok()));
        let (task, task_from) = pick(options.task, task_of(&header));
        model.arch = arch;
        model.embedding_dim = dim;
        model.task = Some(task.unwrap_or(ModelTask::Generation));
        let entry =
            if options.dry_run { custom::check_new(&catalog_file, &model)? } else { self.register(&model)? };
        model.name = entry.name.to_string();
        Ok(AddReport {
            reference: parsed.to_string(),
            revision,
            model,
            entry,
            arch_from,
            dim_from,
            task_from,
            header_bytes: prefix.read,
            fetched_bytes: prefix.asked,
            written: !options.dry_run,
        })
    }
}

/// The option when given, else the header's value, else nothing; and where it came from.
fn pick<T>(option: Option<T>, header: Option<T>) -> (Option<T>, FactFrom) {
    match (option, header) {
        (Some(v), _) => (Some(v), FactFrom::Option),
        (None, Some(v)) => (Some(v), FactFrom::Header),
        (None, None) => (None, FactFrom::Default),
    }
}

/// The task the header states: an embedding model pools its token vectors (`pooling_type`
/// mean, CLS or last — llama.cpp's `LLAMA_POOLING_TYPE_*` 1 to 3). Nothing else is a statement.
fn task_of(header: &GgufHeader) -> Option<ModelTask> {
    matches!(header.pooling_type, Some(1..=3)).then_some(ModelTask::Embedding)
}

/// Whether `name` is one part of a split GGUF (`model-00001-of-00003.gguf`).
fn is_split(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let Some(stem) = lower.strip_suffix(".gguf") else { return false };
    let b = stem.as_bytes();
    b.len() >= 16 && {
        let tail = &b[b.len() - 15..]; // -00001-of-00003
        tail[0] == b'-'
            && tail[1..6].iter().all(u8::is_ascii_digit)
            && &tail[6..10] == b"-of-"
            && tail[10..].iter().all(u8::is_ascii_digit)
    }
}

/// Whether `quant` (lowercase) names `file`: the quantization read from its name, or a run of
/// its name between separators (`-`, `.`, `_` or its ends).
fn names_quant(file: &str, quant: &str) -> bool {
    if infer_quant(file) == quant {
        return true;
    }
    let lower = file.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gguf").unwrap_or(&lower);
    let stem = stem.rsplit('/').next().unwrap_or(stem);
    // A quantization may hold `_` (`q4_k_m`), so only `-` and `.` may end it.
    let before = |c: Option<char>| c.is_none_or(|c| matches!(c, '-' | '.' | '_'));
    let after = |c: Option<char>| c.is_none_or(|c| matches!(c, '-' | '.'));
    stem.match_indices(quant)
        .any(|(i, _)| before(stem[..i].chars().next_back()) && after(stem[i + quant.len()..].chars().next()))
}

/// The `:QUANT` to type for `file`, upper-case as repositories spell it.
fn quant_label(file: &str) -> Option<String> {
    let q = infer_quant(file);
    (q != crate::catalog::UNKNOWN).then(|| q.to_ascii_uppercase())
}

/// The GGUF file the reference selects, or why there is not exactly one.
fn choose<'a>(
    reference: &HubReference,
    info: &'a RepoInfo,
    revision: &str,
) -> Result<&'a Sibling, (ErrorKind, String)> {
    let repo = reference.repo_id();
    let at = format!("{repo} at {revision} ({})", &info.sha[..12.min(info.sha.len())]);
    let ggufs: Vec<&Sibling> =
        info.siblings.iter().filter(|s| s.rfilename.to_ascii_lowercase().ends_with(".gguf")).collect();
    let chosen: Vec<&Sibling> = match &reference.select {
        Some(Select::File(file)) => {
            let found =
                info.siblings.iter().find(|s| s.rfilename == *file || s.rfilename.eq_ignore_ascii_case(file));
            match found {
                Some(s) => vec![s],
                None => {
                    return Err((
                        ErrorKind::UnknownModel,
                        format!("{at} has no file {file}{}", listing(&ggufs)),
                    ))
                }
            }
        }
        Some(Select::Quant(q)) => {
            let q = q.to_ascii_lowercase();
            let found: Vec<&Sibling> =
                ggufs.iter().copied().filter(|s| names_quant(&s.rfilename, &q)).collect();
            if found.is_empty() {
                return Err((
                    ErrorKind::UnknownModel,
                    format!(
                        "{at} has no GGUF file for quantization {}{}",
                        q.to_ascii_uppercase(),
                        listing(&ggufs)
                    ),
                ));
            }
            found
        }
        None => ggufs
            .iter()
            .copied()
            .filter(|s| !s.rfilename.to_ascii_lowercase().starts_with("mmproj"))
            .collect(),
    };
    let singles: Vec<&Sibling> = chosen.iter().copied().filter(|s| !is_split(&s.rfilename)).collect();
    match (&chosen[..], &singles[..]) {
        ([], _) => Err((ErrorKind::UnknownModel, format!("{at} has no GGUF file{}", listing(&ggufs)))),
        (_, [one]) | ([one], _) if !is_split(&one.rfilename) => {
            if one.rfilename.contains('/') {
                Err((
                    ErrorKind::Unsupported,
                    format!("{} is in a folder of the repository; only files at its top level can be added", one.rfilename),
                ))
            } else {
                Ok(one)
            }
        }
        (_, []) => Err((
            ErrorKind::Unsupported,
            format!(
                "{} is split into several files (-0000N-of-0000M.gguf); one file per model is supported today: \
                 merge them with llama.cpp's `llama-gguf-split --merge` and `register` the result",
                chosen[0].rfilename
            ),
        )),
        (_, _) => Err((
            ErrorKind::UnknownModel,
            format!("{at} has several GGUF files; choose one{}", listing(&singles)),
        )),
    }
}

/// The GGUF files of a repository, one per line with its size and the `:QUANT` to type.
fn listing(ggufs: &[&Sibling]) -> String {
    if ggufs.is_empty() {
        return String::new();
    }
    let mut out = String::from(":");
    for s in ggufs {
        let size =
            s.lfs.as_ref().map(|l| l.size).or(s.size).map(|b| ByteSize(b).to_string()).unwrap_or_default();
        let how = if is_split(&s.rfilename) {
            "(split: not supported)".to_string()
        } else {
            quant_label(&s.rfilename).map_or_else(|| format!("/{}", s.rfilename), |q| format!(":{q}"))
        };
        out.push_str(&format!("\n  {how:<12} {:<48} {size:>10}", s.rfilename));
    }
    out
}

/// The first bytes of a file, read with range requests of growing size (256 KiB, then 4
/// times more each time) up to [`HEADER_READ_LIMIT`]: one request for any usual header.
struct Prefix<'a> {
    source: &'a HttpSource,
    entry: &'a ModelEntry,
    body: Option<Box<dyn Read + Send>>,
    validator: Option<String>,
    /// Bytes read so far.
    read: u64,
    /// Where the current body ends.
    body_end: u64,
    /// Bytes asked for, over every range request.
    asked: u64,
    next: u64,
    hit_limit: bool,
    error: Option<SourceError>,
}

impl<'a> Prefix<'a> {
    fn new(source: &'a HttpSource, entry: &'a ModelEntry) -> Self {
        Self {
            source,
            entry,
            body: None,
            validator: None,
            read: 0,
            body_end: 0,
            asked: 0,
            next: FIRST_READ,
            hit_limit: false,
            error: None,
        }
    }
}

impl Read for Prefix<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(body) = &mut self.body {
                let n = body.read(buf)?;
                if n > 0 {
                    self.read += n as u64;
                    return Ok(n);
                }
                if self.read < self.body_end {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.body = None;
            }
            let end = self.entry.size_bytes.min(HEADER_READ_LIMIT);
            if self.read >= end {
                if end < self.entry.size_bytes {
                    self.hit_limit = true;
                    return Err(io::Error::other("header read limit"));
                }
                return Ok(0);
            }
            let want = (self.read + self.next).min(end);
            self.next = self.next.saturating_mul(4);
            let request =
                FetchRequest { offset: self.read, end: Some(want), if_range: self.validator.clone() };
            match self.source.fetch(self.entry, &request) {
                Ok(fetch) if fetch.start == self.read => {
                    self.validator = self.validator.take().or(fetch.validator);
                    self.body = Some(fetch.body);
                    self.asked += want - self.read;
                    self.body_end = want;
                }
                Ok(fetch) => {
                    self.error = Some(SourceError::failed(
                        ErrorKind::Network,
                        format!(
                            "{}: asked for bytes from {}, got from {}",
                            fetch.location, self.read, fetch.start
                        ),
                    ));
                    return Err(io::Error::other("range refused"));
                }
                Err(e) => {
                    self.error = Some(e);
                    return Err(io::Error::other("fetch failed"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::LfsInfo;

    fn sibling(name: &str, lfs: bool) -> Sibling {
        Sibling {
            rfilename: name.into(),
            size: Some(10),
            lfs: lfs.then(|| LfsInfo { sha256: "ab".repeat(32), size: 10 }),
        }
    }

    fn info(names: &[&str]) -> RepoInfo {
        RepoInfo { sha: "c".repeat(40), siblings: names.iter().map(|n| sibling(n, true)).collect() }
    }

    fn pick_file(reference: &str, names: &[&str]) -> Result<String, (ErrorKind, String)> {
        let r = HubReference::parse(reference).unwrap();
        choose(&r, &info(names), "main").map(|s| s.rfilename.clone())
    }

    #[test]
    fn split_files_are_recognised() {
        assert!(is_split("model-Q8_0-00001-of-00003.gguf"));
        assert!(is_split("M-00002-OF-00002.GGUF"));
        assert!(!is_split("model-Q8_0.gguf"));
        assert!(!is_split("00001-of-00003.gguf"));
    }

    #[test]
    fn quantizations_match_file_names_in_any_case() {
        assert!(names_quant("tiny-Q4_K_M.gguf", "q4_k_m"));
        assert!(names_quant("tiny.Q8_0.gguf", "q8_0"));
        assert!(names_quant("tiny-Q4_K_M-imat.gguf", "q4_k_m"));
        assert!(!names_quant("tiny-Q4_K_M.gguf", "q4_k"));
        assert!(!names_quant("tiny-Q8_0.gguf", "f16"));
    }

    #[test]
    fn the_file_is_the_one_named_the_only_one_or_an_error_that_lists_them() {
        let three = ["README.md", "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf", "tiny-F16.gguf"];
        assert_eq!(pick_file("acme/tiny-GGUF:q8_0", &three).unwrap(), "tiny-Q8_0.gguf");
        assert_eq!(pick_file("acme/tiny-GGUF/tiny-F16.gguf", &three).unwrap(), "tiny-F16.gguf");
        let (kind, msg) = pick_file("acme/tiny-GGUF", &three).unwrap_err();
        assert_eq!(kind, ErrorKind::UnknownModel);
        for want in [":Q4_K_M", ":Q8_0", ":F16", "tiny-F16.gguf", "several GGUF files"] {
            assert!(msg.contains(want), "{want} in {msg}");
        }
        assert!(pick_file("acme/tiny-GGUF:q2_k", &three)
            .unwrap_err()
            .1
            .contains("no GGUF file for quantization Q2_K"));
        assert_eq!(pick_file("acme/tiny-GGUF", &["tiny.gguf", "mmproj-tiny-f16.gguf"]).unwrap(), "tiny.gguf");
        let split = ["big-Q8_0-00001-of-00002.gguf", "big-Q8_0-00002-of-00002.gguf"];
        let (kind, msg) = pick_file("acme/big-GGUF:Q8_0", &split).unwrap_err();
        assert_eq!(kind, ErrorKind::Unsupported);
        assert!(msg.contains("split"), "{msg}");
        assert_eq!(pick_file("acme/x", &["sub/x-Q8_0.gguf"]).unwrap_err().0, ErrorKind::Unsupported);
        assert!(pick_file("acme/x", &["README.md"]).unwrap_err().1.contains("has no GGUF file"));
    }
}
