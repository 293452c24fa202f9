//! A Xet CAS look-alike (hub-docs `docs/xet/`: `api.md`, `auth.md`, `download-protocol.md`,
//! `xorb.md`, `chunking.md`), served by the Hub look-alike ([`super::hub::Hub::enable_xet`]) as
//! a third HTTPS server on 127.0.0.3.
//!
//! Every file the Hub serves is stored here: cut into content-defined chunks exactly as Xet
//! cuts them (Gear hash, a boundary where the top 16 bits are zero, 8 KiB to 128 KiB), the
//! chunks deduplicated by content across files (a chunk stored once is referenced where it
//! is), the new ones appended to new xorbs of at most [`XetOptions::chunks_per_xorb`] chunks,
//! each chunk compressed by its place in its xorb, in turn LZ4 (frame), byte-grouped-by-4 then
//! LZ4, and raw (or as [`XetOptions::scheme`] forces). A file's id is a SHA-256 of its bytes (not Xet's Merkle
//! hash: any deterministic id does for a client), a xorb's the SHA-256 of its serialized bytes.
//!
//! The CAS answers `GET /v2/reconstructions/{id}` (one signed URL per xorb with every range
//! the file needs, merged when adjacent) and `GET /v1/reconstructions/{id}` (`fetch_info`, one
//! signed URL per range) to a token the Hub issued and that has not expired, else 401; and
//! `GET /xorbs/{hash}?sig=N&exp=T` (the signed URL, no token) with one range (206 and
//! `Content-Range`) or several (206 `multipart/byteranges`), 403 when the signature is unknown,
//! for another xorb, expired or used up. [`XetFaults`] changes what is served.

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::hub::{Hub, Seen, State, REPO, REVISION};

/// The smallest chunk (except a file's last).
pub const MIN_CHUNK: usize = 8 * 1024;
/// The largest chunk.
pub const MAX_CHUNK: usize = 128 * 1024;
/// A boundary where these bits of the Gear hash are zero.
const MASK: u64 = 0xFFFF_0000_0000_0000;
/// How long a signed xorb URL lives (seconds).
const URL_TTL: u64 = 3600;
/// The boundary of multi-range answers.
pub const BOUNDARY: &str = "xet-lookalike-3d6b6a416f9b5";

/// How a chunk is compressed in a xorb (its header's compression byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// 0: the bytes as they are.
    None = 0,
    /// 1: an LZ4 frame.
    Lz4 = 1,
    /// 2: bytes grouped by 4 (byte i of every 4-byte word into group i % 4), then an LZ4 frame.
    ByteGrouping4Lz4 = 2,
}

/// The CAS's set-up, for [`super::hub::Hub::enable_xet`].
#[derive(Clone, Debug)]
pub struct XetOptions {
    /// The most chunks in a xorb (4 by default: chunks average 64 KiB, so a file of a few
    /// hundred kB spans several xorbs).
    pub chunks_per_xorb: usize,
    /// Every chunk compressed so; `None` (the default): by its place in its xorb, LZ4,
    /// byte-grouped LZ4, raw, LZ4… (a xorb's first chunk is LZ4; one of 3 chunks or more has
    /// all three).
    pub scheme: Option<Scheme>,
    /// The faults at the start ([`super::hub::Hub::set_xet_faults`] changes them later).
    pub faults: XetFaults,
}

impl Default for XetOptions {
    fn default() -> Self {
        Self { chunks_per_xorb: 4, scheme: None, faults: XetFaults::default() }
    }
}

/// Faults of the Xet path (all off by default; `token_ttl` 3600 seconds).
#[derive(Clone, Debug)]
pub struct XetFaults {
    /// `/v2/reconstructions/…` answers 404 (an older CAS): only v1 works.
    pub v1_only: bool,
    /// The Hub's token endpoint answers this status (with a JSON `error`).
    pub token_status: Option<u16>,
    /// Both reconstruction endpoints answer this status (after the token check).
    pub reconstruction_status: Option<u16>,
    /// Every xorb GET answers this status.
    pub xorb_status: Option<u16>,
    /// A signed URL serves this many requests, then 403 (a new reconstruction issues new
    /// URLs).
    pub expire_urls_after: Option<usize>,
    /// Tokens issued from now on expire this many seconds after issue (0: already expired,
    /// the CAS answers 401).
    pub token_ttl: u64,
    /// The last term's `unpacked_length` is one more than its chunks hold (the terms' sum is
    /// the file's size + 1).
    pub bad_term_sizes: bool,
    /// One chunk of the target xorb ([`super::hub::Hub::xet_fault_target`]: the first xorb
    /// made for the newest file stored) has its compressed bytes XORed with 0xA5 (an LZ4 chunk
    /// when there is one in that xorb: it no longer decodes; a raw chunk only reads wrong).
    pub corrupt_chunk: bool,
    /// The first chunk of the target xorb announces one byte more uncompressed than it holds.
    pub wrong_chunk_length: bool,
    /// Resolve answers carry neither `X-Xet-Hash` nor the Xet `Link`s (a file not in Xet).
    pub no_xet_hash: bool,
    /// The next this many reconstruction answers carry signed URLs that have already expired
    /// (the xorb GETs get 403; a new reconstruction gets working ones).
    pub expired_url_answers: usize,
    /// Every fetch range's chunk span ends here (v2: each xorb's last range; v1: every
    /// entry), the byte ranges unchanged: a reconstruction that lies about how many chunks
    /// a range holds (`xet_break.rs`).
    pub fetch_chunks_end: Option<u64>,
    /// The last term's chunk range ends here (with `fetch_chunks_end`, still "covered").
    pub term_chunks_end: Option<u64>,
    /// v2: each xorb's value is its signed URL as a bare string instead of a list (a
    /// malformed answer that carries a secret).
    pub xorbs_as_urls: bool,
    /// Xorb GETs with a Range answer 200 with the whole xorb (a CDN that ignores ranges).
    pub xorb_ignores_range: bool,
    /// Multi-range xorb answers lose their last part.
    pub multipart_drop_last: bool,
    /// Single- and multi-range xorb answers say each part starts one byte later than it
    /// does (bytes unchanged).
    pub content_range_shifted: bool,
    /// The token answer's `exp` is this (the CAS still honours the token for `token_ttl`).
    pub token_exp: Option<u64>,
    /// The token answer's `casUrl` names this address instead of the CAS's (a black hole: a
    /// dead IPv6 route to the CAS).
    pub cas_addr: Option<SocketAddr>,
    /// Signed xorb URLs name this address instead of the CAS's (a dead xorb CDN).
    pub xorb_addr: Option<SocketAddr>,
    /// Each xorb answer waits this long before it is sent (a slow xorb CDN).
    pub xorb_delay: Option<std::time::Duration>,
}

impl Default for XetFaults {
    fn default() -> Self {
        Self {
            v1_only: false,
            token_status: None,
            reconstruction_status: None,
            xorb_status: None,
            expire_urls_after: None,
            token_ttl: 3600,
            expired_url_answers: 0,
            bad_term_sizes: false,
            corrupt_chunk: false,
            wrong_chunk_length: false,
            no_xet_hash: false,
            fetch_chunks_end: None,
            term_chunks_end: None,
            xorbs_as_urls: false,
            xorb_ignores_range: false,
            multipart_drop_last: false,
            content_range_shifted: false,
            token_exp: None,
            cas_addr: None,
            xorb_addr: None,
            xorb_delay: None,
        }
    }
}

/// A term of a file's reconstruction: chunks `start..end` (end exclusive) of xorb `hash`,
/// `unpacked_length` bytes once decompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XetTerm {
    pub hash: String,
    pub unpacked_length: u64,
    pub start: u64,
    pub end: u64,
}

/// The chunk lengths of `data`, byte by byte as Xet's chunker finds them.
pub fn chunk_lengths(data: &[u8]) -> Vec<usize> {
    let table = &gearhash::DEFAULT_TABLE;
    let mut out = Vec::new();
    let (mut hash, mut len) = (0u64, 0usize);
    for &b in data {
        hash = (hash << 1).wrapping_add(table[usize::from(b)]);
        len += 1;
        if (len >= MIN_CHUNK && hash & MASK == 0) || len >= MAX_CHUNK {
            out.push(len);
            hash = 0;
            len = 0;
        }
    }
    if len > 0 {
        out.push(len);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Xet file id of `bytes`: SHA-256 of `xet-file:` and the bytes, in hex.
pub fn file_id(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"xet-file:");
    h.update(bytes);
    hex(&h.finalize())
}

/// Byte grouping by 4: byte i of every 4-byte word into group i % 4, the groups in order.
pub fn group4(data: &[u8]) -> Vec<u8> {
    (0..4).flat_map(|g| data.iter().skip(g).step_by(4).copied()).collect()
}

fn lz4(data: &[u8]) -> Vec<u8> {
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(data).expect("lz4 into memory");
    enc.finish().expect("lz4 into memory")
}

fn u24(n: usize) -> [u8; 3] {
    assert!(n < 1 << 24, "{n} does not fit a chunk header");
    [n as u8, (n >> 8) as u8, (n >> 16) as u8]
}

/// A xorb: its serialized bytes and where each chunk lies in them.
struct Xorb {
    hash: String,
    bytes: Vec<u8>,
    /// The offset of each chunk's header, then the end.
    offsets: Vec<usize>,
    schemes: Vec<Scheme>,
}

impl Xorb {
    fn chunks(&self) -> usize {
        self.schemes.len()
    }

    fn push(&mut self, raw: &[u8], scheme: Scheme) {
        let body = match scheme {
            Scheme::None => raw.to_vec(),
            Scheme::Lz4 => lz4(raw),
            Scheme::ByteGrouping4Lz4 => lz4(&group4(raw)),
        };
        self.bytes.push(0);
        self.bytes.extend(u24(body.len()));
        self.bytes.push(scheme as u8);
        self.bytes.extend(u24(raw.len()));
        self.bytes.extend(body);
        self.offsets.push(self.bytes.len());
        self.schemes.push(scheme);
    }
}

/// A file stored: its terms (by xorb index) and the xorbs made for it.
struct Stored {
    /// `(xorb, start, end, unpacked)`.
    terms: Vec<(usize, usize, usize, u64)>,
    created: Vec<usize>,
}

/// A signed xorb URL.
struct Signed {
    xorb: usize,
    exp: u64,
    uses: usize,
}

/// An answer, for the Hub look-alike to send; `counted`: xorb bytes in its body (range
/// payloads, not multipart framing).
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub counted: u64,
}

impl Answer {
    fn json(status: u16, value: &serde_json::Value) -> Self {
        let body = value.to_string().into_bytes();
        Self {
            status,
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Content-Length", body.len().to_string()),
            ],
            body,
            counted: 0,
        }
    }

    /// Sends it (no body to a `HEAD`); the connection stays open.
    pub fn write(&self, out: &mut impl Write, method: &str) -> std::io::Result<()> {
        let reason = match self.status {
            200 => "OK",
            206 => "Partial Content",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            416 => "Range Not Satisfiable",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut text = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        out.write_all(text.as_bytes())?;
        if method != "HEAD" {
            out.write_all(&self.body)?;
        }
        Ok(())
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The CAS's state, in the Hub look-alike's.
pub struct Cas {
    pub addr: SocketAddr,
    pub faults: XetFaults,
    chunks_per_xorb: usize,
    scheme: Option<Scheme>,
    xorbs: Vec<Xorb>,
    by_hash: HashMap<String, usize>,
    /// Where each chunk (by SHA-256) is: xorb and index.
    chunks: HashMap<[u8; 32], (usize, usize)>,
    files: HashMap<String, Stored>,
    /// The id of the file stored last.
    newest: Option<String>,
    /// Tokens issued and when each expires.
    tokens: HashMap<String, u64>,
    signed: HashMap<u64, Signed>,
    next_sig: u64,
    /// Xorb bytes sent, per request id.
    pub sent_by: HashMap<u64, u64>,
}

impl Cas {
    pub fn new(addr: SocketAddr, options: XetOptions) -> Self {
        Self {
            addr,
            faults: options.faults,
            chunks_per_xorb: options.chunks_per_xorb.max(1),
            scheme: options.scheme,
            xorbs: Vec::new(),
            by_hash: HashMap::new(),
            chunks: HashMap::new(),
            files: HashMap::new(),
            newest: None,
            tokens: HashMap::new(),
            signed: HashMap::new(),
            next_sig: 0,
            sent_by: HashMap::new(),
        }
    }

    /// Stores `bytes` (once per content); it becomes the newest file.
    pub fn store(&mut self, bytes: &[u8]) {
        let id = file_id(bytes);
        self.newest = Some(id.clone());
        if self.files.contains_key(&id) {
            return;
        }
        let mut locations = Vec::new();
        let mut created: Vec<usize> = Vec::new();
        let mut at = 0;
        for len in chunk_lengths(bytes) {
            let chunk = &bytes[at..at + len];
            at += len;
            let key: [u8; 32] = Sha256::digest(chunk).into();
            if let Some(&loc) = self.chunks.get(&key) {
                locations.push((loc, len));
                continue;
            }
            let x = match created.last() {
                Some(&x) if self.xorbs[x].chunks() < self.chunks_per_xorb => x,
                _ => {
                    self.xorbs.push(Xorb {
                        hash: String::new(),
                        bytes: Vec::new(),
                        offsets: vec![0],
                        schemes: Vec::new(),
                    });
                    created.push(self.xorbs.len() - 1);
                    self.xorbs.len() - 1
                }
            };
            const CYCLE: [Scheme; 3] = [Scheme::Lz4, Scheme::ByteGrouping4Lz4, Scheme::None];
            let scheme = self.scheme.unwrap_or(CYCLE[self.xorbs[x].chunks() % 3]);
            self.xorbs[x].push(chunk, scheme);
            let loc = (x, self.xorbs[x].chunks() - 1);
            self.chunks.insert(key, loc);
            locations.push((loc, len));
        }
        for &x in &created {
            let hash = hex(&Sha256::digest(&self.xorbs[x].bytes));
            self.xorbs[x].hash = hash.clone();
            self.by_hash.insert(hash, x);
        }
        let mut terms: Vec<(usize, usize, usize, u64)> = Vec::new();
        for ((x, i), len) in locations {
            match terms.last_mut() {
                Some(t) if t.0 == x && t.2 == i => {
                    t.2 += 1;
                    t.3 += len as u64;
                }
                _ => terms.push((x, i, i + 1, len as u64)),
            }
        }
        self.files.insert(id, Stored { terms, created });
    }

    /// The terms of file `id` as stored (no fault applied).
    pub fn terms(&self, id: &str) -> Option<Vec<XetTerm>> {
        let stored = self.files.get(id)?;
        let terms = stored.terms.iter().map(|&(x, start, end, len)| XetTerm {
            hash: self.xorbs[x].hash.clone(),
            unpacked_length: len,
            start: start as u64,
            end: end as u64,
        });
        Some(terms.collect())
    }

    /// Distinct chunks stored.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Xorbs stored.
    pub fn xorb_count(&self) -> usize {
        self.xorbs.len()
    }

    /// The xorb `corrupt_chunk` and `wrong_chunk_length` break, and the chunk index
    /// `corrupt_chunk` breaks (an LZ4 one when the xorb has one).
    pub fn fault_target(&self) -> Option<(String, usize)> {
        let stored = self.files.get(self.newest.as_ref()?)?;
        let x = stored.created.first().copied().or_else(|| stored.terms.first().map(|t| t.0))?;
        let xorb = &self.xorbs[x];
        let chunk = [Scheme::Lz4, Scheme::ByteGrouping4Lz4]
            .iter()
            .find_map(|s| xorb.schemes.iter().position(|c| c == s))
            .unwrap_or(0);
        Some((xorb.hash.clone(), chunk))
    }

    /// Xorb `x`'s bytes as served, with the faults applied (lengths unchanged).
    fn served(&self, x: usize) -> Vec<u8> {
        let xorb = &self.xorbs[x];
        let mut bytes = xorb.bytes.clone();
        let target = self.fault_target().filter(|(hash, _)| *hash == xorb.hash);
        if let Some((_, chunk)) = target {
            if self.faults.corrupt_chunk {
                for b in &mut bytes[xorb.offsets[chunk] + 8..xorb.offsets[chunk + 1]] {
                    *b ^= 0xA5;
                }
            }
            if self.faults.wrong_chunk_length {
                let h = &mut bytes[..8];
                let size = usize::from(h[5]) | usize::from(h[6]) << 8 | usize::from(h[7]) << 16;
                h[5..8].copy_from_slice(&u24(size + 1));
            }
        }
        bytes
    }

    /// The token endpoint's answer (a new token each time).
    pub fn token(&mut self) -> Answer {
        if let Some(status) = self.faults.token_status {
            return Answer::error(status, "token refused (fault)");
        }
        let token = format!("xet-lookalike-token-{}", self.tokens.len() + 1);
        let exp = now() + self.faults.token_ttl;
        self.tokens.insert(token.clone(), exp);
        let cas = format!("https://{}", self.faults.cas_addr.unwrap_or(self.addr));
        let exp = self.faults.token_exp.unwrap_or(exp);
        Answer::json(200, &serde_json::json!({ "accessToken": token, "exp": exp, "casUrl": cas }))
    }

    /// The CAS's answer to a request.
    pub fn answer(&mut self, method: &str, path: &str, headers: &HashMap<String, String>) -> Answer {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        if method != "GET" && method != "HEAD" {
            return Answer::error(405, "method not allowed");
        }
        if let Some(hash) = path.strip_prefix("/xorbs/") {
            return self.xorb(hash, query, headers);
        }
        let token = headers.get("authorization").and_then(|v| v.strip_prefix("Bearer "));
        let fresh = token.and_then(|t| self.tokens.get(t)).is_some_and(|&exp| now() < exp);
        if !fresh {
            return Answer::error(401, "missing, unknown or expired token");
        }
        let (version, id) =
            match (path.strip_prefix("/v2/reconstructions/"), path.strip_prefix("/v1/reconstructions/")) {
                (Some(id), _) => (2, id),
                (_, Some(id)) => (1, id),
                _ => return Answer::error(404, "not found"),
            };
        if version == 2 && self.faults.v1_only {
            return Answer::error(404, "not found");
        }
        if let Some(status) = self.faults.reconstruction_status {
            return Answer::error(status, "reconstruction refused (fault)");
        }
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Answer::error(400, "malformed file id");
        }
        let answer = self.reconstruction(id, version);
        self.faults.expired_url_answers = self.faults.expired_url_answers.saturating_sub(1);
        match answer {
            Some(value) => Answer::json(200, &value),
            None => Answer::error(404, "file not found"),
        }
    }

    fn sign(&mut self, xorb: usize) -> String {
        self.next_sig += 1;
        let exp = if self.faults.expired_url_answers > 0 { now() - 1 } else { now() + URL_TTL };
        self.signed.insert(self.next_sig, Signed { xorb, exp, uses: 0 });
        let addr = self.faults.xorb_addr.unwrap_or(self.addr);
        format!("https://{}/xorbs/{}?sig={}&exp={exp}", addr, self.xorbs[xorb].hash, self.next_sig)
    }

    fn reconstruction(&mut self, id: &str, version: u8) -> Option<serde_json::Value> {
        let stored = self.files.get(id)?;
        let mut terms: Vec<serde_json::Value> = stored
            .terms
            .iter()
            .map(|&(x, start, end, len)| {
                serde_json::json!({
                    "hash": self.xorbs[x].hash,
                    "unpacked_length": len,
                    "range": {"start": start, "end": end},
                })
            })
            .collect();
        if self.faults.bad_term_sizes {
            if let Some(last) = terms.last_mut() {
                last["unpacked_length"] = (last["unpacked_length"].as_u64().unwrap_or(0) + 1).into();
            }
        }
        if let (Some(end), Some(last)) = (self.faults.term_chunks_end, terms.last_mut()) {
            last["range"]["end"] = end.into();
        }
        // The chunk ranges each xorb must serve, merged when they touch or overlap.
        let mut order: Vec<usize> = Vec::new();
        let mut ranges: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for &(x, start, end, _) in &stored.terms {
            if !ranges.contains_key(&x) {
                order.push(x);
            }
            ranges.entry(x).or_default().push((start, end));
        }
        for r in ranges.values_mut() {
            r.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for &(s, e) in r.iter() {
                match merged.last_mut() {
                    Some(m) if s <= m.1 => m.1 = m.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            *r = merged;
        }
        let mut fetch = serde_json::Map::new();
        for x in order {
            let offsets = self.xorbs[x].offsets.clone();
            let hash = self.xorbs[x].hash.clone();
            let bytes = |s: usize, e: usize| serde_json::json!({"start": offsets[s], "end": offsets[e] - 1});
            let value = if version == 2 {
                let url = self.sign(x);
                let mut rs: Vec<_> = ranges[&x]
                    .iter()
                    .map(
                        |&(s, e)| serde_json::json!({"chunks": {"start": s, "end": e}, "bytes": bytes(s, e)}),
                    )
                    .collect();
                if let (Some(end), Some(last)) = (self.faults.fetch_chunks_end, rs.last_mut()) {
                    last["chunks"]["end"] = end.into();
                }
                if self.faults.xorbs_as_urls {
                    serde_json::Value::String(url)
                } else {
                    serde_json::json!([{ "url": url, "ranges": rs }])
                }
            } else {
                let entries: Vec<_> = ranges[&x]
                    .clone()
                    .into_iter()
                    .map(|(s, e)| {
                        let url = self.sign(x);
                        let e2 = self.faults.fetch_chunks_end.unwrap_or(e as u64);
                        serde_json::json!({"range": {"start": s, "end": e2}, "url": url, "url_range": bytes(s, e)})
                    })
                    .collect();
                serde_json::Value::Array(entries)
            };
            fetch.insert(hash, value);
        }
        let key = if version == 2 { "xorbs" } else { "fetch_info" };
        Some(serde_json::json!({ "offset_into_first_range": 0, "terms": terms, key: fetch }))
    }

    fn xorb(&mut self, hash: &str, query: &str, headers: &HashMap<String, String>) -> Answer {
        if let Some(status) = self.faults.xorb_status {
            return Answer::error(status, "xorb refused (fault)");
        }
        let sig = query.split('&').find_map(|p| p.strip_prefix("sig=")).and_then(|s| s.parse::<u64>().ok());
        let x = self.by_hash.get(hash).copied();
        let limit = self.faults.expire_urls_after;
        let valid = match (sig.and_then(|s| self.signed.get_mut(&s)), x) {
            (Some(signed), Some(x)) if signed.xorb == x && now() < signed.exp => {
                let ok = limit.is_none_or(|n| signed.uses < n);
                signed.uses += 1;
                ok
            }
            _ => false,
        };
        let Some(x) = x.filter(|_| valid) else {
            let page = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
            let body = page.as_bytes().to_vec();
            let headers =
                vec![("Content-Type", "application/xml".into()), ("Content-Length", body.len().to_string())];
            return Answer { status: 403, headers, body, counted: 0 };
        };
        let data = self.served(x);
        let total = data.len();
        let spec = headers
            .get("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .filter(|_| !self.faults.xorb_ignores_range);
        let Some(spec) = spec else {
            let headers = vec![
                ("Content-Type", "application/octet-stream".into()),
                ("Content-Length", total.to_string()),
            ];
            return Answer { status: 200, headers, body: data, counted: total as u64 };
        };
        let mut ranges = Vec::new();
        for r in spec.split(',') {
            let (a, b) = r.trim().split_once('-').unwrap_or((r, ""));
            let parsed = match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) => Some((a, b.min(total.saturating_sub(1)))),
                (Ok(a), Err(_)) if b.is_empty() => Some((a, total.saturating_sub(1))),
                _ => None,
            };
            match parsed {
                Some((a, b)) if a <= b && a < total => ranges.push((a, b)),
                _ => {
                    let headers =
                        vec![("Content-Range", format!("bytes */{total}")), ("Content-Length", "0".into())];
                    return Answer { status: 416, headers, body: Vec::new(), counted: 0 };
                }
            }
        }
        let counted = ranges.iter().map(|(a, b)| (b - a + 1) as u64).sum();
        let shift = usize::from(self.faults.content_range_shifted);
        if let [(a, b)] = ranges[..] {
            let headers = vec![
                ("Content-Type", "application/octet-stream".into()),
                ("Content-Length", (b - a + 1).to_string()),
                ("Content-Range", format!("bytes {}-{}/{total}", a + shift, b + shift)),
            ];
            return Answer { status: 206, headers, body: data[a..=b].to_vec(), counted };
        }
        let mut body = Vec::new();
        if self.faults.multipart_drop_last {
            ranges.pop();
        }
        for (a, b) in ranges {
            let (sa, sb) = (a + shift, b + shift);
            body.extend(
                format!(
                    "--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {sa}-{sb}/{total}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(&data[a..=b]);
            body.extend_from_slice(b"\r\n");
        }
        body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
        let headers = vec![
            ("Content-Type", format!("multipart/byteranges; boundary={BOUNDARY}")),
            ("Content-Length", body.len().to_string()),
        ];
        Answer { status: 206, headers, body, counted }
    }
}

/// The Xet side of the Hub look-alike.
impl Hub {
    /// Starts the Xet CAS on 127.0.0.3 and stores every file served, those already added
    /// (by name; then the moved commit's) and those added from now on. Once only.
    pub fn enable_xet(&self, options: XetOptions) {
        let listener = TcpListener::bind("127.0.0.3:0").expect("bind 127.0.0.3");
        let addr = listener.local_addr().unwrap();
        {
            let mut s = self.state.lock().unwrap();
            assert!(s.xet.is_none(), "Xet is already on");
            let mut slot = Some(Cas::new(addr, options));
            store(&mut slot, &s.files);
            if let Some((_, moved)) = &s.moved {
                store(&mut slot, moved);
            }
            s.xet = slot;
        }
        super::hub::listen(listener, "cas", &self.state, &self.server, self.cdn);
    }

    /// Replaces the Xet faults (tokens already issued keep their expiry).
    pub fn set_xet_faults(&self, faults: XetFaults) {
        self.with_xet(|x| x.faults = faults);
    }

    fn with_xet<T>(&self, f: impl FnOnce(&mut Cas) -> T) -> T {
        f(self.state.lock().unwrap().xet.as_mut().expect("Hub::enable_xet first"))
    }

    /// The CAS's address (127.0.0.3).
    pub fn cas(&self) -> SocketAddr {
        self.with_xet(|x| x.addr)
    }

    /// `https://127.0.0.3:PORT`.
    pub fn cas_url(&self) -> String {
        format!("https://{}", self.cas())
    }

    /// The Xet file id the Hub announces for `bytes` (`X-Xet-Hash`).
    pub fn xet_file_id(bytes: &[u8]) -> String {
        file_id(bytes)
    }

    /// The terms of `bytes`' reconstruction as stored (no fault applied), if stored.
    pub fn xet_terms(&self, bytes: &[u8]) -> Option<Vec<XetTerm>> {
        self.with_xet(|x| x.terms(&file_id(bytes)))
    }

    /// Distinct chunks the CAS stores.
    pub fn xet_chunk_count(&self) -> usize {
        self.with_xet(|x| x.chunk_count())
    }

    /// Xorbs the CAS stores.
    pub fn xet_xorb_count(&self) -> usize {
        self.with_xet(|x| x.xorb_count())
    }

    /// The xorb `corrupt_chunk`/`wrong_chunk_length` break (the first made for the newest
    /// file stored) and the chunk `corrupt_chunk` breaks in it.
    pub fn xet_fault_target(&self) -> Option<(String, usize)> {
        self.with_xet(|x| x.fault_target())
    }

    /// Requests that reached the CAS (reconstructions and xorb reads) since the start or the
    /// last `clear_seen`.
    pub fn cas_requests(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.host == "cas").collect()
    }

    /// Xorb GETs that reached the CAS.
    pub fn xorb_gets(&self) -> Vec<Seen> {
        self.cas_requests().into_iter().filter(|s| s.path.starts_with("/xorbs/")).collect()
    }

    /// Requests for a Xet read token the Hub has seen (any answer).
    pub fn xet_token_requests(&self) -> usize {
        self.seen().iter().filter(|s| s.host == "hub" && s.path.contains("/xet-read-token/")).count()
    }

    /// Xorb bytes the CAS has sent (range payloads, without multipart framing) for the
    /// requests seen since the start or the last `clear_seen`.
    pub fn xet_bytes_sent(&self) -> u64 {
        let s = self.state.lock().unwrap();
        let Some(x) = &s.xet else { return 0 };
        s.seen.iter().filter_map(|r| x.sent_by.get(&r.id)).sum()
    }
}

/// Stores `files` (by name) in the CAS, if on.
pub(super) fn store(xet: &mut Option<Cas>, files: &HashMap<String, Arc<Vec<u8>>>) {
    let Some(x) = xet else { return };
    let mut names: Vec<&String> = files.keys().collect();
    names.sort();
    for name in names {
        x.store(&files[name]);
    }
}

/// Hook: the CAS's answer to a request (id `id`), sent, its xorb bytes counted.
pub(super) fn cas_response(
    out: &mut impl Write,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    state: &Mutex<State>,
    id: u64,
) -> std::io::Result<()> {
    let (answer, delay) = {
        let mut s = state.lock().unwrap();
        let delay = s.xet.as_ref().and_then(|x| x.faults.xorb_delay).filter(|_| path.starts_with("/xorbs/"));
        (s.xet.as_mut().map(|x| x.answer(method, path, headers)), delay)
    };
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    let answer = answer.unwrap_or_else(|| Answer::error(404, "Xet is off"));
    answer.write(out, method)?;
    if method != "HEAD" && answer.counted > 0 {
        if let Some(x) = state.lock().unwrap().xet.as_mut() {
            *x.sent_by.entry(id).or_default() += answer.counted;
        }
    }
    Ok(())
}

/// Hook: the Hub's answer to `/api/models/{repo}/xet-read-token/{rev}` (path decoded) when Xet
/// is on (404 with the Hub's error codes for another repository or an unknown revision).
pub(super) fn token_response(state: &mut State, path: &str) -> Option<Answer> {
    let (repo, revision) = path.strip_prefix("/api/models/")?.split_once("/xet-read-token/")?;
    let moved = state.moved.as_ref().map(|(c, _)| c.as_str());
    let known = revision == "main" || revision == REVISION || moved == Some(revision);
    let x = state.xet.as_mut()?;
    let refuse = |code: &str| {
        let mut a = Answer::error(404, code);
        a.headers.push(("X-Error-Code", code.to_string()));
        a
    };
    Some(match (repo == REPO, known) {
        (false, _) => refuse("RepoNotFound"),
        (true, false) => refuse("RevisionNotFound"),
        (true, true) => x.token(),
    })
}

/// Hook: `X-Xet-Hash` and the Xet `Link`s for a resolve of `bytes` at `revision`, when Xet is
/// on (and `no_xet_hash` off).
pub(super) fn resolve_headers(state: &State, bytes: &[u8], revision: &str) -> Vec<(&'static str, String)> {
    let (Some(x), Some(hub)) = (&state.xet, state.hub) else { return Vec::new() };
    if x.faults.no_xet_hash {
        return Vec::new();
    }
    let id = file_id(bytes);
    let link = format!(
        "<https://{}/v1/reconstructions/{id}>; rel=\"xet-reconstruction-info\", \
         <https://{hub}/api/models/{REPO}/xet-read-token/{revision}>; rel=\"xet-auth\"",
        x.addr
    );
    vec![("X-Xet-Hash", id), ("Link", link)]
}
