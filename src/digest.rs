//! SHA-256: of a whole file, of a file's prefix, and as lower-case hex.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub(crate) use sha2::{Digest, Sha256};

use crate::error::{RegistryError, Result};

/// Bytes read per hashing step.
pub(crate) const HASH_BUF: usize = 1 << 20;

/// Lower-case hex of a finished hasher.
pub(crate) fn hex(hasher: Sha256) -> String {
    format!("{:x}", hasher.finalize())
}

/// The SHA-256 of `bytes`, lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Feeds the first `len` bytes of `file` to `hasher`, unless `stop()` turns true between
/// two buffers (a caller that no longer wants it): then `Ok(false)`.
pub(crate) fn hash_prefix(
    file: &mut fs::File,
    len: u64,
    hasher: &mut Sha256,
    stop: &dyn Fn() -> bool,
) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; HASH_BUF];
    let mut reader = file.take(len);
    loop {
        if stop() {
            return Ok(false);
        }
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(true)
}

/// The SHA-256 of a whole file, lower-case hex.
pub fn hash_file(path: &Path) -> Result<String> {
    hash_file_until(path, &|| false).map(|h| h.unwrap_or_default())
}

/// [`hash_file`], unless `stop()` turns true between two buffers: then `None`.
pub(crate) fn hash_file_until(path: &Path, stop: &dyn Fn() -> bool) -> Result<Option<String>> {
    let mut file = fs::File::open(path).map_err(|e| RegistryError::storage("open", path, e))?;
    let len = file.metadata().map_err(|e| RegistryError::storage("stat", path, e))?.len();
    let mut hasher = Sha256::new();
    let done = hash_prefix(&mut file, len, &mut hasher, stop)
        .map_err(|e| RegistryError::storage("read", path, e))?;
    Ok(done.then(|| hex(hasher)))
}

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    done: bool,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), done: false }
    }

    /// The hex digest of everything read, once the end was reached.
    pub(crate) fn digest(&self) -> Option<String> {
        self.done.then(|| hex(self.hasher.clone()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digests_are_lower_case() {
        let mut h = Sha256::new();
        h.update(b"abc");
        assert_eq!(hex(h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let mut r = HashingReader::new(&b"abc"[..]);
        assert_eq!(r.digest(), None);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(r.digest().unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn a_hash_stops_between_buffers_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, vec![7u8; 3 * HASH_BUF]).unwrap();
        let calls = std::cell::Cell::new(0);
        let stop = || {
            calls.set(calls.get() + 1);
            calls.get() > 2
        };
        assert_eq!(hash_file_until(&path, &stop).unwrap(), None, "stopped after two buffers");
        assert_eq!(calls.get(), 3);
        assert_eq!(hash_file_until(&path, &|| false).unwrap(), Some(hash_file(&path).unwrap()));
    }
}
