//! The HTTPS client every network source over HTTP shares: ureq with this build's TLS
//! ([`super::tls`]: rustls or native-tls, the system's trust roots plus `SSL_CERT_FILE`), the
//! environment's proxy, timeouts, no automatic redirects (each hop
//! is checked by the source), identity encoding, connections by Happy Eyeballs
//! ([`super::connect`]); and the one place a ureq error becomes a [`SourceError`].

use ureq::unversioned::transport::{ConnectProxyConnector, Connector};

use super::connect::HappyEyeballs;
use super::dns::Resolve;
use super::tls;

use crate::config::Config;
use crate::error::{ErrorKind, RegistryError, Result, SourceError};

/// A ureq agent configured from `config`.
pub(crate) fn agent(config: &Config) -> Result<ureq::Agent> {
    let tls = tls::config(config.ca_file())?;
    let settings = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .https_only(true)
        .user_agent(concat!("strata-model/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(config.connect_timeout()))
        .timeout_recv_response(Some(config.read_timeout()))
        .timeout_per_read(Some(config.read_timeout()))
        // A small output buffer (requests are tiny): 32 connections stay near 23 MiB of RSS.
        .input_buffer_size(128 * 1024)
        .output_buffer_size(16 * 1024)
        // Every connection of a download goes back to the pool between its ranges (up to 64
        // connections to one host), so that each one is opened once.
        .max_idle_connections(128)
        .max_idle_connections_per_host(64)
        .proxy(if config.env_proxy() { env_proxy()? } else { None })
        .tls_config(tls)
        .middleware(super::logged::request) // a `debug` event per request
        .build();
    // ureq's DefaultConnector chain (CONNECT proxy, TCP, TLS) with Happy Eyeballs as its TCP
    // step and this build's TLS only. With ureq's `socks-proxy` feature off, that chain had no
    // SOCKS step either (only a log warning, which ureq keeps private).
    let connector =
        ().chain(ConnectProxyConnector::default()).chain(HappyEyeballs).chain(tls::Connector::default());
    Ok(ureq::Agent::with_parts(settings, connector, Resolve::new(config.resolve())))
}

/// The proxy the environment names, read as the HTTP client reads it (the first set of
/// `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, each also in lower case; `NO_PROXY`), except that
/// one it cannot use (SOCKS, which this build does not speak, or a value that is not a URL) is a
/// configuration error naming it: the client would skip it silently and connect directly.
fn env_proxy() -> Result<Option<ureq::Proxy>> {
    const VARS: &[&str] =
        &["ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];
    for var in VARS {
        let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else { continue };
        let Some(value) = value.to_str() else {
            return Err(RegistryError::config(
                *var,
                "the value is not valid UTF-8 (it must be text, not raw bytes)",
            ));
        };
        let scheme = value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some(s) if s.starts_with("socks")) {
            return Err(RegistryError::config(
                *var,
                "a SOCKS proxy cannot be used (this build speaks HTTP CONNECT proxies only); give an \
                 http:// or https:// proxy, or unset it",
            ));
        }
        return match ureq::Proxy::new(value) {
            Ok(_) => Ok(ureq::Proxy::try_from_env()),
            // The value is not echoed: it may hold a password.
            Err(e) => Err(RegistryError::config(
                *var,
                format!("not a proxy URL ({e}); give http://HOST:PORT (credentials as http://USER:PASSWORD@HOST:PORT)"),
            )),
        };
    }
    Ok(None)
}

/// What a failed request means for the download; `at` is the redacted URL.
pub(crate) fn classify(err: ureq::Error, at: &str) -> SourceError {
    match err {
        // A certificate the TLS library cannot verify (rustls: an I/O error; OpenSSL: a
        // handshake error): no retry helps.
        e if tls::is_untrusted_certificate(&e) => SourceError::failed_by(
            ErrorKind::Network,
            format!(
                "{at}: the server's certificate is not trusted here; if it is signed by a private CA, \
                 set SSL_CERT_FILE to that CA's PEM file"
            ),
            e,
        ),
        ureq::Error::Io(e) => SourceError::transient_by(at, e),
        ureq::Error::Timeout(t) => SourceError::transient(format!("{at}: timed out ({t})")),
        ureq::Error::ConnectionFailed => SourceError::transient(format!("{at}: connection failed")),
        ureq::Error::BodyStalled => SourceError::transient(format!("{at}: transfer stalled")),
        ureq::Error::HostNotFound => SourceError::failed(
            ErrorKind::Network,
            format!("{at}: no such host (check HF_ENDPOINT or the mirror's address)"),
        ),
        ureq::Error::Tls(e) => SourceError::failed(ErrorKind::Network, format!("{at}: TLS failure: {e}")),
        #[cfg(feature = "rustls")]
        ureq::Error::Rustls(e) => tls_failure(at, e),
        // A handshake that broke off (a server that is not speaking TLS, a load balancer
        // dropping the connection): transient, as rustls reports the same as an I/O error.
        #[cfg(feature = "native-tls")]
        ureq::Error::NativeTls(e) => SourceError::transient_by(format!("{at}: the TLS handshake failed"), e),
        ureq::Error::RequireHttpsOnly(_) => {
            SourceError::failed(ErrorKind::Network, format!("{at}: refused: only HTTPS is allowed"))
        }
        // Other variants may quote a URL with its query (a signed URL's secret): not shown.
        other => SourceError::failed(ErrorKind::Network, format!("{at}: {}", describe(&other))),
    }
}

/// rustls refusing the connection for another reason than the certificate (no protocol or
/// cipher in common): final.
#[cfg(feature = "rustls")]
fn tls_failure(at: &str, e: impl Into<crate::error::BoxError>) -> SourceError {
    SourceError::failed_by(ErrorKind::Network, format!("{at}: TLS failure"), e)
}

fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::BadUri(_) => "invalid URL".into(),
        ureq::Error::ConnectProxyFailed(_) => "the proxy refused the connection (check HTTPS_PROXY)".into(),
        ureq::Error::InvalidProxyUrl => "invalid proxy URL (check HTTPS_PROXY)".into(),
        other => other.to_string(),
    }
}
