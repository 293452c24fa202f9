//! Custom models: a JSON catalog file that adds entries without recompiling.
//!
//! The file lives at `STRATA_MODELS_CATALOG`, else `<models dir>/catalog.json`:
//!
//! ```json
//! {
//!   "version": 1,
//!   "models": [
//!     {
//!       "name": "my-embed",
//!       "hf_repo": "my-org/my-embed-GGUF",
//!       "hf_filename": "my-embed-Q8_0.gguf",
//!       "revision": "0123456789abcdef0123456789abcdef01234567",
//!       "sha256": "<64 hex digits>",
//!       "size_bytes": 123456789,
//!       "arch": "bert",
//!       "embedding_dim": 384,
//!       "quant": "q8_0",
//!       "task": "embedding",
//!       "description": "what it is"
//!     }
//!   ]
//! }
//! ```
//!
//! Required: `name`, `hf_repo`, `hf_filename`, `revision`, `sha256`, `size_bytes`. A custom
//! entry names Hugging Face coordinates and a SHA-256, never an arbitrary URL; it may not
//! shadow a built-in name or alias, nor reuse another entry's file name. Any problem is a
//! [`RegistryError::InvalidCatalog`] naming the file, the entry and the field.

use std::borrow::Cow;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::catalog::{is_hex, Catalog, ModelEntry, ModelTask, Origin};
use crate::error::{RegistryError, Result};

/// The largest custom catalog file read (a catalog is a few kilobytes).
const MAX_CATALOG_BYTES: u64 = 16 * 1024 * 1024;

/// A model to add with [`crate::Registry::register`]: Hugging Face coordinates and the
/// SHA-256 the bytes must have. Optional fields may stay at their defaults.
///
/// ```
/// let model = strata_model::CustomModel {
///     name: "my-embed".into(),
///     hf_repo: "my-org/my-embed-GGUF".into(),
///     hf_filename: "my-embed-Q8_0.gguf".into(),
///     revision: "0123456789abcdef0123456789abcdef01234567".into(),
///     sha256: "ab".repeat(32),
///     size_bytes: 1234,
///     ..Default::default()
/// };
/// assert_eq!(model.name, "my-embed");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomModel {
    /// Name (letters, digits, `.`, `_`, `-`; case-insensitive).
    pub name: String,
    /// Hugging Face repository, `owner/name`.
    pub hf_repo: String,
    /// Plain file name ending in `.gguf`.
    pub hf_filename: String,
    /// Commit to pin (40 hex digits).
    pub revision: String,
    /// SHA-256 of the file (64 hex digits).
    pub sha256: String,
    /// Exact size in bytes.
    pub size_bytes: u64,
    /// GGUF `general.architecture` (default `unknown`).
    pub arch: Option<String>,
    /// Embedding dimension (default 0: unknown).
    pub embedding_dim: Option<u32>,
    /// Quantization (default: read from the file name, e.g. `Q8_0`, else `unknown`).
    pub quant: Option<String>,
    /// Task (default embedding).
    pub task: Option<ModelTask>,
    /// One line for people.
    pub description: Option<String>,
    /// Licence identifier.
    pub license: Option<String>,
}

impl CustomModel {
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("hf_repo".into(), self.hf_repo.clone().into());
        m.insert("hf_filename".into(), self.hf_filename.clone().into());
        m.insert("revision".into(), self.revision.clone().into());
        m.insert("sha256".into(), self.sha256.clone().into());
        m.insert("size_bytes".into(), self.size_bytes.into());
        let opt = |m: &mut Map<String, Value>, k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        opt(&mut m, "arch", self.arch.clone().map(Value::from));
        opt(&mut m, "embedding_dim", self.embedding_dim.map(Value::from));
        opt(&mut m, "quant", self.quant.clone().map(Value::from));
        opt(&mut m, "task", self.task.map(|t| t.as_str().into()));
        opt(&mut m, "description", self.description.clone().map(Value::from));
        opt(&mut m, "license", self.license.clone().map(Value::from));
        Value::Object(m)
    }
}

/// Error-building context: which file and which entry are being checked.
struct Ctx<'a> {
    file: &'a Path,
    entry: Option<String>,
}

impl Ctx<'_> {
    fn err(&self, field: Option<&str>, reason: impl Into<String>) -> RegistryError {
        RegistryError::InvalidCatalog {
            file: self.file.to_path_buf(),
            entry: self.entry.clone(),
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
}

const FIELDS: &[&str] = &[
    "name",
    "hf_repo",
    "hf_filename",
    "revision",
    "sha256",
    "size_bytes",
    "arch",
    "embedding_dim",
    "quant",
    "task",
    "description",
    "license",
];

/// A custom catalog file's contents: its models and the aliases the user set.
#[derive(Clone, Debug, Default)]
pub struct Custom {
    /// The custom models, validated.
    pub models: Vec<ModelEntry>,
    /// User aliases, `(alias, target)`: `("default-embed", "minilm")`. A target may name a
    /// variant (`minilm:f16`).
    pub aliases: Vec<(String, String)>,
}

/// Reads and validates a custom catalog file's models. A missing file is an empty catalog.
pub fn load(file: &Path) -> Result<Vec<ModelEntry>> {
    Ok(read(file)?.models)
}

/// Reads and validates a custom catalog file: models and aliases.
pub fn read(file: &Path) -> Result<Custom> {
    let doc = read_document(file)?;
    Ok(Custom { models: doc.entries, aliases: doc.aliases })
}

struct Document {
    /// The models as JSON values (to rewrite them).
    values: Vec<Value>,
    entries: Vec<ModelEntry>,
    aliases: Vec<(String, String)>,
}

/// Reads the file: its models as JSON values (to rewrite them) and as validated entries.
fn read_document(file: &Path) -> Result<Document> {
    let ctx = Ctx { file, entry: None };
    let empty = Document { values: Vec::new(), entries: Vec::new(), aliases: Vec::new() };
    let f = match fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(empty),
        Err(e) => return Err(RegistryError::storage("read", file, e)),
    };
    let mut bytes = Vec::new();
    f.take(MAX_CATALOG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::storage("read", file, e))?;
    if bytes.len() as u64 > MAX_CATALOG_BYTES {
        return Err(ctx.err(None, format!("the file is larger than {MAX_CATALOG_BYTES} bytes")));
    }
    parse_document(file, &bytes)
}

/// Validates the bytes of a custom catalog file (`file` names it in errors). Never panics.
///
/// ```
/// let err = strata_model::custom::parse(std::path::Path::new("c.json"), b"{\"models\": 5}").unwrap_err();
/// assert!(err.to_string().contains("field `models`"));
/// ```
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Vec<ModelEntry>> {
    Ok(parse_document(file, bytes)?.entries)
}

fn parse_document(file: &Path, bytes: &[u8]) -> Result<Document> {
    let ctx = Ctx { file, entry: None };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document { values: Vec::new(), entries: Vec::new(), aliases: Vec::new() });
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        ctx.err(None, format!("not valid JSON ({e}); fix the file or delete it to start over"))
    })?;
    let Value::Object(top) = doc else {
        return Err(ctx.err(None, "expected a JSON object with a \"models\" array"));
    };
    for key in top.keys() {
        if !matches!(key.as_str(), "version" | "models" | "aliases") {
            return Err(ctx.err(
                Some(key),
                "unknown top-level field; expected \"version\", \"models\" and \"aliases\"",
            ));
        }
    }
    match top.get("version") {
        None => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => {
            return Err(
                ctx.err(Some("version"), format!("unsupported version {other}; this tool reads version 1"))
            )
        }
    }
    let models = match top.get("models") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ctx.err(Some("models"), "expected an array of model objects")),
    };
    let mut entries: Vec<ModelEntry> = Vec::with_capacity(models.len());
    for (i, value) in models.iter().enumerate() {
        let label = value.get("name").and_then(Value::as_str).map(|n| format!("models[{i}] ({n})"));
        let ctx = Ctx { file, entry: Some(label.unwrap_or_else(|| format!("models[{i}]"))) };
        let entry = parse_entry(&ctx, value)?;
        check_conflicts(&ctx, &entry, &entries)?;
        entries.push(entry);
    }
    let mut aliases = Vec::new();
    match top.get("aliases") {
        None => {}
        Some(Value::Object(map)) => {
            for (alias, target) in map {
                let ctx = Ctx { file, entry: Some(format!("aliases.{alias}")) };
                let Value::String(target) = target else {
                    return Err(ctx.err(Some("aliases"), "expected a model name as the alias's target"));
                };
                let pair = check_alias(&ctx, alias, target, &entries, &aliases)?;
                aliases.push(pair);
            }
        }
        Some(_) => return Err(ctx.err(Some("aliases"), "expected an object of alias: model name")),
    }
    Ok(Document { values: models, entries, aliases })
}

/// Checks a user alias: a valid name that shadows nothing, and a target that resolves.
fn check_alias(
    ctx: &Ctx<'_>,
    alias: &str,
    target: &str,
    entries: &[ModelEntry],
    earlier: &[(String, String)],
) -> Result<(String, String)> {
    let alias = alias.trim().to_ascii_lowercase();
    if !valid_name(&alias) {
        return Err(ctx.err(Some("aliases"), format!("`{}` is not a valid alias name", alias.escape_debug())));
    }
    if Catalog::is_builtin_name(&alias) || entries.iter().any(|e| e.name == alias) {
        return Err(
            ctx.err(Some("aliases"), format!("`{alias}` is already a model name or a built-in alias"))
        );
    }
    if earlier.iter().any(|(a, _)| *a == alias) {
        return Err(ctx.err(Some("aliases"), format!("`{alias}` is set twice")));
    }
    let target = target.trim().to_ascii_lowercase();
    let catalog = Catalog::with_custom(entries.to_vec(), Vec::new());
    if let Err(e) = catalog.resolve(&target) {
        return Err(ctx.err(Some("aliases"), format!("`{alias}` points to `{target}`: {e}")));
    }
    Ok((alias, target))
}

fn parse_entry(ctx: &Ctx<'_>, value: &Value) -> Result<ModelEntry> {
    let Value::Object(obj) = value else {
        return Err(ctx.err(None, "expected a JSON object"));
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ctx.err(Some(k), format!("unknown field; known fields: {}", FIELDS.join(", "))));
    }
    let string = |field: &str, required: bool| -> Result<Option<String>> {
        match obj.get(field) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(ctx.err(Some(field), "missing; this field is required")),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ctx.err(Some(field), "expected a string")),
        }
    };
    let number = |field: &str, required: bool| -> Result<Option<u64>> {
        match obj.get(field) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(ctx.err(Some(field), "missing; this field is required")),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                ctx.err(Some(field), format!("expected a whole number of at least 0, got {n}"))
            }),
            Some(_) => Err(ctx.err(Some(field), "expected a number")),
        }
    };
    let task = match string("task", false)? {
        None => None,
        Some(t) => Some(
            ModelTask::parse(&t)
                .ok_or_else(|| ctx.err(Some("task"), format!("`{t}` is not `embedding` or `generation`")))?,
        ),
    };
    let dim = match number("embedding_dim", false)? {
        None => None,
        Some(d) => Some(u32::try_from(d).map_err(|_| ctx.err(Some("embedding_dim"), "too large"))?),
    };
    let model = CustomModel {
        name: string("name", true)?.unwrap_or_default(),
        hf_repo: string("hf_repo", true)?.unwrap_or_default(),
        hf_filename: string("hf_filename", true)?.unwrap_or_default(),
        revision: string("revision", true)?.unwrap_or_default(),
        sha256: string("sha256", true)?.unwrap_or_default(),
        size_bytes: number("size_bytes", true)?.unwrap_or_default(),
        arch: string("arch", false)?,
        embedding_dim: dim,
        quant: string("quant", false)?,
        task,
        description: string("description", false)?,
        license: string("license", false)?,
    };
    validate(ctx, &model)
}

/// Checks one model's fields and turns it into a catalog entry.
fn validate(ctx: &Ctx<'_>, m: &CustomModel) -> Result<ModelEntry> {
    let name = m.name.trim();
    if !valid_name(name) {
        return Err(ctx.err(
            Some("name"),
            format!("`{}` is not a valid name: use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit", m.name.escape_debug()),
        ));
    }
    if !valid_repo(&m.hf_repo) {
        return Err(ctx.err(
            Some("hf_repo"),
            format!("`{}` is not a Hugging Face repository; expected `owner/name`", m.hf_repo.escape_debug()),
        ));
    }
    if let Some(reason) = invalid_file_name(&m.hf_filename) {
        return Err(ctx.err(Some("hf_filename"), format!("`{}` {reason}", m.hf_filename.escape_debug())));
    }
    let revision = m.revision.trim().to_ascii_lowercase();
    if !is_hex(&revision, 40) {
        return Err(ctx.err(
            Some("revision"),
            format!("`{}` is not a commit hash; pin a full 40-hex-digit commit (see the repository's history on the Hub)", m.revision.escape_debug()),
        ));
    }
    let sha256 = m.sha256.trim().to_ascii_lowercase();
    if !is_hex(&sha256, 64) {
        return Err(ctx.err(
            Some("sha256"),
            format!(
                "`{}` is not a SHA-256; expected 64 hex digits (the Hub shows it on the file's page)",
                m.sha256.escape_debug()
            ),
        ));
    }
    if m.size_bytes == 0 {
        return Err(ctx.err(Some("size_bytes"), "must be the file's exact size in bytes, greater than 0"));
    }
    let quant = match &m.quant {
        Some(q) if valid_quant(q) => q.to_ascii_lowercase(),
        Some(q) => {
            return Err(ctx.err(
                Some("quant"),
                format!("`{}` is not a quantization name (letters, digits, `_`)", q.escape_debug()),
            ))
        }
        None => infer_quant(&m.hf_filename),
    };
    let text = |field: &str, v: &Option<String>, default: &str| -> Result<String> {
        match v {
            Some(s) if s.chars().any(char::is_control) => {
                Err(ctx.err(Some(field), "contains control characters"))
            }
            Some(s) if s.len() > 1024 => Err(ctx.err(Some(field), "longer than 1024 bytes")),
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            _ => Ok(default.to_string()),
        }
    };
    Ok(ModelEntry {
        name: Cow::Owned(name.to_ascii_lowercase()),
        quant: Cow::Owned(quant),
        default_variant: true,
        description: Cow::Owned(text("description", &m.description, "custom model")?),
        hf_repo: Cow::Owned(m.hf_repo.clone()),
        revision: Cow::Owned(revision),
        hf_filename: Cow::Owned(m.hf_filename.clone()),
        size_bytes: m.size_bytes,
        sha256: Cow::Owned(sha256),
        arch: Cow::Owned(text("arch", &m.arch, "unknown")?),
        embedding_dim: m.embedding_dim.unwrap_or(0),
        task: m.task.unwrap_or(ModelTask::Embedding),
        license: Cow::Owned(text("license", &m.license, "unknown")?),
        origin: Origin::Custom,
    })
}

fn check_conflicts(ctx: &Ctx<'_>, entry: &ModelEntry, earlier: &[ModelEntry]) -> Result<()> {
    if Catalog::is_builtin_name(&entry.name) {
        return Err(ctx.err(
            Some("name"),
            format!("`{}` is a built-in model name or alias; choose another name", entry.name),
        ));
    }
    let builtin = Catalog::builtin();
    for other in builtin.entries().iter().chain(earlier) {
        if other.origin == Origin::Custom && other.name == entry.name {
            return Err(
                ctx.err(Some("name"), format!("`{}` is already registered; unregister it first", entry.name))
            );
        }
        if other.hf_filename.eq_ignore_ascii_case(&entry.hf_filename) {
            return Err(ctx.err(
                Some("hf_filename"),
                format!(
                    "`{}` is already the file of `{}`; two models cannot share a file",
                    entry.hf_filename,
                    other.display_name()
                ),
            ));
        }
    }
    Ok(())
}

fn valid_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && s.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_repo(s: &str) -> bool {
    let Some((owner, name)) = s.split_once('/') else { return false };
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && !p.starts_with(['.', '-'])
            && !p.contains("..")
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    part(owner) && part(name)
}

/// Why `s` cannot be a model file name, if it cannot.
pub(crate) fn invalid_file_name(s: &str) -> Option<&'static str> {
    if s.contains(['/', '\\']) {
        Some("contains a path separator; give a plain file name")
    } else if s.contains("..") {
        Some("contains `..`; give a plain file name")
    } else if s.starts_with('.') {
        Some("starts with a dot; hidden files are not allowed")
    } else if s.chars().any(|c| c.is_control() || c == ':') {
        Some("contains a control character or `:`")
    } else if s.len() > 200 {
        Some("is longer than 200 bytes")
    } else if s.len() <= 5 || !s.to_ascii_lowercase().ends_with(".gguf") {
        Some("is not a GGUF file name; it must end in `.gguf`")
    } else {
        None
    }
}

fn valid_quant(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads the quantization from a file name such as `model-Q4_K_M.gguf`.
fn infer_quant(file: &str) -> String {
    let stem = file[..file.len() - 5].to_ascii_lowercase();
    stem.rsplit(['.', '-'])
        .next()
        .filter(|q| {
            q.len() >= 2
                && (q.starts_with('q') || q.starts_with('f') || q.starts_with("bf") || q.starts_with("iq"))
                && q.as_bytes()[1..].iter().any(u8::is_ascii_digit)
                && valid_quant(q)
        })
        .unwrap_or("unknown")
        .to_string()
}

/// Validates `model` against the file's current entries and adds it, atomically.
pub(crate) fn register(file: &Path, lock_dir: &Path, model: &CustomModel) -> Result<ModelEntry> {
    let _lock = lock(file, lock_dir)?;
    let Document { mut values, entries, aliases } = read_document(file)?;
    let ctx = Ctx { file, entry: Some(model.name.clone()) };
    let entry = validate(&ctx, model)?;
    check_conflicts(&ctx, &entry, &entries)?;
    if aliases.iter().any(|(a, _)| *a == entry.name) {
        return Err(ctx.err(Some("name"), format!("`{}` is an alias; remove the alias first", entry.name)));
    }
    let mut normalized = model.clone();
    normalized.name = entry.name.to_string();
    normalized.revision = entry.revision.to_string();
    normalized.sha256 = entry.sha256.to_string();
    values.push(normalized.to_value());
    write_document(file, values, &aliases)?;
    Ok(entry)
}

/// Sets the user alias `alias` to `target` (replacing an earlier target), atomically.
pub(crate) fn set_alias(file: &Path, lock_dir: &Path, alias: &str, target: &str) -> Result<(String, String)> {
    let _lock = lock(file, lock_dir)?;
    let Document { values, entries, mut aliases } = read_document(file)?;
    let lower = alias.trim().to_ascii_lowercase();
    aliases.retain(|(a, _)| *a != lower);
    let ctx = Ctx { file, entry: Some(format!("aliases.{lower}")) };
    let pair = check_alias(&ctx, alias, target, &entries, &aliases)?;
    aliases.push(pair.clone());
    write_document(file, values, &aliases)?;
    Ok(pair)
}

/// Removes the user alias `alias`, atomically. Returns its target.
pub(crate) fn remove_alias(file: &Path, lock_dir: &Path, alias: &str) -> Result<String> {
    let _lock = lock(file, lock_dir)?;
    let Document { values, mut aliases, .. } = read_document(file)?;
    let lower = alias.trim().to_ascii_lowercase();
    let Some(i) = aliases.iter().position(|(a, _)| *a == lower) else {
        return Err(RegistryError::UnknownModel { name: alias.to_string(), suggestions: Vec::new() });
    };
    let (_, target) = aliases.remove(i);
    write_document(file, values, &aliases)?;
    Ok(target)
}

/// Removes the custom entry called `name` (any case), atomically. Returns the entry removed.
pub(crate) fn unregister(file: &Path, lock_dir: &Path, name: &str) -> Result<ModelEntry> {
    let _lock = lock(file, lock_dir)?;
    let Document { mut values, entries, aliases } = read_document(file)?;
    let lower = name.trim().to_ascii_lowercase();
    let Some(i) = entries.iter().position(|e| e.name == lower) else {
        return Err(RegistryError::NotCustom {
            name: name.to_string(),
            builtin: Catalog::builtin().resolve(name).is_ok(),
        });
    };
    if let Some((alias, _)) = aliases.iter().find(|(_, t)| t.split(':').next() == Some(lower.as_str())) {
        return Err(RegistryError::InvalidCatalog {
            file: file.to_path_buf(),
            entry: Some(lower.clone()),
            field: Some("aliases".into()),
            reason: format!("alias `{alias}` points to it; remove the alias first"),
        });
    }
    values.remove(i);
    write_document(file, values, &aliases)?;
    Ok(entries[i].clone())
}

/// Serializes the other writers of the catalog file (a read-modify-write must not lose an
/// update). The lock is released when the returned file is dropped, or by the kernel if the
/// process dies.
fn lock(file: &Path, lock_dir: &Path) -> Result<fs::File> {
    crate::store::create_dir(lock_dir)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let path = lock_dir.join(format!("{name}.lock"));
    let f = crate::store::open_lock_file(&path)?;
    f.lock().map_err(|e| RegistryError::storage("lock", &path, e))?;
    Ok(f)
}

fn write_document(file: &Path, models: Vec<Value>, aliases: &[(String, String)]) -> Result<()> {
    let mut doc = Map::new();
    doc.insert("version".into(), 1.into());
    doc.insert("models".into(), Value::Array(models));
    if !aliases.is_empty() {
        let map: Map<String, Value> =
            aliases.iter().map(|(a, t)| (a.clone(), Value::from(t.clone()))).collect();
        doc.insert("aliases".into(), Value::Object(map));
    }
    let mut text = serde_json::to_vec_pretty(&Value::Object(doc)).expect("JSON values serialize");
    text.push(b'\n');
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::store::create_dir(parent)?;
    }
    write_atomic(file, &text)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers see the old content or the new, never half of it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = open_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        RegistryError::storage("write", path, e)
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()))
}

fn open_new(path: &Path) -> std::io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o644);
    opts.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> CustomModel {
        CustomModel {
            name: "My-Embed".into(),
            hf_repo: "my-org/my-embed-GGUF".into(),
            hf_filename: "my-embed-Q4_K_M.gguf".into(),
            revision: "0123456789ABCDEF0123456789abcdef01234567".into(),
            sha256: "AB".repeat(32),
            size_bytes: 1234,
            ..Default::default()
        }
    }

    fn check(m: &CustomModel) -> Result<ModelEntry> {
        validate(&Ctx { file: Path::new("catalog.json"), entry: Some(m.name.clone()) }, m)
    }

    fn field_of(err: RegistryError) -> String {
        match err {
            RegistryError::InvalidCatalog { field: Some(f), .. } => f,
            other => panic!("expected InvalidCatalog with a field, got {other:?}"),
        }
    }

    #[test]
    fn valid_model_is_normalized() {
        let e = check(&model()).unwrap();
        assert_eq!(e.name, "my-embed");
        assert_eq!(e.quant, "q4_k_m");
        assert_eq!(e.sha256, "ab".repeat(32));
        assert_eq!(e.revision, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(e.origin, Origin::Custom);
        assert_eq!(e.arch, "unknown");
    }

    #[test]
    fn bad_fields_are_named() {
        type Mutation = Box<dyn Fn(&mut CustomModel)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("hf_filename", Box::new(|m| m.hf_filename = "../evil.gguf".into())),
            ("hf_filename", Box::new(|m| m.hf_filename = "a/b.gguf".into())),
            ("hf_filename", Box::new(|m| m.hf_filename = "a\\b.gguf".into())),
            ("hf_filename", Box::new(|m| m.hf_filename = "/etc/passwd.gguf".into())),
            ("hf_filename", Box::new(|m| m.hf_filename = ".hidden.gguf".into())),
            ("hf_filename", Box::new(|m| m.hf_filename = "model.bin".into())),
            ("hf_filename", Box::new(|m| m.hf_filename = ".gguf".into())),
            ("hf_filename", Box::new(|m| m.hf_filename = "a\nb.gguf".into())),
            ("sha256", Box::new(|m| m.sha256 = "xyz".into())),
            ("sha256", Box::new(|m| m.sha256 = "g".repeat(64))),
            ("sha256", Box::new(|m| m.sha256 = "a".repeat(63))),
            ("revision", Box::new(|m| m.revision = "main".into())),
            ("hf_repo", Box::new(|m| m.hf_repo = "noslash".into())),
            ("hf_repo", Box::new(|m| m.hf_repo = "a/b/c".into())),
            ("hf_repo", Box::new(|m| m.hf_repo = "../b".into())),
            ("hf_repo", Box::new(|m| m.hf_repo = "https://evil.example/x".into())),
            ("name", Box::new(|m| m.name = "".into())),
            ("name", Box::new(|m| m.name = "a:b".into())),
            ("name", Box::new(|m| m.name = "a/b".into())),
            ("size_bytes", Box::new(|m| m.size_bytes = 0)),
            ("quant", Box::new(|m| m.quant = Some("q8-0!".into()))),
        ];
        for (field, mutate) in cases {
            let mut m = model();
            mutate(&mut m);
            assert_eq!(field_of(check(&m).unwrap_err()), field, "{m:?}");
        }
    }

    #[test]
    fn quant_is_inferred_from_the_file_name() {
        assert_eq!(infer_quant("all-MiniLM-L6-v2.Q8_0.gguf"), "q8_0");
        assert_eq!(infer_quant("nomic-embed-text-v1.5.f16.gguf"), "f16");
        assert_eq!(infer_quant("bge-m3-Q8_0.gguf"), "q8_0");
        assert_eq!(infer_quant("model.gguf"), "unknown");
        assert_eq!(infer_quant("Qwen3-Embedding-8B.gguf"), "unknown");
    }

    #[test]
    fn document_errors_name_the_entry_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        let write = |s: &str| fs::write(&file, s).unwrap();
        let good = serde_json::to_string(&model().to_value()).unwrap();

        write(&format!(r#"{{"version":1,"models":[{good}]}}"#));
        assert_eq!(load(&file).unwrap().len(), 1);

        write("");
        assert!(load(&file).unwrap().is_empty());

        for (doc, entry, field) in [
            ("{not json", None, None),
            ("[]", None, None),
            (r#"{"version":2}"#, None, Some("version")),
            (r#"{"modles":[]}"#, None, Some("modles")),
            (r#"{"models":{}}"#, None, Some("models")),
            (r#"{"models":[1]}"#, Some("models[0]"), None),
            (r#"{"models":[{"name":"x"}]}"#, Some("models[0] (x)"), Some("hf_repo")),
            (r#"{"models":[{"name":5}]}"#, Some("models[0]"), Some("name")),
        ] {
            write(doc);
            match load(&file).unwrap_err() {
                RegistryError::InvalidCatalog { file: f, entry: e, field: fl, .. } => {
                    assert_eq!(f, file);
                    assert_eq!(e.as_deref(), entry, "{doc}");
                    assert_eq!(fl.as_deref(), field, "{doc}");
                }
                other => panic!("{doc}: {other:?}"),
            }
        }

        let mut v = model().to_value();
        v["size_bytes"] = serde_json::json!(-1);
        write(&format!(r#"{{"models":[{v}]}}"#));
        assert_eq!(field_of(load(&file).unwrap_err()), "size_bytes");
        v["size_bytes"] = serde_json::json!(1.5);
        write(&format!(r#"{{"models":[{v}]}}"#));
        assert_eq!(field_of(load(&file).unwrap_err()), "size_bytes");
        let mut v = model().to_value();
        v["sha265"] = serde_json::json!("typo");
        write(&format!(r#"{{"models":[{v}]}}"#));
        assert_eq!(field_of(load(&file).unwrap_err()), "sha265");
        write(&format!(r#"{{"models":[{good},{good}]}}"#));
        let err = load(&file).unwrap_err();
        assert_eq!(field_of(err), "name");
    }

    #[test]
    fn conflicts_with_builtins_and_other_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        let lock_dir = dir.path().join(".strata");
        let mut m = model();
        m.name = "MiniLM".into();
        assert_eq!(field_of(register(&file, &lock_dir, &m).unwrap_err()), "name");
        m.name = "nomic".into();
        assert_eq!(field_of(register(&file, &lock_dir, &m).unwrap_err()), "name");
        let mut m = model();
        m.hf_filename = "all-minilm-l6-v2.q8_0.gguf".into();
        assert_eq!(field_of(register(&file, &lock_dir, &m).unwrap_err()), "hf_filename");
        assert!(!file.exists(), "a refused registration writes nothing");

        register(&file, &lock_dir, &model()).unwrap();
        let mut other = model();
        other.name = "other".into();
        assert_eq!(field_of(register(&file, &lock_dir, &other).unwrap_err()), "hf_filename");
        assert_eq!(field_of(register(&file, &lock_dir, &model()).unwrap_err()), "name");
        assert_eq!(load(&file).unwrap().len(), 1);
        unregister(&file, &lock_dir, "MY-EMBED").unwrap();
        assert!(load(&file).unwrap().is_empty());
        assert!(matches!(
            unregister(&file, &lock_dir, "minilm"),
            Err(RegistryError::NotCustom { builtin: true, .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        let good = format!(r#"{{"version":1,"models":[{}]}}"#, model().to_value());
        let mut seed = 0x9e3779b97f4a7c15u64;
        for round in 0..2000 {
            let mut bytes = good.clone().into_bytes();
            for _ in 0..(round % 7 + 1) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % bytes.len();
                bytes[i] = (seed >> 32) as u8;
            }
            if round % 5 == 0 {
                bytes.truncate((seed as usize) % bytes.len());
            }
            fs::write(&file, &bytes).unwrap();
            let _ = load(&file);
        }
    }
}
