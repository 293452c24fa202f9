//! Connections (issue 19, item 5): Happy Eyeballs over a host's addresses, with black-holed
//! addresses standing in for a dead IPv6 route ([`BlackHole`]) and `Config::with_resolve`
//! giving `localhost` the addresses of each case.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use strata_model::{ErrorKind, Progress, ProgressFn, Report, RetryPolicy};

use crate::support::blackhole::{dead_ip, refused_addr, BlackHole};
use crate::support::setup;

/// Each `Progress::Connecting` a registry sends: (host, waited, addresses).
type Notices = Arc<Mutex<Vec<(String, Duration, Vec<SocketAddr>)>>>;

fn recording() -> (ProgressFn, Notices) {
    let notices = Notices::default();
    let seen = notices.clone();
    let f: ProgressFn = Arc::new(move |p: &Progress<'_>| {
        if let Progress::Connecting { host, waited, addresses } = p {
            seen.lock().unwrap().push((host.to_string(), *waited, addresses.to_vec()));
        }
    });
    (f, notices)
}

#[test]
fn a_dead_first_family_costs_well_under_the_connect_timeout() {
    let s = setup(1_000_000);
    let dead = BlackHole::on(dead_ip());
    let port = s.hub.hub.port();
    // `localhost` resolves to the dead address first, then to the Hub (127.0.0.1): as a host
    // with IPv6 configured but black-holed and IPv4 working.
    let config = s
        .config()
        .with_hf_endpoint(format!("https://localhost:{port}").parse().unwrap())
        .with_connect_timeout(Duration::from_secs(30))
        .with_resolve("localhost", vec![dead.addr, s.hub.hub]);
    let (progress, notices) = recording();
    let registry = s.registry(config).with_progress(progress);

    let began = Instant::now();
    let path = registry.ensure("tiny").unwrap_or_else(|e| panic!("{}", Report::new(&e)));
    let took = began.elapsed();

    // ureq alone gave the first address 20 of the 30 s; a bound far below the timeout.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(std::fs::read(&path).unwrap(), s.bytes, "the verified file");
    assert!(notices.lock().unwrap().is_empty(), "no wait worth a notice: {:?}", notices.lock().unwrap());
    let hub: Vec<_> = s.hub.seen().into_iter().filter(|r| r.host == "hub").collect();
    assert!(!hub.is_empty(), "the Hub was asked");
    for r in &hub {
        assert_eq!(r.headers["host"], format!("localhost:{port}"), "a normal request: {r:?}");
        assert!(r.path.contains("/resolve/"), "{r:?}");
    }
    assert!(!s.hub.cdn_gets().is_empty(), "the bytes came from the CDN as usual");
}

#[test]
fn every_dead_address_is_named_once_the_connect_timeout_is_over() {
    let s = setup(10_000);
    let (dead_v4, refused, dead_other) =
        (BlackHole::on([127, 0, 0, 1].into()), refused_addr(), BlackHole::on(dead_ip()));
    let port = s.hub.hub.port();
    let timeout = Duration::from_secs(4); // past the notice, which comes at 3 s
    let config = s
        .config()
        .with_hf_endpoint(format!("https://localhost:{port}").parse().unwrap())
        .with_connect_timeout(timeout)
        // One try, so that the wait measured is one connection's (each retry repeats it).
        .with_retry(RetryPolicy { attempts: 1, ..s.config().retry() })
        .with_resolve("localhost", vec![dead_v4.addr, refused, dead_other.addr]);
    let (progress, notices) = recording();
    let registry = s.registry(config).with_progress(progress);

    let began = Instant::now();
    let err = registry.ensure("tiny").unwrap_err();
    let took = began.elapsed();
    let text = Report::new(&err).to_string();

    assert_eq!(err.kind(), ErrorKind::Network, "{text}");
    assert!(text.contains(&format!("could not connect to localhost:{port}: ")), "{text}");
    assert!(text.contains(&format!("{} timed out after 4.", dead_v4.addr)), "{text}");
    assert!(text.contains(&format!("{} timed out after 3.", dead_other.addr)), "{text}");
    assert!(text.contains(&format!("{refused} refused")), "{text}");
    assert!(took >= timeout, "the connect timeout is waited out: {took:?}");
    assert!(took < timeout * 2, "about the connect timeout, not many times it: {took:?}");
    assert_eq!(s.hub.requests("hub"), 0, "no request reached the Hub");

    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 1, "one notice, at 3 s: {notices:?}");
    let (host, waited, addresses) = &notices[0];
    assert_eq!(host, &format!("localhost:{port}"));
    assert!(*waited >= Duration::from_secs(3) && *waited < timeout, "{waited:?}");
    // The first family first, then alternating (RFC 8305 §4); with no IPv6 on loopback, the
    // "other" dead address is IPv4 too and the order stays as given.
    let order = if dead_other.addr.is_ipv6() {
        [dead_v4.addr, dead_other.addr, refused]
    } else {
        [dead_v4.addr, refused, dead_other.addr]
    };
    assert_eq!(addresses, &order, "the addresses in the order tried");
}

#[test]
fn the_command_line_tells_a_slow_connection_on_stderr() {
    let s = setup(10_000);
    let dead = BlackHole::on(dead_ip());
    let mut child = s
        .cmd()
        .env("HF_ENDPOINT", format!("https://{}", dead.addr))
        .args(["download", "tiny"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The default connect timeout is 15 s: the notice comes at 3 s, long before the error.
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(12);
    let notice = loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("still connecting to ") => break Some(line),
            Ok(line) => lines.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let notice = notice.unwrap_or_else(|| panic!("no notice on stderr; saw {lines:?}"));
    assert_eq!(notice, format!("still connecting to {0} after 3 s ({0})", dead.addr));
}

/// What `ensure` says, and how long it took, when `localhost` resolves to `addresses` only,
/// with this connect timeout and this many tries.
fn failing(addresses: Vec<SocketAddr>, timeout: Duration, attempts: u32) -> (String, Duration) {
    let s = setup(10_000);
    let config = s
        .config()
        .with_hf_endpoint(format!("https://localhost:{}", s.hub.hub.port()).parse().unwrap())
        .with_connect_timeout(timeout)
        .with_retry(RetryPolicy { attempts, base: Duration::from_millis(10), ..s.config().retry() })
        .with_resolve("localhost", addresses);
    let began = Instant::now();
    let err = s.registry(config).ensure("tiny").unwrap_err();
    (Report::new(&err).to_string(), began.elapsed())
}

#[test]
fn a_host_no_address_of_which_answers_is_tried_twice_not_every_retry() {
    let dead = BlackHole::on(dead_ip());
    let timeout = Duration::from_secs(1);
    let (text, took) = failing(vec![dead.addr], timeout, 5);
    assert!(text.contains("gave up after 2 tries in a row"), "{text}");
    assert!(text.contains(&format!("{} timed out", dead.addr)), "{text}");
    assert!(took >= timeout * 2 && took < timeout * 4, "two connect timeouts, not five: {took:?}");
    // A refusal is not a black hole: retried as any transient failure.
    let (text, _) = failing(vec![refused_addr()], timeout, 3);
    assert!(text.contains("gave up after 3 tries in a row") && text.contains("refused"), "{text}");
    // IPv6 black-holed and IPv4 refusing (the server is down): each try lasts the connect
    // timeout, so two tries, not five.
    let (text, took) = failing(vec![dead.addr, refused_addr()], timeout, 5);
    assert!(text.contains("gave up after 2 tries in a row") && text.contains("refused"), "{text}");
    assert!(took < timeout * 4, "{took:?}");
}
