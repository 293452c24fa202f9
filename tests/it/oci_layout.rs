//! OCI image layouts (`oci-layout:DIR`) as a source and a `mirror push` target: a layout
//! written by push serves a node with the Hub unreachable, an existing layout is extended and
//! never rewritten, bad layouts are refused naming the location (the next source serving), and
//! skopeo (Debian's, a real client of the format) reads what strata-model writes and writes
//! what strata-model reads, through the CNCF registry both ways.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::oci::{Auth, Registry};
use crate::support::{gguf_bytes, register, registered_sandbox, sha256_hex, test_env, Run, Sandbox};

/// A sandbox with `tiny` registered and downloaded, and its bytes.
fn seeded(size: usize, seed: u8) -> (Sandbox, Vec<u8>, String) {
    let bytes = gguf_bytes("bert", 384, size, seed);
    let (sb, file, dead) = registered_sandbox(&bytes);
    fs::create_dir_all(sb.models()).unwrap();
    fs::write(sb.models().join(&file), &bytes).unwrap();
    (sb, bytes, dead)
}

fn layout_arg(dir: &Path) -> String {
    format!("oci-layout:{}", dir.display())
}

/// `download tiny` on a node whose mirrors are `mirrors`, the Hub at `dead` (nobody answers).
fn pull(bytes: &[u8], mirrors: &str, env: &[(&str, &Path)]) -> (Sandbox, Run) {
    let (node, _, dead) = registered_sandbox(bytes);
    let mut c = node.cmd();
    c.env("HF_ENDPOINT", &dead).env("STRATA_MODELS_MIRROR", mirrors);
    for (k, v) in env {
        c.env(k, v);
    }
    let run = Run::of(c.args(["download", "tiny"]).output().unwrap());
    (node, run)
}

fn index(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
}

/// The tags of a layout's `index.json` and the manifest digests they name.
fn tags(dir: &Path) -> Vec<(String, String)> {
    index(dir)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let tag = d["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or("");
            (tag.to_string(), d["digest"].as_str().unwrap().to_string())
        })
        .collect()
}

fn blob(dir: &Path, sha: &str) -> PathBuf {
    dir.join("blobs/sha256").join(sha)
}

#[test]
fn a_pushed_layout_serves_a_node_and_a_second_push_extends_it() {
    let (sb, bytes, _) = seeded(700_000, 41);
    let other = gguf_bytes("bert", 384, 300_000, 42);
    let other_file = register(&sb, "tiny2", &other);
    fs::write(sb.models().join(&other_file), &other).unwrap();
    let dir = sb.tmp.path().join("usb/models");
    let sha = sha256_hex(&bytes);

    let dry = sb.run(&["mirror", "push", &layout_arg(&dir), "tiny", "--dry-run", "--json"]).ok().json();
    assert_eq!(dry[0]["action"], "would_copy");
    assert!(!dir.exists(), "a dry run writes nothing");
    let doc = sb.run(&["mirror", "push", &layout_arg(&dir), "tiny", "--json"]).ok().json();
    assert_eq!(doc[0]["action"], "copied");
    assert_eq!(doc[0]["target"], format!("oci-layout:{}:tiny", dir.display()));

    // The layout as the image spec has it.
    let marker: Value = serde_json::from_slice(&fs::read(dir.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(marker["imageLayoutVersion"], "1.0.0");
    assert_eq!(fs::read(blob(&dir, &sha)).unwrap(), bytes);
    let first = tags(&dir);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "tiny");
    let manifest_sha = first[0].1.strip_prefix("sha256:").unwrap();
    let manifest: Value = serde_json::from_slice(&fs::read(blob(&dir, manifest_sha)).unwrap()).unwrap();
    assert_eq!(sha256_hex(&fs::read(blob(&dir, manifest_sha)).unwrap()), manifest_sha);
    assert_eq!(manifest["artifactType"], "application/vnd.cncf.model.manifest.v1+json");
    assert_eq!(manifest["layers"][0]["digest"], format!("sha256:{sha}"));
    let config_sha = manifest["config"]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
    assert!(blob(&dir, config_sha).is_file());
    assert_eq!(index(&dir)["manifests"][0]["mediaType"], "application/vnd.oci.image.manifest.v1+json");

    // A node reads it with the Hub unreachable.
    let (node, got) = pull(&bytes, &layout_arg(&dir), &[]);
    let got = got.ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
    assert!(got.stdout.trim().starts_with(node.models().to_str().unwrap()));

    // Extended, never rewritten: another tool's tag, and the first blob's inode, stay.
    let mut idx = index(&dir);
    idx["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2,
        "digest": format!("sha256:{}", "0".repeat(64)),
        "annotations": {"org.opencontainers.image.ref.name": "someone-elses"}
    }));
    fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = inode(&blob(&dir, &sha));
    let again = sb.run(&["mirror", "push", &layout_arg(&dir), "tiny", "tiny2", "--json"]).ok().json();
    assert_eq!(again[0]["action"], "present");
    assert_eq!(again[1]["action"], "copied");
    assert_eq!(inode(&blob(&dir, &sha)), before, "a blob already there is not written again");
    let names: Vec<String> = tags(&dir).into_iter().map(|(t, _)| t).collect();
    assert_eq!(names, ["tiny", "someone-elses", "tiny2"]);
    assert_eq!(fs::read(blob(&dir, &sha256_hex(&other))).unwrap(), other);

    // `sources` says what it is.
    let mut c = sb.cmd();
    c.env("STRATA_MODELS_MIRROR", layout_arg(&dir)).env("STRATA_OFFLINE", "1");
    let shown = Run::of(c.args(["sources"]).output().unwrap()).ok();
    assert!(shown.stdout.contains("OCI image layout") && shown.stdout.contains("3 tags"), "{}", shown.stdout);
}

#[test]
fn bad_layouts_are_named_nothing_unverified_is_kept_and_the_next_source_serves() {
    let (sb, bytes, _) = seeded(500_000, 43);
    let sha = sha256_hex(&bytes);
    let dir = sb.tmp.path().join("layout");
    sb.run(&["mirror", "push", &layout_arg(&dir), "tiny"]).ok();
    let good = sb.tmp.path().join("plain");
    fs::create_dir_all(&good).unwrap();
    fs::write(good.join("tiny-Q8_0.gguf"), &bytes).unwrap();
    let both = format!("{},{}", layout_arg(&dir), good.display());

    // A blob with the wrong bytes (same size): refused, the plain mirror serves.
    let mut evil = bytes.clone();
    evil[250_000] ^= 0x55;
    fs::write(blob(&dir, &sha), &evil).unwrap();
    let (node, got) = pull(&bytes, &both, &[]);
    let got = got.ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
    assert!(
        got.stderr.contains("OCI image layout") && got.stderr.to_lowercase().contains("sha256"),
        "{}",
        got.stderr
    );
    drop(node);
    // Alone, it fails, naming the layout, and keeps nothing unverified.
    let (node, got) = pull(&bytes, &layout_arg(&dir), &[]);
    assert_ne!(got.code, 0);
    assert!(got.stderr.contains(&dir.display().to_string()), "{}", got.stderr);
    assert!(!node.models().join("tiny-Q8_0.gguf").exists());

    // Truncated: the blob's path and both sizes.
    fs::write(blob(&dir, &sha), &bytes[..100_000]).unwrap();
    let (_node, got) = pull(&bytes, &layout_arg(&dir), &[]);
    assert_ne!(got.code, 0);
    assert!(
        got.stderr.contains(&blob(&dir, &sha).display().to_string()) && got.stderr.contains("100000"),
        "{}",
        got.stderr
    );
    let (_node, got) = pull(&bytes, &both, &[]);
    got.ok();

    // Missing: the next source, quietly.
    fs::remove_file(blob(&dir, &sha)).unwrap();
    let (_node, got) = pull(&bytes, &both, &[]);
    assert_eq!(fs::read(got.ok().stdout.trim()).unwrap(), bytes);
    let (_node, got) = pull(&bytes, &layout_arg(&dir), &[]);
    assert_ne!(got.code, 0);
    assert!(got.stderr.contains(&format!("sha256:{sha}")), "{}", got.stderr);

    // Not a layout at all: said, as a source and as a push target (which writes nothing).
    let (_node, got) = pull(&bytes, &layout_arg(&good), &[]);
    assert_ne!(got.code, 0);
    assert!(got.stderr.contains("not an OCI image layout"), "{}", got.stderr);
    let refused = sb.run(&["mirror", "push", &layout_arg(&good), "tiny"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not an OCI image layout"), "{}", refused.stderr);
    assert!(!good.join("oci-layout").exists() && !good.join("blobs").exists());
    // An index.json that is not an image index is left alone.
    fs::write(dir.join("index.json"), b"[1,2").unwrap();
    let refused = sb.run(&["mirror", "push", &layout_arg(&dir), "tiny"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("index.json"), "{}", refused.stderr);
    assert_eq!(fs::read(dir.join("index.json")).unwrap(), b"[1,2");
}

/// skopeo, with the registry's CA in a certificate directory as containers-certs.d wants it.
fn skopeo(r: &Registry, args: &[&str]) -> Run {
    let bin = test_env("STRATA_TEST_SKOPEO", "the skopeo round trips").expect("skopeo");
    let certs = r.dir.path().join("certs.d");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(&r.ca_file, certs.join("ca.crt")).unwrap();
    let certs = certs.to_str().unwrap();
    let mut all = vec!["--insecure-policy"];
    let (verb, rest) = args.split_first().unwrap();
    all.push(verb);
    if *verb == "copy" {
        all.extend(["--src-cert-dir", certs, "--dest-cert-dir", certs]);
    } else {
        all.extend(["--cert-dir", certs]);
    }
    all.extend(rest);
    Run::of(Command::new(bin).args(&all).output().unwrap())
}

#[test]
fn skopeo_reads_what_strata_model_writes_and_writes_what_it_reads() {
    if test_env("STRATA_TEST_SKOPEO", "the skopeo round trips").is_none() {
        return;
    }
    let Some(r) = Registry::start(Auth::Open) else { return };
    let (sb, bytes, _) = seeded(2_000_000, 44);
    let sha = sha256_hex(&bytes);
    let tls = [("SSL_CERT_FILE", r.ca_file.as_path())];

    // Registry → skopeo → layout → strata-model.
    let mut c = sb.cmd();
    c.env("SSL_CERT_FILE", &r.ca_file);
    Run::of(c.args(["mirror", "push", &r.location("fleet/models"), "tiny"]).output().unwrap()).ok();
    let from_registry = sb.tmp.path().join("from-registry");
    let src = format!("docker://{}/fleet/models:tiny", r.addr);
    skopeo(&r, &["copy", &src, &format!("oci:{}:tiny", from_registry.display())]).ok();
    assert_eq!(fs::read(blob(&from_registry, &sha)).unwrap(), bytes, "skopeo wrote the layer as a blob");
    let (_node, got) = pull(&bytes, &layout_arg(&from_registry), &[]);
    assert_eq!(fs::read(got.ok().stdout.trim()).unwrap(), bytes);

    // strata-model → layout → skopeo → registry → strata-model, the Hub unreachable.
    let written = sb.tmp.path().join("written");
    sb.run(&["mirror", "push", &layout_arg(&written), "tiny"]).ok();
    let raw = skopeo(&r, &["inspect", "--raw", &format!("oci:{}:tiny", written.display())]).ok();
    let manifest: Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], format!("sha256:{sha}"));
    let dest = format!("docker://{}/site/models:tiny", r.addr);
    skopeo(&r, &["copy", &format!("oci:{}:tiny", written.display()), &dest]).ok();
    let (_node, got) = pull(&bytes, &r.location("site/models"), &tls);
    assert_eq!(fs::read(got.ok().stdout.trim()).unwrap(), bytes);
    // The registry holds the manifest strata-model wrote, byte for byte.
    let again = skopeo(&r, &["inspect", "--raw", &dest]).ok();
    assert_eq!(again.stdout.trim(), raw.stdout.trim());
}

/// What a hostile or broken layout must not do: a lock file that is a link aims nowhere, a
/// FIFO for a blob hangs nothing, an index that is not an object is left alone, pushes racing
/// into a new directory all land, and a path that is not UTF-8 keeps the blob in the layout.
#[test]
fn hostile_layouts_are_refused_without_harm() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let (sb, bytes, _) = seeded(300_000, 45);
    let sha = sha256_hex(&bytes);
    let dir = sb.tmp.path().join("l");
    sb.run(&["mirror", "push", &layout_arg(&dir), "tiny"]).ok();

    // index.json.lock as a link to a file of the user's: never written through.
    let victim = sb.tmp.path().join("victim.txt");
    fs::write(&victim, "precious").unwrap();
    fs::remove_file(dir.join("index.json.lock")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("index.json.lock")).unwrap();
    fs::remove_file(blob(&dir, &sha)).unwrap();
    let refused = sb.run(&["mirror", "push", &layout_arg(&dir), "tiny"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("symbolic link"), "{}", refused.stderr);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    fs::remove_file(dir.join("index.json.lock")).unwrap();

    // A FIFO where the blob should be: an error, at once, and the next source serves.
    let status = Command::new("mkfifo").arg(blob(&dir, &sha)).status().unwrap();
    assert!(status.success());
    let plain = sb.tmp.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    fs::write(plain.join("tiny-Q8_0.gguf"), &bytes).unwrap();
    let started = std::time::Instant::now();
    let (_node, got) = pull(&bytes, &format!("{},{}", layout_arg(&dir), plain.display()), &[]);
    assert_eq!(fs::read(got.ok().stdout.trim()).unwrap(), bytes);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    fs::remove_file(blob(&dir, &sha)).unwrap();

    // An index.json that is JSON but not an index: refused, left as it is.
    for bad in ["[]", "null", "\"x\""] {
        fs::write(dir.join("index.json"), bad).unwrap();
        let r = sb.run(&["mirror", "push", &layout_arg(&dir), "tiny"]);
        assert_eq!(r.code, 8, "{bad}: {}", r.stderr);
        assert_eq!(fs::read_to_string(dir.join("index.json")).unwrap(), bad);
    }

    // Pushes racing into new directories: every one lands, every tag is there.
    for i in 0..6 {
        let fresh = sb.tmp.path().join(format!("race{i}"));
        let spawn = || {
            let mut c = sb.cmd();
            c.args(["mirror", "push", &layout_arg(&fresh), "tiny"]).stdout(std::process::Stdio::null());
            c.stderr(std::process::Stdio::piped()).spawn().unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(tags(&fresh).len(), 1);
    }

    // A layout path that is not UTF-8: the blob lands in it, and it serves a node.
    let raw = [sb.tmp.path().as_os_str().as_bytes(), b"/nu\xff"].concat();
    let odd = PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
    let arg = std::ffi::OsString::from_vec([b"oci-layout:".as_slice(), &raw].concat());
    let mut c = sb.cmd();
    Run::of(c.arg("mirror").arg("push").arg(&arg).arg("tiny").output().unwrap()).ok();
    assert_eq!(fs::read(blob(&odd, &sha)).unwrap(), bytes);
    let (node, _, dead) = registered_sandbox(&bytes);
    let mut c = node.cmd();
    c.env("HF_ENDPOINT", &dead).env("STRATA_MODELS_MIRROR", &arg);
    let got = Run::of(c.args(["download", "tiny"]).output().unwrap()).ok();
    assert_eq!(fs::read(got.stdout.trim()).unwrap(), bytes);
}

/// Where `flock` fails or does nothing, the layout's lock is a claim file: a push into a new
/// directory (two at once, too) still makes it a layout and lands its tag.
#[test]
fn a_new_layout_is_made_where_locks_are_claim_files() {
    use crate::support::shim::{self, Locks};
    let Some(fsshim) = shim::path() else { return };
    let (sb, bytes, _) = seeded(200_000, 46);
    for locks in [Locks::Fail("enolck"), Locks::NoOp] {
        let fresh = sb.tmp.path().join(format!("claims-{locks:?}").replace(['(', ')', '"'], ""));
        let spawn = || {
            let mut c = sb.cmd();
            shim::apply(&mut c, &fsshim, Some(locks), false);
            c.args(["mirror", "push", &layout_arg(&fresh), "tiny"]).stdout(std::process::Stdio::null());
            c.stderr(std::process::Stdio::piped()).spawn().unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{locks:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(tags(&fresh).len(), 1, "{locks:?}");
        assert_eq!(fs::read(blob(&fresh, &sha256_hex(&bytes))).unwrap(), bytes);
    }
}
