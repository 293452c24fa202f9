//! The resolver: turns a catalog entry into a verified file in the models directory.
//!
//! It owns everything a source does not: the warm check (a `stat` and a stamp, no hashing, no
//! network), the per-file OS lock, the partial file under `.strata/`, resume, SHA-256 computed
//! while the bytes stream, the GGUF magic check on the first bytes, size and hash
//! verification, retries with back-off, the atomic rename and the verification stamp.

use std::fs;
use std::path::PathBuf;

use super::transfer::{Plan, Stop, Transfer, MIN_CHUNK};
use crate::catalog::ModelEntry;
use crate::config::{CacheDir, RetryPolicy};
use crate::digest::{hash_file, hash_prefix, Digest, Sha256};
use crate::error::{Attempt, RegistryError, Report, Result, SourceError};
use crate::fs::LockFile;
use crate::progress::{Progress, ProgressFn, Reporter};
use crate::size::ByteSize;
use crate::sources::ModelSource;
use crate::store::{ranges, ModelFiles, ModelsDir, Provenance, Status};

/// The number of connections used for a file of `size` bytes from a network source, when
/// none is set: one per 2 MiB, at most 32 (a CDN caps each connection, and every connection
/// but the first costs only its handshake once the URL is resolved).
///
/// Tuned on the emulated WAN of `bench/run` (Hub round trip 80 ms, CDN round trip 20 ms,
/// 20 MB/s per CDN connection, 2 cores): 25 MiB takes 1.52 s on 1 connection, 0.46 s on 8,
/// 0.40 s on 16; 64 MiB 0.74 s on 8, 0.46 s on 32; 256 MiB 2.05 s on 8, 1.26 s on 16,
/// 1.02 s on 24, 0.94–0.99 s on 32, 0.92–1.08 s on 48 and 64; 1 GiB 3.97 s on 16, 2.86 s on
/// 32, 2.8–3.4 s on 48 and 64 (past 32 the CPU, not the network, is the limit here).
pub fn auto_connections(size: u64) -> usize {
    usize::try_from(size / (2 << 20)).unwrap_or(usize::MAX).clamp(1, 32)
}

/// The resolver over one models directory and an ordered list of sources.
pub struct Resolver<'a> {
    dir: &'a ModelsDir,
    sources: &'a [Box<dyn ModelSource>],
    retry: RetryPolicy,
    progress: Reporter<'a>,
    connections: Option<usize>,
    max_rate: Option<u64>,
    caches: &'a [CacheDir],
}

impl<'a> Resolver<'a> {
    /// A resolver.
    pub fn new(
        dir: &'a ModelsDir,
        sources: &'a [Box<dyn ModelSource>],
        retry: RetryPolicy,
        progress: Option<&'a ProgressFn>,
    ) -> Self {
        Self {
            dir,
            sources,
            retry,
            progress: Reporter(progress),
            connections: None,
            max_rate: None,
            caches: &[],
        }
    }

    /// Looks for the exact file in these other tools' caches before any source.
    pub fn with_caches(mut self, caches: &'a [CacheDir]) -> Self {
        self.caches = caches;
        self
    }

    /// Uses `n` connections for network sources (default: chosen by file size, see
    /// [`auto_connections`]).
    pub fn with_connections(mut self, n: Option<usize>) -> Self {
        self.connections = n.map(|n| n.max(1));
        self
    }

    /// Caps the total transfer rate, in bytes per second.
    pub fn with_max_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.max_rate = bytes_per_second;
        self
    }

    /// Returns the path of `entry`'s verified file, fetching it from the first source that
    /// serves it when it is not already there. `offline_url` (offline mode) only changes the
    /// error when no source has it.
    pub fn ensure(&self, entry: &ModelEntry, offline_url: Option<&str>) -> Result<PathBuf> {
        let files = self.dir.files(entry);
        let path = files.model_path();
        if files.is_verified() {
            return Ok(path);
        }
        let _lock = match self.dir.create().and_then(|()| self.lock(entry, &files)) {
            Ok(lock) => lock,
            Err(RegistryError::StorageError { source, .. })
                if files.status() == Status::Downloaded && crate::fs::is_read_only(&source) =>
            {
                return self.serve_read_only(entry, &files);
            }
            Err(e) => return Err(e),
        };
        if files.is_verified() {
            return Ok(path);
        }
        if self.check_existing(entry, &files)? {
            return Ok(path);
        }
        if super::reuse::from_caches(self.caches, entry, &files, self.progress)? {
            return Ok(path);
        }
        self.check_space(entry, &files)?;
        let name = entry.display_name();
        let mut attempts = Vec::new();
        for (i, source) in self.sources.iter().enumerate() {
            let last = i + 1 == self.sources.len();
            let label = source.to_string();
            let started = std::time::Instant::now();
            let before = files.partial_bytes().unwrap_or(0).min(entry.size_bytes);
            match self.fetch_from(entry, &files, source.as_ref(), &label) {
                Ok(()) => {
                    self.progress.send(Progress::Finished {
                        model: &name,
                        source: &label,
                        bytes: entry.size_bytes,
                        fetched: entry.size_bytes - before,
                        elapsed: started.elapsed(),
                    });
                    return Ok(path);
                }
                Err(Stop::Storage(e)) => return Err(e),
                Err(Stop::Source(e)) if e.is_not_found() => {
                    attempts.push(Attempt { source: label, error: e })
                }
                Err(Stop::Source(error)) => {
                    // The last source's failure is the error itself: not said twice.
                    if !last {
                        let reason = Report::new(&error).to_string();
                        self.progress.send(Progress::SourceFailed {
                            model: &name,
                            source: &label,
                            reason: &reason,
                        });
                    }
                    attempts.push(Attempt { source: label, error });
                }
                Err(Stop::RangesUnsupported) => unreachable!("handled in fetch_from"),
            }
        }
        let all_missing = attempts.iter().all(|a| a.error.is_not_found());
        if let (Some(url), true) = (offline_url, all_missing) {
            return Err(RegistryError::Offline {
                model: name,
                url: url.to_string(),
                size: entry.size_bytes,
                sha256: entry.sha256.to_string(),
                path,
            });
        }
        // The bytes actually received (a parallel partial is preallocated to the full size:
        // its ranges file says what is there). Nothing received: nothing is kept.
        let partial_kept = files.partial_bytes().filter(|&n| n > 0);
        if partial_kept.is_none() {
            files.discard_partial();
        }
        Err(RegistryError::AllSourcesFailed {
            model: name,
            file: entry.hf_filename.to_string(),
            attempts,
            partial_kept,
        })
    }

    /// A models directory that cannot be written (no lock, no stamp, no download) but holds
    /// the file at the right size: the file is hashed, once per process, and served when it
    /// is the pinned one. A wrong file cannot be replaced there, and is an error.
    fn serve_read_only(&self, entry: &ModelEntry, files: &ModelFiles) -> Result<PathBuf> {
        let path = files.model_path();
        let name = entry.display_name();
        self.progress.send(Progress::ReadOnly {
            model: &name,
            dir: self.dir.root(),
            bytes: entry.size_bytes,
        });
        let actual = hash_file(&path)?;
        if actual != entry.sha256 {
            return Err(RegistryError::CorruptFile {
                model: name,
                path,
                expected: entry.sha256.to_string(),
                actual,
                kept: Some("the models directory is read-only".into()),
            });
        }
        files.remember_verified();
        Ok(path)
    }

    /// Refuses early, before any transfer, when the file cannot fit.
    fn check_space(&self, entry: &ModelEntry, files: &ModelFiles) -> Result<()> {
        let have = files.partial_bytes().unwrap_or(0).min(entry.size_bytes);
        let need = entry.size_bytes - have;
        match crate::fs::available_space(self.dir.root()) {
            Some(free) if free < need => Err(RegistryError::storage(
                "download into",
                self.dir.root(),
                std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "not enough space for {}: it needs {need} more bytes ({}), {free} bytes ({}) are free",
                        entry.hf_filename,
                        ByteSize(need),
                        ByteSize(free),
                    ),
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Takes the entry's OS lock, waiting (and saying so) while another holder has it.
    fn lock(&self, entry: &ModelEntry, files: &ModelFiles) -> Result<LockFile> {
        let lock = LockFile::open(&files.lock_path())?;
        if !lock.try_lock()? {
            self.progress.send(Progress::WaitingForLock { model: &entry.display_name(), lock: lock.path() });
            lock.lock()?;
        }
        Ok(lock)
    }

    /// Deals with a file already at the model path that has no valid stamp: a right-size
    /// regular file is hashed (kept and stamped if it verifies); anything else is removed.
    fn check_existing(&self, entry: &ModelEntry, files: &ModelFiles) -> Result<bool> {
        let path = files.model_path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(RegistryError::storage("stat", &path, e)),
        };
        if meta.is_dir() {
            return Err(RegistryError::storage(
                "replace",
                &path,
                std::io::Error::other("a directory is in the way of the model file; move it away"),
            ));
        }
        if meta.is_file() && meta.len() == entry.size_bytes {
            self.progress.send(Progress::Verifying { model: &entry.display_name(), bytes: meta.len() });
            if hash_file(&path)? == entry.sha256 {
                files.write_stamp()?;
                return Ok(true);
            }
        }
        files.remove_stamp();
        fs::remove_file(&path).map_err(|e| RegistryError::storage("delete", &path, e))?;
        Ok(false)
    }

    /// One source's turn: plans from what is on disk, runs the transfer, verifies, installs.
    fn fetch_from(
        &self,
        entry: &ModelEntry,
        files: &ModelFiles,
        source: &dyn ModelSource,
        label: &str,
    ) -> Result<(), Stop> {
        let size = entry.size_bytes;
        let partial_path = files.partial_path();
        let ranges_path = files.ranges_path();
        let storage = |action: &'static str, e: std::io::Error| {
            Stop::Storage(RegistryError::storage(action, &partial_path, e))
        };

        if fs::symlink_metadata(&partial_path).is_ok_and(|m| !m.is_file()) {
            fs::remove_file(&partial_path).map_err(|e| storage("delete", e))?;
        }
        let mut file = crate::fs::open_read_write(&partial_path).map_err(|e| storage("open", e))?;
        let connections =
            if source.is_network() { self.connections.unwrap_or_else(|| auto_connections(size)) } else { 1 };
        let mut use_ranges = connections > 1;
        loop {
            let len = file.metadata().map_err(|e| storage("stat", e))?.len();
            let plan = match ranges::read(&ranges_path, size) {
                Some(chunks) if len == size && use_ranges => Plan { chunks, parallel: true },
                Some(chunks) if len == size => {
                    // Resuming a parallel partial on one connection: keep its contiguous prefix.
                    let prefix = ranges::prefix(&chunks);
                    file.set_len(prefix).map_err(|e| storage("truncate", e))?;
                    let _ = fs::remove_file(&ranges_path);
                    Plan { chunks: Plan::fresh(size, prefix, 1), parallel: false }
                }
                _ => {
                    let _ = fs::remove_file(&ranges_path);
                    let have = if len > size { 0 } else { len };
                    if have != len {
                        file.set_len(0).map_err(|e| storage("truncate", e))?;
                    }
                    if use_ranges && size - have > 4 * MIN_CHUNK {
                        // The ranges file first: a preallocated partial without one would
                        // pass for a complete sequential partial after a crash.
                        let chunks = Plan::fresh(size, have, connections);
                        ranges::write(&ranges_path, size, &chunks).map_err(Stop::Storage)?;
                        file.set_len(size).map_err(|e| storage("allocate", e))?;
                        Plan { chunks, parallel: true }
                    } else {
                        Plan { chunks: Plan::fresh(size, have, 1), parallel: false }
                    }
                }
            };
            let prefix = ranges::prefix(&plan.chunks);
            let mut hasher = Sha256::new();
            if prefix > 0 {
                hash_prefix(&mut file, prefix, &mut hasher).map_err(|e| storage("read", e))?;
            }
            let conns = if plan.parallel { connections } else { 1 };
            let job = Transfer {
                source,
                label,
                entry,
                files,
                file: &file,
                retry: self.retry,
                progress: self.progress,
                max_rate: self.max_rate,
            };
            match job.run(plan, conns, hasher) {
                Ok(actual) if actual == entry.sha256 => break,
                Ok(actual) => {
                    files.discard_partial();
                    return Err(Stop::Source(SourceError::ChecksumMismatch {
                        expected: entry.sha256.to_string(),
                        actual,
                    }));
                }
                Err(Stop::RangesUnsupported) => use_ranges = false,
                Err(Stop::Source(e)) => {
                    if e.kind() == crate::error::ErrorKind::Integrity {
                        files.discard_partial();
                    } else if !e.is_not_found() {
                        file.sync_all().map_err(|e| storage("sync", e))?;
                    }
                    return Err(Stop::Source(e));
                }
                Err(stop) => return Err(stop),
            }
        }
        file.sync_all().map_err(|e| storage("sync", e))?;
        drop(file);
        let path = files.model_path();
        fs::rename(&partial_path, &path)
            .map_err(|e| Stop::Storage(RegistryError::storage("rename into place", &path, e)))?;
        let _ = fs::File::open(self.dir.root()).and_then(|d| d.sync_all());
        files.discard_partial();
        files.write_stamp().map_err(Stop::Storage)?;
        files.record_provenance(&Provenance::Source { source: label.to_string() });
        Ok(())
    }
}
