//! The build's TLS (issue 20, item 3): the same trust and the same messages whether the HTTPS
//! sources speak rustls (the default) or the platform's TLS (feature `native-tls`: OpenSSL
//! here). `.ci/run` runs these and the other HTTPS tests under both.

use std::time::Duration;

use strata_model::{ErrorKind, RegistryError, Report};

use crate::support::setup;

/// What this build's TLS library says about a certificate it refuses (its own words, in the
/// error's causes): only OpenSSL says "certificate verify failed", only rustls names the
/// webpki error, so a run under the wrong library fails here.
fn library_words(rustls: &'static str) -> &'static str {
    if cfg!(feature = "native-tls") {
        "certificate verify failed"
    } else {
        rustls
    }
}

/// One failed attempt at the Hub: final (not transient, one connection: no retry), in the
/// message both builds give, with this build's library's words as its cause.
fn assert_refused(err: &RegistryError, hub: &crate::support::hub::Hub, rustls_words: &'static str) {
    let RegistryError::AllSourcesFailed { attempts, .. } = err else { panic!("all sources failed: {err}") };
    let [attempt] = attempts.as_slice() else { panic!("one source: {err}") };
    assert_eq!(attempt.kind(), ErrorKind::Network, "{err}");
    assert!(!attempt.error.is_transient(), "a certificate error is final: {err}");
    let report = Report::new(err).to_string();
    assert!(
        report.contains("the server's certificate is not trusted here; if it is signed by a private CA, set SSL_CERT_FILE"),
        "the same message under either TLS: {report}"
    );
    assert!(report.contains(library_words(rustls_words)), "this build's TLS refused it: {report}");
    assert_eq!(report.matches("SSL_CERT_FILE").count(), 1, "said once: {report}");
    assert_eq!(hub.requests("hub"), 0, "no request got through the handshake");
    assert_eq!(hub.connections("hub"), 1, "not retried");
}

/// A server whose CA is not trusted (no `SSL_CERT_FILE`).
#[test]
fn an_unknown_authority_is_refused_in_the_same_words_under_either_tls() {
    let s = setup(10_000);
    let err = s.registry(s.config().with_ca_file(None)).ensure("tiny").unwrap_err();
    assert_refused(&err, &s.hub, "UnknownIssuer");
}

/// A certificate from a trusted CA, for another name: the Hub reached as `elsewhere.test`
/// (resolved to its address), while its certificate names `localhost` and its IP addresses.
#[test]
fn a_certificate_for_another_name_is_refused_in_the_same_words_under_either_tls() {
    let s = setup(10_000);
    let config = s
        .config()
        .with_hf_endpoint(format!("https://elsewhere.test:{}", s.hub.hub.port()).parse().unwrap())
        .with_connect_timeout(Duration::from_secs(5))
        .with_resolve("elsewhere.test", vec![s.hub.hub]);
    let err = s.registry(config).ensure("tiny").unwrap_err();
    assert_refused(&err, &s.hub, "certificate not valid for name");
}

/// `SSL_CERT_FILE` is trusted besides the system's roots, by the library and the binary alike:
/// the same download works under either TLS.
#[test]
fn a_private_ca_in_ssl_cert_file_is_trusted_under_either_tls() {
    let s = setup(300_000);
    let path = s.registry(s.config()).ensure("tiny").unwrap_or_else(|e| panic!("{}", Report::new(&e)));
    assert_eq!(std::fs::read(&path).unwrap(), s.bytes);
    s.run(&["remove", "tiny"]).ok();
    s.run(&["download", "tiny"]).ok();
    assert_eq!(std::fs::read(s.model_path()).unwrap(), s.bytes);
}
