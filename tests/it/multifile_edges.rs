//! Multi-file models at their edges (issue 21, after a fresh user tried to break them): a
//! plain copy of a models directory as a mirror, two repositories' projectors of one name in
//! one mirror, the offline message per file, a unit left by `unregister`, a partial split
//! written by hand, folder names strata-model keeps or Windows refuses, a projector that is
//! not one, pins.

use std::fs;

use crate::multifile::{later_shard_header, second_node, with_split_keys, Repo, MMPROJ, SHARDS, UNIT};
use crate::support::hub::{Hub, REVISION};
use crate::support::{gguf_file, Run, Sandbox};

#[test]
fn a_copy_of_a_models_directory_serves_a_multi_file_model_as_a_mirror() {
    let r = Repo::new([100_000, 100_000, 100_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let node = second_node(&r);
    Run::of(
        node.cmd()
            .env("STRATA_MODELS_MIRROR", r.sb.models())
            .env("STRATA_OFFLINE", "1")
            .args(["download", "big"])
            .output()
            .unwrap(),
    )
    .ok();
    for f in SHARDS.iter().chain([&MMPROJ]) {
        let local = node.models().join(UNIT).join(f.rsplit('/').next().unwrap());
        assert_eq!(fs::read(local).unwrap(), r.bytes(f));
    }
}

/// Two repositories' vision models both ship `mmproj-F16.gguf` (same size, other bytes) at the
/// top: pushed to one mirror directory, the second goes to its model's folder, and a second
/// node gets each model's own projector.
#[test]
fn two_repositories_projectors_of_one_name_share_a_mirror_without_mixing() {
    let sb = Sandbox::new();
    let mirror = sb.tmp.path().join("mirror");
    let mut hubs = Vec::new();
    let mut expected = Vec::new();
    for (name, seed) in [("va", 40u8), ("vb", 50)] {
        let hub = Hub::start();
        let weights = gguf_file(strata_model::gguf::test_header("gemma3", 640, 15), 80_000, seed);
        let projector = gguf_file(strata_model::gguf::test_header("clip", 1152, 1), 40_000, seed + 1);
        hub.add_file(&format!("{name}-Q4_K_M.gguf"), weights);
        hub.add_file(MMPROJ, projector.clone());
        let env = |c: &mut std::process::Command| {
            c.env("HF_ENDPOINT", hub.endpoint()).env("SSL_CERT_FILE", &hub.ca_file);
        };
        let mut c = sb.cmd();
        env(&mut c);
        Run::of(c.args(["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", name]).output().unwrap()).ok();
        let mut c = sb.cmd();
        env(&mut c);
        Run::of(c.args(["download", name]).output().unwrap()).ok();
        expected.push((name, projector));
        hubs.push(hub);
    }
    let pushed = sb.run(&["mirror", "push", mirror.to_str().unwrap(), "va", "vb", "--json"]).ok().json();
    let targets: Vec<String> =
        pushed.as_array().unwrap().iter().map(|p| p["target"].as_str().unwrap().to_string()).collect();
    assert!(targets.iter().any(|t| t.ends_with("/vb-Q4_K_M/mmproj-F16.gguf")), "{targets:#?}");
    assert_eq!(fs::read(mirror.join(MMPROJ)).unwrap(), expected[0].1, "va's stays at the repository path");
    // Again: everything is present, nothing is replaced.
    let again = sb.run(&["mirror", "push", mirror.to_str().unwrap(), "va", "vb", "--json"]).ok().json();
    assert!(again.as_array().unwrap().iter().all(|p| p["action"] == "present"), "{again:#}");

    let node = Sandbox::new();
    fs::create_dir_all(node.models()).unwrap();
    fs::copy(sb.models().join("catalog.json"), node.models().join("catalog.json")).unwrap();
    for (name, projector) in &expected {
        Run::of(
            node.cmd()
                .env("STRATA_MODELS_MIRROR", &mirror)
                .env("STRATA_OFFLINE", "1")
                .args(["download", name])
                .output()
                .unwrap(),
        )
        .ok();
        let local = node.models().join(format!("{name}-Q4_K_M")).join(MMPROJ);
        assert_eq!(&fs::read(local).unwrap(), projector, "{name}");
    }
}

#[test]
fn offline_the_error_names_the_missing_files_own_url() {
    let r = Repo::new([50_000, 50_000, 50_000]);
    r.add_big();
    let mirror = r.sb.tmp.path().join("mirror");
    for f in [SHARDS[0], SHARDS[2], MMPROJ] {
        fs::create_dir_all(mirror.join(f).parent().unwrap()).unwrap();
        fs::write(mirror.join(f), r.bytes(f)).unwrap();
    }
    let out = Run::of(
        r.cmd()
            .env("STRATA_MODELS_MIRROR", &mirror)
            .env("STRATA_OFFLINE", "1")
            .args(["download", "big"])
            .output()
            .unwrap(),
    );
    assert_ne!(out.code, 0);
    let want = format!("/resolve/{REVISION}/Q4_K_M/Big-Q4_K_M-00002-of-00003.gguf");
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(!out.stderr.contains("00001-of-00003.gguf\n"), "{}", out.stderr);
}

#[test]
fn a_unit_left_by_unregister_is_untracked_and_counted() {
    let r = Repo::new([50_000, 50_000, 50_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    r.run(&["unregister", "big"]).ok();
    let list = r.run(&["list", "--json"]).ok().json();
    let untracked: Vec<&str> =
        list["untracked"].as_array().unwrap().iter().map(|u| u["file"].as_str().unwrap()).collect();
    assert_eq!(untracked.len(), 4, "{list:#}");
    assert!(untracked.contains(&"Big-Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf"), "{untracked:?}");
    let prune = r.run(&["prune", "--max-size", "1B", "--json"]).ok().json();
    assert_eq!(prune["bytes_before"], 50_000 * 3 + 300_000, "{prune:#}");
    assert!(r.unit().exists(), "untracked files are never deleted");
}

fn catalog_with(files: serde_json::Value) -> Sandbox {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.models()).unwrap();
    let doc = serde_json::json!({"models": [{
        "name": "big", "hf_repo": "test-org/test-repo", "revision": REVISION, "files": files
    }]});
    fs::write(sb.models().join("catalog.json"), doc.to_string()).unwrap();
    sb
}

#[test]
fn a_hand_written_split_must_be_whole_and_its_folder_a_name_of_its_own() {
    let sha = "ab".repeat(32);
    for (files, want) in [
        (
            serde_json::json!([{"path": "H/half-00001-of-00002.gguf", "size_bytes": 10, "sha256": sha}]),
            "shard 1 of 1",
        ),
        (
            serde_json::json!([{"path": "x-00002-of-00002.gguf", "size_bytes": 10, "sha256": sha}]),
            "is not shard 1",
        ),
        (
            serde_json::json!([{"path": "P/pinned-00001-of-00001.gguf", "size_bytes": 10, "sha256": sha}]),
            "keeps for its own files",
        ),
        (
            serde_json::json!([{"path": "catalog.json.gguf", "size_bytes": 10, "sha256": sha}, {"path": "mmproj-F16.gguf", "size_bytes": 10, "sha256": sha, "role": "mmproj"}]),
            "keeps for its own files",
        ),
        (
            serde_json::json!([{"path": "Q/a.gguf.lock-00001-of-00001.gguf", "size_bytes": 10, "sha256": sha}]),
            ".gguf",
        ),
    ] {
        let sb = catalog_with(files);
        let out = sb.run(&["download", "big"]);
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains(want), "{want}: {}", out.stderr);
    }
    // A folder name Windows refuses (`AUX`, from `AUX-00001-of-00002.gguf`): `add` refuses it.
    let hub = Hub::start();
    let first = with_split_keys(strata_model::gguf::test_header("llama", 2048, 15), 0, 2, 291);
    hub.add_file("AUX-00001-of-00002.gguf", gguf_file(first, 50_000, 1));
    hub.add_file("AUX-00002-of-00002.gguf", gguf_file(later_shard_header(1, 2), 50_000, 2));
    let sb = Sandbox::new();
    let out = hub.run(&sb, &["add", "hf.co/test-org/test-repo", "--name", "aux"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("folder `AUX`"), "{}", out.stderr);
}

#[test]
fn a_single_file_in_a_folder_leaves_no_empty_folder_when_removed_and_pins_are_its_own() {
    let hub = Hub::start();
    let sb = Sandbox::new();
    let bytes = gguf_file(strata_model::gguf::test_header("llama", 2048, 7), 60_000, 61);
    hub.add_file("Q8_0/x-Q8_0.gguf", bytes.clone());
    let run = |args: &[&str]| hub.run(&sb, args);
    run(&["add", "hf.co/test-org/test-repo:Q8_0", "--name", "x"]).ok();
    run(&["download", "x"]).ok();
    assert_eq!(fs::read(sb.models().join("x-Q8_0/x-Q8_0.gguf")).unwrap(), bytes);
    run(&["pin", "x"]).ok();
    let pins = fs::read_to_string(sb.models().join(".strata/pinned")).unwrap();
    assert_eq!(pins.trim(), "x-Q8_0/x-Q8_0.gguf");
    run(&["remove", "x"]).ok();
    assert!(!sb.models().join("x-Q8_0").exists(), "the empty folder goes too");
}

#[test]
fn a_projector_named_by_hand_must_be_a_gguf_projector() {
    let r = Repo::new([50_000, 50_000, 50_000]);
    r.hub.add_file("README.gguf.txt", b"hello".to_vec());
    let out =
        r.run(&["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big", "--mmproj", "Big-Q8_0.gguf"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("not a projector") && out.stderr.contains("`llama`"), "{}", out.stderr);
    let out = r.run(&["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big", "--mmproj", "README.md"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("not a GGUF file"), "{}", out.stderr);
    r.run(&["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big", "--mmproj", MMPROJ]).ok();
}

#[test]
fn a_split_beside_a_single_file_of_one_quantization_is_chosen_by_path() {
    let r = Repo::new([50_000, 50_000, 50_000]);
    r.hub.add_file(
        "Q4_K_M/Big-Q4_K_M.gguf",
        gguf_file(strata_model::gguf::test_header("llama", 2048, 15), 70_000, 9),
    );
    let out = r.run(&["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("/Q4_K_M/Big-Q4_K_M.gguf") && out.stderr.contains(&format!("/{}", SHARDS[0])),
        "{}",
        out.stderr
    );
    r.run(&["add", &format!("hf.co/test-org/test-repo/{}", SHARDS[0]), "--name", "big"]).ok();
}
