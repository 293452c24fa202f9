//! `outdated` and `update` against what a hostile reviewer tried: corrupted files never blessed
//! by a re-pin, a projector or shard that is not GGUF or empty, a staged partial of another
//! version, a model not downloaded, dry runs, answers that are not commits, files no longer in
//! LFS, racing updates, a busy lock, no token in any output, a catalog edited meanwhile, an
//! update killed between its catalog rewrite and its renames (an LD_PRELOAD shim), staged
//! copies removed with the model.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::multifile::{Repo, MMPROJ, SHARDS};
use crate::support::hub::{Faults, REVISION};
use crate::support::{gguf_bytes, gguf_file, sha256_hex, Run};

const NEW: &str = "fedcba9876543210fedcba9876543210fedcba98";
const NEWER: &str = "00112233445566778899aabbccddeeff00112233";

use crate::update::{Fixture as F, FILE};

fn changed(old: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut n = old.to_vec();
    n.extend_from_slice(tail);
    n
}

fn tree(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        let m = fs::symlink_metadata(&e).unwrap();
        out.push((e.strip_prefix(dir).unwrap().display().to_string(), if m.is_file() { m.len() } else { 0 }));
    }
    out.sort();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            v.push(p.clone());
            if p.is_dir() {
                v.extend(walk(&p));
            }
        }
    }
    v
}

/// H1: a re-pin (files the same upstream) stamps the local file as verified for the new pin
/// without hashing it: a corrupted file (same size) becomes "verified".
#[test]
fn h1_repin_must_not_bless_a_corrupted_file() {
    let f = F::new(200_000, true);
    let path = f.sb.models().join(FILE);
    let mut bytes = f.on_disk();
    bytes[150_000] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    f.hub.move_main(NEW, &[(FILE, f.old.clone())]);
    let up = f.run(&["update", "alpha", "--json"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    f.hub.clear_seen();
    let d = f.run(&["download", "alpha"]);
    eprintln!("download: {} {} {} requests={}", d.code, d.stdout, d.stderr, f.hub.seen().len());
    assert_eq!(
        sha256_hex(&f.on_disk()),
        sha256_hex(&f.old),
        "`download` served a corrupted file as verified after update re-pinned it"
    );
}

/// H2: a changed projector (not the first file) that is not GGUF is installed: only the
/// first file's header is checked.
#[test]
fn h2_changed_mmproj_that_is_not_gguf_is_refused() {
    let r = Repo::new([300_000, 200_000, 100_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let mut moved: Vec<(&str, Vec<u8>)> = r.files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    for (n, b) in &mut moved {
        if *n == MMPROJ {
            *b = b"<html>not a model at all</html>".repeat(100);
        }
    }
    r.hub.move_main(NEW, &moved);
    let up = r.run(&["update", "big"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    let local = fs::read(r.local(MMPROJ)).unwrap();
    assert_eq!(&local[..4], b"GGUF", "update installed a non-GGUF projector: exit {}", up.code);
}

/// H2b: a changed later shard of another architecture / zero bytes.
#[test]
fn h2b_changed_shard_of_zero_bytes_is_refused() {
    let r = Repo::new([300_000, 200_000, 100_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let mut moved: Vec<(&str, Vec<u8>)> = r.files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    for (n, b) in &mut moved {
        if *n == SHARDS[2] {
            *b = Vec::new();
        }
    }
    r.hub.move_main(NEW, &moved);
    let up = r.run(&["update", "big"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    let len = fs::metadata(r.local(SHARDS[2])).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0, "update installed a 0-byte shard: exit {}", up.code);
}

/// H2c: one shard changed (not the first): updated, others re-stamped, all verified.
#[test]
fn h2c_one_later_shard_changed() {
    let r = Repo::new([300_000, 200_000, 100_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let mut moved: Vec<(&str, Vec<u8>)> = r.files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let mut newshard = Vec::new();
    for (n, b) in &mut moved {
        if *n == SHARDS[1] {
            b.extend_from_slice(b"more");
            newshard = b.clone();
        }
    }
    r.hub.move_main(NEW, &moved);
    let up = r.run(&["update", "big", "--json"]).ok().json();
    assert_eq!(up["action"], "updated");
    assert_eq!(fs::read(r.local(SHARDS[1])).unwrap(), newshard);
    r.run(&["verify", "big"]).ok();
    r.hub.clear_seen();
    r.run(&["download", "big"]).ok();
    assert!(r.hub.seen().is_empty());
}

/// H3: a killed update's staged partial of commit B, then main moves again to C: the next
/// update must end with C's bytes, never B's (also without an ETag to tell them apart).
#[test]
fn h3_stale_staged_partial_of_another_version_is_never_installed() {
    for no_etag in [false, true] {
        let f = F::new(3_000_000, true);
        let b = changed(&f.old, b"version B");
        let c = changed(&f.old, b"version C"); // the same size as B
        assert_eq!(b.len(), c.len());
        f.hub.move_main(NEW, &[(FILE, b.clone())]);
        f.hub.set_faults(Faults { rate: Some(400_000), no_etag, ..Default::default() });
        f.hub.clear_seen();
        let mut child =
            f.cmd().args(["update", "alpha"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let started = Instant::now();
        while f.hub.bytes_sent() < 1_200_000 && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!("staged: {:?}", tree(&f.sb.models().join(".strata/update")));
        f.hub.set_faults(Faults { no_etag, ..Default::default() });
        f.hub.move_main(NEWER, &[(FILE, c.clone())]);
        let up = f.run(&["update", "alpha"]);
        eprintln!("no_etag={no_etag} update: {} {} {}", up.code, up.stdout, up.stderr);
        if up.code == 0 {
            assert_eq!(f.pinned(), NEWER);
            assert_eq!(sha256_hex(&f.on_disk()), sha256_hex(&c), "no_etag={no_etag}");
        } else {
            assert_eq!(f.pinned(), REVISION);
            assert_eq!(f.on_disk(), f.old);
            // and the one after must work
            let again = f.run(&["update", "alpha"]);
            eprintln!("again: {} {} {}", again.code, again.stdout, again.stderr);
            assert_eq!(again.code, 0, "no_etag={no_etag}: the update after a failed one fails too");
            assert_eq!(sha256_hex(&f.on_disk()), sha256_hex(&c));
        }
    }
}

/// H3b: a complete staged file of B (killed after the fetch, before the swap), main moves
/// to C: never installed under C's pin.
#[test]
fn h3b_complete_staged_file_of_another_version() {
    let f = F::new(200_000, true);
    let b = changed(&f.old, b"version B");
    let c = changed(&f.old, b"version C");
    let staged = f.sb.models().join(".strata/update");
    fs::create_dir_all(&staged).unwrap();
    fs::write(staged.join(FILE), &b).unwrap();
    f.hub.move_main(NEWER, &[(FILE, c.clone())]);
    let up = f.run(&["update", "alpha"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    assert_eq!(sha256_hex(&f.on_disk()), if up.code == 0 { sha256_hex(&c) } else { sha256_hex(&f.old) });
}

/// H4: update of a model whose file was never downloaded (or pruned): does it download it?
#[test]
fn h4_update_of_a_model_not_downloaded_fetches_nothing() {
    let f = F::new(200_000, false);
    let newb = changed(&f.old, b"new");
    f.hub.move_main(NEW, &[(FILE, newb)]);
    f.hub.clear_seen();
    let up = f.run(&["update", "alpha", "--json"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    eprintln!("cdn gets: {}", f.hub.cdn_gets().len());
    eprintln!("models dir: {:?}", tree(&f.sb.models()));
    assert_eq!(f.pinned(), NEW);
    // The new header is read by range (as `add` reads it); the file is not fetched.
    assert!(f.hub.bytes_sent() <= 256 * 1024, "{} bytes sent", f.hub.bytes_sent());
    assert!(!f.sb.models().join(FILE).exists(), "update downloaded a model that was not downloaded");
    assert_eq!(up.json()["action"], "repinned");
}

/// H5: --dry-run writes nothing at all (catalog, .strata).
#[test]
fn h5_dry_run_writes_nothing() {
    let f = F::new(200_000, true);
    f.hub.move_main(NEW, &[(FILE, changed(&f.old, b"x"))]);
    let before = tree(&f.sb.models());
    let cat = fs::read(f.sb.models().join("catalog.json")).unwrap();
    let m0 = fs::metadata(f.sb.models().join("catalog.json")).unwrap().modified().unwrap();
    f.run(&["update", "alpha", "--dry-run"]).ok();
    assert_eq!(tree(&f.sb.models()), before);
    assert_eq!(fs::read(f.sb.models().join("catalog.json")).unwrap(), cat);
    assert_eq!(fs::metadata(f.sb.models().join("catalog.json")).unwrap().modified().unwrap(), m0);
    // also for a repin-only dry run
    f.hub.move_main(NEW, &[(FILE, f.old.clone())]);
    let r = f.run(&["update", "alpha", "--dry-run", "--json"]).ok().json();
    eprintln!("dry repin: {r}");
    assert_eq!(tree(&f.sb.models()), before);
    assert_eq!(f.pinned(), REVISION);
}

/// H6: the Hub answers a `sha` that is not a 40-hex commit.
#[test]
fn h6_sha_not_a_commit() {
    for sha in ["main", "../../../../etc", "FEDCBA9876543210FEDCBA9876543210FEDCBA98", "abc"] {
        let f = F::new(100_000, true);
        f.hub.move_main(sha, &[(FILE, changed(&f.old, b"x"))]);
        let up = f.run(&["update", "alpha"]);
        eprintln!("sha={sha}: {} {} {}", up.code, up.stdout, up.stderr);
        let pinned = f.pinned();
        eprintln!("  pinned {pinned}; tree {:?}", tree(&f.sb.models()));
        let hex40 =
            pinned.len() == 40 && pinned.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        assert!(hex40, "sha={sha}: pinned {pinned:?}");
        let o = f.run(&["outdated", "alpha", "--json"]);
        eprintln!("  outdated: {} {} {}", o.code, o.stdout, o.stderr);
    }
}

/// H7: a file without LFS at the new commit: refused, pin unchanged.
#[test]
fn h7_not_lfs_refused() {
    let f = F::new(100_000, true);
    f.hub.move_main(NEW, &[(FILE, changed(&f.old, b"x"))]);
    f.hub.set_faults(Faults { not_lfs: vec![FILE], ..Default::default() });
    let up = f.run(&["update", "alpha"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    assert_ne!(up.code, 0);
    assert_eq!(f.pinned(), REVISION);
    let o = f.run(&["outdated", "alpha"]);
    eprintln!("outdated: {} {} {}", o.code, o.stdout, o.stderr);
    // the same bytes, only not in LFS: outdated says "other bytes"?
    f.hub.move_main(NEW, &[(FILE, f.old.clone())]);
    let o = f.run(&["outdated", "alpha"]);
    eprintln!("outdated same bytes not lfs: {} {} {}", o.code, o.stdout, o.stderr);
    assert!(!o.stdout.contains("other bytes"), "outdated says other bytes for identical bytes not in LFS");
}

/// H8: two updates racing: one updates, the other says current or fails cleanly; the end
/// state is the new pin with the new verified file.
#[test]
fn h8_two_updates_race() {
    let f = F::new(3_000_000, true);
    let newb = changed(&f.old, b"new");
    f.hub.move_main(NEW, &[(FILE, newb.clone())]);
    f.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let a = f.cmd().args(["update", "alpha"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let b = f.cmd().args(["update", "alpha"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let a = Run::of(a.wait_with_output().unwrap());
    let b = Run::of(b.wait_with_output().unwrap());
    eprintln!("A: {} {} {}", a.code, a.stdout, a.stderr);
    eprintln!("B: {} {} {}", b.code, b.stdout, b.stderr);
    assert!(a.code == 0 || b.code == 0);
    assert_eq!(f.pinned(), NEW);
    assert_eq!(f.on_disk(), newb);
    f.hub.set_faults(Faults::default());
    f.hub.clear_seen();
    f.run(&["download", "alpha"]).ok();
    assert!(f.hub.seen().is_empty());
    eprintln!("staged left: {:?}", tree(&f.sb.models().join(".strata/update")));
    for r in [&a, &b] {
        assert!(!r.stderr.contains("panicked"));
    }
}

/// H9: update while another process downloads the old pin (holds the model's lock).
#[test]
fn h9_update_while_a_download_of_the_old_pin_holds_the_lock() {
    let f = F::new(3_000_000, false);
    f.hub.set_faults(Faults { rate: Some(500_000), ..Default::default() });
    let mut dl =
        f.cmd().args(["download", "alpha"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while f.hub.bytes_sent() < 300_000 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let newb = changed(&f.old, b"new");
    f.hub.move_main(NEW, &[(FILE, newb.clone())]);
    f.hub.set_faults(Faults::default());
    let up = f.run(&["update", "alpha"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    let _ = dl.kill();
    dl.wait().unwrap();
    eprintln!("pinned {} tree {:?}", f.pinned(), tree(&f.sb.models()));
    if up.code != 0 {
        assert_eq!(f.pinned(), REVISION);
        assert!(
            !up.stderr.contains("remove"),
            "the error for a busy update talks about `remove`: {}",
            up.stderr
        );
    }
}

/// H10: outdated with duplicate names and aliases: one API request; with 0 custom entries; offline.
#[test]
fn h10_outdated_duplicates_and_requests() {
    let f = F::new(100_000, false);
    f.run(&["alias", "set", "a1", "alpha"]).ok();
    f.hub.clear_seen();
    let o = f.run(&["outdated", "alpha", "ALPHA", "a1", "alpha", "--json"]);
    eprintln!("outdated: {} {} {}", o.code, o.stdout, o.stderr);
    let api: Vec<_> = f.hub.seen().into_iter().filter(|s| s.path.starts_with("/api/")).collect();
    assert_eq!(api.len(), 1, "{api:?}");
    assert!(f.hub.cdn_gets().is_empty());
    let j = o.json();
    assert_eq!(j.as_array().unwrap().len(), 1, "{j}");
    let off = Run::of(f.cmd().env("HF_HUB_OFFLINE", "1").args(["outdated"]).output().unwrap());
    eprintln!("offline: {} {} {}", off.code, off.stdout, off.stderr);
    assert_eq!(off.code, 8);
    // every model: built-ins track main on a repository the look-alike does not know
    f.hub.clear_seen();
    let all = f.run(&["outdated", "--json"]);
    eprintln!("all: {} {} {}", all.code, all.stdout, all.stderr);
    let _ = all.json();
    let api: Vec<_> =
        f.hub.seen().into_iter().filter(|s| s.path.starts_with("/api/")).map(|s| s.path).collect();
    eprintln!("api requests: {api:?}");
    let mut dedup = api.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), api.len(), "more than one request per repository+ref");
}

/// H11: HF_TOKEN never in output, whatever fails.
#[test]
fn h11_no_token_in_output() {
    let secret = "hf_SeCrEtToKeN1234567890abcdefABCDEF";
    let f = F::new(100_000, true);
    f.hub.move_main(NEW, &[(FILE, changed(&f.old, b"x"))]);
    for faults in [
        Faults { hub_error: Some((401, "GatedRepo")), ..Default::default() },
        Faults { hub_error: Some((500, "Internal")), ..Default::default() },
        Faults { statuses: vec![(403, None)], ..Default::default() },
        Faults { flip_byte: true, ..Default::default() },
        Faults { redirect_loop: true, ..Default::default() },
        Faults { status_body: Some(("hf_SeCrEtToKeN1234567890abcdefABCDEF", "echo")), ..Default::default() },
    ] {
        f.hub.set_faults(faults.clone());
        for args in [
            &["outdated", "alpha"][..],
            &["outdated", "--json"],
            &["update", "alpha"],
            &["update", "alpha", "--json"],
            &["update", "alpha", "--dry-run"],
        ] {
            let r = Run::of(
                f.cmd().env("HF_TOKEN", secret).env("STRATA_LOG", "trace").args(args).output().unwrap(),
            );
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret) && !r.stderr.contains("SeCrEt"),
                "{args:?} {faults:?}: {}\n{}",
                r.stdout,
                r.stderr
            );
        }
    }
}

/// H13: catalog edited between the check and the swap (during a slow staged fetch).
#[test]
fn h13_catalog_edited_during_update() {
    let f = F::new(3_000_000, true);
    let newb = changed(&f.old, b"new");
    f.hub.move_main(NEW, &[(FILE, newb.clone())]);
    f.hub.set_faults(Faults { rate: Some(1_500_000), ..Default::default() });
    f.hub.clear_seen();
    let child =
        f.cmd().args(["update", "alpha"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while f.hub.bytes_sent() < 500_000 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A hand edit of the entry, keeping its pin: a description, the tracked ref.
    let mut doc = f.catalog();
    doc["models"][0]["description"] = serde_json::json!("my notes");
    doc["models"][0]["tracks"] = serde_json::json!("release");
    fs::write(f.sb.models().join("catalog.json"), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let r = Run::of(child.wait_with_output().unwrap());
    eprintln!("update: {} {} {}", r.code, r.stdout, r.stderr);
    let doc = f.catalog();
    eprintln!("catalog after: {}", doc["models"][0]);
    if r.code == 0 {
        assert_eq!(doc["models"][0]["description"], "my notes", "the edit was silently lost");
        assert_eq!(doc["models"][0]["tracks"], "release", "the edit was silently lost");
    }
}

/// H14: update when the old (changed) file on disk is corrupted; and exit codes.
#[test]
fn h14_old_file_corrupted_then_update() {
    let f = F::new(200_000, true);
    let path = f.sb.models().join(FILE);
    let mut bytes = f.on_disk();
    bytes[100_000] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let newb = changed(&f.old, b"new");
    f.hub.move_main(NEW, &[(FILE, newb.clone())]);
    let up = f.run(&["update", "alpha"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    assert_eq!(up.code, 0);
    assert_eq!(f.on_disk(), newb);
    let o = f.run(&["outdated", "alpha", "--json"]);
    eprintln!("outdated: {} {}", o.code, o.stdout);
}

/// H15: update then a host library process that read the catalog before: documented to
/// re-fetch the old version; check the models dir never holds unverified bytes afterwards.
#[test]
fn h15_another_arch_refused() {
    let f = F::new(100_000, true);
    let other = gguf_bytes("llama", 4096, 100_000, 9);
    f.hub.move_main(NEW, &[(FILE, other)]);
    let up = f.run(&["update", "alpha"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    assert_ne!(up.code, 0);
    assert_eq!(f.pinned(), REVISION);
    let junk = gguf_file(b"NOTG".to_vec(), 100_000, 3);
    f.hub.move_main(NEW, &[(FILE, junk)]);
    let up = f.run(&["update", "alpha"]);
    eprintln!("update junk: {} {} {}", up.code, up.stdout, up.stderr);
    assert_ne!(up.code, 0);
    assert_eq!(f.pinned(), REVISION);
    f.hub.move_main(NEW, &[(FILE, Vec::new())]);
    let up = f.run(&["update", "alpha"]);
    eprintln!("update empty: {} {} {}", up.code, up.stdout, up.stderr);
    assert_ne!(up.code, 0);
    assert_eq!(f.pinned(), REVISION);
    let o = f.run(&["outdated", "alpha"]);
    eprintln!("outdated: {} {} {}", o.code, o.stdout, o.stderr);
}

/// H16: an update killed right after the catalog was rewritten, before the staged file is
/// renamed over the old one (SIGKILL in rename, by an LD_PRELOAD shim).
#[test]
fn h16_killed_between_catalog_rewrite_and_rename() {
    let f = F::new(200_000, true);
    let newb = changed(&f.old, b"new");
    f.hub.move_main(NEW, &[(FILE, newb.clone())]);
    let Some(shim) = crate::support::shim::kill_path() else { return };
    let r = Run::of(
        f.cmd().env("LD_PRELOAD", &shim).env("KILLSHIM_NTH", "1").args(["update", "alpha"]).output().unwrap(),
    );
    eprintln!("killed update: {} {} {}", r.code, r.stdout, r.stderr);
    eprintln!("pinned {} tree {:?}", f.pinned(), tree(&f.sb.models()));
    let p = f.run(&["path", "alpha"]);
    eprintln!("path: {} {} {}", p.code, p.stdout, p.stderr);
    let killed_pin = f.pinned();
    let again = f.run(&["update", "alpha", "--json"]);
    eprintln!("update again: {} {} {}", again.code, again.stdout, again.stderr);
    f.hub.clear_seen();
    let d = f.run(&["download", "alpha"]);
    eprintln!("download: {} {} {} cdn gets {}", d.code, d.stdout.trim(), d.stderr, f.hub.cdn_gets().len());
    eprintln!("tree after {:?}", tree(&f.sb.models()));
    // the promise: a killed update leaves the old pin and file, serving
    assert_eq!(p.code, 0, "after a kill the model no longer serves (pinned {killed_pin})");
}

/// H16b: multi-file, killed between the first and the second rename.
#[test]
fn h16b_multifile_killed_between_renames() {
    let r = Repo::new([300_000, 200_000, 100_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let mut moved: Vec<(&str, Vec<u8>)> = r.files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    for (n, b) in &mut moved {
        if *n == SHARDS[1] || *n == SHARDS[2] {
            b.extend_from_slice(b"more");
        }
    }
    r.hub.move_main(NEW, &moved);
    let Some(shim) = crate::support::shim::kill_path() else { return };
    let k = Run::of(
        r.cmd().env("LD_PRELOAD", &shim).env("KILLSHIM_NTH", "2").args(["update", "big"]).output().unwrap(),
    );
    eprintln!("killed: {} {} {}", k.code, k.stdout, k.stderr);
    let p = r.run(&["path", "big"]);
    eprintln!("path: {} {} {}", p.code, p.stdout, p.stderr);
    let v = r.run(&["verify", "big"]);
    eprintln!("verify: {} {} {}", v.code, v.stdout, v.stderr);
    let again = r.run(&["update", "big", "--json"]);
    eprintln!("update again: {} {} {}", again.code, again.stdout, again.stderr);
    let o = r.run(&["outdated", "big"]);
    eprintln!("outdated: {} {} {}", o.code, o.stdout, o.stderr);
    assert_eq!(p.code, 0, "after a killed update the model no longer serves");
}

/// H17: the staged copy of a failed update (the entry changed, a busy lock) stays forever:
/// `remove`, `prune`, `unregister` leave it.
#[test]
fn h17_staged_copy_left_by_a_failed_update_survives_remove() {
    let f = F::new(3_000_000, true);
    let newb = changed(&f.old, b"new");
    f.hub.move_main(NEW, &[(FILE, newb.clone())]);
    // the new file staged, then the swap refused (another process holds the model's lock)
    let lock_holder = {
        let mut c = f.cmd();
        f.hub.set_faults(Faults { rate: Some(200_000), ..Default::default() });
        fs::remove_file(f.sb.models().join(FILE)).unwrap();
        fs::remove_file(f.sb.models().join(".strata").join(format!("{FILE}.verified"))).ok();
        f.hub.clear_seen();
        c.args(["download", "alpha"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
    };
    let started = Instant::now();
    while f.hub.bytes_sent() < 100_000 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    f.hub.set_faults(Faults::default());
    let up = f.run(&["update", "alpha"]);
    eprintln!("update: {} {}", up.code, up.stderr);
    let mut lock_holder = lock_holder;
    lock_holder.kill().ok();
    lock_holder.wait().unwrap();
    let rm = f.run(&["remove", "alpha"]);
    eprintln!("remove: {} {} {}", rm.code, rm.stdout, rm.stderr);
    let un = f.run(&["unregister", "alpha"]);
    eprintln!("unregister: {} {} {}", un.code, un.stdout, un.stderr);
    let pr = f.run(&["prune", "--max-size", "0"]);
    eprintln!("prune: {} {} {}", pr.code, pr.stdout, pr.stderr);
    let left = tree(&f.sb.models());
    eprintln!("left: {left:?}");
    let big: u64 = left.iter().filter(|(n, _)| n.contains("update/")).map(|(_, s)| *s).sum();
    assert!(big < 1_000_000, "{big} bytes of a staged copy left after remove+unregister: {left:?}");
}

/// H1b: multi-file: shard 2 changes upstream; shard 3 (unchanged) is corrupted on disk
/// (same size): the update stamps it verified without hashing it.
#[test]
fn h1b_update_blesses_a_corrupted_unchanged_shard() {
    let r = Repo::new([300_000, 200_000, 100_000]);
    r.add_big();
    r.run(&["download", "big"]).ok();
    let third = r.local(SHARDS[2]);
    let mut bytes = fs::read(&third).unwrap();
    bytes[90_000] ^= 0x55;
    fs::write(&third, &bytes).unwrap();
    let mut moved: Vec<(&str, Vec<u8>)> = r.files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    for (n, b) in &mut moved {
        if *n == SHARDS[1] {
            b.extend_from_slice(b"more");
        }
    }
    r.hub.move_main(NEW, &moved);
    let up = r.run(&["update", "big"]);
    eprintln!("update: {} {} {}", up.code, up.stdout, up.stderr);
    r.hub.clear_seen();
    let d = r.run(&["download", "big"]);
    eprintln!("download: {} {} {} requests {}", d.code, d.stdout, d.stderr, r.hub.seen().len());
    assert_eq!(
        sha256_hex(&fs::read(&third).unwrap()),
        sha256_hex(r.bytes(SHARDS[2])),
        "a corrupted shard is served as verified after the update"
    );
}
