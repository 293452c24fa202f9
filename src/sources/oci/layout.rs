//! OCI image layouts (image-spec `image-layout.md`) as a source and a `mirror push` target:
//! `oci-layout:PATH`, a directory holding an `oci-layout` file, `index.json` and
//! `blobs/sha256/<hex>` — what `skopeo copy … oci:DIR:TAG`, `oras copy --to-oci-layout` and
//! `crane` write, the standard way to carry images across an air gap.
//!
//! Read: a model's file is the blob named by its SHA-256, `blobs/sha256/<sha256>`, whether or
//! not a manifest in `index.json` names it (the spec allows blobs no ref names). Its bytes are
//! verified by `ensure()` like every source's.
//!
//! Written (`mirror push oci-layout:PATH`): each blob atomically (a temporary file renamed to
//! its digest's name, and only when absent), then the ModelPack manifest and config as
//! `mirror push oci://` makes them, the manifest tagged in `index.json` with
//! `org.opencontainers.image.ref.name`. An existing layout is extended — its other tags and
//! blobs are kept — and `index.json` is replaced atomically under a lock
//! (`index.json.lock`, beside it; the spec lets a layout hold other files).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::manifest::{ARTIFACT_TYPE, MANIFEST_MEDIA_TYPE};
use crate::catalog::ModelEntry;
use crate::error::{ErrorKind, RegistryError, Result, SourceError};
use crate::sources::mirror_dir::open_range;
use crate::sources::source::{Fetch, FetchRequest, ModelSource};

/// The media type of an image index (`index.json`).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation naming a manifest in `index.json` (a tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The option named in errors about a layout being written.
const DESTINATION: &str = "destination";
/// The largest `index.json` read (a layout with thousands of tags stays far below it).
const MAX_INDEX: u64 = 16 * 1024 * 1024;

/// An OCI image layout directory, read as a source and written by `mirror push`.
#[derive(Clone, Debug)]
pub struct OciLayout {
    root: PathBuf,
}

impl fmt::Display for OciLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OCI image layout {}", self.root.display())
    }
}

impl OciLayout {
    /// The layout at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob of digest `sha256:<sha256>` is (or would be).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join("sha256").join(sha256.to_ascii_lowercase())
    }

    fn marker(&self) -> PathBuf {
        self.root.join("oci-layout")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Why `root` is not a layout that can be read, if it is not: it must be a directory with
    /// an `oci-layout` file whose JSON has `imageLayoutVersion`.
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
        let version = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion").and_then(Value::as_str).map(str::to_string));
        match version {
            Some(_) => None,
            None => Some(format!(
                "{} is not an OCI layout marker (a JSON object with imageLayoutVersion)",
                self.marker().display()
            )),
        }
    }

    /// The tags of `index.json` and the digests they name.
    pub fn tags(&self) -> Result<Vec<(String, String)>> {
        let index = self.read_index()?;
        Ok(manifests(&index)
            .iter()
            .filter_map(|d| {
                let tag = d.get("annotations")?.get(REF_NAME)?.as_str()?;
                Some((tag.to_string(), d.get("digest")?.as_str()?.to_string()))
            })
            .collect())
    }

    fn read_index(&self) -> Result<Value> {
        let path = self.index_path();
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            // A layout must have one; an empty index is what a missing one means to a writer.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(empty_index()),
            Err(e) => return Err(RegistryError::storage("open", &path, e)),
        };
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_INDEX + 1), &mut text)
            .map_err(|e| RegistryError::storage("read", &path, e))?;
        let index: Value = serde_json::from_slice(&text).map_err(|e| {
            RegistryError::config(
                DESTINATION,
                format!("{} is not an image index ({e}); it is left as it is", path.display()),
            )
        })?;
        if text.len() as u64 > MAX_INDEX || !index.get("manifests").is_none_or(Value::is_array) {
            return Err(RegistryError::config(
                DESTINATION,
                format!(
                    "{} is not an image index with a `manifests` list; it is left as it is",
                    path.display()
                ),
            ));
        }
        Ok(index)
    }

    /// Checks that a push may write here: a layout, a new or empty directory (it becomes
    /// one), never another kind of directory. Writes nothing.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match fs::read_dir(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RegistryError::storage("read", &self.root, e)),
            Ok(mut entries) => {
                if entries.next().is_none() {
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
        self.read_index().map(drop)
    }

    /// Makes `root` a layout if it is not one yet: `blobs/sha256/`, `oci-layout`, and an
    /// empty `index.json`. An existing layout is left as it is.
    pub(crate) fn prepare(&self) -> Result<()> {
        self.check_writable()?;
        crate::fs::create_dir(&self.root.join("blobs").join("sha256"))?;
        if !self.marker().exists() {
            crate::fs::write_atomic(&self.marker(), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !self.index_path().exists() {
            let bytes = serde_json::to_vec(&empty_index()).unwrap_or_default();
            crate::fs::write_atomic(&self.index_path(), &bytes)?;
        }
        Ok(())
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

    /// Writes `manifest` (an image manifest, ModelPack) as a blob and names it `tag` in
    /// `index.json`: a descriptor of that tag naming another digest is replaced, every other
    /// descriptor is kept. Nothing is written when the tag already names this manifest.
    pub(crate) fn tag(&self, tag: &str, manifest: &[u8]) -> Result<()> {
        let sha256 = self.put_blob(manifest)?;
        let digest = format!("sha256:{sha256}");
        let lock = crate::fs::lock::Lock::new(&self.root.join("index.json.lock"));
        let _guard = lock.acquire_blocking()?;
        let mut index = self.read_index()?;
        let named = |d: &Value| {
            d.get("annotations").and_then(|a| a.get(REF_NAME)).and_then(Value::as_str) == Some(tag)
        };
        let list = manifests(&index);
        if list.iter().any(|d| named(d) && d.get("digest").and_then(Value::as_str) == Some(&digest)) {
            return Ok(());
        }
        let mut kept: Vec<Value> = list.into_iter().filter(|d| !named(d)).collect();
        kept.push(json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "digest": digest,
            "size": manifest.len(),
            "annotations": { REF_NAME: tag },
        }));
        if let Some(object) = index.as_object_mut() {
            object.insert("manifests".into(), Value::Array(kept));
            object.entry("schemaVersion").or_insert(json!(2));
        }
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        crate::fs::write_atomic(&self.index_path(), &bytes)
    }
}

fn empty_index() -> Value {
    json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [] })
}

fn manifests(index: &Value) -> Vec<Value> {
    index.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default()
}

impl ModelSource for OciLayout {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> std::result::Result<Fetch, SourceError> {
        let path = self.blob_path(&entry.sha256);
        open_range(&path, entry, request, || match self.not_a_layout() {
            Some(reason) => {
                SourceError::failed(ErrorKind::Config, format!("{reason}; check STRATA_MODELS_MIRROR"))
            }
            None => SourceError::NotFound {
                detail: Some(format!("no blob sha256:{} in {}", entry.sha256, self.root.display())),
            },
        })
    }

    fn is_network(&self) -> bool {
        false
    }

    fn check(&self) -> std::result::Result<String, String> {
        if let Some(reason) = self.not_a_layout() {
            return Err(reason);
        }
        let tags = self.tags().map_err(|e| e.report().to_string())?;
        let blobs = fs::read_dir(self.root.join("blobs").join("sha256")).map(Iterator::count).unwrap_or(0);
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        Ok(format!(
            "readable OCI image layout ({} tag{}, {blobs} blob{})",
            tags.len(),
            plural(tags.len()),
            plural(blobs)
        ))
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
        // Another tool's tag, with a field strata-model does not know.
        let other = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/xml", "digest": "sha256:00", "size": 1,
            "annotations": {REF_NAME: "theirs"}}], "annotations": {"x": "y"}});
        fs::write(layout.index_path(), serde_json::to_vec(&other).unwrap()).unwrap();
        layout.tag("mine", b"{\"a\":1}").unwrap();
        layout.tag("mine", b"{\"a\":2}").unwrap(); // moved
        let index: Value = serde_json::from_slice(&fs::read(layout.index_path()).unwrap()).unwrap();
        assert_eq!(index["annotations"]["x"], "y");
        let tags = layout.tags().unwrap();
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert_eq!(tags[0], ("theirs".to_string(), "sha256:00".to_string()));
        assert_eq!(tags[1].1, format!("sha256:{}", crate::digest::sha256_hex(b"{\"a\":2}")));
        // Both manifests' blobs stay (an unreferenced blob is allowed).
        assert!(layout.holds(&crate::digest::sha256_hex(b"{\"a\":1}"), 7).unwrap());
        assert!(
            OciLayout::new(dir.path()).check_writable().is_err(),
            "a non-empty directory that is not a layout"
        );
    }
}
