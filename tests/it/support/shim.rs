//! An `LD_PRELOAD` shim (`fsshim.c`, built here with gcc on first use) that makes the binary
//! see a filesystem whose locks or symbolic links fail: `flock`/`fcntl` locks that fail with
//! ENOSYS, ENOLCK or EOPNOTSUPP or succeed without excluding anyone, `symlink` that fails
//! with EPERM, and (with [`fail_hard_links`]) `link` that fails with EPERM, as on exFAT. The
//! binary links glibc dynamically, so the shim applies to it (not to the tests' own process).
//! Missing gcc is a failure under `CI=true`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// How the shimmed calls behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locks {
    /// `flock`/`fcntl` locks fail with this errno name (`enosys`, `enolck`, `eopnotsupp`).
    Fail(&'static str),
    /// They succeed without locking anything (Lustre `localflock`, some NFS/GPFS mounts).
    NoOp,
}

/// The built shim, or why it cannot be built (`None` outside CI, after saying why).
pub fn path() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(BUILT.get_or_init(|| build("fsshim", include_str!("fsshim.c"))))
}

/// A shim that kills the process (SIGKILL) at the `KILLSHIM_NTH`-th rename of a staged update
/// file into place (`killshim.c`): an update cut short between its catalog rewrite and its
/// renames.
pub fn kill_path() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(BUILT.get_or_init(|| build("killshim", include_str!("killshim.c"))))
}

fn build(name: &str, source: &str) -> Result<PathBuf, String> {
    {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let src = dir.join(format!("{name}.c"));
        std::fs::write(&src, source).map_err(|e| e.to_string())?;
        let out = dir.join(format!("{name}-{}.so", std::process::id()));
        let status = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-ldl")
            .status()
            .map_err(|e| format!("gcc: {e}"))?;
        if !status.success() {
            return Err(format!("gcc failed: {status}"));
        }
        Ok(out)
    }
}

fn built(built: &Result<PathBuf, String>) -> Option<PathBuf> {
    match built {
        Ok(p) => Some(p.clone()),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the LD_PRELOAD shim cannot be built ({e}); CI must have gcc")
        }
        Err(e) => {
            eprintln!("skipping: the LD_PRELOAD shim cannot be built ({e})");
            None
        }
    }
}

/// Makes `cmd` run under the shim with `locks` and, when `symlinks_fail`, failing symlinks.
pub fn apply(cmd: &mut Command, shim: &std::path::Path, locks: Option<Locks>, symlinks_fail: bool) {
    cmd.env("LD_PRELOAD", shim);
    match locks {
        Some(Locks::Fail(errno)) => cmd.env("STRATA_SHIM_FLOCK", errno),
        Some(Locks::NoOp) => cmd.env("STRATA_SHIM_FLOCK", "noop"),
        None => cmd.env_remove("STRATA_SHIM_FLOCK"),
    };
    if symlinks_fail {
        cmd.env("STRATA_SHIM_SYMLINK", "eperm");
    } else {
        cmd.env_remove("STRATA_SHIM_SYMLINK");
    }
}

/// Makes hard links fail too in `cmd` (already [`apply`]d): exFAT and vfat have neither
/// symbolic nor hard links.
pub fn fail_hard_links(cmd: &mut Command) {
    cmd.env("STRATA_SHIM_LINK", "eperm");
}
