//! `update` through Xet: a new version of a file rebuilt from the verified old one plus only
//! the chunks that changed, from the CAS look-alike (`support::xet`: Xet's own chunking,
//! reconstructions v2 and v1, raw / LZ4 / byte-grouped LZ4 xorbs, signed URLs, multi-range
//! answers); a file that changed entirely downloaded whole; every bad input falling back to
//! the plain download with one notice, the old file never written.

use std::fs;
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;

use crate::support::hub::{XetFaults, XetOptions};
use crate::support::{gguf_file, sha256_hex};
use crate::update::{Fixture, FILE};

pub(crate) const NEW: &str = "fedcba9876543210fedcba9876543210fedcba98";
/// The old file's size: ~90 content-defined chunks, ~23 xorbs of the look-alike.
pub(crate) const SIZE: usize = 6_000_000;

/// A GGUF header with one more string key-value (`key` = `value`) after the others: the
/// metadata a re-upload adds (a chat template), every later byte shifted.
fn with_kv(old: &[u8], key: &str, value: &str) -> Vec<u8> {
    let header = strata_model::gguf::test_header("bert", 384, 7);
    assert_eq!(&old[..header.len()], &header[..], "the fixture's header");
    let mut new = header.clone();
    let count = u64::from_le_bytes(new[16..24].try_into().unwrap()) + 1;
    new[16..24].copy_from_slice(&count.to_le_bytes());
    new.extend_from_slice(&(key.len() as u64).to_le_bytes());
    new.extend_from_slice(key.as_bytes());
    new.extend_from_slice(&8u32.to_le_bytes()); // a string
    new.extend_from_slice(&(value.len() as u64).to_le_bytes());
    new.extend_from_slice(value.as_bytes());
    new.extend_from_slice(&old[header.len()..]);
    new
}

/// The fixture's old file with a 9 kB chat template added to its header.
pub(crate) fn header_changed(old: &[u8]) -> Vec<u8> {
    let template = "{% for m in messages %}{{ m.content }}{% endfor %}".repeat(180);
    with_kv(old, "tokenizer.chat_template", &template)
}

/// `alpha` downloaded (tracking `main`), the look-alike storing its files in Xet, `main`
/// moved to `new(old)`.
pub(crate) fn fixture(options: XetOptions, new: impl Fn(&[u8]) -> Vec<u8>) -> (Fixture, Vec<u8>) {
    let f = Fixture::new(SIZE, true);
    f.hub.enable_xet(options);
    let new = new(&f.old);
    f.hub.move_main(NEW, &[(FILE, new.clone())]);
    f.hub.clear_seen();
    (f, new)
}

/// A link to the old file's inode, to show it was never written.
pub(crate) fn keep_old(f: &Fixture) -> std::path::PathBuf {
    let kept = f.sb.tmp.path().join("old-inode");
    fs::hard_link(f.sb.models().join(FILE), &kept).unwrap();
    kept
}

fn hub_heads_of_new_file(f: &Fixture) -> usize {
    f.hub.seen().iter().filter(|s| s.host == "hub" && s.method == "HEAD" && s.path.contains(NEW)).count()
}

/// The file host served only the new header, read by range before anything is fetched (as
/// `add` reads it): the file itself was not downloaded.
pub(crate) fn header_read_only(f: &Fixture) -> bool {
    f.hub.cdn_gets().iter().all(|g| g.headers.get("range").is_some_and(|r| r.starts_with("bytes=0-")))
        && f.hub.bytes_sent() <= 256 * 1024
}

#[test]
fn a_header_change_is_rebuilt_from_the_old_file_fetching_only_the_changed_chunks() {
    let (f, new) = fixture(XetOptions::default(), header_changed);
    let kept = keep_old(&f);
    let run = f.run(&["update", "alpha", "--json"]).ok();
    let doc = run.json();
    assert_eq!(doc["action"], "updated", "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    assert_eq!(fs::read(&kept).unwrap(), f.old, "the old file's bytes were never written");
    // Only the chunks that changed came over the network, and nothing from the file host.
    let sent = f.hub.xet_bytes_sent();
    assert!(sent > 0 && sent <= 3 * 128 * 1024, "{sent} bytes of xorbs for a 9 kB header change");
    assert_eq!(doc["fetched_bytes"], sent, "{doc}");
    assert_eq!(doc["fetch_bytes"], new.len());
    assert!(header_read_only(&f), "{:?}", f.hub.cdn_gets());
    // One token; two reconstructions (the new file's and the old one's), v2; a xorb GET or two.
    assert_eq!(f.hub.xet_token_requests(), 1);
    let cas: Vec<_> = f.hub.cas_requests().into_iter().map(|s| s.path).collect();
    assert_eq!(cas.iter().filter(|p| p.starts_with("/v2/reconstructions/")).count(), 2, "{cas:?}");
    assert!(f.hub.xorb_gets().len() <= 2, "{cas:?}");
    assert_eq!(hub_heads_of_new_file(&f), 1, "one resolution of the new file");
    // The token and the signed URLs appear nowhere.
    for secret in ["xet-lookalike-token", "sig="] {
        assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret), "{}", run.stderr);
    }
    // Verified and stamped under the new pin; where it came from is recorded.
    f.hub.clear_seen();
    f.run(&["download", "alpha"]).ok();
    assert!(f.hub.seen().is_empty());
    f.run(&["verify", "alpha"]).ok();
    let origin = fs::read_to_string(f.sb.models().join(format!(".strata/{FILE}.origin"))).unwrap();
    assert!(origin.contains("Xet"), "{origin}");
    // The text output says what came over the network.
    assert_eq!(sha256_hex(&f.on_disk()), sha256_hex(&new));
}

#[test]
fn a_cas_without_v2_is_read_through_v1() {
    let options =
        XetOptions { faults: XetFaults { v1_only: true, ..Default::default() }, ..Default::default() };
    let (f, new) = fixture(options, header_changed);
    let run = f.run(&["update", "alpha"]).ok();
    assert!(run.stdout.contains("alpha: updated"), "{}", run.stdout);
    assert!(!run.stderr.contains("failed"), "{}", run.stderr);
    let rebuilt = run.stderr.lines().find(|l| l.starts_with("✓ alpha") && l.contains("rebuilt"));
    assert!(rebuilt.is_some_and(|l| l.contains("from the old file), SHA-256 verified")), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    let cas: Vec<_> = f.hub.cas_requests().into_iter().map(|s| s.path).collect();
    assert_eq!(cas.iter().filter(|p| p.starts_with("/v1/reconstructions/")).count(), 2, "{cas:?}");
    assert!(header_read_only(&f), "{:?}", f.hub.cdn_gets());
    assert!(f.hub.xet_bytes_sent() <= 3 * 128 * 1024);
}

#[test]
fn a_file_that_changed_entirely_is_downloaded_whole_from_the_resolution_already_made() {
    let (f, new) = fixture(XetOptions::default(), |old| {
        gguf_file(strata_model::gguf::test_header("bert", 384, 7), old.len(), 99)
    });
    let run = f.run(&["update", "alpha"]).ok();
    assert_eq!(f.on_disk(), new);
    // No notice (nothing failed), no xorb fetched; the plain download used the resolution
    // the delta made: one resolution of the new file in all.
    assert!(!run.stderr.contains("rebuil"), "{}", run.stderr);
    assert!(f.hub.xorb_gets().is_empty());
    assert!(!f.hub.cdn_gets().is_empty());
    assert_eq!(hub_heads_of_new_file(&f), 1, "{:?}", f.hub.seen());
    assert!(
        run.stdout.contains(&format!("{} fetched", strata_model::ByteSize(new.len() as u64))),
        "{}",
        run.stdout
    );
}

#[test]
fn a_file_not_in_xet_is_downloaded_without_a_notice_or_a_cas_request() {
    let options =
        XetOptions { faults: XetFaults { no_xet_hash: true, ..Default::default() }, ..Default::default() };
    let (f, new) = fixture(options, header_changed);
    let run = f.run(&["update", "alpha"]).ok();
    assert_eq!(f.on_disk(), new);
    assert!(!run.stderr.contains("rebuil"), "{}", run.stderr);
    // The token is asked at the same time as the resolution (no round trip more), no CAS.
    assert!(f.hub.xet_token_requests() <= 1);
    assert!(f.hub.cas_requests().is_empty());
}

#[test]
fn expired_signed_urls_get_a_new_token_and_new_urls_once() {
    let faults = XetFaults { expired_url_answers: 2, ..Default::default() };
    let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
    let run = f.run(&["update", "alpha"]).ok();
    assert_eq!(f.on_disk(), new);
    assert!(!run.stderr.contains("failed"), "{}", run.stderr);
    assert!(header_read_only(&f), "rebuilt, not downloaded: {:?}", f.hub.cdn_gets());
    assert_eq!(f.hub.xet_token_requests(), 2);
    let statuses = f.hub.xorb_gets().len();
    assert!(statuses >= 2, "a refused GET, then the same range under a new URL");
}

/// Each bad input: one notice naming what went wrong, the plain download, the new file
/// verified and in place, the old file's inode never written.
#[test]
fn every_bad_input_falls_back_to_the_plain_download_with_one_notice() {
    let cases: [(&str, XetFaults); 8] = [
        ("adds up to", XetFaults { bad_term_sizes: true, ..Default::default() }),
        ("decompress", XetFaults { corrupt_chunk: true, ..Default::default() }),
        ("chunk", XetFaults { wrong_chunk_length: true, ..Default::default() }),
        ("503", XetFaults { xorb_status: Some(503), ..Default::default() }),
        ("503", XetFaults { reconstruction_status: Some(503), ..Default::default() }),
        ("token", XetFaults { token_status: Some(500), ..Default::default() }),
        ("401", XetFaults { token_ttl: 0, ..Default::default() }),
        ("403", XetFaults { expire_urls_after: Some(0), ..Default::default() }),
    ];
    for (said, faults) in cases {
        let what = format!("{faults:?}");
        let (f, new) = fixture(XetOptions { faults, ..Default::default() }, header_changed);
        let kept = keep_old(&f);
        let run = f.run(&["update", "alpha"]);
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        let notices: Vec<&str> =
            run.stderr.lines().filter(|l| l.contains("rebuilding from the old file failed")).collect();
        assert_eq!(notices.len(), 1, "{what}: {}", run.stderr);
        assert!(notices[0].contains(said), "{what}: {}", notices[0]);
        assert!(notices[0].contains("fetching the whole file"), "{}", notices[0]);
        assert!(
            !run.stderr.contains("xet-lookalike-token") && !run.stderr.contains("sig="),
            "{}",
            run.stderr
        );
        assert_eq!(f.on_disk(), new, "{what}");
        assert_eq!(fs::read(&kept).unwrap(), f.old, "{what}: the old inode untouched");
        assert!(!header_read_only(&f), "{what}: the plain download");
        f.run(&["verify", "alpha"]).ok();
    }
}

#[test]
fn an_old_file_changed_on_disk_since_it_was_verified_is_not_used() {
    let (f, new) = fixture(XetOptions::default(), header_changed);
    // Bytes changed in place, the size and modification time put back: the stamp still
    // matches, the content does not.
    let path = f.sb.models().join(FILE);
    let before = fs::metadata(&path).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[SIZE / 2] ^= 0xff;
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut &file, &bytes).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    #[cfg(unix)]
    assert_eq!(fs::metadata(&path).unwrap().ino(), before.ino());
    let run = f.run(&["update", "alpha"]).ok();
    assert!(run.stderr.contains("changed on disk since it was verified"), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    assert!(!header_read_only(&f));
}

/// The catalog's pin moved under a verified file (a new release's built-in row, an edited
/// custom entry): `download` rebuilds the new version from the earlier one in place, whose
/// Xet id was recorded when it was downloaded.
#[test]
fn a_download_rebuilds_a_new_pin_from_the_earlier_version_in_place() {
    let f = Fixture::new(SIZE, false);
    f.hub.enable_xet(XetOptions::default());
    // Downloaded with Xet on: its Xet id is recorded beside it.
    f.run(&["download", "alpha"]).ok();
    let (old, new) = (f.old.clone(), header_changed(&f.old));
    f.hub.move_main(NEW, &[(FILE, new.clone())]);
    let origin = fs::read_to_string(f.sb.models().join(format!(".strata/{FILE}.origin"))).unwrap();
    assert!(origin.contains(&crate::support::hub::Hub::xet_file_id(&old)), "{origin}");
    // The pin moves by hand.
    f.repin_by_hand(NEW, &new);
    f.hub.clear_seen();
    let run = f.run(&["download", "alpha"]).ok();
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    assert!(f.hub.cdn_gets().is_empty(), "{:?}", f.hub.cdn_gets());
    assert!(f.hub.xet_bytes_sent() <= 3 * 128 * 1024);
    f.run(&["verify", "alpha"]).ok();
    let origin = fs::read_to_string(f.sb.models().join(format!(".strata/{FILE}.origin"))).unwrap();
    assert!(origin.contains(&crate::support::hub::Hub::xet_file_id(&new)), "{origin}");
}

/// A mirror configured before the Hub (an air-gapped site's) is asked as before: no Xet.
#[test]
fn a_mirror_before_the_hub_is_asked_as_before_without_xet() {
    let (f, new) = fixture(XetOptions::default(), header_changed);
    let mirror = f.sb.tmp.path().join("mirror");
    fs::create_dir(&mirror).unwrap();
    fs::write(mirror.join(FILE), &new).unwrap();
    let out = f.cmd().env("STRATA_MODELS_MIRROR", &mirror).args(["update", "alpha"]).output().unwrap();
    let run = crate::support::Run::of(out).ok();
    assert!(!run.stderr.contains("rebuil"), "{}", run.stderr);
    assert!(f.hub.xorb_gets().is_empty() && f.hub.cas_requests().is_empty());
    assert_eq!(f.on_disk(), new);
    let origin = fs::read_to_string(f.sb.models().join(format!(".strata/{FILE}.origin"))).unwrap();
    assert!(origin.contains("mirror directory"), "{origin}");
}

/// `--max-rate` caps a delta's fetches too: a moved pin rebuilt at 4 kB/s takes at least the
/// time its changed chunks take at that rate (a lower bound: a loaded machine only adds).
#[test]
fn a_delta_keeps_to_the_rate_cap() {
    let f = Fixture::new(SIZE, false);
    f.hub.enable_xet(XetOptions::default());
    f.run(&["download", "alpha"]).ok();
    let new = header_changed(&f.old);
    f.hub.move_main(NEW, &[(FILE, new.clone())]);
    f.repin_by_hand(NEW, &new);
    f.hub.clear_seen();
    let started = std::time::Instant::now();
    let run = f.run(&["download", "alpha", "--max-rate", "4kB"]).ok();
    let took = started.elapsed();
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    let sent = f.hub.xet_bytes_sent();
    let floor = std::time::Duration::from_secs_f64(sent as f64 / 4000.0 * 0.8);
    assert!(sent > 4000 && took >= floor, "{sent} xorb bytes in {took:?} at 4 kB/s (at least {floor:?})");
}

/// A models directory copied (`cp -a`: new inodes, the stamps stale) and then a moved pin: the
/// earlier version is hashed against its stamp again and kept, so a download that fails
/// leaves it, and one that works rebuilds from it.
#[test]
fn a_copied_directory_keeps_its_earlier_version_and_rebuilds_from_it() {
    let f = Fixture::new(SIZE, false);
    f.hub.enable_xet(XetOptions::default());
    f.run(&["download", "alpha"]).ok();
    let new = header_changed(&f.old);
    f.hub.move_main(NEW, &[(FILE, new.clone())]);
    f.repin_by_hand(NEW, &new);
    let copy = f.sb.tmp.path().join("copy");
    let cp = std::process::Command::new("cp").arg("-a").arg(f.sb.models()).arg(&copy).status().unwrap();
    assert!(cp.success());
    let in_copy = |args: &[&str]| {
        crate::support::Run::of(f.cmd().env("STRATA_MODELS_DIR", &copy).args(args).output().unwrap())
    };
    // Every source fails: the earlier version stays.
    f.hub.set_faults(crate::support::hub::Faults {
        hub_error: Some((404, "EntryNotFound")),
        ..Default::default()
    });
    let failed = in_copy(&["download", "alpha"]);
    assert_ne!(failed.code, 0, "{}", failed.stderr);
    assert_eq!(
        fs::read(copy.join(FILE)).unwrap(),
        f.old,
        "the earlier version was deleted: {}",
        failed.stderr
    );
    // The Hub back: rebuilt from it.
    f.hub.set_faults(crate::support::hub::Faults::default());
    let run = in_copy(&["download", "alpha"]).ok();
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    assert_eq!(fs::read(copy.join(FILE)).unwrap(), new);
}

/// `update --max-rate` caps the delta's fetches as `download --max-rate` does.
#[test]
fn update_keeps_to_its_rate_cap() {
    let (f, new) = fixture(XetOptions::default(), header_changed);
    let started = std::time::Instant::now();
    let run = f.run(&["update", "alpha", "--max-rate", "4kB"]).ok();
    let took = started.elapsed();
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    assert_eq!(f.on_disk(), new);
    let sent = f.hub.xet_bytes_sent();
    let floor = std::time::Duration::from_secs_f64(sent as f64 / 4000.0 * 0.8);
    assert!(sent > 4000 && took >= floor, "{sent} xorb bytes in {took:?} at 4 kB/s (at least {floor:?})");
}
