//! bench/xet's fixture: three versions of a GGUF file and a static Xet CAS serving them.
//!
//!   xet-fixture OUT SIZE_MIB CAS_URL [--no-compress]
//!
//! Versions (each a commit of the repository, named by a 40-hex id in OUT/fixture.tsv):
//!   v1  a small GGUF header (a 2 KiB chat template), then random bytes: SIZE_MIB MiB exactly
//!   v2  v1 with 4 KiB more metadata in its header: every later byte shifts
//!   v3  another header and a payload entirely new
//! Written under OUT:
//!   files/<commit>/xet-Q8_0.gguf    the file at each commit (what the CDN serves)
//!   cas/xorbs/<xorb>                xorbs: chunks as Xet stores them (8-byte header, raw or
//!                                   LZ4 frame), at most 1024 chunks or 64 MiB each
//!   cas/reconstructions/<file id>   each version's reconstruction (v2 answer: `xorbs`, one URL
//!                                   per xorb, `CAS_URL/xorbs/<xorb>`, with its byte ranges)
//!   api/<commit>.json               the model API's answer at that commit (sha, siblings, lfs)
//!   token.json                      the read-token answer (casUrl = CAS_URL, exp far ahead)
//!   fixture.tsv                     per version: label commit file size sha256 file_id chunks
//!                                   new_chunks new_chunk_bytes new_stored_bytes xorbs
//! Chunks are cut as Xet cuts them (gearhash's default table, a boundary where the top 16 bits
//! of the hash are zero, 8 KiB to 128 KiB) and deduplicated across versions: v2's unchanged
//! chunks are the ones v1's xorbs hold. Xorb and file ids are stand-ins (SHA-256 of the chunk
//! hashes), not Xet's Merkle hashes: the client treats them as opaque names.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MIN_CHUNK: usize = 8 * 1024;
const MAX_CHUNK: usize = 128 * 1024;
const MASK: u64 = 0xFFFF_0000_0000_0000;
const XORB_MAX_BYTES: usize = 64 * 1024 * 1024;
const XORB_MAX_CHUNKS: usize = 1024;
const FILE: &str = "xet-Q8_0.gguf";

/// Chunk lengths, byte by byte (no skipping: an implementation independent of the client's).
fn chunk_lengths(data: &[u8]) -> Vec<usize> {
    let table = &gearhash::DEFAULT_TABLE;
    let (mut out, mut hash, mut start) = (Vec::new(), 0u64, 0usize);
    for (i, &b) in data.iter().enumerate() {
        hash = (hash << 1).wrapping_add(table[b as usize]);
        let len = i + 1 - start;
        if (len >= MIN_CHUNK && hash & MASK == 0) || len >= MAX_CHUNK {
            out.push(len);
            start = i + 1;
            hash = 0;
        }
    }
    if start < data.len() {
        out.push(data.len() - start);
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A chunk as a xorb stores it: version 0, compressed size (u24 LE), scheme, size (u24 LE).
fn serialize_chunk(raw: &[u8], compress: bool) -> Vec<u8> {
    let mut body = None;
    if compress {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(raw.len()));
        enc.write_all(raw).unwrap();
        let c = enc.finish().unwrap();
        if c.len() < raw.len() {
            body = Some(c);
        }
    }
    let (scheme, body) = match body {
        Some(c) => (1u8, c),
        None => (0u8, raw.to_vec()),
    };
    let le = |n: usize| [n as u8, (n >> 8) as u8, (n >> 16) as u8];
    let mut out = Vec::with_capacity(8 + body.len());
    out.push(0);
    out.extend(le(body.len()));
    out.push(scheme);
    out.extend(le(raw.len()));
    out.extend(body);
    out
}

struct Xorb {
    /// Filled in when written.
    hash: String,
    /// Offset of each chunk in the serialized xorb, and its end.
    offsets: Vec<u64>,
}

struct Store {
    dir: PathBuf,
    compress: bool,
    known: HashMap<[u8; 32], (usize, u64)>,
    xorbs: Vec<Xorb>,
    /// The xorb being filled: its bytes and chunk hashes.
    open: Option<(Vec<u8>, Vec<[u8; 32]>)>,
}

impl Store {
    fn close(&mut self) {
        if let Some((data, hashes)) = self.open.take() {
            let mut h = Sha256::new();
            h.update(b"xet-bench xorb");
            for c in &hashes {
                h.update(c);
            }
            let name = hex(&h.finalize());
            fs::write(self.dir.join("cas/xorbs").join(&name), &data).unwrap();
            self.xorbs.last_mut().unwrap().hash = name;
        }
    }

    /// Where `chunk` is kept: (xorb index, chunk index), adding it when new; and its stored size
    /// when new.
    fn put(&mut self, chunk: &[u8]) -> ((usize, u64), Option<usize>) {
        let h = sha(chunk);
        if let Some(&at) = self.known.get(&h) {
            return (at, None);
        }
        let ser = serialize_chunk(chunk, self.compress);
        let full = match &self.open {
            Some((data, hashes)) => {
                hashes.len() >= XORB_MAX_CHUNKS || data.len() + ser.len() > XORB_MAX_BYTES
            }
            None => true,
        };
        if full {
            self.close();
            self.open = Some((Vec::with_capacity(XORB_MAX_BYTES), Vec::new()));
            self.xorbs.push(Xorb { hash: String::new(), offsets: vec![0] });
        }
        let (data, hashes) = self.open.as_mut().unwrap();
        data.extend_from_slice(&ser);
        hashes.push(h);
        let x = self.xorbs.last_mut().unwrap();
        x.offsets.push(data.len() as u64);
        let at = (self.xorbs.len() - 1, (hashes.len() - 1) as u64);
        self.known.insert(h, at);
        (at, Some(ser.len()))
    }
}

struct Version {
    label: &'static str,
    commit: String,
    size: u64,
    sha256: String,
    file_id: String,
    chunks: usize,
    new_chunks: usize,
    new_chunk_bytes: u64,
    new_stored_bytes: u64,
    refs: Vec<(usize, u64, u64)>, // xorb, chunk, length
}

fn add_version(store: &mut Store, out: &Path, label: &'static str, bytes: &[u8]) -> Version {
    let commit = hex(&sha(format!("xet-bench commit {label}").as_bytes()))[..40].to_string();
    let dir = out.join("files").join(&commit);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(FILE), bytes).unwrap();
    let mut id = Sha256::new();
    id.update(b"xet-bench file");
    let mut v = Version {
        label,
        commit,
        size: bytes.len() as u64,
        sha256: hex(&sha(bytes)),
        file_id: String::new(),
        chunks: 0,
        new_chunks: 0,
        new_chunk_bytes: 0,
        new_stored_bytes: 0,
        refs: Vec::new(),
    };
    let mut at = 0;
    for len in chunk_lengths(bytes) {
        let chunk = &bytes[at..at + len];
        at += len;
        id.update(sha(chunk));
        let ((x, c), stored) = store.put(chunk);
        v.chunks += 1;
        if let Some(s) = stored {
            v.new_chunks += 1;
            v.new_chunk_bytes += len as u64;
            v.new_stored_bytes += s as u64;
        }
        v.refs.push((x, c, len as u64));
    }
    store.close(); // a version's new chunks are a xorb (or several) of their own, as an upload makes
    v.file_id = hex(&id.finalize());
    v
}

fn reconstruction(store: &Store, v: &Version, cas_url: &str) -> String {
    // Terms: runs of consecutive chunks of one xorb.
    let mut terms: Vec<(usize, u64, u64, u64)> = Vec::new(); // xorb, start, end, length
    for &(x, c, len) in &v.refs {
        match terms.last_mut() {
            Some(t) if t.0 == x && t.2 == c => {
                t.2 += 1;
                t.3 += len;
            }
            _ => terms.push((x, c, c + 1, len)),
        }
    }
    let mut used: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    for t in &terms {
        used.entry(t.0).or_default().push((t.1, t.2));
    }
    let term_json: Vec<String> = terms
        .iter()
        .map(|t| {
            format!(
                r#"{{"hash":"{}","unpacked_length":{},"range":{{"start":{},"end":{}}}}}"#,
                store.xorbs[t.0].hash, t.3, t.1, t.2
            )
        })
        .collect();
    let mut xorb_ids: Vec<&usize> = used.keys().collect();
    xorb_ids.sort();
    let xorb_json: Vec<String> = xorb_ids
        .into_iter()
        .map(|x| {
            let mut spans = used[x].clone();
            spans.sort();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (s, e) in spans {
                match merged.last_mut() {
                    Some(m) if s <= m.1 => m.1 = m.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            let xorb = &store.xorbs[*x];
            let ranges: Vec<String> = merged
                .iter()
                .map(|&(s, e)| {
                    format!(
                        r#"{{"chunks":{{"start":{s},"end":{e}}},"bytes":{{"start":{},"end":{}}}}}"#,
                        xorb.offsets[s as usize],
                        xorb.offsets[e as usize] - 1
                    )
                })
                .collect();
            format!(
                r#""{h}":[{{"url":"{cas_url}/xorbs/{h}","ranges":[{}]}}]"#,
                ranges.join(","),
                h = xorb.hash
            )
        })
        .collect();
    format!(
        r#"{{"offset_into_first_range":0,"terms":[{}],"xorbs":{{{}}}}}"#,
        term_json.join(","),
        xorb_json.join(",")
    )
}

/// A GGUF v3 header with no tensors and a few keys; `template` bytes of chat template.
fn gguf_header(name: &str, template: usize) -> Vec<u8> {
    fn s(b: &mut Vec<u8>, v: &str) {
        b.extend((v.len() as u64).to_le_bytes());
        b.extend(v.as_bytes());
    }
    let text = "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}{% endfor %}\n";
    let chat: String = text.chars().cycle().take(template).collect();
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes()); // tensors
    b.extend(5u64.to_le_bytes()); // keys
    for (k, v) in [
        ("general.architecture", "llama"),
        ("general.name", name),
        ("tokenizer.chat_template", chat.as_str()),
    ] {
        s(&mut b, k);
        b.extend(8u32.to_le_bytes());
        s(&mut b, v);
    }
    for (k, v) in [("llama.embedding_length", 4096u32), ("llama.context_length", 8192u32)] {
        s(&mut b, k);
        b.extend(4u32.to_le_bytes());
        b.extend(v.to_le_bytes());
    }
    b
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend(x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: xet-fixture OUT SIZE_MIB CAS_URL [--no-compress]");
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[1]);
    let size: usize = args[2].parse::<usize>().expect("SIZE_MIB") * 1024 * 1024;
    let cas_url = args[3].trim_end_matches('/').to_string();
    let compress = !args[4..].iter().any(|a| a == "--no-compress");
    for d in ["cas/xorbs", "cas/reconstructions", "api", "files"] {
        fs::create_dir_all(out.join(d)).unwrap();
    }
    let mut store =
        Store { dir: out.clone(), compress, known: HashMap::new(), xorbs: Vec::new(), open: None };
    let h1 = gguf_header("xet bench", 2048);
    let payload = random(size - h1.len(), 0x5EED_0001);
    let mut bytes = h1;
    bytes.extend_from_slice(&payload);
    let v1 = add_version(&mut store, &out, "v1", &bytes);
    let mut bytes = gguf_header("xet bench", 2048 + 4096);
    bytes.extend_from_slice(&payload);
    let v2 = add_version(&mut store, &out, "v2", &bytes);
    drop(payload);
    let mut bytes = gguf_header("xet bench, retrained", 2048);
    let n = size - bytes.len();
    bytes.extend(random(n, 0x5EED_0003));
    let v3 = add_version(&mut store, &out, "v3", &bytes);
    drop(bytes);
    let mut tsv = String::from(
        "label\tcommit\tfile\tsize\tsha256\tfile_id\tchunks\tnew_chunks\tnew_chunk_bytes\tnew_stored_bytes\txorbs\n",
    );
    for v in [&v1, &v2, &v3] {
        fs::write(out.join("cas/reconstructions").join(&v.file_id), reconstruction(&store, v, &cas_url))
            .unwrap();
        fs::write(
            out.join("api").join(format!("{}.json", v.commit)),
            format!(
                r#"{{"_id":"xet-bench","id":"bench/xet","sha":"{c}","siblings":[{{"rfilename":"README.md","size":10,"blobId":"0"}},{{"rfilename":"{FILE}","size":{s},"blobId":"1","lfs":{{"size":{s},"sha256":"{h}","pointerSize":134}}}}],"private":false}}"#,
                c = v.commit,
                s = v.size,
                h = v.sha256
            ),
        )
        .unwrap();
        let mut xs: Vec<usize> = v.refs.iter().map(|r| r.0).collect();
        xs.sort();
        xs.dedup();
        tsv += &format!(
            "{}\t{}\t{FILE}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            v.label,
            v.commit,
            v.size,
            v.sha256,
            v.file_id,
            v.chunks,
            v.new_chunks,
            v.new_chunk_bytes,
            v.new_stored_bytes,
            xs.len()
        );
    }
    fs::write(out.join("fixture.tsv"), &tsv).unwrap();
    fs::write(
        out.join("token.json"),
        format!(r#"{{"accessToken":"xet-bench-token","exp":4102444800,"casUrl":"{cas_url}"}}"#),
    )
    .unwrap();
    print!("{tsv}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xet-core's test data (SplitMix64), as in the crate's chunking tests.
    fn splitmix(n: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out.truncate(n);
        out
    }

    fn boundaries(lengths: &[usize]) -> Vec<usize> {
        lengths
            .iter()
            .scan(0, |at, n| {
                *at += n;
                Some(*at)
            })
            .collect()
    }

    #[test]
    fn boundaries_are_xet_cores() {
        let data = splitmix(1_000_000, 0);
        assert_eq!((data[0], data[127], data[111_111]), (175, 132, 118));
        assert_eq!(
            boundaries(&chunk_lengths(&data)),
            [
                84493, 134421, 144853, 243318, 271793, 336457, 467529, 494581, 582000, 596735, 616815,
                653164, 678202, 724510, 815591, 827760, 958832, 991092, 1000000
            ]
        );
        assert_eq!(
            boundaries(&chunk_lengths(&[59u8; 1_000_000])),
            [131072, 262144, 393216, 524288, 655360, 786432, 917504, 1000000]
        );
        assert_eq!(chunk_lengths(&[1u8; 100]), [100]);
    }

    #[test]
    fn chunks_round_trip() {
        let text = gguf_header("x", 9000);
        let ser = serialize_chunk(&text, true);
        assert_eq!(ser[4], 1);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut lz4_flex::frame::FrameDecoder::new(&ser[8..]), &mut out).unwrap();
        assert_eq!(out, text);
        let rnd = random(70_000, 3);
        assert_eq!(serialize_chunk(&rnd, true)[4], 0);
        assert_eq!(&serialize_chunk(&rnd, true)[8..], &rnd[..]);
    }
}
