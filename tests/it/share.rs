//! Sharing with the other tools on the machine: reusing what Ollama, llama.cpp, RamaLama,
//! LM Studio and Hugging Face already hold (each layout as the tool writes it, each with a
//! wrong-bytes twin that must be ignored), the token `hf auth login` saved, and `share`, which
//! makes our models visible to huggingface_hub — checked with the real huggingface_hub.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::hub::{REPO, REVISION};
use crate::support::{gguf_bytes, registered_sandbox, setup, sha256_hex, test_env, Run, Sandbox};

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
}

fn put(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Downloads `tiny` with no reachable Hub; returns the `list --json` row.
fn download_offline_hub(sb: &Sandbox, dead: &str, vars: &[(&str, PathBuf)]) -> serde_json::Value {
    let mut c = sb.cmd();
    c.env("HF_ENDPOINT", dead);
    for (k, v) in vars {
        c.env(k, v);
    }
    Run::of(c.args(["download", "tiny", "--quiet"]).output().unwrap()).ok();
    let list = sb.run(&["list", "--json"]).ok().json();
    list["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap().clone()
}

/// Each tool's layout, written where that tool writes it, with a twin of the same size but
/// other bytes found first: the twin is hashed and ignored, the right file is hard-linked,
/// neither is modified.
#[cfg(unix)]
#[test]
fn every_tools_layout_is_reused_and_wrong_bytes_are_ignored() {
    let bytes = gguf_bytes("bert", 384, 200_000, 21);
    let mut wrong = bytes.clone();
    wrong[150_000] ^= 0x5a;
    let sha = sha256_hex(&bytes);
    let flat = format!("{}_tiny-Q8_0.gguf", REPO.replace('/', "_"));
    // (tool, where the twin goes, where the right file goes, variables) — paths under HOME.
    type Case = (&'static str, &'static str, String, String, Vec<(&'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        (
            "ollama",
            "Ollama",
            format!("ollama-env/blobs/sha256-{sha}"),
            format!(".ollama/models/blobs/sha256-{sha}"),
            vec![("OLLAMA_MODELS", "~/ollama-env")],
        ),
        (
            "ollama",
            "Ollama (older builds: sha256:<hex>)",
            format!("ollama-env/blobs/sha256-{sha}"),
            format!(".ollama/models/blobs/sha256:{sha}"),
            vec![("OLLAMA_MODELS", "~/ollama-env")],
        ),
        (
            "llama.cpp",
            "llama.cpp flat files",
            format!("llama-env/{flat}"),
            format!(".cache/llama.cpp/{flat}"),
            vec![("LLAMA_CACHE", "~/llama-env")],
        ),
        (
            "llama.cpp",
            "llama.cpp's hub layout at LLAMA_CACHE (since March 2026)",
            format!("llama-env/{flat}"),
            format!("llama-env/models--{}/blobs/{sha}", REPO.replace('/', "--")),
            vec![("LLAMA_CACHE", "~/llama-env")],
        ),
        (
            "ramalama",
            "RamaLama",
            format!("xdg-data/ramalama/store/huggingface/{REPO}/blobs/sha256-{sha}"),
            format!(".local/share/ramalama/store/ollama/library/tiny/blobs/sha256-{sha}"),
            vec![("XDG_DATA_HOME", "~/xdg-data")],
        ),
        (
            "huggingface",
            "Hugging Face cache, by content in another repository's folder",
            format!("hub-cache/models--{}/blobs/{sha}", REPO.replace('/', "--")),
            format!("hf-home/hub/models--someone--renamed-GGUF/blobs/{sha}"),
            vec![("HF_HOME", "~/hf-home"), ("HUGGINGFACE_HUB_CACHE", "~/hub-cache")],
        ),
        (
            "lm-studio",
            "LM Studio, its home in ~/.lmstudio-home-pointer, models relocated in settings.json",
            "lms-env/models/acme/tiny-GGUF/tiny-Q8_0.gguf".to_string(),
            "big-disk/models/test-org/test-repo/tiny-Q8_0.gguf".to_string(),
            vec![("LMSTUDIO_HOME", "~/lms-env")],
        ),
    ];
    for (tool, what, twin, right, vars) in cases {
        let (sb, _file, dead) = registered_sandbox(&bytes);
        let home = sb.tmp.path().join("home");
        if tool == "lm-studio" {
            put(&home.join(".lmstudio-home-pointer"), b"~/studio\n");
            put(&home.join("studio/settings.json"), br#"{"downloadsFolder": "~/big-disk/models"}"#);
        }
        let (twin, right) = (home.join(twin), home.join(right));
        put(&twin, &wrong);
        put(&right, &bytes);
        let vars: Vec<(&str, PathBuf)> = vars.iter().map(|(k, v)| (*k, PathBuf::from(v))).collect();
        let row = download_offline_hub(&sb, &dead, &vars);
        assert_eq!(row["status"], "downloaded", "{what}: {row}");
        assert_eq!(row["reused_from"], tool, "{what}: {row}");
        let model = sb.models().join("tiny-Q8_0.gguf");
        assert_eq!(inode(&model), inode(&right), "{what}: hard-linked, no second copy");
        assert_eq!(fs::read(&twin).unwrap(), wrong, "{what}: the twin is untouched");
        assert_eq!(fs::read(&right).unwrap(), bytes, "{what}: the other tool's file is untouched");
        // Removing our copy leaves the other tool's file.
        sb.run(&["remove", "tiny"]).ok();
        assert_eq!(fs::read(&right).unwrap(), bytes, "{what}");
    }
}

/// The token `hf auth login` saved is used when HF_TOKEN is unset, goes to the Hub's host
/// only, and is never printed; HF_TOKEN wins; `sources` says where it came from.
#[test]
fn the_saved_hub_token_is_used_and_never_shown() {
    let s = setup(50_000);
    let home = s.sb.tmp.path().join("home");
    let saved = "hf_saved_token_abc123";
    put(&home.join(".cache/huggingface/token"), format!("{saved}\n").as_bytes());
    let r = s.run(&["download", "tiny"]).ok();
    let hub: Vec<_> = s.hub.seen().into_iter().filter(|r| r.host == "hub").collect();
    assert_eq!(hub[0].headers.get("authorization"), Some(&format!("Bearer {saved}")));
    assert!(s
        .hub
        .seen()
        .iter()
        .filter(|r| r.host == "cdn")
        .all(|r| !r.headers.contains_key("authorization")));
    assert!(!r.stdout.contains(saved) && !r.stderr.contains(saved));
    let doc = s.run(&["sources", "--json"]).ok();
    assert!(!doc.stdout.contains(saved));
    assert_eq!(doc.json()["token"], home.join(".cache/huggingface/token").to_str().unwrap());

    s.run(&["remove", "tiny"]).ok();
    s.hub.clear_seen();
    let r = Run::of(s.cmd().env("HF_TOKEN", "hf_from_env").args(["download", "tiny"]).output().unwrap()).ok();
    let hub: Vec<_> = s.hub.seen().into_iter().filter(|r| r.host == "hub").collect();
    assert_eq!(hub[0].headers.get("authorization").map(String::as_str), Some("Bearer hf_from_env"));
    assert!(!r.stderr.contains("hf_from_env"));
}

/// The Python with huggingface_hub that `scripts/emulators` installs.
pub(crate) fn python() -> Option<String> {
    test_env("STRATA_TEST_PYTHON", "the huggingface_hub tests")
}

/// Runs huggingface_hub's `hf_hub_download` for the fixture file; returns the path it gives.
pub(crate) fn hf_hub_download(python: &str, s: &crate::support::Setup, cache: &Path, offline: bool) -> Run {
    let script = format!(
        "import os, sys\nfrom huggingface_hub import hf_hub_download\n\
         p = hf_hub_download({REPO:?}, {file:?}, revision={REVISION:?}, local_files_only={offline})\n\
         print(p)\nprint(os.stat(p).st_ino)\n",
        file = s.file,
        offline = if offline { "True" } else { "False" },
    );
    let mut c = Command::new(python);
    c.env("HF_ENDPOINT", s.hub.endpoint())
        .env("SSL_CERT_FILE", &s.hub.ca_file)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HOME", s.sb.tmp.path().join("python-hf-home"))
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .env_remove("HF_TOKEN")
        .args(["-c", &script]);
    if offline {
        c.env("HF_HUB_OFFLINE", "1");
    }
    Run::of(c.output().unwrap())
}

/// huggingface_hub downloads a file from the Hub look-alike into its cache; strata-model then
/// finds it there by content and links it in, with no request to the Hub.
#[cfg(unix)]
#[test]
fn a_file_huggingface_hub_downloaded_is_reused_with_no_request() {
    let Some(python) = python() else { return };
    let s = setup(300_000);
    let cache = s.sb.tmp.path().join("hf-cache");
    let got = hf_hub_download(&python, &s, &cache, false).ok();
    let blob = PathBuf::from(got.stdout.lines().next().unwrap());
    assert_eq!(fs::read(&blob).unwrap(), s.bytes, "huggingface_hub fetched the fixture");
    s.hub.clear_seen();
    let r = Run::of(s.cmd().env("HF_HUB_CACHE", &cache).args(["download", "tiny"]).output().unwrap()).ok();
    assert!(s.hub.seen().is_empty(), "no request: {:#?}", s.hub.seen());
    assert!(
        r.stderr.contains("verifying the copy of tiny found in Hugging Face cache: "),
        "the notice names the other tool's copy: {}",
        r.stderr
    );
    assert_eq!(
        inode(&s.model_path()),
        inode(&blob),
        "the same inode as huggingface_hub's blob\n{}",
        r.stderr
    );
    let info = s.run(&["info", "tiny", "--json"]).ok().json();
    assert_eq!(info["reused_from"], "huggingface");
}

/// `share` lays a downloaded model out in the hub cache as huggingface_hub does: offline,
/// `hf_hub_download(..., local_files_only=True)` returns our file (the same inode) with no
/// request; nothing already there is touched; STRATA_SHARE_HF_CACHE=1 shares after each
/// download.
#[cfg(unix)]
#[test]
fn share_makes_a_model_visible_to_huggingface_hub_offline() {
    let Some(python) = python() else { return };
    let s = setup(300_000);
    let cache = s.sb.tmp.path().join("hf-cache");
    let run = |args: &[&str]| Run::of(s.cmd().env("HF_HUB_CACHE", &cache).args(args).output().unwrap());
    run(&["download", "tiny", "--quiet"]).ok();
    let dry = run(&["share", "tiny", "--dry-run", "--json"]).ok().json();
    assert_eq!(dry[0]["action"], "would_share");
    assert!(!cache.exists(), "a dry run writes nothing");
    let shared = run(&["share", "tiny", "--json"]).ok().json();
    assert_eq!(shared[0]["action"], serde_json::json!({ "shared": "hard_link" }));
    s.hub.clear_seen();
    let got = hf_hub_download(&python, &s, &cache, true).ok();
    let mut lines = got.stdout.lines();
    let path = lines.next().unwrap();
    let ino: u64 = lines.next().unwrap().parse().unwrap();
    assert!(path.ends_with(&format!("snapshots/{REVISION}/{}", s.file)), "{path}");
    assert_eq!(ino, inode(&s.model_path()), "huggingface_hub opens our bytes");
    assert!(s.hub.seen().is_empty(), "offline: no request");
    let link = fs::read_link(path).unwrap();
    assert_eq!(
        link,
        Path::new("../../blobs").join(sha256_hex(&s.bytes)),
        "a relative link, as huggingface_hub writes"
    );
    assert_eq!(run(&["share", "--all", "--json"]).ok().json()[0]["action"], "present");

    // Automatic sharing after a download, into another cache.
    let auto = s.sb.tmp.path().join("auto-cache");
    run(&["remove", "tiny"]).ok();
    Run::of(
        s.cmd()
            .env("HF_HUB_CACHE", &auto)
            .env("STRATA_SHARE_HF_CACHE", "1")
            .env("STRATA_REUSE_CACHES", "0")
            .args(["download", "tiny", "--quiet"])
            .output()
            .unwrap(),
    )
    .ok();
    let got = hf_hub_download(&python, &s, &auto, true).ok();
    assert_eq!(got.stdout.lines().nth(1).unwrap().parse::<u64>().unwrap(), inode(&s.model_path()));
}
