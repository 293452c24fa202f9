//! `update`: a custom entry added from the Hub look-alike is re-pinned to where `main` moved
//! and its changed file fetched; the old verified file serves until the new one is verified
//! and stays when the update fails or is killed; built-in and untracked entries are refused.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::hub::{Faults, Hub, REPO, REVISION};
use crate::support::{gguf_bytes, register, sha256_hex, Run, Sandbox};

const NEW: &str = "fedcba9876543210fedcba9876543210fedcba98";
pub(crate) const FILE: &str = "alpha-Q8_0.gguf";

/// `alpha` added from the Hub look-alike (tracking `main`), downloaded when `download`.
pub(crate) struct Fixture {
    pub(crate) hub: Hub,
    pub(crate) sb: Sandbox,
    pub(crate) old: Vec<u8>,
}

impl Fixture {
    pub(crate) fn new(size: usize, download: bool) -> Self {
        let hub = Hub::start();
        let old = gguf_bytes("bert", 384, size, 5);
        hub.add_file(FILE, old.clone());
        let f = Self { hub, sb: Sandbox::new(), old };
        f.run(&["add", &format!("hf.co/{REPO}/{FILE}"), "--name", "alpha"]).ok();
        if download {
            f.run(&["download", "alpha"]).ok();
        }
        f
    }

    pub(crate) fn cmd(&self) -> std::process::Command {
        let mut c = self.sb.cmd();
        c.env("HF_ENDPOINT", self.hub.endpoint()).env("SSL_CERT_FILE", &self.hub.ca_file);
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args).output().unwrap())
    }

    pub(crate) fn catalog(&self) -> serde_json::Value {
        serde_json::from_slice(&fs::read(self.sb.models().join("catalog.json")).unwrap()).unwrap()
    }

    pub(crate) fn pinned(&self) -> String {
        self.catalog()["models"][0]["revision"].as_str().unwrap().to_string()
    }

    /// The catalog entry edited by hand to pin `commit`, whose file is `bytes` (a new
    /// release's row, an operator's edit): not `update`.
    pub(crate) fn repin_by_hand(&self, commit: &str, bytes: &[u8]) {
        let mut doc = self.catalog();
        doc["models"][0]["revision"] = commit.into();
        doc["models"][0]["sha256"] = sha256_hex(bytes).into();
        doc["models"][0]["size_bytes"] = bytes.len().into();
        fs::write(self.sb.models().join("catalog.json"), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }

    pub(crate) fn on_disk(&self) -> Vec<u8> {
        fs::read(self.sb.models().join(FILE)).unwrap()
    }
}

/// The old file with its header changed: a longer value (a chat template fixed).
fn header_changed(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    new.extend_from_slice(b"9 kB of new metadata, in spirit");
    new
}

#[test]
fn update_repins_fetches_the_new_file_and_replaces_the_old_one_once_verified() {
    let f = Fixture::new(400_000, true);
    let new = header_changed(&f.old);
    f.hub.move_main(NEW, &[(FILE, new.clone())]);

    // A dry run says what it would do and changes nothing.
    let dry = f.run(&["update", "alpha", "--dry-run", "--json"]).ok().json();
    assert_eq!(dry["action"], "would_update");
    assert_eq!((dry["from"].as_str(), dry["to"].as_str()), (Some(REVISION), Some(NEW)));
    assert_eq!(dry["changed"], serde_json::json!([FILE]));
    assert_eq!(dry["fetch_bytes"], new.len());
    assert_eq!(f.pinned(), REVISION);
    assert_eq!(f.on_disk(), f.old);

    let text = f.run(&["update", "alpha"]).ok();
    assert!(text.stdout.contains("alpha: updated 0123456789ab → fedcba987654"), "{}", text.stdout);
    assert_eq!(f.pinned(), NEW);
    assert_eq!(f.on_disk(), new);
    // Warm and verified under the new pin: no request at all.
    f.hub.clear_seen();
    let path = f.run(&["download", "alpha"]).ok();
    assert_eq!(path.stdout.trim(), f.sb.models().join(FILE).to_str().unwrap());
    assert!(f.hub.seen().is_empty(), "{:?}", f.hub.seen());
    f.run(&["verify", "alpha"]).ok();
    // Nothing staged is left behind.
    let staged = f.sb.models().join(".strata/update");
    assert!(
        fs::read_dir(&staged).map(|d| d.count()).unwrap_or(0) <= 1,
        "{:?}",
        fs::read_dir(&staged).map(|d| d.collect::<Vec<_>>())
    );
    assert!(!staged.join(FILE).exists());

    // Again: current.
    let again = f.run(&["update", "alpha", "--json"]).ok().json();
    assert_eq!(again["action"], "current");

    // `main` moves again, the file the same bytes: re-pinned, nothing fetched.
    let newer = "00112233445566778899aabbccddeeff00112233";
    f.hub.move_main(newer, &[(FILE, new.clone())]);
    f.hub.clear_seen();
    let doc = f.run(&["update", "alpha", "--json"]).ok().json();
    assert_eq!(doc["action"], "repinned");
    assert!(f.hub.cdn_gets().is_empty());
    assert_eq!(f.pinned(), newer);
    f.hub.clear_seen();
    f.run(&["download", "alpha"]).ok();
    assert!(f.hub.seen().is_empty(), "the same file, stamped for the new pin");
}

#[test]
fn a_failed_or_killed_update_leaves_the_old_pin_and_file_serving() {
    let f = Fixture::new(3_000_000, true);
    let new = header_changed(&f.old);
    f.hub.move_main(NEW, &[(FILE, new.clone())]);

    // Bad bytes from the file host: the update fails, the old pin and file stay, verified.
    f.hub.set_faults(Faults { flip_byte: true, ..Default::default() });
    let failed = f.run(&["update", "alpha"]);
    assert_eq!(failed.code, 6, "{}", failed.stderr);
    assert_eq!(f.pinned(), REVISION);
    assert_eq!(f.on_disk(), f.old);
    f.hub.set_faults(Faults::default());
    f.hub.clear_seen();
    f.run(&["download", "alpha"]).ok();
    assert!(f.hub.seen().is_empty(), "the old file still verified under the old pin");

    // Killed mid-transfer: the same, and the next update resumes the staged partial.
    f.hub.set_faults(Faults { rate: Some(400_000), ..Default::default() });
    f.hub.clear_seen();
    let mut child =
        f.cmd().args(["update", "alpha"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while f.hub.bytes_sent() < 1_200_000 && started.elapsed() < Duration::from_secs(30) {
        assert!(child.try_wait().unwrap().is_none(), "the update ended before it was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before = f.hub.bytes_sent();
    assert!(sent_before >= 1_200_000, "{sent_before}");
    assert!(f.sb.models().join(".strata/update").join(format!("{FILE}.part")).exists());
    assert_eq!(f.pinned(), REVISION);
    assert_eq!(f.on_disk(), f.old);
    f.run(&["path", "alpha"]).ok();
    f.hub.set_faults(Faults::default());
    f.hub.clear_seen();
    f.run(&["update", "alpha"]).ok();
    let sent = f.hub.bytes_sent();
    // What reached the disk before the kill is kept (not what was still in socket buffers).
    assert!(sent + 500_000 <= new.len() as u64, "resumed: {sent} of {} sent again", new.len());
    assert_eq!(f.on_disk(), new);
    assert_eq!(sha256_hex(&f.on_disk()), sha256_hex(&new));
}

#[test]
fn builtin_untracked_and_gone_are_refused_with_what_to_do() {
    let f = Fixture::new(100_000, true);
    let builtin = f.run(&["update", "minilm"]);
    assert_eq!(builtin.code, 8);
    assert!(
        builtin.stderr.contains("built-in") && builtin.stderr.contains("strata-model add"),
        "{}",
        builtin.stderr
    );
    register(&f.sb, "manual", &gguf_bytes("bert", 384, 1000, 9));
    let manual = f.run(&["update", "manual"]);
    assert_eq!(manual.code, 8);
    assert!(manual.stderr.contains("--tracks"), "{}", manual.stderr);
    f.hub.move_main(NEW, &[("other-Q8_0.gguf", vec![1, 2, 3])]);
    let gone = f.run(&["update", "alpha"]);
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains(&format!("{FILE} is gone")), "{}", gone.stderr);
    assert_eq!(f.pinned(), REVISION);
    let off = Run::of(f.cmd().env("STRATA_OFFLINE", "1").args(["update", "alpha"]).output().unwrap()).code(8);
    assert!(off.stderr.contains("asks the Hub"), "{}", off.stderr);
}
