//! Reuse before download: the exact file (by catalog size and SHA-256) may already be on the
//! machine, in the cache of another tool — the Hugging Face hub cache (by content, in any
//! repository's `blobs/`), llama.cpp's flat files, Ollama's and RamaLama's blobs (named by
//! SHA-256), LM Studio's models folder; where those are is configuration
//! ([`crate::config::caches`]). Each lookup is a `stat` by name or by content, never a walk of
//! a whole tree, and nothing is hashed before its size matches. A candidate is hashed, then installed by hard link (no second
//! copy of the bytes), else a reflink, else a copy; the other tool's files are never
//! modified.

use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::ModelEntry;
use crate::config::{CacheDir, CacheTool, Layout};
use crate::digest::hash_file;
use crate::error::{RegistryError, Result};
use crate::fs::{link_or_copy, LinkMethod};
use crate::progress::{Progress, Reporter};
use crate::store::{ModelFiles, Provenance};

/// The directories under `dir` (names only; empty when it cannot be read).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|it| {
            it.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect()
        })
        .unwrap_or_default()
}

/// Where `dir` (of `layout`) would hold `entry`'s file: names derived from the entry and its
/// SHA-256, and a bounded look one or a few levels down (never a walk of a whole tree).
fn paths_in(dir: &Path, layout: Layout, entry: &ModelEntry) -> Vec<PathBuf> {
    let (org, name) = entry.hf_repo.split_once('/').unwrap_or(("", &entry.hf_repo));
    let sha = &*entry.sha256;
    let file = &*entry.hf_filename;
    let mut paths = Vec::new();
    match layout {
        Layout::Hub => {
            let repo = dir.join(format!("models--{org}--{name}"));
            paths.push(repo.join("blobs").join(sha));
            paths.extend(subdirs(&repo.join("snapshots")).into_iter().map(|s| s.join(file)));
            // Blobs are named by content in every repository's folder.
            for other in subdirs(dir) {
                if other.file_name().is_some_and(|n| n.to_string_lossy().starts_with("models--")) {
                    paths.push(other.join("blobs").join(sha));
                }
            }
        }
        Layout::LlamaFlat => paths.push(dir.join(format!("{org}_{name}_{file}").replace('/', "_"))),
        Layout::LmStudio => {
            paths.push(dir.join(org).join(name).join(file));
            for publisher in subdirs(dir) {
                paths.extend(subdirs(&publisher).into_iter().map(|r| r.join(file)));
            }
        }
        Layout::OllamaBlobs => {
            paths.push(dir.join("blobs").join(format!("sha256-{sha}")));
            paths.push(dir.join("blobs").join(format!("sha256:{sha}")));
        }
        Layout::RamaLamaStore => {
            paths.push(
                dir.join("huggingface").join(org).join(name).join("blobs").join(format!("sha256-{sha}")),
            );
            for kind in subdirs(dir) {
                for owner in subdirs(&kind) {
                    paths.extend(
                        subdirs(&owner).into_iter().map(|m| m.join("blobs").join(format!("sha256-{sha}"))),
                    );
                }
            }
        }
    }
    paths
}

/// Files in `dirs` that may be `entry`'s, best first: the right size (not yet hashed).
pub(crate) fn candidates(dirs: &[CacheDir], entry: &ModelEntry) -> Vec<(PathBuf, CacheTool)> {
    let mut out: Vec<(PathBuf, CacheTool)> = Vec::new();
    for dir in dirs {
        for p in paths_in(&dir.path, dir.layout, entry) {
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
        let started = std::time::Instant::now();
        progress.send(Progress::VerifyingCopy {
            model: &entry.file_label(),
            path: &candidate,
            tool: tool.label(),
            bytes: entry.size_bytes,
        });
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
        files.forget_provenance(); // an earlier version's, until this one's is recorded
        fs::rename(&tmp, &path).map_err(|e| RegistryError::storage("rename into place", &path, e))?;
        files.write_stamp()?;
        crate::trace::record("source", tool.label());
        crate::trace::record("outcome", "reused");
        crate::trace::emit!(
            INFO,
            tool = tool.label(),
            path = %candidate.display(),
            method = method.as_str(),
            bytes = entry.size_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reused another tool's copy"
        );
        files.record_provenance(&Provenance::Reused { tool, path: candidate, method });
        return Ok(true);
    }
    Ok(false)
}
