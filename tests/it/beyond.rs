//! Beyond the peers: reuse of other tools' caches, prune to a budget with pins and locks,
//! user aliases, and the maintainers' catalog check against the Hub look-alike.

use std::fs;
use std::time::{Duration, SystemTime};

use crate::support::hub::{Faults, REPO, REVISION};
use crate::support::setup;
use crate::support::{gguf_bytes, sha256_hex, Run};

#[cfg(unix)]
fn inode(p: &std::path::Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap())
}

#[cfg(unix)]
#[test]
fn a_model_in_the_hugging_face_cache_is_linked_in_with_no_network() {
    let s = setup(2_000_000);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let sha = sha256_hex(&s.bytes);
    let cache = s.sb.tmp.path().join("hf-cache");
    let (org, name) = REPO.split_once('/').unwrap();
    let repo = cache.join(format!("models--{org}--{name}"));
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::create_dir_all(repo.join("snapshots").join(REVISION)).unwrap();
    let blob = repo.join("blobs").join(&sha);
    fs::write(&blob, &s.bytes).unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{sha}"),
        repo.join("snapshots").join(REVISION).join(&s.file),
    )
    .unwrap();
    let blob_mode = fs::metadata(&blob).unwrap().permissions();

    let r = Run::of(
        s.cmd()
            .env("HF_ENDPOINT", format!("https://{dead}"))
            .env("HF_HUB_CACHE", &cache)
            .args(["download", "tiny", "--quiet"])
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(r.stdout.trim_end(), s.model_path().to_str().unwrap());
    assert_eq!(inode(&s.model_path()), inode(&blob), "no second copy: the same inode");
    assert!(fs::read(&blob).unwrap() == s.bytes && fs::metadata(&blob).unwrap().permissions() == blob_mode);
    let info = s.run(&["info", "tiny"]).ok().stdout;
    assert!(info.contains("Hugging Face cache") && info.contains("(hard link)"), "{info}");
    let list = s.run(&["list"]).ok().stdout;
    assert!(
        list.lines().any(|l| l.contains("tiny") && l.contains("downloaded (from Hugging Face cache)")),
        "{list}"
    );
    let json = s.run(&["list", "--json"]).ok().json();
    let row = json["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap().clone();
    assert_eq!(row["reused_from"], "huggingface", "the tool is a typed field: {row}");
    assert!(row["installed_from"].as_str().unwrap().contains(&sha));
    assert!(s.hub.seen().is_empty());

    // Removing our copy leaves the other tool's file alone.
    s.run(&["remove", "tiny"]).ok();
    assert!(fs::read(&blob).unwrap() == s.bytes);

    // --no-reuse goes to the network instead.
    Run::of(s.cmd().env("HF_HUB_CACHE", &cache).args(["download", "tiny", "--no-reuse"]).output().unwrap())
        .ok();
    assert_ne!(inode(&s.model_path()), inode(&blob));
    assert_eq!(s.hub.cdn_gets().len(), 1);
}

#[cfg(unix)]
#[test]
fn a_wrong_blob_in_a_cache_is_ignored_and_lm_studio_files_are_found() {
    let s = setup(1_000_000);
    let sha = sha256_hex(&s.bytes);
    let cache = s.sb.tmp.path().join("hf-cache");
    let blobs = cache.join("models--test-org--test-repo/blobs");
    fs::create_dir_all(&blobs).unwrap();
    let mut wrong = s.bytes.clone();
    wrong[500_000] ^= 1;
    fs::write(blobs.join(&sha), &wrong).unwrap();
    Run::of(s.cmd().env("HF_HUB_CACHE", &cache).args(["download", "tiny", "--quiet"]).output().unwrap()).ok();
    assert!(fs::read(s.model_path()).unwrap() == s.bytes, "the network served the right bytes");
    assert!(fs::read(blobs.join(&sha)).unwrap() == wrong, "the other tool's file is untouched");
    assert_eq!(s.hub.cdn_gets().len(), 1);

    // LM Studio's folder (publisher/repo/file) under the home directory.
    s.run(&["remove", "tiny"]).ok();
    s.hub.clear_seen();
    let lms = s.sb.tmp.path().join("home/.lmstudio/models/someone/tiny-GGUF");
    fs::create_dir_all(&lms).unwrap();
    fs::write(lms.join(&s.file), &s.bytes).unwrap();
    s.run(&["download", "tiny", "--quiet"]).ok();
    assert_eq!(inode(&s.model_path()), inode(&lms.join(&s.file)));
    assert!(s.hub.seen().is_empty());
}

fn register_and_place(s: &crate::support::Setup, name: &str, seed: u8) -> std::path::PathBuf {
    let bytes = gguf_bytes("bert", 8, 1_000_000, seed);
    let file = crate::support::register(&s.sb, name, &bytes);
    let mirror = s.sb.tmp.path().join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    fs::write(mirror.join(&file), &bytes).unwrap();
    Run::of(
        s.cmd()
            .env("STRATA_MODELS_MIRROR", &mirror)
            .env("STRATA_OFFLINE", "1")
            .args(["download", name])
            .output()
            .unwrap(),
    )
    .ok();
    s.sb.models().join(file)
}

fn set_used(s: &crate::support::Setup, file: &std::path::Path, ago: Duration) {
    let used =
        s.sb.models().join(".strata").join(format!("{}.used", file.file_name().unwrap().to_str().unwrap()));
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(used).unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

#[test]
fn prune_removes_the_least_recently_used_and_keeps_pinned_and_locked_models() {
    let s = setup(1_000_000);
    let oldest = register_and_place(&s, "m-oldest", 1);
    let pinned = register_and_place(&s, "m-pinned", 2);
    let locked = register_and_place(&s, "m-locked", 3);
    let old = register_and_place(&s, "m-old", 4);
    let recent = register_and_place(&s, "m-recent", 5);
    set_used(&s, &oldest, Duration::from_secs(50_000));
    set_used(&s, &pinned, Duration::from_secs(40_000));
    set_used(&s, &locked, Duration::from_secs(30_000));
    set_used(&s, &old, Duration::from_secs(20_000));
    set_used(&s, &recent, Duration::from_secs(10));
    s.run(&["pin", "m-pinned"]).ok();
    // Another process's lock, held here.
    let lock = fs::File::create(s.sb.models().join(".strata").join("m-locked-Q8_0.gguf.lock")).unwrap();
    lock.lock().unwrap();
    // A stale partial download.
    let stale = s.sb.models().join(".strata").join(format!("{}.part", s.file));
    fs::write(&stale, b"GGUF stale").unwrap();
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(8 * 86400))
        .unwrap();

    let dry = s.run(&["prune", "--max-size", "3.5MB", "--dry-run", "--json"]).ok().json();
    let names = |v: &serde_json::Value| {
        v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(&dry["removed"]), ["m-oldest", "m-old"]);
    assert!(oldest.exists() && old.exists() && stale.exists(), "a dry run deletes nothing");

    let r = s.run(&["prune", "--max-size", "3.5MB"]).ok().stdout;
    assert!(
        r.contains("removed m-oldest") && r.contains("removed m-old ") && r.contains("stale partial of tiny"),
        "{r}"
    );
    assert!(r.contains("kept m-pinned (pinned)") && r.contains("kept m-locked (in use"), "{r}");
    assert!(!oldest.exists() && !old.exists() && !stale.exists());
    assert!(pinned.exists() && locked.exists() && recent.exists());
    drop(lock);
    s.run(&["unpin", "m-pinned"]).ok();
    let r = s.run(&["prune", "--max-size", "1MB", "--json"]).ok().json();
    assert_eq!(names(&r["removed"]), ["m-pinned", "m-locked"]);
    assert!(recent.exists(), "the most recently used stays");
}

/// A `.gguf` file no entry names — copied in by hand, or left by `unregister` — is shown by
/// `list`, counted by `prune` and never deleted by it; `unregister --remove-file` takes the
/// file too. `list` marks custom, pinned and aliased models, filters and totals.
#[test]
fn untracked_files_are_listed_and_counted_and_list_marks_what_is_yours() {
    let s = setup(1_000_000);
    let kept = register_and_place(&s, "m-kept", 1);
    let gone = register_and_place(&s, "m-gone", 2);
    let stray = s.sb.models().join("hand-copied.gguf");
    fs::write(&stray, vec![7u8; 2_000_000]).unwrap();
    s.run(&["pin", "m-kept"]).ok();
    s.run(&["alias", "set", "mine", "m-kept"]).ok();

    let list = s.run(&["list"]).ok().stdout;
    let row =
        |name: &str| list.lines().find(|l| l.trim_start().starts_with(&format!("{name} "))).unwrap_or("");
    assert!(row("m-kept").ends_with("custom, pinned, alias mine"), "{list}");
    assert!(row("m-gone").ends_with("custom"), "{list}");
    assert!(row("minilm").ends_with("not downloaded"), "no note, no trailing space: {list}");
    assert!(list.contains("Untracked files") && list.contains("hand-copied.gguf  2.00 MB"), "{list}");
    assert!(list.contains("Total: 2 of 12 models downloaded, 2.00 MB; 2.00 MB untracked"), "{list}");
    let only = s.run(&["list", "--downloaded"]).ok().stdout;
    assert!(only.contains("m-kept") && only.contains("m-gone") && !only.contains("minilm"), "{only}");

    let doc = s.run(&["list", "--downloaded", "--json"]).ok().json();
    assert_eq!(doc["models"].as_array().unwrap().len(), 2);
    assert_eq!(doc["untracked"][0]["file"], "hand-copied.gguf");
    assert_eq!(doc["untracked"][0]["size_bytes"], 2_000_000);
    assert_eq!(
        (doc["catalog_models"].as_u64(), doc["downloaded_bytes"].as_u64()),
        (Some(12), Some(2_000_000))
    );

    // Unregistered without --remove-file: the file stays, untracked, and prune counts it.
    let r = s.run(&["unregister", "m-gone"]).ok();
    assert!(r.stderr.contains("its file stays, untracked"), "a notice, on stderr: {}", r.stderr);
    assert!(gone.exists());
    let doc = s.run(&["prune", "--max-size", "0", "--json"]).ok().json();
    let untracked: Vec<&str> =
        doc["untracked"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert_eq!(untracked, ["hand-copied.gguf", "m-gone-Q8_0.gguf"]);
    assert_eq!(doc["bytes_before"], 4_000_000, "the pinned model and both untracked files");
    assert_eq!(doc["bytes_after"], 4_000_000, "nothing could go");
    assert!(stray.exists() && gone.exists() && kept.exists(), "prune never deletes an untracked file");

    // --remove-file takes the file, and refuses (changing nothing) while it is being downloaded.
    let lock = fs::File::create(s.sb.models().join(".strata").join("m-kept-Q8_0.gguf.lock")).unwrap();
    lock.lock().unwrap();
    s.run(&["alias", "remove", "mine"]).ok();
    let r = s.run(&["unregister", "m-kept", "--remove-file"]).code(10);
    assert!(r.stderr.contains("another process holds it"), "{}", r.stderr);
    assert!(kept.exists());
    s.run(&["path", "m-kept"]).ok();
    drop(lock);
    let doc = s.run(&["unregister", "m-kept", "--remove-file", "--json"]).ok().json();
    assert_eq!((doc["file_removed"].as_bool(), doc["file_left"].is_null()), (Some(true), true));
    assert!(!kept.exists());
}

#[test]
fn user_aliases_resolve_and_are_checked() {
    let s = setup(200_000);
    s.run(&["alias", "set", "default-embed", "tiny"]).ok();
    let path = s.registry(s.config()).ensure("default-embed").unwrap();
    assert_eq!(path, s.model_path());
    let r = s.run(&["path", "DEFAULT-EMBED"]).ok();
    assert_eq!(r.stdout.trim_end(), s.model_path().to_str().unwrap());
    let info = s.run(&["info", "tiny", "--json"]).ok().json();
    assert!(info["aliases"].as_array().unwrap().iter().any(|a| a == "default-embed"));
    s.run(&["alias", "set", "small", "minilm:f16"]).ok();
    assert_eq!(s.run(&["info", "small", "--json"]).ok().json()["name"], "minilm:f16");
    let r = s.run(&["alias", "set", "minilm", "tiny"]).code(2);
    assert!(r.stderr.contains("already a model name"), "{}", r.stderr);
    let r = s.run(&["alias", "set", "x", "nonexistent"]).code(2);
    assert!(r.stderr.contains("unknown model"), "{}", r.stderr);
    let r = s.run(&["unregister", "tiny"]).code(8);
    assert!(r.stderr.contains("alias `default-embed` points to it"), "{}", r.stderr);
    assert_eq!(s.run(&["alias", "list", "--json"]).ok().json()["default-embed"], "tiny");
    s.run(&["alias", "remove", "default-embed"]).ok();
    s.run(&["path", "default-embed"]).code(3);
}

#[test]
fn catalog_check_flags_a_size_or_hash_that_differs() {
    let s = setup(300_000);
    // `drift`: catalogued with a size and hash that the Hub no longer has.
    let drift = gguf_bytes("bert", 8, 400_000, 9);
    s.hub.add_file("drift-Q8_0.gguf", drift.clone());
    s.run(&[
        "register",
        "drift",
        "--repo",
        REPO,
        "--file",
        "drift-Q8_0.gguf",
        "--revision",
        REVISION,
        "--sha256",
        &"c".repeat(64),
        "--size",
        "399999",
    ])
    .ok();
    let endpoint = s.hub.endpoint();
    let r = Run::of(
        s.cmd()
            .args(["catalog", "check", "--endpoint", &endpoint, "tiny", "drift", "--json"])
            .output()
            .unwrap(),
    )
    .code(6);
    let rows = r.json();
    assert_eq!(rows[0]["verdict"], "match");
    assert_eq!(rows[1]["verdict"], "mismatch");
    assert_eq!(rows[1]["hub_size_bytes"], 400_000);
    assert_eq!(rows[1]["hub_sha256"], sha256_hex(&drift));
    let text = Run::of(
        s.cmd().args(["catalog", "check", "--endpoint", &endpoint, "tiny", "drift"]).output().unwrap(),
    );
    assert!(
        text.stdout.contains("MISMATCH") && text.stdout.contains("size and SHA-256 differ"),
        "{}",
        text.stdout
    );
    assert!(s.hub.cdn_gets().is_empty(), "HEAD on the resolve URL only: no body fetched");
    let r = Run::of(s.cmd().args(["catalog", "check", "--endpoint", &endpoint, "minilm"]).output().unwrap())
        .code(5);
    assert!(r.stdout.contains("missing"), "{}", r.stdout);
}

/// The Hub answers a renamed repository with a relative redirect (to `/api/resolve-cache/…`):
/// `catalog check` follows it with `Url::join`, takes the size from the Hub's `X-Linked-Size`
/// (never a redirect's `Content-Length`), and stops before the CDN; a gated repository says so.
#[test]
fn catalog_check_follows_the_hubs_relative_redirects() {
    let s = setup(300_000);
    s.hub.set_faults(Faults { relative_redirect: true, ..Default::default() });
    let endpoint = s.hub.endpoint();
    let r = Run::of(
        s.cmd().args(["catalog", "check", "--endpoint", &endpoint, "tiny", "--json"]).output().unwrap(),
    )
    .ok();
    let row = &r.json()[0];
    assert_eq!(row["verdict"], "match", "{row}");
    assert_eq!(row["hub_size_bytes"], 300_000);
    let hub: Vec<_> = s.hub.seen().into_iter().filter(|r| r.host == "hub").collect();
    assert_eq!(hub.len(), 2, "the resolve URL, then the resolve cache: {hub:#?}");
    assert!(hub.iter().all(|r| r.method == "HEAD") && hub[1].path.starts_with("/api/resolve-cache/"));
    assert!(s.hub.cdn_gets().is_empty());

    s.hub.set_faults(Faults { hub_error: Some((401, "GatedRepo")), ..Default::default() });
    let r = Run::of(s.cmd().args(["catalog", "check", "--endpoint", &endpoint, "tiny"]).output().unwrap())
        .code(5);
    assert!(r.stdout.contains("is gated"), "{}", r.stdout);
}

/// A Hub (or a proxy in front of it) that answers the `HEAD` itself with `Content-Length: 0`
/// and no `X-Linked-Size`: the size is unknown, not 0, and not a mismatch; the SHA-256 it does
/// report is still compared.
#[test]
fn catalog_check_says_unknown_for_a_size_of_0_in_a_head() {
    let s = setup(300_000);
    s.hub.set_faults(Faults { hub_serves_unsized: true, ..Default::default() });
    let endpoint = s.hub.endpoint();
    let r = Run::of(
        s.cmd().args(["catalog", "check", "--endpoint", &endpoint, "tiny", "--json"]).output().unwrap(),
    )
    .ok();
    let row = &r.json()[0];
    assert_eq!(row["verdict"], "match", "{row}");
    assert!(row["hub_size_bytes"].is_null(), "unknown, not 0: {row}");
    assert_eq!(row["hub_sha256"], sha256_hex(&s.bytes));
    assert!(row["note"].as_str().is_some_and(|n| n.contains("size unknown")), "{row}");
    let text =
        Run::of(s.cmd().args(["catalog", "check", "--endpoint", &endpoint, "tiny"]).output().unwrap()).ok();
    let line = text.stdout.lines().find(|l| l.contains("tiny")).unwrap_or_default();
    assert!(line.contains("match") && line.contains("size unknown"), "{}", text.stdout);
    assert!(!text.stdout.contains("0 bytes /") && !text.stdout.contains("MISMATCH"), "{}", text.stdout);
    assert!(s.hub.seen().iter().all(|r| r.method == "HEAD"), "no body fetched");

    // A download trusts the catalog's size then, and the Hub's bytes verify.
    s.run(&["download", "tiny", "--quiet"]).ok();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
}
