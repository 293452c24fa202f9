//! Locks on filesystems whose `flock` fails or does not exclude (Lustre, NFS without lockd,
//! SMB), reproduced with the `LD_PRELOAD` shim: downloads still work, still resume, and the
//! model path only ever holds verified bytes, even with two processes racing and no lock
//! excluding them. Waiting says who holds the model and honours a timeout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::hub::Faults;
use crate::support::shim::{self, Locks};
use crate::support::{setup, Run, Setup};

/// The binary for `s`, under the shim with `locks`.
fn shimmed(s: &Setup, shim: &Path, locks: Locks) -> Command {
    let mut c = s.cmd();
    shim::apply(&mut c, shim, Some(locks), false);
    c
}

fn run(mut c: Command, args: &[&str]) -> Run {
    Run::of(c.args(args).output().unwrap())
}

/// Files in the state folder, by name.
fn state_files(s: &Setup) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(s.sb.models().join(".strata"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The partial files of the model (the shared one and each process's own), with their sizes.
fn partials(s: &Setup) -> Vec<(PathBuf, u64)> {
    let prefix = format!("{}.part", s.file);
    state_files(s)
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && !n.ends_with(".etag") && !n.ends_with(".ranges"))
        .map(|n| {
            let p = s.sb.models().join(".strata").join(n);
            let len = fs::metadata(&p).map_or(0, |m| m.len());
            (p, len)
        })
        .collect()
}

#[test]
fn where_flock_fails_downloads_work_say_so_once_and_leave_no_claim() {
    let Some(shim) = shim::path() else { return };
    for errno in ["enosys", "enolck", "eopnotsupp"] {
        let s = setup(6 << 20);
        let r = run(shimmed(&s, &shim, Locks::Fail(errno)), &["download", "tiny", "--connections", "4"]).ok();
        assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes, "{errno}");
        let notices = r.stderr.matches("file locks do not work").count();
        assert_eq!(notices, 1, "{errno}: one notice\n{}", r.stderr);
        assert!(r.stderr.contains("flock(2) fails there"), "{errno}: {}", r.stderr);
        let left = state_files(&s);
        assert!(left.iter().all(|n| !n.contains(".claim") && !n.contains(".part")), "{errno}: {left:?}");
        // The other commands that take the lock work there too.
        let r = run(shimmed(&s, &shim, Locks::Fail(errno)), &["verify", "tiny"]).ok();
        assert!(r.stdout.starts_with("ok"), "{}", r.stdout);
        run(shimmed(&s, &shim, Locks::Fail(errno)), &["remove", "tiny"]).ok();
        assert!(!s.model_path().exists());
        // So does an edit of the custom catalog (its own lock).
        run(shimmed(&s, &shim, Locks::Fail(errno)), &["alias", "set", "mine", "tiny"]).ok();
        let r = run(shimmed(&s, &shim, Locks::Fail(errno)), &["path", "mine"]);
        assert_eq!(r.code, 4, "{}", r.stderr);
    }
}

/// Watches the model path while processes race: whenever a file is there, it must be the
/// verified bytes, whole.
fn watch(path: &Path, expected: &[u8], until: impl Fn() -> bool) -> usize {
    let mut seen = 0;
    while !until() {
        if let Ok(bytes) = fs::read(path) {
            assert!(bytes == expected, "the model path held {} bytes that are not the model", bytes.len());
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    seen
}

#[test]
fn two_processes_with_a_lock_that_excludes_nobody_never_expose_unverified_bytes() {
    let Some(shim) = shim::path() else { return };
    for round in 0..3 {
        let s = setup(6 << 20);
        // Slow enough that the two overlap for seconds.
        s.hub.set_faults(Faults { rate: Some(8_000_000), ..Default::default() });
        let conns = if round == 1 { "1" } else { "4" };
        let spawn = || {
            shimmed(&s, &shim, Locks::NoOp)
                .args(["download", "tiny", "--connections", conns])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let done = || fs::read(s.model_path()).is_ok_and(|b| b.len() == s.bytes.len());
        watch(&s.model_path(), &s.bytes, done);
        for child in [a, b] {
            let out = Run::of(child.wait_with_output().unwrap());
            assert_eq!(out.code, 0, "round {round}: {}", out.stderr);
            assert_eq!(out.stdout.trim_end(), s.model_path().to_str().unwrap());
        }
        assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
        // The claim file kept them apart: one downloaded, the other waited and saw the file.
        let sent = s.hub.bytes_sent();
        assert!(sent <= s.bytes.len() as u64 * 11 / 10, "round {round}: {sent} bytes sent for one file");
        assert!(partials(&s).is_empty(), "{:?}", state_files(&s));
        assert!(state_files(&s).iter().all(|n| !n.ends_with(".claim")), "{:?}", state_files(&s));
    }
}

#[test]
fn a_claim_broken_while_its_holder_runs_still_exposes_only_verified_bytes() {
    // The worst case: a holder that looks gone (its claim deleted under it, as a wrongly
    // broken one would be) while it downloads. Both processes then download, each into its
    // own partial file; each renames only the bytes it verified.
    let Some(shim) = shim::path() else { return };
    let s = setup(6 << 20);
    s.hub.set_faults(Faults { rate: Some(6_000_000), ..Default::default() });
    let spawn = || {
        shimmed(&s, &shim, Locks::NoOp)
            .args(["download", "tiny", "--connections", "4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn();
    let claim = s.sb.models().join(".strata").join(format!("{}.claim", s.file));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !claim.exists() || partials(&s).iter().all(|(_, n)| *n == 0) {
        assert!(Instant::now() < deadline, "the first download did not start: {:?}", state_files(&s));
        std::thread::sleep(Duration::from_millis(10));
    }
    let own: Vec<_> = partials(&s);
    assert!(
        own.iter().all(|(p, _)| p.file_name().unwrap().to_string_lossy().contains(".part.")),
        "without working locks a download writes a partial of its own: {own:?}"
    );
    fs::remove_file(&claim).unwrap();
    let second = spawn();
    let done = || fs::read(s.model_path()).is_ok_and(|b| b.len() == s.bytes.len());
    watch(&s.model_path(), &s.bytes, done);
    for child in [first, second] {
        let out = Run::of(child.wait_with_output().unwrap());
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert!(s.run(&["verify", "tiny"]).ok().stdout.starts_with("ok"));
}

#[test]
fn without_working_locks_a_killed_download_resumes_in_the_next_process() {
    let Some(shim) = shim::path() else { return };
    for locks in [Locks::Fail("enolck"), Locks::NoOp] {
        let s = setup(6 << 20);
        s.hub.set_faults(Faults { rate: Some(3_000_000), ..Default::default() });
        let mut child = shimmed(&s, &shim, locks)
            .args(["download", "tiny", "--connections", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while partials(&s).iter().map(|(_, n)| *n).max().unwrap_or(0) < 1_500_000 {
            assert!(Instant::now() < deadline, "{locks:?}: the download did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL: no chance to hand its partial back
        child.wait().unwrap();
        let kept: u64 = partials(&s).iter().map(|(_, n)| *n).max().unwrap();
        let row = |s: &Setup| {
            let doc = s.run(&["list", "--json"]).ok().json();
            doc["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap().clone()
        };
        let listed = row(&s);
        assert_eq!(listed["status"], "partial", "{locks:?}: its own partial counts: {listed}");
        assert!(listed["partial_bytes"].as_u64().unwrap() >= 1_500_000);

        s.hub.set_faults(Faults::default());
        s.hub.clear_seen();
        let r = run(shimmed(&s, &shim, locks), &["download", "tiny", "--connections", "1"]).ok();
        assert!(r.stderr.contains("resuming tiny"), "{locks:?}: {}", r.stderr);
        assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
        let sent = s.hub.bytes_sent();
        assert!(
            sent <= s.bytes.len() as u64 - kept + (1 << 20),
            "{locks:?}: {sent} bytes sent, {kept} were kept"
        );
        assert!(partials(&s).is_empty(), "{locks:?}: {:?}", state_files(&s));
    }
}

#[test]
fn a_download_stopped_by_an_error_hands_its_partial_back_under_the_shared_name() {
    let Some(shim) = shim::path() else { return };
    let s = setup(6 << 20);
    // The CDN cuts the transfer, then answers 404 forever: the download stops with a partial.
    s.hub.set_faults(Faults {
        drop_at: Some(2 << 20),
        statuses: vec![(404, None); 50],
        statuses_after: 1,
        ..Default::default()
    });
    let r = run(shimmed(&s, &shim, Locks::Fail("enosys")), &["download", "tiny", "--connections", "1"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("were kept"), "{}", r.stderr);
    let left = partials(&s);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, s.partial_path(), "handed back under the shared name");
    // A process whose locks work resumes it.
    s.hub.set_faults(Faults::default());
    s.hub.clear_seen();
    let r = s.run(&["download", "tiny", "--connections", "1"]).ok();
    assert!(r.stderr.contains("resuming tiny"), "{}", r.stderr);
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
}

/// This host's name as the binary writes it in lock files (`uname -n`, reduced to letters,
/// digits and `-`).
fn host() -> String {
    let out = Command::new("uname").arg("-n").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect()
}

#[test]
fn a_waiter_names_the_holder_and_gives_up_after_the_lock_timeout() {
    let s = setup(4 << 20);
    s.hub.set_faults(Faults { rate: Some(500_000), ..Default::default() });
    let mut holder = s
        .cmd()
        .args(["download", "tiny", "--connections", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(s.partial_path()).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "the first download did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let who = format!("pid {} on {}", holder.id(), host());
    let started = Instant::now();
    let r = s.run(&["download", "tiny", "--lock-timeout", "1s"]).code(10);
    assert!(started.elapsed() < Duration::from_secs(20), "the timeout was honoured");
    assert!(r.stderr.contains(&format!("waiting for {who}, which is downloading tiny")), "{}", r.stderr);
    assert!(r.stderr.contains(&who) && r.stderr.contains("gave up after waiting 1 s"), "{}", r.stderr);
    assert!(r.stderr.contains("--lock-timeout"), "says what to change: {}", r.stderr);
    let r = s.cmd().env("STRATA_LOCK_TIMEOUT", "0").args(["download", "tiny", "--json"]).output().unwrap();
    let r = Run::of(r).code(10);
    assert_eq!(r.json()[0]["ok"], false, "{}", r.stdout);
    assert!(r.json()[0]["error"].as_str().unwrap().contains("did not wait"), "{}", r.stdout);
    let r = s.run(&["remove", "tiny"]).code(10);
    assert!(r.stderr.contains(&who), "a refused removal names the holder too: {}", r.stderr);
    let r = s.cmd().env("STRATA_LOCK_TIMEOUT", "soon").args(["download", "tiny"]).output().unwrap();
    let r = Run::of(r).code(8);
    assert!(r.stderr.contains("STRATA_LOCK_TIMEOUT"), "{}", r.stderr);
    holder.kill().unwrap();
    holder.wait().unwrap();
    s.hub.set_faults(Faults::default());
    s.run(&["download", "tiny"]).ok();
}

#[test]
fn a_claim_left_by_a_process_that_is_gone_is_broken_at_once() {
    let Some(shim) = shim::path() else { return };
    let s = setup(1 << 20);
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    fs::create_dir_all(s.sb.models().join(".strata")).unwrap();
    let claim = s.sb.models().join(".strata").join(format!("{}.claim", s.file));
    let ns = fs::read_link("/proc/self/ns/pid").unwrap();
    let ns = ns.to_str().unwrap().trim_start_matches("pid:[").trim_end_matches(']').to_string();
    fs::write(&claim, format!("pid={pid} pidns={ns} host={}\n", host())).unwrap();
    let r =
        run(shimmed(&s, &shim, Locks::Fail("enolck")), &["download", "tiny", "--lock-timeout", "5s"]).ok();
    assert!(!r.stderr.contains("waiting for"), "{}", r.stderr);
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert!(!claim.exists());
    // One of this host's name but another pid namespace (a container sharing the host's
    // name): its pid means nothing here, so it is waited for while it is kept alive…
    fs::write(&claim, format!("pid={pid} pidns=1 host={}\n", host())).unwrap();
    fs::remove_file(s.model_path()).unwrap();
    let r =
        run(shimmed(&s, &shim, Locks::Fail("enolck")), &["download", "tiny", "--lock-timeout", "1"]).code(10);
    assert!(r.stderr.contains(&format!("pid {pid} on {}", host())), "{}", r.stderr);
    // … and one that has exited but is not reaped yet (a zombie) holds nothing.
    let zombie = Command::new("true").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    fs::write(&claim, format!("pid={} pidns={ns} host={}\n", zombie.id(), host())).unwrap();
    run(shimmed(&s, &shim, Locks::Fail("enolck")), &["download", "tiny", "--lock-timeout", "5s"]).ok();
    assert!(!claim.exists());
    drop(zombie);
    // One of another host is waited for while it is kept alive.
    fs::write(&claim, "pid=4242 host=far-away-node\n").unwrap();
    fs::remove_file(s.model_path()).unwrap();
    let r =
        run(shimmed(&s, &shim, Locks::Fail("enolck")), &["download", "tiny", "--lock-timeout", "1"]).code(10);
    assert!(r.stderr.contains("pid 4242 on far-away-node"), "{}", r.stderr);
}

#[test]
fn a_partial_whose_bytes_are_bad_is_discarded_and_fetched_again_in_the_same_run() {
    let s = setup(4 << 20);
    fs::create_dir_all(s.sb.models().join(".strata")).unwrap();
    let mut bad = s.bytes[..3 << 20].to_vec();
    bad[1 << 20] ^= 0xff; // a byte that went bad on disk
    fs::write(s.partial_path(), &bad).unwrap();
    let r = s.run(&["download", "tiny", "--connections", "1"]).ok();
    assert!(r.stderr.contains("its bytes were bad"), "{}", r.stderr);
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    let sent = s.hub.bytes_sent();
    let size = s.bytes.len() as u64;
    assert!(sent >= size && sent <= size + (1 << 20) + 4096, "the rest, then the whole file again: {sent}");
    // A source that serves bad bytes is still its fault: no endless restarts.
    let s = setup(4 << 20);
    s.hub.set_faults(Faults { flip_byte: true, ..Default::default() });
    fs::create_dir_all(s.sb.models().join(".strata")).unwrap();
    fs::write(s.partial_path(), &s.bytes[..1 << 20]).unwrap();
    let r = s.run(&["download", "tiny", "--connections", "1"]).code(6);
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    assert_eq!(r.stderr.matches("its bytes were bad").count(), 1, "{}", r.stderr);
    assert!(!s.model_path().exists());
}

#[test]
fn processes_pinning_at_once_all_count_with_or_without_working_locks() {
    let Some(shim) = shim::path() else { return };
    let s = setup(1 << 20);
    let names: Vec<String> = (1..=8).map(|i| format!("m{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        crate::support::register(&s.sb, name, &crate::support::gguf_bytes("bert", 8, 4096, i as u8));
    }
    for locks in [None, Some(Locks::Fail("enosys")), Some(Locks::NoOp)] {
        let _ = fs::remove_file(s.sb.models().join(".strata").join("pinned"));
        let children: Vec<_> = names
            .iter()
            .map(|n| {
                let mut c = s.cmd();
                if let Some(l) = locks {
                    shim::apply(&mut c, &shim, Some(l), false);
                }
                c.args(["-q", "pin", n]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        for c in children {
            let out = Run::of(c.wait_with_output().unwrap());
            assert_eq!(out.code, 0, "{locks:?}: {}", out.stderr);
        }
        let doc = s.run(&["list", "--json"]).ok().json();
        let pinned: Vec<&str> = doc["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["pinned"] == true)
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(pinned.len(), 8, "{locks:?}: every pin counts: {pinned:?}");
    }
}
