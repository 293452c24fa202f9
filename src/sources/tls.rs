//! The TLS of the HTTPS sources, chosen at build time, what it trusts, and what its certificate
//! errors look like.
//!
//! - Feature `rustls` (a default feature): rustls with ring, through ureq's
//!   [`RustlsConnector`](ureq::unversioned::transport::RustlsConnector).
//! - Feature `native-tls`: the platform's TLS (OpenSSL on Linux) through native-tls and ureq's
//!   [`NativeTlsConnector`](ureq::unversioned::transport::NativeTlsConnector). When both features
//!   are on (`--all-features`, or `native-tls` without `default-features = false`), native-tls
//!   wins; rustls is then compiled but never used.
//!
//! Either one trusts exactly the list [`root_certs`] builds (the system's roots and
//! `SSL_CERT_FILE`): with native-tls, OpenSSL's own store and its `SSL_CERT_FILE`/`SSL_CERT_DIR`
//! handling are replaced by that list, so both builds trust the same authorities.

use std::path::Path;
use std::sync::Arc;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::config::vars;
use crate::error::{RegistryError, Result};

#[cfg(all(feature = "registry", not(any(feature = "rustls", feature = "native-tls"))))]
compile_error!(
    "strata-model's `registry` feature needs a TLS implementation: enable the `rustls` feature (on by \
     default) or `native-tls`"
);

/// The TLS step of the connector chain (after the TCP connection).
#[cfg(feature = "native-tls")]
pub(crate) type Connector = ureq::unversioned::transport::NativeTlsConnector;
/// The TLS step of the connector chain (after the TCP connection).
#[cfg(all(feature = "rustls", not(feature = "native-tls")))]
pub(crate) type Connector = ureq::unversioned::transport::RustlsConnector;

/// Which of ureq's providers [`Connector`] serves (a connector skips a config naming the other).
#[cfg(feature = "native-tls")]
const PROVIDER: TlsProvider = TlsProvider::NativeTls;
#[cfg(not(feature = "native-tls"))]
const PROVIDER: TlsProvider = TlsProvider::Rustls;

/// Where Unix systems keep their PEM bundle of trusted roots (the first that exists is read).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The TLS configuration of every agent: this build's provider, trusting [`root_certs`].
pub(crate) fn config(extra: Option<&Path>) -> Result<TlsConfig> {
    Ok(TlsConfig::builder().provider(PROVIDER).root_certs(root_certs(extra)?).build())
}

/// The system's trust roots plus those of `extra` (a PEM file, `SSL_CERT_FILE`).
///
/// The system's roots are the platform store as rustls-native-certs reads it (which is the
/// process's `SSL_CERT_FILE`/`SSL_CERT_DIR` *instead of* the store when either is set) plus the
/// first system bundle of [`SYSTEM_BUNDLES`], so that `SSL_CERT_FILE` adds to them rather than
/// replacing them. With no root at all (a bare container), rustls falls back to the Mozilla roots
/// built into webpki-roots, native-tls to OpenSSL's default locations.
fn root_certs(extra: Option<&Path>) -> Result<RootCerts> {
    let mut certs: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(bundle) = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read(p).ok()) {
        certs.extend(ureq::tls::parse_pem(&bundle).filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        }));
    }
    if let Some(file) = extra {
        let pem = std::fs::read(file).map_err(|e| {
            RegistryError::config_caused(vars::SSL_CERT_FILE, format!("cannot read {}", file.display()), e)
        })?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(RegistryError::config_caused(
                        vars::SSL_CERT_FILE,
                        format!("{} is not a PEM certificate file", file.display()),
                        e,
                    ))
                }
            }
        }
        if certs.len() == before {
            return Err(RegistryError::config(
                vars::SSL_CERT_FILE,
                format!("{} holds no certificate", file.display()),
            ));
        }
    }
    // The store and the bundle are usually the same certificates: each is kept once.
    certs.sort_unstable_by(|a, b| a.der().cmp(b.der()));
    certs.dedup_by(|a, b| a.der() == b.der());
    Ok(match (certs.is_empty(), PROVIDER) {
        (false, _) => RootCerts::Specific(Arc::new(certs)),
        (true, TlsProvider::Rustls) => RootCerts::WebPki,
        (true, _) => RootCerts::PlatformVerifier,
    })
}

/// How this build's TLS reports a server certificate it does not trust (unknown issuer, wrong
/// name, expired): such an error is final, and the message says how to trust a private CA.
///
/// rustls reports it as an I/O error of kind `InvalidData` naming the certificate
/// (`invalid peer certificate: UnknownIssuer`); OpenSSL as a handshake error whose reason is
/// `certificate verify failed` (its verify result in parentheses).
pub(crate) fn is_untrusted_certificate(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Io(e) => {
            e.kind() == std::io::ErrorKind::InvalidData && e.to_string().contains("certificate")
        }
        #[cfg(feature = "native-tls")]
        ureq::Error::NativeTls(e) => e.to_string().contains("certificate verify failed"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_file_adds_to_the_system_roots_once() {
        let dir = tempfile::tempdir().unwrap();
        let system = match root_certs(None).unwrap() {
            RootCerts::Specific(c) => c,
            _ => panic!("this machine has a system store (ca-certificates)"),
        };
        let extra = dir.path().join("ca.pem");
        let first = system.first().unwrap().der().to_vec();
        // An authority the system already trusts and a fresh one (a real certificate's DER
        // with one byte changed: parsing is the TLS library's business, not the list's).
        let mut fresh = first.clone();
        *fresh.last_mut().unwrap() ^= 1;
        let pem = |der: &[u8]| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> =
                b64.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).unwrap()).collect();
            format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
        };
        std::fs::write(&extra, pem(&first) + &pem(&fresh)).unwrap();
        let with = match root_certs(Some(&extra)).unwrap() {
            RootCerts::Specific(c) => c,
            _ => panic!("a specific list"),
        };
        assert_eq!(with.len(), system.len() + 1, "the system's roots stay; a duplicate is kept once");
        assert!(with.iter().any(|c| c.der() == fresh.as_slice()));
    }

    #[test]
    fn an_unreadable_or_empty_file_names_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = root_certs(Some(&dir.path().join("none.pem"))).unwrap_err();
        assert!(missing.to_string().contains("SSL_CERT_FILE"), "{missing}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = root_certs(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }
}
