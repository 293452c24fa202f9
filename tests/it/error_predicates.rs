//! `RegistryError`'s predicates on real failures of the HTTPS Hub look-alike: each failure is
//! classified where it is made, and a host can tell retry, fall back and fail apart.

use strata_model::RegistryError;

use crate::support::hub::Faults;
use crate::support::setup;

/// Which predicates hold: not found, offline, transient, integrity, permission.
fn answers(e: &RegistryError) -> [bool; 5] {
    [e.is_not_found(), e.is_offline(), e.is_transient(), e.is_integrity(), e.is_permission()]
}

#[test]
fn real_failures_answer_the_predicate_a_host_acts_on() {
    let cases = [
        (
            "no such file on the Hub",
            Faults { hub_error: Some((404, "EntryNotFound")), ..Default::default() },
            0,
        ),
        ("a gated repository", Faults { hub_error: Some((401, "GatedRepo")), ..Default::default() }, 4),
        ("a CDN that answers 503", Faults { statuses: vec![(503, None); 20], ..Default::default() }, 2),
        ("bytes that do not verify", Faults { flip_byte: true, ..Default::default() }, 3),
    ];
    for (what, faults, expected) in cases {
        let s = setup(100_000);
        s.hub.set_faults(faults);
        let err = s.registry(s.config()).ensure("tiny").unwrap_err();
        let mut want = [false; 5];
        want[expected] = true;
        assert_eq!(answers(&err), want, "{what}: {}", err.report());
    }
    let s = setup(100_000);
    let err = s.registry(s.config().with_offline(true)).ensure("tiny").unwrap_err();
    assert_eq!(answers(&err), [false, true, false, false, false], "{}", err.report());
    assert!(s.hub.seen().is_empty());
}

#[test]
fn a_host_name_that_does_not_exist_is_not_worth_retrying() {
    // `.invalid` never resolves (RFC 6761): a mistyped endpoint or mirror host. A host that
    // retries on is_transient() must not loop on it.
    let s = setup(100_000);
    let config = s.config().with_hf_endpoint("https://hub.no-such-host.invalid".parse().unwrap());
    let err = s.registry(config).ensure("tiny").unwrap_err();
    assert_eq!(answers(&err), [false; 5], "{}", err.report());
    let text = err.report().to_string();
    assert!(text.contains("no such host") && !text.contains("gave up after"), "tried once: {text}");
}
