//! A models directory shared by a group (a setgid directory, umask 0002), used by two real
//! users: every file and folder follows the umask and keeps the group, so every member can
//! download, resume another's partial, verify, remove and prune; a removal that cannot
//! complete changes nothing. CI runs as root, which creates the users and group here.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::hub::Faults;
use crate::support::{gguf_bytes, register, setup, Run, Setup};

pub(crate) const GROUP: &str = "strata-models";
pub(crate) const USERS: [&str; 2] = ["strata-alice", "strata-bob"];

/// The group's id, once the group and its two users exist; `None` when this cannot be done
/// here (not root, no useradd), which fails under CI=true.
pub(crate) fn group() -> Option<u32> {
    static MADE: OnceLock<Result<u32, String>> = OnceLock::new();
    let made = MADE.get_or_init(|| {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !root {
            return Err("not root: users and groups cannot be made".into());
        }
        let exists = |db: &str, name: &str| {
            Command::new("getent").args([db, name]).output().is_ok_and(|o| o.status.success())
        };
        if !exists("group", GROUP) {
            let st = Command::new("groupadd").arg(GROUP).status().map_err(|e| format!("groupadd: {e}"))?;
            if !st.success() && !exists("group", GROUP) {
                return Err(format!("groupadd failed: {st}"));
            }
        }
        for user in USERS {
            if !exists("passwd", user) {
                let st = Command::new("useradd")
                    .args(["-M", "-N", "-g", GROUP, "-s", "/usr/sbin/nologin", user])
                    .status()
                    .map_err(|e| format!("useradd: {e}"))?;
                if !st.success() && !exists("passwd", user) {
                    return Err(format!("useradd failed: {st}"));
                }
            }
        }
        let out = Command::new("getent").args(["group", GROUP]).output().map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout)
            .split(':')
            .nth(2)
            .and_then(|g| g.trim().parse().ok())
            .ok_or_else(|| "no gid".to_string())
    });
    match made {
        Ok(gid) => Some(*gid),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{e}: CI runs as root and must test this")
        }
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// A sandbox whose models directory is a setgid directory of the group (2775, as an admin
/// makes one), reachable by the users, with `tiny` and `tiny2` registered.
/// `bin ARGS` as `user` of the group with `umask`, on the models directory `models` and the
/// Hub look-alike `hub`, with no HOME.
pub(crate) fn member(
    user: &str,
    umask: &str,
    bin: &Path,
    models: &Path,
    hub: &crate::support::hub::Hub,
    args: &[&str],
) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        user,
        "--regid",
        GROUP,
        "--init-groups",
        "sh",
        "-c",
        &format!("umask {umask}; exec \"$0\" \"$@\""),
    ])
    .arg(bin)
    .args(args)
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env("HOME", "/nonexistent")
    .env("STRATA_MODELS_DIR", models)
    .env("HF_ENDPOINT", hub.endpoint())
    .env("SSL_CERT_FILE", &hub.ca_file);
    c
}

struct Shared {
    s: Setup,
    bin: PathBuf,
    gid: u32,
    bytes2: Vec<u8>,
}

fn shared() -> Option<Shared> {
    let gid = group()?;
    let s = setup(6 << 20);
    let bytes2 = gguf_bytes("bert", 384, 2 << 20, 3);
    let file2 = register(&s.sb, "tiny2", &bytes2);
    s.hub.add_file(&file2, bytes2.clone());
    let models = s.sb.models();
    let _ = fs::remove_dir_all(models.join(".strata"));
    // The users must reach the binary, the directory and the test CA.
    let bin = s.sb.tmp.path().join("strata-model");
    fs::copy(env!("CARGO_BIN_EXE_strata-model"), &bin).unwrap();
    for dir in [s.sb.tmp.path(), s.hub.ca_file.parent().unwrap()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::chown(&models, None, Some(gid)).unwrap();
    fs::set_permissions(&models, fs::Permissions::from_mode(0o2775)).unwrap();
    Some(Shared { s, bin, gid, bytes2 })
}

impl Shared {
    /// The binary as `user` of the group, with `umask`.
    fn cmd(&self, user: &str, umask: &str, args: &[&str]) -> Command {
        member(user, umask, &self.bin, &self.s.sb.models(), &self.s.hub, args)
    }

    fn run(&self, user: &str, args: &[&str]) -> Run {
        Run::of(self.cmd(user, "0002", args).output().unwrap())
    }
}

/// `(mode & 07777, owner uid, group)` of a path.
fn mode(p: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn uid(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn every_member_of_the_group_can_download_resume_verify_remove_and_prune() {
    let Some(g) = shared() else { return };
    let [alice, bob] = USERS;
    let state = g.s.sb.models().join(".strata");

    // Alice starts a download and is killed: her partial stays, in a folder she made.
    g.s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let mut child = g
        .cmd(alice, "0002", &["download", "tiny", "--connections", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(g.s.partial_path()).map_or(0, |m| m.len()) < 1_000_000 {
        assert!(Instant::now() < deadline, "alice's download did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        mode(&state),
        (0o2775, uid(alice), g.gid),
        "the state folder follows the umask, keeps the group"
    );
    assert_eq!(mode(&g.s.partial_path()), (0o664, uid(alice), g.gid), "the partial too");

    // Bob resumes it.
    g.s.hub.set_faults(Faults::default());
    let r = g.run(bob, &["download", "tiny", "--connections", "1"]).ok();
    assert!(r.stderr.contains("resuming tiny"), "{}", r.stderr);
    assert_eq!(fs::read(g.s.model_path()).unwrap(), g.s.bytes);
    assert_eq!(mode(&g.s.model_path()).0, 0o664);
    assert_eq!(mode(&g.s.model_path()).2, g.gid);
    for side in ["verified", "origin", "used"] {
        let p = state.join(format!("{}.{side}", g.s.file));
        assert_eq!((mode(&p).0, mode(&p).2), (0o664, g.gid), "{side}");
    }

    // Alice downloads another model into the folder, verifies Bob's, and uses it.
    g.run(alice, &["download", "tiny2"]).ok();
    assert_eq!(fs::read(g.s.sb.models().join("tiny2-Q8_0.gguf")).unwrap(), g.bytes2);
    assert!(g.run(alice, &["verify", "tiny"]).ok().stdout.starts_with("ok"));
    g.run(alice, &["download", "tiny"]).ok();

    // Bob removes Alice's model; Alice prunes Bob's.
    let r = g.run(bob, &["remove", "tiny2"]).ok();
    assert!(r.stdout.starts_with("removed tiny2"), "{}", r.stdout);
    assert!(!g.s.sb.models().join("tiny2-Q8_0.gguf").exists());
    let r = g.run(alice, &["prune", "--max-size", "0B"]).ok();
    assert!(r.stdout.contains("tiny"), "{}", r.stdout);
    assert!(!g.s.model_path().exists());
    let left: Vec<_> = fs::read_dir(&state).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(
        left.iter()
            .all(|n| n.to_string_lossy().ends_with(".lock") || n.to_string_lossy().ends_with(".claim")),
        "{left:?}"
    );
}

#[test]
fn with_umask_0022_files_are_0644_and_a_removal_that_cannot_complete_changes_nothing() {
    let Some(g) = shared() else { return };
    let [alice, bob] = USERS;
    let state = g.s.sb.models().join(".strata");
    let r = Run::of(g.cmd(alice, "0022", &["download", "tiny"]).output().unwrap()).ok();
    assert!(r.stdout.trim_end().ends_with(&g.s.file));
    assert_eq!(mode(&g.s.model_path()).0, 0o644, "the umask decides");
    assert_eq!(mode(&state).0, 0o2755);
    // Bob may delete the model file (the models folder is the group's) but not what is in
    // Alice's state folder: nothing goes, and the error says what to change.
    let r = g.run(bob, &["remove", "tiny"]).code(7);
    assert!(r.stderr.contains("nothing was removed") && r.stderr.contains("chmod g+w"), "{}", r.stderr);
    assert_eq!(fs::read(g.s.model_path()).unwrap(), g.s.bytes);
    assert!(state.join(format!("{}.verified", g.s.file)).exists());
    assert!(g.run(alice, &["verify", "tiny"]).ok().stdout.starts_with("ok"));
    g.run(alice, &["remove", "tiny"]).ok();
    assert!(!g.s.model_path().exists());
}
