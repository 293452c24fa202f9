//! The verification stamp of a model file (`<file>.verified`): its size, modification time,
//! inode and device when its SHA-256 was last checked. A file that still matches its stamp
//! needs no hashing.

use std::fs;

/// What a file was when its SHA-256 was last checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    device: u64,
    sha256: String,
}

impl Stamp {
    /// The stamp of the file described by `meta`, verified to hash to `sha256`.
    pub(crate) fn of(meta: &fs::Metadata, sha256: &str) -> Self {
        #[cfg(unix)]
        let (inode, device, mtime_ns) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev(), i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()))
        };
        #[cfg(not(unix))]
        let (inode, device, mtime_ns) = (
            0,
            0,
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128),
        );
        Self { size: meta.len(), mtime_ns, inode, device, sha256: sha256.to_string() }
    }

    /// The SHA-256 the file was verified to have.
    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }

    pub(crate) fn to_line(&self) -> String {
        format!("v1 {} {} {} {} {}\n", self.size, self.mtime_ns, self.inode, self.device, self.sha256)
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut it = text.split_ascii_whitespace();
        if it.next()? != "v1" {
            return None;
        }
        Some(Self {
            size: it.next()?.parse().ok()?,
            mtime_ns: it.next()?.parse().ok()?,
            inode: it.next()?.parse().ok()?,
            device: it.next()?.parse().ok()?,
            sha256: it.next()?.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_refuse_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"x").unwrap();
        let stamp = Stamp::of(&fs::metadata(&path).unwrap(), "ab");
        assert_eq!(Stamp::parse(&stamp.to_line()), Some(stamp));
        assert_eq!(Stamp::parse("v2 1 2 3 4 ab"), None);
        assert_eq!(Stamp::parse("v1 1 2"), None);
    }
}
