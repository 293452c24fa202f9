//! How a file is cut into ranges for the connections of a transfer.

use crate::store::ranges::Chunk;

/// The smallest chunk of a parallel plan.
pub(crate) const MIN_CHUNK: u64 = 1 << 20;
/// Ranges per connection in a fresh parallel plan. The transfer carves them further as it goes
/// (guided: an idle connection takes half its fair share of what is unassigned), so ranges
/// shrink toward the end and the connections finish together without cutting a response.
const RANGES_PER_CONNECTION: u64 = 1;

/// How the file is laid out on disk and cut into ranges.
pub(crate) struct Plan {
    pub chunks: Vec<Chunk>,
    /// Whether per-chunk progress is saved (the ranges file); otherwise a single sequential
    /// range, whose progress is the partial file's length.
    pub parallel: bool,
}

impl Plan {
    /// Chunks for `size` bytes with `have` bytes already on disk at the start (a sequential
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
        let chunk = (rest / (connections as u64 * RANGES_PER_CONNECTION)).clamp(MIN_CHUNK, 64 << 20);
        let mut at = have;
        while at < size {
            let end = (at + chunk).min(size);
            chunks.push(Chunk::new(at, end, 0));
            at = end;
        }
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ranges;

    #[test]
    fn plans_cover_the_file_from_the_bytes_on_disk() {
        let chunks = Plan::fresh(100 << 20, 3 << 20, 8);
        assert_eq!(chunks[0], Chunk::new(0, 3 << 20, 3 << 20));
        assert_eq!(chunks.last().unwrap().end, 100 << 20);
        assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(ranges::prefix(&chunks), 3 << 20);
        let mut c = chunks.clone();
        c[1].done = c[1].end - c[1].start;
        c[2].done = 5;
        assert_eq!(ranges::prefix(&c), c[2].start + 5);
        assert_eq!(Plan::fresh(10, 0, 1), [Chunk::new(0, 10, 0)]);
        assert_eq!(Plan::fresh(10, 10, 4), [Chunk::new(0, 10, 10)]);
    }
}
