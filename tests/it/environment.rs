//! The environment is bytes, not text: every command runs with hostile values (not UTF-8,
//! `~` with no home) and never panics; a variable strata-model does not read never matters; a
//! value it needs that cannot serve is a configuration error naming it (exit 8); paths keep
//! their exact bytes from the variable to stdout, and `--json` gives them losslessly.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;

use crate::support::{setup, Run, Setup};

fn bytes(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

/// Every command, with arguments that reach the configuration.
fn every_command() -> Vec<Vec<&'static str>> {
    [
        &["list"][..],
        &["list", "--json"],
        &["download", "tiny"],
        &["path", "tiny"],
        &["info", "tiny"],
        &["verify"],
        &["sources"],
        &["share", "--dry-run"],
        &["prune", "--max-size", "10GB", "--dry-run"],
        &["pin", "tiny"],
        &["unpin", "tiny"],
        &["alias", "list"],
        &["catalog", "check", "tiny"],
        &["mirror", "push", "/nonexistent-strata-dir", "tiny", "--dry-run"],
        &["remove", "tiny"],
        &["completions", "bash"],
    ]
    .iter()
    .map(|a| a.to_vec())
    .collect()
}

fn run_with(s: &Setup, vars: &[(&str, OsString)], args: &[&str]) -> Run {
    let mut c = s.cmd();
    c.env("STRATA_OFFLINE", "1");
    for (k, v) in vars {
        c.env(k, v);
    }
    let r = Run::of(c.args(args).output().unwrap());
    assert_ne!(r.code, 101, "{args:?} with {vars:?} panicked: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{args:?} with {vars:?}: {}", r.stderr);
    r
}

#[test]
fn a_variable_strata_model_does_not_read_never_matters_whatever_its_bytes() {
    let s = setup(200_000);
    s.run(&["download", "tiny", "-q"]).ok();
    for args in every_command() {
        let hostile = run_with(&s, &[("QA_OTHER", bytes(b"\xff\xfe")), ("LANG", bytes(b"x\xe9"))], &args);
        if matches!(args[0], "pin" | "unpin" | "remove") {
            // They change what the next run sees: undone, then done again without the variable.
            match args[0] {
                "pin" => s.run(&["unpin", "tiny"]).ok(),
                "unpin" => s.run(&["pin", "tiny"]).ok(),
                _ => s.run(&["download", "tiny", "-q"]).ok(),
            };
        }
        let plain = run_with(&s, &[], &args);
        assert_eq!(hostile.code, plain.code, "{args:?}: {}", hostile.stderr);
        assert_eq!(hostile.stdout, plain.stdout, "{args:?}");
        if args[0] == "remove" {
            s.run(&["download", "tiny", "-q"]).ok();
        }
    }
    // Nor does a variable whose name is not UTF-8, nor an object-store variable that no
    // bucket mirror needs.
    let r = run_with(&s, &[("AWS_SECRET_ACCESS_KEY", bytes(b"\x80secret"))], &["list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = Run::of(s.cmd().env(bytes(b"N\xffAME"), "1").args(["path", "tiny"]).output().unwrap()).ok();
    assert_eq!(r.stdout.trim_end(), s.model_path().to_str().unwrap());
}

#[test]
fn a_value_that_must_be_text_and_is_not_is_a_configuration_error_naming_the_variable() {
    let s = setup(200_000);
    for var in [
        "HF_ENDPOINT",
        "HF_TOKEN",
        "STRATA_OFFLINE",
        "HF_HUB_OFFLINE",
        "STRATA_REUSE_CACHES",
        "STRATA_SHARE_HF_CACHE",
        "STRATA_LOCK_TIMEOUT",
        "HTTPS_PROXY",
        "NO_PROXY",
    ] {
        for args in [&["download", "tiny"][..], &["list"], &["path", "tiny"]] {
            let mut c = s.cmd();
            c.env(var, bytes(b"caf\xe9"));
            let r = Run::of(c.args(args).output().unwrap()).code(8);
            assert!(
                r.stderr.contains(var) && r.stderr.contains("not valid UTF-8"),
                "{var} {args:?}: {}",
                r.stderr
            );
            assert!(!r.stderr.contains("secret"), "{}", r.stderr);
        }
    }
    // A URL in STRATA_MODELS_MIRROR must be text too.
    let r =
        run_with(&s, &[("STRATA_MODELS_MIRROR", bytes(b"https://m\xe9.example/x"))], &["download", "tiny"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(
        r.stderr.contains("STRATA_MODELS_MIRROR") && r.stderr.contains("not valid UTF-8"),
        "{}",
        r.stderr
    );
    // An object-store variable that a bucket mirror needs.
    #[cfg(feature = "cloud")]
    {
        let r = run_with(
            &s,
            &[("STRATA_MODELS_MIRROR", "s3://bucket/models".into()), ("AWS_REGION", bytes(b"eu\xff"))],
            &["download", "tiny"],
        );
        assert_eq!(r.code, 8, "{}", r.stderr);
        assert!(r.stderr.contains("AWS_REGION"), "{}", r.stderr);
    }
}

#[test]
fn paths_that_are_not_utf8_work_and_are_printed_as_their_exact_bytes() {
    let s = setup(200_000);
    let dir = s.sb.tmp.path().join(OsStr::from_bytes(b"mod\xe8les"));
    let file_in = |d: &PathBuf| d.join(&s.file);
    let run = |args: &[&str]| {
        let mut c = s.cmd();
        c.env("STRATA_MODELS_CATALOG", s.sb.models().join("catalog.json"));
        Run::of(c.arg("--models-dir").arg(&dir).args(args).output().unwrap())
    };
    let raw = |args: &[&str]| {
        let mut c = s.cmd();
        c.env("STRATA_MODELS_CATALOG", s.sb.models().join("catalog.json"));
        c.arg("--models-dir").arg(&dir).args(args).output().unwrap()
    };
    let out = raw(&["download", "tiny", "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut line = file_in(&dir).into_os_string().into_vec();
    line.push(b'\n');
    assert_eq!(out.stdout, line, "download prints the exact bytes");
    assert_eq!(fs::read(file_in(&dir)).unwrap(), s.bytes);
    let out = raw(&["path", "tiny"]);
    assert_eq!(out.stdout, line, "so `MODEL=$(strata-model path tiny)` names the file");
    // --json: the path as {"bytes": base64 of its raw bytes}, never another path.
    let doc = run(&["path", "tiny", "--json"]).ok().json();
    let encoded = doc["path"]["bytes"].as_str().unwrap_or_else(|| panic!("{doc}"));
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    assert_eq!(decoded, file_in(&dir).into_os_string().into_vec());
    let doc = run(&["list", "--json"]).ok().json();
    let row = doc["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap().clone();
    assert!(row["path"]["bytes"].is_string(), "{row}");
    assert!(run(&["download", "tiny", "--json"]).ok().json()[0]["path"]["bytes"].is_string());
    let text = raw(&["list"]).stdout;
    let mut shown = b"Models directory: ".to_vec();
    shown.extend_from_slice(dir.as_os_str().as_bytes());
    shown.push(b'\n');
    assert!(text.windows(shown.len()).any(|w| *w == shown[..]), "{}", String::from_utf8_lossy(&text));
    run(&["verify", "tiny"]).ok();
    run(&["remove", "tiny"]).ok();
    assert!(!file_in(&dir).exists());

    // A mirror directory whose name is not UTF-8 serves (STRATA_MODELS_MIRROR keeps bytes).
    let mirror = s.sb.tmp.path().join(OsStr::from_bytes(b"miroir-\xe9t\xe9"));
    fs::create_dir_all(&mirror).unwrap();
    fs::write(mirror.join(&s.file), &s.bytes).unwrap();
    let mut value = b" /nonexistent-a , ".to_vec();
    value.extend_from_slice(mirror.as_os_str().as_bytes());
    let r = run_with(&s, &[("STRATA_MODELS_MIRROR", bytes(&value))], &["download", "tiny"]).ok();
    assert_eq!(r.stdout.trim_end(), s.model_path().to_str().unwrap());
    // HF_HOME (a cache location) that is not UTF-8: a download from the Hub works.
    fs::remove_file(s.model_path()).unwrap();
    let r = Run::of(
        s.cmd().env("HF_HOME", bytes(b"/tmp/caf\xe9/hf")).args(["download", "tiny"]).output().unwrap(),
    );
    r.ok();
}

#[test]
fn a_tilde_with_no_home_is_a_configuration_error_and_nothing_is_created() {
    let s = setup(200_000);
    // A uid with no entry in the password database, and no HOME: as a systemd unit runs.
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let cwd = s.sb.tmp.path().join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    let run = |vars: &[(&str, &str)], args: &[&str]| {
        let mut c = if root {
            use std::os::unix::fs::PermissionsExt;
            for d in [s.sb.tmp.path(), cwd.as_path()] {
                fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
            }
            let mut c = Command::new("setpriv");
            c.args(["--reuid=54321", "--regid=54321", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_strata-model"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_strata-model"))
        };
        c.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).current_dir(&cwd);
        for (k, v) in vars {
            c.env(k, v);
        }
        Run::of(c.args(args).output().unwrap())
    };
    if !root {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root and must run this");
        eprintln!("skipping the no-passwd-entry case: not root");
        return;
    }
    let r = run(&[("STRATA_MODELS_DIR", "~/models")], &["download", "tiny"]).code(8);
    assert!(
        r.stderr.contains("STRATA_MODELS_DIR") && r.stderr.contains("home directory is unknown"),
        "{}",
        r.stderr
    );
    let r = run(&[("STRATA_MODELS_DIR", "~/models")], &["list"]).code(8);
    assert!(r.stderr.contains("give an absolute path"), "{}", r.stderr);
    let r = run(&[], &["list"]).code(8);
    assert!(r.stderr.contains("set STRATA_MODELS_DIR"), "{}", r.stderr);
    let models = s.sb.tmp.path().join("m");
    let r = run(&[("STRATA_MODELS_DIR", models.to_str().unwrap()), ("HF_HOME", "~/hf")], &["list"]).code(8);
    assert!(r.stderr.contains("HF_HOME"), "{}", r.stderr);
    run(&[("STRATA_MODELS_DIR", models.to_str().unwrap())], &["list"]).ok();
    assert_eq!(fs::read_dir(&cwd).unwrap().count(), 0, "no literal `~` folder in the working directory");
}

#[test]
fn values_the_tool_cannot_use_are_refused_naming_them_never_skipped() {
    let s = setup(200_000);
    let dead = "https://127.0.0.1:1";
    let run = |vars: &[(&str, &str)], args: &[&str]| {
        let mut c = s.cmd();
        c.env("HF_ENDPOINT", dead);
        for (k, v) in vars {
            c.env(k, v);
        }
        Run::of(c.args(args).output().unwrap())
    };
    // A proxy the client would skip, connecting directly instead.
    for (var, value, says) in [
        ("HTTPS_PROXY", "socks5://127.0.0.1:1", "SOCKS"),
        ("ALL_PROXY", "socks5h://127.0.0.1:1", "SOCKS"),
        ("HTTPS_PROXY", "::::", "not a proxy URL"),
    ] {
        let r = run(&[(var, value)], &["download", "tiny"]).code(8);
        assert!(r.stderr.contains(var) && r.stderr.contains(says), "{var}={value}: {}", r.stderr);
    }
    // A token that cannot go in a header (a paste gone wrong); the token is never shown.
    let r = run(&[("HF_TOKEN", "hf_ab\ncd")], &["download", "tiny"]).code(8);
    assert!(r.stderr.contains("HF_TOKEN") && !r.stderr.contains("hf_ab"), "{}", r.stderr);
    // Lock timeouts.
    let r = run(&[("STRATA_LOCK_TIMEOUT", "99999999999")], &["list"]).code(8);
    assert!(r.stderr.contains("too long a wait"), "{}", r.stderr);
    let r = run(&[], &["download", "tiny", "--lock-timeout=-1"]).code(2);
    assert!(r.stderr.contains("--lock-timeout"), "{}", r.stderr);
    // `~` where no shell expanded it: `--models-dir=~/x`, a mirror push destination, a
    // mirror directory; `~user` is refused rather than made a folder named `~user`.
    let home = s.sb.tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let cwd = s.sb.tmp.path().join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    let r = Run::of(
        s.cmd()
            .current_dir(&cwd)
            .env("HF_ENDPOINT", dead)
            .args(["--models-dir=~/mine", "list"])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(r.stdout.contains(&format!("Models directory: {}", home.join("mine").display())), "{}", r.stdout);
    s.run(&["download", "tiny", "-q"]).ok();
    let r = Run::of(s.cmd().current_dir(&cwd).args(["mirror", "push", "~/pushed", "tiny"]).output().unwrap())
        .ok();
    assert!(home.join("pushed").join(&s.file).exists(), "{}", r.stdout);
    let r = Run::of(
        s.cmd().current_dir(&cwd).env("STRATA_MODELS_DIR", "~root/x").args(["list"]).output().unwrap(),
    );
    let r = r.code(8);
    assert!(r.stderr.contains("`~user` is not expanded"), "{}", r.stderr);
    fs::remove_file(s.model_path()).unwrap();
    let r = Run::of(
        s.cmd()
            .current_dir(&cwd)
            .env("STRATA_OFFLINE", "1")
            .env("STRATA_MODELS_MIRROR", "~/pushed")
            .args(["download", "tiny"])
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(r.stdout.trim_end(), s.model_path().to_str().unwrap());
    assert_eq!(fs::read_dir(&cwd).unwrap().count(), 0, "nothing named `~` in the working directory");
    // A destination that is not UTF-8 is a directory with that exact name.
    let dest = s.sb.tmp.path().join(OsStr::from_bytes(b"pouss\xe9"));
    let out = s.cmd().arg("mirror").arg("push").arg(&dest).arg("tiny").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(dest.join(&s.file)).unwrap(), s.bytes);
}
