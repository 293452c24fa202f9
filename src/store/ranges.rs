//! The per-range progress of a parallel partial download (`<file>.part.ranges`): which byte
//! ranges of the preallocated partial file are on disk. One reader and one writer of the
//! format, for the transfer engine and for `list`'s percentage alike.
//!
//! ```text
//! v1 <size>
//! <start> <end> <done>     one line per range, covering [0, size) without gaps
//! ```

use std::fs;
use std::path::Path;

use crate::error::Result;

/// One contiguous range of the file and how much of it, from its start, is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Bytes on disk from `start`.
    pub done: u64,
    /// Whether a connection is fetching it now (in memory only, never saved).
    pub(crate) active: bool,
}

impl Chunk {
    /// A range with `done` bytes on disk.
    pub fn new(start: u64, end: u64, done: u64) -> Self {
        Self { start, end, done, active: false }
    }

    /// Bytes still to fetch.
    pub fn remaining(&self) -> u64 {
        self.end - self.start - self.done
    }
}

/// The contiguous prefix of the file that is on disk.
pub fn prefix(chunks: &[Chunk]) -> u64 {
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

/// Reads a ranges file for a file of `size` bytes; `None` when it is missing, for another
/// size, or malformed.
pub fn read(path: &Path, size: u64) -> Option<Vec<Chunk>> {
    parse(&fs::read_to_string(path).ok()?, size)
}

fn parse(text: &str, size: u64) -> Option<Vec<Chunk>> {
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

/// Saves per-range progress (atomically).
pub fn write(path: &Path, size: u64, chunks: &[Chunk]) -> Result<()> {
    crate::fs::write_atomic(path, text(size, chunks).as_bytes())
}

fn text(size: u64, chunks: &[Chunk]) -> String {
    let mut s = format!("v1 {size}\n");
    for c in chunks {
        s.push_str(&format!("{} {} {}\n", c.start, c.end, c.done));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_files_round_trip_and_reject_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let chunks = vec![Chunk::new(0, 10, 10), Chunk::new(10, 25, 3), Chunk::new(25, 40, 0)];
        write(&path, 40, &chunks).unwrap();
        assert_eq!(read(&path, 40).unwrap(), chunks);
        assert!(read(&path, 41).is_none());
        assert!(parse("v1 40\n0 10 10\n11 40 0\n", 40).is_none(), "a gap");
        assert!(parse("v1 40\n0 10 11\n10 40 0\n", 40).is_none(), "more done than the chunk");
        assert!(parse("v1 40\n0 10 10\n", 40).is_none(), "short of the size");
    }

    #[test]
    fn the_prefix_follows_done_chunks() {
        let mut c = vec![Chunk::new(0, 10, 10), Chunk::new(10, 20, 0), Chunk::new(20, 30, 4)];
        assert_eq!(prefix(&c), 10);
        c[1].done = 10;
        assert_eq!(prefix(&c), 24);
        assert_eq!(prefix(&[]), 0);
    }
}
