//! `share`: makes verified models visible to every tool that reads the Hugging Face hub cache
//! (huggingface_hub, transformers, llama.cpp since March 2026), laid out as huggingface_hub
//! lays it out (`file_download.py`): `models--{owner}--{repo}/blobs/<sha256>` holding the
//! bytes (a hard link to the model file, else a reflink, else a copy) and
//! `snapshots/<revision>/<file>` a relative symbolic link to it. Nothing already there is
//! touched, so `hf_hub_download(repo, file, revision=<pinned commit>)` offline returns the
//! model's own bytes, with no download.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Registry;
use crate::catalog::ModelEntry;
use crate::error::{RegistryError, Result};
use crate::fs::{create_dir, link_or_copy, LinkMethod};
use crate::store::Status;

/// What `share` did (or, in a dry run, would do) for one model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareAction {
    /// Put in the cache, by this method.
    Shared(LinkMethod),
    /// Already there (the blob with the right size and the snapshot entry).
    Present,
    /// A dry run: would be shared.
    WouldShare,
}

/// One model's line in a share report.
#[derive(Clone, Debug, Serialize)]
pub struct ShareReport {
    /// The model.
    pub name: String,
    /// The blob in the hub cache.
    pub blob: PathBuf,
    /// The snapshot entry other tools open.
    pub snapshot: PathBuf,
    /// What was done.
    pub action: ShareAction,
}

impl Registry {
    /// Makes the verified files of `names` (every downloaded model when empty) visible in the
    /// Hugging Face hub cache ([`crate::Config::hf_hub_cache`]). A file that is present but
    /// has no valid stamp is hashed first; one that does not verify is an error.
    pub fn share(&self, names: &[String], dry_run: bool) -> Result<Vec<ShareReport>> {
        let cache = self.config().hf_hub_cache().map(Path::to_path_buf).ok_or_else(|| {
            RegistryError::config(
                crate::config::vars::HF_HUB_CACHE,
                "the Hugging Face cache is unknown (no home directory); set HF_HUB_CACHE",
            )
        })?;
        let entries: Vec<&ModelEntry> = if names.is_empty() {
            self.catalog().entries().iter().filter(|e| self.files(e).status() == Status::Downloaded).collect()
        } else {
            names.iter().map(|n| self.resolve(n)).collect::<Result<_>>()?
        };
        let mut reports = Vec::new();
        for entry in entries {
            let files = self.files(entry);
            if files.status() != Status::Downloaded {
                return Err(files.not_downloaded(entry.display_name()));
            }
            if !files.is_verified() {
                self.verify(&entry.display_name())?;
            }
            reports.push(share_one(&cache, entry, &files.model_path(), dry_run)?);
        }
        Ok(reports)
    }
}

/// Shares a file just verified (`STRATA_SHARE_HF_CACHE=1` after a download).
pub(crate) fn share_verified(cache: &Path, entry: &ModelEntry, model: &Path) -> Result<ShareReport> {
    share_one(cache, entry, model, false)
}

/// The blob and snapshot paths of `entry` in the hub cache `cache`.
pub(crate) fn hub_paths(cache: &Path, entry: &ModelEntry) -> (PathBuf, PathBuf) {
    let repo = cache.join(format!("models--{}", entry.hf_repo.replace('/', "--")));
    (
        repo.join("blobs").join(&*entry.sha256),
        repo.join("snapshots").join(&*entry.revision).join(&*entry.hf_filename),
    )
}

fn share_one(cache: &Path, entry: &ModelEntry, model: &Path, dry_run: bool) -> Result<ShareReport> {
    let (blob, snapshot) = hub_paths(cache, entry);
    let report = |action| ShareReport {
        name: entry.display_name(),
        blob: blob.clone(),
        snapshot: snapshot.clone(),
        action,
    };
    let blob_meta = fs::metadata(&blob).ok();
    if blob_meta.as_ref().is_some_and(|m| m.len() != entry.size_bytes) {
        return Err(RegistryError::storage(
            "share into",
            &blob,
            std::io::Error::other(
                "the Hugging Face cache already holds a file of another size under this SHA-256; it was left alone",
            ),
        ));
    }
    let snapshot_there = fs::symlink_metadata(&snapshot).is_ok();
    if blob_meta.is_some() && snapshot_there {
        return Ok(report(ShareAction::Present));
    }
    if dry_run {
        return Ok(report(ShareAction::WouldShare));
    }
    let mut method = LinkMethod::HardLink;
    if blob_meta.is_none() {
        let dir = blob.parent().expect("a blob has a folder");
        create_dir(dir)?;
        // Linked under a temporary name, then renamed: a reader never sees half a blob.
        let tmp = dir.join(format!(".{}.strata-model.tmp", entry.sha256));
        let _ = fs::remove_file(&tmp);
        method = link_or_copy(model, &tmp).map_err(|e| RegistryError::storage("link or copy to", &tmp, e))?;
        if let Err(e) = fs::rename(&tmp, &blob) {
            let _ = fs::remove_file(&tmp);
            return Err(RegistryError::storage("rename into place", &blob, e));
        }
    }
    if !snapshot_there {
        let dir = snapshot.parent().expect("a snapshot entry has a folder");
        create_dir(dir)?;
        link_snapshot(&blob, &snapshot, entry)?;
    }
    Ok(report(ShareAction::Shared(method)))
}

/// `snapshots/<revision>/<file>` → `../../blobs/<sha256>`, relative, as huggingface_hub
/// writes it (so that the cache folder can be moved).
#[cfg(unix)]
fn link_snapshot(_blob: &Path, snapshot: &Path, entry: &ModelEntry) -> Result<()> {
    let depth = entry.hf_filename.matches('/').count() + 2;
    let target = PathBuf::from("../".repeat(depth)).join("blobs").join(&*entry.sha256);
    std::os::unix::fs::symlink(&target, snapshot).map_err(|e| RegistryError::storage("link", snapshot, e))
}

/// Without symbolic links, the snapshot entry is a link (or copy) of the blob, as
/// huggingface_hub does on Windows without developer mode.
#[cfg(not(unix))]
fn link_snapshot(blob: &Path, snapshot: &Path, _entry: &ModelEntry) -> Result<()> {
    link_or_copy(blob, snapshot)
        .map(|_| ())
        .map_err(|e| RegistryError::storage("link or copy to", snapshot, e))
}
