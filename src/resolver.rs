//! The resolver: turns a catalog entry into a verified file in the models directory.
//!
//! It owns everything a source does not: the warm check (a `stat` and a stamp, no hashing, no
//! network), the per-file OS lock, the partial file under `.strata/`, resume, SHA-256 computed
//! while the bytes stream, the GGUF magic check on the first bytes, size and hash
//! verification, retries with back-off, the atomic rename and the verification stamp.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::catalog::ModelEntry;
use crate::config::RetryPolicy;
use crate::error::{Attempt, ErrorKind, RegistryError, Result};
use crate::sources::ModelSource;
use crate::store::ModelsDir;
use crate::transfer::{self, Outcome, Plan, Transfer};

/// The number of connections used for a file of `size` bytes from a network source, when
/// none is set: one for small files, more for larger ones (a CDN caps each connection).
///
/// Measured with `bench/run` (1 GiB over HTTPS, CDN capped at 20 MB/s per connection, 2 cores):
/// 8 connections 7.5 s, 16: 4.3 s, 24: 3.3 s, 32: 2.8 s; uncapped, every count from 4 to 32
/// takes about the same time (the CPU is the limit), and one connection is about 15 % slower.
pub fn auto_connections(size: u64) -> usize {
    match size {
        s if s < 32 << 20 => 1,
        s if s < 128 << 20 => 8,
        s if s < 512 << 20 => 16,
        _ => 32,
    }
}

/// What the resolver is doing, for progress bars and logs.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// Another process (or thread) holds the model's lock; waiting for it.
    WaitingForLock {
        /// The model.
        model: &'a str,
        /// The lock file.
        lock: &'a Path,
    },
    /// Hashing a file already on disk that has no valid stamp.
    Verifying {
        /// The model.
        model: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// A transfer started (or resumed).
    Started {
        /// The model.
        model: &'a str,
        /// The source, as it displays itself.
        source: &'a str,
        /// Bytes already on disk.
        resumed_from: u64,
        /// The file's size.
        total: u64,
    },
    /// Bytes arrived.
    Advanced {
        /// The model.
        model: &'a str,
        /// Bytes on disk so far.
        done: u64,
        /// The file's size.
        total: u64,
    },
    /// A transient failure; the transfer resumes after `delay`.
    Retrying {
        /// The model.
        model: &'a str,
        /// The source.
        source: &'a str,
        /// What went wrong.
        reason: &'a str,
        /// How long until the next try.
        delay: Duration,
    },
    /// A source did not serve the file; the next one is tried.
    SourceFailed {
        /// The model.
        model: &'a str,
        /// The source.
        source: &'a str,
        /// Why.
        reason: &'a str,
    },
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Why one source did not produce the file.
enum Failure {
    NotFound,
    Failed(ErrorKind, String),
    /// Stop everything: a local problem (disk full, permissions) no other source can fix.
    Fatal(RegistryError),
}

/// The resolver over one models directory and an ordered list of sources.
pub struct Resolver<'a> {
    dir: &'a ModelsDir,
    sources: &'a [Box<dyn ModelSource>],
    retry: RetryPolicy,
    progress: Option<&'a ProgressFn>,
    connections: Option<usize>,
    max_rate: Option<u64>,
    caches: &'a [crate::reuse::CacheDir],
}

impl<'a> Resolver<'a> {
    /// A resolver.
    pub fn new(
        dir: &'a ModelsDir,
        sources: &'a [Box<dyn ModelSource>],
        retry: RetryPolicy,
        progress: Option<&'a ProgressFn>,
    ) -> Self {
        Self { dir, sources, retry, progress, connections: None, max_rate: None, caches: &[] }
    }

    /// Looks for the exact file in these other tools' caches before any source.
    pub fn reuse(mut self, caches: &'a [crate::reuse::CacheDir]) -> Self {
        self.caches = caches;
        self
    }

    /// Uses `n` connections for network sources (default: chosen by file size, see
    /// [`auto_connections`]).
    pub fn connections(mut self, n: Option<usize>) -> Self {
        self.connections = n.map(|n| n.max(1));
        self
    }

    /// Caps the total transfer rate, in bytes per second.
    pub fn max_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.max_rate = bytes_per_second;
        self
    }

    fn report(&self, p: Progress<'_>) {
        if let Some(f) = self.progress {
            f(&p);
        }
    }

    /// Returns the path of `entry`'s verified file, fetching it from the first source that
    /// serves it when it is not already there. `offline` only changes the error when no
    /// source has it.
    pub fn ensure(&self, entry: &ModelEntry, offline_url: Option<&str>) -> Result<PathBuf> {
        let path = self.dir.model_path(entry);
        if self.dir.is_verified(entry) {
            return Ok(path);
        }
        self.dir.create()?;
        let _lock = self.lock(entry)?;
        if self.dir.is_verified(entry) {
            return Ok(path);
        }
        if self.check_existing(entry, &path)? {
            return Ok(path);
        }
        if self.reuse_from_caches(entry)? {
            return Ok(path);
        }
        self.check_space(entry)?;
        let name = entry.display_name();
        let mut attempts = Vec::new();
        for source in self.sources {
            let label = source.to_string();
            match self.fetch_from(entry, source.as_ref(), &label) {
                Ok(()) => return Ok(path),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::NotFound) => attempts.push(Attempt {
                    source: label,
                    kind: ErrorKind::NotDownloaded,
                    reason: "not found".into(),
                }),
                Err(Failure::Failed(kind, reason)) => {
                    self.report(Progress::SourceFailed { model: &name, source: &label, reason: &reason });
                    attempts.push(Attempt { source: label, kind, reason });
                }
            }
        }
        let all_missing = attempts.iter().all(|a| a.kind == ErrorKind::NotDownloaded);
        if let (Some(url), true) = (offline_url, all_missing) {
            return Err(RegistryError::Offline {
                model: name,
                url: url.to_string(),
                size: entry.size_bytes,
                sha256: entry.sha256.to_string(),
                path,
            });
        }
        let partial_kept =
            fs::metadata(self.dir.partial_path(entry)).ok().map(|m| m.len()).filter(|&n| n > 0);
        if partial_kept.is_none() {
            self.discard(entry);
        }
        Err(RegistryError::AllSourcesFailed {
            model: name,
            file: entry.hf_filename.to_string(),
            attempts,
            partial_kept,
        })
    }

    /// Installs the exact file from another tool's cache, if one has it: hashed first, then
    /// hard-linked (or reflinked, or copied and hashed again). Returns whether it did.
    fn reuse_from_caches(&self, entry: &ModelEntry) -> Result<bool> {
        for (candidate, tool) in crate::reuse::candidates(self.caches, entry) {
            self.report(Progress::Verifying { model: &entry.display_name(), bytes: entry.size_bytes });
            if hash_file(&candidate).ok().as_deref() != Some(&*entry.sha256) {
                continue; // not the bytes the catalog pins: ignored
            }
            let tmp = self.dir.state_dir().join(format!("{}.reuse", entry.hf_filename));
            let _ = fs::remove_file(&tmp);
            let Ok(method) = crate::reuse::install(&candidate, &tmp) else { continue };
            if method == crate::reuse::Method::Copy && hash_file(&tmp).ok().as_deref() != Some(&*entry.sha256)
            {
                let _ = fs::remove_file(&tmp);
                continue;
            }
            let path = self.dir.model_path(entry);
            fs::rename(&tmp, &path).map_err(|e| RegistryError::storage("rename into place", &path, e))?;
            self.dir.write_stamp(entry)?;
            let origin = format!("{tool} {} ({})", candidate.display(), method.as_str());
            let _ = crate::custom::write_atomic(&self.dir.origin_path(entry), origin.as_bytes());
            return Ok(true);
        }
        Ok(false)
    }

    /// Refuses early, before any transfer, when the file cannot fit.
    fn check_space(&self, entry: &ModelEntry) -> Result<()> {
        let have = self.dir.partial_bytes(entry).unwrap_or(0).min(entry.size_bytes);
        let need = entry.size_bytes - have;
        match crate::store::available_space(self.dir.root()) {
            Some(free) if free < need => Err(RegistryError::storage(
                "download into",
                self.dir.root(),
                std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "not enough space for {}: it needs {} more bytes ({:.1} MB), {} bytes ({:.1} MB) are free",
                        entry.hf_filename,
                        need,
                        need as f64 / 1e6,
                        free,
                        free as f64 / 1e6
                    ),
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Takes the entry's OS lock, waiting (and saying so) while another holder has it. The
    /// kernel releases it when the holder exits, however it exits.
    fn lock(&self, entry: &ModelEntry) -> Result<fs::File> {
        let path = self.dir.lock_path(entry);
        let file = crate::store::open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                self.report(Progress::WaitingForLock { model: &entry.display_name(), lock: &path });
                file.lock().map_err(|e| RegistryError::storage("lock", &path, e))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(RegistryError::storage("lock", &path, e)),
        }
        Ok(file)
    }

    /// Deals with a file already at the model path that has no valid stamp: a right-size
    /// regular file is hashed (kept and stamped if it verifies); anything else is removed.
    fn check_existing(&self, entry: &ModelEntry, path: &Path) -> Result<bool> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(RegistryError::storage("stat", path, e)),
        };
        if meta.is_dir() {
            return Err(RegistryError::storage(
                "replace",
                path,
                std::io::Error::other("a directory is in the way of the model file; move it away"),
            ));
        }
        if meta.is_file() && meta.len() == entry.size_bytes {
            self.report(Progress::Verifying { model: &entry.display_name(), bytes: meta.len() });
            if hash_file(path)? == entry.sha256 {
                self.dir.write_stamp(entry)?;
                return Ok(true);
            }
        }
        self.dir.remove_stamp(entry);
        fs::remove_file(path).map_err(|e| RegistryError::storage("delete", path, e))?;
        Ok(false)
    }

    fn fetch_from(&self, entry: &ModelEntry, source: &dyn ModelSource, label: &str) -> Result<(), Failure> {
        let size = entry.size_bytes;
        let partial_path = self.dir.partial_path(entry);
        let ranges_path = self.dir.ranges_path(entry);
        let storage = |action: &'static str, e: std::io::Error| {
            Failure::Fatal(RegistryError::storage(action, &partial_path, e))
        };

        if fs::symlink_metadata(&partial_path).is_ok_and(|m| !m.is_file()) {
            fs::remove_file(&partial_path).map_err(|e| storage("delete", e))?;
        }
        let mut file = open_partial(&partial_path).map_err(|e| storage("open", e))?;
        let connections =
            if source.is_network() { self.connections.unwrap_or_else(|| auto_connections(size)) } else { 1 };
        let mut use_ranges = connections > 1;
        loop {
            let len = file.metadata().map_err(|e| storage("stat", e))?.len();
            let plan = match transfer::read_ranges(&ranges_path, size) {
                Some(chunks) if len == size && use_ranges => {
                    Plan { chunks, ranges_file: Some(ranges_path.clone()) }
                }
                Some(chunks) if len == size => {
                    // Resuming a parallel partial on one connection: keep its contiguous prefix.
                    let prefix = Plan::prefix(&chunks);
                    file.set_len(prefix).map_err(|e| storage("truncate", e))?;
                    let _ = fs::remove_file(&ranges_path);
                    Plan { chunks: Plan::fresh(size, prefix, 1), ranges_file: None }
                }
                _ => {
                    let _ = fs::remove_file(&ranges_path);
                    let have = if len > size { 0 } else { len };
                    if have != len {
                        file.set_len(0).map_err(|e| storage("truncate", e))?;
                    }
                    if use_ranges && size - have > 4 * transfer::MIN_CHUNK {
                        // The ranges file first: a preallocated partial without one would
                        // pass for a complete sequential partial after a crash.
                        let chunks = Plan::fresh(size, have, connections);
                        transfer::write_ranges(&ranges_path, size, &chunks).map_err(Failure::Fatal)?;
                        file.set_len(size).map_err(|e| storage("allocate", e))?;
                        Plan { chunks, ranges_file: Some(ranges_path.clone()) }
                    } else {
                        Plan { chunks: Plan::fresh(size, have, 1), ranges_file: None }
                    }
                }
            };
            let prefix = Plan::prefix(&plan.chunks);
            let mut hasher = Sha256::new();
            if prefix > 0 {
                hash_prefix(&mut file, prefix, &mut hasher).map_err(|e| storage("read", e))?;
            }
            let conns = if plan.ranges_file.is_some() { connections } else { 1 };
            let job = Transfer {
                source,
                label,
                entry,
                file: &file,
                partial: &partial_path,
                validator_file: &self.dir.validator_path(entry),
                retry: self.retry,
                progress: self.progress,
                max_rate: self.max_rate,
            };
            match job.run(plan, conns, hasher) {
                Outcome::Done(actual) => {
                    if actual != entry.sha256 {
                        self.discard(entry);
                        return Err(Failure::Failed(
                            ErrorKind::Integrity,
                            format!(
                                "checksum mismatch, the bytes were discarded:\n      expected sha256 {}\n      actual   sha256 {actual}",
                                entry.sha256
                            ),
                        ));
                    }
                    break;
                }
                Outcome::NotFound => return Err(Failure::NotFound),
                Outcome::Failed(kind, reason) => {
                    if kind == ErrorKind::Integrity {
                        self.discard(entry);
                    } else {
                        file.sync_all().map_err(|e| storage("sync", e))?;
                    }
                    return Err(Failure::Failed(kind, reason));
                }
                Outcome::Storage(e) => return Err(Failure::Fatal(e)),
                Outcome::RangesUnsupported => use_ranges = false,
            }
        }
        file.sync_all().map_err(|e| storage("sync", e))?;
        drop(file);
        let path = self.dir.model_path(entry);
        fs::rename(&partial_path, &path)
            .map_err(|e| Failure::Fatal(RegistryError::storage("rename into place", &path, e)))?;
        let _ = fs::File::open(self.dir.root()).and_then(|d| d.sync_all());
        let _ = fs::remove_file(self.dir.validator_path(entry));
        let _ = fs::remove_file(&ranges_path);
        self.dir.write_stamp(entry).map_err(Failure::Fatal)?;
        let _ = crate::custom::write_atomic(&self.dir.origin_path(entry), label.as_bytes());
        Ok(())
    }

    /// Deletes a partial download whose bytes cannot be right.
    fn discard(&self, entry: &ModelEntry) {
        let _ = fs::remove_file(self.dir.partial_path(entry));
        let _ = fs::remove_file(self.dir.validator_path(entry));
        let _ = fs::remove_file(self.dir.ranges_path(entry));
    }
}

fn open_partial(path: &Path) -> std::io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o644);
    opts.open(path)
}

fn hash_prefix(file: &mut fs::File, len: u64, hasher: &mut Sha256) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut reader = file.take(len);
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(())
}

/// The SHA-256 of a whole file, lower-case hex.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(|e| RegistryError::storage("open", path, e))?;
    let len = file.metadata().map_err(|e| RegistryError::storage("stat", path, e))?.len();
    let mut hasher = Sha256::new();
    hash_prefix(&mut file, len, &mut hasher).map_err(|e| RegistryError::storage("read", path, e))?;
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mock::MockSource;
    use crate::sources::{Fetch, FetchRequest, SourceError};
    use mockall::predicate::{always, function};
    use std::borrow::Cow;
    use std::io::Cursor;
    use std::sync::Mutex;

    fn fixture(size: usize) -> (ModelEntry, Vec<u8>) {
        let mut bytes = crate::gguf::test_header("bert", 8, 7);
        let mut x = 7u32;
        while bytes.len() < size {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            bytes.push((x >> 16) as u8);
        }
        let mut e = crate::catalog::BUILTIN[0].clone();
        e.hf_filename = Cow::Borrowed("fixture-Q8_0.gguf");
        e.size_bytes = bytes.len() as u64;
        e.sha256 = Cow::Owned(hex(&Sha256::digest(&bytes)));
        (e, bytes)
    }

    fn body(bytes: &[u8], from: u64) -> Fetch {
        Fetch {
            body: Box::new(Cursor::new(bytes[from as usize..].to_vec())),
            start: from,
            total: Some(bytes.len() as u64),
            validator: Some("\"v1\"".into()),
            location: "mock".into(),
        }
    }

    fn mock(name: &'static str) -> MockSource {
        let mut m = MockSource::new();
        m.expect_fmt().returning(move |f| f.write_str(name));
        m.expect_is_network().return_const(true);
        m
    }

    fn fast() -> RetryPolicy {
        RetryPolicy { attempts: 3, base: Duration::from_millis(1), max_delay: Duration::from_millis(5) }
    }

    fn run(dir: &ModelsDir, sources: Vec<MockSource>, entry: &ModelEntry) -> Result<PathBuf> {
        let sources: Vec<Box<dyn ModelSource>> = sources.into_iter().map(|m| Box::new(m) as _).collect();
        Resolver::new(dir, &sources, fast(), None).ensure(entry, None)
    }

    #[test]
    fn downloads_verifies_stamps_and_then_stays_warm() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        let (entry, bytes) = fixture(100_000);
        let mut m = mock("one");
        let served = bytes.clone();
        m.expect_fetch().times(1).returning(move |_, r| Ok(body(&served, r.offset)));
        let path = run(&dir, vec![m], &entry).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert!(dir.is_verified(&entry));
        assert!(!dir.partial_path(&entry).exists());

        // Warm: a source that must not be asked.
        let mut never = mock("never");
        never.expect_fetch().times(0);
        assert_eq!(run(&dir, vec![never], &entry).unwrap(), path);
    }

    #[test]
    fn a_dropped_connection_resumes_from_the_bytes_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        let (entry, bytes) = fixture(300_000);
        let offsets = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = offsets.clone();
        let served = bytes.clone();
        let mut m = mock("flaky");
        m.expect_fetch().times(2).returning(move |_, r| {
            seen.lock().unwrap().push((r.offset, r.if_range.clone()));
            let mut f = body(&served, r.offset);
            if r.offset == 0 {
                // Cut the first transfer short: 120 000 bytes, then a reset.
                let head = served[..120_000].to_vec();
                f.body = Box::new(Cursor::new(head).chain(Failing));
            }
            Ok(f)
        });
        run(&dir, vec![m], &entry).unwrap();
        assert_eq!(*offsets.lock().unwrap(), [(0, None), (120_000, Some("\"v1\"".to_string()))]);
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"))
        }
    }

    #[test]
    fn tampered_bytes_are_discarded_and_the_next_source_serves() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        let (entry, bytes) = fixture(50_000);
        let mut evil = bytes.clone();
        evil[40_000] ^= 0xff;
        let mut bad = mock("tampered mirror");
        bad.expect_fetch().times(1).returning(move |_, r| Ok(body(&evil, r.offset)));
        let mut missing = mock("empty mirror");
        missing.expect_fetch().times(1).returning(|_, _| Err(SourceError::NotFound));
        let mut good = mock("hub");
        let served = bytes.clone();
        good.expect_fetch()
            .with(always(), function(|r: &FetchRequest| r.offset == 0))
            .times(1)
            .returning(move |_, r| Ok(body(&served, r.offset)));
        let path = run(&dir, vec![bad, missing, good], &entry).unwrap();
        assert_eq!(fs::read(path).unwrap(), bytes);
    }

    #[test]
    fn when_every_source_fails_the_error_lists_each_and_nothing_is_at_the_model_path() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        let (entry, bytes) = fixture(10_000);
        let mut html = mock("html mirror");
        html.expect_fetch().returning(|_, _| {
            Ok(Fetch {
                body: Box::new(Cursor::new(b"<!DOCTYPE html><html>".to_vec())),
                start: 0,
                total: None,
                validator: None,
                location: "html".into(),
            })
        });
        let mut busy = mock("busy hub");
        busy.expect_fetch()
            .times(3)
            .returning(|_, _| Err(SourceError::Transient { reason: "HTTP 503".into(), retry_after: None }));
        let mut wrong = mock("wrong size");
        let mut short = bytes.clone();
        short.truncate(5_000);
        wrong.expect_fetch().returning(move |_, _| Ok(body(&short, 0)));
        let err = run(&dir, vec![html, busy, wrong], &entry).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("html mirror: html did not send a GGUF file"), "{text}");
        assert!(text.contains("busy hub: HTTP 503 (gave up after 3 tries"), "{text}");
        assert!(text.contains("wrong size: mock has 5000 bytes, the catalog says 10000"), "{text}");
        assert_eq!(err.kind(), ErrorKind::Network);
        assert!(!dir.model_path(&entry).exists());
    }

    #[test]
    fn offline_with_nothing_local_names_the_file_to_carry_in() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        let (entry, _) = fixture(10_000);
        let sources: Vec<Box<dyn ModelSource>> = Vec::new();
        let err =
            Resolver::new(&dir, &sources, fast(), None).ensure(&entry, Some("https://hub/x")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("https://hub/x") && text.contains(&*entry.sha256), "{text}");
        assert!(text.contains(&dir.model_path(&entry).display().to_string()), "{text}");
        assert_eq!(err.kind(), ErrorKind::NotDownloaded);
    }

    #[test]
    fn a_changed_file_is_rehashed_and_a_corrupt_one_refetched() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ModelsDir::new(tmp.path());
        let (entry, bytes) = fixture(20_000);
        let served = bytes.clone();
        let mut m = mock("hub");
        m.expect_fetch().times(2).returning(move |_, r| Ok(body(&served, r.offset)));
        let sources: Vec<Box<dyn ModelSource>> = vec![Box::new(m)];
        let resolver = Resolver::new(&dir, &sources, fast(), None);
        let path = resolver.ensure(&entry, None).unwrap();
        // Same bytes, new mtime: re-hashed, no fetch.
        fs::write(&path, &bytes).unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert!(!dir.is_verified(&entry));
        resolver.ensure(&entry, None).unwrap();
        assert!(dir.is_verified(&entry));
        // Corrupted in place: fetched again (the second expected fetch).
        let mut bad = bytes.clone();
        bad[19_000] ^= 1;
        fs::write(&path, &bad).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + Duration::from_secs(5))
            .unwrap();
        resolver.ensure(&entry, None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}
