//! The transfer engine: one or more connections fetch ranges of a file and write them at
//! their offsets into the partial file, while a hasher follows the contiguous written prefix
//! in order, so the SHA-256 is ready moments after the last byte arrives, with no second pass
//! over the file once it is complete.
//!
//! Each connection takes the front of the next pending chunk, half its fair share of what is
//! unassigned (guided: ranges shrink toward the end, so connections finish together); when
//! nothing is left, an idle one takes over half of a range that would take more than
//! `STEAL_AFTER` to finish at its own rate. With more than one connection the partial is
//! preallocated and per-chunk progress is kept beside it (`<file>.part.ranges`), so an
//! interruption costs only the bytes in flight. Memory is one fixed buffer per connection plus
//! one for the hasher, whatever the file size.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::limiter::Limiter;
pub(crate) use super::plan::{Plan, MIN_CHUNK};
use super::retry::Backoff;
use super::stop::{not_gguf, Cancel, Stop};
use crate::catalog::ModelEntry;
use crate::config::RetryPolicy;
use crate::digest::{hex, Digest, Sha256, HASH_BUF};
use crate::error::{ErrorKind, RegistryError, Report, SourceError};
use crate::fs::{read_at, write_at};
use crate::gguf::MAGIC;
use crate::progress::{Progress, Reporter};
use crate::size::ByteSize;
use crate::sources::{FetchRequest, ModelSource};
use crate::store::ranges::{self, Chunk};
use crate::store::ModelFiles;

/// Read buffer per connection (32 connections stay under 32 MiB of RSS in all).
const BUF_SIZE: usize = 128 * 1024;
/// The hasher is woken each time a range crosses a multiple of this.
const HASH_STEP: u64 = 1 << 20;
/// A range in flight is split only when it would take longer than this to finish at its rate.
const STEAL_AFTER: Duration = Duration::from_millis(150);
/// A range in flight is split only when at least twice this much of it remains.
const MIN_SPLIT: u64 = 1024 * 1024;
/// Rate-limit waits per range before giving up (each at most `rate_limit_wait`).
const MAX_RATE_LIMIT_WAITS: u32 = 10;

struct State {
    chunks: Vec<Chunk>,
    failure: Option<Stop>,
    /// With several connections: whether the source honours ranges (known after the first
    /// response).
    ranges_ok: Option<bool>,
    written: u64,
    saved_at: Instant,
    validator: Option<String>,
    /// When each range in flight was taken, and its bytes on disk then (its rate since).
    taken: HashMap<u64, (Instant, u64)>,
}

/// What an idle connection does next.
enum Next {
    /// Fetch the range that starts here.
    Range(u64),
    /// Wait: a range in flight may yet turn out slow enough to split.
    Wait,
    /// Nothing is left to fetch or to split.
    Done,
}

/// Everything the connections and the hasher share.
pub(crate) struct Transfer<'a> {
    pub source: &'a dyn ModelSource,
    pub label: &'a str,
    pub entry: &'a ModelEntry,
    pub files: &'a ModelFiles,
    pub file: &'a fs::File,
    pub retry: RetryPolicy,
    pub progress: Reporter<'a>,
    pub max_rate: Option<u64>,
    pub cancel: Cancel<'a>,
}

struct Run<'a, 'b> {
    t: &'b Transfer<'a>,
    name: String,
    size: u64,
    connections: u64,
    parallel: bool,
    state: Mutex<State>,
    changed: Condvar,
    cancel: AtomicBool,
    alive: AtomicUsize,
    limiter: Option<Limiter>,
    /// Bytes on disk when the run began.
    resumed_from: u64,
    /// `Progress::Started` is sent once, when the source first answers with the file.
    announced: std::sync::Once,
}

impl Transfer<'_> {
    /// Runs `plan` with `connections` connections, the hasher starting from `hasher`, which
    /// has hashed the plan's contiguous prefix already. Returns the SHA-256 of the whole
    /// file, lower-case hex, once every byte is on disk.
    pub(crate) fn run(&self, plan: Plan, connections: usize, hasher: Sha256) -> Result<String, Stop> {
        let size = self.entry.size_bytes;
        let written: u64 = plan.chunks.iter().map(|c| c.done).sum();
        let hashed = ranges::prefix(&plan.chunks);
        let multi = plan.parallel;
        let validator = self.files.read_validator().filter(|_| written > 0);
        let run = Run {
            t: self,
            name: self.entry.file_label(),
            size,
            connections: connections.max(1) as u64,
            parallel: plan.parallel,
            state: Mutex::new(State {
                chunks: plan.chunks,
                failure: None,
                ranges_ok: if multi && connections > 1 { None } else { Some(true) },
                written,
                saved_at: Instant::now(),
                validator,
                taken: HashMap::new(),
            }),
            changed: Condvar::new(),
            cancel: AtomicBool::new(false),
            alive: AtomicUsize::new(connections.max(1)),
            limiter: self.max_rate.filter(|&r| r > 0).map(|rate| Limiter {
                rate,
                started: Instant::now(),
                bytes: Mutex::new(0),
            }),
            resumed_from: written,
            announced: std::sync::Once::new(),
        };
        // The caller's subscriber and span go with the connections (a scoped subscriber too).
        let context = crate::trace::Context::current();
        // A connection whose thread unwinds (a progress callback that panicked) is counted
        // out and stops the transfer, instead of leaving the hasher waiting for it; its panic
        // goes on to the caller, as it is (the partial stays resumable).
        let panicked: Mutex<Option<Box<dyn std::any::Any + Send>>> = Mutex::new(None);
        let outcome = std::thread::scope(|s| {
            for w in 0..connections.max(1) {
                let (run, context, panicked) = (&run, &context, &panicked);
                s.spawn(move || {
                    let _traced = context.enter();
                    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.worker(w))) {
                        run.fail(Stop::Source(SourceError::failed(
                            ErrorKind::Network,
                            "a connection's thread panicked",
                        )));
                        panicked.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
                    }
                    run.alive.fetch_sub(1, Ordering::SeqCst);
                    run.changed.notify_all();
                });
            }
            let outcome = run.follow(hasher, hashed);
            run.cancel.store(true, Ordering::SeqCst);
            run.changed.notify_all();
            outcome
        });
        if let Some(p) = panicked.into_inner().unwrap_or_else(|e| e.into_inner()) {
            std::panic::resume_unwind(p);
        }
        if matches!(outcome, Err(Stop::Cancelled)) {
            run.save(&mut run.lock()); // every connection has stopped: exactly what is on disk
        }
        outcome
    }
}

impl Run<'_, '_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, outcome: Stop) {
        let mut st = self.lock();
        if st.failure.is_none() {
            st.failure = Some(outcome);
        }
        self.cancel.store(true, Ordering::SeqCst);
        drop(st);
        self.changed.notify_all();
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.t.cancel.is_set()
    }

    fn save(&self, st: &mut State) {
        if self.parallel {
            st.saved_at = Instant::now();
            let _ = ranges::write(&self.t.files.ranges_path(), self.size, &st.chunks);
        }
    }

    /// Takes the front of the next pending chunk, or half of the range in flight that would
    /// take longest to finish at its own rate when that is more than [`STEAL_AFTER`] (a split
    /// costs a request and cuts the other connection's response).
    fn take(&self, st: &mut State) -> Next {
        let now = Instant::now();
        if let Some(i) = st.chunks.iter().position(|c| !c.active && c.remaining() > 0) {
            // Guided: take half a fair share of what is not yet assigned, so that ranges
            // shrink toward the end and the connections finish together.
            let unassigned: u64 = st.chunks.iter().filter(|c| !c.active).map(Chunk::remaining).sum();
            let share = (unassigned / (2 * self.connections)).max(MIN_CHUNK);
            let c = st.chunks[i];
            if self.parallel && c.done == 0 && c.remaining() > share + MIN_CHUNK {
                let mid = c.start + share;
                st.chunks[i].end = mid;
                st.chunks.insert(i + 1, Chunk::new(mid, c.end, 0));
            }
            let c = &mut st.chunks[i];
            c.active = true;
            let (start, done) = (c.start, c.done);
            st.taken.insert(start, (now, done));
            return Next::Range(start);
        }
        let eta = |c: &Chunk| -> Duration {
            let Some(&(since, base)) = st.taken.get(&c.start) else { return Duration::ZERO };
            let (elapsed, got) = (now - since, c.done - base);
            if got == 0 {
                return if elapsed > STEAL_AFTER { Duration::MAX } else { Duration::ZERO };
            }
            Duration::from_secs_f64(c.remaining() as f64 * elapsed.as_secs_f64() / got as f64)
        };
        let splittable =
            st.chunks.iter().enumerate().filter(|(_, c)| c.active && c.remaining() >= 2 * MIN_SPLIT);
        let Some((i, c, eta)) = splittable.map(|(i, c)| (i, c, eta(c))).max_by_key(|(_, _, eta)| *eta) else {
            return Next::Done;
        };
        if eta <= STEAL_AFTER {
            return Next::Wait;
        }
        let mid = c.start + c.done + c.remaining() / 2;
        let tail = Chunk { start: mid, end: c.end, done: 0, active: true };
        st.chunks[i].end = mid;
        st.chunks.insert(i + 1, tail);
        st.taken.insert(mid, (now, 0));
        Next::Range(mid)
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
            let start = {
                let mut st = self.lock();
                loop {
                    match self.take(&mut st) {
                        Next::Range(start) => break start,
                        Next::Done => return,
                        Next::Wait => {
                            st = self
                                .changed
                                .wait_timeout(st, Duration::from_millis(50))
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                            if self.cancelled() {
                                return;
                            }
                        }
                    }
                }
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
        let single = !self.parallel;
        let mut backoff = Backoff::new(t.retry);
        let (mut waits, mut whole_file_once) = (0u32, false);
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
            // Slow connections made by this fetch are reported too (`Progress::Connecting`).
            let fetched =
                crate::sources::reporting_connects_to(t.progress.0, || t.source.fetch(t.entry, &request));
            let (error, progressed) = match fetched {
                Err(e @ SourceError::Transient { .. }) => (e, false),
                Err(SourceError::RateLimited { reason, wait }) => {
                    waits += 1;
                    if wait > t.retry.rate_limit_wait || waits > MAX_RATE_LIMIT_WAITS {
                        return self.fail(Stop::Source(SourceError::Transient {
                            reason: format!(
                                "{reason}: the server asks to wait {} s, longer than this download waits \
                                 ({} s); try again later (on the Hub, HF_TOKEN raises the limits)",
                                wait.as_secs(),
                                t.retry.rate_limit_wait.as_secs()
                            ),
                            retry_after: Some(wait),
                            cause: None,
                        }));
                    }
                    t.progress.send(Progress::Retrying {
                        model: &self.name,
                        source: t.label,
                        reason: &format!("{reason}; waiting for the limit to reset"),
                        delay: wait,
                    });
                    self.sleep(wait);
                    continue; // a wait the server asked for is not a failure
                }
                Err(e) => return self.fail(Stop::Source(e)),
                Ok(mut fetch) => {
                    if let Some(total) = fetch.total.filter(|&n| n != self.size) {
                        let mut head = [0u8; 16];
                        let n = if fetch.start == 0 {
                            crate::fs::read_up_to(&mut fetch.body, &mut head)
                        } else {
                            0
                        };
                        if n > 0 && !head.starts_with(&MAGIC[..n.min(MAGIC.len())]) {
                            return self.fail(not_gguf(&fetch.location, &head[..n]));
                        }
                        return self.fail(Stop::Source(SourceError::WrongSize {
                            location: fetch.location,
                            actual: total,
                            expected: self.size,
                        }));
                    }
                    {
                        let mut st = self.lock();
                        if fetch.validator.is_some() && fetch.validator != st.validator {
                            st.validator = fetch.validator.clone();
                            if let Some(v) = &st.validator {
                                t.files.write_validator(v);
                            }
                        }
                    }
                    let mut skip = 0;
                    if fetch.start != cur {
                        if fetch.start != 0 {
                            // Neither the range asked for nor the whole file: not retried.
                            return self.fail(Stop::Source(SourceError::Protocol {
                                reason: format!("the source served bytes from {}, not {cur}", fetch.start),
                                location: fetch.location,
                            }));
                        }
                        if !single {
                            // The whole file for a range: its validator changed (recorded
                            // above) or the server ignores ranges. Keep every chunk on disk,
                            // ask for this range once more, then give up on ranges.
                            drop(fetch);
                            if !whole_file_once {
                                whole_file_once = true;
                                continue;
                            }
                            self.lock().ranges_ok = Some(false);
                            return self.fail(Stop::RangesUnsupported);
                        }
                        skip = cur; // the range was ignored: drop what is already on disk
                    }
                    {
                        let mut st = self.lock();
                        if st.ranges_ok.is_none() {
                            st.ranges_ok = Some(true);
                            self.changed.notify_all();
                        }
                    }
                    // Said once the source has answered with the file, not before: a mirror
                    // that lacks it is not announced as downloading.
                    self.announced.call_once(|| {
                        t.progress.send(Progress::Started {
                            model: &self.name,
                            source: t.label,
                            resumed_from: self.resumed_from,
                            total: self.size,
                        })
                    });
                    match self.stream(start, &mut fetch.body, &fetch.location, skip, buf) {
                        Ok(true) => return self.finish_chunk(start),
                        Ok(false) => return, // cancelled or failed
                        Err(broken) => broken,
                    }
                }
            };
            let Some(delay) = backoff.failed(&error, progressed) else {
                let tries = backoff.tries();
                return self.fail(Stop::Source(SourceError::GaveUp { tries, last: Box::new(error) }));
            };
            let reason = Report::new(&error).to_string();
            t.progress.send(Progress::Retrying {
                model: &self.name,
                source: t.label,
                reason: &reason,
                delay,
            });
            self.sleep(delay);
        }
    }

    /// Sleeps for `delay`, or less when the transfer is cancelled meanwhile.
    fn sleep(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut st = self.lock();
        while !self.cancelled() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            let slice = (until - now).min(Duration::from_millis(100)); // a caller's cancel is not notified
            st = self.changed.wait_timeout(st, slice).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Streams one response into the chunk. `Ok(true)`: the chunk is complete; `Ok(false)`:
    /// stopped (cancelled or failed); `Err((error, progressed))`: the transfer broke.
    fn stream(
        &self,
        start: u64,
        body: &mut dyn Read,
        location: &str,
        mut skip: u64,
        buf: &mut [u8],
    ) -> Result<bool, (SourceError, bool)> {
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
                        Err((
                            SourceError::transient(format!("{location}: the transfer ended early")),
                            progressed,
                        ))
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err((SourceError::transient_by(location, e), progressed)),
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
                        format!("{e}: {need} more bytes are needed ({})", ByteSize(need)),
                    )
                } else {
                    e
                };
                self.fail(Stop::Storage(RegistryError::storage("write", self.t.files.partial_path(), e)));
                return Ok(false);
            }
            progressed = true;
            let next = cur + take as u64;
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
            // The hasher follows in steps: woken at each MiB of a range and at its end, not at
            // every buffer (thousands of wake-ups a second with many connections).
            if next >= end || next / HASH_STEP != cur / HASH_STEP {
                self.changed.notify_all();
            }
            self.t.progress.send(Progress::Advanced { model: &self.name, done: written, total: self.size });
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
    fn follow(&self, mut hasher: Sha256, mut hashed: u64) -> Result<String, Stop> {
        let mut buf = vec![0u8; HASH_BUF];
        loop {
            let prefix = {
                let mut st = self.lock();
                loop {
                    if let Some(f) = st.failure.take() {
                        return Err(f);
                    }
                    let prefix = ranges::prefix(&st.chunks);
                    if prefix > hashed || hashed == self.size {
                        break prefix;
                    }
                    if self.t.cancel.is_set() {
                        return Err(Stop::Cancelled);
                    }
                    if self.alive.load(Ordering::SeqCst) == 0 {
                        return Err(Stop::Source(SourceError::failed(
                            ErrorKind::Network,
                            "the transfer stopped before the end",
                        )));
                    }
                    st = self
                        .changed
                        .wait_timeout(st, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            if hashed == self.size {
                return Ok(hex(hasher));
            }
            while hashed < prefix {
                let n = ((prefix - hashed) as usize).min(buf.len());
                if let Err(e) = read_at(self.t.file, &mut buf[..n], hashed) {
                    self.cancel.store(true, Ordering::SeqCst);
                    return Err(Stop::Storage(RegistryError::storage(
                        "read back",
                        self.t.files.partial_path(),
                        e,
                    )));
                }
                hasher.update(&buf[..n]);
                hashed += n as u64;
            }
        }
    }
}
