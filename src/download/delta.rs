//! A delta as a transfer strategy: the new version of a file rebuilt from the verified old
//! version on disk plus only the chunks that changed, fetched from the Hub's Xet storage
//! (hub-docs `docs/xet/`; xet-core; huggingface.js `XetBlob.ts`). `update` asks for it.
//!
//! Round trips, against a plain download's two (the Hub's resolve, then the bytes):
//! 1. at once: the new file's resolution (its `X-Xet-Hash`; the same one a plain download
//!    makes, kept for it), the old file's (its Xet id) and a read token — while the old file
//!    is chunked and hashed locally;
//! 2. both files' reconstructions, at once;
//! 3. the xorb ranges that hold the new file's changed chunks, each xorb's in one request.
//!
//! The new file is written in order into its partial download and hashed as written: it is
//! installed only when its SHA-256 is the catalog's. A file that mostly changed is not worth
//! a delta: the plain download goes on from the resolution already made (one round trip
//! more than a plain download: step 2). Any failure falls back to the plain download with
//! one notice; the old file is only ever read.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::base::{prepare, read_old, Base, OldId};
use super::limiter::Limiter;
use super::resolver::Resolver;
use super::stop::Cancel;
use crate::catalog::ModelEntry;
use crate::digest::{hex, Digest, Sha256};
use crate::error::{RegistryError, Report, Result, SourceError};
use crate::progress::Progress;
use crate::sources::xet::client::{XetToken, XorbFetchError};
use crate::sources::xet::reconstruction::{Piece, Plan, Reconstruction, Span};
use crate::sources::xet::xorb::decode_chunks;
use crate::sources::HttpSource;
use crate::store::{ModelFiles, Provenance};

/// The most fetched chunks held in memory at once (256 MiB at most once decompressed); a
/// delta that needs more is not made (the plain download is).
const MAX_HELD_CHUNKS: u64 = 2048;

/// Why no delta was made.
enum Skip {
    /// It does not apply (no Xet, a file that mostly changed): the plain download, no notice.
    Plain(String),
    /// It failed: the plain download, with one notice.
    Failed(String),
    Cancelled,
    Storage(RegistryError),
}

fn failed(what: &str, e: &SourceError) -> Skip {
    Skip::Failed(format!("{what}: {}", Report::new(e)))
}

/// What a delta did.
struct Built {
    /// The new file's Xet id.
    xet_id: String,
    fetched: u64,
    reused: u64,
}

impl Resolver<'_> {
    /// Rebuilds `entry`'s file into `work`'s partial from `base` and Xet, and installs it: `Ok(true)` when done, `Ok(false)` when the plain download is to
    /// be made (after one notice when the delta failed).
    pub(super) fn fetch_delta(&self, entry: &ModelEntry, work: &ModelFiles, base: &Base<'_>) -> Result<bool> {
        // Only where the Hub is the first source: a mirror, a bucket or a registry configured
        // before it (an air-gapped site) serves the file as before.
        let Some(hub) = self.sources_for(entry).first().and_then(|s| crate::sources::hub(*s)) else {
            return Ok(false);
        };
        if work.partial_bytes().is_some_and(|n| n > 0) {
            crate::trace::emit!(DEBUG, "a partial download is there: resumed, no delta");
            return Ok(false);
        }
        // The old file must still be the verified one (another update may have replaced it).
        if base.files.verified_as().as_deref() != Some(base.sha256.as_str()) {
            crate::trace::emit!(DEBUG, "the old file is not the verified old version any more: no delta");
            return Ok(false);
        }
        // A partial that is not a regular file (a link planted there) is never written through.
        let partial = work.partial_path();
        if fs::symlink_metadata(&partial).is_ok_and(|m| !m.is_file()) {
            fs::remove_file(&partial).map_err(|e| RegistryError::storage("delete", &partial, e))?;
        }
        // Opened before any request: a directory that cannot be written fails here, as a
        // plain download would, before anything is fetched.
        let mut opts = fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(true);
        crate::fs::no_follow(&mut opts);
        let out = opts.open(&partial).map_err(|e| RegistryError::storage("open", &partial, e))?;
        let started = Instant::now();
        let name = entry.file_label();
        let mut fetched = 0;
        match self.build(hub, entry, (&partial, out), base, &mut fetched) {
            Ok(built) => {
                let old = base.sha256.get(..12).unwrap_or_default();
                let source = format!("Xet, from {hub} and the earlier version (SHA-256 {old}…) on disk");
                super::partial::install(
                    self.dir,
                    work,
                    &work.partial_path(),
                    &Provenance::Source { source, xet_hash: Some(built.xet_id.clone()) },
                )?;
                crate::trace::record("outcome", "rebuilt");
                self.progress.send(Progress::Rebuilt {
                    model: &name,
                    bytes: entry.size_bytes,
                    fetched: built.fetched,
                    reused: built.reused,
                    elapsed: started.elapsed(),
                });
                Ok(true)
            }
            Err(Skip::Plain(why)) => {
                crate::trace::emit!(INFO, why = %why, "no delta: the whole file is fetched");
                Ok(false)
            }
            Err(Skip::Failed(reason)) => {
                work.discard_partial();
                self.progress.send(Progress::DeltaFailed { model: &name, reason: &reason, fetched });
                Ok(false)
            }
            Err(Skip::Cancelled) => Err(super::stop::cancelled(entry, work)),
            Err(Skip::Storage(e)) => Err(e),
        }
    }

    /// The three rounds, then the new file written.
    fn build(
        &self,
        hub: &HttpSource,
        new: &ModelEntry,
        out: (&Path, fs::File),
        base: &Base<'_>,
        fetched: &mut u64,
    ) -> Result<Built, Skip> {
        let facts = self.first_round(hub, new, base)?;
        let mut rebuild = Rebuild::plan(hub, new, base, facts)?;
        // The xorb ranges under the transfer's rate cap, stopped when the call is cancelled.
        let limiter = self.max_rate.filter(|&r| r > 0).map(|rate| Limiter {
            rate,
            started: Instant::now(),
            bytes: std::sync::Mutex::new(0),
        });
        let pace = |n: usize| {
            if let Some(l) = &limiter {
                l.take(n);
            }
            !self.cancel.is_set()
        };
        let chunks = rebuild.fetch_changed(self.cancel, &pace, fetched)?;
        self.progress.send(Progress::Rebuilding {
            model: &new.file_label(),
            bytes: new.size_bytes,
            fetched: *fetched,
        });
        write(&rebuild.plan, &chunks, &base.path, out, new, self.cancel)?;
        Ok(Built { xet_id: rebuild.new_id, fetched: *fetched, reused: rebuild.plan.reused() })
    }

    /// 1. The new file's resolution (kept for a plain download), the old file's Xet id and a
    ///    token — unless known or asked ahead —; the old file chunked and hashed meanwhile
    ///    (stopped as soon as there is no delta to make), and found unchanged.
    fn first_round(&self, hub: &HttpSource, new: &ModelEntry, base: &Base<'_>) -> Result<Facts, Skip> {
        let stop = AtomicBool::new(false);
        let stopped = || self.cancel.is_set() || stop.load(Ordering::Relaxed);
        let mut facts = std::thread::scope(|s| {
            let local = match &base.id {
                OldId::Prepared(..) => None,
                _ => Some(s.spawn(|| read_old(&base.path, &stopped))),
            };
            let asked = match &base.id {
                OldId::Resolve(entry) => {
                    let old = [(*entry, &base.files)];
                    Some(s.spawn(move || prepare(hub, new, &old, &|| false, false)))
                }
                OldId::Known(_) => Some(s.spawn(|| prepare(hub, new, &[], &|| false, false))),
                OldId::Prepared(..) => None,
            };
            let ids = || {
                let new_id = hub.xet_file_id(new);
                let asked = asked.map(joined).transpose()?;
                let (prepared, old_id, ahead) = match (&base.id, &asked) {
                    (OldId::Known(id), Some(p)) => (p, Ok(Some(id.clone())), None),
                    (OldId::Resolve(entry), Some(p)) => (p, p.old_id(&entry.hf_filename), None),
                    (OldId::Prepared(p, name), _) => (*p, p.old_id(name), p.old_local(name)),
                    _ => return Err(Skip::Failed("nothing asked".into())),
                };
                let Some(new_id) = new_id.map_err(|e| failed("resolving the new file", &e))? else {
                    return Err(Skip::Plain("the Hub does not store the new file in Xet".into()));
                };
                let Some(old_id) = old_id.map_err(Skip::Failed)? else {
                    return Err(Skip::Plain("the Hub does not store the old file in Xet".into()));
                };
                let token = prepared.token.clone().map_err(Skip::Failed)?;
                Ok((new_id, old_id, token, ahead))
            };
            let (new_id, old_id, token, ahead) =
                ids().inspect_err(|_| stop.store(true, Ordering::Relaxed))?;
            let local = match (local, ahead) {
                (Some(h), _) => joined(h)?,
                (None, Some(l)) => l,
                (None, None) => Err("the old file was not read".into()),
            };
            let (lengths, sha256) = match local {
                Ok(l) => l,
                Err(_) if self.cancel.is_set() => return Err(Skip::Cancelled),
                Err(why) => return Err(Skip::Failed(why)),
            };
            Ok::<_, Skip>(Facts { new_id, old_id, token, lengths, sha256 })
        })?;
        if !facts.token.is_fresh() {
            facts.token = hub
                .xet_read_token(&new.hf_repo, &new.revision)
                .map_err(|e| failed("asking for a new Xet read token", &e))?;
        }
        if facts.sha256 != base.sha256 {
            return Err(Skip::Failed(format!(
                "the old file changed on disk since it was verified (its SHA-256 is now {})",
                facts.sha256
            )));
        }
        Ok(facts)
    }
}

/// What the first round learnt.
struct Facts {
    new_id: String,
    old_id: String,
    token: XetToken,
    /// The old file's chunk lengths and SHA-256.
    lengths: Vec<u32>,
    sha256: String,
}

/// A delta under way: both reconstructions and the plan.
struct Rebuild<'a> {
    hub: &'a HttpSource,
    new: &'a ModelEntry,
    new_id: String,
    token: XetToken,
    rec: Reconstruction,
    old_rec: Reconstruction,
    lengths: Vec<u32>,
    plan: Plan,
}

impl<'a> Rebuild<'a> {
    /// 2. Both reconstructions (they must add up to each file's size), and the plan: worth it
    ///    when at least half the new file is in the old one, and bounded in what it holds.
    fn plan(hub: &'a HttpSource, new: &'a ModelEntry, base: &Base<'_>, facts: Facts) -> Result<Self, Skip> {
        let Facts { new_id, old_id, token, lengths, .. } = facts;
        let (new_rec, old_rec) = std::thread::scope(|s| {
            let old = s.spawn(|| hub.xet_reconstruction(&token, &old_id));
            let new = hub.xet_reconstruction(&token, &new_id);
            Ok::<_, Skip>((new, joined(old)?))
        })?;
        let rec = new_rec.map_err(|e| failed("asking the new file's reconstruction", &e))?;
        let old_rec = old_rec.map_err(|e| failed("asking the old file's reconstruction", &e))?;
        check_size(&rec, new.size_bytes, "new")?;
        check_size(&old_rec, base.size, "old")?;
        let plan = Plan::new(&rec, &old_rec.terms, &lengths).map_err(Skip::Failed)?;
        if plan.reused() < new.size_bytes / 2 {
            return Err(Skip::Plain(format!(
                "only {} of its {} bytes are in the old file",
                plan.reused(),
                new.size_bytes
            )));
        }
        // Fetched chunks are held until written: 128 KiB each at most once decompressed.
        let held: u64 = plan
            .fetches
            .iter()
            .filter_map(|(x, i)| rec.fetches.get(x)?.get(*i))
            .flat_map(|f| f.ranges.iter().map(|(c, _)| c.end - c.start))
            .sum();
        if held > MAX_HELD_CHUNKS {
            return Err(Skip::Plain(format!("{held} changed chunks to fetch, more than a delta holds")));
        }
        Ok(Self { hub, new, new_id, token, rec, old_rec, lengths, plan })
    }

    /// 3. The changed chunks, decoded; a refused signed URL (expired) gets a new token and
    ///    new URLs, once.
    fn fetch_changed(
        &mut self,
        cancel: Cancel<'_>,
        pace: &dyn Fn(usize) -> bool,
        fetched: &mut u64,
    ) -> Result<HashMap<(String, u64), Vec<u8>>, Skip> {
        let mut chunks: HashMap<(String, u64), Vec<u8>> = HashMap::new();
        let (mut refreshed, mut i) = (false, 0);
        while let Some((xorb, k)) = self.plan.fetches.get(i) {
            if cancel.is_set() {
                return Err(Skip::Cancelled);
            }
            let Some(fetch) = self.rec.fetches.get(xorb).and_then(|f| f.get(*k)) else {
                return Err(Skip::Failed("a plan names a fetch the reconstruction lacks".into()));
            };
            let have =
                |(c, _): &(Span, Span)| (c.start..c.end).all(|n| chunks.contains_key(&(xorb.clone(), n)));
            if fetch.ranges.iter().all(have) {
                i += 1;
                continue;
            }
            let answer = self.hub.xet_fetch(fetch, pace);
            if cancel.is_set() {
                return Err(Skip::Cancelled);
            }
            match answer {
                Ok(parts) => {
                    for ((span, _), data) in fetch.ranges.iter().zip(parts) {
                        *fetched += data.len() as u64;
                        let count = usize::try_from(span.end - span.start).unwrap_or(usize::MAX);
                        let decoded = decode_chunks(&data, count).map_err(|e| {
                            Skip::Failed(format!("xorb {}…: {e}", &xorb[..12.min(xorb.len())]))
                        })?;
                        for (n, c) in (span.start..).zip(decoded) {
                            chunks.insert((xorb.clone(), n), c);
                        }
                    }
                    i += 1;
                }
                Err(XorbFetchError::Refused(e)) if !refreshed => {
                    refreshed = true;
                    crate::trace::emit!(DEBUG, error = %Report::new(&e), "a xorb fetch was refused: new token, new URLs");
                    self.refresh()?;
                    i = 0;
                }
                Err(XorbFetchError::Refused(e) | XorbFetchError::Failed(e)) => {
                    return Err(failed("fetching changed chunks", &e))
                }
            }
        }
        Ok(chunks)
    }

    /// A new token, and the new file's reconstruction again (new signed URLs, the same terms).
    fn refresh(&mut self) -> Result<(), Skip> {
        let new = self.new;
        self.token = self
            .hub
            .xet_read_token(&new.hf_repo, &new.revision)
            .map_err(|e| failed("asking for a new Xet read token", &e))?;
        let again = self
            .hub
            .xet_reconstruction(&self.token, &self.new_id)
            .map_err(|e| failed("asking the new file's reconstruction again", &e))?;
        if again.terms != self.rec.terms {
            return Err(Skip::Failed("the new file's reconstruction changed between two answers".into()));
        }
        self.rec = again;
        self.plan = Plan::new(&self.rec, &self.old_rec.terms, &self.lengths).map_err(Skip::Failed)?;
        Ok(())
    }
}

/// A scoped thread's result (a panic in it is a failed delta, not a crash).
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> Result<T, Skip> {
    h.join().map_err(|_| Skip::Failed("a thread of the delta panicked".into()))
}

/// A reconstruction must rebuild exactly the file's size.
fn check_size(rec: &Reconstruction, size: u64, which: &str) -> Result<(), Skip> {
    let terms: u64 = rec.terms.iter().fold(0u64, |a, t| a.saturating_add(t.unpacked_length));
    if rec.offset_into_first_range != 0 || terms != size {
        return Err(Skip::Failed(format!(
            "the {which} file's reconstruction adds up to {terms} bytes, the file has {size}"
        )));
    }
    Ok(())
}

/// Writes the new file into `out` in order (old bytes copied, changed chunks from `chunks`),
/// hashing it: its size and SHA-256 must be `new`'s.
fn write(
    plan: &Plan,
    chunks: &HashMap<(String, u64), Vec<u8>>,
    old_path: &Path,
    (out, mut file): (&Path, fs::File),
    new: &ModelEntry,
    cancel: Cancel<'_>,
) -> Result<(), Skip> {
    let storage = |action: &'static str, path: &Path, e: std::io::Error| {
        Skip::Storage(RegistryError::storage(action, path, e))
    };
    let old = fs::File::open(old_path).map_err(|e| Skip::Failed(format!("opening the old file: {e}")))?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut buf = vec![0u8; crate::digest::HASH_BUF];
    for piece in &plan.pieces {
        if cancel.is_set() {
            let _ = file.sync_all();
            return Err(Skip::Cancelled);
        }
        match piece {
            Piece::Old { offset, len } => {
                let mut left = *len;
                while left > 0 {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    crate::fs::read_at(&old, &mut buf[..n], offset + (len - left))
                        .map_err(|e| Skip::Failed(format!("reading the old file: {e}")))?;
                    file.write_all(&buf[..n]).map_err(|e| storage("write", out, e))?;
                    hasher.update(&buf[..n]);
                    left -= n as u64;
                }
                written += len;
            }
            Piece::Fetch { hash, chunks: span } => {
                for n in span.start..span.end {
                    let bytes = chunks
                        .get(&(hash.clone(), n))
                        .ok_or_else(|| Skip::Failed(format!("chunk {n} of a xorb was not fetched")))?;
                    file.write_all(bytes).map_err(|e| storage("write", out, e))?;
                    hasher.update(bytes);
                    written += bytes.len() as u64;
                }
            }
        }
    }
    if written != new.size_bytes {
        return Err(Skip::Failed(format!(
            "the rebuilt file has {written} bytes, the catalog pins {}",
            new.size_bytes
        )));
    }
    let actual = hex(hasher);
    if actual != new.sha256 {
        return Err(Skip::Failed(format!(
            "the rebuilt file's SHA-256 is {actual}, the catalog pins {}",
            new.sha256
        )));
    }
    file.sync_all().map_err(|e| storage("sync", out, e))?;
    Ok(())
}
