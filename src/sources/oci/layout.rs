//! OCI image layouts (image-spec `image-layout.md`) as a source and a `mirror push` target:
//! `oci-layout:PATH`, a directory holding an `oci-layout` file, `index.json` and
//! `blobs/sha256/<hex>` — what `skopeo copy … oci:DIR:TAG`, `oras copy --to-oci-layout` and
//! `crane` write, the standard way to carry images across an air gap.
//!
//! Read: a model's file is the blob named by its SHA-256, `blobs/sha256/<sha256>`, whether or
//! not a manifest in `index.json` names it (the spec allows blobs no ref names), in a
//! directory whose `oci-layout` file says it is a layout of version 1. Its bytes are verified
//! by `ensure()` like every source's.
//!
//! Written (`mirror push oci-layout:PATH`): each blob atomically (a temporary file renamed to
//! its digest's name, and only when absent), then the ModelPack manifest and config as
//! `mirror push oci://` makes them, the manifest tagged in `index.json` with
//! `org.opencontainers.image.ref.name`. An existing layout is extended — its other tags and
//! blobs kept, every other descriptor of `index.json` written back byte for byte — and
//! `index.json` is replaced atomically under a lock (`index.json.lock`, beside it; the spec
//! lets a layout hold other files). The lock excludes other strata-model processes, not other
//! tools writing the same layout at the same moment.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::manifest::{ARTIFACT_TYPE, MANIFEST_MEDIA_TYPE};
use crate::catalog::ModelEntry;
use crate::error::{ErrorKind, RegistryError, Result, SourceError};
use crate::fs::lock::{Attempt, Guard, Lock};
use crate::sources::mirror_dir::open_range;
use crate::sources::source::{Fetch, FetchRequest, ModelSource};

/// The media type of an image index (`index.json`).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation naming a manifest in `index.json` (a tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation of a manifest naming what it holds (strata-model: the model's name).
const TITLE: &str = "org.opencontainers.image.title";
/// The option named in errors about a layout being written.
const DESTINATION: &str = "destination";
/// The largest `index.json` read (a layout with thousands of tags stays far below it).
const MAX_INDEX: u64 = 16 * 1024 * 1024;
/// How long a push waits for another strata-model process's hold on `index.json` (held for
/// milliseconds by a live one) before it names the holder and gives up.
const INDEX_WAIT: Duration = Duration::from_secs(120);
/// A temporary blob file untouched this long has no writer left (a push that was killed).
const STALE_TEMP: Duration = Duration::from_secs(600);

/// An OCI image layout directory, read as a source and written by `mirror push`.
#[derive(Clone, Debug)]
pub struct OciLayout {
    root: PathBuf,
    /// Why the directory cannot be read as a layout (`None`: it can), found once.
    problem: OnceLock<Option<String>>,
    /// Set once [`Self::prepare`] has made (or found) the layout: one push prepares it once.
    ready: OnceLock<()>,
}

impl fmt::Display for OciLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OCI image layout {}", self.root.display())
    }
}

/// `index.json`: its descriptors as they were written, and its other fields.
struct Index {
    fields: BTreeMap<String, Box<RawValue>>,
    manifests: Vec<Box<RawValue>>,
}

/// What strata-model reads of a descriptor.
#[derive(Deserialize, Default)]
struct Descriptor {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    fn of(raw: &RawValue) -> Self {
        serde_json::from_str(raw.get()).unwrap_or_default()
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).and_then(serde_json::Value::as_str)
    }
}

impl OciLayout {
    /// The layout at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), problem: OnceLock::new(), ready: OnceLock::new() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob of digest `sha256:<sha256>` is (or would be).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs().join(sha256.to_ascii_lowercase())
    }

    fn blobs(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn marker(&self) -> PathBuf {
        self.root.join("oci-layout")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn lock(&self) -> Lock {
        Lock::new(&self.root.join("index.json.lock"))
    }

    /// Why `root` is not a layout that can be read, if it is not: it must be a directory with
    /// an `oci-layout` file whose JSON has an `imageLayoutVersion` of 1.x.
    fn not_a_layout(&self) -> Option<String> {
        let root = self.root.display();
        if !self.root.is_dir() {
            return Some(format!("{root} is not a directory"));
        }
        let text = match fs::read(self.marker()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(format!(
                    "{root} is not an OCI image layout (it has no oci-layout file): give a directory \
                     written by `skopeo copy … oci:DIR`, oras or crane, or drop the oci-layout: prefix \
                     for a plain mirror directory"
                ))
            }
            Err(e) => return Some(format!("cannot read {}: {e}", self.marker().display())),
        };
        let version = serde_json::from_slice::<serde_json::Value>(&text).ok().and_then(|v| {
            v.get("imageLayoutVersion").and_then(serde_json::Value::as_str).map(str::to_string)
        });
        match version {
            Some(v) if v == "1" || v.starts_with("1.") => None,
            Some(v) => {
                Some(format!("{} says image layout version {v}; version 1 is read", self.marker().display()))
            }
            None => Some(format!(
                "{} is not an OCI layout marker (a JSON object with imageLayoutVersion)",
                self.marker().display()
            )),
        }
    }

    /// [`Self::not_a_layout`], found once for this source.
    fn problem(&self) -> Option<&str> {
        self.problem.get_or_init(|| self.not_a_layout()).as_deref()
    }

    /// The tags of `index.json` and the digests they name.
    pub fn tags(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .read_index()?
            .manifests
            .iter()
            .map(|raw| Descriptor::of(raw))
            .filter_map(|d| Some((d.annotation(REF_NAME)?.to_string(), d.digest?)))
            .collect())
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            // A layout must have one; an empty index is what a missing one means to a writer.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index { fields: BTreeMap::new(), manifests: Vec::new() })
            }
            Err(e) => return Err(RegistryError::storage("open", &path, e)),
        };
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_INDEX + 1), &mut text)
            .map_err(|e| RegistryError::storage("read", &path, e))?;
        let refuse = |why: String| {
            RegistryError::config(
                DESTINATION,
                format!(
                    "{} {why}; it is left as it is (repair it, or push to another layout)",
                    path.display()
                ),
            )
        };
        if text.len() as u64 > MAX_INDEX {
            return Err(refuse(format!("is larger than {MAX_INDEX} bytes")));
        }
        let mut fields: BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(&text).map_err(|e| refuse(format!("is not a JSON object ({e})")))?;
        let manifests = match fields.remove("manifests") {
            None => Vec::new(),
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|_| refuse("is not an image index: its `manifests` is not a list".into()))?,
        };
        Ok(Index { fields, manifests })
    }

    /// Takes the layout's lock, waiting for another strata-model process that holds it (for
    /// as long as it takes to write `index.json`, [`INDEX_WAIT`] at most).
    fn hold(&self) -> Result<Guard> {
        let lock = self.lock();
        let started = Instant::now();
        loop {
            match lock.try_acquire()? {
                Attempt::Acquired(guard) => return Ok(guard),
                Attempt::Busy(holder) if started.elapsed() >= INDEX_WAIT => {
                    return Err(RegistryError::config(
                        DESTINATION,
                        format!(
                            "{} has been held by another process for {} s ({}); if no push is running, remove it",
                            lock.path().display(),
                            INDEX_WAIT.as_secs(),
                            lock.describe(holder.as_ref())
                        ),
                    ))
                }
                Attempt::Busy(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Checks that a push may write here: a layout, or a new or empty directory (it becomes
    /// one), never another kind of directory. Writes nothing.
    pub(crate) fn check_writable(&self) -> Result<()> {
        // What another push making this directory a layout right now has written so far: its
        // lock (the OS lock file, or the claim file where flock does not work), and the marker
        // being written (`.oci-layout.<random>.tmp`).
        let lock = self.lock();
        let ours = |name: &std::ffi::OsStr| {
            let text = name.to_string_lossy();
            Some(name) == lock.path().file_name()
                || Some(name) == lock.claim_path().file_name()
                || (text.starts_with(".oci-layout.") && text.ends_with(".tmp"))
        };
        match fs::read_dir(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RegistryError::storage("read", &self.root, e)),
            Ok(entries) => {
                if entries.flatten().all(|e| ours(&e.file_name())) {
                    return Ok(());
                }
            }
        }
        if let Some(reason) = self.not_a_layout() {
            return Err(RegistryError::config(
                DESTINATION,
                format!("cannot push to oci-layout:{}: {reason}", self.root.display()),
            ));
        }
        for dir in [self.root.join("blobs"), self.blobs()] {
            if fs::symlink_metadata(&dir).is_ok_and(|m| !m.is_dir()) {
                return Err(RegistryError::config(
                    DESTINATION,
                    format!(
                        "cannot push to oci-layout:{}: {} is not a directory (a link is not followed)",
                        self.root.display(),
                        dir.display()
                    ),
                ));
            }
        }
        self.read_index().map(drop)
    }

    /// Makes `root` a layout if it is not one yet — the `oci-layout` marker first, then
    /// `blobs/sha256/` and an empty `index.json` — under the layout's lock, so that pushes
    /// racing into a new directory each find it new or a layout. An existing layout is left as
    /// it is, but for temporary blob files a killed push left. Done once per `OciLayout`.
    pub(crate) fn prepare(&self) -> Result<()> {
        if self.ready.get().is_some() {
            return Ok(());
        }
        crate::fs::create_dir(&self.root)?;
        let _guard = self.hold()?;
        self.check_writable()?;
        if !self.marker().exists() {
            crate::fs::write_atomic(&self.marker(), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        crate::fs::create_dir(&self.blobs())?;
        if !self.index_path().exists() {
            self.write_index(&Index { fields: BTreeMap::new(), manifests: Vec::new() })?;
        }
        self.remove_stale_temporaries();
        let _ = self.ready.set(());
        Ok(())
    }

    /// Deletes temporary blob files (`.<digest>.<random>.tmp`) no writer has touched for
    /// [`STALE_TEMP`]: what a push killed mid-blob left.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = fs::read_dir(self.blobs()) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let stale = e
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if name.starts_with('.') && name.ends_with(".tmp") && stale {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// Whether the layout holds the blob `sha256` with `size` bytes that hash to it.
    pub(crate) fn holds(&self, sha256: &str, size: u64) -> Result<bool> {
        let path = self.blob_path(sha256);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.len() == size => Ok(crate::digest::hash_file(&path)? == sha256),
            _ => Ok(false),
        }
    }

    /// Writes `bytes` as their blob, unless a blob of that digest and size is there.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let sha256 = crate::digest::sha256_hex(bytes);
        if !self.holds(&sha256, bytes.len() as u64)? {
            crate::fs::write_atomic(&self.blob_path(&sha256), bytes)?;
        }
        Ok(sha256)
    }

    /// Writes `manifest` (a ModelPack image manifest titled `title`, the model's name) as a
    /// blob and names it `tag` in `index.json`. A descriptor of that tag naming another
    /// digest is replaced when it is strata-model's artifact of the same model (an earlier
    /// pin); a tag naming anything else is refused. Every other descriptor is kept as it
    /// was. Nothing is written when the tag already names this manifest.
    pub(crate) fn tag(&self, tag: &str, title: &str, manifest: &[u8]) -> Result<()> {
        let sha256 = self.put_blob(manifest)?;
        let digest = format!("sha256:{sha256}");
        let _guard = self.hold()?;
        let mut index = self.read_index()?;
        let named: Vec<(usize, Descriptor)> = index
            .manifests
            .iter()
            .map(|raw| Descriptor::of(raw))
            .enumerate()
            .filter(|(_, d)| d.annotation(REF_NAME) == Some(tag))
            .collect();
        if named.iter().any(|(_, d)| d.digest.as_deref() == Some(&digest)) {
            return Ok(());
        }
        for (_, d) in &named {
            if let Some(other) = self.other_artifact(d, title) {
                return Err(RegistryError::config(
                    DESTINATION,
                    format!(
                        "the tag `{tag}` of oci-layout:{} names {other}, not the model `{title}`: push to another \
                         layout, or remove that tag from its index.json",
                        self.root.display()
                    ),
                ));
            }
        }
        let doomed: Vec<usize> = named.iter().map(|(i, _)| *i).collect();
        let mut kept: Vec<Box<RawValue>> = std::mem::take(&mut index.manifests)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !doomed.contains(i))
            .map(|(_, raw)| raw)
            .collect();
        let descriptor = serde_json::json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "digest": digest,
            "size": manifest.len(),
            "annotations": { REF_NAME: tag },
        });
        kept.push(
            RawValue::from_string(descriptor.to_string())
                .map_err(|e| RegistryError::storage("write", self.index_path(), std::io::Error::other(e)))?,
        );
        index.manifests = kept;
        self.write_index(&index)
    }

    /// What the manifest of descriptor `d` holds when it is not strata-model's artifact of
    /// the model titled `title` (`None`: it is, an earlier pin of it).
    fn other_artifact(&self, d: &Descriptor, title: &str) -> Option<String> {
        let sha = d.digest.as_deref().and_then(|x| x.strip_prefix("sha256:")).unwrap_or_default();
        let bytes = fs::read(self.blob_path(sha)).ok().filter(|_| crate::catalog::is_hex(sha, 64));
        let manifest: Option<serde_json::Value> = bytes.and_then(|b| serde_json::from_slice(&b).ok());
        let Some(m) = manifest else {
            return Some(format!(
                "{} (its manifest is not in the layout)",
                d.digest.as_deref().unwrap_or("a descriptor without a digest")
            ));
        };
        let ours = m.get("artifactType").and_then(serde_json::Value::as_str) == Some(ARTIFACT_TYPE);
        let named = m.get("annotations").and_then(|a| a.get(TITLE)).and_then(serde_json::Value::as_str);
        match (ours, named) {
            (true, Some(t)) if t == title => None,
            (true, Some(t)) => Some(format!("the model `{t}`")),
            _ => Some("an image or artifact strata-model did not write".into()),
        }
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let mut fields: BTreeMap<&str, &RawValue> =
            index.fields.iter().map(|(k, v)| (k.as_str(), &**v)).collect();
        let schema = RawValue::from_string("2".into()).ok();
        let media = RawValue::from_string(format!("\"{INDEX_MEDIA_TYPE}\"")).ok();
        if let (Some(s), false) = (&schema, fields.contains_key("schemaVersion")) {
            fields.insert("schemaVersion", s);
        }
        if let (Some(m), false) = (&media, fields.contains_key("mediaType")) {
            fields.insert("mediaType", m);
        }
        let manifests = serde_json::to_string(&index.manifests).unwrap_or_else(|_| "[]".into());
        let manifests = RawValue::from_string(manifests).ok();
        if let Some(m) = &manifests {
            fields.insert("manifests", m);
        }
        let bytes = serde_json::to_vec(&fields).unwrap_or_default();
        crate::fs::write_atomic(&self.index_path(), &bytes)
    }
}

impl ModelSource for OciLayout {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> std::result::Result<Fetch, SourceError> {
        if let Some(reason) = self.problem() {
            return Err(SourceError::failed(
                ErrorKind::Config,
                format!("{reason}; check STRATA_MODELS_MIRROR"),
            ));
        }
        let path = self.blob_path(&entry.sha256);
        open_range(&path, entry, request, || SourceError::NotFound {
            detail: Some(format!("no blob sha256:{} in {}", entry.sha256, self.root.display())),
        })
    }

    fn is_network(&self) -> bool {
        false
    }

    fn check(&self) -> std::result::Result<String, String> {
        if let Some(reason) = self.not_a_layout() {
            return Err(reason);
        }
        let blobs = fs::read_dir(self.blobs())
            .map(|d| {
                d.flatten().filter(|e| crate::catalog::is_hex(&e.file_name().to_string_lossy(), 64)).count()
            })
            .unwrap_or(0);
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        // Files are read by digest: an index.json that cannot be read does not stop them.
        let tags = match self.tags() {
            Ok(tags) => format!("{} tag{}", tags.len(), plural(tags.len())),
            Err(e) => format!("index.json unreadable: {}", e.report()),
        };
        Ok(format!("readable OCI image layout ({tags}, {blobs} blob{})", plural(blobs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_extends_an_index_and_keeps_what_others_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::new(dir.path().join("l"));
        layout.prepare().unwrap();
        // Another tool's tag, with fields strata-model does not know (a number JSON cannot
        // hold in a double among them).
        let other = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/xml","digest":"sha256:00","size":123456789012345678901234567890,
            "annotations":{"org.opencontainers.image.ref.name":"theirs"}}],"annotations":{"x":"y"}}"#;
        fs::write(layout.index_path(), other).unwrap();
        let ours = |n: u32| {
            format!(r#"{{"artifactType":"{ARTIFACT_TYPE}","annotations":{{"{TITLE}":"mine"}},"n":{n}}}"#)
                .into_bytes()
        };
        layout.tag("mine", "mine", &ours(1)).unwrap();
        layout.tag("mine", "mine", &ours(2)).unwrap(); // an earlier pin of the same model: moved
        let text = fs::read_to_string(layout.index_path()).unwrap();
        assert!(text.contains("123456789012345678901234567890") && text.contains(r#""x":"y""#), "{text}");
        let tags = layout.tags().unwrap();
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert_eq!(tags[0], ("theirs".to_string(), "sha256:00".to_string()));
        assert_eq!(tags[1].1, format!("sha256:{}", crate::digest::sha256_hex(&ours(2))));
        // Both manifests' blobs stay (an unreferenced blob is allowed).
        assert!(layout.holds(&crate::digest::sha256_hex(&ours(1)), ours(1).len() as u64).unwrap());
        // Another model, or a foreign image, under a tag: refused, the index unchanged.
        let err = layout.tag("mine", "yours", &ours(3)).unwrap_err().to_string();
        assert!(err.contains("the model `mine`"), "{err}");
        let err = layout.tag("theirs", "mine", &ours(4)).unwrap_err().to_string();
        assert!(err.contains("theirs"), "{err}");
        assert_eq!(layout.tags().unwrap(), tags);
        assert!(
            OciLayout::new(dir.path()).check_writable().is_err(),
            "a non-empty directory that is not a layout"
        );
        // An index that is not an object, or whose manifests is not a list: refused.
        for bad in ["[]", "null", "42", r#"{"manifests":{}}"#] {
            fs::write(layout.index_path(), bad).unwrap();
            assert!(layout.tag("mine", "mine", &ours(5)).is_err(), "{bad}");
            assert_eq!(fs::read_to_string(layout.index_path()).unwrap(), bad);
        }
    }
}
