//! `add oci://…` against the real CNCF distribution server, with artifacts strata-model did
//! not write: blobs and manifests uploaded here with plain HTTP calls (curl), as Docker Model
//! Runner, modctl or oras would lay them out. Then `download` with the Hub unreachable, and
//! the bad inputs: a layer whose bytes are not its digest, a layer whose size lies (or passes
//! any sum), a tag that moved, a manifest that is no model, a tag that is not there, a split
//! not whole, titles with control characters, references with secrets.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::multifile::{later_shard_header, with_split_keys};
use crate::support::oci::{Auth, Registry, PASSWORD, USER};
use crate::support::{gguf_bytes, gguf_file, sha256_hex, Run, Sandbox};

const DMR_CONFIG: &str = "application/vnd.docker.ai.model.config.v0.1+json";
const DMR_GGUF: &str = "application/vnd.docker.ai.gguf.v3";
const DMR_LICENSE: &str = "application/vnd.docker.ai.license";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `curl` against the test registry (its CA trusted; the test user's credentials when it
/// has htpasswd auth): status, headers and body.
fn curl(r: &Registry, args: &[&str]) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let mut c = Command::new("curl");
    if r.dir.path().join("htpasswd").exists() {
        c.args(["-u", &format!("{USER}:{PASSWORD}")]);
    }
    let out = c
        .args(["-sS", "--cacert"])
        .arg(&r.ca_file)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.split_at(text.len() - 3);
    (code.parse().unwrap(), fs::read_to_string(head).unwrap_or_default(), body.to_string())
}

/// Uploads `bytes` as a blob of `repo` (POST, then PUT with the digest); its SHA-256.
fn put_blob(r: &Registry, repo: &str, bytes: &[u8]) -> String {
    let sha = sha256_hex(bytes);
    let (code, head, _) = curl(r, &["-X", "POST", &format!("https://{}/v2/{repo}/blobs/uploads/", r.addr)]);
    assert_eq!(code, 202, "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .unwrap()
        .trim()
        .to_string();
    let location = if location.starts_with('/') { format!("https://{}{location}", r.addr) } else { location };
    let sep = if location.contains('?') { '&' } else { '?' };
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), bytes).unwrap();
    let data = format!("@{}", file.path().display());
    let (code, head, body) = curl(
        r,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &data,
            &format!("{location}{sep}digest=sha256:{sha}"),
        ],
    );
    assert_eq!(code, 201, "{head}{body}");
    sha
}

/// Puts `manifest` under `reference` (a tag); its digest's hex.
fn put_manifest(r: &Registry, repo: &str, reference: &str, manifest: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(manifest).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), &bytes).unwrap();
    let data = format!("@{}", file.path().display());
    let media = manifest["mediaType"].as_str().unwrap_or(OCI_MANIFEST);
    let (code, head, body) = curl(
        r,
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media}"),
            "--data-binary",
            &data,
            &format!("https://{}/v2/{repo}/manifests/{reference}", r.addr),
        ],
    );
    assert_eq!(code, 201, "{head}{body}");
    sha256_hex(&bytes)
}

fn descriptor(media: &str, bytes: &[u8], sha: &str, title: Option<&str>) -> serde_json::Value {
    let mut d = json!({ "mediaType": media, "digest": format!("sha256:{sha}"), "size": bytes.len() });
    if let Some(t) = title {
        d["annotations"] = json!({ "org.opencontainers.image.title": t });
    }
    d
}

/// A Docker Model Runner artifact (config v0.1, a GGUF layer without a title, a license) under
/// `repo:tag`; the GGUF's bytes and the manifest's digest.
fn dmr_artifact(r: &Registry, repo: &str, tag: &str, seed: u8) -> (Vec<u8>, String) {
    let gguf = gguf_file(strata_model::gguf::test_header_with("bert", 384, 7, Some(1)), 300_000, seed);
    let sha = put_blob(r, repo, &gguf);
    let license = b"Apache-2.0".to_vec();
    let license_sha = put_blob(r, repo, &license);
    let config = serde_json::to_vec(&json!({
        "config": { "format": "gguf", "quantization": "Q8_0", "architecture": "bert", "size": "300.00 KB" },
        "descriptor": { "created": "2026-01-01T00:00:00Z" },
        "rootfs": { "type": "rootfs", "diff_ids": [format!("sha256:{sha}"), format!("sha256:{license_sha}")] }
    }))
    .unwrap();
    let config_sha = put_blob(r, repo, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(DMR_CONFIG, &config, &config_sha, None),
        "layers": [descriptor(DMR_GGUF, &gguf, &sha, None), descriptor(DMR_LICENSE, &license, &license_sha, None)],
    });
    let digest = put_manifest(r, repo, tag, &manifest);
    (gguf, digest)
}

/// A sandbox whose Hub nobody answers, trusting the registry's CA.
fn node(r: &Registry) -> (Sandbox, String) {
    let sb = Sandbox::new();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let _ = r;
    (sb, format!("https://{dead}"))
}

fn run(sb: &Sandbox, r: &Registry, dead: &str, args: &[&str]) -> Run {
    let mut c = sb.cmd();
    c.env("SSL_CERT_FILE", &r.ca_file).env("HF_ENDPOINT", dead).env_remove("STRATA_MODELS_MIRROR");
    Run::of(c.args(args).output().unwrap())
}

fn nothing_left(models: &Path, file: &str) {
    assert!(!models.join(file).exists());
    let state = models.join(".strata");
    let partials: Vec<_> = fs::read_dir(&state)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".part"))
                .collect()
        })
        .unwrap_or_default();
    assert!(partials.is_empty(), "{partials:?}");
}

#[test]
fn a_docker_model_runner_artifact_by_tag_is_added_then_downloaded_from_the_registry_alone() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let (gguf, digest) = dmr_artifact(&r, "ai/embed", "Q8_0", 5);
    let (sb, dead) = node(&r);
    let reference = format!("{}:Q8_0", r.location("ai/embed"));

    let dry = run(&sb, &r, &dead, &["add", &reference, "--dry-run"]).ok();
    assert!(dry.stdout.starts_with(&format!("would add (dry run) embed from {reference}")), "{}", dry.stdout);
    assert!(
        dry.stdout.contains(&format!("manifest  sha256:{digest} (docker-model-runner artifact")),
        "{}",
        dry.stdout
    );
    assert!(!sb.models().join("catalog.json").exists());

    let doc = run(&sb, &r, &dead, &["add", &reference, "--json"]).ok().json();
    let pinned = format!("{reference}@sha256:{digest}");
    assert_eq!(doc["model"]["oci"], pinned.as_str());
    assert_eq!(doc["model"]["hf_filename"], "embed-Q8_0.gguf");
    assert_eq!(doc["model"]["sha256"], sha256_hex(&gguf).as_str());
    assert_eq!(doc["model"]["size_bytes"], gguf.len());
    assert_eq!(doc["model"]["arch"], "bert");
    assert_eq!(doc["model"]["embedding_dim"], 384);
    assert_eq!(doc["model"]["task"], "embedding");
    assert!(doc["model"].get("hf_repo").is_none() && doc["model"].get("revision").is_none(), "{doc}");
    assert_eq!(doc["oci"]["manifest_digest"], format!("sha256:{digest}"));
    assert_eq!(doc["oci"]["kind"], "docker-model-runner");

    let info = run(&sb, &r, &dead, &["info", "embed"]).ok();
    assert!(info.stdout.contains(&format!("registry       {pinned}")), "{}", info.stdout);

    // The Hub is unreachable and no mirror is set: the registry serves, by digest.
    let got = run(&sb, &r, &dead, &["download", "embed"]).ok();
    let path = sb.models().join("embed-Q8_0.gguf");
    assert_eq!(fs::read(&path).unwrap(), gguf, "{}", got.stderr);
    run(&sb, &r, &dead, &["verify", "embed"]).ok();

    // By digest, on another node.
    let by_digest = format!("{}@sha256:{digest}", r.location("ai/embed"));
    let other = Sandbox::new();
    let doc = run(&other, &r, &dead, &["add", &by_digest, "--json"]).ok().json();
    assert_eq!(doc["model"]["oci"], by_digest.as_str());
    assert_eq!(doc["model"]["hf_filename"], format!("embed-{}.gguf", &digest[..12]));
    run(&other, &r, &dead, &["download", "embed"]).ok();

    // Offline, the registry is not asked: nothing is there, and the error names it.
    let offline = Sandbox::new();
    run(&offline, &r, &dead, &["add", &reference]).ok();
    let mut c = offline.cmd();
    c.env("STRATA_OFFLINE", "1").env("SSL_CERT_FILE", &r.ca_file);
    let off = Run::of(c.args(["download", "embed"]).output().unwrap());
    assert_ne!(off.code, 0);
    assert!(off.stderr.contains(&format!("https://{}/v2/ai/embed/blobs/sha256:", r.addr)), "{}", off.stderr);
}

#[test]
fn a_plain_artifact_titled_gguf_and_a_modelpack_split_with_a_projector() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    // oras-style: an empty config, a layer titled *.gguf.
    let gguf = gguf_bytes("nomic-bert", 768, 200_000, 9);
    let sha = put_blob(&r, "team/plain-embed", &gguf);
    let empty = b"{}".to_vec();
    let empty_sha = put_blob(&r, "team/plain-embed", &empty);
    put_manifest(
        &r,
        "team/plain-embed",
        "v1",
        &json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.gguf",
            "config": descriptor("application/vnd.oci.empty.v1+json", &empty, &empty_sha, None),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &gguf, &sha, Some("nomic-embed.Q4_K_M.gguf"))],
        }),
    );
    let (sb, dead) = node(&r);
    let added = run(&sb, &r, &dead, &["add", &format!("{}:v1", r.location("team/plain-embed"))]).ok();
    assert!(added.stdout.contains("file      nomic-embed.Q4_K_M.gguf (200 kB)"), "{}", added.stdout);
    assert!(added.stdout.contains("(plain artifact;"), "{}", added.stdout);
    assert!(added.stdout.contains("arch      nomic-bert (from the GGUF header)"), "{}", added.stdout);
    run(&sb, &r, &dead, &["download", "plain-embed"]).ok();
    assert_eq!(fs::read(sb.models().join("nomic-embed.Q4_K_M.gguf")).unwrap(), gguf);

    // ModelPack (modctl's layout): two shards and a projector as raw weight layers, a doc.
    let first = with_split_keys(strata_model::gguf::test_header("llama", 2048, 15), 0, 2, 291);
    let shards = [gguf_file(first, 150_000, 1), gguf_file(later_shard_header(1, 2), 120_000, 2)];
    let projector = gguf_file(strata_model::gguf::test_header("clip", 0, 1), 60_000, 3);
    let readme = b"# big".to_vec();
    let raw = "application/vnd.cncf.model.weight.v1.raw";
    let mut layers = Vec::new();
    for (bytes, title) in [
        (&shards[1], "Big-Q4_K_M-00002-of-00002.gguf"),
        (&shards[0], "Big-Q4_K_M-00001-of-00002.gguf"),
        (&projector, "mmproj-F16.gguf"),
    ] {
        let sha = put_blob(&r, "team/big", bytes);
        layers.push(descriptor(raw, bytes, &sha, Some(title)));
    }
    let readme_sha = put_blob(&r, "team/big", &readme);
    layers.push(descriptor("application/vnd.cncf.model.doc.v1.raw", &readme, &readme_sha, Some("README.md")));
    let config = br#"{"descriptor":{"name":"big"},"config":{"format":"gguf"},"modelfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let config_sha = put_blob(&r, "team/big", &config);
    let digest = put_manifest(
        &r,
        "team/big",
        "q4_k_m",
        &json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": descriptor("application/vnd.cncf.model.config.v1+json", &config, &config_sha, None),
            "layers": layers,
        }),
    );
    let doc =
        run(&sb, &r, &dead, &["add", &format!("{}:q4_k_m", r.location("team/big")), "--json"]).ok().json();
    assert_eq!(doc["oci"]["kind"], "modelpack");
    let files = doc["model"]["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["Big-Q4_K_M-00001-of-00002.gguf", "Big-Q4_K_M-00002-of-00002.gguf", "mmproj-F16.gguf"]
    );
    assert_eq!(files[2]["role"], "mmproj");
    assert_eq!(files[0]["sha256"], sha256_hex(&shards[0]).as_str());
    assert!(doc["model"]["oci"].as_str().unwrap().ends_with(&format!("@sha256:{digest}")));
    assert_eq!(doc["model"]["arch"], "llama");
    run(&sb, &r, &dead, &["download", "big"]).ok();
    let unit = sb.models().join("Big-Q4_K_M");
    assert_eq!(fs::read(unit.join("Big-Q4_K_M-00002-of-00002.gguf")).unwrap(), shards[1]);
    assert_eq!(fs::read(unit.join("mmproj-F16.gguf")).unwrap(), projector);

    // Without the projector.
    let doc = run(
        &Sandbox::new(),
        &r,
        &dead,
        &["add", &format!("{}:q4_k_m", r.location("team/big")), "--no-mmproj", "--dry-run", "--json"],
    )
    .ok()
    .json();
    assert_eq!(doc["model"]["files"].as_array().unwrap().len(), 2);
}

#[test]
fn lying_layers_a_moved_tag_no_model_and_no_tag_are_clear() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let (gguf, first_digest) = dmr_artifact(&r, "ai/embed", "latest", 5);
    let (sb, dead) = node(&r);
    let reference = format!("{}:latest", r.location("ai/embed"));
    run(&sb, &r, &dead, &["add", &reference]).ok();

    // The tag moves to another model: the entry still downloads what it pinned.
    let (moved, moved_digest) = dmr_artifact(&r, "ai/embed", "latest", 77);
    assert_ne!(moved_digest, first_digest);
    run(&sb, &r, &dead, &["download", "embed"]).ok();
    assert_eq!(fs::read(sb.models().join("embed-latest.gguf")).unwrap(), gguf);
    let again = run(&Sandbox::new(), &r, &dead, &["add", &reference, "--dry-run", "--json"]).ok().json();
    assert_eq!(again["oci"]["manifest_digest"], format!("sha256:{moved_digest}"));
    assert_eq!(again["model"]["sha256"], sha256_hex(&moved).as_str());

    // A layer whose bytes are not its digest (changed on the registry's disk): refused, nothing kept.
    let node2 = Sandbox::new();
    run(&node2, &r, &dead, &["add", &reference]).ok();
    let mut evil = moved.clone();
    evil[200_000] ^= 0xff;
    fs::write(r.blob_data(&sha256_hex(&moved)), &evil).unwrap();
    let bad = run(&node2, &r, &dead, &["download", "embed"]).code(6);
    assert!(bad.stderr.contains("checksum mismatch"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("OCI registry") && bad.stderr.to_lowercase().contains("sha256"),
        "{}",
        bad.stderr
    );
    nothing_left(&node2.models(), "embed-latest.gguf");

    // A layer whose size lies (fewer bytes than the blob): its bytes do not hash to the digest.
    let blob = gguf_bytes("bert", 384, 100_000, 12);
    let sha = put_blob(&r, "ai/short", &blob);
    let empty = b"{}".to_vec();
    let empty_sha = put_blob(&r, "ai/short", &empty);
    let mut layer = descriptor(DMR_GGUF, &blob, &sha, Some("short.gguf"));
    layer["size"] = json!(90_000);
    put_manifest(
        &r,
        "ai/short",
        "v1",
        &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": descriptor(DMR_CONFIG, &empty, &empty_sha, None), "layers": [layer] }),
    );
    // `add` compares it with the blob's size as the registry serves it: refused, nothing written.
    let node3 = Sandbox::new();
    let bad = run(&node3, &r, &dead, &["add", &format!("{}:v1", r.location("ai/short"))]).code(6);
    assert!(
        bad.stderr.contains(&format!("short.gguf (sha256:{sha}) is said to have 90000 bytes"))
            && bad.stderr.contains("has 100000"),
        "{}",
        bad.stderr
    );
    assert!(!node3.models().join("catalog.json").exists());

    // A manifest that is no model: an error naming the reference and what is there.
    let text = b"just a readme".to_vec();
    let text_sha = put_blob(&r, "ai/docs", &text);
    put_manifest(
        &r,
        "ai/docs",
        "v1",
        &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": descriptor("application/vnd.oci.empty.v1+json", &empty, &put_blob(&r, "ai/docs", &empty), None),
                 "layers": [descriptor("text/markdown", &text, &text_sha, Some("README.md"))] }),
    );
    let docs = format!("{}:v1", r.location("ai/docs"));
    let no = run(&Sandbox::new(), &r, &dead, &["add", &docs]).code(9);
    assert!(
        no.stderr.contains(&format!("cannot add {docs}")) && no.stderr.contains("no layer is a GGUF file"),
        "{}",
        no.stderr
    );
    assert!(no.stderr.contains("README.md"), "{}", no.stderr);

    // A tag that is not there.
    let missing = format!("{}:nope", r.location("ai/embed"));
    let gone = run(&Sandbox::new(), &r, &dead, &["add", &missing]).code(3);
    assert!(
        gone.stderr.contains(&format!("cannot add {missing}")) && gone.stderr.contains("no manifest `nope`"),
        "{}",
        gone.stderr
    );
}

#[test]
fn an_index_of_one_manifest_is_followed_and_an_index_of_several_is_refused_with_a_list() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let (gguf, digest) = dmr_artifact(&r, "ai/embed", "plain", 5);
    let (_, other) = dmr_artifact(&r, "ai/embed", "other", 6);
    let entry = |d: &str, arch: &str| {
        json!({ "mediaType": OCI_MANIFEST, "digest": format!("sha256:{d}"), "size": 1,
                "platform": { "os": "linux", "architecture": arch } })
    };
    // The index's descriptors need the manifests' real sizes.
    let size = |d: &str| {
        let (code, head, body) = curl(
            &r,
            &[
                "-H",
                &format!("Accept: {OCI_MANIFEST}"),
                &format!("https://{}/v2/ai/embed/manifests/sha256:{d}", r.addr),
            ],
        );
        assert_eq!(code, 200, "{head}");
        body.len()
    };
    let mut one = entry(&digest, "amd64");
    one["size"] = json!(size(&digest));
    let index = "application/vnd.oci.image.index.v1+json";
    let index_digest = put_manifest(
        &r,
        "ai/embed",
        "one",
        &json!({ "schemaVersion": 2, "mediaType": index, "manifests": [one] }),
    );
    let (sb, dead) = node(&r);
    let doc = run(&sb, &r, &dead, &["add", &format!("{}:one", r.location("ai/embed")), "--json"]).ok().json();
    assert_eq!(doc["oci"]["manifest_digest"], format!("sha256:{digest}"));
    assert_eq!(doc["oci"]["index_digest"], format!("sha256:{index_digest}"));
    assert_eq!(doc["model"]["sha256"], sha256_hex(&gguf).as_str());
    run(&sb, &r, &dead, &["download", "embed"]).ok();

    let mut two = entry(&other, "arm64");
    two["size"] = json!(size(&other));
    put_manifest(
        &r,
        "ai/embed",
        "two",
        &json!({ "schemaVersion": 2, "mediaType": index, "manifests": [one, two] }),
    );
    let two_ref = format!("{}:two", r.location("ai/embed"));
    let refused = run(&Sandbox::new(), &r, &dead, &["add", &two_ref]).code(3);
    assert!(
        refused.stderr.contains("an index of 2 manifests (linux/amd64 sha256:")
            && refused.stderr.contains(&format!("linux/arm64 sha256:{other}")),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_registry_behind_basic_auth_is_read_and_pulled_with_dockers_credentials() {
    let Some(r) = Registry::start(Auth::Basic) else { return };
    let (gguf, _) = dmr_artifact(&r, "private/embed", "v2", 8);
    let (sb, dead) = node(&r);
    let reference = format!("{}:v2", r.location("private/embed"));
    // No credentials: a clear refusal naming the registry.
    let refused = run(&sb, &r, &dead, &["add", &reference]).code(5);
    assert!(
        refused.stderr.contains("asks for credentials") && !refused.stderr.contains(PASSWORD),
        "{}",
        refused.stderr
    );
    let with = |args: &[&str]| {
        let mut c = sb.cmd();
        c.env("SSL_CERT_FILE", &r.ca_file).env("HF_ENDPOINT", &dead).env("DOCKER_CONFIG", r.docker_config());
        Run::of(c.args(args).output().unwrap())
    };
    with(&["add", &reference]).ok();
    with(&["download", "embed"]).ok();
    assert_eq!(fs::read(sb.models().join("embed-v2.gguf")).unwrap(), gguf);
}

/// A manifest of `layers` (raw descriptors) under `repo:tag`, with an empty config of `config`.
fn put_layers(r: &Registry, repo: &str, tag: &str, config: &str, layers: Vec<serde_json::Value>) -> String {
    let empty = b"{}".to_vec();
    let empty_sha = put_blob(r, repo, &empty);
    put_manifest(
        r,
        repo,
        tag,
        &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": descriptor(config, &empty, &empty_sha, None), "layers": layers }),
    )
}

#[test]
fn a_layer_of_a_size_past_any_sum_is_refused_and_a_catalog_saying_it_never_panics() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let blob = gguf_bytes("bert", 384, 100_000, 21);
    let sha = put_blob(&r, "ai/huge", &blob);
    let mut layer = descriptor(DMR_GGUF, &blob, &sha, None);
    // The registry takes at most i64::MAX; one such size and anything more passes u64::MAX.
    layer["size"] = json!(i64::MAX);
    put_layers(&r, "ai/huge", "v1", DMR_CONFIG, vec![layer]);
    let (sb, dead) = node(&r);
    let refused = run(&sb, &r, &dead, &["add", &format!("{}:v1", r.location("ai/huge"))]).code(6);
    assert!(
        refused
            .stderr
            .contains(&format!("the layer sha256:{sha} says it has {} bytes, more than 1 PiB", i64::MAX)),
        "{}",
        refused.stderr
    );
    assert!(!sb.models().join("catalog.json").exists());

    // A catalog written so by hand (or by an older version) is refused naming the field; no
    // command panics.
    fs::create_dir_all(sb.models()).unwrap();
    let model = |name: &str, file: &str| {
        json!({ "name": name, "hf_repo": "a/b", "revision": "ab".repeat(20), "hf_filename": file,
                "sha256": "cd".repeat(32), "size_bytes": u64::MAX, "arch": "bert", "embedding_dim": 384 })
    };
    let catalog = sb.models().join("catalog.json");
    fs::write(&catalog, json!({ "version": 1, "models": [model("a", "a.gguf")] }).to_string()).unwrap();
    for args in [&["list"][..], &["info", "a"], &["verify", "a"], &["download", "a"], &["download", "--all"]]
    {
        let got = run(&sb, &r, &dead, args);
        assert!(!got.stderr.contains("panicked") && got.code != 101, "{args:?}: {}", got.stderr);
        assert!(
            got.stderr.contains("size_bytes") && got.stderr.contains("1 PiB"),
            "{args:?}: {}",
            got.stderr
        );
    }
    let files = json!({ "name": "s", "hf_repo": "a/b", "revision": "ab".repeat(20), "arch": "bert", "embedding_dim": 384,
                        "files": [{ "path": "s-00001-of-00002.gguf", "size_bytes": 10, "sha256": "cd".repeat(32) },
                                  { "path": "s-00002-of-00002.gguf", "size_bytes": u64::MAX, "sha256": "ef".repeat(32) }] });
    fs::write(&catalog, json!({ "version": 1, "models": [files] }).to_string()).unwrap();
    let got = run(&sb, &r, &dead, &["list"]);
    assert!(!got.stderr.contains("panicked") && got.stderr.contains("files[1].size_bytes"), "{}", got.stderr);
}

#[test]
fn one_shard_of_a_split_and_several_untitled_layers_are_refused() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let raw = "application/vnd.cncf.model.weight.v1.raw";
    let modelpack = "application/vnd.cncf.model.config.v1+json";
    // ModelPack: only the first shard of two.
    let first = with_split_keys(strata_model::gguf::test_header("llama", 2048, 15), 0, 2, 291);
    let shard = gguf_file(first, 150_000, 1);
    let sha = put_blob(&r, "team/big", &shard);
    put_layers(
        &r,
        "team/big",
        "half",
        modelpack,
        vec![descriptor(raw, &shard, &sha, Some("big-00001-of-00002.gguf"))],
    );
    let (sb, dead) = node(&r);
    let half = run(&sb, &r, &dead, &["add", &format!("{}:half", r.location("team/big"))]).code(6);
    assert!(
        half.stderr.contains("split not whole") && half.stderr.contains("big-00001-of-00002.gguf"),
        "{}",
        half.stderr
    );
    // The same shard untitled: its header says it is one of two.
    put_layers(&r, "team/big", "untitled", modelpack, vec![descriptor(raw, &shard, &sha, None)]);
    let untitled = run(&sb, &r, &dead, &["add", &format!("{}:untitled", r.location("team/big"))]).code(6);
    assert!(untitled.stderr.contains("split not whole"), "{}", untitled.stderr);
    assert!(!sb.models().join("catalog.json").exists());

    // Two untitled GGUF layers: one model per reference, no invented shard names.
    let (a, b) = (gguf_bytes("bert", 384, 50_000, 3), gguf_bytes("bert", 384, 50_000, 4));
    let (sa, sb_) = (put_blob(&r, "ai/m", &a), put_blob(&r, "ai/m", &b));
    put_layers(
        &r,
        "ai/m",
        "dup",
        DMR_CONFIG,
        vec![descriptor(DMR_GGUF, &a, &sa, None), descriptor(DMR_GGUF, &b, &sb_, None)],
    );
    let dup = run(&sb, &r, &dead, &["add", &format!("{}:dup", r.location("ai/m"))]).code(9);
    assert!(
        dup.stderr.contains("several GGUF layers that are not one split's shards")
            && dup.stderr.contains("one model per reference")
            && !dup.stderr.contains("-of-"),
        "{}",
        dup.stderr
    );
}

#[test]
fn file_names_follow_the_model_name_and_a_taken_one_asks_for_another_name() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let (sb, dead) = node(&r);
    // A tag ending in a dot, and --name as the stem.
    let (_, _) = dmr_artifact(&r, "x/m", "a.", 5);
    let doc =
        run(&sb, &r, &dead, &["add", &format!("{}:a.", r.location("x/m")), "--name", "m-from-x", "--json"])
            .ok()
            .json();
    assert_eq!(doc["model"]["hf_filename"], "m-from-x-a.gguf");
    // Another model whose layer is titled as the file `m-t.gguf` would be; then `x/m:t`.
    let blob = gguf_bytes("bert", 384, 60_000, 9);
    let sha = put_blob(&r, "y/other", &blob);
    put_layers(&r, "y/other", "t", DMR_CONFIG, vec![descriptor(DMR_GGUF, &blob, &sha, Some("m-t.gguf"))]);
    run(&sb, &r, &dead, &["add", &format!("{}:t", r.location("y/other"))]).ok();
    dmr_artifact(&r, "x/m", "t", 6);
    let taken = run(&sb, &r, &dead, &["add", &format!("{}:t", r.location("x/m"))]).code(8);
    assert!(
        taken.stderr.contains("give another --name") && !taken.stderr.contains("upload a copy"),
        "{}",
        taken.stderr
    );
    run(&sb, &r, &dead, &["add", &format!("{}:t", r.location("x/m")), "--name", "m2"]).ok();
    assert!(run(&sb, &r, &dead, &["info", "m2", "--json"]).ok().json().to_string().contains("m2-t.gguf"));
    let info = run(&sb, &r, &dead, &["info", "m2", "--json"]).ok().json();
    assert!(info.to_string().contains("\"hf_repo\":null"), "{info}");
}

#[test]
fn titles_and_media_types_reach_the_terminal_without_control_characters() {
    let Some(r) = Registry::start(Auth::Open) else { return };
    let text = b"doc".to_vec();
    let sha = put_blob(&r, "ai/docs", &text);
    let mut layers: Vec<serde_json::Value> = (0..25)
        .map(|i| {
            descriptor("text/markdown\u{1b}[31m", &text, &sha, Some(&format!("README{i}\u{202E}dm.exe")))
        })
        .collect();
    // A GGUF title with bidi controls is no file name: the generated one is used.
    let blob = gguf_bytes("bert", 384, 60_000, 9);
    let gguf_sha = put_blob(&r, "ai/bidi", &blob);
    put_layers(&r, "ai/docs", "v1", DMR_CONFIG, std::mem::take(&mut layers));
    put_layers(
        &r,
        "ai/bidi",
        "v1",
        DMR_CONFIG,
        vec![descriptor(DMR_GGUF, &blob, &gguf_sha, Some("evil\u{202E}fuggg.gguf"))],
    );
    let (sb, dead) = node(&r);
    let no = run(&sb, &r, &dead, &["add", &format!("{}:v1", r.location("ai/docs"))]).code(9);
    assert!(
        !no.stderr.contains('\u{202E}')
            && !no.stderr.contains('\u{1b}')
            && no.stderr.contains("… and 5 more"),
        "{}",
        no.stderr
    );
    let doc = run(&sb, &r, &dead, &["add", &format!("{}:v1", r.location("ai/bidi")), "--json"]).ok().json();
    assert_eq!(doc["model"]["hf_filename"], "bidi-v1.gguf");
}

#[test]
fn references_with_credentials_or_queries_never_echo_them() {
    let sb = Sandbox::new();
    for (reference, secret) in [
        ("oci://user:pa/ss@127.0.0.1:45001/ai/embed:Q8_0", "pa/ss"),
        ("oci:/user:pass@127.0.0.1:45001/ai/embed:Q8_0", "pass"),
        ("oci://127.0.0.1:45001/ai/embed:Q8_0?token=SECRET", "SECRET"),
    ] {
        let got = sb.run(&["add", reference]);
        assert_ne!(got.code, 0);
        assert!(
            !got.stderr.contains(secret) && !got.stdout.contains(secret) && !got.stderr.contains("panicked"),
            "{reference}: {}",
            got.stderr
        );
    }
    let upper = format!("oci://127.0.0.1:45001/ai/embed@sha256:{}", "AB".repeat(32));
    assert!(sb.run(&["add", &upper]).stderr.contains("lower-case"));
}
