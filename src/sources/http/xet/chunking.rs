//! Content-defined chunking as Xet does it (hub-docs `docs/xet/chunking.md`; xet-core
//! `xet_data/src/deduplication/chunking.rs`): a Gear rolling hash over the bytes (the
//! `gearhash` crate and its default table, as xet-core uses), a boundary where the hash's top
//! 16 bits are zero, chunks of 8 KiB at least and 128 KiB at most (64 KiB on average). The
//! same bytes give the same boundaries wherever they are chunked, so a file's chunk lengths,
//! found locally, say where each chunk the Hub's reconstruction names lies in the file.

use std::io::Read;

/// The smallest chunk (except a file's last): 8 KiB.
pub const MIN_CHUNK: usize = 8 * 1024;
/// The largest chunk: 128 KiB.
pub const MAX_CHUNK: usize = 128 * 1024;
/// A boundary where these bits of the hash are zero (16 bits: one in 64 KiB).
const MASK: u64 = 0xFFFF_0000_0000_0000;
/// The Gear hash depends on the last 64 bytes only.
const WINDOW: usize = 64;

/// Finds chunk boundaries in bytes given in pieces of any size.
#[derive(Debug, Default)]
pub struct Chunker {
    hash: gearhash::Hasher<'static>,
    /// Bytes of the current chunk seen so far.
    len: usize,
}

impl Chunker {
    /// Feeds the next bytes; the length of each chunk they complete is pushed to `lengths`.
    pub fn feed(&mut self, data: &[u8], lengths: &mut Vec<u32>) {
        let mut pos = 0;
        while pos < data.len() {
            let rest = &data[pos..];
            // No boundary before MIN_CHUNK: skip what cannot reach the hash at the first place
            // a boundary may be (it depends on the last WINDOW bytes only).
            let mut i = if self.len + WINDOW < MIN_CHUNK {
                (MIN_CHUNK - self.len - WINDOW - 1).min(rest.len())
            } else {
                0
            };
            let end = rest.len().min(i + MAX_CHUNK - self.len);
            let mut cut = None;
            while i < end {
                match self.hash.next_match(&rest[i..end], MASK) {
                    Some(n) => {
                        i += n;
                        if self.len + i >= MIN_CHUNK {
                            cut = Some(i);
                            break;
                        }
                    }
                    None => i = end,
                }
            }
            // The scan may run past MAX_CHUNK (it started after the skip); a chunk never does.
            if self.len + i >= MAX_CHUNK {
                cut = Some(MAX_CHUNK - self.len);
            }
            match cut {
                Some(at) => {
                    lengths.push((self.len + at) as u32);
                    self.len = 0;
                    self.hash.set_hash(0);
                    pos += at;
                }
                None => {
                    self.len += i;
                    pos += i;
                }
            }
        }
    }

    /// Ends the bytes: the last chunk's length, if any bytes are left.
    pub fn finish(self, lengths: &mut Vec<u32>) {
        if self.len > 0 {
            lengths.push(self.len as u32);
        }
    }
}

/// The chunk lengths of everything `reader` gives.
pub fn chunk_lengths(reader: &mut dyn Read) -> std::io::Result<Vec<u32>> {
    let mut chunker = Chunker::default();
    let mut lengths = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        chunker.feed(&buf[..n], &mut lengths);
    }
    chunker.finish(&mut lengths);
    Ok(lengths)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xet-core's test data: SplitMix64 from `seed`, little-endian words, cut to `n` bytes.
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

    fn boundaries(lengths: &[u32]) -> Vec<usize> {
        lengths.iter().scan(0usize, |at, n| Some(*at + *n as usize).inspect(|v| *at = *v)).collect()
    }

    /// The boundaries xet-core's own tests pin (`test_correctness_1mb_random_data`,
    /// `test_correctness_1mb_const_data`), whatever the size of the pieces fed.
    #[test]
    fn boundaries_are_xet_cores_in_pieces_of_any_size() {
        let data = splitmix(1_000_000, 0);
        assert_eq!((data[0], data[127], data[111_111]), (175, 132, 118));
        let want = [
            84493, 134421, 144853, 243318, 271793, 336457, 467529, 494581, 582000, 596735, 616815, 653164,
            678202, 724510, 815591, 827760, 958832, 991092, 1000000,
        ];
        for piece in [1, 37, 255, 65_536, 1 << 20] {
            let mut chunker = Chunker::default();
            let mut lengths = Vec::new();
            for part in data.chunks(piece) {
                chunker.feed(part, &mut lengths);
            }
            chunker.finish(&mut lengths);
            assert_eq!(boundaries(&lengths), want, "pieces of {piece}");
        }
        let constant = chunk_lengths(&mut &[59u8; 1_000_000][..]).unwrap();
        assert_eq!(boundaries(&constant), [131072, 262144, 393216, 524288, 655360, 786432, 917504, 1000000]);
        assert_eq!(chunk_lengths(&mut &[1u8; 100][..]).unwrap(), [100]);
        assert!(chunk_lengths(&mut &[][..]).unwrap().is_empty());
    }

    /// A few bytes changed in a file's header leave every chunk after the next boundary as it
    /// was: what a delta update relies on.
    #[test]
    fn an_edit_moves_only_nearby_boundaries() {
        let old = splitmix(2_000_000, 7);
        let mut new = old[..5_000].to_vec();
        new.extend_from_slice(b"a changed chat template");
        new.extend_from_slice(&old[5_000..]);
        let (a, b) = (
            boundaries(&chunk_lengths(&mut &old[..]).unwrap()),
            boundaries(&chunk_lengths(&mut &new[..]).unwrap()),
        );
        let shifted: Vec<usize> = b.iter().map(|x| x - 23).collect();
        let same = a.iter().filter(|x| shifted.contains(x)).count();
        assert!(same + 2 >= a.len(), "{same} of {} boundaries kept", a.len());
    }
}
