//! A small, defensive reader for the header of a GGUF file.
//!
//! It reads the magic, version, tensor and key-value counts, and four keys:
//! `general.architecture`, `<arch>.embedding_length`, `<arch>.pooling_type` and
//! `general.file_type`, wherever they are in the key-value section. llama.cpp's quantizer
//! writes `general.file_type` last, after the tokenizer's arrays (6.5 MB in Gemma 3), so
//! [`read_header`] (a local file) reads the whole section; [`read_header_prefix`] (a prefix
//! fetched by HTTP range) stops at the tokenizer once the model's own keys are known. Either
//! reads at most [`MAX_HEADER_BYTES`], allocates only for keys and the few values it keeps
//! (each bounded), and returns an error, never panics, on any byte string.

use std::io::{self, Read};

/// The GGUF magic, `GGUF` in the first four bytes.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// The most header bytes read before giving up: [`read_header`] reads a file's whole
/// key-value section up to this bound, and a larger section is [`GgufError::TooLarge`].
/// Tokenizer arrays make real sections a few MB (Gemma 3's 262,144 tokens: 6.5 MB).
pub const MAX_HEADER_BYTES: u64 = 64 * 1024 * 1024;

const MAX_KEY_LEN: u64 = 65_535;
const MAX_KEPT_STRING: u64 = 4096;
const MAX_ARRAY_DEPTH: u32 = 4;

/// What the header says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GgufHeader {
    /// Format version (2 or 3).
    pub version: u32,
    /// Number of tensors.
    pub tensor_count: u64,
    /// Number of metadata key-value pairs.
    pub kv_count: u64,
    /// `general.architecture`.
    pub architecture: Option<String>,
    /// `<arch>.embedding_length`.
    pub embedding_length: Option<u64>,
    /// `general.file_type`.
    pub file_type: Option<u32>,
    /// `<arch>.pooling_type`: present in embedding models (how token vectors are pooled).
    pub pooling_type: Option<u32>,
    /// `split.no`: this shard's number in a split written by `gguf-split`, from 0.
    pub split_no: Option<u32>,
    /// `split.count`: the number of shards of the split (0 in a merged file).
    pub split_count: Option<u32>,
    /// `split.tensors.count`: the number of tensors in all shards.
    pub split_tensors_count: Option<u64>,
}

impl GgufHeader {
    /// The name of [`GgufHeader::file_type`] (`Q8_0`, `F16`, ...), when known.
    pub fn file_type_name(&self) -> Option<&'static str> {
        Some(match self.file_type? {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            10 => "Q2_K",
            11 => "Q3_K_S",
            12 => "Q3_K_M",
            13 => "Q3_K_L",
            14 => "Q4_K_S",
            15 => "Q4_K_M",
            16 => "Q5_K_S",
            17 => "Q5_K_M",
            18 => "Q6_K",
            32 => "BF16",
            _ => return None,
        })
    }
}

/// Why a header could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The first bytes are not `GGUF`.
    #[error("bad magic {0:02x?}: not a GGUF file (an HTML error page or another format?)")]
    BadMagic([u8; 4]),
    /// A version this reader does not know.
    #[error("unsupported GGUF version {0} (versions 2 and 3 are supported)")]
    UnsupportedVersion(u32),
    /// The bytes end inside the header.
    #[error("truncated header")]
    Truncated,
    /// The header is implausible (a length or type out of range).
    #[error("malformed header: {0}")]
    Malformed(String),
    /// The header is larger than [`MAX_HEADER_BYTES`] before the wanted keys were found.
    #[error("header larger than {MAX_HEADER_BYTES} bytes")]
    TooLarge,
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for GgufError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated
        } else {
            Self::Io(e)
        }
    }
}

/// Reads a GGUF header from the start of `r`: the whole key-value section (up to
/// [`MAX_HEADER_BYTES`]), so that keys written after the tokenizer's arrays, as llama.cpp's
/// quantizer writes `general.file_type`, are read. It stops early only once every key it
/// keeps is known.
///
/// ```
/// let err = strata_model::gguf::read_header(&b"<!DOCTYPE html>"[..]).unwrap_err();
/// assert!(err.to_string().contains("not a GGUF file"));
/// let header = strata_model::gguf::test_header("bert", 384, 15);
/// assert_eq!(strata_model::gguf::read_header(&header[..])?.file_type_name(), Some("Q4_K_M"));
/// # Ok::<(), strata_model::gguf::GgufError>(())
/// ```
pub fn read_header(r: impl Read) -> Result<GgufHeader, GgufError> {
    read(r, Extent::WholeSection)
}

/// [`read_header`] for a prefix of a file fetched by range: it stops at the first tokenizer
/// key once the architecture and embedding length are known, since the tokenizer's arrays
/// (megabytes) come after the model's own keys. Keys after the tokenizer (llama.cpp's
/// quantizer writes `general.file_type` there) may then be missing.
pub fn read_header_prefix(r: impl Read) -> Result<GgufHeader, GgufError> {
    read(r, Extent::ModelKeys)
}

/// How much of the key-value section to read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extent {
    WholeSection,
    ModelKeys,
}

fn read(r: impl Read, extent: Extent) -> Result<GgufHeader, GgufError> {
    let mut r = Bounded { inner: r, left: MAX_HEADER_BYTES };
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic(magic));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let mut h = GgufHeader { version, tensor_count: r.u64()?, kv_count: r.u64()?, ..Default::default() };
    let mut embedding_len_key: Option<String> = None;
    let mut pending_embedding: Vec<(String, u64)> = Vec::new();
    for _ in 0..h.kv_count {
        let key_len = r.u64()?;
        if key_len > MAX_KEY_LEN {
            return Err(GgufError::Malformed(format!("key length {key_len}")));
        }
        let key = r.string(key_len)?;
        let ty = r.u32()?;
        match (key.as_str(), ty) {
            ("general.architecture", 8) => {
                let len = r.u64()?;
                if len > MAX_KEPT_STRING {
                    return Err(GgufError::Malformed(format!("architecture length {len}")));
                }
                let arch = r.string(len)?;
                let wanted = format!("{arch}.embedding_length");
                h.embedding_length = pending_embedding.iter().find(|(k, _)| *k == wanted).map(|(_, v)| *v);
                embedding_len_key = Some(wanted);
                h.architecture = Some(arch);
            }
            ("general.file_type", _) => h.file_type = r.integer(ty)?.and_then(|v| u32::try_from(v).ok()),
            ("split.no", _) => h.split_no = r.integer(ty)?.and_then(|v| u32::try_from(v).ok()),
            ("split.count", _) => h.split_count = r.integer(ty)?.and_then(|v| u32::try_from(v).ok()),
            ("split.tensors.count", _) => h.split_tensors_count = r.integer(ty)?,
            (k, _)
                if extent == Extent::ModelKeys
                    && h.architecture.is_some()
                    && h.embedding_length.is_some()
                    && k.starts_with("tokenizer.") =>
            {
                // The model's own keys come before the tokenizer's (large arrays): done.
                break;
            }
            (k, _)
                if k.ends_with(".pooling_type")
                    && h.architecture
                        .as_deref()
                        .is_some_and(|a| k.strip_suffix(".pooling_type") == Some(a)) =>
            {
                h.pooling_type = r.integer(ty)?.and_then(|v| u32::try_from(v).ok());
            }
            (k, _) if k.ends_with(".embedding_length") => {
                let value = r.integer(ty)?;
                if let Some(v) = value {
                    match &embedding_len_key {
                        Some(want) if want == k => h.embedding_length = Some(v),
                        Some(_) => {}
                        None if pending_embedding.len() < 16 => pending_embedding.push((key, v)),
                        None => {}
                    }
                }
            }
            _ => r.skip_value(ty, 0)?,
        }
        if h.architecture.is_some()
            && h.embedding_length.is_some()
            && h.file_type.is_some()
            && h.pooling_type.is_some()
            && h.split_count.is_some()
        {
            break;
        }
    }
    Ok(h)
}

struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other(TooLargeMarker));
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Debug)]
struct TooLargeMarker;
impl std::fmt::Display for TooLargeMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("header too large")
    }
}
impl std::error::Error for TooLargeMarker {}

fn map_err(e: io::Error) -> GgufError {
    if e.get_ref().is_some_and(|inner| inner.is::<TooLargeMarker>()) {
        GgufError::TooLarge
    } else {
        e.into()
    }
}

impl<R: Read> Bounded<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.read_exact(&mut b).map_err(map_err)?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    fn string(&mut self, len: u64) -> Result<String, GgufError> {
        let mut buf = Vec::with_capacity(len.min(MAX_KEY_LEN) as usize);
        (&mut *self).take(len).read_to_end(&mut buf).map_err(map_err)?;
        if (buf.len() as u64) < len {
            return Err(GgufError::Truncated);
        }
        String::from_utf8(buf).map_err(|_| GgufError::Malformed("string is not UTF-8".into()))
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let copied = io::copy(&mut (&mut *self).take(n), &mut io::sink()).map_err(map_err)?;
        if copied < n {
            return Err(GgufError::Truncated);
        }
        Ok(())
    }

    /// Reads an integer-typed value (any width); other types are skipped and give `None`.
    fn integer(&mut self, ty: u32) -> Result<Option<u64>, GgufError> {
        Ok(match ty {
            0 => Some(u64::from(self.bytes::<1>()?[0])),
            1 => u64::try_from(i8::from_le_bytes(self.bytes()?)).ok(),
            2 => Some(u64::from(u16::from_le_bytes(self.bytes()?))),
            3 => u64::try_from(i16::from_le_bytes(self.bytes()?)).ok(),
            4 => Some(u64::from(self.u32()?)),
            5 => u64::try_from(i32::from_le_bytes(self.bytes()?)).ok(),
            10 => Some(self.u64()?),
            11 => u64::try_from(i64::from_le_bytes(self.bytes()?)).ok(),
            other => {
                self.skip_value(other, 0)?;
                None
            }
        })
    }

    fn skip_value(&mut self, ty: u32, depth: u32) -> Result<(), GgufError> {
        match fixed_size(ty) {
            Some(n) => self.skip(n),
            None if ty == 8 => {
                let len = self.u64()?;
                self.skip(len)
            }
            None if ty == 9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::Malformed("arrays nested too deeply".into()));
                }
                let elem = self.u32()?;
                let count = self.u64()?;
                match fixed_size(elem) {
                    Some(n) => {
                        let total = n
                            .checked_mul(count)
                            .ok_or_else(|| GgufError::Malformed(format!("array of {count}")))?;
                        self.skip(total)
                    }
                    None if elem == 8 || elem == 9 => {
                        for _ in 0..count {
                            self.skip_value(elem, depth + 1)?;
                        }
                        Ok(())
                    }
                    None => Err(GgufError::Malformed(format!("unknown array element type {elem}"))),
                }
            }
            None => Err(GgufError::Malformed(format!("unknown value type {ty}"))),
        }
    }
}

fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Builds GGUF-shaped bytes for tests and fixtures: a valid header with
/// `general.architecture`, `<arch>.embedding_length`, `general.file_type`, a tokenizer-like
/// string array, and no tensors.
#[doc(hidden)]
pub fn test_header(arch: &str, embedding_length: u32, file_type: u32) -> Vec<u8> {
    test_header_with(arch, embedding_length, file_type, None)
}

/// [`test_header`] with `<arch>.pooling_type` (an embedding model's key) when `pooling` is
/// set, written where converters write it: after the general keys, before the tokenizer.
#[doc(hidden)]
pub fn test_header_with(arch: &str, embedding_length: u32, file_type: u32, pooling: Option<u32>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(5u64 + u64::from(pooling.is_some())).to_le_bytes());
    string(&mut out, "general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes());
    string(&mut out, arch);
    string(&mut out, "general.name");
    out.extend_from_slice(&8u32.to_le_bytes());
    string(&mut out, "strata test fixture");
    if let Some(p) = pooling {
        string(&mut out, &format!("{arch}.pooling_type"));
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&p.to_le_bytes());
    }
    string(&mut out, "tokenizer.ggml.tokens");
    out.extend_from_slice(&9u32.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&3u64.to_le_bytes());
    for t in ["[CLS]", "[SEP]", "hello"] {
        string(&mut out, t);
    }
    string(&mut out, &format!("{arch}.embedding_length"));
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&embedding_length.to_le_bytes());
    string(&mut out, "general.file_type");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&file_type.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pooling_type_marks_an_embedding_model() {
        let h = read_header(&test_header_with("bert", 384, 7, Some(1))[..]).unwrap();
        assert_eq!((h.pooling_type, h.embedding_length), (Some(1), Some(384)));
        assert_eq!(read_header(&test_header("llama", 4096, 7)[..]).unwrap().pooling_type, None);
    }

    #[test]
    fn reads_the_wanted_keys() {
        let bytes = test_header("bert", 384, 7);
        let h = read_header(&bytes[..]).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.kv_count, 5);
        assert_eq!(h.architecture.as_deref(), Some("bert"));
        assert_eq!(h.embedding_length, Some(384));
        assert_eq!(h.file_type_name(), Some("Q8_0"));
    }

    /// llama.cpp's quantizer order: the model's keys, the tokenizer's arrays, then
    /// `general.file_type` (set last, so moved to the end).
    fn quantized_header(tokens: u64) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&5u64.to_le_bytes());
        string(&mut out, "general.architecture");
        out.extend_from_slice(&8u32.to_le_bytes());
        string(&mut out, "gemma3");
        string(&mut out, "gemma3.embedding_length");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&640u32.to_le_bytes());
        string(&mut out, "tokenizer.ggml.tokens");
        out.extend_from_slice(&9u32.to_le_bytes());
        out.extend_from_slice(&8u32.to_le_bytes());
        out.extend_from_slice(&tokens.to_le_bytes());
        for i in 0..tokens {
            string(&mut out, &format!("<tok{i}>"));
        }
        string(&mut out, "tokenizer.ggml.scores");
        out.extend_from_slice(&9u32.to_le_bytes());
        out.extend_from_slice(&6u32.to_le_bytes());
        out.extend_from_slice(&tokens.to_le_bytes());
        out.resize(out.len() + 4 * tokens as usize, 0);
        string(&mut out, "general.file_type");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&15u32.to_le_bytes());
        out
    }

    #[test]
    fn a_file_type_after_the_tokenizer_is_read_from_a_file_not_from_a_prefix() {
        let bytes = quantized_header(300_000);
        assert!(bytes.len() > 4_000_000, "{}", bytes.len());
        let h = read_header(&bytes[..]).unwrap();
        assert_eq!((h.architecture.as_deref(), h.embedding_length), (Some("gemma3"), Some(640)));
        assert_eq!(h.file_type_name(), Some("Q4_K_M"));
        // A prefix stops at the tokenizer: the first kilobyte is enough for what `add` needs.
        let h = read_header_prefix(&bytes[..1024]).unwrap();
        assert_eq!(
            (h.architecture.as_deref(), h.embedding_length, h.file_type),
            (Some("gemma3"), Some(640), None)
        );
        // The whole section is needed: a file cut inside it is an error, not a header.
        assert!(matches!(read_header(&bytes[..bytes.len() - 1]), Err(GgufError::Truncated)));
    }

    #[test]
    fn a_section_beyond_the_bound_is_too_large_not_a_header() {
        // An array of u64::MAX empty strings: 8 bytes each until the bound, never a buffer
        // of their size.
        let mut b = quantized_header(0);
        b.truncate(b.len() - (8 + 17 + 4 + 4) - (8 + 21 + 4 + 4 + 8)); // drop scores, file type
        let n = b.len() - 8;
        b[n..].copy_from_slice(&u64::MAX.to_le_bytes()); // the token count
        let endless = b.as_slice().chain(io::repeat(0).take(MAX_HEADER_BYTES + 1));
        assert!(matches!(read_header(endless), Err(GgufError::TooLarge)));
    }

    #[test]
    fn rejects_what_is_not_gguf() {
        assert!(matches!(read_header(&b"<html>"[..]), Err(GgufError::BadMagic(_))));
        assert!(matches!(read_header(&b"GG"[..]), Err(GgufError::Truncated)));
        let mut v1 = test_header("bert", 1, 1);
        v1[4] = 1;
        assert!(matches!(read_header(&v1[..]), Err(GgufError::UnsupportedVersion(1))));
        let full = test_header("bert", 384, 7);
        for cut in 0..full.len() {
            assert!(read_header(&full[..cut]).is_err(), "a header cut at {cut} must not parse");
        }
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes()); // key length
        assert!(matches!(read_header(&b[..]), Err(GgufError::Malformed(_))));
        let mut b = b[..24].to_vec();
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(b"abc");
        b.extend_from_slice(&9u32.to_le_bytes()); // array
        b.extend_from_slice(&10u32.to_le_bytes()); // of u64
        b.extend_from_slice(&u64::MAX.to_le_bytes()); // count overflows
        assert!(read_header(&b[..]).is_err());
    }

    #[test]
    fn endless_input_stops_at_the_bound() {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(b"k");
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        let endless = b.as_slice().chain(io::repeat(b'x'));
        assert!(matches!(read_header(endless), Err(GgufError::TooLarge)));
    }

    #[test]
    fn mutated_headers_never_panic() {
        let base = test_header("nomic-bert", 768, 1);
        let mut seed = 0x2545f4914f6cdd1du64;
        for _ in 0..20_000 {
            let mut b = base.clone();
            for _ in 0..(seed % 4 + 1) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 40) as u8;
            }
            let _ = read_header(&b[..]);
        }
    }
}
