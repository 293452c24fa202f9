//! The transfer engine: one or more connections fetch ranges of a file and write them at
//! their offsets into the partial file, while a hasher follows the contiguous written prefix
//! in order, so the SHA-256 is ready moments after the last byte arrives, with no second pass
//! over the file once it is complete.
//!
//! The file is cut into chunks. Each connection takes the next pending chunk; when none is
//! left, an idle connection takes over the second half of the largest range still in flight,
//! so a connection much slower than the others does not hold up the end. With more than one
//! connection the partial is preallocated and per-chunk progress is kept beside it
//! (`<file>.part.ranges`), so an interruption costs only the bytes in flight. Memory is one
//! fixed buffer per connection plus one for the hasher, whatever the file size.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::catalog::ModelEntry;
use crate::config::RetryPolicy;
use crate::error::{ErrorKind, RegistryError};
use crate::gguf::MAGIC;
use crate::resolver::{Progress, ProgressFn};
use crate::sources::{FetchRequest, ModelSource, SourceError};

/// Read buffer per connection (32 connections stay under 32 MiB of RSS in all).
const BUF_SIZE: usize = 128 * 1024;
/// Hasher read size.
const HASH_BUF: usize = 1024 * 1024;
/// A range in flight is split only when at least twice this much of it remains.
const MIN_SPLIT: u64 = 1024 * 1024;
/// The smallest chunk of a parallel plan.
pub(crate) const MIN_CHUNK: u64 = 1 << 20;

/// One contiguous range of the file and how much of it is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub start: u64,
    pub end: u64,
    pub done: u64,
    active: bool,
}

impl Chunk {
    pub(crate) fn new(start: u64, end: u64, done: u64) -> Self {
        Self { start, end, done, active: false }
    }

    fn remaining(&self) -> u64 {
        self.end - self.start - self.done
    }
}

/// How the file is laid out on disk and cut into ranges.
pub(crate) struct Plan {
    pub chunks: Vec<Chunk>,
    /// Where per-chunk progress is saved; `None` for a single sequential range (then the
    /// partial file's length is the progress).
    pub ranges_file: Option<std::path::PathBuf>,
}

impl Plan {
    /// A plan for `size` bytes with `have` bytes already on disk at the start (a sequential
    /// partial), cut for `connections` connections.
    pub(crate) fn fresh(size: u64, have: u64, connections: usize) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        if have > 0 {
            chunks.push(Chunk::new(0, have, have));
        }
        let rest = size - have;
        if connections <= 1 || rest == 0 {
            if rest > 0 {
                chunks.push(Chunk::new(have, size, 0));
            }
            return chunks;
        }
        let chunk = (rest / (connections as u64 * 4)).clamp(MIN_CHUNK, 64 << 20);
        let mut at = have;
        while at < size {
            let end = (at + chunk).min(size);
            chunks.push(Chunk::new(at, end, 0));
            at = end;
        }
        chunks
    }

    /// The contiguous prefix of the file that is on disk.
    pub(crate) fn prefix(chunks: &[Chunk]) -> u64 {
        let mut prefix = 0;
        for c in chunks {
            if c.start != prefix {
                break;
            }
            prefix = c.start + c.done;
            if c.done < c.end - c.start {
                break;
            }
        }
        prefix
    }
}

/// Reads a ranges file: `start end done` per line, covering `[0, size)` without gaps.
pub(crate) fn read_ranges(path: &Path, size: u64) -> Option<Vec<Chunk>> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != format!("v1 {size}") {
        return None;
    }
    let mut chunks = Vec::new();
    let mut at = 0;
    for line in lines {
        let mut it = line.split_ascii_whitespace().map(|n| n.parse::<u64>().ok());
        let (start, end, done) = (it.next()??, it.next()??, it.next()??);
        if start != at || end <= start || done > end - start {
            return None;
        }
        chunks.push(Chunk::new(start, end, done));
        at = end;
    }
    (at == size).then_some(chunks)
}

/// Saves per-chunk progress (atomically).
pub(crate) fn write_ranges(path: &Path, size: u64, chunks: &[Chunk]) -> crate::error::Result<()> {
    crate::custom::write_atomic(path, ranges_text(size, chunks).as_bytes())
}

fn ranges_text(size: u64, chunks: &[Chunk]) -> String {
    let mut s = format!("v1 {size}\n");
    for c in chunks {
        s.push_str(&format!("{} {} {}\n", c.start, c.end, c.done));
    }
    s
}

/// Why a transfer did not produce the file.
pub(crate) enum Outcome {
    /// Every byte is on disk; the SHA-256 of the whole file, lower-case hex.
    Done(String),
    NotFound,
    Failed(ErrorKind, String),
    Storage(RegistryError),
    /// The source ignored a range request while several connections were in use.
    RangesUnsupported,
}

/// Caps the total rate of all connections.
struct Limiter {
    rate: u64,
    started: Instant,
    bytes: Mutex<u64>,
}

impl Limiter {
    fn take(&self, n: usize) {
        let total = {
            let mut b = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
            *b += n as u64;
            *b
        };
        let due = Duration::from_secs_f64(total as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

struct State {
    chunks: Vec<Chunk>,
    failure: Option<Outcome>,
    /// With several connections: whether the source honours ranges (known after the first
    /// response).
    ranges_ok: Option<bool>,
    written: u64,
    saved_at: Instant,
    validator: Option<String>,
}

/// Everything the connections and the hasher share.
pub(crate) struct Transfer<'a> {
    pub source: &'a dyn ModelSource,
    pub label: &'a str,
    pub entry: &'a ModelEntry,
    pub file: &'a fs::File,
    pub partial: &'a Path,
    pub validator_file: &'a Path,
    pub retry: RetryPolicy,
    pub progress: Option<&'a ProgressFn>,
    pub max_rate: Option<u64>,
}

struct Run<'a, 'b> {
    t: &'b Transfer<'a>,
    name: String,
    size: u64,
    ranges_file: Option<&'b Path>,
    state: Mutex<State>,
    changed: Condvar,
    cancel: AtomicBool,
    alive: AtomicUsize,
    limiter: Option<Limiter>,
}

impl Transfer<'_> {
    /// Runs `plan` with `connections` connections, the hasher starting from `hasher`, which
    /// has hashed the plan's contiguous prefix already.
    pub(crate) fn run(&self, plan: Plan, connections: usize, hasher: Sha256) -> Outcome {
        let size = self.entry.size_bytes;
        let written: u64 = plan.chunks.iter().map(|c| c.done).sum();
        let hashed = Plan::prefix(&plan.chunks);
        let multi = plan.ranges_file.is_some();
        let validator = fs::read_to_string(self.validator_file).ok().filter(|_| written > 0);
        let run = Run {
            t: self,
            name: self.entry.display_name(),
            size,
            ranges_file: plan.ranges_file.as_deref(),
            state: Mutex::new(State {
                chunks: plan.chunks,
                failure: None,
                ranges_ok: if multi && connections > 1 { None } else { Some(true) },
                written,
                saved_at: Instant::now(),
                validator,
            }),
            changed: Condvar::new(),
            cancel: AtomicBool::new(false),
            alive: AtomicUsize::new(connections.max(1)),
            limiter: self.max_rate.filter(|&r| r > 0).map(|rate| Limiter {
                rate,
                started: Instant::now(),
                bytes: Mutex::new(0),
            }),
        };
        if let Some(f) = self.progress {
            f(&Progress::Started {
                model: &run.name,
                source: self.label,
                resumed_from: written,
                total: size,
            });
        }
        std::thread::scope(|s| {
            for w in 0..connections.max(1) {
                let run = &run;
                s.spawn(move || {
                    run.worker(w);
                    run.alive.fetch_sub(1, Ordering::SeqCst);
                    run.changed.notify_all();
                });
            }
            let outcome = run.follow(hasher, hashed);
            run.cancel.store(true, Ordering::SeqCst);
            run.changed.notify_all();
            outcome
        })
    }
}

impl Run<'_, '_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, outcome: Outcome) {
        let mut st = self.lock();
        if st.failure.is_none() {
            st.failure = Some(outcome);
        }
        self.cancel.store(true, Ordering::SeqCst);
        drop(st);
        self.changed.notify_all();
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn save(&self, st: &mut State) {
        if let Some(path) = self.ranges_file {
            st.saved_at = Instant::now();
            let _ = write_ranges(path, self.size, &st.chunks);
        }
    }

    /// Takes the next pending chunk, or the second half of the largest range in flight.
    /// Returns the chunk's start (its identity).
    fn take(&self, st: &mut State) -> Option<u64> {
        if let Some(c) = st.chunks.iter_mut().find(|c| !c.active && c.remaining() > 0) {
            c.active = true;
            return Some(c.start);
        }
        let (i, c) =
            st.chunks.iter().enumerate().filter(|(_, c)| c.active).max_by_key(|(_, c)| c.remaining())?;
        if c.remaining() < 2 * MIN_SPLIT {
            return None;
        }
        let cur = c.start + c.done;
        let mid = cur + c.remaining() / 2;
        let tail = Chunk { start: mid, end: c.end, done: 0, active: true };
        st.chunks[i].end = mid;
        st.chunks.insert(i + 1, tail);
        Some(mid)
    }

    fn worker(&self, w: usize) {
        if w > 0 {
            // With several connections, wait until the first response shows ranges work.
            let mut st = self.lock();
            while st.ranges_ok.is_none() && !self.cancelled() {
                st = self
                    .changed
                    .wait_timeout(st, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if st.ranges_ok != Some(true) {
                return;
            }
        }
        let mut buf = vec![0u8; BUF_SIZE];
        while !self.cancelled() {
            let Some(start) = ({
                let mut st = self.lock();
                self.take(&mut st)
            }) else {
                return;
            };
            self.fetch_chunk(start, &mut buf);
        }
    }

    /// The chunk that starts at `start`: (next offset to write, end).
    fn position(&self, st: &State, start: u64) -> Option<(u64, u64)> {
        st.chunks.iter().find(|c| c.start == start).map(|c| (c.start + c.done, c.end))
    }

    fn finish_chunk(&self, start: u64) {
        let mut st = self.lock();
        if let Some(c) = st.chunks.iter_mut().find(|c| c.start == start) {
            c.active = false;
        }
        self.save(&mut st);
    }

    fn fetch_chunk(&self, start: u64, buf: &mut [u8]) {
        let t = self.t;
        let single = self.ranges_file.is_none();
        let mut failures = 0u32;
        loop {
            if self.cancelled() {
                return;
            }
            let (validator, pos) = {
                let st = self.lock();
                (st.validator.clone(), self.position(&st, start))
            };
            let Some((cur, end)) = pos else { return };
            if cur >= end {
                return self.finish_chunk(start);
            }
            let request = FetchRequest {
                offset: cur,
                end: if single && end == self.size { None } else { Some(end) },
                if_range: validator,
            };
            let (reason, retry_after, progressed) = match t.source.fetch(t.entry, &request) {
                Err(SourceError::NotFound) => return self.fail(Outcome::NotFound),
                Err(SourceError::Failed { kind, reason }) => return self.fail(Outcome::Failed(kind, reason)),
                Err(SourceError::Transient { reason, retry_after }) => (reason, retry_after, false),
                Ok(mut fetch) => {
                    if let Some(total) = fetch.total.filter(|&n| n != self.size) {
                        let mut head = [0u8; 16];
                        let n = if fetch.start == 0 { read_up_to(&mut fetch.body, &mut head) } else { 0 };
                        if n > 0 && !head.starts_with(&MAGIC[..n.min(MAGIC.len())]) {
                            return self.fail(not_gguf(&fetch.location, &head[..n]));
                        }
                        return self.fail(Outcome::Failed(
                            ErrorKind::Integrity,
                            format!("{} has {total} bytes, the catalog says {}", fetch.location, self.size),
                        ));
                    }
                    let mut skip = 0;
                    if fetch.start != cur {
                        if fetch.start != 0 {
                            return self.fail(Outcome::Failed(
                                ErrorKind::Network,
                                format!("{} served bytes from {}, not {cur}", fetch.location, fetch.start),
                            ));
                        }
                        if !single {
                            self.lock().ranges_ok = Some(false);
                            return self.fail(Outcome::RangesUnsupported);
                        }
                        skip = cur; // the range was ignored: drop what is already on disk
                    }
                    {
                        let mut st = self.lock();
                        if st.ranges_ok.is_none() {
                            st.ranges_ok = Some(true);
                            self.changed.notify_all();
                        }
                        if fetch.validator.is_some() && fetch.validator != st.validator {
                            st.validator = fetch.validator.clone();
                            if let Some(v) = &st.validator {
                                let _ = fs::write(t.validator_file, v);
                            }
                        }
                    }
                    match self.stream(start, &mut fetch.body, &fetch.location, skip, buf) {
                        Ok(true) => return self.finish_chunk(start),
                        Ok(false) => return, // cancelled or failed
                        Err((reason, progressed)) => (reason, None, progressed),
                    }
                }
            };
            failures = if progressed { 1 } else { failures + 1 };
            if failures >= t.retry.attempts {
                return self.fail(Outcome::Failed(
                    ErrorKind::Network,
                    format!("{reason} (gave up after {failures} tries in a row)"),
                ));
            }
            let backoff = t.retry.base.saturating_mul(1 << (failures - 1).min(16));
            let delay = retry_after.unwrap_or(backoff).min(t.retry.max_delay);
            if let Some(f) = t.progress {
                f(&Progress::Retrying { model: &self.name, source: t.label, reason: &reason, delay });
            }
            std::thread::sleep(delay);
        }
    }

    /// Streams one response into the chunk. `Ok(true)`: the chunk is complete; `Ok(false)`:
    /// stopped (cancelled or failed); `Err((reason, progressed))`: the transfer broke.
    fn stream(
        &self,
        start: u64,
        body: &mut dyn Read,
        location: &str,
        mut skip: u64,
        buf: &mut [u8],
    ) -> Result<bool, (String, bool)> {
        let mut progressed = false;
        loop {
            if self.cancelled() {
                return Ok(false);
            }
            let n = match body.read(buf) {
                Ok(0) => {
                    let complete = self.position(&self.lock(), start).is_none_or(|(cur, end)| cur >= end);
                    return if complete {
                        Ok(true)
                    } else {
                        Err((format!("{location}: the transfer ended early"), progressed))
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err((format!("{location}: {e}"), progressed)),
            };
            let mut data = &buf[..n];
            if skip > 0 {
                let k = (skip as usize).min(data.len());
                skip -= k as u64;
                data = &data[k..];
                if data.is_empty() {
                    continue;
                }
            }
            let Some((cur, end)) = self.position(&self.lock(), start) else { return Ok(false) };
            // Safe against a concurrent split: a split leaves at least MIN_SPLIT (more than
            // one buffer) before the new end.
            let take = data.len().min((end - cur) as usize);
            let data = &data[..take];
            if cur < MAGIC.len() as u64 {
                let at = cur as usize;
                let k = (MAGIC.len() - at).min(data.len());
                if data[..k] != MAGIC[at..at + k] {
                    self.fail(not_gguf(location, &data[..data.len().min(16)]));
                    return Ok(false);
                }
            }
            if let Err(e) = write_at(self.t.file, data, cur) {
                let e = if e.kind() == std::io::ErrorKind::StorageFull {
                    let written = self.lock().written;
                    let need = self.size - written;
                    std::io::Error::new(
                        e.kind(),
                        format!("{e}: {need} more bytes are needed ({:.1} MB)", need as f64 / 1e6),
                    )
                } else {
                    e
                };
                self.fail(Outcome::Storage(RegistryError::storage("write", self.t.partial, e)));
                return Ok(false);
            }
            progressed = true;
            let written = {
                let mut st = self.lock();
                if let Some(c) = st.chunks.iter_mut().find(|c| c.start == start) {
                    c.done += take as u64;
                }
                st.written += take as u64;
                if st.saved_at.elapsed() > Duration::from_secs(1) {
                    self.save(&mut st);
                }
                st.written
            };
            self.changed.notify_all();
            if let Some(f) = self.t.progress {
                f(&Progress::Advanced { model: &self.name, done: written, total: self.size });
            }
            if let Some(l) = &self.limiter {
                l.take(take);
            }
            if cur + take as u64 >= end {
                return Ok(true);
            }
        }
    }

    /// The hasher: follows the contiguous prefix in order until the whole file is hashed or
    /// the transfer fails.
    fn follow(&self, mut hasher: Sha256, mut hashed: u64) -> Outcome {
        let mut buf = vec![0u8; HASH_BUF];
        loop {
            let prefix = {
                let mut st = self.lock();
                loop {
                    if let Some(f) = st.failure.take() {
                        return f;
                    }
                    let prefix = Plan::prefix(&st.chunks);
                    if prefix > hashed || hashed == self.size {
                        break prefix;
                    }
                    if self.alive.load(Ordering::SeqCst) == 0 {
                        return Outcome::Failed(
                            ErrorKind::Network,
                            "the transfer stopped before the end".into(),
                        );
                    }
                    st = self
                        .changed
                        .wait_timeout(st, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            if hashed == self.size {
                return Outcome::Done(crate::resolver::hex(&hasher.finalize()));
            }
            while hashed < prefix {
                let n = ((prefix - hashed) as usize).min(buf.len());
                if let Err(e) = read_at(self.t.file, &mut buf[..n], hashed) {
                    self.cancel.store(true, Ordering::SeqCst);
                    return Outcome::Storage(RegistryError::storage("read back", self.t.partial, e));
                }
                hasher.update(&buf[..n]);
                hashed += n as u64;
            }
        }
    }
}

#[cfg(unix)]
fn write_at(file: &fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(unix)]
fn read_at(file: &fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &fs::File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, data, offset)?;
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

pub(crate) fn not_gguf(location: &str, head: &[u8]) -> Outcome {
    Outcome::Failed(
        ErrorKind::Integrity,
        format!(
            "{location} did not send a GGUF file (it starts with {:?}; an error page?)",
            String::from_utf8_lossy(head)
        ),
    )
}

/// Reads until `buf` is full or the stream ends or fails; returns the bytes read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_the_file_and_the_prefix_follows_done_chunks() {
        let chunks = Plan::fresh(100 << 20, 3 << 20, 8);
        assert_eq!(chunks[0], Chunk::new(0, 3 << 20, 3 << 20));
        assert_eq!(chunks.last().unwrap().end, 100 << 20);
        assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(Plan::prefix(&chunks), 3 << 20);
        let mut c = chunks.clone();
        c[1].done = c[1].end - c[1].start;
        c[2].done = 5;
        assert_eq!(Plan::prefix(&c), c[2].start + 5);
        assert_eq!(Plan::fresh(10, 0, 1), [Chunk::new(0, 10, 0)]);
        assert_eq!(Plan::fresh(10, 10, 4), [Chunk::new(0, 10, 10)]);
    }

    #[test]
    fn ranges_files_round_trip_and_reject_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let chunks = vec![Chunk::new(0, 10, 10), Chunk::new(10, 25, 3), Chunk::new(25, 40, 0)];
        fs::write(&path, ranges_text(40, &chunks)).unwrap();
        assert_eq!(read_ranges(&path, 40).unwrap(), chunks);
        assert!(read_ranges(&path, 41).is_none());
        fs::write(&path, "v1 40\n0 10 10\n11 40 0\n").unwrap();
        assert!(read_ranges(&path, 40).is_none(), "a gap");
        fs::write(&path, "v1 40\n0 10 11\n10 40 0\n").unwrap();
        assert!(read_ranges(&path, 40).is_none(), "more done than the chunk");
    }
}
