//! The resolver: turns a catalog entry into a verified file in the models directory.
//!
//! It owns everything a source does not: the warm check (a `stat` and a stamp, no hashing, no
//! network), the per-file lock (see [`crate::fs::lock`]: an OS lock, or a claim file where OS
//! locks do not work), the partial file under `.strata/`, resume, SHA-256 computed while the
//! bytes stream, the GGUF magic check on the first bytes, size and hash verification, retries
//! with back-off, the atomic rename and the verification stamp.
//!
//! Where the lock cannot be trusted to exclude every other process (claim files, network
//! filesystems), the partial download is this process's own (`<file>.part.<pid>-<host>`): it
//! adopts, by rename, a partial whose writer cannot be running (the shared `<file>.part`, one
//! of a process of this host that is gone, one not kept alive for a minute), hands its own back
//! under the shared name when it stops without the file, and renames into place only the
//! inode it wrote and verified itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::base::Base;
use super::partial::{hand_back, move_partial};
use super::stop::{cancelled, Cancel, Stop};
use super::transfer::{Plan, Transfer, MIN_CHUNK};
use crate::catalog::ModelEntry;
use crate::config::{CacheDir, RetryPolicy};
use crate::digest::{hash_file, hash_file_until, hash_prefix, Digest, Sha256};
use crate::error::{Attempt as Attempt_, RegistryError, Report, Result, SourceError};
use crate::fs::lock::{self, Attempt, Guard, Holder};
use crate::progress::{Progress, ProgressFn, Reporter};
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
#[derive(Clone, Copy)]
pub struct Resolver<'a> {
    pub(super) dir: &'a ModelsDir,
    pub(super) sources: &'a [Box<dyn ModelSource>],
    /// The entry's own source, tried after `sources` (a model adopted from a registry).
    pub(super) own: Option<&'a dyn ModelSource>,
    retry: RetryPolicy,
    pub(super) progress: Reporter<'a>,
    pub(super) connections: Option<usize>,
    pub(super) max_rate: Option<u64>,
    caches: &'a [CacheDir],
    lock_timeout: Option<Duration>,
    pub(super) cancel: Cancel<'a>,
    /// The verified old version of the file, for a delta (`update`).
    base: Option<&'a Base<'a>>,
}

/// While waiting for another process, a notice this often.
const WAIT_NOTICE_EVERY: Duration = Duration::from_secs(30);
/// While waiting for another process, the lock is tried this often.
const WAIT_POLL: Duration = Duration::from_millis(100);

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
            own: None,
            retry,
            progress: Reporter(progress),
            connections: None,
            max_rate: None,
            caches: &[],
            lock_timeout: None,
            cancel: Cancel::default(),
            base: None,
        }
    }

    /// Stops, with [`RegistryError::Cancelled`], when one of these flags is set: at the next
    /// buffer of a transfer (keeping its partial download), between sources, or while waiting
    /// for another process.
    pub(crate) fn with_cancel(mut self, cancel: Cancel<'a>) -> Self {
        self.cancel = cancel;
        self
    }

    /// Rebuilds the file from `base`, its verified old version, and the chunks that changed
    /// when the Hub stores both in Xet (see `delta.rs`), before any plain download.
    pub(crate) fn with_base(mut self, base: Option<&'a Base<'a>>) -> Self {
        self.base = base;
        self
    }

    /// Gives up waiting for another process that holds the model after `timeout`
    /// ([`RegistryError::Busy`]); `None`: waits as long as it takes.
    pub fn with_lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.lock_timeout = timeout;
        self
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
        self.ensure_into(entry, &self.dir.files(entry), offline_url)
    }

    /// [`Resolver::ensure`] into `files` (a staged update's names: [`ModelFiles::staged`]).
    pub(crate) fn ensure_into(
        &self,
        entry: &ModelEntry,
        files: &ModelFiles,
        offline_url: Option<&str>,
    ) -> Result<PathBuf> {
        let files = files.clone();
        let path = files.model_path();
        if files.is_verified() {
            crate::trace::emit!(TRACE, file = %entry.hf_filename, "already verified");
            return Ok(path);
        }
        let span = crate::trace::ensure_span(&entry.display_name(), &entry.hf_filename, entry.size_bytes);
        let _entered = crate::trace::enter(&span);
        let result = self.ensure_cold(entry, &files, offline_url);
        if let Err(e) = &result {
            crate::trace::record("outcome", "failed");
            crate::trace::emit!(DEBUG, error = %Report::new(e), "not ensured");
        }
        result
    }

    /// [`Resolver::ensure`] past the warm check.
    fn ensure_cold(
        &self,
        entry: &ModelEntry,
        files: &ModelFiles,
        offline_url: Option<&str>,
    ) -> Result<PathBuf> {
        let path = files.model_path();
        if self.cancel.is_set() {
            return Err(cancelled(entry, files));
        }
        let mut guard =
            match self.dir.create().and_then(|()| files.create_dirs()).and_then(|()| self.lock(entry, files))
            {
                Ok(Some(guard)) => guard,
                Ok(None) => {
                    crate::trace::record("outcome", "waited");
                    crate::trace::emit!(INFO, "verified by the process it waited for");
                    return Ok(path);
                }
                Err(RegistryError::StorageError { source, .. })
                    if files.status() == Status::Downloaded && crate::fs::is_read_only(&source) =>
                {
                    return self.serve_read_only(entry, files);
                }
                Err(e) => return Err(e),
            };
        // Where the model's lock lives (a multi-file model's folder under the state folder):
        // the directory whose locking was found out.
        let lock_path = files.lock_path();
        let state = lock_path.parent().map_or_else(|| self.dir.state_dir(), Path::to_path_buf);
        if let Some(reason) = lock::take_fallback_notice(&state) {
            self.progress.send(Progress::NoLocks { dir: &state, reason: &reason });
        }
        if files.is_verified() {
            crate::trace::record("outcome", "waited");
            return Ok(path);
        }
        if files.staged().is_verified() {
            files.install_staged(&files.staged())?; // an update cut short after its re-pin
            return Ok(path);
        }
        let private = lock::private_partials(&state);
        let work = if private { files.with_tag(Some(Holder::me().tag())) } else { files.clone() };
        if private {
            guard.keep_alive(work.partial_path());
        }
        self.adopt(&work);
        let result = self.fetch(entry, files, &work, private, offline_url);
        match &result {
            Ok(_) => {
                // Partials no process can be writing are of no use any more.
                for p in work.partials().iter().filter(|p| p.tag() != work.tag() && self.adoptable(p)) {
                    p.discard_partial();
                }
            }
            Err(_) if private => hand_back(&work, files),
            Err(_) => {}
        }
        drop(guard);
        result
    }

    /// After the lock: a file already there, another tool's copy, then each source.
    fn fetch(
        &self,
        entry: &ModelEntry,
        files: &ModelFiles,
        work: &ModelFiles,
        private: bool,
        offline_url: Option<&str>,
    ) -> Result<PathBuf> {
        let path = files.model_path();
        // An earlier pin's verified file in place: the new version rebuilt from it, if it can be.
        let earlier =
            self.base.is_none().then(|| Base::earlier(entry, files, &|| self.cancel.is_set())).flatten();
        if let Some(base) = self.base.or(earlier.as_ref()) {
            if self.fetch_delta(entry, work, base)? {
                return Ok(path);
            }
        }
        if self.check_existing(entry, files, private)? {
            crate::trace::record("outcome", "verified");
            crate::trace::emit!(INFO, "the file already in place verified");
            return Ok(path);
        }
        if super::reuse::from_caches(self.caches, entry, work, self.progress)? {
            return Ok(path);
        }
        super::partial::check_space(self.dir, entry, work)?;
        let name = entry.file_label();
        let mut attempts = Vec::new();
        let sources = self.sources_for(entry);
        for (i, &source) in sources.iter().enumerate() {
            if self.cancel.is_set() {
                return Err(cancelled(entry, work));
            }
            let last = i + 1 == sources.len();
            let label = source.to_string();
            let started = Instant::now();
            let before = work.partial_bytes().unwrap_or(0).min(entry.size_bytes);
            match self.fetch_from(entry, work, source, &label) {
                Ok(()) => {
                    crate::trace::record("source", &label);
                    crate::trace::record("outcome", "fetched");
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
                // A stop asked for is not the source's failure: no next source, no report.
                Err(Stop::Cancelled) => return Err(cancelled(entry, work)),
                Err(Stop::Source(_)) if self.cancel.is_set() => return Err(cancelled(entry, work)),
                Err(Stop::Source(e)) if e.is_not_found() => {
                    if !last {
                        crate::trace::emit!(WARN, source = %label, "not on this source: trying the next");
                    }
                    attempts.push(Attempt_ { source: label, error: e })
                }
                Err(Stop::Source(error)) => {
                    let reason = Report::new(&error).to_string();
                    let failed = Progress::SourceFailed { model: &name, source: &label, reason: &reason };
                    // The last source's failure is the error itself: not said twice to people
                    // (operators get it in the log all the same).
                    if last {
                        failed.trace();
                    } else {
                        self.progress.send(failed);
                    }
                    attempts.push(Attempt_ { source: label, error });
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
        let partial_kept = work.partial_bytes().filter(|&n| n > 0);
        if partial_kept.is_none() {
            work.discard_partial();
        }
        Err(RegistryError::AllSourcesFailed {
            model: name,
            file: entry.hf_filename.to_string(),
            attempts,
            partial_kept,
        })
    }

    /// Whether a partial download other than this process's own can have no writer: the
    /// shared one (this process holds the model's lock), one of a process of this host that
    /// is gone, or one not kept alive for [`lock::STALE_AFTER`] (by the filesystem's clock).
    fn adoptable(&self, partial: &ModelFiles) -> bool {
        let Some(tag) = partial.tag() else { return true };
        if let Some(holder) = Holder::from_tag(tag).filter(Holder::is_here) {
            return holder.is_gone();
        }
        fs::metadata(partial.partial_path())
            .is_ok_and(|m| lock::age_on_filesystem(&m, &self.dir.state_dir()) > lock::STALE_AFTER)
    }

    /// Resumes from the most advanced partial download no process can be writing, by
    /// renaming it (and its side files) to `work`'s names, when `work` has none of its own.
    fn adopt(&self, work: &ModelFiles) {
        if fs::symlink_metadata(work.partial_path()).is_ok() {
            return;
        }
        let best = work
            .partials()
            .into_iter()
            .filter(|p| p.tag() != work.tag() && self.adoptable(p))
            .max_by_key(|p| p.partial_bytes().unwrap_or(0));
        if let Some(from) = best {
            move_partial(&from, work);
        }
    }

    /// A models directory that cannot be written (no lock, no stamp, no download) but holds
    /// the file at the right size: the file is hashed, once per process, and served when it
    /// is the pinned one. A wrong file cannot be replaced there, and is an error.
    fn serve_read_only(&self, entry: &ModelEntry, files: &ModelFiles) -> Result<PathBuf> {
        let path = files.model_path();
        let name = entry.file_label();
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
        crate::trace::record("outcome", "read-only");
        Ok(path)
    }

    /// Takes the entry's lock, waiting while another process holds it: saying so at once
    /// and every [`WAIT_NOTICE_EVERY`], with who it is, up to the lock timeout. `None`: the
    /// file was verified by that process meanwhile (nothing left to do).
    fn lock(&self, entry: &ModelEntry, files: &ModelFiles) -> Result<Option<Guard>> {
        let lock = files.lock();
        let started = Instant::now();
        // No notice for a wait shorter than a second (a lock timeout below that).
        let mut notice_at =
            Some(Duration::ZERO).filter(|_| self.lock_timeout.is_none_or(|l| l >= Duration::from_secs(1)));
        loop {
            let holder = match lock.try_acquire()? {
                Attempt::Acquired(guard) => return Ok(Some(guard)),
                Attempt::Busy(holder) => holder,
            };
            if self.cancel.is_set() {
                return Err(cancelled(entry, files));
            }
            let waited = started.elapsed();
            if let Some(limit) = self.lock_timeout.filter(|l| waited >= *l) {
                return Err(RegistryError::Busy {
                    what: "download",
                    model: entry.file_label(),
                    holder: Some(match &holder {
                        Some(h) => format!("{h}, downloading it"),
                        None => lock.describe(None),
                    }),
                    waited: Some(limit),
                });
            }
            if let Some(at) = notice_at.filter(|at| waited >= *at) {
                self.progress.send(Progress::WaitingForLock {
                    model: &entry.file_label(),
                    lock: lock.path(),
                    holder: holder.as_ref().map(ToString::to_string).as_deref(),
                    waited: if at.is_zero() { Duration::ZERO } else { waited },
                });
                notice_at = Some(waited + WAIT_NOTICE_EVERY);
            }
            if files.is_verified() {
                return Ok(None);
            }
            let left = self.lock_timeout.map_or(WAIT_POLL, |l| l.saturating_sub(waited));
            std::thread::sleep(WAIT_POLL.min(left).max(Duration::from_millis(1)));
        }
    }

    /// Deals with a file already at the model path that has no valid stamp: an earlier pin's
    /// verified file is kept (the new one replaces it by rename); a right-size regular file is
    /// hashed (kept and stamped if it verifies); anything else is removed —
    /// or, where another process may be renaming its verified file into place at the same
    /// time (`private`), left for the rename to replace.
    fn check_existing(&self, entry: &ModelEntry, files: &ModelFiles, private: bool) -> Result<bool> {
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
        // An earlier pin's verified file (its stamp checked, or its bytes hashed again when the
        // stamp went stale) stays until the new one is renamed over it.
        if files
            .earlier_version(&entry.sha256, &|| self.cancel.is_set())
            .is_some_and(|sha| sha != *entry.sha256)
        {
            return Ok(false);
        }
        if self.cancel.is_set() {
            return Err(cancelled(entry, files));
        }
        if meta.is_file() && meta.len() == entry.size_bytes {
            self.progress.send(Progress::Verifying { model: &entry.file_label(), bytes: meta.len() });
            match hash_file_until(&path, &|| self.cancel.is_set())? {
                None => return Err(cancelled(entry, files)),
                Some(actual) if actual == entry.sha256 => {
                    // Where it came from is not known: what was recorded was another file's.
                    files.forget_provenance();
                    files.write_stamp()?;
                    return Ok(true);
                }
                Some(_) => {}
            }
        }
        files.remove_stamp();
        if !private {
            fs::remove_file(&path).map_err(|e| RegistryError::storage("delete", &path, e))?;
        }
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
        // Whether bytes from before this turn are in the partial (checked once: after a
        // restart, every byte is this turn's).
        let mut from_disk = files.partial_bytes().is_some_and(|n| n > 0);
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
            let stop = || self.cancel.is_set();
            if prefix > 0
                && !hash_prefix(&mut file, prefix, &mut hasher, &stop).map_err(|e| storage("read", e))?
            {
                return Err(Stop::Cancelled);
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
                cancel: self.cancel,
            };
            match job.run(plan, conns, hasher) {
                Ok(actual) if actual == entry.sha256 => break,
                Ok(actual) if from_disk => {
                    // The bytes kept from an earlier run may be what is wrong (a disk error, a
                    // writer that was not this program): once, start again from nothing.
                    from_disk = false;
                    files.discard_partial();
                    self.progress.send(Progress::Restarting {
                        model: &entry.file_label(),
                        reason: &format!(
                            "the partial download on disk did not verify (its sha256 is {actual}, the catalog pins \
                             {}): its bytes were bad and are discarded; starting again from the first byte",
                            entry.sha256
                        ),
                    });
                    file = crate::fs::open_read_write(&partial_path).map_err(|e| storage("open", e))?;
                    continue;
                }
                Ok(actual) => {
                    files.discard_partial();
                    return Err(Stop::Source(SourceError::ChecksumMismatch {
                        expected: entry.sha256.to_string(),
                        actual,
                    }));
                }
                Err(Stop::RangesUnsupported) => use_ranges = false,
                Err(Stop::Cancelled) => {
                    file.sync_all().map_err(|e| storage("sync", e))?; // kept for the next call
                    return Err(Stop::Cancelled);
                }
                Err(Stop::Source(e)) => {
                    // No byte of an answer refused before it was written (another size, not a
                    // GGUF file, a protocol error) reached the partial: what is there stays
                    // resumable from another source or a later run. Only a hash that fails
                    // (above) discards bytes.
                    if !e.is_not_found() {
                        file.sync_all().map_err(|e| storage("sync", e))?;
                    }
                    return Err(Stop::Source(e));
                }
                Err(stop) => return Err(stop),
            }
        }
        file.sync_all().map_err(|e| storage("sync", e))?;
        drop(file);
        let xet_hash = crate::sources::hub(source).and_then(|h| h.known_xet_id(entry));
        let provenance = Provenance::Source { source: label.to_string(), xet_hash };
        super::partial::install(self.dir, files, &partial_path, &provenance).map_err(Stop::Storage)
    }
}
