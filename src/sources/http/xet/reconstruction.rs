//! A file's reconstruction as the CAS answers it (hub-docs `docs/xet/download-protocol.md`,
//! `docs/xet/api.md`; xet-core `xet_client/src/cas_types/mod.rs`): the ordered terms (a
//! xorb's chunk range, `[start, end)`, and its length once decompressed) that rebuild the
//! file, and where to fetch each xorb's chunks — v2 (`xorbs`: one signed URL per xorb with
//! several byte ranges, asked in one multi-range request) or v1 (`fetch_info`: one URL and
//! one range per entry). Both read into one [`Reconstruction`].
//!
//! [`Plan::new`] decides, for a new file, which of its chunks a verified older file already
//! holds: the older file's own terms say which xorb chunks it is made of, and its chunk
//! lengths (found locally by [`super::chunking`]) say where each lies in it.

use std::collections::HashMap;

use serde::Deserialize;

/// The most chunks a xorb holds (xet-core's limit: 8 Ki).
pub const MAX_XORB_CHUNKS: u64 = 8 * 1024;
/// The most bytes a xorb may be asked for: 64 MiB of chunks and their headers, with room.
const MAX_XORB_BYTES: u64 = 80 * 1024 * 1024;
/// A chunk is 8 KiB at least but for a file's last: a term may not have more chunks than one
/// per 4 KiB of its length (plus one).
const MIN_CHUNK_BOUND: u64 = 4 * 1024;

/// `[start, end)` (chunk indices) or, for bytes, `[start, end]` as the CAS writes them.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Span {
    /// First.
    pub start: u64,
    /// End (exclusive for chunks, inclusive for bytes).
    pub end: u64,
}

/// One term: chunks `range` of xorb `hash`, `unpacked_length` bytes once decompressed.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Term {
    /// The xorb (64 hex digits, as the API writes hashes).
    pub hash: String,
    /// Its decompressed length.
    pub unpacked_length: u64,
    /// Chunk indices in the xorb, `[start, end)`.
    pub range: Span,
}

/// One request for a xorb's bytes: a signed URL and the ranges it may be asked for (in
/// ascending order; each range's chunks and its bytes, inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XorbFetch {
    /// The signed URL (a secret: never logged with its query).
    pub url: String,
    /// `(chunks, bytes)` for each range.
    pub ranges: Vec<(Span, Span)>,
}

/// A reconstruction, v1 or v2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconstruction {
    /// Bytes of the first term to skip (0 for a whole file).
    pub offset_into_first_range: u64,
    /// The terms, in file order.
    pub terms: Vec<Term>,
    /// How to fetch each xorb's chunks.
    pub fetches: HashMap<String, Vec<XorbFetch>>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    offset_into_first_range: u64,
    terms: Vec<Term>,
    #[serde(default)]
    xorbs: Option<HashMap<String, Vec<WireMulti>>>,
    #[serde(default)]
    fetch_info: Option<HashMap<String, Vec<WireV1>>>,
}

#[derive(Deserialize)]
struct WireMulti {
    url: String,
    ranges: Vec<WireRange>,
}

#[derive(Deserialize)]
struct WireRange {
    chunks: Span,
    bytes: Span,
}

#[derive(Deserialize)]
struct WireV1 {
    range: Span,
    url: String,
    url_range: Span,
}

impl Reconstruction {
    /// Reads a v2 (`xorbs`) or v1 (`fetch_info`) answer, checking that its terms and ranges
    /// are well formed and that every term's chunks can be fetched.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        // serde's message may quote a value (a signed URL): only where it stopped is said.
        let wire: Wire = serde_json::from_slice(json).map_err(|e| {
            format!("not a reconstruction (unreadable at line {}, column {})", e.line(), e.column())
        })?;
        let fetches: HashMap<String, Vec<XorbFetch>> = match (wire.xorbs, wire.fetch_info) {
            (Some(v2), _) => v2
                .into_iter()
                .map(|(k, v)| {
                    let f = v
                        .into_iter()
                        .map(|m| XorbFetch {
                            url: m.url,
                            ranges: m.ranges.into_iter().map(|r| (r.chunks, r.bytes)).collect(),
                        })
                        .collect();
                    (k, f)
                })
                .collect(),
            (None, Some(v1)) => v1
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.into_iter()
                            .map(|f| XorbFetch { url: f.url, ranges: vec![(f.range, f.url_range)] })
                            .collect(),
                    )
                })
                .collect(),
            (None, None) => return Err("a reconstruction with neither `xorbs` nor `fetch_info`".into()),
        };
        let r = Self { offset_into_first_range: wire.offset_into_first_range, terms: wire.terms, fetches };
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<(), String> {
        let is_hash = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        // Every range of every fetch: chunks within a xorb's, bytes within a xorb's, at least
        // a chunk header per chunk, in ascending order.
        let mut covering: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
        for (hash, fetches) in &self.fetches {
            if !is_hash(hash) {
                return Err("a fetch for a xorb whose hash is malformed".into());
            }
            for f in fetches {
                let mut next = 0;
                for (chunks, bytes) in &f.ranges {
                    let well_formed = chunks.start < chunks.end
                        && chunks.end <= MAX_XORB_CHUNKS
                        && bytes.start >= next
                        && bytes.start <= bytes.end
                        && bytes.end < MAX_XORB_BYTES
                        && (chunks.end - chunks.start) * 8 <= bytes.end - bytes.start + 1;
                    if !well_formed {
                        return Err(format!(
                            "xorb {hash}: a fetch's chunk or byte ranges are malformed, out of order or past a xorb's size"
                        ));
                    }
                    next = bytes.end + 1;
                    covering.entry(hash).or_default().push((chunks.start, chunks.end));
                }
            }
        }
        for ranges in covering.values_mut() {
            ranges.sort_unstable();
        }
        // Every term: a chunk range a xorb can hold, no more chunks than its length allows,
        // and every chunk of it in a fetch's ranges.
        for (i, t) in self.terms.iter().enumerate() {
            let count = t.range.end.saturating_sub(t.range.start);
            if count == 0
                || t.range.end > MAX_XORB_CHUNKS
                || count > t.unpacked_length / MIN_CHUNK_BOUND + 1
                || !is_hash(&t.hash)
            {
                return Err(format!(
                    "term {i} is malformed ({} chunks {}..{}, {} bytes)",
                    t.hash.chars().take(64).collect::<String>().escape_debug(),
                    t.range.start,
                    t.range.end,
                    t.unpacked_length
                ));
            }
            let mut at = t.range.start;
            for &(start, end) in covering.get(t.hash.as_str()).map_or(&[][..], Vec::as_slice) {
                if start <= at && at < end {
                    at = end;
                }
            }
            if at < t.range.end {
                return Err(format!(
                    "term {i}: no fetch covers chunks {}..{} of xorb {}",
                    t.range.start, t.range.end, t.hash
                ));
            }
        }
        Ok(())
    }

    /// The fetch (and which of its ranges) that holds chunk `chunk` of xorb `hash`.
    pub fn fetch_for(&self, hash: &str, chunk: u64) -> Option<(usize, usize)> {
        self.fetches.get(hash)?.iter().enumerate().find_map(|(i, f)| {
            f.ranges.iter().position(|(c, _)| c.start <= chunk && chunk < c.end).map(|r| (i, r))
        })
    }

    /// The file's size: the sum of its terms' lengths, less the first term's skipped bytes.
    pub fn size(&self) -> u64 {
        self.terms.iter().map(|t| t.unpacked_length).sum::<u64>().saturating_sub(self.offset_into_first_range)
    }
}

/// Where a piece of the new file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// `len` bytes of the old file from `offset`.
    Old {
        /// Offset in the old file.
        offset: u64,
        /// Bytes.
        len: u64,
    },
    /// Chunks `chunks` of xorb `hash`, fetched.
    Fetch {
        /// The xorb.
        hash: String,
        /// Its chunks, `[start, end)`.
        chunks: Span,
    },
}

/// How to build a new file: its pieces in order, and which fetches (xorb, index into its
/// fetch list) must be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The pieces, in file order.
    pub pieces: Vec<Piece>,
    /// The fetches needed: xorb and index into [`Reconstruction::fetches`].
    pub fetches: Vec<(String, usize)>,
}

impl Plan {
    /// The plan for `new` given an old file made of `old` terms whose chunk lengths, found
    /// locally, are `old_chunks`. Fails when the old file's terms and chunks disagree (it is
    /// then not the file those terms describe: nothing of it is used).
    pub fn new(new: &Reconstruction, old: &[Term], old_chunks: &[u32]) -> Result<Self, String> {
        if new.offset_into_first_range != 0 {
            return Err("a plan is made for whole files only".into());
        }
        // Where each xorb chunk of the old file lies in it.
        let mut at: HashMap<(&str, u64), (u64, u64)> = HashMap::new();
        let (mut index, mut offset) = (0usize, 0u64);
        for t in old {
            let mut len = 0;
            for c in t.range.start..t.range.end {
                let n =
                    u64::from(*old_chunks.get(index).ok_or("the old file has fewer chunks than its terms")?);
                at.entry((&t.hash, c)).or_insert((offset + len, n));
                len += n;
                index += 1;
            }
            if len != t.unpacked_length {
                return Err(format!(
                    "an old term of xorb {} is {} bytes, its chunks {len}",
                    t.hash, t.unpacked_length
                ));
            }
            offset += len;
        }
        if index != old_chunks.len() {
            return Err(format!("the old file has {} chunks, its terms {index}", old_chunks.len()));
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut fetches: Vec<(String, usize)> = Vec::new();
        for t in &new.terms {
            for c in t.range.start..t.range.end {
                match (at.get(&(t.hash.as_str(), c)), pieces.last_mut()) {
                    (Some(&(o, n)), Some(Piece::Old { offset, len })) if *offset + *len == o => *len += n,
                    (Some(&(o, n)), _) => pieces.push(Piece::Old { offset: o, len: n }),
                    (None, last) => {
                        match last {
                            Some(Piece::Fetch { hash, chunks }) if *hash == t.hash && chunks.end == c => {
                                chunks.end += 1
                            }
                            _ => pieces.push(Piece::Fetch {
                                hash: t.hash.clone(),
                                chunks: Span { start: c, end: c + 1 },
                            }),
                        }
                        let (i, _) = new.fetch_for(&t.hash, c).ok_or("a chunk no fetch covers")?;
                        if !fetches.iter().any(|(h, j)| *h == t.hash && *j == i) {
                            fetches.push((t.hash.clone(), i));
                        }
                    }
                }
            }
        }
        Ok(Self { pieces, fetches })
    }

    /// Bytes taken from the old file.
    pub fn reused(&self) -> u64 {
        self.pieces.iter().map(|p| if let Piece::Old { len, .. } = p { *len } else { 0 }).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn term(x: char, start: u64, end: u64, len: u64) -> Term {
        Term { hash: h(x), unpacked_length: len, range: Span { start, end } }
    }

    #[test]
    fn v1_and_v2_read_alike() {
        let v2 = format!(
            r#"{{"offset_into_first_range":0,"terms":[{{"hash":"{a}","unpacked_length":30000,"range":{{"start":0,"end":3}}}}],
            "xorbs":{{"{a}":[{{"url":"https://t/x?sig=1","ranges":[{{"chunks":{{"start":0,"end":3}},"bytes":{{"start":0,"end":99}}}}]}}]}}}}"#,
            a = h('a')
        );
        let v1 = format!(
            r#"{{"offset_into_first_range":0,"terms":[{{"hash":"{a}","unpacked_length":30000,"range":{{"start":0,"end":3}}}}],
            "fetch_info":{{"{a}":[{{"range":{{"start":0,"end":3}},"url":"https://t/x?sig=1","url_range":{{"start":0,"end":99}}}}]}}}}"#,
            a = h('a')
        );
        let (a, b) =
            (Reconstruction::parse(v2.as_bytes()).unwrap(), Reconstruction::parse(v1.as_bytes()).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.size(), 30000);
        // A term no fetch covers, and a malformed hash, are refused.
        let uncovered = v2.replace(r#""end":3},"bytes""#, r#""end":2},"bytes""#);
        assert!(Reconstruction::parse(uncovered.as_bytes()).unwrap_err().contains("no fetch covers"));
        assert!(Reconstruction::parse(v2.replace(&h('a'), "zz").as_bytes()).is_err());
        // More chunks than a xorb holds, or than the bytes can carry, or than the length
        // allows; bytes past a xorb's size: refused before anything walks them.
        let huge = v2.replace(r#""end":3}"#, r#""end":1099511627776}"#);
        assert!(Reconstruction::parse(huge.as_bytes()).unwrap_err().contains("malformed"));
        let dense = v2.replace(r#""end":99}"#, r#""end":9}"#);
        assert!(Reconstruction::parse(dense.as_bytes()).unwrap_err().contains("malformed"));
        let short = v2.replace("30000", "300");
        assert!(Reconstruction::parse(short.as_bytes()).unwrap_err().contains("malformed"));
        let far = v2.replace(r#""end":99}"#, r#""end":18446744073709551615}"#);
        assert!(Reconstruction::parse(far.as_bytes()).unwrap_err().contains("malformed"));
        // serde's message is not passed on (it may quote a signed URL).
        let bare = v2.replace(r#"[{"url":"https://t/x?sig=1","ranges""#, r#""https://t/x?sig=1","#);
        let e = Reconstruction::parse(bare.as_bytes()).unwrap_err();
        assert!(!e.contains("sig="), "{e}");
    }

    #[test]
    fn a_plan_takes_what_the_old_file_holds_and_fetches_the_rest() {
        // Old file: xorb A chunks 0..4 (lengths 10, 20, 30, 40).
        let old = [term('a', 0, 4, 100)];
        let chunks = [10, 20, 30, 40];
        // New file: a new first chunk (xorb B), then A's chunks 1..4.
        let fetch = |x: char, s: u64, e: u64| XorbFetch {
            url: format!("https://t/{x}"),
            ranges: vec![(Span { start: s, end: e }, Span { start: 0, end: 9 })],
        };
        let new = Reconstruction {
            offset_into_first_range: 0,
            terms: [term('b', 0, 1, 12), term('a', 1, 4, 90)].to_vec(),
            fetches: [(h('b'), vec![fetch('b', 0, 1)]), (h('a'), vec![fetch('a', 0, 4)])]
                .into_iter()
                .collect(),
        };
        let plan = Plan::new(&new, &old, &chunks).unwrap();
        assert_eq!(
            plan.pieces,
            [
                Piece::Fetch { hash: h('b'), chunks: Span { start: 0, end: 1 } },
                Piece::Old { offset: 10, len: 90 }
            ]
        );
        assert_eq!(plan.fetches, [(h('b'), 0)]);
        assert_eq!(plan.reused(), 90);
        // Chunk lengths that do not add up to the old terms: nothing of the old file is used.
        assert!(Plan::new(&new, &old, &[10, 20, 30, 41]).is_err());
        assert!(Plan::new(&new, &old, &[10, 20, 30]).is_err());
        assert!(Plan::new(&new, &old, &[10, 20, 30, 30, 10]).is_err());
    }
}
