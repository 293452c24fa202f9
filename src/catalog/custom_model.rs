//! [`CustomModel`], a model of the custom catalog, and the rules it (and a user alias) must
//! follow, checked when the file is read and when `register` or `alias set` writes it. Each
//! failure names the field.

use std::borrow::Cow;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::entry::{is_hex, ModelEntry, ModelTask, Origin, UNKNOWN};
use super::file_names::{invalid_file_name, non_portable_file_name};
use super::files::{check_files, CustomFile};
use super::oci_reference::pinned_reference;
use super::Catalog;
use crate::error::{RegistryError, Result};

/// A model of the custom catalog, as written in the file and as given to
/// [`crate::Registry::register`]: Hugging Face coordinates and the SHA-256 the bytes must
/// have. Optional fields may stay at their defaults.
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustomModel {
    /// Name (letters, digits, `.`, `_`, `-`; case-insensitive).
    pub name: String,
    /// Hugging Face repository, `owner/name` (empty, and left out, with `oci`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hf_repo: String,
    /// Plain file name ending in `.gguf` (empty, and left out of the file, when `files` lists
    /// the model's files).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hf_filename: String,
    /// Commit to pin (40 hex digits; empty, and left out, with `oci`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// SHA-256 of the file (64 hex digits; empty with `files`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// Exact size in bytes (0 with `files`).
    #[serde(skip_serializing_if = "is_zero")]
    pub size_bytes: u64,
    /// GGUF `general.architecture` (default `unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Embedding dimension (default 0: unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_dim: Option<u32>,
    /// Quantization (default: read from the file name, e.g. `Q8_0`, else `unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant: Option<String>,
    /// Task (default embedding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<ModelTask>,
    /// One line for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// License identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The branch or tag the pin was taken from (`main`, `v2`; `add` records it): what
    /// `outdated` asks the Hub about. Left out when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracks: Option<String>,
    /// The files of a multi-file model (split weights, sidecars), in order, instead of
    /// `hf_filename`, `sha256` and `size_bytes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<CustomFile>,
    /// Where the model was adopted from, an OCI registry's manifest pinned by its digest
    /// (`oci://host[:port]/repository[:tag]@sha256:<manifest digest>`), instead of `hf_repo`
    /// and `revision`: the files download from that registry by their SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Error-building context: which file and which entry are being checked.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    pub(super) entry: Option<String>,
}

impl Ctx<'_> {
    pub(super) fn err(&self, field: Option<&str>, reason: impl Into<String>) -> RegistryError {
        RegistryError::InvalidCatalog {
            file: self.file.to_path_buf(),
            entry: self.entry.clone(),
            field: field.map(str::to_string),
            reason: reason.into(),
            source: None,
        }
    }
}

/// Checks a user alias: a valid name that shadows nothing, and a target that resolves.
pub(super) fn check_alias(
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

/// Checks one model's fields and turns it into a catalog entry.
pub(super) fn validate(ctx: &Ctx<'_>, m: &CustomModel) -> Result<ModelEntry> {
    let files = if m.files.is_empty() {
        Vec::new()
    } else {
        for (field, given) in [
            ("hf_filename", !m.hf_filename.is_empty()),
            ("sha256", !m.sha256.is_empty()),
            ("size_bytes", m.size_bytes != 0),
        ] {
            if given {
                return Err(ctx.err(Some(field), "is given with `files`; a multi-file model gives each file's path, size and SHA-256 in `files` only"));
            }
        }
        check_files(&m.files, invalid_file_name).map_err(|(i, field, reason)| {
            ctx.err(Some(&format!("files[{i}].{field}").replace("files[0].files", "files")), reason)
        })?
    };
    let oci = m.oci.as_deref().map(pinned_reference).transpose().map_err(|r| ctx.err(Some("oci"), r))?;
    for (field, value) in [("hf_repo", &m.hf_repo), ("revision", &m.revision)] {
        if oci.is_some() && !value.trim().is_empty() {
            let why =
                "is given with `oci`; a model adopted from a registry downloads from it, not from the Hub";
            return Err(ctx.err(Some(field), why));
        }
    }
    let (hf_filename, sha256, size_bytes) = match files.first() {
        Some(f) => (f.path.to_string(), f.sha256.to_string(), f.size_bytes),
        None => (m.hf_filename.clone(), m.sha256.clone(), m.size_bytes),
    };
    for (field, value) in [
        ("name", &m.name),
        ("hf_repo", &m.hf_repo),
        ("hf_filename", &hf_filename),
        ("revision", &m.revision),
        ("sha256", &sha256),
    ] {
        // A model adopted from a registry names no Hub repository or commit.
        let hub_only = matches!(field, "hf_repo" | "revision");
        if value.trim().is_empty() && !(hub_only && oci.is_some()) {
            return Err(ctx.err(Some(field), "missing; this field is required"));
        }
    }
    let name = m.name.trim();
    if !valid_name(name) {
        return Err(ctx.err(
            Some("name"),
            format!("`{}` is not a valid name: use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit", m.name.escape_debug()),
        ));
    }
    if oci.is_none() && !valid_repo(&m.hf_repo) {
        return Err(ctx.err(
            Some("hf_repo"),
            format!("`{}` is not a Hugging Face repository; expected `owner/name`", m.hf_repo.escape_debug()),
        ));
    }
    if files.is_empty() {
        if let Some(reason) = invalid_file_name(&m.hf_filename) {
            return Err(ctx.err(Some("hf_filename"), format!("`{}` {reason}", m.hf_filename.escape_debug())));
        }
    }
    let revision = m.revision.trim().to_ascii_lowercase();
    if oci.is_none() && !is_hex(&revision, 40) {
        return Err(ctx.err(
            Some("revision"),
            format!("`{}` is not a commit hash; pin a full 40-hex-digit commit (see the repository's history on the Hub)", m.revision.escape_debug()),
        ));
    }
    let sha256 = sha256.trim().to_ascii_lowercase();
    if !is_hex(&sha256, 64) {
        return Err(ctx.err(
            Some("sha256"),
            format!(
                "`{}` is not a SHA-256; expected 64 hex digits (the Hub shows it on the file's page)",
                m.sha256.escape_debug()
            ),
        ));
    }
    if size_bytes == 0 {
        return Err(ctx.err(Some("size_bytes"), "must be the file's exact size in bytes, greater than 0"));
    }
    if size_bytes > super::files::MAX_FILE_SIZE {
        return Err(ctx.err(Some("size_bytes"), super::files::too_large(size_bytes)));
    }
    let quant = match &m.quant {
        Some(q) if valid_quant(q) => q.to_ascii_lowercase(),
        Some(q) => {
            return Err(ctx.err(
                Some("quant"),
                format!("`{}` is not a quantization name (letters, digits, `_`)", q.escape_debug()),
            ))
        }
        None => infer_quant(&super::files::quant_name(&hf_filename)),
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
    let tracks = match m.tracks.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) if valid_ref(r) => Some(Cow::Owned(r.to_string())),
        Some(r) => {
            return Err(ctx.err(
                Some("tracks"),
                format!(
                "`{}` is not a branch or tag name (no spaces, control characters or `..`; at most 255 bytes)",
                r.escape_debug()
            ),
            ))
        }
    };
    Ok(ModelEntry {
        name: Cow::Owned(name.to_ascii_lowercase()),
        quant: Cow::Owned(quant),
        default_variant: true,
        description: Cow::Owned(text("description", &m.description, "")?),
        hf_repo: Cow::Owned(m.hf_repo.clone()),
        revision: Cow::Owned(revision),
        hf_filename: Cow::Owned(hf_filename),
        size_bytes,
        sha256: Cow::Owned(sha256),
        arch: Cow::Owned(text("arch", &m.arch, UNKNOWN)?),
        embedding_dim: m.embedding_dim.unwrap_or(0),
        task: m.task.unwrap_or(ModelTask::Embedding),
        license: Cow::Owned(text("license", &m.license, UNKNOWN)?),
        origin: Origin::Custom,
        tracks,
        files: Cow::Owned(files),
        oci,
    })
}

/// Whether `r` can be a Git branch or tag name (as `git check-ref-format` would mostly
/// agree): printable, no spaces, no `..`, not starting with `-` or `/`.
fn valid_ref(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && !r.starts_with(['-', '/'])
        && !r.contains("..")
        && r.split('/').all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
        && r.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
}

/// Checks what only a model being registered must follow (a catalog file written before
/// these rules is still read): a file name FAT, exFAT and Windows accept.
pub(super) fn check_new_model(ctx: &Ctx<'_>, m: &CustomModel) -> Result<()> {
    let names: Vec<(String, &str)> = if m.files.is_empty() {
        vec![("hf_filename".into(), m.hf_filename.as_str())]
    } else {
        m.files
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("files[{i}].path"), super::files::base_name(&f.path)))
            .collect()
    };
    // A multi-file model's folder is named after its weights: it must be a portable name too.
    let folder = m.files.first().map(|f| super::files::unit_dir(&f.path));
    if let Some(reason) = folder.as_deref().and_then(non_portable_file_name) {
        return Err(ctx.err(
            Some("files[0].path"),
            format!(
                "the model would be stored in a folder `{}`, which {reason}; a model is stored under its file names on the Hub: upload a copy under another name and register that",
                folder.as_deref().unwrap_or_default().escape_debug(),
            ),
        ));
    }
    for (field, name) in names {
        if let Some(reason) = non_portable_file_name(name) {
            return Err(ctx.err(
                Some(&field),
                format!(
                    "`{}` {reason}; a model is stored under its file name on the Hub: upload a copy under another name and register that",
                    name.escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

/// Checks `entry` against the built-in catalog and the custom entries before it. A custom
/// name may hold several quantizations (`tiny:q8_0`, `tiny:f16`): the first in the file is the
/// default variant, so `entry.default_variant` is set here.
pub(super) fn check_conflicts(ctx: &Ctx<'_>, entry: &mut ModelEntry, earlier: &[ModelEntry]) -> Result<()> {
    if Catalog::is_builtin_name(&entry.name) {
        return Err(ctx.err(
            Some("name"),
            format!("`{}` is a built-in model name or alias; choose another name", entry.name),
        ));
    }
    let builtin = Catalog::builtin();
    for other in builtin.entries().iter().chain(earlier) {
        if other.origin == Origin::Custom && other.name == entry.name && other.quant == entry.quant {
            return Err(ctx.err(
                Some("name"),
                format!("`{}:{}` is already registered; unregister it first", entry.name, entry.quant),
            ));
        }
        if other.origin == Origin::Custom
            && other.name == entry.name
            && !other.repository().eq_ignore_ascii_case(&entry.repository())
        {
            return Err(ctx.err(
                Some("name"),
                format!(
                    "`{}` is already registered from {}; the variants of a name come from one repository: choose another name",
                    entry.name,
                    other.repository()
                ),
            ));
        }
        let (mine, theirs) = (top_level_name(entry), top_level_name(other));
        if mine.eq_ignore_ascii_case(&theirs) {
            let (field, what) = match entry.unit_dir() {
                Some(_) => ("files", "folder"),
                None => ("hf_filename", "file"),
            };
            return Err(ctx.err(
                Some(field),
                format!(
                    "`{mine}` is already the {what} of `{}` in the models directory; two models cannot share a file",
                    other.display_name()
                ),
            ));
        }
    }
    entry.default_variant = !earlier.iter().any(|e| e.name == entry.name);
    Ok(())
}

/// The name an entry takes at the top of the models directory: its file, or the folder of a
/// multi-file model.
fn top_level_name(entry: &ModelEntry) -> String {
    entry.unit_dir().unwrap_or_else(|| entry.hf_filename.to_string())
}

pub(crate) fn valid_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && s.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_repo(s: &str) -> bool {
    s.split_once('/').is_some_and(|(owner, name)| valid_repo_part(owner) && valid_repo_part(name))
}

/// Whether `p` can be the owner or the name of a Hugging Face repository.
pub(super) fn valid_repo_part(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 96
        && !p.starts_with(['.', '-'])
        && !p.contains("..")
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_quant(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads the quantization from a file name such as `model-Q4_K_M.gguf`.
pub(crate) fn infer_quant(file: &str) -> String {
    let stem = file[..file.len() - 5].to_ascii_lowercase();
    stem.rsplit(['.', '-'])
        .next()
        .filter(|q| {
            q.len() >= 2
                && (q.starts_with('q') || q.starts_with('f') || q.starts_with("bf") || q.starts_with("iq"))
                && q.as_bytes()[1..].iter().any(u8::is_ascii_digit)
                && valid_quant(q)
        })
        .unwrap_or(UNKNOWN)
        .to_string()
}

/// A valid model, not normalized (mixed case), for the tests of the catalog.
#[cfg(test)]
pub(super) fn sample() -> CustomModel {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> CustomModel {
        sample()
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
            ("size_bytes", Box::new(|m| m.size_bytes = u64::MAX)),
            ("size_bytes", Box::new(|m| m.size_bytes = (1 << 50) + 1)),
            ("quant", Box::new(|m| m.quant = Some("q8-0!".into()))),
        ];
        for (field, mutate) in cases {
            let mut m = model();
            mutate(&mut m);
            assert_eq!(field_of(check(&m).unwrap_err()), field, "{m:?}");
        }
    }

    #[test]
    fn names_fat_exfat_or_windows_refuse_are_named() {
        for (name, says) in [
            ("a*b.gguf", "`*`"),
            ("a?b.gguf", "`?`"),
            ("a\"b.gguf", "`\"`"),
            ("a<b.gguf", "`<`"),
            ("a>b.gguf", "`>`"),
            ("a|b.gguf", "`|`"),
            ("a:b.gguf", "`:`"),
            ("a\tb.gguf", "U+0009"),
            ("a\u{7f}.gguf", "U+007F"),
            ("evil\u{202E}fuggg.gguf", "bidirectional control U+202E"),
            ("a\u{2066}b.gguf", "U+2066"),
            ("m.gguf.", "ends with a dot"),
            ("m.gguf ", "ends with a space"),
            ("CON.gguf", "`CON`"),
            ("nul.gguf", "`nul`"),
            ("Aux.Q8_0.gguf", "`Aux`"),
            ("com1.gguf", "`com1`"),
            ("LPT9.gguf", "`LPT9`"),
            ("COM\u{b9}.gguf", "reserves"),
            ("prn .gguf", "`prn`"),
            (&format!("{}.gguf", "m".repeat(177)), "longer than 180 bytes"),
        ] {
            let why = non_portable_file_name(name).unwrap_or_else(|| panic!("{name:?} must be refused"));
            assert!(why.contains(says), "{name:?}: {why}");
        }
        for fine in
            ["console.gguf", "com10.gguf", "lpt0.gguf", "nul-embed.gguf", "my model Q8_0.gguf", "été.gguf"]
        {
            assert_eq!(non_portable_file_name(fine), None, "{fine}");
        }
        // Register refuses them; a catalog file written before the rule is still read.
        let mut m = model();
        m.hf_filename = "a*b-Q8_0.gguf".into();
        assert!(check(&m).is_ok());
        let ctx = Ctx { file: Path::new("catalog.json"), entry: None };
        assert_eq!(field_of(check_new_model(&ctx, &m).unwrap_err()), "hf_filename");
    }

    #[test]
    fn quant_is_inferred_from_the_file_name() {
        assert_eq!(infer_quant("all-MiniLM-L6-v2.Q8_0.gguf"), "q8_0");
        assert_eq!(infer_quant("nomic-embed-text-v1.5.f16.gguf"), "f16");
        assert_eq!(infer_quant("bge-m3-Q8_0.gguf"), "q8_0");
        assert_eq!(infer_quant("model.gguf"), "unknown");
        assert_eq!(infer_quant("Qwen3-Embedding-8B.gguf"), "unknown");
    }
}
