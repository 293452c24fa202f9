//! [`Holder`]: who holds a lock — a process, by its pid, host and start time — and whether it
//! is known to be gone.

use std::fs;
use std::sync::OnceLock;
use std::time::SystemTime;

/// Who holds a lock, as it wrote itself into the lock or claim file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its host name.
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
            Holder { pid, host: host_name(), started: start_time(pid), nonce: Some(nonce) }
        })
    }

    /// A tag for this process's own files: `<pid>-<host>`, the host reduced to letters,
    /// digits and `-`.
    pub(crate) fn tag(&self) -> String {
        format!("{}-{}", self.pid, self.host)
    }

    /// The pid and host a tag made by [`Holder::tag`] names.
    #[cfg(feature = "registry")]
    pub(crate) fn from_tag(tag: &str) -> Option<Holder> {
        let (pid, host) = tag.split_once('-')?;
        Some(Holder { pid: pid.parse().ok()?, host: host.to_string(), started: None, nonce: None })
    }

    pub(super) fn line(&self) -> String {
        let mut s = format!("pid={} host={}", self.pid, self.host);
        if let Some(t) = self.started {
            s.push_str(&format!(" started={t}"));
        }
        if let Some(n) = self.nonce {
            s.push_str(&format!(" nonce={n}"));
        }
        s.push('\n');
        s
    }

    pub(super) fn parse(text: &str) -> Option<Holder> {
        let mut h = Holder { pid: 0, host: String::new(), started: None, nonce: None };
        for field in text.split_whitespace() {
            match field.split_once('=') {
                Some(("pid", v)) => h.pid = v.parse().ok()?,
                Some(("host", v)) => h.host = v.to_string(),
                Some(("started", v)) => h.started = v.parse().ok(),
                Some(("nonce", v)) => h.nonce = v.parse().ok(),
                _ => {}
            }
        }
        (h.pid != 0 && !h.host.is_empty()).then_some(h)
    }

    /// Whether it is a process of this host.
    pub(crate) fn is_here(&self) -> bool {
        self.host == Holder::me().host
    }

    /// Whether it is known to be gone: a process of this host whose pid no longer runs (or now
    /// belongs to a process that started at another time). A process of another host is never
    /// known to be gone this way.
    pub(crate) fn is_gone(&self) -> bool {
        if !self.is_here() {
            return false;
        }
        if self.pid == Holder::me().pid {
            return false;
        }
        if !process_exists(self.pid) {
            return true;
        }
        matches!((self.started, start_time(self.pid)), (Some(a), Some(b)) if a != b)
    }
}

#[cfg(unix)]
fn host_name() -> String {
    let uname = rustix::system::uname();
    let raw = uname.nodename().to_string_lossy();
    let host: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    if host.is_empty() {
        "localhost".into()
    } else {
        host
    }
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var_os("COMPUTERNAME")
        .and_then(|h| h.into_string().ok())
        .map(|h| h.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect())
        .unwrap_or_else(|| "localhost".into())
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

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`, field 22).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}
