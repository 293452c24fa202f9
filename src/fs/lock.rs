//! Locks that keep their promise on every filesystem.
//!
//! A model is held by one process at a time through its lock file. Where the filesystem's OS
//! lock works, that is an `flock(2)` lock (released by the kernel when the holder dies: no
//! stale locks). Whether it works is found out at run time, once per directory and process:
//! the lock must be taken, and a second open file description of the same file must then be
//! refused it. Where `flock` fails (ENOSYS on Lustre without `flock`, ENOLCK on NFSv3 without
//! lockd, EOPNOTSUPP on some SMB mounts) or succeeds without excluding anyone (Lustre
//! `localflock`, some GPFS and NFS mounts), the lock is a *claim file* instead: created with
//! `O_EXCL` beside the lock file, holding who made it, its modification time renewed every
//! [`HEARTBEAT`] while it is held. A claim whose holder is gone (a process of this host that
//! no longer runs, or a claim not renewed for [`STALE_AFTER`] by the filesystem's own clock)
//! is broken by the next process.
//!
//! A claim can be broken wrongly (a holder frozen for a minute) and an OS lock on a network
//! filesystem may exclude only the processes of one node; the promise that the model path
//! only ever holds verified bytes therefore never rests on the lock alone: there, each process
//! downloads into a partial file of its own (see [`private_partials`]) and renames only the
//! inode it verified itself.
//!
//! Every holder writes `pid=… host=… started=… nonce=…` into its lock or claim file, as
//! information for those who wait ("waiting for pid 4242 on node7").

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

pub(crate) use super::holder::Holder;
use crate::error::{RegistryError, Result};

/// How often a holder renews its claim (and its private partial files).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(10);
/// A claim or private partial not renewed for this long (by the filesystem's clock) belongs
/// to a process that is gone.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(60);

/// How a directory's files are locked.
#[derive(Clone, Debug)]
enum Mode {
    /// `flock` works and excludes.
    Os,
    /// Claim files, and why `flock` cannot be used.
    Claim(#[cfg_attr(not(feature = "registry"), allow(dead_code))] String),
}

fn modes() -> &'static Mutex<HashMap<PathBuf, Mode>> {
    static MODES: OnceLock<Mutex<HashMap<PathBuf, Mode>>> = OnceLock::new();
    MODES.get_or_init(Mutex::default)
}

fn mode_of(dir: &Path) -> Option<Mode> {
    modes().lock().unwrap_or_else(|e| e.into_inner()).get(dir).cloned()
}

fn set_mode(dir: &Path, mode: Mode) {
    modes().lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_path_buf(), mode);
}

/// Whether `e` says the filesystem has no working `flock`.
fn unsupported(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let Some(code) = e.raw_os_error() else { return false };
        let errno = Errno::from_raw_os_error(code);
        [Errno::NOSYS, Errno::NOLCK, Errno::OPNOTSUPP, Errno::NOTSUP, Errno::INVAL].contains(&errno)
    }
    #[cfg(not(unix))]
    {
        e.kind() == std::io::ErrorKind::Unsupported
    }
}

/// Whether files in `dir` must be written under names of their own per process (partial
/// downloads): where locks are claim files, and on network filesystems, whose OS locks may
/// exclude only the processes of one node. Known after a lock in `dir` was first tried.
#[cfg(feature = "registry")]
pub(crate) fn private_partials(dir: &Path) -> bool {
    match mode_of(dir) {
        Some(Mode::Os) => is_network_filesystem(dir),
        Some(Mode::Claim(_)) | None => true,
    }
}

/// Whether `dir` is on a network (or FUSE) filesystem, by its `statfs` type.
#[cfg(all(target_os = "linux", feature = "registry"))]
pub(crate) fn is_network_filesystem(dir: &Path) -> bool {
    const NETWORK: &[u64] = &[
        0x6969,      // NFS
        0x517b,      // SMB
        0xfe53_4d42, // SMB2
        0xff53_4d42, // CIFS
        0x7375_7245, // Coda
        0x5346_414f, // AFS
        0x0bd0_0bd0, // Lustre
        0x4750_4653, // GPFS
        0x00c3_6400, // Ceph
        0x0102_1997, // 9P
        0x6573_5546, // FUSE (sshfs, s3fs, …)
        0x7461_636f, // OCFS2
        0x0116_1970, // GFS2
        0x2003_0528, // OrangeFS
        0x1983_0326, // BeeGFS
    ];
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    rustix::fs::statfs(dir).is_ok_and(|st| NETWORK.contains(&(st.f_type as u64)))
}

/// Whether `dir` is on a network filesystem (unknown here: assumed not).
#[cfg(all(not(target_os = "linux"), feature = "registry"))]
pub(crate) fn is_network_filesystem(_dir: &Path) -> bool {
    false
}

/// The reason locks do not work in `dir`, the first time it is asked for in this process
/// (for one notice), else `None`.
#[cfg(feature = "registry")]
pub(crate) fn take_fallback_notice(dir: &Path) -> Option<String> {
    static SAID: OnceLock<Mutex<std::collections::HashSet<PathBuf>>> = OnceLock::new();
    let Some(Mode::Claim(reason)) = mode_of(dir) else { return None };
    let mut said = SAID.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    said.insert(dir.to_path_buf()).then_some(reason)
}

/// The lock of one thing (a model, the custom catalog).
#[derive(Clone, Debug)]
pub(crate) struct Lock {
    path: PathBuf,
    claim: PathBuf,
    dir: PathBuf,
}

/// The outcome of one try.
pub(crate) enum Attempt {
    /// Taken: held until the guard drops.
    Acquired(Guard),
    /// Another process holds it (who, when it said).
    Busy(Option<Holder>),
}

impl Lock {
    /// The lock whose OS lock file is `path` (`<name>.lock`); its claim file, used where OS
    /// locks do not work, is `<name>.claim` beside it.
    pub(crate) fn new(path: &Path) -> Self {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = name.strip_suffix(".lock").unwrap_or(&name);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self { path: path.to_path_buf(), claim: dir.join(format!("{stem}.claim")), dir }
    }

    /// The OS lock file.
    #[cfg(feature = "registry")]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The claim file that stands in for the OS lock where `flock` does not work.
    #[cfg(feature = "registry")]
    pub(crate) fn claim_path(&self) -> &Path {
        &self.claim
    }

    /// Tries once to take the lock (creating the lock file if needed).
    pub(crate) fn try_acquire(&self) -> Result<Attempt> {
        if let Some(Mode::Claim(_)) = mode_of(&self.dir) {
            return self.try_claim();
        }
        let file = open_lock_file(&self.path)?;
        match file.try_lock() {
            Ok(()) => {
                if mode_of(&self.dir).is_none() {
                    if let Some(reason) = self.excludes_nobody() {
                        drop(file);
                        set_mode(&self.dir, Mode::Claim(reason));
                        return self.try_claim();
                    }
                    set_mode(&self.dir, Mode::Os);
                }
                write_holder(&file);
                Ok(Attempt::Acquired(Guard::new(Held::Os(file))))
            }
            Err(fs::TryLockError::WouldBlock) => Ok(Attempt::Busy(read_holder(&self.path))),
            Err(fs::TryLockError::Error(e)) if unsupported(&e) => {
                set_mode(&self.dir, Mode::Claim(format!("flock(2) fails there: {e}")));
                self.try_claim()
            }
            Err(fs::TryLockError::Error(e)) => Err(RegistryError::storage("lock", &self.path, e)),
        }
    }

    /// With the lock taken through one open file: `Some(why)` when a second open file of
    /// the same lock file can take it too (the OS lock excludes nobody).
    fn excludes_nobody(&self) -> Option<String> {
        let probe = fs::File::open(&self.path).ok()?;
        match probe.try_lock() {
            Ok(()) => Some(
                "flock(2) succeeds there without excluding anyone (a second open file took the same lock)"
                    .into(),
            ),
            Err(fs::TryLockError::Error(e)) if unsupported(&e) => Some(format!("flock(2) fails there: {e}")),
            Err(_) => None,
        }
    }

    /// Takes the lock, waiting as long as it takes (for short critical sections: the
    /// custom catalog).
    pub(crate) fn acquire_blocking(&self) -> Result<Guard> {
        loop {
            match self.try_acquire()? {
                Attempt::Acquired(g) => return Ok(g),
                Attempt::Busy(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Whether another live process holds the lock (creates nothing).
    pub(crate) fn is_held_elsewhere(&self) -> bool {
        if let Some(Mode::Claim(_)) = mode_of(&self.dir) {
            return self.claim_is_live();
        }
        let Ok(file) = fs::File::open(&self.path) else { return self.claim_is_live() };
        match file.try_lock() {
            Ok(()) => self.claim_is_live(),
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => self.claim_is_live(),
        }
    }

    /// Who holds it, for a message: the holder as it recorded itself, or, when it recorded
    /// nothing readable, which file holds the lock.
    pub(crate) fn describe(&self, holder: Option<&Holder>) -> String {
        match holder {
            Some(h) => h.to_string(),
            None => {
                let file =
                    if let Some(Mode::Claim(_)) = mode_of(&self.dir) { &self.claim } else { &self.path };
                format!("{} names no process", file.display())
            }
        }
    }

    /// Whether this lock has been used at all (a lock or claim file exists).
    pub(crate) fn exists(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok() || fs::symlink_metadata(&self.claim).is_ok()
    }

    fn claim_is_live(&self) -> bool {
        read_claim(&self.claim).is_some_and(|c| !self.claim_is_stale(&c))
    }

    fn try_claim(&self) -> Result<Attempt> {
        for _ in 0..4 {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            match opts.open(&self.claim) {
                Ok(mut f) => {
                    let _ = f.write_all(Holder::me().line().as_bytes()).and_then(|()| f.sync_all());
                    let mut guard = Guard::new(Held::Claim(self.claim.clone()));
                    guard.keep_alive(self.claim.clone());
                    return Ok(Attempt::Acquired(guard));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let Some(claim) = read_claim(&self.claim) else { continue }; // just released
                    if !self.claim_is_stale(&claim) {
                        return Ok(Attempt::Busy(claim.holder));
                    }
                    if let Some(live) = self.break_claim(&claim)? {
                        return Ok(Attempt::Busy(live));
                    }
                }
                Err(e) => return Err(RegistryError::storage("create the claim file", &self.claim, e)),
            }
        }
        Ok(Attempt::Busy(read_claim(&self.claim).and_then(|c| c.holder)))
    }

    /// Breaks the stale claim `stale` by moving it aside (of two processes that judged it
    /// stale, one moves it, the other finds it gone), then deletes it. Between the judgement
    /// and the move, its holder may have released it and another process made a new claim:
    /// that one is recognised by its inode and put back (`Some(its holder)`: busy).
    fn break_claim(&self, stale: &Claim) -> Result<Option<Option<Holder>>> {
        let name = self.claim.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let aside = self.dir.join(format!("{name}.stale.{}", Holder::me().tag()));
        match fs::rename(&self.claim, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::storage("break the stale claim", &self.claim, e)),
        }
        let moved = read_claim(&aside);
        if moved.as_ref().is_none_or(|m| m.is(stale)) {
            let _ = fs::remove_file(&aside);
            return Ok(None);
        }
        // A live claim was moved: back under its name, unless yet another was made meanwhile.
        if fs::hard_link(&aside, &self.claim).is_err() && fs::symlink_metadata(&self.claim).is_err() {
            let _ = fs::rename(&aside, &self.claim); // no hard links here (exFAT)
        }
        let _ = fs::remove_file(&aside);
        Ok(Some(moved.and_then(|m| m.holder)))
    }

    /// Whether the claim's holder is gone: a process whose pid can be checked here and that is
    /// gone ([`Holder::is_gone`]), or a claim not renewed for [`STALE_AFTER`] by the
    /// filesystem's clock.
    fn claim_is_stale(&self, claim: &Claim) -> bool {
        if let Some(h) = claim.holder.as_ref().filter(|h| h.is_here()) {
            return h.is_gone();
        }
        age_on_filesystem(&claim.meta, &self.dir) > STALE_AFTER
    }
}

/// A claim file as read: its holder (when its line is whole), its metadata and its identity,
/// all from one open file.
struct Claim {
    holder: Option<Holder>,
    meta: fs::Metadata,
    id: (u64, u64),
}

impl Claim {
    /// Whether this is the same claim as `other`: the same file (inode numbers are reused at
    /// once: a claim made just after another was deleted may get its number), the same
    /// holder's nonce and the same modification time.
    fn is(&self, other: &Claim) -> bool {
        self.id == other.id
            && self.holder.as_ref().map(|h| h.nonce) == other.holder.as_ref().map(|h| h.nonce)
            && self.meta.modified().ok() == other.meta.modified().ok()
    }
}

/// Reads the claim at `path`; `None` when there is none.
fn read_claim(path: &Path) -> Option<Claim> {
    let file = fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let mut text = String::new();
    let holder = (&file).take(512).read_to_string(&mut text).ok().and_then(|_| Holder::parse(&text));
    Some(Claim { holder, id: file_id(&meta), meta })
}

/// A file's identity: its device and inode (unknown elsewhere: one value for every file).
#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(_meta: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// How long ago `meta`'s file was modified, by the clock of the filesystem in `dir` (on a
/// network filesystem the server's, not this host's: a file made there tells the time there).
/// The difference between the two clocks is measured at most every 30 s per directory.
pub(crate) fn age_on_filesystem(meta: &fs::Metadata, dir: &Path) -> Duration {
    let Ok(modified) = meta.modified() else { return Duration::ZERO };
    filesystem_now(dir).duration_since(modified).unwrap_or_default()
}

/// The time now by the clock of the filesystem holding `dir`.
fn filesystem_now(dir: &Path) -> SystemTime {
    /// Per directory: when its clock was read, what it said, and what ours said then.
    type Reading = (std::time::Instant, SystemTime, SystemTime);
    static SKEW: OnceLock<Mutex<HashMap<PathBuf, Reading>>> = OnceLock::new();
    let mut skews = SKEW.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    let local = SystemTime::now();
    if let Some((_, theirs, ours)) = skews.get(dir).filter(|(at, ..)| at.elapsed() < Duration::from_secs(30))
    {
        // Their clock moved as ours did since it was read.
        return match local.duration_since(*ours) {
            Ok(d) => *theirs + d,
            Err(_) => *theirs,
        };
    }
    let theirs = tempfile::Builder::new()
        .prefix(".clock.")
        .tempfile_in(dir)
        .ok()
        .and_then(|t| t.as_file().metadata().ok())
        .and_then(|m| m.modified().ok())
        .unwrap_or(local);
    skews.insert(dir.to_path_buf(), (std::time::Instant::now(), theirs, local));
    theirs
}

/// Opens (creating if needed, mode 0666 before the umask) a lock file; read-only when it
/// exists but cannot be written (an OS lock needs no write access).
fn open_lock_file(path: &Path) -> Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    super::no_follow(&mut opts);
    let failed = |e: std::io::Error| {
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            // Never written through: a link planted in a shared directory would aim the
            // holder line at any file the process may write.
            let e =
                std::io::Error::other("it is a symbolic link, and a lock file must not be one; remove it");
            return RegistryError::storage("open lock file", path, e);
        }
        RegistryError::storage("open lock file", path, e)
    };
    match opts.open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && path.exists() => {
            let mut read = fs::OpenOptions::new();
            read.read(true);
            super::no_follow(&mut read);
            read.open(path).map_err(failed)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Records who holds an OS lock in its file (information only; best effort).
fn write_holder(file: &fs::File) {
    let line = Holder::me().line();
    let _ = file.set_len(0).and_then(|()| {
        let mut f = file;
        f.write_all(line.as_bytes())
    });
}

fn read_holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    fs::File::open(path).ok()?.take(512).read_to_string(&mut text).ok()?;
    Holder::parse(&text)
}

enum Held {
    Os(#[allow(dead_code)] fs::File),
    Claim(PathBuf),
}

/// A lock taken; released when dropped. It can keep other files marked as alive (their
/// modification time renewed every [`HEARTBEAT`]) while it is held: private partial files.
pub(crate) struct Guard {
    held: Held,
    heartbeat: Option<Heartbeat>,
}

struct Heartbeat {
    stop: Arc<(Mutex<bool>, Condvar)>,
    paths: Arc<Mutex<Vec<PathBuf>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Guard {
    fn new(held: Held) -> Self {
        Self { held, heartbeat: None }
    }

    /// Whether the lock is a claim file (OS locks do not work here).
    #[cfg(test)]
    pub(crate) fn is_claim(&self) -> bool {
        matches!(self.held, Held::Claim(_))
    }

    /// Keeps `path` marked as alive while the guard is held.
    pub(crate) fn keep_alive(&mut self, path: PathBuf) {
        let beat = self.heartbeat.get_or_insert_with(|| {
            let stop = Arc::new((Mutex::new(false), Condvar::new()));
            let paths: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
            let (s, p) = (stop.clone(), paths.clone());
            let thread = std::thread::Builder::new()
                .name("strata-model-heartbeat".into())
                .spawn(move || {
                    let (lock, wake) = &*s;
                    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while !*stopped {
                        stopped = wake.wait_timeout(stopped, HEARTBEAT).unwrap_or_else(|e| e.into_inner()).0;
                        if *stopped {
                            break;
                        }
                        for path in p.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                            super::touch_now(path);
                        }
                    }
                })
                .ok();
            Heartbeat { stop, paths, thread }
        });
        beat.paths.lock().unwrap_or_else(|e| e.into_inner()).push(path);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut beat) = self.heartbeat.take() {
            *beat.stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
            beat.stop.1.notify_all();
            if let Some(t) = beat.thread.take() {
                let _ = t.join();
            }
        }
        if let Held::Claim(path) = &self.held {
            // Only our own claim goes: one broken and remade by another process stays.
            if read_holder(path).is_some_and(|h| h.nonce == Holder::me().nonce && h.pid == Holder::me().pid) {
                let _ = fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_round_trip_and_tags_name_pid_and_host() {
        let me = Holder::me();
        assert_eq!(Holder::parse(&me.line()).as_ref(), Some(me));
        assert!(me.is_here() && !me.is_gone());
        let tagged = Holder::from_tag(&me.tag()).unwrap();
        assert_eq!((tagged.pid, tagged.host.as_str()), (me.pid, me.host.as_str()));
        assert!(!me.tag().contains('.') && !me.tag().contains('/'));
        assert_eq!(Holder::parse("garbage"), None);
        let line = me.line();
        assert_eq!(
            Holder::parse(&line[..line.len() - 3]),
            None,
            "a line cut short while written is no holder"
        );
        let elsewhere = Holder { host: "other-host".into(), ..me.clone() };
        assert!(!elsewhere.is_gone(), "a process of another host is never known to be gone");
        assert_eq!(elsewhere.to_string(), format!("pid {} on other-host", me.pid));
    }

    #[test]
    fn a_held_lock_is_busy_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::new(&dir.path().join("m.gguf.lock"));
        assert!(!lock.exists() && !lock.is_held_elsewhere());
        let Attempt::Acquired(held) = lock.try_acquire().unwrap() else { panic!("free") };
        assert!(!held.is_claim(), "flock works on this test's filesystem");
        // A second open file description of the lock, as another process would have.
        let other = fs::File::open(lock.path()).unwrap();
        assert!(matches!(other.try_lock(), Err(fs::TryLockError::WouldBlock)));
        assert_eq!(read_holder(lock.path()).as_ref(), Some(Holder::me()));
        drop(held);
        assert!(other.try_lock().is_ok());
    }

    #[test]
    fn claims_exclude_until_released_and_stale_ones_are_broken() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::new(&dir.path().join("m.gguf.lock"));
        set_mode(dir.path(), Mode::Claim("test".into()));
        let Attempt::Acquired(held) = lock.try_acquire().unwrap() else { panic!("free") };
        assert!(held.is_claim());
        assert!(dir.path().join("m.gguf.claim").exists());
        // This process holds it: another try is busy and names us.
        match lock.try_acquire().unwrap() {
            Attempt::Busy(Some(h)) => assert_eq!(&h, Holder::me()),
            _ => panic!("a held claim must be busy"),
        }
        drop(held);
        assert!(!dir.path().join("m.gguf.claim").exists(), "released");
        // A claim of a process of this host that no longer runs is broken at once.
        let dead = Holder { pid: 999_999_999, ..Holder::me().clone() };
        fs::write(dir.path().join("m.gguf.claim"), dead.line()).unwrap();
        assert!(matches!(lock.try_acquire().unwrap(), Attempt::Acquired(_)));
        // One of another host is waited for while it is renewed…
        let far = Holder { host: "far-away".into(), ..Holder::me().clone() };
        fs::write(dir.path().join("m.gguf.claim"), far.line()).unwrap();
        assert!(matches!(lock.try_acquire().unwrap(), Attempt::Busy(Some(h)) if h.host == "far-away"));
        assert!(lock.is_held_elsewhere());
        // … and broken once it has not been for a while.
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(5);
        fs::File::options()
            .write(true)
            .open(dir.path().join("m.gguf.claim"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(!lock.is_held_elsewhere());
        assert!(matches!(lock.try_acquire().unwrap(), Attempt::Acquired(_)));
    }
}
