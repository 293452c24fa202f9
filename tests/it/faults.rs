//! The fault table: every fault the Hub look-alike can inject, between the client and the
//! HTTPS Hub, with the outcome asserted (a verified file, or a clear typed error with nothing
//! at the model path and the partial kept when resumable) and the bytes re-fetched measured.
//! The table is printed and written to `target/fault-table.md`.

use std::fs;
use std::time::Duration;

use strata_model::{ErrorKind, RegistryError, RetryPolicy, SourceError};

use crate::support::hub::{Faults, Hub, RangeLie};
use crate::support::setup;

enum Expect {
    Verified,
    /// `is` checks the typed error of the source that failed; `says` is what the table shows.
    Fails {
        kind: ErrorKind,
        is: fn(&SourceError) -> bool,
        says: &'static str,
        partial_kept: bool,
    },
}

fn checksum(e: &SourceError) -> bool {
    matches!(e, SourceError::ChecksumMismatch { .. })
}
fn gave_up(e: &SourceError) -> bool {
    matches!(e, SourceError::GaveUp { .. })
}
fn not_found(e: &SourceError) -> bool {
    e.is_not_found()
}
fn refused(e: &SourceError) -> bool {
    matches!(e, SourceError::Failed { kind: ErrorKind::Network, .. })
}
fn denied(e: &SourceError) -> bool {
    matches!(e, SourceError::Denied { .. })
}
fn not_gguf(e: &SourceError) -> bool {
    matches!(e, SourceError::NotGguf { .. })
}
fn protocol(e: &SourceError) -> bool {
    matches!(e, SourceError::Protocol { .. })
}

struct Case {
    fault: &'static str,
    faults: Faults,
    connections: usize,
    expect: Expect,
    /// The file's size (parallel cases need more than 4 MiB, or the plan is one range).
    size: usize,
    /// At most this many bytes sent per byte of the file.
    max_sent: Option<f64>,
    /// A further check at the server, and what it checks.
    check: Option<Check>,
}

/// What a further check verifies, and the check.
type Check = (&'static str, fn(&Hub) -> bool);

impl Default for Case {
    fn default() -> Self {
        Self {
            fault: "",
            faults: Faults::default(),
            connections: 1,
            expect: Expect::Verified,
            size: SIZE,
            max_sent: None,
            check: None,
        }
    }
}

const SIZE: usize = 4 << 20;
/// Parallel cases: large enough to be cut into ranges for 4 connections.
const PARALLEL: usize = 12 << 20;

fn no_weak_or_foreign_if_range(hub: &Hub) -> bool {
    hub.cdn_gets().iter().all(|r| r.headers.get("if-range").is_none_or(|v| v.starts_with('"')))
}
fn no_if_range(hub: &Hub) -> bool {
    hub.cdn_gets().iter().all(|r| !r.headers.contains_key("if-range"))
}
fn resolved_twice(hub: &Hub) -> bool {
    hub.requests("hub") == 2
}
fn resolved_once(hub: &Hub) -> bool {
    hub.requests("hub") == 1
}
fn one_cdn_request(hub: &Hub) -> bool {
    hub.requests("cdn") == 1
}
fn two_cdn_requests(hub: &Hub) -> bool {
    hub.requests("cdn") == 2
}
fn one_cdn_connection(hub: &Hub) -> bool {
    hub.connections("cdn") == 1 && hub.requests("cdn") == 2
}
fn served_by_the_hub(hub: &Hub) -> bool {
    let seen = hub.seen();
    let first = seen.first();
    hub.requests("cdn") == 0
        && first.is_some_and(|r| r.host == "hub" && r.method == "HEAD")
        && seen.iter().skip(1).all(|r| r.host == "hub" && r.method == "GET")
}
/// An S3-style error body that quotes the signed URL's query.
const S3_400: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
    <Message>Invalid Range</Message><ArgumentName>Range</ArgumentName>\
    <Resource>/cdn/tiny.gguf?X-Amz-Signature=s3cr3t</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>";

fn cases() -> Vec<Case> {
    let mib = 1u64 << 20;
    let mut seed = 0x5eed_u64;
    let mut random_offset = |size: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + seed % (size as u64 - 1)
    };
    let (r1, r2, r3) = (random_offset(SIZE), random_offset(PARALLEL), random_offset(SIZE));
    let forever = |code: u16| vec![(code, Some(0)); 40];
    let fails = |kind, is, says| Expect::Fails { kind, is, says, partial_kept: false };
    vec![
        Case { fault: "no fault", ..Default::default() },
        Case {
            fault: "no fault, 4 connections",
            connections: 4,
            size: PARALLEL,
            max_sent: Some(1.0),
            check: Some(("one resolution", resolved_once)),
            ..Default::default()
        },
        Case {
            fault: "connection cut (no TLS close) at a random offset",
            faults: Faults { cut_at: Some(r1), ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "connection cut at a random offset, 4 connections",
            faults: Faults { cut_at: Some(r2), ..Default::default() },
            connections: 4,
            size: PARALLEL,
            ..Default::default()
        },
        Case {
            fault: "closed early while Content-Length promised more",
            faults: Faults { drop_at: Some(r3), ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "stall mid-body",
            faults: Faults { stall_at: Some((2 * mib, Duration::from_secs(4))), ..Default::default() },
            ..Default::default()
        },
        Case {
            // The bytes past the catalog size are never written; what is kept verifies.
            fault: "more bytes than promised (no Content-Length, 1000 extra)",
            faults: Faults { extra_bytes: true, ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "one byte flipped",
            faults: Faults { flip_byte: true, ..Default::default() },
            expect: fails(ErrorKind::Integrity, checksum, "checksum mismatch"),
            ..Default::default()
        },
        Case {
            fault: "Range ignored (200 with the whole body) after a drop",
            faults: Faults { drop_at: Some(mib), ignore_range: true, ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "Range ignored, 4 connections",
            faults: Faults { ignore_range: true, ..Default::default() },
            connections: 4,
            size: PARALLEL,
            ..Default::default()
        },
        Case {
            // Completed chunks are kept: the range is asked for once more, with the new
            // validator, and the download stays parallel. The CDN caps each connection (as the
            // Hub's does), so the dropped whole-file answer costs only what was in flight.
            fault: "200 with the whole file to one range, 4 connections",
            faults: Faults {
                whole_file_for_a_range_once: true,
                rate: Some(16_000_000),
                ..Default::default()
            },
            connections: 4,
            size: PARALLEL,
            max_sent: Some(1.1),
            ..Default::default()
        },
        Case {
            fault: "416 on the resume",
            faults: Faults { drop_at: Some(mib), range_416_once: true, ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "429 with Retry-After",
            faults: Faults { statuses: vec![(429, Some(1))], ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "503 with Retry-After",
            faults: Faults { statuses: vec![(503, Some(1)), (503, Some(0))], ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "503 with Retry-After as an HTTP date",
            faults: Faults {
                statuses: vec![(503, Some(1))],
                retry_after_as_date: true,
                ..Default::default()
            },
            ..Default::default()
        },
        Case {
            fault: "500 twice",
            faults: Faults { statuses: vec![(500, None), (500, None)], ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "Hub rate limit (429, RateLimit: \"resolvers\";r=0;t=1)",
            faults: Faults { hub_rate_limit: Some(1), ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "503 for good after half the file",
            faults: Faults {
                drop_at: Some(2 * mib),
                statuses: forever(503),
                statuses_after: 1,
                ..Default::default()
            },
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: gave_up,
                says: "gave up after",
                partial_kept: true,
            },
            ..Default::default()
        },
        Case {
            // A signed URL that expires mid-download: resolved once more, then finished.
            fault: "CDN 403 on a signed URL mid-download, 4 connections",
            faults: Faults { expire_signature_after: Some(PARALLEL as u64 / 2), ..Default::default() },
            connections: 4,
            size: PARALLEL,
            max_sent: Some(1.0),
            check: Some(("resolved twice", resolved_twice)),
            ..Default::default()
        },
        Case {
            fault: "CDN 403 every time",
            faults: Faults { statuses: forever(403), ..Default::default() },
            expect: fails(ErrorKind::Network, refused, "again after resolving the URL"),
            ..Default::default()
        },
        Case {
            fault: "CDN 404 every time",
            faults: Faults { statuses: forever(404), ..Default::default() },
            expect: fails(ErrorKind::Network, refused, "again after resolving the URL"),
            ..Default::default()
        },
        Case {
            fault: "Hub 404 (X-Error-Code: EntryNotFound)",
            faults: Faults { hub_error: Some((404, "EntryNotFound")), ..Default::default() },
            expect: fails(ErrorKind::Network, not_found, "has no file"),
            ..Default::default()
        },
        Case {
            fault: "Hub 404 (X-Error-Code: RevisionNotFound)",
            faults: Faults { hub_error: Some((404, "RevisionNotFound")), ..Default::default() },
            expect: fails(ErrorKind::Network, not_found, "has no revision"),
            ..Default::default()
        },
        Case {
            fault: "Hub 401 (X-Error-Code: GatedRepo)",
            faults: Faults { hub_error: Some((401, "GatedRepo")), ..Default::default() },
            expect: fails(ErrorKind::Network, denied, "set HF_TOKEN"),
            ..Default::default()
        },
        Case {
            fault: "Hub relative redirect (renamed repository)",
            faults: Faults { relative_redirect: true, ..Default::default() },
            ..Default::default()
        },
        Case {
            fault: "weak ETag, then a drop",
            faults: Faults { weak_etag: true, drop_at: Some(mib), ..Default::default() },
            check: Some(("no weak If-Range", no_weak_or_foreign_if_range)),
            ..Default::default()
        },
        Case {
            fault: "no ETag at the CDN, then a drop",
            faults: Faults { no_etag: true, drop_at: Some(mib), ..Default::default() },
            check: Some(("no If-Range (X-Linked-Etag is the Hub's)", no_if_range)),
            ..Default::default()
        },
        Case {
            fault: "redirect loop",
            faults: Faults { redirect_loop: true, ..Default::default() },
            expect: fails(ErrorKind::Network, refused, "redirect loop"),
            ..Default::default()
        },
        Case {
            fault: "redirect to http://",
            faults: Faults { redirect_http: true, ..Default::default() },
            expect: fails(ErrorKind::Network, refused, "plain HTTP"),
            ..Default::default()
        },
        Case {
            // A proxy that drops the length (huggingface_hub #3307): the size is unknown, not 0;
            // the Hub's own answer to the GET and the catalog decide.
            fault: "Hub HEAD 200 with Content-Length: 0, no X-Linked-Size; the Hub serves the bytes",
            faults: Faults { hub_serves_unsized: true, ..Default::default() },
            check: Some(("one HEAD, then GETs at the Hub", served_by_the_hub)),
            ..Default::default()
        },
        Case {
            fault: "Hub HEAD with Content-Length: 0, the Hub serves the bytes, 4 connections",
            faults: Faults { hub_serves_unsized: true, ..Default::default() },
            connections: 4,
            size: PARALLEL,
            max_sent: Some(1.0),
            check: Some(("one HEAD, then GETs at the Hub", served_by_the_hub)),
            ..Default::default()
        },
        Case {
            fault: "206 starting elsewhere than asked, 4 connections",
            faults: Faults { range_lie: Some(RangeLie::Start), ..Default::default() },
            connections: 4,
            size: PARALLEL,
            expect: fails(ErrorKind::Network, protocol, "protocol error: the server answered bytes 512-"),
            check: Some(("one request at the CDN", one_cdn_request)),
            ..Default::default()
        },
        Case {
            // The resume after the drop asks for `bytes=1048576-`; the answer ends early.
            fault: "206 ending before the end asked for, on a resume",
            faults: Faults { drop_at: Some(mib), range_lie: Some(RangeLie::End), ..Default::default() },
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: protocol,
                says: "to a request for bytes 1048576-",
                partial_kept: true,
            },
            check: Some(("the first answer, then one request", two_cdn_requests)),
            ..Default::default()
        },
        Case {
            fault: "206 whose range ends past its total, 4 connections",
            faults: Faults { range_lie: Some(RangeLie::Total), ..Default::default() },
            connections: 4,
            size: PARALLEL,
            expect: fails(ErrorKind::Network, protocol, "which is not a range"),
            check: Some(("one request at the CDN", one_cdn_request)),
            ..Default::default()
        },
        Case {
            fault: "206 whose Content-Length contradicts its Content-Range, 4 connections",
            faults: Faults { range_lie: Some(RangeLie::Length), ..Default::default() },
            connections: 4,
            size: PARALLEL,
            expect: fails(
                ErrorKind::Network,
                protocol,
                "with Content-Length 1572352 (the range is 1572864 bytes)",
            ),
            check: Some(("one request at the CDN", one_cdn_request)),
            ..Default::default()
        },
        Case {
            fault: "CDN 400 with an XML error body",
            faults: Faults {
                statuses: forever(400),
                status_body: Some(("application/xml", S3_400)),
                ..Default::default()
            },
            expect: fails(ErrorKind::Network, refused, "HTTP 400: InvalidArgument: Invalid Range"),
            check: Some(("one request at the CDN", one_cdn_request)),
            ..Default::default()
        },
        Case {
            // The error body is read to its end: the retry goes out on the same connection.
            fault: "503 with a text body, then the file",
            faults: Faults {
                statuses: vec![(503, Some(0))],
                status_body: Some((
                    "text/plain; charset=utf-8",
                    "Slow Down\nPlease reduce your request rate.\n",
                )),
                ..Default::default()
            },
            check: Some(("one connection to the CDN", one_cdn_connection)),
            ..Default::default()
        },
        Case {
            fault: "HTML page with status 200",
            faults: Faults { html: true, ..Default::default() },
            expect: fails(ErrorKind::Integrity, not_gguf, "not send a GGUF file"),
            ..Default::default()
        },
    ]
}

#[test]
fn every_fault_ends_in_a_verified_file_or_a_clear_error() {
    let mut table =
        String::from("| fault | expected outcome | result | bytes sent / file size |\n|---|---|---|---|\n");
    let mut failures = Vec::new();
    for case in cases() {
        let s = setup(case.size);
        s.hub.set_faults(case.faults);
        let retry = RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
            ..Default::default()
        };
        let config = s
            .config()
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_millis(800))
            .with_retry(retry)
            .with_connections(Some(case.connections));
        let result = s.registry(config).ensure("tiny");
        let sent = s.hub.bytes_sent() as f64 / case.size as f64;
        let partial = fs::metadata(s.partial_path()).map(|m| m.len()).unwrap_or(0);
        let (expected, outcome, ok) = match (&case.expect, &result) {
            (Expect::Verified, Ok(path)) => {
                let good = fs::read(path).unwrap() == s.bytes;
                ("verified file".to_string(), "verified file".to_string(), good)
            }
            (Expect::Fails { kind, is, says, partial_kept }, Err(e)) => {
                let text = e.report().to_string();
                let typed = match e {
                    RegistryError::AllSourcesFailed { attempts, .. } => {
                        attempts.last().is_some_and(|a| is(&a.error))
                    }
                    _ => false,
                };
                let ok = e.kind() == *kind
                    && typed
                    && text.contains(says)
                    && !text.contains("s3cr3t")
                    && !text.contains("sig=")
                    && !s.model_path().exists()
                    && (partial > 0) == *partial_kept;
                let kept =
                    if partial > 0 { format!(", partial kept ({partial} bytes)") } else { String::new() };
                (
                    format!("{kind:?} error{}", if *partial_kept { ", partial kept" } else { "" }),
                    format!("{:?} error: “{says}”{kept}", e.kind()),
                    ok,
                )
            }
            (_, Ok(_)) => ("an error".into(), "verified file".into(), false),
            (_, Err(e)) => ("verified file".into(), format!("error: {}", e.report()), false),
        };
        let (mut expected, mut outcome, mut ok) = (expected, outcome, ok);
        if let Some(max) = case.max_sent {
            expected.push_str(&format!(", ≤ {max:.2}× the file sent"));
            ok &= sent <= max + 1e-9;
        }
        if let Some((what, check)) = case.check {
            let passed = check(&s.hub);
            expected.push_str(&format!(", {what}"));
            outcome.push_str(&format!(", {what}: {}", if passed { "yes" } else { "NO" }));
            ok &= passed;
        }
        if !ok {
            failures.push(format!("{}: expected {expected}, got {outcome}: {result:?}", case.fault));
        }
        let mark = if ok { "as expected" } else { "UNEXPECTED" };
        table.push_str(&format!(
            "| {} ({} conn.) | {expected} | {outcome} — {mark} | {sent:.2} |\n",
            case.fault, case.connections
        ));
    }
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fault-table.md");
    let _ = fs::write(out, &table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}

/// A protocol error is not retried: the mirror that lied is asked once, and the next source
/// (the Hub) serves the file, through the binary.
#[test]
fn a_protocol_error_at_a_mirror_is_asked_once_and_the_hub_serves() {
    let s = setup(PARALLEL);
    s.hub.set_faults(Faults { range_lie: Some(RangeLie::Start), range_lie_once: true, ..Default::default() });
    let mirror = format!("https://{}/cdn", s.hub.cdn);
    let r = crate::support::Run::of(
        s.cmd()
            .env("STRATA_MODELS_MIRROR", &mirror)
            .args(["download", "tiny", "--connections", "4"])
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(fs::read(s.model_path()).unwrap(), s.bytes);
    assert!(
        r.stderr.contains("protocol error: the server answered bytes 512-"),
        "the mirror's failure is said: {}",
        r.stderr
    );
    let at_mirror: Vec<_> = s.hub.cdn_gets().into_iter().filter(|g| !g.path.contains("sig=")).collect();
    assert_eq!(at_mirror.len(), 1, "one request at the mirror, not retried: {at_mirror:#?}");
    assert!(s.hub.cdn_gets().len() > 1, "the Hub's file host served the file");
}
