//! HTTPS sources: Hugging Face (`{endpoint}/{repo}/resolve/{revision}/{file}`) and plain
//! HTTPS mirrors holding the flat layout (`{base}/{file}`, e.g. an internal nginx or
//! Artifactory), over HTTPS only.
//!
//! Redirects are followed here, not by the HTTP client, so that each hop is checked: a
//! redirect to plain HTTP is refused, and the token goes to the endpoint's host only, never to
//! another host (the CDN). The `X-Linked-Size` of the Hub's redirect is compared with the
//! catalog before any byte is fetched.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{HeaderMap, StatusCode};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::{Fetch, FetchRequest, ModelSource, SourceError};
use crate::catalog::ModelEntry;
use crate::config::{vars, Config, Secret};
use crate::error::{ErrorKind, RegistryError, Result};

const MAX_REDIRECTS: usize = 10;

/// An HTTPS source: Hugging Face, or a mirror with the flat layout.
pub struct HttpSource {
    endpoint: String,
    authority: String,
    token: Option<Secret>,
    agent: ureq::Agent,
    mirror: bool,
}

/// What the Hub says about a file, from [`HttpSource::head_linked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    /// The HTTP status (302 for an LFS file).
    pub status: u16,
    /// `X-Linked-Size` (else `Content-Length`).
    pub size: Option<u64>,
    /// `X-Linked-Etag` (else `ETag`), without quotes: the SHA-256 for an LFS file.
    pub sha256: Option<String>,
    /// `X-Repo-Commit`.
    pub commit: Option<String>,
}

/// The Hugging Face source (an [`HttpSource`] built with [`HttpSource::hugging_face`]).
pub type HuggingFace = HttpSource;

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSource")
            .field("endpoint", &self.endpoint)
            .field("mirror", &self.mirror)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mirror {
            write!(f, "HTTPS mirror {}", self.endpoint)
        } else {
            write!(f, "Hugging Face {}", self.endpoint)
        }
    }
}

impl HttpSource {
    /// Hugging Face at `config`'s endpoint, with its token, trust roots, proxy and timeouts.
    pub fn from_config(config: &Config) -> Result<Self> {
        Self::hugging_face(config)
    }

    /// Hugging Face at `config`'s endpoint.
    pub fn hugging_face(config: &Config) -> Result<Self> {
        Self::build(config.endpoint(), config, false, vars::HF_ENDPOINT)
    }

    /// An HTTPS mirror at `base` (`https://models.internal/gguf`): `{base}/{file}`. It gets
    /// the same TLS, proxy and redirect rules as Hugging Face, and never the token.
    pub fn mirror(base: &str, config: &Config) -> Result<Self> {
        Self::build(base, config, true, vars::MODELS_MIRROR)
    }

    fn build(base: &str, config: &Config, mirror: bool, variable: &str) -> Result<Self> {
        let endpoint = base.trim_end_matches('/').to_string();
        let authority = authority(&endpoint)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                RegistryError::config(
                    variable,
                    format!("`{}` is not an https:// URL; only HTTPS is allowed", redact(&endpoint)),
                )
            })?
            .to_string();
        let tls = TlsConfig::builder().root_certs(root_certs(config.extra_ca_file())?).build();
        let agent = ureq::Agent::config_builder()
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
            .proxy(if config.uses_env_proxy() { ureq::Proxy::try_from_env() } else { None })
            .tls_config(tls)
            .build()
            .new_agent();
        let token = if mirror { None } else { config.token().cloned() };
        Ok(Self { endpoint, authority, token, agent, mirror })
    }

    /// The endpoint (or mirror base), without a trailing slash.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Asks the Hub, with a `HEAD` that does not follow the redirect (no body), what it
    /// holds for `entry` at the pinned revision: status, `X-Linked-Size` and `X-Linked-Etag`
    /// (for files not in LFS, `Content-Length` and `ETag`).
    pub fn head_linked(&self, entry: &ModelEntry) -> Result<Linked, String> {
        let url = self.url(entry);
        let mut req = self.agent.head(&url).header("Accept-Encoding", "identity");
        if let Some(token) = &self.token {
            req = req.header("Authorization", format!("Bearer {}", token.expose()));
        }
        let resp = req.call().map_err(|e| classify(e, &url).to_string())?;
        let h = resp.headers();
        let strip = |v: &str| v.trim_start_matches("W/").trim_matches('"').to_string();
        Ok(Linked {
            status: resp.status().as_u16(),
            size: header(h, "x-linked-size")
                .or_else(|| header(h, "content-length"))
                .and_then(|v| v.parse().ok()),
            sha256: header(h, "x-linked-etag").or_else(|| header(h, "etag")).map(strip),
            commit: header(h, "x-repo-commit").map(str::to_string),
        })
    }

    fn url(&self, entry: &ModelEntry) -> String {
        if self.mirror {
            format!("{}/{}", self.endpoint, entry.hf_filename)
        } else {
            entry.hf_url(&self.endpoint)
        }
    }
}

/// Where Unix systems keep their PEM bundle of trusted roots (the first that exists is read).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's trust roots plus those of `extra` (a PEM file).
fn root_certs(extra: Option<&std::path::Path>) -> Result<RootCerts> {
    // rustls-native-certs reads SSL_CERT_FILE *instead of* the system store when it is set;
    // the system bundle is read here too, so that the file adds to the system's roots.
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
            RegistryError::config(vars::SSL_CERT_FILE, format!("cannot read {}: {e}", file.display()))
        })?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(RegistryError::config(
                        vars::SSL_CERT_FILE,
                        format!("{} is not a PEM certificate file: {e}", file.display()),
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
    Ok(if certs.is_empty() { RootCerts::WebPki } else { RootCerts::Specific(Arc::new(certs)) })
}

/// `host[:port]` of an `https://` URL; `None` for anything else.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    Some(auth.rsplit_once('@').map_or(auth, |(_, host)| host))
}

/// A URL without credentials or query (signed CDN URLs carry secrets in the query).
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(end);
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header(headers, "retry-after")?.parse::<u64>().ok().map(Duration::from_secs)
}

/// Parses `Content-Range: bytes START-END/TOTAL`.
fn content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total.trim().parse().ok()))
}

fn classify(err: ureq::Error, url: &str) -> SourceError {
    let at = redact(url);
    match err {
        ureq::Error::Io(e) => SourceError::transient(format!("{at}: {e}")),
        ureq::Error::Timeout(t) => SourceError::transient(format!("{at}: timed out ({t})")),
        ureq::Error::ConnectionFailed => SourceError::transient(format!("{at}: connection failed")),
        ureq::Error::BodyStalled => SourceError::transient(format!("{at}: transfer stalled")),
        ureq::Error::HostNotFound => SourceError::failed(
            ErrorKind::Network,
            format!("{at}: host not found (no network, or a wrong HF_ENDPOINT?)"),
        ),
        ureq::Error::Tls(e) => SourceError::failed(ErrorKind::Network, format!("{at}: TLS failure: {e}")),
        ureq::Error::Rustls(e) => SourceError::failed(
            ErrorKind::Network,
            format!("{at}: TLS failure: {e} (a private CA can be trusted with SSL_CERT_FILE)"),
        ),
        ureq::Error::RequireHttpsOnly(_) => {
            SourceError::failed(ErrorKind::Network, format!("{at}: refused: only HTTPS is allowed"))
        }
        other => SourceError::failed(ErrorKind::Network, format!("{at}: {other}")),
    }
}

/// Resolves a `Location` against the URL it came from; refuses anything but HTTPS.
fn follow(from: &str, location: &str) -> Result<String, SourceError> {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(location.to_string());
    }
    if lower.starts_with("http://") {
        return Err(SourceError::failed(
            ErrorKind::Network,
            format!("refused a redirect from {} to plain HTTP ({})", redact(from), redact(location)),
        ));
    }
    if location.starts_with("//") {
        return Ok(format!("https:{location}"));
    }
    if location.starts_with('/') {
        let origin_len = "https://".len() + authority(from).map_or(0, |a| a.len());
        return Ok(format!("{}{location}", &from[..origin_len.min(from.len())]));
    }
    Err(SourceError::failed(
        ErrorKind::Network,
        format!("unsupported redirect target `{}`", redact(location)),
    ))
}

impl ModelSource for HttpSource {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError> {
        let mut url = self.url(entry);
        let mut linked_etag: Option<String> = None;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.get(&url).header("Accept-Encoding", "identity");
            if request.offset > 0 || request.end.is_some() {
                let range = match request.end {
                    Some(end) => format!("bytes={}-{}", request.offset, end.saturating_sub(1)),
                    None => format!("bytes={}-", request.offset),
                };
                req = req.header("Range", range);
                if let Some(v) = &request.if_range {
                    req = req.header("If-Range", v.as_str());
                }
            }
            if let Some(token) = &self.token {
                if authority(&url) == Some(self.authority.as_str()) {
                    req = req.header("Authorization", format!("Bearer {}", token.expose()));
                }
            }
            let resp = req.call().map_err(|e| classify(e, &url))?;
            let status = resp.status();
            let headers = resp.headers();
            if status.is_redirection() {
                let location = header(headers, "location").ok_or_else(|| {
                    SourceError::failed(
                        ErrorKind::Network,
                        format!("{}: redirect without Location", redact(&url)),
                    )
                })?;
                if let Some(size) = header(headers, "x-linked-size").and_then(|s| s.parse::<u64>().ok()) {
                    if size != entry.size_bytes {
                        return Err(SourceError::failed(
                            ErrorKind::Integrity,
                            format!(
                                "{} reports {size} bytes for {}, the catalog says {}",
                                redact(&url),
                                entry.hf_filename,
                                entry.size_bytes
                            ),
                        ));
                    }
                }
                if let Some(etag) = header(headers, "x-linked-etag") {
                    linked_etag = Some(etag.to_string());
                }
                url = follow(&url, location)?;
                continue;
            }
            let here = redact(&url);
            match status {
                StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
                StatusCode::NOT_FOUND => return Err(SourceError::NotFound),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    let hint = if self.mirror {
                        "the mirror refused access"
                    } else if self.token.is_some() {
                        "the token in HF_TOKEN has no access: accept the model's licence on its Hub page"
                    } else {
                        "the repository is gated or private: accept its licence on the Hub and set HF_TOKEN"
                    };
                    return Err(SourceError::failed(
                        ErrorKind::Network,
                        format!("{here}: HTTP {status}: {hint}"),
                    ));
                }
                StatusCode::RANGE_NOT_SATISFIABLE if request.offset > 0 && request.end.is_none() => {
                    // The partial no longer matches what the server has: start over.
                    return self.fetch(entry, &FetchRequest { offset: 0, end: None, if_range: None });
                }
                s if s == StatusCode::REQUEST_TIMEOUT
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s.is_server_error() =>
                {
                    return Err(SourceError::Transient {
                        reason: format!("{here}: HTTP {status}"),
                        retry_after: retry_after(headers),
                    });
                }
                s => {
                    return Err(SourceError::failed(
                        ErrorKind::Network,
                        format!("{here}: unexpected HTTP {s}"),
                    ))
                }
            }
            if let Some(enc) =
                header(headers, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"))
            {
                return Err(SourceError::failed(
                    ErrorKind::Network,
                    format!(
                        "{here}: the server sent `{enc}`-encoded content; byte ranges need identity encoding"
                    ),
                ));
            }
            let validator = header(headers, "etag").map(str::to_string).or(linked_etag);
            let (start, total) = if status == StatusCode::PARTIAL_CONTENT {
                let (start, _, total) =
                    header(headers, "content-range").and_then(content_range).ok_or_else(|| {
                        SourceError::failed(
                            ErrorKind::Network,
                            format!("{here}: 206 without a valid Content-Range"),
                        )
                    })?;
                if start != request.offset {
                    return Err(SourceError::failed(
                        ErrorKind::Network,
                        format!("{here}: asked for bytes from {}, got from {start}", request.offset),
                    ));
                }
                (start, total)
            } else {
                (0, header(headers, "content-length").and_then(|s| s.parse().ok()))
            };
            let body = resp.into_body().into_reader();
            // A server that sends past the requested end is cut at it.
            let body: Box<dyn std::io::Read + Send> = match request.end {
                Some(end) if end > start => Box::new(std::io::Read::take(body, end - start)),
                _ => Box::new(body),
            };
            return Ok(Fetch { body, start, total, validator, location: here });
        }
        Err(SourceError::failed(
            ErrorKind::Network,
            format!(
                "more than {MAX_REDIRECTS} redirects from {} (a redirect loop?)",
                redact(&entry.hf_url(&self.endpoint))
            ),
        ))
    }

    fn is_network(&self) -> bool {
        true
    }

    fn check(&self) -> Result<String, String> {
        let started = std::time::Instant::now();
        match self.agent.head(&self.endpoint).call() {
            Ok(resp) => {
                Ok(format!("answers (HTTP {}, {} ms)", resp.status().as_u16(), started.elapsed().as_millis()))
            }
            Err(e) => Err(classify(e, &self.endpoint).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_and_redaction() {
        assert_eq!(authority("https://huggingface.co/a/b"), Some("huggingface.co"));
        assert_eq!(authority("https://u:p@127.0.0.1:8443/x?y"), Some("127.0.0.1:8443"));
        assert_eq!(authority("http://huggingface.co/"), None);
        assert_eq!(
            redact("https://user:secret@cdn.example/path/f.gguf?X-Amz-Signature=abc"),
            "https://cdn.example/path/f.gguf"
        );
    }

    #[test]
    fn redirects_stay_on_https() {
        assert_eq!(follow("https://a.example:1/x/y", "/z").unwrap(), "https://a.example:1/z");
        assert_eq!(follow("https://a/x", "https://b/y").unwrap(), "https://b/y");
        assert!(follow("https://a/x", "http://b/y").is_err());
        assert!(follow("https://a/x", "HTTP://b/y").is_err());
        assert!(follow("https://a/x", "ftp://b/y").is_err());
    }

    #[test]
    fn content_range_parses() {
        assert_eq!(content_range("bytes 10-19/100"), Some((10, 19, Some(100))));
        assert_eq!(content_range("bytes 10-19/*"), Some((10, 19, None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }

    #[test]
    fn plain_http_endpoints_are_refused() {
        let err =
            HuggingFace::from_config(&Config::new("/m").hf_endpoint("http://huggingface.co")).unwrap_err();
        assert!(err.to_string().contains("HF_ENDPOINT"), "{err}");
        let ok = HuggingFace::from_config(&Config::new("/m").hf_token(Some(Secret::new("hf_abc")))).unwrap();
        assert!(!format!("{ok:?}").contains("hf_abc"));
    }
}
