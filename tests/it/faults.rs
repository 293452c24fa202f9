//! The fault table: every fault the Hub look-alike can inject, between the client and the
//! HTTPS Hub, with the outcome asserted (a verified file, or a clear typed error with nothing
//! at the model path and the partial kept when resumable) and the bytes re-fetched measured.
//! The table is printed and written to `target/fault-table.md`.

use std::fs;
use std::time::Duration;

use strata_model::{ErrorKind, RegistryError, RetryPolicy, SourceError};

use crate::support::hub::Faults;
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
    matches!(e, SourceError::NotFound)
}
fn refused(e: &SourceError) -> bool {
    matches!(e, SourceError::Failed { kind: ErrorKind::Network, .. })
}
fn not_gguf(e: &SourceError) -> bool {
    matches!(e, SourceError::NotGguf { .. })
}

struct Case {
    fault: &'static str,
    faults: Faults,
    connections: usize,
    expect: Expect,
}

const SIZE: usize = 4 << 20;

fn cases() -> Vec<Case> {
    let mib = 1u64 << 20;
    let mut seed = 0x5eed_u64;
    let mut random_offset = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + seed % (SIZE as u64 - 1)
    };
    let (r1, r2, r3) = (random_offset(), random_offset(), random_offset());
    let forever = |code: u16| vec![(code, Some(0)); 40];
    vec![
        Case { fault: "no fault", faults: Faults::default(), connections: 1, expect: Expect::Verified },
        Case {
            fault: "connection cut (no TLS close) at a random offset",
            faults: Faults { cut_at: Some(r1), ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "connection cut at a random offset, 4 connections",
            faults: Faults { cut_at: Some(r2), ..Default::default() },
            connections: 4,
            expect: Expect::Verified,
        },
        Case {
            fault: "closed early while Content-Length promised more",
            faults: Faults { drop_at: Some(r3), ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "stall mid-body",
            faults: Faults { stall_at: Some((2 * mib, Duration::from_secs(4))), ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            // The bytes past the catalog size are never written; what is kept verifies.
            fault: "more bytes than promised (no Content-Length, 1000 extra)",
            faults: Faults { extra_bytes: true, ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "one byte flipped",
            faults: Faults { flip_byte: true, ..Default::default() },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Integrity,
                is: checksum,
                says: "checksum mismatch",
                partial_kept: false,
            },
        },
        Case {
            fault: "Range ignored (200 with the whole body) after a drop",
            faults: Faults { drop_at: Some(mib), ignore_range: true, ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "Range ignored, 4 connections",
            faults: Faults { ignore_range: true, ..Default::default() },
            connections: 4,
            expect: Expect::Verified,
        },
        Case {
            fault: "416 on the resume",
            faults: Faults { drop_at: Some(mib), range_416_once: true, ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "429 with Retry-After",
            faults: Faults { statuses: vec![(429, Some(1))], ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "503 with Retry-After",
            faults: Faults { statuses: vec![(503, Some(1)), (503, Some(0))], ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "500 twice",
            faults: Faults { statuses: vec![(500, None), (500, None)], ..Default::default() },
            connections: 1,
            expect: Expect::Verified,
        },
        Case {
            fault: "503 for good after half the file",
            faults: Faults {
                drop_at: Some(2 * mib),
                statuses: forever(503),
                statuses_after: 1,
                ..Default::default()
            },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: gave_up,
                says: "gave up after",
                partial_kept: true,
            },
        },
        Case {
            fault: "404",
            faults: Faults { statuses: forever(404), ..Default::default() },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: not_found,
                says: "not found",
                partial_kept: false,
            },
        },
        Case {
            fault: "401 (gated repository)",
            faults: Faults { statuses: forever(401), ..Default::default() },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: refused,
                says: "set HF_TOKEN",
                partial_kept: false,
            },
        },
        Case {
            fault: "403",
            faults: Faults { statuses: forever(403), ..Default::default() },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: refused,
                says: "HF_TOKEN",
                partial_kept: false,
            },
        },
        Case {
            fault: "redirect loop",
            faults: Faults { redirect_loop: true, ..Default::default() },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: refused,
                says: "redirect loop",
                partial_kept: false,
            },
        },
        Case {
            fault: "redirect to http://",
            faults: Faults { redirect_http: true, ..Default::default() },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Network,
                is: refused,
                says: "plain HTTP",
                partial_kept: false,
            },
        },
        Case {
            fault: "HTML page with status 200",
            faults: Faults { html: true, ..Default::default() },
            connections: 1,
            expect: Expect::Fails {
                kind: ErrorKind::Integrity,
                is: not_gguf,
                says: "not send a GGUF file",
                partial_kept: false,
            },
        },
    ]
}

#[test]
fn every_fault_ends_in_a_verified_file_or_a_clear_error() {
    let mut table =
        String::from("| fault | expected outcome | result | bytes sent / file size |\n|---|---|---|---|\n");
    let mut failures = Vec::new();
    for case in cases() {
        let s = setup(SIZE);
        s.hub.set_faults(case.faults);
        let retry =
            RetryPolicy { attempts: 4, base: Duration::from_millis(20), max_delay: Duration::from_secs(2) };
        let config = s
            .config()
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_millis(800))
            .with_retry(retry)
            .with_connections(Some(case.connections));
        let result = s.registry(config).ensure("tiny");
        let sent = s.hub.bytes_sent() as f64 / SIZE as f64;
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
            (_, Err(e)) => ("verified file".into(), format!("error: {e}"), false),
        };
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
