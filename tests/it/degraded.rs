//! Degraded filesystems (issue 19, items 7 and 9): a Hugging Face cache where symbolic links
//! fail (exFAT, vfat, some SMB mounts; the `LD_PRELOAD` shim makes `symlink` fail in the
//! binary, and `link` too for exFAT), read back by the real huggingface_hub; and file names
//! that FAT, exFAT or Windows refuse, refused at `register` and `add`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::share::{hf_hub_download, python};
use crate::support::hub::{Hub, REPO, REVISION};
use crate::support::{gguf_bytes, register_with, setup, sha256_hex, shim, Run, Sandbox, Setup};

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
}

/// Every path under `dir`, sorted (empty when `dir` does not exist).
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The binary for `s`, with `HF_HUB_CACHE=cache`, under the shim: symbolic links fail, and
/// hard links too when `exfat`.
fn shimmed(s: &Setup, shim: &Path, cache: &Path, exfat: bool) -> Command {
    let mut c = s.cmd();
    c.env("HF_HUB_CACHE", cache);
    shim::apply(&mut c, shim, None, true);
    if exfat {
        shim::fail_hard_links(&mut c);
    }
    c
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join(format!("models--{}", REPO.replace('/', "--")))
}

/// Symbolic links fail: the snapshot entry is a hard link of the blob (the model's own inode),
/// and huggingface_hub, offline, opens it and reads the model's bytes. Where hard links fail
/// too (exFAT), the blob just made is moved into the snapshot, as huggingface_hub does there.
#[cfg(unix)]
#[test]
fn share_without_symbolic_links_falls_back_and_huggingface_hub_reads_it() {
    let Some(shim) = shim::path() else { return };
    let Some(python) = python() else { return };
    let s = setup(300_000);
    s.run(&["download", "tiny", "--quiet"]).ok();
    let model = s.model_path();

    // Symbolic links fail: a hard link.
    let cache = s.sb.tmp.path().join("no-symlinks");
    let r =
        Run::of(shimmed(&s, &shim, &cache, false).args(["share", "tiny", "--json"]).output().unwrap()).ok();
    let doc = r.json();
    assert_eq!(doc[0]["action"], serde_json::json!({ "shared": "hard_link" }), "{doc}");
    assert_eq!(doc[0]["snapshot_entry"], "hard_link", "{doc}");
    assert!(r.stderr.contains("symbolic links fail in"), "a note says why: {}", r.stderr);
    let snapshot = PathBuf::from(doc[0]["snapshot"].as_str().unwrap());
    assert!(fs::symlink_metadata(&snapshot).unwrap().file_type().is_file(), "not a symbolic link");
    assert_eq!(inode(&snapshot), inode(&model), "no second copy of the bytes");
    let got = hf_hub_download(&python, &s, &cache, true).ok();
    let path = got.stdout.lines().next().unwrap();
    assert!(path.ends_with(&format!("snapshots/{REVISION}/{}", s.file)), "{path}");
    assert_eq!(fs::read(path).unwrap(), s.bytes, "huggingface_hub reads the model's bytes");
    let text = Run::of(shimmed(&s, &shim, &cache, false).args(["share", "tiny"]).output().unwrap()).ok();
    assert!(text.stdout.starts_with("present"), "{}", text.stdout);

    // Neither symbolic nor hard links (exFAT): the blob is copied in, then moved into the
    // snapshot; no second copy stays in blobs/.
    let cache = s.sb.tmp.path().join("exfat");
    let r =
        Run::of(shimmed(&s, &shim, &cache, true).args(["share", "tiny", "--json"]).output().unwrap()).ok();
    let doc = r.json();
    let blob_made = &doc[0]["action"]["shared"];
    assert!(blob_made == "copy" || blob_made == "reflink", "no hard link: {doc}");
    assert_eq!(doc[0]["snapshot_entry"], "moved_blob", "{doc}");
    assert!(!repo_dir(&cache).join("blobs").join(sha256_hex(&s.bytes)).exists());
    let got = hf_hub_download(&python, &s, &cache, true).ok();
    assert_eq!(fs::read(got.stdout.lines().next().unwrap()).unwrap(), s.bytes);
    let again =
        Run::of(shimmed(&s, &shim, &cache, true).args(["share", "tiny", "--json"]).output().unwrap()).ok();
    assert_eq!(again.json()[0]["action"], "present", "huggingface_hub's degraded layout is complete");
    assert_eq!(fs::read(&model).unwrap(), s.bytes, "the model file is untouched");
}

/// A snapshot entry that cannot be made at all (a file sits where the revision's folder
/// goes): `share` fails with what to change, and leaves nothing of its own — the blob and
/// folders it made are removed; a blob that was already there stays.
#[cfg(unix)]
#[test]
fn a_share_that_cannot_finish_leaves_nothing_half_done() {
    let Some(shim) = shim::path() else { return };
    let s = setup(200_000);
    s.run(&["download", "tiny", "--quiet"]).ok();
    let cache = s.sb.tmp.path().join("hub-cache");
    let obstacle = repo_dir(&cache).join("snapshots").join(REVISION);
    fs::create_dir_all(obstacle.parent().unwrap()).unwrap();
    fs::write(&obstacle, b"not a folder").unwrap();
    let before = tree(&cache);
    let r = Run::of(shimmed(&s, &shim, &cache, false).args(["share", "tiny"]).output().unwrap()).code(7);
    for want in
        ["a symbolic link (", "a hard link (", "a copy (", "nothing of this share was left", "HF_HUB_CACHE"]
    {
        assert!(r.stderr.contains(want), "{want:?} in {}", r.stderr);
    }
    assert!(!r.stderr.contains("STRATA_MODELS_DIR"), "the models directory is not the problem: {}", r.stderr);
    assert_eq!(tree(&cache), before, "no blob, no folder left behind");

    // A blob already there is not this call's to remove.
    let blob = repo_dir(&cache).join("blobs").join(sha256_hex(&s.bytes));
    fs::create_dir_all(blob.parent().unwrap()).unwrap();
    fs::write(&blob, &s.bytes).unwrap();
    let before = tree(&cache);
    Run::of(shimmed(&s, &shim, &cache, false).args(["share", "tiny"]).output().unwrap()).code(7);
    assert_eq!(tree(&cache), before);
    assert_eq!(fs::read(&blob).unwrap(), s.bytes);
    assert_eq!(fs::read(&obstacle).unwrap(), b"not a folder");
}

/// `STRATA_SHARE_HF_CACHE=1` shares after each download: without symbolic links, as a hard
/// link huggingface_hub reads; where the cache cannot be written at all, the download still
/// succeeds and a warning says so (on stderr, under `--json` too) — never silence.
#[cfg(unix)]
#[test]
fn sharing_after_a_download_falls_back_or_warns() {
    let Some(shim) = shim::path() else { return };
    let s = setup(200_000);
    let auto = |cache: &Path, args: &[&str]| {
        let mut c = s.cmd();
        c.env("HF_HUB_CACHE", cache).env("STRATA_SHARE_HF_CACHE", "1").env("STRATA_REUSE_CACHES", "0");
        shim::apply(&mut c, &shim, None, true);
        Run::of(c.args(args).output().unwrap())
    };
    let cache = s.sb.tmp.path().join("auto-cache");
    let r = auto(&cache, &["download", "tiny"]).ok();
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let snapshot = repo_dir(&cache).join("snapshots").join(REVISION).join(&s.file);
    assert_eq!(inode(&snapshot), inode(&s.model_path()), "a hard link, not a symbolic link");
    if let Some(python) = python() {
        let got = hf_hub_download(&python, &s, &cache, true).ok();
        assert_eq!(fs::read(got.stdout.lines().next().unwrap()).unwrap(), s.bytes);
    }

    // A cache that cannot be made: a file where its folder would be.
    s.run(&["remove", "tiny"]).ok();
    let blocked = s.sb.tmp.path().join("blocked");
    fs::write(&blocked, b"a file").unwrap();
    let r = auto(&blocked, &["download", "tiny"]).ok();
    assert_eq!(r.stdout.trim(), s.model_path().to_str().unwrap(), "the download succeeded");
    assert!(
        r.stderr.contains("warning: tiny was downloaded, but not shared into the Hugging Face cache")
            && r.stderr.contains("HF_HUB_CACHE"),
        "{}",
        r.stderr
    );
    s.run(&["remove", "tiny"]).ok();
    let r = auto(&blocked, &["download", "tiny", "--json"]).ok();
    assert_eq!(r.json()[0]["ok"], true);
    assert!(r.stderr.contains("not shared into the Hugging Face cache"), "{}", r.stderr);
    assert_eq!(fs::read(&blocked).unwrap(), b"a file");
}

/// Every file name FAT, exFAT or Windows refuse is refused at `register`, naming what is
/// wrong, and the catalog is left as it was; names those filesystems take are accepted.
#[test]
fn register_refuses_file_names_fat_exfat_or_windows_refuse() {
    let sb = Sandbox::new();
    let bytes = gguf_bytes("bert", 8, 512, 4);
    register_with(&sb, "first", "first-Q8_0.gguf", &bytes, &[]).ok();
    let catalog = sb.models().join("catalog.json");
    let before = fs::read(&catalog).unwrap();
    for (file, says) in [
        ("a*b.gguf", "contains `*`"),
        ("a?b.gguf", "contains `?`"),
        ("a\"b.gguf", "contains `\"`"),
        ("a<b.gguf", "contains `<`"),
        ("a>b.gguf", "contains `>`"),
        ("a|b.gguf", "contains `|`"),
        ("a:b.gguf", "contains `:`"),
        ("a\u{1}b.gguf", "U+0001"),
        ("model.gguf ", "ends with a space"),
        ("model.gguf.", "ends with a dot"),
        ("CON.gguf", "`CON`"),
        ("aux.Q8_0.gguf", "`aux`"),
        ("Com7.gguf", "`Com7`"),
        ("lpt1.gguf", "`lpt1`"),
    ] {
        let r = register_with(&sb, "second", file, &bytes, &[]).code(2);
        assert!(r.stderr.contains(says), "{file:?}: {}", r.stderr);
        assert!(r.stderr.contains("error: --file: "), "the flag is named: {}", r.stderr);
        assert_eq!(fs::read(&catalog).unwrap(), before, "{file:?}: the catalog is unchanged");
    }
    register_with(&sb, "second", "console com10 été-Q8_0.gguf", &bytes, &[]).ok();
}

/// `add` refuses a Hub file whose name those filesystems refuse, before reading its header
/// or writing anything.
#[test]
fn add_refuses_a_hub_file_name_fat_exfat_or_windows_refuse() {
    let hub = Hub::start();
    hub.add_file("tiny|v2-Q8_0.gguf", gguf_bytes("bert", 8, 4096, 5));
    let sb = Sandbox::new();
    let r = Run::of(
        sb.cmd()
            .env("HF_ENDPOINT", hub.endpoint())
            .env("SSL_CERT_FILE", &hub.ca_file)
            .args(["add", REPO, "--name", "tiny"])
            .output()
            .unwrap(),
    )
    .code(9);
    assert!(r.stderr.contains("contains `|`, which FAT, exFAT and Windows refuse"), "{}", r.stderr);
    assert!(hub.cdn_gets().is_empty(), "no byte of the file was read: {:#?}", hub.cdn_gets());
    assert!(!sb.models().join("catalog.json").exists());
}
