//! `add hf.co/OWNER/REPO:QUANT`: the Hub look-alike answers the model API as the Hub does;
//! the entry pins the commit, size and SHA-256 it reports and the arch, dimension and task of
//! the file's header, read with ranged requests of the first bytes only (counted at the
//! server). Then the pinned entry downloads and verifies like any other.

use std::process::Command;

use crate::support::hub::{Faults, Hub, REPO, REVISION};
use crate::support::{gguf_bytes, gguf_file, sha256_hex, test_env, Run, Sandbox};

/// The first range `add` asks for (256 KiB).
const FIRST_READ: u64 = 256 * 1024;

struct Fixture {
    hub: Hub,
    sb: Sandbox,
}

impl Fixture {
    fn new(files: &[(&str, &[u8])]) -> Self {
        let hub = Hub::start();
        for (name, bytes) in files {
            hub.add_file(name, bytes.to_vec());
        }
        Self { hub, sb: Sandbox::new() }
    }

    fn cmd(&self) -> Command {
        let mut c = self.sb.cmd();
        c.env("HF_ENDPOINT", self.hub.endpoint()).env("SSL_CERT_FILE", &self.hub.ca_file);
        c
    }

    fn add(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().arg("add").args(args).output().unwrap())
    }

    fn catalog(&self) -> std::path::PathBuf {
        self.sb.models().join("catalog.json")
    }

    fn written(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.catalog()).expect("catalog written")).unwrap()
    }
}

/// An embedding model's file: a header with `bert.pooling_type` (mean), then filler.
fn embedding_file(size: usize, seed: u8) -> Vec<u8> {
    gguf_file(strata_model::gguf::test_header_with("bert", 384, 7, Some(1)), size, seed)
}

#[test]
fn a_reference_becomes_a_pinned_entry_that_downloads() {
    let bytes = embedding_file(6 << 20, 3);
    let f = Fixture::new(&[("test-repo-Q8_0.gguf", &bytes)]);
    let r = f.add(&[&format!("hf.co/{REPO}")]).ok();
    assert!(r.stdout.contains("added test-repo from hf.co/test-org/test-repo"), "{}", r.stdout);
    assert!(r.stdout.contains("embedding (from the GGUF header)"), "{}", r.stdout);

    let model = &f.written()["models"][0];
    assert_eq!(model["name"], "test-repo");
    assert_eq!(model["hf_repo"], REPO);
    assert_eq!(model["hf_filename"], "test-repo-Q8_0.gguf");
    assert_eq!(model["revision"], REVISION, "pinned to the commit, not to `main`");
    assert_eq!(model["sha256"], sha256_hex(&bytes));
    assert_eq!(model["size_bytes"], bytes.len() as u64);
    assert_eq!(
        (&model["arch"], &model["embedding_dim"], &model["task"]),
        (&"bert".into(), &384.into(), &"embedding".into())
    );

    // The Hub was asked once, as huggingface_hub asks it, then the file's header was read:
    // one resolve and one ranged GET of the first bytes, never the whole file.
    let seen = f.hub.seen();
    let api: Vec<_> = seen.iter().filter(|s| s.path.starts_with("/api/models/")).collect();
    assert_eq!(api.len(), 1, "{seen:#?}");
    assert_eq!(api[0].path, format!("/api/models/{REPO}/revision/main?blobs=true"));
    let gets = f.hub.cdn_gets();
    assert_eq!(gets.len(), 1, "{gets:#?}");
    assert_eq!(gets[0].headers["range"], format!("bytes=0-{}", FIRST_READ - 1));
    let sent = f.hub.bytes_sent();
    assert!(sent <= FIRST_READ && sent < bytes.len() as u64 / 20, "{sent} bytes sent for the header");

    // The entry is an ordinary custom model: it downloads and verifies.
    let r = Run::of(f.cmd().args(["download", "test-repo", "--quiet"]).output().unwrap()).ok();
    let path = r.stdout.trim();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
}

#[test]
fn several_quantizations_need_a_choice_and_each_can_be_added() {
    let q4 = gguf_bytes("llama", 2048, 300_000, 1);
    let q8 = gguf_bytes("llama", 2048, 400_000, 2);
    let f16 = gguf_bytes("llama", 2048, 500_000, 3);
    let f = Fixture::new(&[("Tiny-Q4_K_M.gguf", &q4), ("Tiny-Q8_0.gguf", &q8), ("Tiny-F16.gguf", &f16)]);

    let r = f.add(&[REPO]).code(3);
    for want in ["several GGUF files", ":Q4_K_M", ":Q8_0", ":F16", "Tiny-Q8_0.gguf", "400 kB"] {
        assert!(r.stderr.contains(want), "{want} in {}", r.stderr);
    }
    assert!(!f.catalog().exists(), "nothing written");
    assert_eq!(f.hub.cdn_gets().len(), 0, "no byte read before a file is chosen");

    let r = f.add(&[&format!("hf://{REPO}:q4_k_m"), "--json"]).ok();
    let doc = r.json();
    assert_eq!(doc["model"]["hf_filename"], "Tiny-Q4_K_M.gguf");
    assert_eq!((&doc["task_from"], &doc["model"]["task"]), (&"default".into(), &"generation".into()));
    assert_eq!((&doc["arch_from"], &doc["model"]["arch"]), (&"header".into(), &"llama".into()));
    f.add(&[&format!("huggingface.co/{REPO}:F16")]).ok();
    f.add(&[&format!("{REPO}/Tiny-Q8_0.gguf"), "--name", "other", "--task", "embedding"]).ok();

    let list = Run::of(f.cmd().args(["list", "--json"]).output().unwrap()).ok().json();
    let names: Vec<&str> =
        list["models"].as_array().unwrap().iter().filter_map(|m| m["name"].as_str()).collect();
    for want in ["test-repo", "test-repo:f16", "other"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let other = list["models"].as_array().unwrap().iter().find(|m| m["name"] == "other").unwrap();
    assert_eq!(other["task"], "embedding", "the option wins over the default");

    // The same name and quantization again: the error `register` gives.
    let r = f.add(&[&format!("hf.co/{REPO}:Q4_K_M")]).code(8);
    assert!(r.stderr.contains("already registered"), "{}", r.stderr);
    let r = f.add(&[&format!("hf.co/{REPO}:Q2_K")]).code(3);
    assert!(r.stderr.contains("no GGUF file for quantization Q2_K"), "{}", r.stderr);
}

#[test]
fn a_gated_repository_says_what_to_do_and_never_shows_the_token() {
    let f = Fixture::new(&[("t-Q8_0.gguf", &gguf_bytes("bert", 384, 100_000, 4))]);
    f.hub.set_faults(Faults { hub_error: Some((401, "GatedRepo")), ..Faults::default() });
    let r = f.add(&[REPO]).code(5);
    assert!(r.stderr.contains("is gated") && r.stderr.contains("set HF_TOKEN"), "{}", r.stderr);
    let r = Run::of(f.cmd().env("HF_TOKEN", "hf_secret_gate").args(["add", REPO]).output().unwrap()).code(5);
    assert!(r.stderr.contains("token in HF_TOKEN has no access"), "{}", r.stderr);
    assert!(!r.stderr.contains("hf_secret_gate"));
    let api = f.hub.seen().into_iter().rfind(|s| s.path.starts_with("/api/")).unwrap();
    assert_eq!(api.headers["authorization"], "Bearer hf_secret_gate", "the token goes to the Hub's API");
    assert!(!f.catalog().exists());
}

#[test]
fn a_missing_repository_or_revision_is_named() {
    let f = Fixture::new(&[("t-Q8_0.gguf", &gguf_bytes("bert", 384, 100_000, 5))]);
    let r = f.add(&["hf.co/test-org/no-such-repo"]).code(3);
    assert!(r.stderr.contains("repository test-org/no-such-repo does not exist"), "{}", r.stderr);
    let r = f.add(&[&format!("{REPO}@v9.9")]).code(3);
    assert!(r.stderr.contains("has no revision v9.9"), "{}", r.stderr);
    let r = f.add(&[REPO, "--revision", "refs/pr/1"]).code(3);
    assert!(r.stderr.contains("has no revision refs/pr/1"), "{}", r.stderr);
    let last = f.hub.seen().into_iter().rfind(|s| s.path.starts_with("/api/")).unwrap();
    assert_eq!(
        last.path,
        format!("/api/models/{REPO}/revision/refs%2Fpr%2F1?blobs=true"),
        "one encoded segment"
    );
    // A commit works as well as a branch.
    f.add(&[&format!("{REPO}@{REVISION}"), "--dry-run"]).ok();
    let r = f.add(&["not a reference"]).code(3);
    assert!(r.stderr.contains("is not a Hub reference"), "{}", r.stderr);
}

#[test]
fn files_that_cannot_be_pinned_or_are_not_gguf_are_refused_and_nothing_is_written() {
    let html = b"<!DOCTYPE html><html>not a model</html>".repeat(100);
    let split = gguf_bytes("llama", 4096, 100_000, 6);
    let f = Fixture::new(&[
        ("t-Q8_0.gguf", &gguf_bytes("bert", 384, 100_000, 7)),
        ("page-Q4_0.gguf", &html),
        ("big-Q6_K-00001-of-00002.gguf", &split),
        ("big-Q6_K-00002-of-00002.gguf", &split),
    ]);
    f.hub.set_faults(Faults { not_lfs: vec!["t-Q8_0.gguf"], ..Faults::default() });
    let r = f.add(&[&format!("{REPO}:Q8_0")]).code(9);
    assert!(r.stderr.contains("not stored with Git LFS"), "{}", r.stderr);
    let r = f.add(&[&format!("{REPO}:Q4_0")]).code(6);
    assert!(r.stderr.contains("does not start with a readable GGUF header"), "{}", r.stderr);
    // Named as a split, but its first shard's header says nothing of one.
    let r = f.add(&[&format!("{REPO}:Q6_K")]).code(6);
    assert!(r.stderr.contains("nothing of a split"), "{}", r.stderr);
    let r = f.add(&[REPO, "--file", "README.md"]).code(9);
    assert!(r.stderr.contains("not stored with Git LFS"), "{}", r.stderr);
    assert!(!f.catalog().exists(), "nothing written");
}

#[test]
fn a_dry_run_checks_everything_and_writes_nothing_and_offline_asks_nobody() {
    let bytes = embedding_file(200_000, 8);
    let f = Fixture::new(&[("test-repo-Q8_0.gguf", &bytes)]);
    let doc = f.add(&[REPO, "--dry-run", "--json", "--dim", "1024"]).ok().json();
    assert_eq!(doc["written"], false);
    assert_eq!((&doc["dim_from"], &doc["model"]["embedding_dim"]), (&"option".into(), &1024.into()));
    assert_eq!(doc["model"]["sha256"], sha256_hex(&bytes));
    assert!(!f.catalog().exists());

    f.hub.clear_seen();
    let r = Run::of(f.cmd().env("STRATA_OFFLINE", "1").args(["add", REPO]).output().unwrap()).code(8);
    assert!(r.stderr.contains("network access is off"), "{}", r.stderr);
    assert!(f.hub.seen().is_empty());
}

/// A header whose model keys come after 700 KB of other keys: read in growing ranges that
/// continue where the last stopped, and still only the header's bytes.
#[test]
fn a_long_header_is_read_in_growing_ranges_and_no_further() {
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
    }
    let mut h = b"GGUF".to_vec();
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.extend_from_slice(&5u64.to_le_bytes());
    string(&mut h, b"general.architecture");
    h.extend_from_slice(&8u32.to_le_bytes());
    string(&mut h, b"qwen3");
    string(&mut h, b"general.description");
    h.extend_from_slice(&8u32.to_le_bytes());
    string(&mut h, &vec![b'x'; 700_000]);
    for (key, value) in
        [("qwen3.embedding_length", 1024u32), ("qwen3.pooling_type", 3), ("general.file_type", 7)]
    {
        string(&mut h, key.as_bytes());
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&value.to_le_bytes());
    }
    let header_len = h.len() as u64;
    let bytes = gguf_file(h, 8 << 20, 9);
    let f = Fixture::new(&[("My-Qwen3-Q8_0.gguf", &bytes)]);
    let doc = f.add(&[REPO, "--json", "--name", "my-qwen3"]).ok().json();
    assert_eq!((&doc["model"]["arch"], &doc["model"]["embedding_dim"]), (&"qwen3".into(), &1024.into()));
    assert_eq!(doc["task_from"], "header", "pooling `last` states an embedding model");
    let ranges: Vec<String> = f.hub.cdn_gets().iter().map(|g| g.headers["range"].clone()).collect();
    assert_eq!(
        ranges,
        [format!("bytes=0-{}", FIRST_READ - 1), format!("bytes={FIRST_READ}-{}", 5 * FIRST_READ - 1)]
    );
    let sent = f.hub.bytes_sent();
    assert!(sent >= header_len && sent <= 5 * FIRST_READ, "{sent} bytes for a {header_len}-byte header");
    assert_eq!(doc["header_bytes"].as_u64(), Some(header_len), "the reader stopped at the header's end");
    assert_eq!(doc["fetched_bytes"].as_u64(), Some(5 * FIRST_READ), "256 KiB, then 1 MiB more");
}

/// The real huggingface_hub reads the look-alike's model API as it reads the Hub's: the same
/// commit and LFS facts `add` pinned.
#[test]
fn huggingface_hub_reads_the_same_answer() {
    let Some(python) = test_env("STRATA_TEST_PYTHON", "the huggingface_hub tests") else { return };
    let bytes = embedding_file(150_000, 10);
    let f = Fixture::new(&[("test-repo-Q8_0.gguf", &bytes)]);
    let script = format!(
        "from huggingface_hub import HfApi\n\
         info = HfApi().model_info({REPO:?}, revision='main', files_metadata=True)\n\
         print(info.sha)\n\
         for s in info.siblings:\n    print(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None)\n"
    );
    let r = Run::of(
        Command::new(python)
            .env("HF_ENDPOINT", f.hub.endpoint())
            .env("SSL_CERT_FILE", &f.hub.ca_file)
            .env("HF_HOME", f.sb.tmp.path().join("python-hf-home"))
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env_remove("HF_TOKEN")
            .args(["-c", &script])
            .output()
            .unwrap(),
    )
    .ok();
    let python_saw = f.hub.seen().into_iter().find(|s| s.path.starts_with("/api/")).unwrap();
    f.hub.clear_seen();
    let doc = f.add(&[REPO, "--json", "--dry-run"]).ok().json();
    let ours = f.hub.seen().into_iter().find(|s| s.path.starts_with("/api/")).unwrap();
    assert_eq!(python_saw.path.replace("True", "true"), ours.path, "the same request");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], doc["model"]["revision"]);
    let lfs = format!("test-repo-Q8_0.gguf {} {}", bytes.len(), doc["model"]["sha256"].as_str().unwrap());
    assert!(lines.contains(&lfs.as_str()), "{lines:?}");
    assert!(lines.contains(&"README.md 14 None"), "{lines:?}");
}
