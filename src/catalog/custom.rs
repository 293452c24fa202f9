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
//!   ],
//!   "aliases": { "default-embed": "minilm" }
//! }
//! ```
//!
//! Required: `name`, `hf_repo`, `hf_filename`, `revision`, `sha256`, `size_bytes` — or, for a
//! model adopted from an OCI registry (`add oci://…`), `oci` (the manifest pinned by digest)
//! instead of `hf_repo` and `revision`. A custom entry names Hugging Face coordinates (or a
//! registry's pinned manifest) and a SHA-256, never an arbitrary URL; it may not
//! shadow a built-in name or alias, nor reuse another entry's file name. Any problem is a
//! [`RegistryError::InvalidCatalog`] naming the file, the entry and the field.
//!
//! The fields are those of [`CustomModel`], read and written by serde: a new field is added
//! there, and to its validation beside it if it needs checking.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::custom_model::CustomModel;
use super::custom_model::{check_alias, check_conflicts, check_new_model, validate, Ctx};
use super::entry::ModelEntry;
use super::Catalog;
use crate::error::{RegistryError, Result};

/// The largest custom catalog file read (a catalog is a few kilobytes).
const MAX_CATALOG_BYTES: u64 = 16 * 1024 * 1024;

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

/// The file's top level, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    models: Vec<Value>,
    #[serde(default)]
    aliases: BTreeMap<String, Value>,
}

/// The file as this crate writes it.
#[derive(Serialize)]
struct WrittenDocument<'a> {
    version: u32,
    models: &'a [CustomModel],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    aliases: BTreeMap<&'a str, &'a str>,
}

/// A read file: its models as written (to rewrite them) and as validated entries.
struct Document {
    models: Vec<CustomModel>,
    entries: Vec<ModelEntry>,
    aliases: Vec<(String, String)>,
}

fn read_document(file: &Path) -> Result<Document> {
    let ctx = Ctx { file, entry: None };
    let f = match fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Document { models: Vec::new(), entries: Vec::new(), aliases: Vec::new() })
        }
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
/// let err = strata_model::catalog::custom::parse(std::path::Path::new("c.json"), b"{\"models\": 5}").unwrap_err();
/// assert!(err.to_string().contains("field `models`"));
/// ```
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Vec<ModelEntry>> {
    Ok(parse_document(file, bytes)?.entries)
}

fn parse_document(file: &Path, bytes: &[u8]) -> Result<Document> {
    let ctx = Ctx { file, entry: None };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document { models: Vec::new(), entries: Vec::new(), aliases: Vec::new() });
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| RegistryError::InvalidCatalog {
        file: file.to_path_buf(),
        entry: None,
        field: None,
        reason: "not valid JSON (fix the file or delete it to start over)".into(),
        source: Some(e),
    })?;
    if !doc.is_object() {
        return Err(ctx.err(None, "expected a JSON object with a \"models\" array"));
    }
    let raw: RawDocument = serde_path_to_error::deserialize(doc).map_err(|e| {
        let field = e.path().iter().next().map(|_| e.path().to_string());
        ctx.err(field.as_deref(), e.inner().to_string())
    })?;
    match &raw.version {
        None => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => {
            return Err(
                ctx.err(Some("version"), format!("unsupported version {other}; this tool reads version 1"))
            )
        }
    }
    let mut models = Vec::with_capacity(raw.models.len());
    let mut entries: Vec<ModelEntry> = Vec::with_capacity(raw.models.len());
    for (i, value) in raw.models.into_iter().enumerate() {
        let label = value.get("name").and_then(Value::as_str).map(|n| format!("models[{i}] ({n})"));
        let ctx = Ctx { file, entry: Some(label.unwrap_or_else(|| format!("models[{i}]"))) };
        if !value.is_object() {
            return Err(ctx.err(None, "expected a JSON object"));
        }
        let model: CustomModel = serde_path_to_error::deserialize(value)
            .map_err(|e| ctx.err(Some(&e.path().to_string()), e.inner().to_string()))?;
        let mut entry = validate(&ctx, &model)?;
        check_conflicts(&ctx, &mut entry, &entries)?;
        entries.push(entry);
        models.push(model);
    }
    let mut aliases = Vec::new();
    for (alias, target) in &raw.aliases {
        let ctx = Ctx { file, entry: Some(format!("aliases.{alias}")) };
        let Value::String(target) = target else {
            return Err(ctx.err(Some("aliases"), "expected a model name as the alias's target"));
        };
        let pair = check_alias(&ctx, alias, target, &entries, &aliases)?;
        aliases.push(pair);
    }
    Ok(Document { models, entries, aliases })
}

/// Validates `model` against the file's current entries and adds it, atomically.
pub(crate) fn register(file: &Path, lock_dir: &Path, model: &CustomModel) -> Result<ModelEntry> {
    let _lock = lock(file, lock_dir)?;
    let Document { mut models, entries, aliases } = read_document(file)?;
    let (entry, normalized) = admit(file, model, &entries, &aliases)?;
    models.push(normalized);
    write_document(file, &models, &aliases)?;
    Ok(entry)
}

/// What [`register`] would add, checked the same way, without writing anything.
#[cfg(feature = "registry")]
pub(crate) fn check_new(file: &Path, model: &CustomModel) -> Result<ModelEntry> {
    let Document { entries, aliases, .. } = read_document(file)?;
    admit(file, model, &entries, &aliases).map(|(entry, _)| entry)
}

/// Checks `model` against the catalog's entries and aliases: its entry, and the model as it is
/// written (name, revision and hash normalized).
fn admit(
    file: &Path,
    model: &CustomModel,
    entries: &[ModelEntry],
    aliases: &[(String, String)],
) -> Result<(ModelEntry, CustomModel)> {
    let ctx = Ctx { file, entry: Some(model.name.clone()) };
    let mut entry = validate(&ctx, model)?;
    check_new_model(&ctx, model)?;
    check_conflicts(&ctx, &mut entry, entries)?;
    if aliases.iter().any(|(a, _)| *a == entry.name) {
        return Err(ctx.err(Some("name"), format!("`{}` is an alias; remove the alias first", entry.name)));
    }
    let mut normalized = model.clone();
    normalized.name = entry.name.to_string();
    normalized.revision = entry.revision.to_string();
    if entry.is_multi_file() {
        normalized.files = entry.files.iter().map(super::files::CustomFile::from).collect();
    } else {
        normalized.sha256 = entry.sha256.to_string();
    }
    Ok((entry, normalized))
}

/// The custom entry `old` as the file holds it (every field as written).
#[cfg(feature = "registry")]
pub(crate) fn stored(file: &Path, old: &ModelEntry) -> Result<CustomModel> {
    let Document { models, entries, .. } = read_document(file)?;
    let same = |e: &ModelEntry| e.name == old.name && e.quant == old.quant && e.revision == old.revision;
    entries
        .iter()
        .position(same)
        .map(|i| models[i].clone())
        .ok_or_else(|| RegistryError::NotCustom { name: old.display_name(), builtin: false })
}

/// Replaces the custom entry `old`, which the file held as `was`, by `model` (the same name
/// and quantization, a new pin), checked as `register` checks a model, atomically. `None`
/// (nothing written) when the entry is no longer `was`: another `update`, an edit or
/// `unregister` changed it meanwhile.
#[cfg(feature = "registry")]
pub(crate) fn repin(
    file: &Path,
    lock_dir: &Path,
    old: &ModelEntry,
    was: &CustomModel,
    model: &CustomModel,
) -> Result<Option<ModelEntry>> {
    let _lock = lock(file, lock_dir)?;
    let Document { mut models, mut entries, aliases } = read_document(file)?;
    let same = |e: &ModelEntry| e.name == old.name && e.quant == old.quant;
    let Some(i) = entries.iter().position(same).filter(|&i| models[i] == *was) else {
        return Ok(None);
    };
    entries.remove(i);
    let (entry, normalized) = admit(file, model, &entries, &aliases)?;
    models[i] = normalized;
    write_document(file, &models, &aliases)?;
    Ok(Some(entry))
}

/// What [`repin`] would write, checked the same way, without writing anything.
#[cfg(feature = "registry")]
pub(crate) fn check_repin(file: &Path, old: &ModelEntry, model: &CustomModel) -> Result<ModelEntry> {
    let Document { mut entries, aliases, .. } = read_document(file)?;
    entries.retain(|e| !(e.name == old.name && e.quant == old.quant));
    admit(file, model, &entries, &aliases).map(|(entry, _)| entry)
}

/// Sets the user alias `alias` to `target` (replacing an earlier target), atomically.
pub(crate) fn set_alias(file: &Path, lock_dir: &Path, alias: &str, target: &str) -> Result<(String, String)> {
    let _lock = lock(file, lock_dir)?;
    let Document { models, entries, mut aliases } = read_document(file)?;
    let lower = alias.trim().to_ascii_lowercase();
    aliases.retain(|(a, _)| *a != lower);
    let ctx = Ctx { file, entry: Some(format!("aliases.{lower}")) };
    let pair = check_alias(&ctx, alias, target, &entries, &aliases)?;
    aliases.push(pair.clone());
    write_document(file, &models, &aliases)?;
    Ok(pair)
}

/// Removes the user alias `alias`, atomically. Returns its target.
pub(crate) fn remove_alias(file: &Path, lock_dir: &Path, alias: &str) -> Result<String> {
    let _lock = lock(file, lock_dir)?;
    let Document { models, mut aliases, .. } = read_document(file)?;
    let lower = alias.trim().to_ascii_lowercase();
    let Some(i) = aliases.iter().position(|(a, _)| *a == lower) else {
        return Err(RegistryError::UnknownModel { name: alias.to_string(), suggestions: Vec::new() });
    };
    let (_, target) = aliases.remove(i);
    write_document(file, &models, &aliases)?;
    Ok(target)
}

/// Removes the custom entry called `name` (any case; `name:quant` for one of several
/// variants), atomically. Returns the entry removed.
pub(crate) fn unregister(file: &Path, lock_dir: &Path, name: &str) -> Result<ModelEntry> {
    let _lock = lock(file, lock_dir)?;
    let Document { mut models, mut entries, aliases } = read_document(file)?;
    let lower = name.trim().to_ascii_lowercase();
    let (base, quant) = lower.split_once(':').map_or((lower.as_str(), None), |(b, q)| (b, Some(q)));
    let matching: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].name == base && quant.is_none_or(|q| entries[i].quant == q))
        .collect();
    let ctx = Ctx { file, entry: Some(lower.clone()) };
    let i = match matching[..] {
        [i] => i,
        [] if quant.is_some() && entries.iter().any(|e| e.name == base) => {
            return Err(RegistryError::UnknownQuant {
                model: base.to_string(),
                quant: quant.unwrap_or_default().to_string(),
                available: entries
                    .iter()
                    .filter(|e| e.name == base)
                    .map(|e| format!("{}:{}", e.name, e.quant))
                    .collect(),
            })
        }
        [] => {
            return Err(RegistryError::NotCustom {
                name: name.to_string(),
                builtin: Catalog::builtin().resolve(name).is_ok(),
            })
        }
        _ => {
            let names: Vec<String> =
                matching.iter().map(|&i| format!("{base}:{}", entries[i].quant)).collect();
            return Err(ctx.err(
                Some("name"),
                format!("`{base}` has several variants ({}); unregister one by NAME:QUANT", names.join(", ")),
            ));
        }
    };
    let removed = entries.remove(i);
    models.remove(i);
    let remaining = Catalog::with_custom(entries, Vec::new());
    if let Some((alias, _)) = aliases.iter().find(|(_, t)| remaining.resolve(t).is_err()) {
        return Err(ctx.err(Some("aliases"), format!("alias `{alias}` points to it; remove the alias first")));
    }
    write_document(file, &models, &aliases)?;
    Ok(removed)
}

/// Serializes the writers of the catalog file (a read-modify-write must not lose an update).
/// The lock is released when the returned guard is dropped.
fn lock(file: &Path, lock_dir: &Path) -> Result<crate::fs::lock::Guard> {
    crate::fs::create_dir(lock_dir)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    crate::fs::lock::Lock::new(&lock_dir.join(format!("{name}.lock"))).acquire_blocking()
}

fn write_document(file: &Path, models: &[CustomModel], aliases: &[(String, String)]) -> Result<()> {
    let doc = WrittenDocument {
        version: 1,
        models,
        aliases: aliases.iter().map(|(a, t)| (a.as_str(), t.as_str())).collect(),
    };
    let mut text = serde_json::to_vec_pretty(&doc).expect("catalog documents serialize");
    text.push(b'\n');
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::fs::create_dir(parent)?;
    }
    crate::fs::write_atomic(file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> CustomModel {
        super::super::custom_model::sample()
    }

    fn field_of(err: RegistryError) -> String {
        match err {
            RegistryError::InvalidCatalog { field: Some(f), .. } => f,
            other => panic!("expected InvalidCatalog with a field, got {other:?}"),
        }
    }

    #[test]
    fn document_errors_name_the_entry_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        let write = |s: &str| fs::write(&file, s).unwrap();
        let good = serde_json::to_string(&model()).unwrap();

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

        let mut v = serde_json::to_value(model()).unwrap();
        v["size_bytes"] = serde_json::json!(-1);
        write(&format!(r#"{{"models":[{v}]}}"#));
        assert_eq!(field_of(load(&file).unwrap_err()), "size_bytes");
        v["size_bytes"] = serde_json::json!(1.5);
        write(&format!(r#"{{"models":[{v}]}}"#));
        assert_eq!(field_of(load(&file).unwrap_err()), "size_bytes");
        let mut v = serde_json::to_value(model()).unwrap();
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
    fn one_name_may_hold_several_quantizations() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        let lock_dir = dir.path().join(".strata");
        let q4 = register(&file, &lock_dir, &model()).unwrap();
        assert!(q4.default_variant);
        let mut f16 = model();
        f16.hf_filename = "my-embed-F16.gguf".into();
        let f16 = register(&file, &lock_dir, &f16).unwrap();
        assert!(!f16.default_variant);
        assert_eq!(f16.display_name(), "my-embed:f16");
        let mut again = model();
        again.hf_filename = "my-embed-copy-Q4_K_M.gguf".into();
        assert_eq!(field_of(register(&file, &lock_dir, &again).unwrap_err()), "name");

        let catalog = Catalog::with_custom(load(&file).unwrap(), Vec::new());
        assert_eq!(catalog.resolve("my-embed").unwrap().quant, "q4_k_m");
        assert_eq!(catalog.resolve("MY-EMBED:F16").unwrap().hf_filename, "my-embed-F16.gguf");

        assert_eq!(field_of(unregister(&file, &lock_dir, "my-embed").unwrap_err()), "name");
        assert!(matches!(
            unregister(&file, &lock_dir, "my-embed:q2_k"),
            Err(RegistryError::UnknownQuant { available, .. }) if available.len() == 2
        ));
        assert_eq!(unregister(&file, &lock_dir, "my-embed:q4_k_m").unwrap().quant, "q4_k_m");
        let left = load(&file).unwrap();
        assert_eq!((left.len(), left[0].default_variant), (1, true), "the remaining variant is the default");
        set_alias(&file, &lock_dir, "mine", "my-embed").unwrap();
        assert_eq!(field_of(unregister(&file, &lock_dir, "my-embed").unwrap_err()), "aliases");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        let good = format!(r#"{{"version":1,"models":[{}]}}"#, serde_json::to_value(model()).unwrap());
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
