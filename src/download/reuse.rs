//! Reuse before download: the exact file (by catalog size and SHA-256) may already be on the
//! machine, in the cache of another tool — the Hugging Face hub cache
//! (`models--{org}--{name}/blobs/<sha256>` and `snapshots/`), llama.cpp's, or LM Studio's
//! models folder (`publisher/repo/file`); where those are is configuration
//! ([`crate::config::caches`]). A candidate is hashed, then installed by hard link (no second
//! copy of the bytes), else a reflink, else a copy; the other tool's files are never
//! modified.

use std::fs;
use std::path::PathBuf;

use crate::catalog::ModelEntry;
use crate::config::{CacheDir, CacheTool, Layout};
use crate::digest::hash_file;
use crate::error::{RegistryError, Result};
use crate::fs::{link_or_copy, LinkMethod};
use crate::progress::{Progress, Reporter};
use crate::store::{ModelFiles, Provenance};

/// Files in `dirs` that may be `entry`'s, best first (right size; not yet hashed).
fn candidates(dirs: &[CacheDir], entry: &ModelEntry) -> Vec<(PathBuf, CacheTool)> {
    let mut out = Vec::new();
    let (org, name) = entry.hf_repo.split_once('/').unwrap_or(("", &entry.hf_repo));
    for dir in dirs {
        let mut paths = Vec::new();
        match dir.layout {
            Layout::Hub => {
                let repo = dir.path.join(format!("models--{org}--{name}"));
                paths.push(repo.join("blobs").join(&*entry.sha256));
                if let Ok(snapshots) = fs::read_dir(repo.join("snapshots")) {
                    paths.extend(snapshots.flatten().map(|s| s.path().join(&*entry.hf_filename)));
                }
            }
            Layout::LmStudio => {
                paths.push(dir.path.join(org).join(name).join(&*entry.hf_filename));
                if let Ok(publishers) = fs::read_dir(&dir.path) {
                    for p in publishers.flatten() {
                        if let Ok(repos) = fs::read_dir(p.path()) {
                            paths.extend(repos.flatten().map(|r| r.path().join(&*entry.hf_filename)));
                        }
                    }
                }
            }
        }
        for p in paths {
            // Follow links (snapshots point at blobs): the real file is what is linked.
            let Ok(real) = fs::canonicalize(&p) else { continue };
            let right_size = fs::metadata(&real).is_ok_and(|m| m.is_file() && m.len() == entry.size_bytes);
            if right_size && !out.iter().any(|(q, _)| *q == real) {
                out.push((real, dir.tool));
            }
        }
    }
    out
}

/// Installs the exact file from another tool's cache, if one has it: hashed first, then
/// hard-linked (or reflinked, or copied and hashed again), stamped and its provenance
/// recorded. Returns whether it did.
pub(crate) fn from_caches(
    dirs: &[CacheDir],
    entry: &ModelEntry,
    files: &ModelFiles,
    progress: Reporter<'_>,
) -> Result<bool> {
    for (candidate, tool) in candidates(dirs, entry) {
        progress.send(Progress::Verifying { model: &entry.display_name(), bytes: entry.size_bytes });
        if hash_file(&candidate).ok().as_deref() != Some(&*entry.sha256) {
            continue; // not the bytes the catalog pins: ignored
        }
        let tmp = files.reuse_path();
        let _ = fs::remove_file(&tmp);
        let Ok(method) = link_or_copy(&candidate, &tmp) else { continue };
        if method == LinkMethod::Copy && hash_file(&tmp).ok().as_deref() != Some(&*entry.sha256) {
            let _ = fs::remove_file(&tmp);
            continue;
        }
        let path = files.model_path();
        fs::rename(&tmp, &path).map_err(|e| RegistryError::storage("rename into place", &path, e))?;
        files.write_stamp()?;
        files.record_provenance(&Provenance::Reused { tool, path: candidate, method });
        return Ok(true);
    }
    Ok(false)
}
