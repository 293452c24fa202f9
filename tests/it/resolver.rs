//! The resolver's logic with scripted sources (the one mockall mock): order, warm path,
//! resume, retries, verification, and what is left on disk when every source fails.

use std::borrow::Cow;
use std::fs;
use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use mockall::predicate::{always, function};
use strata_model::download::Resolver;
use strata_model::{
    ErrorKind, Fetch, FetchRequest, ModelEntry, ModelSource, ModelsDir, RegistryError, Result, RetryPolicy,
    SourceError,
};

use crate::support::mock::{named, MockSource};
use crate::support::sha256_hex;

fn fixture(size: usize) -> (ModelEntry, Vec<u8>) {
    let mut bytes = strata_model::gguf::test_header("bert", 8, 7);
    let mut x = 7u32;
    while bytes.len() < size {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes.push((x >> 16) as u8);
    }
    let mut e = strata_model::catalog::BUILTIN[0].clone();
    e.hf_filename = Cow::Borrowed("fixture-Q8_0.gguf");
    e.size_bytes = bytes.len() as u64;
    e.sha256 = Cow::Owned(sha256_hex(&bytes));
    (e, bytes)
}

fn body(bytes: &[u8], from: u64) -> Fetch {
    Fetch {
        body: Box::new(Cursor::new(bytes[from as usize..].to_vec())),
        start: from,
        total: Some(bytes.len() as u64),
        validator: Some("\"v1\"".into()),
        location: "mock".into(),
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..Default::default()
    }
}

fn run(dir: &ModelsDir, sources: Vec<MockSource>, entry: &ModelEntry) -> Result<PathBuf> {
    let sources: Vec<Box<dyn ModelSource>> = sources.into_iter().map(|m| Box::new(m) as _).collect();
    Resolver::new(dir, &sources, fast(), None).ensure(entry, None)
}

#[test]
fn downloads_verifies_stamps_and_then_stays_warm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let (entry, bytes) = fixture(100_000);
    let mut m = named("one");
    let served = bytes.clone();
    m.expect_fetch().times(1).returning(move |_, r| Ok(body(&served, r.offset)));
    let path = run(&dir, vec![m], &entry).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(dir.files(&entry).is_verified());
    assert!(!dir.files(&entry).partial_path().exists());

    // Warm: a source that must not be asked.
    let mut never = named("never");
    never.expect_fetch().times(0);
    assert_eq!(run(&dir, vec![never], &entry).unwrap(), path);
}

#[test]
fn a_dropped_connection_resumes_from_the_bytes_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let (entry, bytes) = fixture(300_000);
    let offsets = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = offsets.clone();
    let served = bytes.clone();
    let mut m = named("flaky");
    m.expect_fetch().times(2).returning(move |_, r| {
        seen.lock().unwrap().push((r.offset, r.if_range.clone()));
        let mut f = body(&served, r.offset);
        if r.offset == 0 {
            // Cut the first transfer short: 120 000 bytes, then a reset.
            let head = served[..120_000].to_vec();
            f.body = Box::new(Cursor::new(head).chain(Failing));
        }
        Ok(f)
    });
    run(&dir, vec![m], &entry).unwrap();
    assert_eq!(*offsets.lock().unwrap(), [(0, None), (120_000, Some("\"v1\"".to_string()))]);
}

struct Failing;
impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"))
    }
}

#[test]
fn tampered_bytes_are_discarded_and_the_next_source_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let (entry, bytes) = fixture(50_000);
    let mut evil = bytes.clone();
    evil[40_000] ^= 0xff;
    let mut bad = named("tampered mirror");
    bad.expect_fetch().times(1).returning(move |_, r| Ok(body(&evil, r.offset)));
    let mut missing = named("empty mirror");
    missing.expect_fetch().times(1).returning(|_, _| Err(SourceError::not_found()));
    let mut good = named("hub");
    let served = bytes.clone();
    good.expect_fetch()
        .with(always(), function(|r: &FetchRequest| r.offset == 0))
        .times(1)
        .returning(move |_, r| Ok(body(&served, r.offset)));
    let path = run(&dir, vec![bad, missing, good], &entry).unwrap();
    assert_eq!(fs::read(path).unwrap(), bytes);
    assert!(!dir.files(&entry).partial_path().exists(), "the tampered partial was discarded");
}

#[test]
fn when_every_source_fails_the_error_lists_each_and_nothing_is_at_the_model_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let (entry, bytes) = fixture(10_000);
    let mut html = named("html mirror");
    html.expect_fetch().returning(|_, _| {
        Ok(Fetch {
            body: Box::new(Cursor::new(b"<!DOCTYPE html><html>".to_vec())),
            start: 0,
            total: None,
            validator: None,
            location: "html".into(),
        })
    });
    let mut busy = named("busy hub");
    busy.expect_fetch().times(3).returning(|_, _| Err(SourceError::transient("HTTP 503")));
    let mut wrong = named("wrong size");
    let mut short = bytes.clone();
    short.truncate(5_000);
    wrong.expect_fetch().returning(move |_, _| Ok(body(&short, 0)));
    let err = run(&dir, vec![html, busy, wrong], &entry).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("html mirror: html did not send a GGUF file"), "{text}");
    assert!(text.contains("busy hub: HTTP 503 (gave up after 3 tries"), "{text}");
    assert!(text.contains("wrong size: mock has 5000 bytes, the catalog says 10000"), "{text}");
    assert_eq!(err.kind(), ErrorKind::Network);
    let RegistryError::AllSourcesFailed { attempts, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(&attempts[0].error, SourceError::NotGguf { .. }), "{attempts:?}");
    assert!(matches!(&attempts[1].error, SourceError::GaveUp { tries: 3, .. }), "{attempts:?}");
    assert!(
        matches!(&attempts[2].error, SourceError::WrongSize { actual: 5_000, expected: 10_000, .. }),
        "{attempts:?}"
    );
    assert!(!dir.model_path(&entry).exists());
}

#[test]
fn offline_with_nothing_local_names_the_file_to_carry_in() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let (entry, _) = fixture(10_000);
    let sources: Vec<Box<dyn ModelSource>> = Vec::new();
    let err = Resolver::new(&dir, &sources, fast(), None).ensure(&entry, Some("https://hub/x")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("https://hub/x") && text.contains(&*entry.sha256), "{text}");
    assert!(text.contains(&dir.model_path(&entry).display().to_string()), "{text}");
    assert_eq!(err.kind(), ErrorKind::NotDownloaded);
}

#[test]
fn a_changed_file_is_rehashed_and_a_corrupt_one_refetched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelsDir::new(tmp.path());
    let (entry, bytes) = fixture(20_000);
    let served = bytes.clone();
    let mut m = named("hub");
    m.expect_fetch().times(2).returning(move |_, r| Ok(body(&served, r.offset)));
    let sources: Vec<Box<dyn ModelSource>> = vec![Box::new(m)];
    let resolver = Resolver::new(&dir, &sources, fast(), None);
    let path = resolver.ensure(&entry, None).unwrap();
    // Same bytes, new mtime: re-hashed, no fetch.
    fs::write(&path, &bytes).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    assert!(!dir.files(&entry).is_verified());
    resolver.ensure(&entry, None).unwrap();
    assert!(dir.files(&entry).is_verified());
    // Corrupted in place: fetched again (the second expected fetch).
    let mut bad = bytes.clone();
    bad[19_000] ^= 1;
    fs::write(&path, &bad).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later + Duration::from_secs(5))
        .unwrap();
    resolver.ensure(&entry, None).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
}
