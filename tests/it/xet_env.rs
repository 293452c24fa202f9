//! The Xet delta (`update`, and `download` of a pin that moved under a verified file) in hostile
//! environments: a shared group directory, locks that fail or do nothing, non-UTF-8 paths and
//! no locale, no HOME, a CAS or xorb host that never answers, SIGKILL mid-delta, a read-only
//! models directory (a hostile tester's; failing tests here are product bugs).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::blackhole::{dead_ip, BlackHole};
use crate::support::hub::{Faults, XetFaults, XetOptions};
use crate::support::shim::{self, Locks};
use crate::support::{sha256_hex, Run};
use crate::update::{Fixture, FILE};
use crate::xet_update::{fixture, header_changed, keep_old, NEW, SIZE};

const NOTICE: &str = "rebuilding from the old file failed";

fn state(f: &Fixture) -> PathBuf {
    f.sb.models().join(".strata")
}

/// What is left under `.strata/update/` (names), if the folder exists.
fn staged_left(f: &Fixture) -> Vec<String> {
    fs::read_dir(state(f).join("update"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// `alpha` downloaded with Xet on (its Xet id recorded), then its pin moved by hand to the
/// header-changed version (an edited custom entry; a new release's built-in row alike).
fn moved_pin_fixture(options: XetOptions) -> (Fixture, Vec<u8>) {
    let f = Fixture::new(SIZE, false);
    f.hub.enable_xet(options);
    f.run(&["download", "alpha"]).ok();
    let new = header_changed(&f.old);
    f.hub.move_main(NEW, &[(FILE, new.clone())]);
    f.repin_by_hand(NEW, &new);
    f.hub.clear_seen();
    (f, new)
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &mut std::process::Child) {
    // SIGKILL, this child only, by its id.
    unsafe_kill(child.id());
    let _ = child.wait();
}

fn unsafe_kill(pid: u32) {
    let st = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(st.success());
}

// ---------------------------------------------------------------------------------------------
// 6. A moved pin rebuilt in place: the old verified file must not be lost before the new one
//    is installed.

/// The delta for a moved pin fails (the xorb host answers 503) and the plain download then
/// fails too (the file host answers 404): nothing new was installed, so the old verified
/// file, the only base a later delta has, must still be there.
#[test]
fn xet_env_a_moved_pin_whose_delta_and_download_fail_keeps_the_old_verified_file() {
    let faults = XetFaults { xorb_status: Some(503), ..Default::default() };
    let (f, _new) = moved_pin_fixture(XetOptions { faults, ..Default::default() });
    f.hub.set_faults(Faults { statuses: vec![(404, None); 64], ..Default::default() });
    let run = f.run(&["download", "alpha"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(NOTICE), "{}", run.stderr);
    let path = f.sb.models().join(FILE);
    assert!(
        path.exists(),
        "the old verified file was deleted before anything replaced it (the failed download left: {:?}); \
         stderr: {}",
        fs::read_dir(state(&f)).unwrap().flatten().map(|e| e.file_name()).collect::<Vec<_>>(),
        run.stderr
    );
    assert_eq!(fs::read(&path).unwrap(), f.old);
}

/// Killed during the plain download that follows a failed delta of a moved pin: the old
/// verified file must still be at the model path (not the new one: nothing verified it).
#[test]
fn xet_env_killed_during_the_fallback_download_of_a_moved_pin_keeps_the_old_file() {
    let faults = XetFaults { xorb_status: Some(503), ..Default::default() };
    let (f, new) = moved_pin_fixture(XetOptions { faults, ..Default::default() });
    f.hub.set_faults(Faults { rate: Some(400_000), ..Default::default() });
    let mut child = f
        .cmd()
        .args(["download", "alpha", "--connections", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the plain download to start", 60, || !f.hub.cdn_gets().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    kill(&mut child);
    let path = f.sb.models().join(FILE);
    let there = fs::read(&path).ok();
    // The next run, with the network fixed, ends with the new version either way.
    f.hub.set_faults(Faults::default());
    f.hub.set_xet_faults(XetFaults::default());
    f.run(&["download", "alpha"]).ok();
    assert_eq!(f.on_disk(), new);
    assert!(
        there.as_deref() == Some(&f.old[..]),
        "the old verified file was lost when killed mid-download (the model path held {:?} bytes)",
        there.map(|b| b.len())
    );
}

/// Killed while a `download` of a moved pin rebuilds it in place (the xorb answer slow):
/// the old file stays, `path` never names unverified bytes, the next run rebuilds it.
#[test]
fn xet_env_killed_mid_delta_of_a_moved_pin_then_run_again() {
    let faults = XetFaults { xorb_delay: Some(Duration::from_secs(4)), ..Default::default() };
    let (f, new) = moved_pin_fixture(XetOptions { faults, ..Default::default() });
    let mut child =
        f.cmd().args(["download", "alpha"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("a xorb GET", 60, || !f.hub.xorb_gets().is_empty());
    // `path` meanwhile: the old file is not the pin's: never printed as the model's path.
    let p = f.run(&["path", "alpha"]);
    assert_ne!(p.code, 0, "path named a file that is not the pin's: {}", p.stdout);
    kill(&mut child);
    assert_eq!(f.on_disk(), f.old, "the old file at the model path");
    f.hub.set_xet_faults(XetFaults::default());
    f.hub.clear_seen();
    let run = f.run(&["download", "alpha"]).ok();
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    assert!(f.hub.cdn_gets().is_empty(), "{:?}", f.hub.cdn_gets());
    f.run(&["verify", "alpha"]).ok();
}

/// `update` killed mid-delta (a slow xorb answer), then run again: the old pin and file
/// serve meanwhile; the second run updates, nothing is left under `.strata/update/` but locks.
#[test]
fn xet_env_update_killed_mid_delta_then_run_again() {
    let faults = XetFaults { xorb_delay: Some(Duration::from_secs(4)), ..Default::default() };
    let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
    let kept = keep_old(&f);
    let mut child =
        f.cmd().args(["update", "alpha"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("a xorb GET", 60, || !f.hub.xorb_gets().is_empty());
    kill(&mut child);
    assert_eq!(f.pinned(), crate::support::hub::REVISION);
    assert_eq!(f.on_disk(), f.old);
    f.run(&["verify", "alpha"]).ok();
    f.hub.set_xet_faults(XetFaults::default());
    let run = f.run(&["update", "alpha"]).ok();
    assert!(run.stdout.contains("alpha: updated"), "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains(NOTICE), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    assert_eq!(fs::read(kept).unwrap(), f.old);
    let left: Vec<_> = staged_left(&f).into_iter().filter(|n| !n.ends_with(".lock")).collect();
    assert!(left.is_empty(), "{left:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. A CAS or a xorb host that never answers (a dead IPv6 route).

fn timed(f: &Fixture, args: &[&str]) -> (Run, Duration) {
    let t = Instant::now();
    let r = f.run(args);
    (r, t.elapsed())
}

/// The token names a CAS whose address drops every SYN: `update` falls back to the plain
/// download with one clear notice, without waiting much more than one connect timeout.
#[test]
fn xet_env_a_blackholed_cas_falls_back_with_one_notice() {
    let dead = BlackHole::on(dead_ip());
    let faults = XetFaults { cas_addr: Some(dead.addr), ..Default::default() };
    let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
    let (run, took) = timed(&f, &["update", "alpha"]);
    let run = run.ok();
    eprintln!("update with a black-holed CAS took {took:?}; stderr:\n{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    let notices: Vec<&str> = run.stderr.lines().filter(|l| l.contains(NOTICE)).collect();
    assert_eq!(notices.len(), 1, "{}", run.stderr);
    assert!(notices[0].contains(&dead.addr.to_string()) || notices[0].contains("connect"), "{}", notices[0]);
    assert!(!run.stderr.contains("xet-lookalike-token"), "{}", run.stderr);
    assert!(took < Duration::from_secs(20), "{took:?} before the fallback");
}

/// Signed xorb URLs name an address that drops every SYN (the CAS answers): one connect
/// timeout, then the plain download — not a new token, a new reconstruction and the same
/// dead host again.
#[test]
fn xet_env_a_blackholed_xorb_host_falls_back_after_one_connect_timeout() {
    let dead = BlackHole::on(dead_ip());
    let faults = XetFaults { xorb_addr: Some(dead.addr), ..Default::default() };
    let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
    let (run, took) = timed(&f, &["update", "alpha"]);
    let run = run.ok();
    eprintln!("update with a black-holed xorb host took {took:?}; stderr:\n{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    let notices: Vec<&str> = run.stderr.lines().filter(|l| l.contains(NOTICE)).collect();
    assert_eq!(notices.len(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("sig="), "{}", run.stderr);
    assert!(took < Duration::from_secs(20), "{took:?} before the fallback: {}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// 3, 4. Non-UTF-8 paths and HOME, no locale, no HOME.

#[test]
fn xet_env_update_without_home_and_without_a_locale() {
    let (f, new) = fixture(XetOptions::default(), header_changed);
    let out =
        f.cmd().env_remove("HOME").env("LANG", "C").env("LC_ALL", "C").args(["update", "alpha"]).output();
    let run = Run::of(out.unwrap()).ok();
    assert!(run.stdout.contains("alpha: updated"), "{}", run.stdout);
    assert!(!run.stderr.contains(NOTICE), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    assert!(header_read_only_cdn(&f));
}

fn header_read_only_cdn(f: &Fixture) -> bool {
    crate::xet_update::header_read_only(f)
}

#[test]
fn xet_env_delta_in_a_models_dir_and_home_that_are_not_utf8() {
    let f = Fixture::new(SIZE, false);
    f.hub.enable_xet(XetOptions::default());
    let dir = f.sb.tmp.path().join(std::ffi::OsStr::from_bytes(b"mod\xe8les"));
    let home = f.sb.tmp.path().join(std::ffi::OsStr::from_bytes(b"h\xf4me"));
    fs::create_dir_all(&home).unwrap();
    let catalog = f.sb.models().join("catalog.json");
    let run = |args: &[&str]| {
        let mut c = f.cmd();
        c.env("STRATA_MODELS_CATALOG", &catalog).env("HOME", &home).env("LANG", "C").env_remove("LC_ALL");
        Run::of(c.arg("--models-dir").arg(&dir).args(args).output().unwrap())
    };
    run(&["download", "alpha"]).ok();
    let new = header_changed(&f.old);
    f.hub.move_main(NEW, &[(FILE, new.clone())]);
    f.hub.clear_seen();
    let r = run(&["update", "alpha"]).ok();
    assert!(r.stdout.contains("alpha: updated"), "{}", r.stdout);
    assert!(!r.stderr.contains(NOTICE) && !r.stderr.contains('\u{fffd}'), "{}", r.stderr);
    assert_eq!(fs::read(dir.join(FILE)).unwrap(), new);
    assert!(crate::xet_update::header_read_only(&f), "rebuilt, not downloaded");
    run(&["verify", "alpha"]).ok();
    let origin = fs::read_to_string(dir.join(format!(".strata/{FILE}.origin"))).unwrap();
    assert!(origin.contains(&crate::support::hub::Hub::xet_file_id(&new)), "{origin}");
}

// ---------------------------------------------------------------------------------------------
// 2. Locks that fail (ENOLCK) or do nothing.

fn shimmed(f: &Fixture, locks: Locks, args: &[&str]) -> Option<Command> {
    let so = shim::path()?;
    let mut c = f.cmd();
    shim::apply(&mut c, &so, Some(locks), false);
    c.args(args);
    Some(c)
}

/// `strata-model ARGS`, under the shim's `locks` when given (`None` when the shim cannot be
/// built here: never in CI).
fn command(f: &Fixture, locks: Option<Locks>, args: &[&str]) -> Option<Command> {
    match locks {
        Some(l) => shimmed(f, l, args),
        None => {
            let mut c = f.cmd();
            c.args(args);
            Some(c)
        }
    }
}

#[test]
fn xet_env_delta_update_with_locks_that_fail_or_do_nothing() {
    for locks in [Locks::Fail("enolck"), Locks::NoOp] {
        let (f, new) = fixture(XetOptions::default(), header_changed);
        let Some(mut c) = shimmed(&f, locks, &["update", "alpha"]) else { return };
        let run = Run::of(c.output().unwrap()).ok();
        assert!(run.stdout.contains("alpha: updated"), "{locks:?}: {}", run.stdout);
        assert!(!run.stderr.contains(NOTICE), "{locks:?}: {}", run.stderr);
        assert_eq!(f.on_disk(), new, "{locks:?}");
        assert!(crate::xet_update::header_read_only(&f), "{locks:?}: rebuilt, not downloaded");
        let left: Vec<_> =
            staged_left(&f).into_iter().filter(|n| !n.ends_with(".lock") && !n.ends_with(".claim")).collect();
        assert!(left.is_empty(), "{locks:?}: {left:?}");
        f.run(&["verify", "alpha"]).ok();
    }
}

/// Two updates at once (the xorb answers slow) under each lock behaviour: one updates, the
/// other is refused or finds nothing to do; the new verified file in place.
#[test]
fn xet_env_two_delta_updates_at_once_with_locks_that_fail_or_do_nothing() {
    for locks in [Locks::Fail("enolck"), Locks::NoOp] {
        let faults = XetFaults { xorb_delay: Some(Duration::from_secs(2)), ..Default::default() };
        let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
        let Some(mut a) = shimmed(&f, locks, &["update", "alpha"]) else { return };
        let Some(mut b) = shimmed(&f, locks, &["update", "alpha"]) else { return };
        let a = a.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let b = b.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (a, b) = (Run::of(a.wait_with_output().unwrap()), Run::of(b.wait_with_output().unwrap()));
        let updated = [&a, &b].iter().filter(|r| r.code == 0 && r.stdout.contains("updated")).count();
        assert_eq!(
            updated, 1,
            "{locks:?}\nA {} {}\n{}\nB {} {}\n{}",
            a.code, a.stdout, a.stderr, b.code, b.stdout, b.stderr
        );
        for r in [&a, &b] {
            if r.code != 0 {
                assert!(
                    r.stderr.contains("another process") || r.stderr.contains("changed while"),
                    "{locks:?}: {}",
                    r.stderr
                );
            }
        }
        assert_eq!(f.on_disk(), new, "{locks:?}");
        assert_eq!(f.pinned(), NEW);
        f.run(&["verify", "alpha"]).ok();
    }
}

/// `remove` while an update rebuilds (slow xorbs): refused while the update holds the model,
/// or done entirely; never a half-removed model, and the update's outcome is coherent.
#[test]
fn xet_env_remove_racing_a_delta_update_with_locks_that_fail_or_do_nothing() {
    for locks in [None, Some(Locks::Fail("enolck")), Some(Locks::NoOp)] {
        let faults = XetFaults { xorb_delay: Some(Duration::from_secs(3)), ..Default::default() };
        let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
        let cmd = |args: &[&str]| command(&f, locks, args);
        let Some(mut u) = cmd(&["update", "alpha"]) else { return };
        let u = u.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        wait_for("a xorb GET", 60, || !f.hub.xorb_gets().is_empty());
        let r = Run::of(cmd(&["remove", "alpha"]).unwrap().output().unwrap());
        let u = Run::of(u.wait_with_output().unwrap());
        let what = format!(
            "{locks:?}\nremove {} {}{}\nupdate {} {}{}",
            r.code, r.stdout, r.stderr, u.code, u.stdout, u.stderr
        );
        if r.code == 0 {
            // Removed: no file may come back by the update's hand under the new pin.
            assert!(!f.sb.models().join(FILE).exists(), "removed, yet a file is there: {what}");
        } else {
            assert!(r.stderr.contains("another process"), "{what}");
            assert_eq!(u.code, 0, "{what}");
            assert_eq!(f.on_disk(), new, "{what}");
        }
        let left: Vec<_> =
            staged_left(&f).into_iter().filter(|n| !n.ends_with(".lock") && !n.ends_with(".claim")).collect();
        assert!(left.is_empty(), "{what}: {left:?}");
    }
}

/// A `download` of the moved pin (the catalog already re-pinned by hand) while an `update`
/// of the same entry runs its delta: at the end, the new verified file; neither run fails
/// with a storage error.
#[test]
fn xet_env_download_of_a_moved_pin_racing_an_update_with_locks_that_do_nothing() {
    for locks in [None, Some(Locks::NoOp), Some(Locks::Fail("enolck"))] {
        let faults = XetFaults { xorb_delay: Some(Duration::from_secs(2)), ..Default::default() };
        let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
        let cmd = |args: &[&str]| command(&f, locks, args);
        let Some(mut u) = cmd(&["update", "alpha"]) else { return };
        let u = u.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        wait_for("a xorb GET", 60, || !f.hub.xorb_gets().is_empty());
        // Meanwhile the entry is edited to the new pin (what the update will write).
        f.repin_by_hand(NEW, &new);
        let d = Run::of(cmd(&["download", "alpha"]).unwrap().output().unwrap());
        let u = Run::of(u.wait_with_output().unwrap());
        let what = format!(
            "{locks:?}\ndownload {} {}{}\nupdate {} {}{}",
            d.code, d.stdout, d.stderr, u.code, u.stdout, u.stderr
        );
        assert_eq!(d.code, 0, "{what}");
        assert!(!u.stderr.contains("rename") && !d.stderr.contains("rename"), "{what}");
        assert_eq!(f.on_disk(), new, "{what}");
        f.run(&["verify", "alpha"]).ok();
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A shared group directory.

use crate::group::{group, member, USERS};

struct Shared {
    f: Fixture,
    bin: PathBuf,
}

impl Shared {
    fn run(&self, user: &str, umask: &str, args: &[&str]) -> Run {
        let mut c = member(user, umask, &self.bin, &self.f.sb.models(), &self.f.hub, args);
        Run::of(c.output().unwrap())
    }
}

/// `alpha` registered (tracking main) in a setgid group directory whose catalog the group
/// may write; nothing downloaded; Xet on.
fn shared() -> Option<Shared> {
    let gid = group()?;
    let f = Fixture::new(SIZE, false);
    f.hub.enable_xet(XetOptions::default());
    let models = f.sb.models();
    let _ = fs::remove_dir_all(models.join(".strata"));
    let bin = f.sb.tmp.path().join("strata-model");
    fs::copy(env!("CARGO_BIN_EXE_strata-model"), &bin).unwrap();
    for dir in [f.sb.tmp.path(), f.hub.ca_file.parent().unwrap()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::chown(&models, None, Some(gid)).unwrap();
    fs::set_permissions(&models, fs::Permissions::from_mode(0o2775)).unwrap();
    for e in fs::read_dir(&models).unwrap().flatten() {
        std::os::unix::fs::chown(e.path(), None, Some(gid)).unwrap();
        fs::set_permissions(e.path(), fs::Permissions::from_mode(0o664)).unwrap();
    }
    Some(Shared { f, bin })
}

fn mode(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.gid())
}

/// Alice downloads and updates through a delta (umask 002); Bob, of the same group, can then
/// verify, update again and remove everything — including what Alice's update left under
/// `.strata/update/`.
#[test]
fn xet_env_group_a_delta_update_by_one_member_leaves_nothing_another_cannot_use_or_remove() {
    let Some(g) = shared() else { return };
    let [alice, bob] = USERS;
    let gid = mode(&g.f.sb.models()).1;
    g.run(alice, "0002", &["download", "alpha"]).ok();
    let new = header_changed(&g.f.old);
    g.f.hub.move_main(NEW, &[(FILE, new.clone())]);
    g.f.hub.clear_seen();
    let r = g.run(alice, "0002", &["update", "alpha"]).ok();
    assert!(r.stdout.contains("alpha: updated") && !r.stderr.contains(NOTICE), "{}\n{}", r.stdout, r.stderr);
    assert!(crate::xet_update::header_read_only(&g.f), "rebuilt");
    let st = state(&g.f);
    let upd = st.join("update");
    if upd.exists() {
        assert_eq!(mode(&upd), (0o2775, gid), ".strata/update follows the umask and keeps the group");
        for e in fs::read_dir(&upd).unwrap().flatten() {
            let (m, g2) = mode(&e.path());
            assert!(m & 0o060 == 0o060 && g2 == gid, "{}: {m:o} gid {g2}", e.path().display());
        }
    }
    for side in ["verified", "origin"] {
        let p = st.join(format!("{FILE}.{side}"));
        let (m, g2) = mode(&p);
        assert!(m & 0o060 == 0o060 && g2 == gid, "{side}: {m:o} gid {g2}");
    }
    let (m, g2) = mode(&g.f.sb.models().join(FILE));
    assert!(m & 0o060 == 0o040 || m & 0o060 == 0o060, "{m:o}");
    assert_eq!(g2, gid);
    assert!(g.run(bob, "0002", &["verify", "alpha"]).ok().stdout.starts_with("ok"));
    // Bob's download of the pin moved by hand rebuilds in place from Alice's file.
    let newer = {
        let mut v = new.clone();
        let n = v.len();
        v[n - 100] ^= 0x5a;
        v
    };
    let catalog = g.f.sb.models().join("catalog.json");
    let mut doc = g.f.catalog();
    doc["models"][0]["sha256"] = sha256_hex(&newer).into();
    fs::write(&catalog, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    // (the Hub serves `new` under NEW; the pin to `newer` is refused by its SHA-256: the
    // rebuild must fail cleanly and Bob must still be able to restore the pin.)
    let r = g.run(bob, "0002", &["download", "alpha"]);
    assert!(!r.stderr.contains("ermission denied"), "{}", r.stderr);
    doc["models"][0]["sha256"] = sha256_hex(&new).into();
    fs::write(&catalog, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    g.run(bob, "0002", &["download", "alpha"]).ok();
    let r = g.run(bob, "0002", &["remove", "alpha"]).ok();
    assert!(r.stdout.starts_with("removed alpha"), "{}", r.stdout);
    let left: Vec<_> = fs::read_dir(&st)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "update" && !n.ends_with(".lock") && !n.ends_with(".claim"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let left: Vec<_> = staged_left(&g.f).into_iter().filter(|n| !n.ends_with(".lock")).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// With umask 022, Alice's delta update leaves files Bob cannot write: Bob's update of the
/// model (a moved pin again) must not half-succeed, and its error must say what to change.
#[test]
fn xet_env_group_umask_022_a_second_members_update_says_what_to_change() {
    let Some(g) = shared() else { return };
    let [alice, bob] = USERS;
    g.run(alice, "0022", &["download", "alpha"]).ok();
    let new = header_changed(&g.f.old);
    g.f.hub.move_main(NEW, &[(FILE, new.clone())]);
    // Bob updates: the state folder is Alice's (0755).
    let r = g.run(bob, "0002", &["update", "alpha"]);
    eprintln!("bob's update: {} {}\n{}", r.code, r.stdout, r.stderr);
    if r.code != 0 {
        assert!(r.stderr.contains("chmod") || r.stderr.contains("g+w"), "says what to change: {}", r.stderr);
        assert_eq!(g.f.pinned(), crate::support::hub::REVISION, "nothing re-pinned");
        assert_eq!(g.f.on_disk(), g.f.old);
    } else {
        assert_eq!(g.f.on_disk(), new);
    }
}

// ---------------------------------------------------------------------------------------------
// 7. A read-only models directory with a moved pin.

#[test]
fn xet_env_a_read_only_models_directory_with_a_moved_pin_says_so() {
    let (f, _new) = moved_pin_fixture(XetOptions::default());
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let bin = f.sb.tmp.path().join("strata-model");
    fs::copy(env!("CARGO_BIN_EXE_strata-model"), &bin).unwrap();
    for dir in [f.sb.tmp.path(), f.hub.ca_file.parent().unwrap()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let st = Command::new("chmod").args(["-R", "a-w,a+rX"]).arg(f.sb.models()).status().unwrap();
    assert!(st.success());
    let run = |args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent")
            .env("STRATA_MODELS_DIR", f.sb.models())
            .env("HF_ENDPOINT", f.hub.endpoint())
            .env("SSL_CERT_FILE", &f.hub.ca_file)
            .args(args);
        Run::of(c.output().unwrap())
    };
    let r = run(&["download", "alpha"]);
    eprintln!("download: {} {}\n{}", r.code, r.stdout, r.stderr);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("read-only") || r.stderr.contains("chmod"),
        "says the models directory cannot be written and what to change: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("corrupt"), "the old version is not corrupt: {}", r.stderr);
    assert!(f.hub.xorb_gets().is_empty(), "nothing fetched that cannot be written: {:?}", f.hub.xorb_gets());
    let r = run(&["path", "alpha"]);
    assert_ne!(r.code, 0, "path named the old version: {}", r.stdout);
    let _ = Command::new("chmod").args(["-R", "u+w"]).arg(f.sb.models()).status();
    assert_eq!(f.on_disk(), f.old);
}

// ---------------------------------------------------------------------------------------------
// The model's lock, "held from the fetch to the swap", when its lock file does not exist yet.

/// `alpha`'s verified file copied in and stamped by `verify` (a directory restored or
/// provisioned without our lock files): no `.lock` beside it.
fn without_lock_file(f: &Fixture) {
    let lock = state(f).join(format!("{FILE}.lock"));
    let _ = fs::remove_file(&lock);
    let _ = fs::remove_file(state(f).join(format!("{FILE}.lock.claim")));
    f.run(&["verify", "alpha"]).ok();
    assert!(!lock.exists(), "verify made a lock file; the test needs none");
}

/// Two updates at once of a model whose lock file does not exist yet: the second must be
/// refused at once ("another process holds it"), not fetch the same chunks a second time.
#[test]
fn xet_env_two_updates_at_once_of_a_model_without_a_lock_file_yet() {
    let faults = XetFaults { xorb_delay: Some(Duration::from_secs(3)), ..Default::default() };
    let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
    without_lock_file(&f);
    let a = f.cmd().args(["update", "alpha"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("a xorb GET", 60, || !f.hub.xorb_gets().is_empty());
    let b = f.run(&["update", "alpha"]);
    let a = Run::of(a.wait_with_output().unwrap());
    let what = format!("A {} {}\n{}\nB {} {}\n{}", a.code, a.stdout, a.stderr, b.code, b.stdout, b.stderr);
    assert_eq!(f.on_disk(), new, "{what}");
    assert!(b.code != 0 && b.stderr.contains("another process"), "the second update was not refused: {what}");
}

/// `remove` while an update of a model without a lock file yet rebuilds it: refused, or the
/// model stays removed (the update must not bring a file back after `remove` said so).
#[test]
fn xet_env_remove_racing_an_update_of_a_model_without_a_lock_file_yet() {
    let faults = XetFaults { xorb_delay: Some(Duration::from_secs(3)), ..Default::default() };
    let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
    without_lock_file(&f);
    let u = f.cmd().args(["update", "alpha"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("a xorb GET", 60, || !f.hub.xorb_gets().is_empty());
    let r = f.run(&["remove", "alpha"]);
    let u = Run::of(u.wait_with_output().unwrap());
    let what =
        format!("remove {} {}{}\nupdate {} {}{}", r.code, r.stdout, r.stderr, u.code, u.stdout, u.stderr);
    if r.code == 0 {
        assert!(
            !f.sb.models().join(FILE).exists(),
            "`remove` said removed, the update put a file back: {what}"
        );
    } else {
        assert!(r.stderr.contains("another process"), "{what}");
        assert_eq!(f.on_disk(), new, "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// More: claims left by a killed update, two in-place rebuilds at once, a group member's
// in-place rebuild from another's file, an `.origin` that no longer describes the file.

/// Locks that fail (ENOLCK: claim files): an update killed mid-delta leaves its claim; the
/// next update, at once, breaks it (its holder is gone) and updates through the delta.
#[test]
fn xet_env_an_update_killed_mid_delta_under_enolck_leaves_no_lock_in_the_way() {
    let faults = XetFaults { xorb_delay: Some(Duration::from_secs(4)), ..Default::default() };
    let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
    let Some(mut c) = shimmed(&f, Locks::Fail("enolck"), &["update", "alpha"]) else { return };
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("a xorb GET", 60, || !f.hub.xorb_gets().is_empty());
    kill(&mut child);
    f.hub.set_xet_faults(XetFaults::default());
    f.hub.clear_seen();
    let t = Instant::now();
    let run =
        Run::of(shimmed(&f, Locks::Fail("enolck"), &["update", "alpha"]).unwrap().output().unwrap()).ok();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}: {}", t.elapsed(), run.stderr);
    assert!(run.stdout.contains("alpha: updated"), "{}", run.stdout);
    assert!(!run.stderr.contains(NOTICE), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    assert!(crate::xet_update::header_read_only(&f), "rebuilt: {}", run.stderr);
}

/// Two `download`s of a moved pin at once (slow xorbs), under each lock behaviour: both end
/// with the new verified file; neither leaves the model path without a file.
#[test]
fn xet_env_two_in_place_rebuilds_of_a_moved_pin_at_once() {
    for locks in [None, Some(Locks::Fail("enolck")), Some(Locks::NoOp)] {
        let faults = XetFaults { xorb_delay: Some(Duration::from_secs(2)), ..Default::default() };
        let (f, new) = moved_pin_fixture(XetOptions { faults, ..Default::default() });
        let cmd = |args: &[&str]| command(&f, locks, args);
        let Some(mut a) = cmd(&["download", "alpha"]) else { return };
        let a = a.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let b = cmd(&["download", "alpha"])
            .unwrap()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (a, b) = (Run::of(a.wait_with_output().unwrap()), Run::of(b.wait_with_output().unwrap()));
        let what = format!("{locks:?}\nA {} {}\nB {} {}", a.code, a.stderr, b.code, b.stderr);
        assert!(a.code == 0 && b.code == 0, "{what}");
        assert_eq!(f.on_disk(), new, "{what}");
        assert!(f.hub.cdn_gets().is_empty(), "rebuilt, not downloaded: {what}");
        f.run(&["verify", "alpha"]).ok();
    }
}

/// Bob's `download` of a pin moved under Alice's verified file rebuilds it in place (umask
/// 002, a setgid group directory); Alice can then verify and remove it.
#[test]
fn xet_env_group_a_members_download_of_a_moved_pin_rebuilds_from_anothers_file() {
    let Some(g) = shared() else { return };
    let [alice, bob] = USERS;
    g.run(alice, "0002", &["download", "alpha"]).ok();
    let new = header_changed(&g.f.old);
    g.f.hub.move_main(NEW, &[(FILE, new.clone())]);
    g.f.repin_by_hand(NEW, &new);
    g.f.hub.clear_seen();
    let r = g.run(bob, "0002", &["download", "alpha"]).ok();
    assert!(r.stderr.contains("rebuilt"), "{}", r.stderr);
    assert_eq!(g.f.on_disk(), new);
    assert!(g.f.hub.cdn_gets().is_empty());
    assert!(g.run(alice, "0002", &["verify", "alpha"]).ok().stdout.starts_with("ok"));
    g.run(alice, "0002", &["remove", "alpha"]).ok();
    assert!(!g.f.sb.models().join(FILE).exists());
}

/// The verified file replaced by the pin's bytes another way (copied in and verified by
/// `download`'s own check): its `.origin` must not keep naming the earlier version's Xet id,
/// or the next moved pin's delta starts from the wrong reconstruction and fails with a notice
/// (found by a hostile tester; the provenance is now forgotten when a file is verified in place).
#[test]
fn xet_env_a_file_verified_in_place_does_not_keep_an_earlier_xet_id() {
    let (f, new) = moved_pin_fixture(XetOptions::default());
    // The new version copied over the old one by hand; `download` verifies it in place.
    let path = f.sb.models().join(FILE);
    fs::remove_file(&path).unwrap();
    fs::write(&path, &new).unwrap();
    let r = f.run(&["download", "alpha"]).ok();
    assert!(f.hub.xorb_gets().is_empty(), "{}", r.stderr);
    let origin = fs::read_to_string(state(&f).join(format!("{FILE}.origin"))).unwrap_or_default();
    // What it costs: the pin moves again (a byte near the end changes); the delta must
    // rebuild from the file there, not fail and download it whole.
    let mut newer = new.clone();
    let n = newer.len();
    newer[n - 1000] ^= 0x5a;
    const NEWER: &str = "abababababababababababababababababababab";
    f.hub.move_main(NEWER, &[(FILE, newer.clone())]);
    f.repin_by_hand(NEWER, &newer);
    f.hub.clear_seen();
    let r = f.run(&["download", "alpha"]).ok();
    assert_eq!(f.on_disk(), newer);
    // Where the copied file came from is not known, so no Xet id is: the plain download,
    // without a failed delta's notice (the earlier version's id was not kept beside it).
    assert!(!origin.contains(&crate::support::hub::Hub::xet_file_id(&f.old)), "{origin}");
    assert!(
        !r.stderr.contains(NOTICE),
        "the .origin of the file verified in place still named the old version's Xet id ({origin}): {}",
        r.stderr
    );
}

/// Secrets under the most verbose log, through a refresh (expired signed URLs) and a
/// black-holed xorb host: neither the Xet token nor a URL signature appears anywhere.
#[test]
fn xet_env_no_secret_in_a_trace_log_of_a_delta() {
    for faults in [
        XetFaults { expired_url_answers: 1, ..Default::default() },
        XetFaults { xorb_status: Some(500), ..Default::default() },
        XetFaults { token_ttl: 0, ..Default::default() },
    ] {
        let what = format!("{faults:?}");
        let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
        let out = f
            .cmd()
            .env("RUST_LOG", "strata_model=trace")
            .args(["-vv", "update", "alpha", "--json"])
            .output()
            .unwrap();
        let run = Run::of(out).ok();
        assert!(run.stderr.contains("HTTP request"), "{what}: a verbose log: {}", run.stderr);
        assert_eq!(f.on_disk(), new, "{what}");
        for secret in ["xet-lookalike-token", "sig=", "Bearer"] {
            assert!(
                !run.stderr.contains(secret) && !run.stdout.contains(secret),
                "{what}: {secret} in {}",
                run.stderr
            );
        }
    }
}
