//! [`Holder`]: who holds a lock — a process, by its pid, its pid namespace, its host and its
//! start time — and whether it is known to be gone.
//!
//! A pid means something only in its pid namespace: containers that share the host's name
//! (`--network host`, Kubernetes `hostNetwork`) do not share pids. So a holder counts as
//! "here" (its pid checkable) only with the same host name *and* the same pid namespace
//! (Linux: the inode of `/proc/self/ns/pid`); any other holder is judged by its heartbeat.

use std::fs;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The longest host name kept whole in a holder; a longer one is cut and given a hash of
/// the whole, so that a tag keeps file names short and still tells hosts apart.
const HOST_MAX: usize = 28;

/// Who holds a lock, as it wrote itself into the lock or claim file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Its process id.
    pub pid: u32,
    /// The inode of its pid namespace (Linux), when known.
    pub pidns: Option<u64>,
    /// Its host name: letters, digits and `-`, at most [`HOST_MAX`] characters.
    pub host: String,
    /// When the process started, in clock ticks since boot (Linux), to tell a reused pid.
    pub started: Option<u64>,
    /// A number of its own, to tell its claim from a later one.
    pub nonce: Option<u64>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

impl Holder {
    /// This process.
    pub(crate) fn me() -> &'static Holder {
        static ME: OnceLock<Holder> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            let nonce = {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u32(pid);
                h.write_u128(
                    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos(),
                );
                h.finish()
            };
            Holder {
                pid,
                pidns: pid_namespace(),
                host: host_name(),
                started: start_time(pid),
                nonce: Some(nonce),
            }
        })
    }

    /// A tag for this process's own files: `<pid>-<pid namespace>-<host>` (`0` for an unknown
    /// namespace), made of letters, digits and `-` only.
    pub(crate) fn tag(&self) -> String {
        format!("{}-{}-{}", self.pid, self.pidns.unwrap_or(0), self.host)
    }

    /// The process a tag made by [`Holder::tag`] names.
    #[cfg(feature = "registry")]
    pub(crate) fn from_tag(tag: &str) -> Option<Holder> {
        let mut parts = tag.splitn(3, '-');
        let pid = parts.next()?.parse().ok()?;
        let pidns = parts.next()?.parse().ok().filter(|n| *n != 0);
        let host = parts.next().filter(|h| !h.is_empty())?.to_string();
        Some(Holder { pid, pidns, host, started: None, nonce: None })
    }

    pub(super) fn line(&self) -> String {
        let mut s = format!("pid={} host={}", self.pid, self.host);
        for (k, v) in [("pidns", self.pidns), ("started", self.started), ("nonce", self.nonce)] {
            if let Some(v) = v {
                s.push_str(&format!(" {k}={v}"));
            }
        }
        s.push('\n');
        s
    }

    /// Reads a line written by [`Holder::line`]. Only a whole line counts: a file read while
    /// its holder writes it may be cut short (`started=12` for `started=1234` would make a
    /// live holder look like another process that reused its pid).
    pub(super) fn parse(text: &str) -> Option<Holder> {
        let text = text.strip_suffix('\n')?;
        let mut h = Holder { pid: 0, pidns: None, host: String::new(), started: None, nonce: None };
        for field in text.split_whitespace() {
            match field.split_once('=') {
                Some(("pid", v)) => h.pid = v.parse().ok()?,
                Some(("pidns", v)) => h.pidns = v.parse().ok(),
                Some(("host", v)) => h.host = v.to_string(),
                Some(("started", v)) => h.started = v.parse().ok(),
                Some(("nonce", v)) => h.nonce = v.parse().ok(),
                _ => {}
            }
        }
        (h.pid != 0 && !h.host.is_empty()).then_some(h)
    }

    /// Whether its pid can be checked here: the same host and the same pid namespace.
    pub(crate) fn is_here(&self) -> bool {
        let me = Holder::me();
        self.host == me.host && self.pidns == me.pidns
    }

    /// Whether it is known to be gone: a process whose pid can be checked here (see
    /// [`Holder::is_here`]) and that no longer runs, has exited unreaped (a zombie), or whose
    /// pid now belongs to a process that started at another time. Any other holder is never
    /// known to be gone this way.
    pub(crate) fn is_gone(&self) -> bool {
        if !self.is_here() || self.pid == Holder::me().pid {
            return false;
        }
        if !process_exists(self.pid) {
            return true;
        }
        let stat = Stat::of(self.pid);
        if stat.as_ref().is_some_and(|s| s.exited) {
            return true;
        }
        matches!((self.started, stat.and_then(|s| s.started)), (Some(a), Some(b)) if a != b)
    }
}

/// A host name as holders write it: letters, digits and `-`; a long one cut, with a hash of
/// the whole so that two hosts with a long common prefix stay apart.
fn short_host(raw: &str) -> String {
    let host: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    if host.is_empty() {
        return "localhost".into();
    }
    if host.len() <= HOST_MAX {
        return host;
    }
    // FNV-1a: stable across processes and builds (a std hasher is not).
    let hash =
        raw.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{}{:08x}", &host[..HOST_MAX - 8], hash as u32)
}

#[cfg(unix)]
fn host_name() -> String {
    short_host(&rustix::system::uname().nodename().to_string_lossy())
}

#[cfg(not(unix))]
fn host_name() -> String {
    short_host(
        &std::env::var_os("COMPUTERNAME").map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
    )
}

/// The inode of this process's pid namespace (Linux), from `/proc/self/ns/pid` (`pid:[N]`).
fn pid_namespace() -> Option<u64> {
    let link = fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// What `/proc/<pid>/stat` says of a process (Linux).
struct Stat {
    /// It has exited but is not reaped yet (state `Z` or `X`).
    exited: bool,
    /// When it started, in clock ticks since boot (field 22).
    started: Option<u64>,
}

impl Stat {
    fn of(pid: u32) -> Option<Stat> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
        let state = fields.next()?;
        Some(Stat {
            exited: matches!(state, "Z" | "X"),
            started: fields.nth(18).and_then(|t| t.parse().ok()),
        })
    }
}

/// When process `pid` started, in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    Stat::of(pid)?.started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_host_names_are_cut_and_told_apart() {
        let a = short_host(&format!("{}-a.cluster.example", "node".repeat(10)));
        let b = short_host(&format!("{}-b.cluster.example", "node".repeat(10)));
        assert_eq!((a.len(), b.len()), (HOST_MAX, HOST_MAX));
        assert_ne!(a, b);
        assert_eq!(short_host("node7.local"), "node7-local");
        assert_eq!(short_host(""), "localhost");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_exited_child_not_yet_reaped_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let holder = Holder { pid, ..Holder::me().clone() };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !Stat::of(pid).is_some_and(|s| s.exited) {
            assert!(std::time::Instant::now() < deadline, "the child did not exit");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(holder.is_gone(), "a zombie holds nothing");
        child.wait().unwrap();
        assert!(holder.is_gone());
        assert!(pid_namespace().is_some());
        let elsewhere = Holder { pidns: Some(1), ..holder };
        assert!(!elsewhere.is_gone(), "a pid of another namespace cannot be checked here");
    }
}
