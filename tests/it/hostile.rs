//! Crashes, races, full and read-only disks, planted symlinks and hostile configuration:
//! whatever happens, the model path holds nothing or the verified file, a partial download
//! survives, and nothing outside the models directory is written or deleted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::hub::Faults;
use crate::support::setup;
use crate::support::{gguf_bytes, registered_sandbox, Run, Sandbox};

fn partial_bytes(s: &crate::support::Setup) -> u64 {
    let doc = s.run(&["list", "--json"]).ok().json();
    doc["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap()["partial_bytes"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn twenty_kills_at_random_points_never_leave_a_corrupt_file() {
    let s = setup(20 << 20);
    s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let mut seed = 0x2545f491_u64;
    let mut last = 0;
    for i in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(50 + seed % 450);
        let conns = if i % 2 == 0 { "1" } else { "4" };
        let mut child = s
            .cmd()
            .args(["download", "tiny", "--quiet", "--connections", conns])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        match fs::read(s.model_path()) {
            Ok(bytes) => {
                assert!(bytes == s.bytes, "kill {i}: a file at the model path that is not the model")
            }
            Err(_) => {
                let now = partial_bytes(&s);
                assert!(now + (8 << 20) >= last, "kill {i}: the partial went from {last} to {now} bytes");
                last = now;
            }
        }
    }
    s.hub.set_faults(Faults::default());
    s.run(&["download", "tiny", "--quiet"]).ok();
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
    assert!(s.run(&["verify", "tiny"]).ok().stdout.starts_with("ok"));
}

#[test]
fn a_process_killed_while_holding_the_lock_blocks_nobody() {
    let s = setup(8 << 20);
    s.hub.set_faults(Faults { rate: Some(1_000_000), ..Default::default() });
    let mut holder = s
        .cmd()
        .args(["download", "tiny", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fs::metadata(s.partial_path()).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "the first download did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    s.hub.set_faults(Faults::default());
    let others: Vec<_> = (0..4)
        .map(|_| {
            s.cmd()
                .args(["download", "tiny", "--quiet"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in others {
        let out = Run::of(child.wait_with_output().unwrap());
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
}

#[cfg(unix)]
#[test]
fn symlinks_planted_at_the_model_and_partial_paths_are_replaced_not_followed() {
    let s = setup(300_000);
    let victim = s.sb.tmp.path().join("victim.txt");
    let victim2 = s.sb.tmp.path().join("victim2.txt");
    fs::write(&victim, b"precious").unwrap();
    fs::write(&victim2, b"also precious").unwrap();
    fs::create_dir_all(s.partial_path().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&victim, s.model_path()).unwrap();
    std::os::unix::fs::symlink(&victim2, s.partial_path()).unwrap();
    s.registry(s.config()).ensure("tiny").unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(fs::read(&victim2).unwrap(), b"also precious");
    let meta = fs::symlink_metadata(s.model_path()).unwrap();
    assert!(meta.is_file() && !meta.file_type().is_symlink());
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
}

/// Everything under `root` except `skip`, as (path, size).
fn snapshot(root: &Path, skip: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.starts_with(skip) {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.push((p, if m.is_file() { m.len() } else { 0 }));
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_configuration_gets_clear_errors_and_touches_nothing_outside() {
    let bytes = gguf_bytes("bert", 384, 100_000, 3);
    let (sb, _file, dead) = registered_sandbox(&bytes);
    let before = snapshot(sb.tmp.path(), &sb.models());
    let run = |vars: &[(&str, &str)]| {
        let mut c = sb.cmd();
        c.env("HF_ENDPOINT", &dead);
        for (k, v) in vars {
            c.env(k, v);
        }
        Run::of(c.args(["download", "tiny"]).output().unwrap())
    };
    let r = run(&[("STRATA_MODELS_MIRROR", "gopher://x/y")]).code(8);
    assert!(r.stderr.contains("STRATA_MODELS_MIRROR") && r.stderr.contains("gopher://"), "{}", r.stderr);
    let r = run(&[("STRATA_MODELS_MIRROR", "http://plain.example/models")]).code(8);
    assert!(r.stderr.contains("plain HTTP"), "{}", r.stderr);
    let r = run(&[("STRATA_MODELS_MIRROR", ", ,relative/nowhere,::garbage::")]).code(5);
    assert!(r.stderr.contains("relative/nowhere is not a directory"), "{}", r.stderr);
    let r = run(&[("HF_ENDPOINT", "http://huggingface.co")]).code(8);
    assert!(r.stderr.contains("HF_ENDPOINT") && r.stderr.contains("only HTTPS"), "{}", r.stderr);
    let r = run(&[("HF_ENDPOINT", "not a url")]).code(8);
    assert!(r.stderr.contains("HF_ENDPOINT"), "{}", r.stderr);
    let r = run(&[("STRATA_OFFLINE", "sometimes")]).code(8);
    assert!(r.stderr.contains("STRATA_OFFLINE"), "{}", r.stderr);
    let r = Run::of(
        sb.cmd()
            .env("STRATA_MODELS_DIR", "/dev/null/models")
            .env("STRATA_MODELS_CATALOG", sb.models().join("catalog.json"))
            .args(["download", "tiny"])
            .output()
            .unwrap(),
    )
    .code(7);
    assert!(r.stderr.contains("/dev/null/models") && r.stderr.contains("storage error"), "{}", r.stderr);

    // An enormous size (within the catalog's bound of 1 PiB): refused before a byte is
    // fetched, for want of space.
    let huge = sb.tmp.path().join("huge.json");
    fs::write(
        &huge,
        format!(
            r#"{{"models":[{{"name":"huge","hf_repo":"o/r","hf_filename":"huge.gguf","revision":"{}","sha256":"{}","size_bytes":1000000000000000}}]}}"#,
            "a".repeat(40),
            "b".repeat(64)
        ),
    )
    .unwrap();
    let r = Run::of(
        sb.cmd()
            .env("HF_ENDPOINT", &dead)
            .env("STRATA_MODELS_CATALOG", &huge)
            .args(["download", "huge"])
            .output()
            .unwrap(),
    )
    .code(7);
    assert!(r.stderr.contains("not enough space") && r.stderr.contains("huge.gguf"), "{}", r.stderr);
    fs::remove_file(&huge).unwrap();
    assert_eq!(
        snapshot(sb.tmp.path(), &sb.models()),
        before,
        "something outside the models directory changed"
    );
}

/// A tmpfs mounted for one test (root only); unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Option<Self> {
        fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("cannot mount a tmpfs (CI runs as root and must be able to)");
            }
            eprintln!("skipping: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_disk_too_small_is_refused_early_and_a_disk_that_fills_keeps_the_partial() {
    let s = setup(8 << 20);
    let small = s.sb.tmp.path().join("small");
    let Some(_m) = Tmpfs::mount(&small, "size=4m") else { return };
    fs::copy(s.sb.models().join("catalog.json"), small.join("catalog.json")).unwrap();
    let r = Run::of(s.cmd().env("STRATA_MODELS_DIR", &small).args(["download", "tiny"]).output().unwrap())
        .code(7);
    assert!(
        r.stderr.contains("not enough space") && r.stderr.contains(small.to_str().unwrap()),
        "{}",
        r.stderr
    );
    assert!(s.hub.cdn_gets().is_empty(), "refused before any transfer");
    assert!(!small.join(&s.file).exists());

    let filling = s.sb.tmp.path().join("filling");
    let Some(_m2) = Tmpfs::mount(&filling, "size=12m") else { return };
    fs::copy(s.sb.models().join("catalog.json"), filling.join("catalog.json")).unwrap();
    s.hub.set_faults(Faults { rate: Some(4_000_000), ..Default::default() });
    let child = s
        .cmd()
        .env("STRATA_MODELS_DIR", &filling)
        .args(["download", "tiny", "--connections", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let partial = filling.join(".strata").join(format!("{}.part", s.file));
    let deadline = Instant::now() + Duration::from_secs(20);
    while fs::metadata(&partial).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Another writer takes the space the download needs.
    let filler = filling.join("filler");
    let _ = fs::write(&filler, vec![0u8; 7 << 20]);
    let r = Run::of(child.wait_with_output().unwrap()).code(7);
    assert!(r.stderr.contains(".part") && r.stderr.contains("more bytes are needed"), "{}", r.stderr);
    assert!(!filling.join(&s.file).exists(), "nothing at the model path");
    let kept = fs::metadata(&partial).unwrap().len();
    assert!(kept > 0, "the partial download is kept");
    fs::remove_file(&filler).unwrap();
    s.hub.set_faults(Faults::default());
    Run::of(s.cmd().env("STRATA_MODELS_DIR", &filling).args(["download", "tiny"]).output().unwrap()).ok();
    assert!(fs::read(filling.join(&s.file)).unwrap() == s.bytes);
}

#[test]
fn a_read_only_models_directory_is_a_clear_storage_error() {
    let s = setup(100_000);
    let ro = s.sb.tmp.path().join("ro");
    let Some(_m) = Tmpfs::mount(&ro, "size=1m,ro") else { return };
    let r = Run::of(
        s.cmd()
            .env("STRATA_MODELS_DIR", &ro)
            .env("STRATA_MODELS_CATALOG", s.sb.models().join("catalog.json"))
            .args(["download", "tiny"])
            .output()
            .unwrap(),
    )
    .code(7);
    assert!(
        r.stderr.contains("Read-only file system") && r.stderr.contains("STRATA_MODELS_DIR"),
        "{}",
        r.stderr
    );
}

/// One location parser everywhere: an unknown scheme is the same configuration error for
/// `STRATA_MODELS_MIRROR` and `mirror push`, and never a directory named after the scheme.
#[test]
fn an_unknown_scheme_is_the_same_clear_error_for_mirrors_and_push() {
    let bytes = gguf_bytes("bert", 384, 10_000, 4);
    let (sb, file, dead) = registered_sandbox(&bytes);
    fs::create_dir_all(sb.models()).unwrap();
    fs::write(sb.models().join(&file), &bytes).unwrap();
    let cwd = sb.tmp.path().join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    let mirror = Run::of(
        sb.cmd()
            .current_dir(&cwd)
            .env("HF_ENDPOINT", &dead)
            .env("STRATA_MODELS_MIRROR", "ipfs://registry.example/models")
            .args(["download", "tiny"])
            .output()
            .unwrap(),
    )
    .code(8);
    let push = Run::of(
        sb.cmd()
            .current_dir(&cwd)
            .args(["mirror", "push", "ipfs://registry.example/models", "tiny"])
            .output()
            .unwrap(),
    )
    .code(8);
    for r in [&mirror, &push] {
        assert!(r.stderr.contains("`ipfs:` is not a kind of location"), "{}", r.stderr);
    }
    assert!(mirror.stderr.contains("STRATA_MODELS_MIRROR"), "{}", mirror.stderr);
    assert_eq!(fs::read_dir(&cwd).unwrap().count(), 0, "nothing was created in the current directory");
}

/// Every size option takes the one size syntax: `--max-rate 20MB` is a rate, not a usage
/// error, and `prune --max-size 1.5G`, `register --size 25.008064MB` parse alike.
#[test]
fn every_size_option_takes_the_same_units() {
    let sb = Sandbox::new();
    for rate in ["20M", "20MB", "20 MB", "1.5G", "500MiB", "20MB/s"] {
        let r = sb.run(&["download", "no-such-model", "--max-rate", rate]).code(3);
        assert!(r.stderr.contains("unknown model"), "{rate}: {}", r.stderr);
    }
    sb.run(&["download", "no-such-model", "--max-rate", "fast"]).code(2);
    let r = sb.run(&["prune", "--max-size", "1.5G", "--dry-run", "--json"]).ok();
    assert_eq!(r.json()["max_bytes"], 1_500_000_000u64);
}
