//! Chunks as a xorb stores them (hub-docs `docs/xet/xorb.md`; xet-core
//! `xet_core_structures/src/xorb_object/compression_scheme.rs` and `byte_grouping/bg4.rs`):
//! each an 8-byte header — version 0, compressed size (3 bytes, little-endian), compression
//! (0 none, 1 LZ4, 2 byte grouping by 4 then LZ4), uncompressed size (3 bytes) — then the
//! compressed bytes. LZ4 is the LZ4 *frame* format (`lz4_flex::frame`).

use std::io::Read;

/// The largest chunk a header may announce (a chunk is at most 128 KiB uncompressed).
const MAX_UNCOMPRESSED: usize = 128 * 1024;

/// Why a xorb's bytes could not be read as chunks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum XorbError {
    /// Fewer bytes than the headers announce.
    #[error("the xorb data ends inside chunk {index} ({have} bytes left, {need} needed)")]
    Truncated {
        /// The chunk's index in the part read.
        index: usize,
        /// Bytes left.
        have: usize,
        /// Bytes its header (or a header) needs.
        need: usize,
    },
    /// A header this reader does not know.
    #[error("chunk {index}: {what}")]
    BadHeader {
        /// The chunk's index in the part read.
        index: usize,
        /// What is wrong.
        what: String,
    },
    /// Decompression failed or gave another length than the header's.
    #[error("chunk {index} does not decompress to its {expected} bytes: {what}")]
    Decompress {
        /// The chunk's index in the part read.
        index: usize,
        /// The header's uncompressed size.
        expected: usize,
        /// What happened.
        what: String,
    },
    /// Bytes left after the chunks asked for.
    #[error("{0} bytes follow the last chunk asked for")]
    Trailing(usize),
}

/// The chunks in `data`, exactly `count` of them and nothing after, uncompressed.
pub fn decode_chunks(data: &[u8], count: usize) -> Result<Vec<Vec<u8>>, XorbError> {
    let mut rest = data;
    // A count from the network sizes nothing: each chunk has an 8-byte header at least.
    let mut chunks = Vec::with_capacity(count.min(data.len() / 8));
    for index in 0..count {
        let (chunk, used) = decode_chunk(rest, index)?;
        chunks.push(chunk);
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return Err(XorbError::Trailing(rest.len()));
    }
    Ok(chunks)
}

/// One chunk at the start of `data`, and how many bytes it took.
fn decode_chunk(data: &[u8], index: usize) -> Result<(Vec<u8>, usize), XorbError> {
    let header = data.get(..8).ok_or(XorbError::Truncated { index, have: data.len(), need: 8 })?;
    let u24 = |b: &[u8]| usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
    let bad = |what: String| XorbError::BadHeader { index, what };
    if header[0] != 0 {
        return Err(bad(format!("version {} (only 0 is known)", header[0])));
    }
    let (compressed, scheme, size) = (u24(&header[1..4]), header[4], u24(&header[5..8]));
    if size > MAX_UNCOMPRESSED {
        return Err(bad(format!("{size} bytes uncompressed, more than a chunk holds")));
    }
    let body = data.get(8..8 + compressed).ok_or(XorbError::Truncated {
        index,
        have: data.len() - 8,
        need: compressed,
    })?;
    let failed = |what: String| XorbError::Decompress { index, expected: size, what };
    let out = match scheme {
        0 => body.to_vec(),
        1 => lz4_frame(body, size).map_err(failed)?,
        2 => ungroup4(&lz4_frame(body, size).map_err(failed)?),
        other => return Err(bad(format!("compression {other} (0, 1 and 2 are known)"))),
    };
    if out.len() != size {
        return Err(failed(format!("{} bytes", out.len())));
    }
    Ok((out, 8 + compressed))
}

/// An LZ4 frame's bytes, refusing more than `size` (a hostile frame cannot grow memory).
fn lz4_frame(body: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(size);
    let mut decoder = lz4_flex::frame::FrameDecoder::new(body).take(size as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Undoes byte grouping by 4: `grouped` holds every 4-byte word's first bytes, then their
/// second bytes, and so on; the first `len % 4` groups hold one byte more.
fn ungroup4(grouped: &[u8]) -> Vec<u8> {
    let n = grouped.len();
    let (q, r) = (n / 4, n % 4);
    let mut starts = [0usize; 4];
    let mut at = 0;
    for (g, start) in starts.iter_mut().enumerate() {
        *start = at;
        at += q + usize::from(g < r);
    }
    (0..n).map(|i| grouped[starts[i % 4] + i / 4]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn group4(data: &[u8]) -> Vec<u8> {
        (0..4).flat_map(|g| data.iter().skip(g).step_by(4).copied()).collect()
    }

    fn lz4(data: &[u8]) -> Vec<u8> {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn chunk(scheme: u8, raw: &[u8]) -> Vec<u8> {
        let body = match scheme {
            0 => raw.to_vec(),
            1 => lz4(raw),
            _ => lz4(&group4(raw)),
        };
        let le = |n: usize| [n as u8, (n >> 8) as u8, (n >> 16) as u8];
        let mut out = vec![0];
        out.extend(le(body.len()));
        out.push(scheme);
        out.extend(le(raw.len()));
        out.extend(body);
        out
    }

    #[test]
    fn raw_lz4_and_byte_grouped_chunks_decode() {
        let a: Vec<u8> = (0..70_001u32).map(|i| (i % 251) as u8).collect();
        let b = b"tiny".to_vec();
        let c: Vec<u8> = (0..9_999u32).flat_map(|i| (i as f32).to_le_bytes()).take(39_998).collect();
        let mut xorb = chunk(0, &a);
        xorb.extend(chunk(1, &b));
        xorb.extend(chunk(2, &c));
        assert_eq!(decode_chunks(&xorb, 3).unwrap(), [a.clone(), b, c]);
        for n in 0..9 {
            assert_eq!(ungroup4(&group4(&a[..n])), &a[..n], "{n} bytes");
        }
        // Cut short, or more than asked for.
        assert!(matches!(
            decode_chunks(&xorb[..xorb.len() - 1], 3),
            Err(XorbError::Truncated { index: 2, .. })
        ));
        assert_eq!(
            decode_chunks(&xorb, 2),
            Err(XorbError::Trailing(xorb.len() - chunk(0, &a).len() - chunk(1, b"tiny").len()))
        );
    }

    #[test]
    fn lying_headers_are_refused() {
        let good = chunk(1, &[7u8; 5000]);
        let mut wrong_size = good.clone();
        wrong_size[5] = 0x89; // says 5001 bytes
        wrong_size[6] = 0x13;
        assert!(
            matches!(decode_chunks(&wrong_size, 1), Err(XorbError::Decompress { .. })),
            "{:?}",
            decode_chunks(&wrong_size, 1)
        );
        let mut garbage = good.clone();
        for b in &mut garbage[12..] {
            *b ^= 0xA5;
        }
        assert!(decode_chunks(&garbage, 1).is_err());
        let mut version = good.clone();
        version[0] = 1;
        assert!(matches!(decode_chunks(&version, 1), Err(XorbError::BadHeader { .. })));
        let mut scheme = good;
        scheme[4] = 9;
        assert!(matches!(decode_chunks(&scheme, 1), Err(XorbError::BadHeader { .. })));
    }
}
