//! Multi-file models (issue 21): a split GGUF's shards, named and keyed as llama.cpp's
//! `gguf-split` writes them (`NAME-00001-of-00003.gguf`; the first shard holds every key then
//! `split.no`, `split.count`, `split.tensors.count`, later shards only those three), in a
//! quant folder of the Hub look-alike, with a projector (`mmproj-F16.gguf`) and a single-file
//! quant beside them; added, downloaded as one unit, interrupted and resumed, corrupted at
//! the source, shared with huggingface_hub.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::hub::{Faults, Hub};
use crate::support::{gguf_file, sha256_hex, test_env, Run, Sandbox};

pub(crate) const SHARDS: [&str; 3] = [
    "Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf",
    "Q4_K_M/Big-Q4_K_M-00002-of-00003.gguf",
    "Q4_K_M/Big-Q4_K_M-00003-of-00003.gguf",
];
pub(crate) const MMPROJ: &str = "mmproj-F16.gguf";
const SINGLE: &str = "Big-Q8_0.gguf";
/// The folder of the models directory that holds the split model.
pub(crate) const UNIT: &str = "Big-Q4_K_M";

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends `gguf-split`'s keys to a header (and counts them): `split.no` (u16, from 0),
/// `split.count` (u16), `split.tensors.count` (i32).
pub(crate) fn with_split_keys(mut header: Vec<u8>, no: u16, count: u16, tensors: i32) -> Vec<u8> {
    let kv = u64::from_le_bytes(header[16..24].try_into().unwrap()) + 3;
    header[16..24].copy_from_slice(&kv.to_le_bytes());
    string(&mut header, "split.no");
    header.extend_from_slice(&2u32.to_le_bytes());
    header.extend_from_slice(&no.to_le_bytes());
    string(&mut header, "split.count");
    header.extend_from_slice(&2u32.to_le_bytes());
    header.extend_from_slice(&count.to_le_bytes());
    string(&mut header, "split.tensors.count");
    header.extend_from_slice(&5u32.to_le_bytes());
    header.extend_from_slice(&tensors.to_le_bytes());
    header
}

/// A later shard's header: the magic, version 3, no tensors of its own here, only the split keys.
pub(crate) fn later_shard_header(no: u16, count: u16) -> Vec<u8> {
    let mut h = b"GGUF".to_vec();
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    with_split_keys(h, no, count, 291)
}

/// The three shards of a split of `count` (as its first shard says) with these sizes.
pub(crate) fn shards(sizes: [usize; 3], count: u16) -> Vec<Vec<u8>> {
    let first = with_split_keys(strata_model::gguf::test_header("llama", 2048, 15), 0, count, 291);
    vec![
        gguf_file(first, sizes[0], 1),
        gguf_file(later_shard_header(1, count), sizes[1], 2),
        gguf_file(later_shard_header(2, count), sizes[2], 3),
    ]
}

pub(crate) struct Repo {
    pub(crate) hub: Hub,
    pub(crate) sb: Sandbox,
    pub(crate) files: Vec<(String, Vec<u8>)>,
}

impl Repo {
    /// The Hub look-alike with the split in `Q4_K_M/`, a projector and a single-file quant.
    pub(crate) fn new(sizes: [usize; 3]) -> Self {
        let hub = Hub::start();
        let mut files: Vec<(String, Vec<u8>)> =
            SHARDS.iter().map(|s| s.to_string()).zip(shards(sizes, 3)).collect();
        files.push((MMPROJ.into(), gguf_file(strata_model::gguf::test_header("clip", 1024, 1), 300_000, 4)));
        files.push((SINGLE.into(), gguf_file(strata_model::gguf::test_header("llama", 2048, 7), 200_000, 5)));
        for (name, bytes) in &files {
            hub.add_file(name, bytes.clone());
        }
        Self { hub, sb: Sandbox::new(), files }
    }

    pub(crate) fn bytes(&self, name: &str) -> &[u8] {
        &self.files.iter().find(|(n, _)| n == name).unwrap().1
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = self.sb.cmd();
        c.env("HF_ENDPOINT", self.hub.endpoint()).env("SSL_CERT_FILE", &self.hub.ca_file);
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args).output().unwrap())
    }

    pub(crate) fn add_big(&self) -> Run {
        self.run(&["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big"]).ok()
    }

    pub(crate) fn unit(&self) -> PathBuf {
        self.sb.models().join(UNIT)
    }

    pub(crate) fn local(&self, repo_path: &str) -> PathBuf {
        self.unit().join(repo_path.rsplit('/').next().unwrap())
    }

    /// Every file of the split model (shards, projector) and its local path.
    pub(crate) fn unit_files(&self) -> Vec<(&str, PathBuf)> {
        SHARDS.iter().copied().chain([MMPROJ]).map(|f| (f, self.local(f))).collect()
    }
}

#[test]
fn add_pins_every_shard_and_the_projector_and_download_makes_one_unit() {
    let r = Repo::new([700_000, 600_000, 500_000]);
    let added = r.add_big();
    for want in ["3 shards", "mmproj", MMPROJ, SHARDS[2], "--no-mmproj", UNIT] {
        assert!(added.stdout.contains(want), "{want} in\n{}", added.stdout);
    }
    let catalog: serde_json::Value =
        serde_json::from_slice(&fs::read(r.sb.models().join("catalog.json")).unwrap()).unwrap();
    let files = catalog["models"][0]["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 4, "{catalog:#}");
    for (i, want) in SHARDS.iter().chain([&MMPROJ]).enumerate() {
        assert_eq!(files[i]["path"], *want);
        assert_eq!(files[i]["sha256"], sha256_hex(r.bytes(want)));
        assert_eq!(files[i]["size_bytes"], r.bytes(want).len());
        assert_eq!(files[i]["role"], if i < 3 { "weights" } else { "mmproj" });
    }
    assert!(catalog["models"][0].get("hf_filename").is_none(), "{catalog:#}");

    r.hub.clear_seen();
    let before = r.hub.connections("cdn");
    r.run(&["download", "big", "--connections", "3"]).ok();
    for (repo_path, local) in r.unit_files() {
        assert_eq!(fs::read(&local).unwrap(), r.bytes(repo_path), "{}", local.display());
    }
    // One Hub request per file (the resolve), and no more connections than asked for.
    assert!(r.hub.requests("hub") <= 4, "{:#?}", r.hub.seen());
    let opened = r.hub.connections("cdn") - before;
    assert!(opened <= 3, "{opened} CDN connections for a budget of 3");

    let path = r.run(&["path", "big"]).ok();
    assert_eq!(path.stdout.trim_end(), r.local(SHARDS[0]).display().to_string());
    let json = r.run(&["path", "big", "--json"]).ok().json();
    let listed: Vec<(String, String)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["repo_path"].as_str().unwrap().into(), f["role"].as_str().unwrap().into()))
        .collect();
    assert_eq!(listed.len(), 4, "{json:#}");
    assert_eq!(listed[3], (MMPROJ.to_string(), "mmproj".to_string()));

    let list = r.run(&["list", "--json"]).ok().json();
    let rows: Vec<&serde_json::Value> =
        list["models"].as_array().unwrap().iter().filter(|m| m["model"] == "big").collect();
    assert_eq!(rows.len(), 1, "one row for the model");
    assert_eq!(rows[0]["status"], "downloaded");

    r.run(&["verify", "big"]).ok();
    // A warm ensure asks nobody.
    r.hub.clear_seen();
    r.run(&["download", "big"]).ok();
    assert_eq!(r.hub.seen().len(), 0, "{:#?}", r.hub.seen());

    // remove: every file, and the folder.
    r.run(&["remove", "big"]).ok();
    assert!(!r.unit().exists(), "the model's folder is gone");
}

#[test]
fn a_corrupt_shard_at_the_source_leaves_the_model_not_downloaded_and_the_verified_files_kept() {
    let r = Repo::new([300_000, 300_000, 300_000]);
    r.add_big();
    let mut bad = r.bytes(SHARDS[1]).to_vec();
    let at = bad.len() - 10;
    bad[at] ^= 0xff;
    r.hub.add_file(SHARDS[1], bad);
    let failed = r.run(&["download", "big"]);
    assert_ne!(failed.code, 0);
    assert!(
        failed.stderr.contains("Big-Q4_K_M-00002-of-00003.gguf"),
        "the error names the shard:\n{}",
        failed.stderr
    );
    assert!(!r.local(SHARDS[1]).exists(), "never unverified bytes at a model path");
    for f in [SHARDS[0], SHARDS[2], MMPROJ] {
        assert_eq!(fs::read(r.local(f)).unwrap(), r.bytes(f), "{f} verified and kept");
    }
    r.run(&["path", "big"]).code(4);
    let list = r.run(&["list", "--json"]).ok().json();
    let row = list["models"].as_array().unwrap().iter().find(|m| m["model"] == "big").unwrap().clone();
    assert_eq!(row["status"], "partial", "{row:#}");

    // The source is mended: only the missing shard is fetched.
    r.hub.add_file(SHARDS[1], r.bytes(SHARDS[1]).to_vec());
    r.hub.clear_seen();
    r.run(&["download", "big"]).ok();
    let paths: Vec<String> = r.hub.cdn_gets().iter().map(|s| s.path.clone()).collect();
    assert!(paths.iter().all(|p| p.contains("00002-of-00003")), "{paths:#?}");
    assert_eq!(r.hub.bytes_sent(), 300_000);
}

#[test]
fn a_killed_download_resumes_each_file_and_fetches_only_what_is_missing() {
    let r = Repo::new([3_000_000, 3_000_000, 2_000_000]);
    r.add_big();
    r.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let mut child = r
        .cmd()
        .args(["download", "big", "--connections", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // What `list` counts: verified files and partial downloads, over every file.
    let on_disk = || -> u64 {
        let list = r.run(&["list", "--json"]).ok().json();
        let row = list["models"].as_array().unwrap().iter().find(|m| m["model"] == "big").unwrap().clone();
        row["partial_bytes"].as_u64().unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while on_disk() < 2_000_000 {
        assert!(Instant::now() < deadline, "the download did not progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved = on_disk();
    assert!(saved >= 2_000_000);
    // Locks work here: the partials are the shared ones, not one process's own
    // (`<file>.part.<pid>-<host>`, for filesystems whose locks cannot be trusted).
    for e in fs::read_dir(r.sb.models().join(".strata").join(UNIT)).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let tail = name.split(".part").nth(1);
        assert!(tail.is_none_or(|t| t.is_empty() || t == ".ranges" || t == ".etag"), "{name}");
    }
    for (repo_path, local) in r.unit_files() {
        assert!(
            !local.exists() || fs::read(&local).unwrap() == r.bytes(repo_path),
            "only verified bytes at {repo_path}"
        );
    }
    let list = r.run(&["list", "--json"]).ok().json();
    let row = list["models"].as_array().unwrap().iter().find(|m| m["model"] == "big").unwrap().clone();
    assert_eq!(row["status"], "partial", "{row:#}");

    r.hub.set_faults(Faults::default());
    r.hub.clear_seen();
    r.run(&["download", "big", "--connections", "4"]).ok();
    for (repo_path, local) in r.unit_files() {
        assert_eq!(fs::read(&local).unwrap(), r.bytes(repo_path));
    }
    let total: u64 = r.unit_files().iter().map(|(f, _)| r.bytes(f).len() as u64).sum();
    // One buffer per file whose progress was not yet recorded when the process died.
    let in_flight = 4 * (256 << 10);
    let sent = r.hub.bytes_sent();
    assert!(sent <= total - saved + in_flight, "{sent} sent again; {saved} of {total} were on disk");
}

#[test]
fn two_models_with_the_same_projector_name_do_not_collide() {
    let hub = Hub::start();
    let sb = Sandbox::new();
    let mut want = Vec::new();
    for (dir, seed) in [("vision-a", 10u8), ("vision-b", 20)] {
        let weights = gguf_file(strata_model::gguf::test_header("gemma3", 640, 15), 100_000, seed);
        let projector = gguf_file(strata_model::gguf::test_header("clip", 1152, 1), 50_000, seed + 1);
        hub.add_file(&format!("{dir}/{dir}-Q4_K_M.gguf"), weights);
        hub.add_file(&format!("{dir}/mmproj-F16.gguf"), projector.clone());
        want.push((dir, projector));
    }
    let run = |args: &[&str]| hub.run(&sb, args);
    for (dir, _) in &want {
        let file = format!("hf.co/test-org/test-repo/{dir}/{dir}-Q4_K_M.gguf");
        run(&["add", &file, "--name", dir]).ok();
        run(&["download", dir]).ok();
    }
    for (dir, projector) in &want {
        let local = sb.models().join(format!("{dir}-Q4_K_M")).join("mmproj-F16.gguf");
        assert_eq!(&fs::read(&local).unwrap(), projector, "{}", local.display());
    }
    run(&["verify", "vision-a"]).ok();
    run(&["verify", "vision-b"]).ok();
}

#[test]
fn a_split_that_is_not_whole_or_disagrees_with_its_count_is_refused_naming_the_files() {
    // A shard missing at the source.
    let r = Repo::new([100_000, 100_000, 100_000]);
    let hub2 = Hub::start();
    for (name, bytes) in r.files.iter().filter(|(n, _)| n != SHARDS[1]) {
        hub2.add_file(name, bytes.clone());
    }
    let out = hub2.run(&r.sb, &["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("missing shard 00002") && out.stderr.contains(SHARDS[2]), "{}", out.stderr);

    // The first shard says two shards; the repository has three.
    let liar = Hub::start();
    for (name, bytes) in SHARDS.iter().zip(shards([100_000, 100_000, 100_000], 2)) {
        liar.add_file(name, bytes);
    }
    let out = liar.run(&r.sb, &["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("`split.count` = 2"), "{}", out.stderr);
    assert!(!r.sb.models().join("catalog.json").exists(), "nothing written");
}

#[test]
fn a_catalog_path_that_leaves_the_repository_is_refused_naming_the_field() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.models()).unwrap();
    let doc = serde_json::json!({"models": [{
        "name": "big",
        "hf_repo": "test-org/test-repo",
        "revision": crate::support::hub::REVISION,
        "files": [
            {"path": "Q4_K_M/Big-Q4_K_M-00001-of-00002.gguf", "size_bytes": 10, "sha256": "ab".repeat(32)},
            {"path": "../Big-Q4_K_M-00002-of-00002.gguf", "size_bytes": 10, "sha256": "cd".repeat(32)}
        ]
    }]});
    fs::write(sb.models().join("catalog.json"), doc.to_string()).unwrap();
    // `list` still lists the built-in models, and says what is wrong with the file.
    let out = sb.run(&["list"]).ok();
    assert!(out.stderr.contains("files[1].path") && out.stderr.contains(".."), "{}", out.stderr);
    let out = sb.run(&["download", "big"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("files[1].path"), "{}", out.stderr);
}

#[test]
fn huggingface_hub_reads_a_shared_split_model_offline() {
    let Some(python) = test_env("STRATA_TEST_PYTHON", "huggingface_hub reading a shared split model") else {
        return;
    };
    let r = Repo::new([100_000, 100_000, 100_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let cache = r.sb.tmp.path().join("hf-cache");
    let shared = Run::of(r.cmd().env("HF_HUB_CACHE", &cache).args(["share", "big"]).output().unwrap()).ok();
    assert!(shared.stdout.contains("Big-Q4_K_M-00003-of-00003.gguf"), "{}", shared.stdout);
    for (repo_path, _) in r.unit_files() {
        let script = format!(
            "from huggingface_hub import hf_hub_download\nprint(hf_hub_download('test-org/test-repo', '{repo_path}', revision='{}'))",
            crate::support::hub::REVISION
        );
        let out = Command::new(&python)
            .args(["-c", &script])
            .env("HF_HUB_CACHE", &cache)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        let run = Run::of(out).ok();
        let path = PathBuf::from(run.stdout.trim());
        assert!(path.ends_with(repo_path), "{}", path.display());
        assert_eq!(fs::read(&path).unwrap(), r.bytes(repo_path));
    }
}

/// A second machine: the same catalog, nothing downloaded, the Hub unreachable.
pub(crate) fn second_node(r: &Repo) -> Sandbox {
    let node = Sandbox::new();
    fs::create_dir_all(node.models()).unwrap();
    fs::copy(r.sb.models().join("catalog.json"), node.models().join("catalog.json")).unwrap();
    node
}

#[test]
fn mirror_push_lays_the_files_out_at_their_repository_paths_and_a_second_node_pulls_the_unit() {
    let r = Repo::new([200_000, 200_000, 200_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let mirror = r.sb.tmp.path().join("mirror");
    let pushed = r.run(&["mirror", "push", mirror.to_str().unwrap(), "big", "--json"]).ok().json();
    assert_eq!(pushed.as_array().unwrap().len(), 4, "a line per file: {pushed:#}");
    for f in SHARDS.iter().chain([&MMPROJ]) {
        assert_eq!(fs::read(mirror.join(f)).unwrap(), r.bytes(f), "{f} at its repository path");
    }
    let node = second_node(&r);
    let pulled = Run::of(
        node.cmd()
            .env("STRATA_MODELS_MIRROR", &mirror)
            .env("STRATA_OFFLINE", "1")
            .args(["download", "big"])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(!pulled.stderr.contains("panicked"));
    for f in SHARDS.iter().chain([&MMPROJ]) {
        let local = node.models().join(UNIT).join(f.rsplit('/').next().unwrap());
        assert_eq!(fs::read(&local).unwrap(), r.bytes(f));
    }
}

#[test]
fn mirror_push_to_a_registry_is_one_modelpack_manifest_with_a_layer_per_file() {
    use crate::support::oci::{Auth, Registry};
    let Some(reg) = Registry::start(Auth::Open) else { return };
    let r = Repo::new([200_000, 200_000, 200_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let location = reg.location("fleet/models");
    let push = Run::of(
        r.sb.cmd()
            .env("SSL_CERT_FILE", &reg.ca_file)
            .args(["mirror", "push", &location, "big"])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(push.stdout.contains(MMPROJ), "{}", push.stdout);
    // The manifest the tag points to, from the registry's own storage.
    let storage = reg.dir.path().join("storage/docker/registry/v2");
    let link = fs::read_to_string(storage.join("repositories/fleet/models/_manifests/tags/big/current/link"))
        .unwrap();
    let digest = link.trim().strip_prefix("sha256:").unwrap().to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(reg.blob_data(&digest)).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let titles: Vec<&str> =
        layers.iter().map(|l| l["annotations"]["org.opencontainers.image.title"].as_str().unwrap()).collect();
    assert_eq!(titles, [SHARDS[0], SHARDS[1], SHARDS[2], MMPROJ], "{manifest:#}");
    for (layer, f) in layers.iter().zip(SHARDS.iter().chain([&MMPROJ])) {
        assert_eq!(layer["digest"], format!("sha256:{}", sha256_hex(r.bytes(f))));
    }
    let node = second_node(&r);
    Run::of(
        node.cmd()
            .env("SSL_CERT_FILE", &reg.ca_file)
            .env("HF_ENDPOINT", "https://127.0.0.1:9")
            .env("STRATA_MODELS_MIRROR", &location)
            .args(["download", "big"])
            .output()
            .unwrap(),
    )
    .ok();
    for f in SHARDS.iter().chain([&MMPROJ]) {
        let local = node.models().join(UNIT).join(f.rsplit('/').next().unwrap());
        assert_eq!(fs::read(&local).unwrap(), r.bytes(f));
    }
}

#[test]
fn a_split_model_in_a_hugging_face_snapshot_is_reused_with_no_request() {
    let r = Repo::new([150_000, 150_000, 150_000]);
    r.add_big();
    // A Hugging Face cache holding the model at its repository paths (nested snapshot
    // entries, relative links of the right depth), as `share` writes it.
    let cache = r.sb.tmp.path().join("hf-cache");
    let node = second_node(&r);
    r.run(&["download", "big"]).ok();
    Run::of(r.cmd().env("HF_HUB_CACHE", &cache).args(["share", "big"]).output().unwrap()).ok();
    let snapshot =
        cache.join(format!("models--test-org--test-repo/snapshots/{}", crate::support::hub::REVISION));
    let link = fs::read_link(snapshot.join(SHARDS[0])).unwrap();
    assert!(link.starts_with("../../../blobs"), "one `..` more for the folder: {}", link.display());

    r.hub.clear_seen();
    let got = Run::of(
        node.cmd()
            .env("HF_HUB_CACHE", &cache)
            .env("HF_ENDPOINT", r.hub.endpoint())
            .env("SSL_CERT_FILE", &r.hub.ca_file)
            .args(["download", "big"])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(r.hub.seen().is_empty(), "no request: {:#?}\n{}", r.hub.seen(), got.stderr);
    for (repo_path, _) in r.unit_files() {
        let local = node.models().join(UNIT).join(repo_path.rsplit('/').next().unwrap());
        assert_eq!(fs::read(&local).unwrap(), r.bytes(repo_path));
    }
    let info = Run::of(node.cmd().args(["info", "big", "--json"]).output().unwrap()).ok().json();
    assert_eq!(info["status"], "downloaded", "{info:#}");
}

/// The walkthrough, each step checked; run with `--nocapture` to see the commands and
/// what they print.
#[test]
fn walkthrough_add_download_interrupted_and_resumed_path_list_share_and_mirror_push() {
    let r = Repo::new([4_000_000, 4_000_000, 3_000_000]);
    let show = |args: &[&str], run: &Run| {
        eprintln!("$ strata-model {}\n{}{}", args.join(" "), run.stdout, run.stderr);
    };
    let step = |args: &[&str]| {
        let run = r.run(args).ok();
        show(args, &run);
        run
    };
    step(&["add", "hf.co/test-org/test-repo:Q4_K_M", "--name", "big"]);
    r.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let mut child =
        r.cmd().args(["download", "big"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = r.run(&["list", "--json"]).ok().json();
        let row = list["models"].as_array().unwrap().iter().find(|m| m["model"] == "big").unwrap().clone();
        if row["partial_bytes"].as_u64().unwrap_or(0) >= 3_000_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the download did not progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("$ strata-model download big   # killed once 3 MB were on disk");
    let list = step(&["list"]);
    assert!(list.stdout.contains("partial"), "{}", list.stdout);
    r.hub.set_faults(Faults::default());
    r.hub.clear_seen();
    step(&["download", "big"]);
    let total: u64 = r.unit_files().iter().map(|(f, _)| r.bytes(f).len() as u64).sum();
    eprintln!("(the resume fetched {} of the model's {total} bytes)\n", r.hub.bytes_sent());
    let path = step(&["path", "big"]);
    assert_eq!(path.stdout.trim_end(), r.local(SHARDS[0]).display().to_string());
    step(&["path", "big", "--json"]);
    step(&["list"]);
    let cache = r.sb.tmp.path().join("hf-cache");
    let shared = Run::of(r.cmd().env("HF_HUB_CACHE", &cache).args(["share", "big"]).output().unwrap()).ok();
    show(&["share", "big", "  # HF_HUB_CACHE=hf-cache"], &shared);
    let mirror = r.sb.tmp.path().join("mirror");
    step(&["mirror", "push", mirror.to_str().unwrap(), "big"]);
    for (repo_path, local) in r.unit_files() {
        assert_eq!(fs::read(local).unwrap(), r.bytes(repo_path));
        assert_eq!(fs::read(mirror.join(repo_path)).unwrap(), r.bytes(repo_path));
    }
}

#[cfg(feature = "cloud")]
#[test]
fn mirror_push_to_a_bucket_keeps_repository_paths_and_a_second_node_pulls_the_unit() {
    use crate::support::emulators::{Emulator, Kind, ALL};
    let r = Repo::new([120_000, 120_000, 120_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    for kind in ALL {
        let Some(emu) = Emulator::get(kind) else { continue };
        let prefix = emu.unique_prefix("split");
        let url = emu.url(&prefix);
        if kind == Kind::Gcs {
            // The GCS emulator takes no signed uploads (as in cloud.rs): seeded by hand.
            for f in SHARDS.iter().chain([&MMPROJ]) {
                emu.upload(&prefix, f, r.bytes(f));
            }
        } else {
            let pushed =
                Run::of(emu.cmd(&r.sb).args(["mirror", "push", &url, "big", "--json"]).output().unwrap())
                    .ok()
                    .json();
            let targets: Vec<&str> =
                pushed.as_array().unwrap().iter().map(|p| p["target"].as_str().unwrap()).collect();
            assert_eq!(targets.len(), 4, "{kind:?}: {pushed:#}");
            assert!(targets[0].ends_with(&format!("/{}", SHARDS[0])), "{kind:?}: {targets:?}");
        }
        let node = second_node(&r);
        Run::of(
            emu.cmd(&node)
                .env("HF_ENDPOINT", "https://127.0.0.1:9")
                .env("STRATA_MODELS_MIRROR", &url)
                .args(["download", "big"])
                .output()
                .unwrap(),
        )
        .ok();
        for f in SHARDS.iter().chain([&MMPROJ]) {
            let local = node.models().join(UNIT).join(f.rsplit('/').next().unwrap());
            assert_eq!(fs::read(&local).unwrap(), r.bytes(f), "{kind:?}");
        }
    }
}

/// The shards of these tests read by ggml-org's own reader (PyPI `gguf`, `GGUFReader`): the
/// first holds the model's keys then `split.no` (u16), `split.count` (u16) and
/// `split.tensors.count` (i32), later ones only those three — as `gguf-split` writes them.
#[test]
fn the_test_shards_are_what_ggml_orgs_reader_sees_in_gguf_split_output() {
    let Some(python) = test_env("STRATA_TEST_PYTHON", "reading test shards with the gguf package") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, bytes) in shards([50_000, 50_000, 50_000], 3).into_iter().enumerate() {
        let path = dir.path().join(format!("Big-Q4_K_M-{:05}-of-00003.gguf", i + 1));
        fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    let script = "import sys\nfrom gguf import GGUFReader\nfor p in sys.argv[1:]:\n    r = GGUFReader(p)\n    print(';'.join('%s=%s:%s' % (f.name, f.types[0].name, f.contents()) for f in r.fields.values() if not f.name.startswith('GGUF.')))\n";
    let out = Command::new(&python).arg("-c").arg(script).args(&paths).output().unwrap();
    let run = Run::of(out).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with("general.architecture=STRING:llama;"), "{}", lines[0]);
    assert!(
        lines[0].ends_with("split.no=UINT16:0;split.count=UINT16:3;split.tensors.count=INT32:291"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "split.no=UINT16:1;split.count=UINT16:3;split.tensors.count=INT32:291");
    assert_eq!(lines[2], "split.no=UINT16:2;split.count=UINT16:3;split.tensors.count=INT32:291");
}
