//! Downloads against a real HTTPS Hub look-alike (see `hub.rs`): verification, the warm path,
//! resume, faults, redirects, the token, mirrors, offline, and real processes racing.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use strata_model::{ErrorKind, RegistryError, Secret};

use crate::support::hub::{Faults, Hub};
use crate::support::{gguf_bytes, register_with, setup, sha256_hex, Run};

fn assert_nothing_at(path: &std::path::Path) {
    assert!(fs::symlink_metadata(path).is_err(), "{} must not exist", path.display());
}

#[test]
fn download_verifies_and_a_warm_call_makes_no_request_and_no_hash() {
    let s = setup(1_000_000);
    let registry = s.registry(s.config());
    let path = registry.ensure("tiny").unwrap();
    assert_eq!(path, s.model_path());
    assert_eq!(fs::read(&path).unwrap(), s.bytes);
    let seen = s.hub.seen();
    assert_eq!(seen.iter().filter(|r| r.host == "hub").count(), 1, "{seen:#?}");
    assert_eq!(s.hub.cdn_gets().len(), 1);
    assert_eq!((s.hub.connections("hub"), s.hub.connections("cdn")), (1, 1));
    assert_nothing_at(&s.partial_path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    }

    // Warm: no request. And no hash: bytes changed in place behind the stamp's back (same
    // size, inode and mtime) go unnoticed by the warm path, which proves it did not read them.
    s.hub.clear_seen();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut altered = s.bytes.clone();
    altered[500_000] ^= 1;
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &altered[500_000..500_001], 500_000).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(s.registry(s.config()).ensure("tiny").unwrap(), path);
    assert!(s.hub.seen().is_empty(), "a warm call must not touch the network");

    // `verify` re-hashes in full, catches it and deletes the file; `ensure` fetches a good
    // copy again.
    let err = registry.verify("tiny").unwrap_err();
    assert!(matches!(err, RegistryError::CorruptFile { kept: None, .. }), "{err}");
    assert_nothing_at(&path);
    registry.ensure("tiny").unwrap();
    assert_eq!(fs::read(&path).unwrap(), s.bytes);
}

#[test]
fn a_dropped_connection_resumes_with_range_and_if_range() {
    let s = setup(2_000_000);
    s.hub.set_faults(Faults { drop_at: Some(1_200_000), ..Default::default() });
    s.registry(s.config()).ensure("tiny").unwrap();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    let gets = s.hub.cdn_gets();
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert_eq!(gets[0].headers.get("range"), None);
    assert_eq!(gets[1].headers.get("range").map(String::as_str), Some("bytes=1200000-"), "only the rest");
    assert_eq!(gets[1].headers.get("if-range"), Some(&format!("\"{}\"", sha256_hex(&s.bytes))));
    assert_eq!(gets[0].headers.get("accept-encoding").map(String::as_str), Some("identity"));
}

#[test]
fn a_stalled_transfer_is_restarted() {
    let s = setup(600_000);
    s.hub.set_faults(Faults { stall_at: Some((300_000, Duration::from_secs(6))), ..Default::default() });
    let config =
        s.config().with_connect_timeout(Duration::from_secs(5)).with_read_timeout(Duration::from_millis(700));
    s.registry(config).ensure("tiny").unwrap();
    let gets = s.hub.cdn_gets();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].headers.get("range").map(String::as_str), Some("bytes=300000-"));
}

#[test]
fn a_server_that_ignores_range_makes_the_download_start_over_and_still_verify() {
    let s = setup(500_000);
    s.hub.set_faults(Faults { drop_at: Some(200_000), ignore_range: true, ..Default::default() });
    s.registry(s.config()).ensure("tiny").unwrap();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert_eq!(s.hub.cdn_gets().len(), 2);
}

#[test]
fn busy_answers_are_retried_honouring_retry_after() {
    let s = setup(100_000);
    s.hub.set_faults(Faults { statuses: vec![(429, Some(1)), (503, None)], ..Default::default() });
    let started = Instant::now();
    s.registry(s.config()).ensure("tiny").unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(s.hub.cdn_gets().len(), 3);
}

#[test]
fn tampered_bytes_are_rejected_and_nothing_reaches_the_model_path() {
    let s = setup(300_000);
    s.hub.set_faults(Faults { flip_byte: true, ..Default::default() });
    let err = s.registry(s.config()).ensure("tiny").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_nothing_at(&s.model_path());
    assert_nothing_at(&s.partial_path());
    let r = s.run(&["download", "tiny"]).code(6);
    assert!(r.stderr.contains("expected sha256"), "{}", r.stderr);
}

#[test]
fn an_html_page_is_rejected_on_its_first_bytes() {
    let s = setup(300_000);
    s.hub.set_faults(Faults { html: true, ..Default::default() });
    let err = s.registry(s.config()).ensure("tiny").unwrap_err();
    assert!(err.to_string().contains("did not send a GGUF file"), "{err}");
    assert_nothing_at(&s.model_path());
    assert_nothing_at(&s.partial_path());
}

#[test]
fn a_redirect_to_plain_http_is_refused() {
    let s = setup(10_000);
    s.hub.set_faults(Faults { redirect_http: true, ..Default::default() });
    let err = s.registry(s.config()).ensure("tiny").unwrap_err();
    assert!(err.to_string().contains("plain HTTP"), "{err}");
    assert!(s.hub.cdn_gets().is_empty());
    assert_nothing_at(&s.model_path());
}

#[test]
fn redirect_loops_and_gated_repositories_fail_clearly() {
    let s = setup(10_000);
    s.hub.set_faults(Faults { redirect_loop: true, ..Default::default() });
    let err = s.registry(s.config()).ensure("tiny").unwrap_err();
    assert!(err.to_string().contains("redirect loop"), "{err}");
    // Gated: the Hub itself says so (X-Error-Code), and nothing reaches the CDN.
    s.hub.clear_seen();
    s.hub.set_faults(Faults { hub_error: Some((403, "GatedRepo")), ..Default::default() });
    let err = s.registry(s.config()).ensure("tiny").unwrap_err();
    assert!(err.to_string().contains("is gated") && err.to_string().contains("HF_TOKEN"), "{err}");
    assert_eq!(s.hub.cdn_gets().len(), 0);
    assert_eq!(s.hub.requests("hub"), 1, "a gated answer is not retried");
}

/// A 403 from the file host is an expired or refused signed URL, not a gated repository:
/// the URL is resolved again (the token still goes to the Hub only) and the download ends.
#[test]
fn a_file_host_403_resolves_the_url_again() {
    let s = setup(50_000);
    s.hub.set_faults(Faults { statuses: vec![(403, None)], ..Default::default() });
    let registry = s.registry(s.config().with_hf_token(Some(Secret::new("hf_token_for_the_hub"))));
    registry.ensure("tiny").unwrap();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    let seen = s.hub.seen();
    assert_eq!(s.hub.requests("hub"), 2, "{seen:#?}");
    assert!(seen
        .iter()
        .filter(|r| r.host == "hub")
        .all(|r| r.method == "HEAD" && r.headers.contains_key("authorization")));
    assert!(seen.iter().filter(|r| r.host == "cdn").all(|r| !r.headers.contains_key("authorization")));
    let sigs: Vec<String> =
        s.hub.cdn_gets().iter().map(|r| r.path.rsplit('=').next().unwrap().to_string()).collect();
    assert_eq!(sigs.len(), 2);
    assert_ne!(sigs[0], sigs[1], "the second request uses the new signed URL");
}

#[test]
fn the_token_goes_to_the_hub_only_and_never_into_output() {
    let s = setup(50_000);
    let secret = "hf_very_secret_token_123";
    let registry = s.registry(s.config().with_hf_token(Some(Secret::new(secret))));
    assert!(!format!("{registry:?}").contains(secret));
    registry.ensure("tiny").unwrap();
    let seen = s.hub.seen();
    let hub = seen.iter().find(|r| r.host == "hub").unwrap();
    assert_eq!(hub.headers.get("authorization"), Some(&format!("Bearer {secret}")));
    for cdn in seen.iter().filter(|r| r.host == "cdn") {
        assert_eq!(cdn.headers.get("authorization"), None, "the token crossed to the CDN host");
    }
    // Through the binary, with a failure: nothing prints the token.
    s.hub.set_faults(Faults { flip_byte: true, ..Default::default() });
    fs::remove_file(s.model_path()).unwrap();
    let r = Run::of(s.cmd().env("HF_TOKEN", secret).args(["download", "tiny"]).output().unwrap()).code(6);
    assert!(!r.stderr.contains(secret) && !r.stdout.contains(secret));
}

#[test]
fn a_mirror_serves_first_and_the_hub_is_not_needed() {
    let s = setup(200_000);
    let mirror = s.sb.tmp.path().join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    fs::write(mirror.join(&s.file), &s.bytes).unwrap();
    // A Hub endpoint nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = s
        .config()
        .with_hf_endpoint(format!("https://{dead}").parse().unwrap())
        .with_mirrors(vec![mirror.display().to_string()]);
    s.registry(config).ensure("tiny").unwrap();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);

    // The same through the binary and STRATA_MODELS_MIRROR (as a file:// URL).
    fs::remove_file(s.model_path()).unwrap();
    let out = Run::of(
        s.cmd()
            .env("HF_ENDPOINT", format!("https://{dead}"))
            .env("STRATA_MODELS_MIRROR", format!("file://{}", mirror.display()))
            .args(["download", "tiny", "--quiet"])
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(out.stdout.trim_end(), s.model_path().to_str().unwrap());

    // A tampered mirror is skipped for the Hub.
    fs::remove_file(s.model_path()).unwrap();
    let mut bad = s.bytes.clone();
    bad[150_000] ^= 1;
    fs::write(mirror.join(&s.file), &bad).unwrap();
    s.registry(s.config().with_mirrors(vec![mirror.display().to_string()])).ensure("tiny").unwrap();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert_eq!(s.hub.cdn_gets().len(), 1);
}

#[test]
fn offline_without_a_mirror_fails_fast_with_no_connection() {
    let s = setup(10_000);
    let err = s.registry(s.config().with_offline(true)).ensure("tiny").unwrap_err();
    assert!(matches!(err, RegistryError::Offline { .. }), "{err}");
    let r = Run::of(s.cmd().env("STRATA_OFFLINE", "1").args(["download", "tiny"]).output().unwrap()).code(4);
    assert!(r.stderr.contains(&sha256_hex(&s.bytes)) && r.stderr.contains("place it at"), "{}", r.stderr);
    let r = Run::of(s.cmd().env("HF_HUB_OFFLINE", "1").args(["download", "tiny"]).output().unwrap()).code(4);
    assert!(r.stderr.contains("network access is off"), "{}", r.stderr);
    assert!(s.hub.seen().is_empty(), "offline made a connection");
}

#[test]
fn the_engine_call_refuses_an_unsupported_architecture_before_downloading() {
    let s = setup(10_000);
    let err = s.registry(s.config()).ensure_for_engine("tiny", &["qwen3", "gemma-embedding"]).unwrap_err();
    assert!(matches!(&err, RegistryError::UnsupportedArch { arch, .. } if arch == "bert"), "{err}");
    assert!(s.hub.seen().is_empty());
    s.registry(s.config()).ensure_for_engine("tiny", &["BERT"]).unwrap();
}

#[test]
fn processes_racing_for_one_model_download_it_once() {
    let s = setup(3_000_000);
    // Slow enough that the processes overlap.
    s.hub.set_faults(Faults { rate: Some(6_000_000), ..Default::default() });
    let children: Vec<_> = (0..8)
        .map(|_| {
            s.cmd().args(["download", "tiny"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let outputs: Vec<Run> = children.into_iter().map(|c| Run::of(c.wait_with_output().unwrap())).collect();
    for out in &outputs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout.trim_end(), s.model_path().to_str().unwrap());
    }
    assert_eq!(s.hub.cdn_gets().len(), 1, "one transfer for eight processes");
    assert!(outputs.iter().any(|o| o.stderr.contains("which is downloading tiny")), "a waiter says so");
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
}

#[test]
fn a_killed_download_resumes_in_the_next_process() {
    let s = setup(4_000_000);
    s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let mut child =
        s.cmd().args(["download", "tiny"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(s.partial_path()).map_or(0, |m| m.len()) < 1_000_000 {
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let kept = fs::metadata(s.partial_path()).unwrap().len();
    assert!((1_000_000..4_000_000).contains(&kept), "{kept}");
    assert_nothing_at(&s.model_path());
    let list = s.run(&["list"]).ok().stdout;
    assert!(list.lines().any(|l| l.contains("tiny") && l.contains("partial")), "{list}");

    s.hub.set_faults(Faults::default());
    s.hub.clear_seen();
    s.run(&["download", "tiny"]).ok();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    let gets = s.hub.cdn_gets();
    assert_eq!(gets.len(), 1);
    let range = gets[0].headers.get("range").expect("a ranged request");
    let from: u64 = range.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
    assert!(from >= kept, "resumed from {from}, {kept} bytes were on disk");

    let r = s.run(&["verify", "tiny"]).ok();
    assert!(r.stdout.starts_with("ok"), "{}", r.stdout);
    let r = s.run(&["list", "--json"]).ok();
    assert!(r.json()["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "tiny" && m["status"] == "downloaded"));
}

/// A minimal HTTP CONNECT proxy that records the targets it was asked for.
fn connect_proxy() -> (std::net::SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = targets.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                seen.lock().unwrap().push(target.clone());
                let Ok(upstream) = std::net::TcpStream::connect(&target) else { return };
                let mut client_w = client;
                client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let (mut up_r, mut up_w) = (upstream.try_clone().unwrap(), upstream);
                let mut client_r = reader.into_inner();
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_r, &mut up_w);
                    let _ = up_w.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut up_r, &mut client_w);
                let _ = client_w.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (addr, targets)
}

#[test]
fn https_proxy_is_used_and_no_proxy_bypasses_it() {
    let s = setup(100_000);
    let (proxy, targets) = connect_proxy();
    let r = Run::of(
        s.cmd()
            .env("HTTPS_PROXY", format!("http://{proxy}"))
            .args(["download", "tiny", "--quiet"])
            .output()
            .unwrap(),
    );
    r.ok();
    let seen = targets.lock().unwrap().clone();
    assert!(seen.iter().any(|t| t.starts_with("127.0.0.1:")), "the Hub went through the proxy: {seen:?}");
    assert!(seen.iter().any(|t| t.starts_with("127.0.0.2:")), "the CDN went through the proxy: {seen:?}");

    fs::remove_file(s.model_path()).unwrap();
    targets.lock().unwrap().clear();
    Run::of(
        s.cmd()
            .env("HTTPS_PROXY", format!("http://{proxy}"))
            .env("NO_PROXY", "127.0.0.1,127.0.0.2")
            .args(["download", "tiny", "--quiet"])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(targets.lock().unwrap().is_empty(), "NO_PROXY hosts bypass the proxy");
}

#[test]
fn https_mirror_and_directory_push_round_trip() {
    let hub = crate::support::hub::Hub::start();
    let bytes = gguf_bytes("bert", 384, 300_000, 10);
    let (sb, file, dead) = crate::support::registered_sandbox(&bytes);
    hub.add_file(&file, bytes.clone());
    let base = format!("https://{}/cdn", hub.cdn);
    let r = Run::of(
        sb.cmd()
            .env("HF_ENDPOINT", &dead)
            .env("SSL_CERT_FILE", &hub.ca_file)
            .env("STRATA_MODELS_MIRROR", &base)
            .args(["download", "tiny", "--quiet"])
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(r.stdout.trim_end(), sb.models().join(&file).to_str().unwrap());
    let target = sb.tmp.path().join("pushed");
    let r = sb.run(&["mirror", "push", target.to_str().unwrap(), "--all"]).ok();
    assert!(r.stdout.starts_with("copied"), "{}", r.stdout);
    assert!(fs::read(target.join(&file)).unwrap() == bytes);
    let r = sb.run(&["mirror", "push", target.to_str().unwrap(), "--all"]).ok();
    assert!(r.stdout.starts_with("present"), "{}", r.stdout);
    let leftovers: Vec<_> = fs::read_dir(&target).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary files: {leftovers:?}");
}

/// The byte ranges the CDN was asked for, as (start, end exclusive).
fn requested_ranges(hub: &Hub, size: u64) -> Vec<(u64, u64)> {
    hub.cdn_gets()
        .iter()
        .map(|g| match g.headers.get("range").and_then(|r| r.strip_prefix("bytes=")) {
            None => (0, size),
            Some(r) => {
                let (a, b) = r.split_once('-').unwrap();
                (a.parse().unwrap(), b.parse::<u64>().map_or(size, |b| b + 1))
            }
        })
        .collect()
}

/// Requests for bytes already asked for, which must be parts of split ranges: a request `a..b`
/// whose later part `m..e` (a < m, e ≤ b: a range can be split again) was taken over by an
/// idle connection. Panics on any other overlap. Returns the number of splits.
fn splits(ranges: &[(u64, u64)]) -> usize {
    let mut n = 0;
    for (i, &(a, b)) in ranges.iter().enumerate() {
        for &(c, d) in &ranges[..i] {
            if a < d && c < b {
                assert!(c < a && b <= d, "{a}..{b} overlaps {c}..{d} and is not a split of it: {ranges:?}");
                n += 1;
            }
        }
    }
    n
}

#[test]
fn parallel_ranges_are_written_at_their_offsets_and_verified() {
    let s = setup(24 << 20);
    let registry = s.registry(s.config().with_connections(Some(4)));
    registry.ensure("tiny").unwrap();
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
    let ranges = requested_ranges(&s.hub, s.bytes.len() as u64);
    assert!(ranges.len() >= 4, "{ranges:?}");
    assert!(
        ranges.iter().all(|&(a, b)| b - a < s.bytes.len() as u64),
        "every request is a range: {ranges:?}"
    );
    // Each byte is asked for once, but where a range was split off a slow one (which happens
    // on a loaded machine): then the slow range's request was cut at the split.
    let split = splits(&ranges);
    let fetched: u64 = ranges.iter().map(|(a, b)| b - a).sum();
    if split == 0 {
        assert_eq!(fetched, s.bytes.len() as u64, "each byte asked for once");
    }
    assert_nothing_at(&s.partial_path());
    assert_nothing_at(&s.sb.models().join(".strata").join(format!("{}.part.ranges", s.file)));
}

#[test]
fn a_dropped_range_is_resumed_and_a_server_without_ranges_falls_back_to_one_connection() {
    let s = setup(16 << 20);
    s.hub.set_faults(Faults { drop_at: Some(5 << 20), ..Default::default() });
    s.registry(s.config().with_connections(Some(4))).ensure("tiny").unwrap();
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
    let size = s.bytes.len() as u64;
    let refetched = s.hub.bytes_sent().saturating_sub(size);
    assert!(refetched < 1 << 20, "only the rest of the broken range was sent again: {refetched} extra bytes");

    let s = setup(16 << 20);
    s.hub.set_faults(Faults { ignore_range: true, ..Default::default() });
    s.registry(s.config().with_connections(Some(4))).ensure("tiny").unwrap();
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
}

#[test]
fn a_slow_connection_has_its_range_split_onto_another() {
    let s = setup(48 << 20);
    // The first transfer crawls; the others are fast.
    s.hub.set_faults(Faults { slow_first: Some(1_000_000), ..Default::default() });
    s.registry(s.config().with_connections(Some(3))).ensure("tiny").unwrap();
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
    let ranges = requested_ranges(&s.hub, s.bytes.len() as u64);
    let (first_start, first_end) = ranges[0];
    assert!(
        ranges[1..].iter().any(|&(a, _)| a > first_start && a < first_end),
        "part of the slow range was taken over by another connection: {ranges:?}"
    );
}

#[test]
fn the_rate_cap_holds_across_connections() {
    let s = setup(3_000_000);
    let started = Instant::now();
    s.registry(s.config().with_connections(Some(2)).with_max_rate(Some(2_000_000))).ensure("tiny").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1400), "3 MB at 2 MB/s takes about 1.5 s");
}

#[test]
fn a_killed_parallel_download_resumes_only_the_missing_ranges() {
    let s = setup(40 << 20);
    s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let mut child = s
        .cmd()
        .args(["download", "tiny", "--connections", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ranges_file = s.sb.models().join(".strata").join(format!("{}.part.ranges", s.file));
    let deadline = Instant::now() + Duration::from_secs(30);
    let progress = |p: &std::path::Path| -> u64 {
        fs::read_to_string(p)
            .map(|t| t.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()).sum())
            .unwrap_or(0)
    };
    while progress(&ranges_file) < 8 << 20 {
        assert!(Instant::now() < deadline, "the download did not progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved = progress(&ranges_file);
    // The regions recorded as on disk when the process died.
    let done: Vec<(u64, u64)> = fs::read_to_string(&ranges_file)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let n: Vec<u64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (n[0], n[0] + n[2])
        })
        .filter(|(a, b)| b > a)
        .collect();
    assert_nothing_at(&s.model_path());
    let list = s.run(&["list", "--json"]).ok().json();
    let row = list["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap().clone();
    assert_eq!(row["status"], "partial");
    assert!(row["partial_bytes"].as_u64().unwrap() >= saved);

    s.hub.set_faults(Faults::default());
    s.hub.clear_seen();
    let r = s.run(&["download", "tiny", "--connections", "4"]).ok();
    assert!(fs::read(s.model_path()).unwrap() == s.bytes);
    let size = s.bytes.len() as u64;
    for (a, b) in requested_ranges(&s.hub, size) {
        for &(da, db) in &done {
            assert!(b <= da || a >= db, "bytes {a}..{b} were asked again, but {da}..{db} were on disk");
        }
    }
    // Bytes sent past the end of a request that was cut (the range being resumed when the
    // process died ends early; a slow range split off) are the only extra: what one response
    // can have in flight, per cut.
    let sent = s.hub.bytes_sent();
    let cuts = 1 + splits(&requested_ranges(&s.hub, size)) as u64;
    assert!(
        sent <= size - saved + cuts * (4 << 20),
        "{sent} bytes sent again; {saved} of {size} were saved, {cuts} cut responses\n{}",
        r.stderr
    );
}

#[test]
fn a_file_name_with_reserved_characters_downloads_through_an_encoded_url() {
    let s = setup(50_000);
    // Reserved in URLs, yet valid on every filesystem (`?` is not: register refuses it).
    let odd = "odd name #1%.gguf";
    crate::support::register_file(&s.sb, "odd", odd, &s.bytes);
    s.hub.add_file(odd, s.bytes.clone());
    let path = s.registry(s.config()).ensure("odd").unwrap();
    assert_eq!(path, s.sb.models().join(odd));
    assert_eq!(fs::read(&path).unwrap(), s.bytes);
    let url = s.run(&["info", "odd", "--json"]).ok().json()["url"].as_str().unwrap().to_string();
    assert!(url.ends_with("/odd%20name%20%231%25.gguf"), "{url}");
}

/// After `remove`, nothing of the model is left under `.strata/` but its lock file: no
/// stamp, no provenance, no last-use record, no partial.
#[test]
fn remove_leaves_only_the_lock_file() {
    let s = setup(3_000_000);
    s.hub.set_faults(Faults { drop_at: Some(2_000_000), ..Default::default() });
    s.run(&["download", "tiny", "--quiet"]).ok();
    s.run(&["path", "tiny"]).ok();
    let state = s.sb.models().join(".strata");
    let files = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let before = files(&state);
    assert!(before.iter().any(|n| n.ends_with(".verified")) && before.iter().any(|n| n.ends_with(".origin")));
    s.run(&["remove", "tiny"]).ok();
    let left: Vec<String> = files(&state).into_iter().filter(|n| n.starts_with(&s.file)).collect();
    assert_eq!(left, [format!("{}.lock", s.file)], "everything of the model but its lock goes");
    assert_nothing_at(&s.model_path());
    let r = s.run(&["remove", "tiny"]).ok();
    assert!(r.stdout.contains("was not downloaded"), "{}", r.stdout);
}

/// The download as a terminal `cols` columns wide shows it (under `script`, a real pty; the
/// CDN sends slowly enough for the bar to draw), with `TERM` as given (else unset): each
/// screen line, escapes removed.
fn terminal_lines(cols: u16, term: Option<&str>) -> Vec<String> {
    let s = setup(3_000_000);
    s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let bin = env!("CARGO_BIN_EXE_strata-model");
    let mut c = std::process::Command::new("script");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", s.sb.tmp.path().join("home"))
        .env("STRATA_MODELS_DIR", s.sb.models())
        .env("HF_ENDPOINT", s.hub.endpoint())
        .env("SSL_CERT_FILE", &s.hub.ca_file);
    if let Some(term) = term {
        c.env("TERM", term);
    }
    let line = format!("stty cols {cols} rows 24; {bin} download tiny --connections 1");
    let out = Run::of(c.args(["-qec", &line, "/dev/null"]).output().unwrap()).ok();
    let mut plain = String::new();
    let mut chars = out.stdout.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\x1b' {
            // CSI: ESC [ parameters final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                while chars.next().is_some_and(|c| !c.is_ascii_alphabetic()) {}
            }
        } else {
            plain.push(ch);
        }
    }
    plain.split(['\r', '\n']).map(str::to_string).filter(|l| !l.trim().is_empty()).collect()
}

/// On a terminal the bar fits its width, in the decimal units of `list`, and gives way to a
/// short form on a narrow one; a verified download ends with one line that says so.
#[test]
fn the_progress_bar_fits_the_terminal_and_speaks_in_decimal_units() {
    let wide = terminal_lines(80, Some("xterm"));
    let bars: Vec<&String> = wide.iter().filter(|l| l.contains('[') && l.contains("MB/s")).collect();
    assert!(!bars.is_empty(), "{wide:#?}");
    for l in &wide {
        assert!(l.chars().count() <= 80, "{} columns: {l:?}", l.chars().count());
        assert!(!l.contains("MiB"), "{l:?}");
    }
    assert!(wide.iter().any(|l| l.starts_with("✓ tiny 3.00 MB, SHA-256 verified, ")), "{wide:#?}");

    let narrow = terminal_lines(50, Some("xterm"));
    let short: Vec<&String> = narrow.iter().filter(|l| l.contains('%') && l.contains("MB/s")).collect();
    assert!(!short.is_empty(), "{narrow:#?}");
    assert!(narrow.iter().all(|l| l.chars().count() <= 50 && !l.contains('[')), "{narrow:#?}");

    // A terminal that cannot draw a bar (TERM unset or dumb: a container's `-t` without TERM)
    // gets the plain lines of a log, not silence.
    for term in [None, Some("dumb")] {
        let plain = terminal_lines(80, term);
        assert!(plain[0].starts_with("downloading tiny (3.00 MB) from Hugging Face"), "{term:?}: {plain:#?}");
        assert!(plain.iter().any(|l| l.starts_with("tiny: ") && l.contains("MB/s")), "{term:?}: {plain:#?}");
        assert!(!plain.iter().any(|l| l.contains('[')), "{term:?}: {plain:#?}");
        assert!(plain.iter().any(|l| l.starts_with("✓ tiny 3.00 MB, SHA-256 verified, ")), "{plain:#?}");
    }
}

/// Off a terminal (a CI log), a download says when it starts, a line at most every 10 %
/// (or 10 s), and when it is verified: plain text, no control characters.
#[test]
fn off_a_terminal_progress_is_a_few_plain_lines() {
    let s = setup(4_000_000);
    s.hub.set_faults(Faults { rate: Some(2_000_000), ..Default::default() });
    let r = s.run(&["download", "tiny", "--connections", "1"]).ok();
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(lines[0].starts_with("downloading tiny (4.00 MB) from Hugging Face https://"), "{lines:#?}");
    let progress: Vec<&&str> =
        lines.iter().filter(|l| l.starts_with("tiny: ") && l.contains("% (")).collect();
    assert!((1..=10).contains(&progress.len()), "{lines:#?}");
    assert!(
        progress.iter().all(|l| l.contains("MB/s") && l.ends_with(" left")),
        "a measured speed: {lines:#?}"
    );
    assert!(lines.last().unwrap().starts_with("✓ tiny 4.00 MB, SHA-256 verified, "), "{lines:#?}");
    assert!(!r.stderr.contains('\r') && !r.stderr.contains('\x1b'), "{:?}", r.stderr);
    let quiet = s.run(&["remove", "tiny"]).ok();
    assert!(quiet.code == 0);
    let r = s.run(&["-q", "download", "tiny"]).ok();
    assert!(r.stderr.is_empty(), "-q is global: {:?}", r.stderr);
}

/// Resolve once, keep connections alive: with N connections and no fault, the Hub is asked
/// once, at most N connections reach the file host, and they carry every range between them.
#[test]
fn n_connections_open_at_most_n_and_the_hub_is_asked_once() {
    let s = setup(12 << 20);
    for n in [4usize, 2] {
        s.hub.clear_seen();
        let before = s.hub.connections("cdn");
        let _ = fs::remove_file(s.model_path());
        s.registry(s.config().with_connections(Some(n))).ensure("tiny").unwrap();
        assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
        let gets = s.hub.cdn_gets();
        let opened = s.hub.connections("cdn") - before;
        assert_eq!(s.hub.requests("hub"), 1, "one resolution");
        assert!(opened as usize <= n, "{opened} connections opened for {n}");
        assert!(
            gets.len() > n,
            "{} range requests for {n} connections: the file was cut into ranges",
            gets.len()
        );
        let mut per_conn = std::collections::HashMap::new();
        for g in &gets {
            *per_conn.entry(g.conn).or_insert(0) += 1;
        }
        assert!(per_conn.values().any(|&k| k > 1), "connections are reused between ranges: {per_conn:?}");
        assert!(gets.iter().all(|g| g.path.contains("?sig=")), "ranges go straight to the resolved URL");
    }
}

/// A download that received nothing (the Hub refuses every resolve) reports no partial and
/// leaves none, although a parallel plan preallocates the whole file first; one that received
/// some bytes reports exactly those.
#[test]
fn a_failed_download_reports_the_bytes_it_received_not_the_preallocated_length() {
    let s = setup(12 << 20);
    s.hub.set_faults(Faults { statuses: vec![(500, None); 64], ..Default::default() });
    let err = s.registry(s.config().with_connections(Some(4))).ensure("tiny").unwrap_err();
    match &err {
        RegistryError::AllSourcesFailed { partial_kept, .. } => assert_eq!(*partial_kept, None, "{err}"),
        other => panic!("{other}"),
    }
    assert!(!err.to_string().contains("were kept"), "{err}");
    assert_nothing_at(&s.partial_path());

    let s = setup(12 << 20);
    let faults = Faults {
        statuses: vec![(500, None); 64],
        statuses_after: 1,
        drop_at: Some(5 << 20),
        ..Default::default()
    };
    s.hub.set_faults(faults);
    let err = s.registry(s.config().with_connections(Some(1))).ensure("tiny").unwrap_err();
    let kept = match &err {
        RegistryError::AllSourcesFailed { partial_kept: Some(k), .. } => *k,
        other => panic!("expected a kept partial: {other}"),
    };
    assert!(kept > 0 && kept < s.bytes.len() as u64, "{kept}");
    assert_eq!(fs::metadata(s.partial_path()).unwrap().len(), kept, "the partial holds exactly what it says");
}

/// A certificate the machine does not trust is not retried: one attempt, and the message says
/// to set SSL_CERT_FILE. A file no source has says where it was looked for and what to check.
#[test]
fn untrusted_certificates_and_missing_files_say_what_to_check() {
    let s = setup(200_000);
    let started = Instant::now();
    let r =
        Run::of(s.sb.cmd().env("HF_ENDPOINT", s.hub.endpoint()).args(["download", "tiny"]).output().unwrap())
            .code(5);
    assert!(r.stderr.contains("SSL_CERT_FILE"), "{}", r.stderr);
    assert!(!r.stderr.contains("retrying"), "a certificate error is not transient: {}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(s.hub.requests("hub"), 0, "no request got through the handshake");
    assert_eq!(r.stderr.matches("SSL_CERT_FILE").count(), 1, "said once: {}", r.stderr);

    s.hub.set_faults(Faults { hub_error: Some((404, "")), ..Default::default() });
    let r = s.run(&["download", "tiny"]).code(5);
    assert!(
        r.stderr.contains(&format!("{}/test-org/test-repo/resolve/", s.hub.endpoint())),
        "the URL: {}",
        r.stderr
    );
    assert!(r.stderr.contains("catalog check"), "what to check: {}", r.stderr);
}

/// A custom entry that names the wrong arch and dimension: `info` and `verify` warn, and the
/// engine call checks the file's own header rather than trusting the entry.
#[test]
fn the_files_header_has_the_last_word_on_arch_and_dimension() {
    let s = setup(50_000); // the file says bert, 384
    let sb = &s.sb;
    let bytes = &s.bytes;
    sb.run(&["unregister", "tiny"]).ok();
    register_with(sb, "tiny", &s.file, bytes, &["--arch", "llama", "--dim", "4096"]).ok();
    let err = s.registry(s.config()).ensure_for_engine("tiny", &["llama"]).unwrap_err();
    assert!(matches!(&err, RegistryError::UnsupportedArch { arch, .. } if arch == "bert"), "{err}");
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes, "the file was downloaded and stays");
    let info = s.run(&["info", "tiny"]).ok();
    assert!(
        info.stdout.contains("the file's architecture is `bert`, the catalog says `llama`"),
        "{}",
        info.stdout
    );
    assert!(
        info.stdout.contains("the file's embedding length is 384, the catalog says 4096"),
        "{}",
        info.stdout
    );
    let verify = s.run(&["verify", "tiny"]).ok();
    assert!(verify.stdout.contains("warning: the file's architecture is `bert`"), "{}", verify.stdout);

    // An entry that names no arch is judged by the header alone.
    sb.run(&["unregister", "tiny"]).ok();
    register_with(sb, "tiny", &s.file, bytes, &[]).ok();
    let engine = s.registry(s.config());
    assert_eq!(engine.ensure_for_engine("tiny", &["bert"]).unwrap(), s.model_path());
    let err = engine.ensure_for_engine("tiny", &["llama"]).unwrap_err();
    assert!(matches!(&err, RegistryError::UnsupportedArch { arch, .. } if arch == "bert"), "{err}");
}

/// `verify` of a file corrupted on disk says which file and what to run, and deletes it, so
/// that no command takes it for a good file.
#[test]
fn a_corrupt_file_found_by_verify_is_deleted_and_said_so() {
    let s = setup(50_000);
    s.run(&["download", "tiny", "-q"]).ok();
    let mut bytes = fs::read(s.model_path()).unwrap();
    bytes[30_000] ^= 1;
    fs::write(s.model_path(), &bytes).unwrap();
    let r = s.run(&["verify", "tiny"]).code(6);
    let path = s.model_path().display().to_string();
    assert!(r.stdout.contains(&format!("{path} is corrupt")), "{}", r.stdout);
    assert!(r.stdout.contains("it was deleted; run `strata-model download tiny`"), "{}", r.stdout);
    assert_nothing_at(&s.model_path());
    s.run(&["path", "tiny"]).code(4);
    let list = s.run(&["list", "--json"]).ok().json();
    let tiny = list["models"].as_array().unwrap().iter().find(|m| m["name"] == "tiny").unwrap().clone();
    assert_eq!(tiny["status"], "not downloaded");
}

/// `sources` asks each source for one catalog file: a mirror that answers but at the wrong
/// path fails its check (and the command exits 5), while the right one passes.
#[test]
fn sources_checks_that_each_mirror_has_a_catalog_file() {
    let s = setup(100_000);
    let mirrors = format!("https://{}/wrong,https://{}/cdn", s.hub.cdn, s.hub.cdn);
    let r =
        Run::of(s.cmd().env("STRATA_MODELS_MIRROR", &mirrors).args(["sources"]).output().unwrap()).code(5);
    let text = &r.stdout;
    let wrong = text.find("/wrong").unwrap();
    let right = text.find("/cdn\n").unwrap();
    assert!(
        text[wrong..right].contains("FAILED") && text[wrong..right].contains("has no tiny-Q8_0.gguf"),
        "{text}"
    );
    assert!(text[right..].contains("; has tiny-Q8_0.gguf"), "{text}");
    assert!(r.stderr.contains("1 of 3 sources failed their check"), "{}", r.stderr);
    let doc =
        Run::of(s.cmd().env("STRATA_MODELS_MIRROR", &mirrors).args(["sources", "--json"]).output().unwrap())
            .code(5)
            .json();
    let oks: Vec<bool> =
        doc["sources"].as_array().unwrap().iter().map(|c| c["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [false, true, true]);
}

/// The binary, run so that `dir` cannot be written: as `nobody` through `setpriv` when the
/// tests run as root (root writes anywhere), else as is after `chmod -R a-w`. `None` (and a
/// printed reason) when that is impossible here; under CI=true that fails instead.
fn read_only_run(s: &crate::support::Setup, dir: &std::path::Path) -> Option<impl Fn(&[&str]) -> Run> {
    use std::os::unix::fs::PermissionsExt;
    let root =
        std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if root && std::process::Command::new("setpriv").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "setpriv (util-linux) is needed under CI=true");
        eprintln!("skipped: running as root without setpriv, a directory cannot be made read-only");
        return None;
    }
    // `nobody` must reach the binary and the directory: both under the sandbox, 0755.
    let bin = s.sb.tmp.path().join("strata-model");
    fs::copy(env!("CARGO_BIN_EXE_strata-model"), &bin).unwrap();
    fs::set_permissions(s.sb.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let status = std::process::Command::new("chmod").args(["-R", "a-w,a+rX"]).arg(dir).status().unwrap();
    assert!(status.success());
    let (dir, home) = (dir.to_path_buf(), s.sb.tmp.path().join("home"));
    Some(move |args: &[&str]| {
        let mut c = if root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("STRATA_MODELS_DIR", &dir)
            .env("STRATA_OFFLINE", "1")
            .args(args);
        Run::of(c.output().unwrap())
    })
}

/// A read-only models directory of correct files (a container image, copied in without our
/// state folder): `download`, `path` and `verify` serve them, hashing once with a one-line
/// notice; a wrong file there is an error that names it, and a missing one says what to do.
#[cfg(unix)]
#[test]
fn a_read_only_models_directory_of_correct_files_serves_them() {
    let s = setup(300_000);
    s.run(&["download", "tiny", "-q"]).ok();
    let image = s.sb.tmp.path().join("image");
    fs::create_dir_all(&image).unwrap();
    fs::copy(s.sb.models().join("catalog.json"), image.join("catalog.json")).unwrap();
    fs::copy(s.model_path(), image.join(&s.file)).unwrap();
    let wrong = crate::support::register(&s.sb, "wrong", &gguf_bytes("bert", 8, 200_000, 1));
    fs::copy(s.sb.models().join("catalog.json"), image.join("catalog.json")).unwrap();
    fs::write(image.join(&wrong), gguf_bytes("bert", 8, 200_000, 2)).unwrap();
    // Writable, without a state folder yet: verify makes one for its stamp.
    let fresh = s.sb.tmp.path().join("fresh");
    fs::create_dir_all(&fresh).unwrap();
    fs::copy(image.join("catalog.json"), fresh.join("catalog.json")).unwrap();
    fs::copy(s.model_path(), fresh.join(&s.file)).unwrap();
    Run::of(s.sb.cmd().env("STRATA_MODELS_DIR", &fresh).args(["verify", "tiny"]).output().unwrap()).ok();
    assert!(fresh.join(".strata").join(format!("{}.verified", s.file)).exists());
    let Some(run) = read_only_run(&s, &image) else { return };
    s.hub.clear_seen();

    let r = run(&["download", "tiny"]).ok();
    assert_eq!(r.stdout.trim_end(), image.join(&s.file).to_str().unwrap());
    let notice = format!("{} is read-only: verifying tiny (300 kB) once for this process", image.display());
    assert!(r.stderr.contains(&notice), "{}", r.stderr);
    assert_eq!(r.stderr.lines().filter(|l| l.contains("read-only")).count(), 1, "one line: {}", r.stderr);
    let r = run(&["path", "tiny"]).ok();
    assert_eq!(r.stdout.trim_end(), image.join(&s.file).to_str().unwrap());
    assert!(run(&["verify", "tiny"]).ok().stdout.starts_with("ok"));
    assert!(run(&["list"]).ok().stdout.contains("Total: 2 of 11 models downloaded"));

    let r = run(&["download", "wrong"]).code(6);
    assert!(
        r.stderr.contains("is corrupt") && r.stderr.contains("the models directory is read-only"),
        "{}",
        r.stderr
    );
    assert!(image.join(&wrong).exists(), "nothing can be deleted there");
    let r = run(&["download", "minilm"]).code(7);
    assert!(r.stderr.contains("set STRATA_MODELS_DIR to a writable directory"), "{}", r.stderr);
    assert!(s.hub.seen().is_empty(), "no request");
    assert!(!image.join(".strata").exists(), "nothing written");
}

/// A progress callback that panics on a connection's thread (a host's bug) ends the call with
/// that panic, promptly: the other connections stop, nothing reaches the model path, and what
/// was received stays resumable for the next call.
#[test]
fn a_progress_callback_that_panics_ends_the_call_without_hanging_or_a_wrong_file() {
    let s = setup(12 << 20);
    s.hub.set_faults(Faults { rate: Some(8_000_000), ..Default::default() });
    let panicky: strata_model::ProgressFn = std::sync::Arc::new(|p: &strata_model::Progress<'_>| {
        if let strata_model::Progress::Advanced { done, .. } = p {
            if *done > 2 << 20 {
                panic!("a host's callback failed");
            }
        }
    });
    let registry = s.registry(s.config().with_connections(Some(4))).with_progress(panicky);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| registry.ensure("tiny")));
        let said = outcome.err().map(|p| {
            p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned())
        });
        let _ = tx.send(said);
    });
    let said = rx.recv_timeout(Duration::from_secs(60)).expect("the call hung");
    let said = said.expect("the callback's panic reaches the caller");
    assert_eq!(said.as_deref(), Some("a host's callback failed"), "the panic as it was");
    assert_nothing_at(&s.model_path());
    s.hub.set_faults(Faults::default());
    s.run(&["download", "tiny"]).ok();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
}
