//! `mirror push`: copy verified models from the models directory to a mirror (a directory or,
//! with the `cloud` feature, a bucket), so an operator seeds a mirror in one command.
//!
//! Files already at the destination with the right size are skipped. Every byte read is
//! hashed on the way, and a copy whose bytes do not match the catalog SHA-256 is never
//! completed (the temporary file is deleted, the multipart upload aborted).

use std::cell::RefCell;
use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::rc::Rc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::ModelEntry;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::store::Status;

/// What `push` did (or, in a dry run, would do) for one model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushAction {
    /// Copied (or uploaded).
    Copied,
    /// Already there with the right size.
    Skipped,
    /// A dry run: would be copied.
    WouldCopy,
}

/// One model's line in a push report.
#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    /// The model.
    pub name: String,
    /// Where its file goes (a path or an object URL).
    pub target: String,
    /// Its size.
    pub bytes: u64,
    /// What was done.
    pub action: PushAction,
}

enum Destination {
    Dir(PathBuf),
    #[cfg(feature = "cloud")]
    Bucket(crate::sources::ObjectStoreSource),
}

fn destination(registry: &Registry, raw: &str) -> Result<Destination> {
    let lower = raw.to_ascii_lowercase();
    if ["s3://", "gs://", "az://"].iter().any(|p| lower.starts_with(p)) {
        #[cfg(feature = "cloud")]
        return Ok(Destination::Bucket(crate::sources::ObjectStoreSource::from_url(raw, registry.config())?));
        #[cfg(not(feature = "cloud"))]
        return Err(RegistryError::config(
            "destination",
            format!("`{raw}` needs the `cloud` feature; build strata-model with --features cloud"),
        ));
    }
    let _ = registry;
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Err(RegistryError::config(
            "destination",
            format!(
                "cannot upload to `{raw}`: copy the files with your server's own tools \
                 (`--dry-run` lists them), or push to a directory it serves"
            ),
        ));
    }
    let path = raw.strip_prefix("file://").unwrap_or(raw);
    let path = std::path::absolute(path)
        .map_err(|e| RegistryError::config("destination", format!("`{raw}`: {e}")))?;
    Ok(Destination::Dir(path))
}

/// Copies the verified files of `names` (all downloaded models when empty) to `destination`:
/// a directory path or `file://` URL, or an `s3://`, `gs://` or `az://` bucket URL.
pub fn push(
    registry: &Registry,
    destination_url: &str,
    names: &[String],
    dry_run: bool,
) -> Result<Vec<PushReport>> {
    let dest = destination(registry, destination_url)?;
    let entries: Vec<ModelEntry> = if names.is_empty() {
        registry
            .catalog()
            .entries()
            .iter()
            .filter(|e| registry.models_dir().status(e) == Status::Downloaded)
            .cloned()
            .collect()
    } else {
        names.iter().map(|n| registry.resolve(n).cloned()).collect::<Result<_>>()?
    };
    let mut reports = Vec::new();
    for entry in &entries {
        let source = registry.models_dir().model_path(entry);
        if registry.models_dir().status(entry) != Status::Downloaded {
            return Err(RegistryError::NotDownloaded { model: entry.display_name(), path: source });
        }
        let (target, present) = match &dest {
            Destination::Dir(dir) => {
                let path = dir.join(&*entry.hf_filename);
                let size = fs::symlink_metadata(&path).ok().filter(|m| m.is_file()).map(|m| m.len());
                (path.display().to_string(), size)
            }
            #[cfg(feature = "cloud")]
            Destination::Bucket(bucket) => {
                let size = bucket.size_of(&entry.hf_filename).map_err(|e| RegistryError::DownloadFailed {
                    url: bucket.to_string(),
                    source: Box::new(e),
                })?;
                (format!("{bucket}/{}", entry.hf_filename), size)
            }
        };
        let action = if present == Some(entry.size_bytes) {
            PushAction::Skipped
        } else if dry_run {
            PushAction::WouldCopy
        } else {
            copy(&dest, entry, &source)?;
            PushAction::Copied
        };
        reports.push(PushReport { name: entry.display_name(), target, bytes: entry.size_bytes, action });
    }
    Ok(reports)
}

/// Reads while hashing; the hex digest is stored when the end is reached.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    digest: Rc<RefCell<Option<String>>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            *self.digest.borrow_mut() = Some(crate::resolver::hex(&self.hasher.clone().finalize()));
        } else {
            self.hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn copy(dest: &Destination, entry: &ModelEntry, source: &std::path::Path) -> Result<()> {
    let file = fs::File::open(source).map_err(|e| RegistryError::storage("open", source, e))?;
    let digest = Rc::new(RefCell::new(None));
    let mut reader = Hashing { inner: file, hasher: Sha256::new(), digest: digest.clone() };
    let mismatch = |actual: String| RegistryError::ChecksumMismatch {
        file: entry.hf_filename.to_string(),
        expected: entry.sha256.to_string(),
        actual,
    };
    match dest {
        Destination::Dir(dir) => {
            crate::store::create_dir(dir)?;
            let target = dir.join(&*entry.hf_filename);
            let tmp = dir.join(format!(".{}.{}.tmp", entry.hf_filename, std::process::id()));
            let result = (|| -> Result<()> {
                let mut out =
                    fs::File::create(&tmp).map_err(|e| RegistryError::storage("create", &tmp, e))?;
                std::io::copy(&mut reader, &mut out)
                    .map_err(|e| RegistryError::storage("copy to", &tmp, e))?;
                let actual = digest.borrow().clone().unwrap_or_default();
                if actual != entry.sha256 {
                    return Err(mismatch(actual));
                }
                out.flush()
                    .and_then(|()| out.sync_all())
                    .map_err(|e| RegistryError::storage("sync", &tmp, e))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644));
                }
                fs::rename(&tmp, &target).map_err(|e| RegistryError::storage("rename into place", &target, e))
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result
        }
        #[cfg(feature = "cloud")]
        Destination::Bucket(bucket) => {
            let mut check = || match digest.borrow().clone() {
                Some(actual) if actual == entry.sha256 => Ok(()),
                Some(actual) => Err(mismatch(actual).to_string()),
                None => Err("the file was not read to its end".to_string()),
            };
            bucket.upload(&entry.hf_filename, &mut reader, &mut check).map_err(|reason| {
                RegistryError::DownloadFailed {
                    url: format!("{bucket}/{}", entry.hf_filename),
                    source: reason.into(),
                }
            })
        }
    }
}
