//! Filesystem plumbing, in one place, below everything else: directories, atomic writes, locks
//! ([`lock`]), free space, hard links and reflinks, positional reads and writes.
//!
//! Every module that writes a small file writes it through [`write_atomic`] (or streams a
//! large one through [`AtomicFile`]): a temporary file in the target's directory, synced, then
//! renamed over the target, so a reader sees the old content or the new, never half of it.
//!
//! Modes follow the umask, so that a models directory shared by a group (a setgid directory,
//! umask 0002) stays writable by every member: directories are created `0777 & ~umask`, files
//! `0666 & ~umask` (temporary files too, before they become visible), and a setgid directory's
//! group is kept by the kernel.

mod holder;
pub(crate) mod lock;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{RegistryError, Result};

/// Creates `dir` and its parents with mode 0777 before the umask (0755 with umask 0022, 2775
/// in a setgid group directory with umask 0002).
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o777);
    builder.create(dir).map_err(|e| RegistryError::storage("create directory", dir, e))
}

/// A file being written next to its final path; [`AtomicFile::commit`] syncs it and renames
/// it into place. Dropped without a commit, it is deleted and the target is untouched.
pub(crate) struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts a file that will replace `target` (mode 0666 before the umask, from its creation:
    /// the temporary file is never more private than the file it becomes).
    pub(crate) fn create(target: &Path) -> Result<Self> {
        Self::create_with_mode(target, 0o666)
    }

    /// [`AtomicFile::create`] with `mode` before the umask (0o600: a file only its owner reads).
    pub(crate) fn create_with_mode(target: &Path, #[allow(unused_variables)] mode: u32) -> Result<Self> {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode));
        let tmp = builder.tempfile_in(dir).map_err(|e| RegistryError::storage("create a file in", dir, e))?;
        Ok(Self { tmp, target: target.to_path_buf() })
    }

    /// The open temporary file.
    pub(crate) fn file(&mut self) -> &mut fs::File {
        self.tmp.as_file_mut()
    }

    /// Syncs the bytes to disk and renames the file over the target.
    pub(crate) fn commit(mut self) -> Result<()> {
        let target = self.target.clone();
        self.tmp
            .as_file_mut()
            .flush()
            .and_then(|()| self.tmp.as_file().sync_all())
            .map_err(|e| RegistryError::storage("write", &target, e))?;
        self.tmp
            .persist(&target)
            .map_err(|e| RegistryError::storage("rename into place", &target, e.error))?;
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.file().write_all(bytes).map_err(|e| RegistryError::storage("write", path, e))?;
    file.commit()
}

/// Marks `path` as modified now (its modification time), as any process that may write it can
/// (`utimensat` with `UTIME_NOW`: a member of the file's group too, not only its owner). The
/// time is the filesystem's own (an NFS server's). Best effort.
pub(crate) fn touch_now(path: &Path) {
    #[cfg(unix)]
    {
        use rustix::fs::{Timespec, Timestamps, UTIME_NOW, UTIME_OMIT};
        let times = Timestamps {
            last_access: Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT },
            last_modification: Timespec { tv_sec: 0, tv_nsec: UTIME_NOW },
        };
        let _ = rustix::fs::utimensat(rustix::fs::CWD, path, &times, rustix::fs::AtFlags::empty());
    }
    #[cfg(not(unix))]
    {
        if let Ok(f) = fs::OpenOptions::new().write(true).open(path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }
}

/// Whether this process may delete (or replace) entries of `dir`: write and search
/// permission on it, as a removal that must not stop half-way checks first.
#[cfg(unix)]
pub(crate) fn can_change_entries(dir: &Path) -> std::io::Result<()> {
    use rustix::fs::Access;
    rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(std::io::Error::from)
}

/// Whether this process may delete entries of `dir` (assumed on this platform).
#[cfg(not(unix))]
pub(crate) fn can_change_entries(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Whether `e` says the place cannot be written (permissions, or a read-only file system).
#[cfg(feature = "registry")]
pub(crate) fn is_read_only(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`, when known.
#[cfg(all(unix, feature = "registry"))]
pub(crate) fn available_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes free on the filesystem holding `dir` (unknown on this platform).
#[cfg(all(not(unix), feature = "registry"))]
pub(crate) fn available_space(_dir: &Path) -> Option<u64> {
    None
}

/// How a file's bytes were put at a new path: reused from another tool's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// A hard link: the same inode, no second copy of the bytes.
    HardLink,
    /// A reflink (copy-on-write clone): shared extents, no second copy until one is changed.
    Reflink,
    /// A plain copy.
    Copy,
}

impl LinkMethod {
    /// `hard link`, `reflink` or `copy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardLink => "hard link",
            Self::Reflink => "reflink",
            Self::Copy => "copy",
        }
    }
}

/// Puts the bytes of `from` at `to` (which must not exist): a hard link, else a reflink, else
/// a copy. `from` is never modified.
#[cfg(feature = "registry")]
pub(crate) fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<LinkMethod> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(LinkMethod::HardLink);
    }
    if reflink(from, to).is_ok() {
        return Ok(LinkMethod::Reflink);
    }
    let mut src = fs::File::open(from)?;
    let mut dst = fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    if let Err(e) = std::io::copy(&mut src, &mut dst) {
        drop(dst);
        let _ = fs::remove_file(to);
        return Err(e);
    }
    Ok(LinkMethod::Copy)
}

#[cfg(all(target_os = "linux", feature = "registry"))]
fn reflink(from: &Path, to: &Path) -> std::io::Result<()> {
    let src = fs::File::open(from)?;
    let dst = fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    match rustix::fs::ioctl_ficlone(&dst, &src) {
        Ok(()) => Ok(()),
        Err(e) => {
            drop(dst);
            let _ = fs::remove_file(to);
            Err(e.into())
        }
    }
}

#[cfg(all(not(target_os = "linux"), feature = "registry"))]
fn reflink(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Writes all of `data` at `offset`.
#[cfg(all(unix, feature = "registry"))]
pub(crate) fn write_at(file: &fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

/// Fills `buf` from `offset`.
#[cfg(all(unix, feature = "registry"))]
pub(crate) fn read_at(file: &fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Writes all of `data` at `offset`.
#[cfg(all(windows, feature = "registry"))]
pub(crate) fn write_at(file: &fs::File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, data, offset)?;
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Fills `buf` from `offset`.
#[cfg(all(windows, feature = "registry"))]
pub(crate) fn read_at(file: &fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Opens without following a symbolic link at the path itself (`O_NOFOLLOW`).
pub(crate) fn no_follow(opts: &mut fs::OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(opts, rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    #[cfg(not(unix))]
    let _ = opts;
}

/// Opens (creating if needed, mode 0666 before the umask) a file for reading and writing in
/// place.
#[cfg(feature = "registry")]
pub(crate) fn open_read_write(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

#[cfg(feature = "registry")]
/// Reads until `buf` is full or the stream ends or fails; returns the bytes read.
pub(crate) fn read_up_to(r: &mut dyn std::io::Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// Deletes `path`; a missing file is not an error. Returns whether something was deleted.
pub(crate) fn remove_if_present(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RegistryError::storage("delete", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["c.json"], "no temporary file is left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o600, 0o600, "{mode:o}");
            let umask = mode_of_new_file(dir.path());
            assert_eq!(mode, umask, "an atomic write has the mode of any new file: {mode:o}");
        }
        // An uncommitted file leaves the target as it was.
        let mut f = AtomicFile::create(&path).unwrap();
        f.file().write_all(b"three").unwrap();
        drop(f);
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(all(unix, feature = "registry"))]
    #[test]
    fn free_space_is_known_and_links_never_touch_the_source() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available_space(dir.path()).is_some_and(|n| n > 0));
        let from = dir.path().join("a");
        fs::write(&from, b"bytes").unwrap();
        let method = link_or_copy(&from, &dir.path().join("b")).unwrap();
        assert_eq!(method, LinkMethod::HardLink);
        assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"bytes");
        assert!(link_or_copy(&from, &dir.path().join("b")).is_err(), "an existing target is refused");
        assert_eq!(fs::read(&from).unwrap(), b"bytes");
    }

    /// The mode a plain new file gets in `dir` (0666 less the umask).
    #[cfg(unix)]
    fn mode_of_new_file(dir: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("plain");
        fs::write(&p, b"").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        fs::remove_file(p).unwrap();
        mode
    }
}
