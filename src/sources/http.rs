//! HTTPS sources: Hugging Face (`{endpoint}/{owner}/{repo}/resolve/{revision}/{file}`) and
//! plain HTTPS mirrors holding the flat layout (`{base}/{file}`, e.g. an internal nginx or
//! Artifactory), over HTTPS only.
//!
//! Redirects are followed here, not by the HTTP client, so that each hop is checked: a
//! redirect is resolved against the URL it came from (`Url::join`), a redirect to plain HTTP is
//! refused, and the token goes to the endpoint's host only, never to another host (the CDN).
//! The `X-Linked-Size` of the Hub's redirect is compared with the catalog before any byte is
//! fetched.

use std::fmt;
use std::time::Duration;

use ureq::http::{HeaderMap, StatusCode};
use url::Url;

use super::agent::{agent, classify};
use super::location::redact;
use super::source::{Fetch, FetchRequest, ModelSource};
use crate::catalog::ModelEntry;
use crate::config::{vars, Config, Secret};
use crate::error::{ErrorKind, RegistryError, Result, SourceError};

const MAX_REDIRECTS: usize = 10;

/// An HTTPS source: Hugging Face, or a mirror with the flat layout.
pub struct HttpSource {
    base: Url,
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

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSource")
            .field("base", &redact(&self.base))
            .field("mirror", &self.mirror)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.mirror { "HTTPS mirror" } else { "Hugging Face" };
        write!(f, "{kind} {}", redact(&self.base).trim_end_matches('/'))
    }
}

/// Whether two URLs name the same origin (scheme, host and port).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl HttpSource {
    /// Hugging Face at `config`'s endpoint, with its token, trust roots, proxy and timeouts.
    pub fn hugging_face(config: &Config) -> Result<Self> {
        Self::build(config.hf_endpoint(), config, false, vars::HF_ENDPOINT)
    }

    /// An HTTPS mirror at `base` (`https://models.internal/gguf`): `{base}/{file}`. It gets
    /// the same TLS, proxy and redirect rules as Hugging Face, and never the token.
    pub fn mirror(base: &Url, config: &Config) -> Result<Self> {
        Self::build(base, config, true, vars::MODELS_MIRROR)
    }

    fn build(base: &Url, config: &Config, mirror: bool, variable: &str) -> Result<Self> {
        if base.scheme() != "https" || base.host_str().is_none_or(str::is_empty) {
            return Err(RegistryError::config(
                variable,
                format!("`{}` is not an https:// URL; only HTTPS is allowed", redact(base)),
            ));
        }
        let token = if mirror { None } else { config.hf_token().cloned() };
        Ok(Self { base: base.clone(), token, agent: agent(config)?, mirror })
    }

    /// The endpoint (or mirror base).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Asks the Hub, with a `HEAD` that does not follow the redirect (no body), what it
    /// holds for `entry` at the pinned revision: status, `X-Linked-Size` and `X-Linked-Etag`
    /// (for files not in LFS, `Content-Length` and `ETag`).
    pub fn head_linked(&self, entry: &ModelEntry) -> Result<Linked, SourceError> {
        let url = self.url(entry);
        let mut req = self.agent.head(url.as_str()).header("Accept-Encoding", "identity");
        if let Some(token) = &self.token {
            req = req.header("Authorization", format!("Bearer {}", token.expose()));
        }
        let resp = req.call().map_err(|e| classify(e, &redact(&url)))?;
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

    /// Where `entry`'s bytes are: the pinned resolve URL, or `{base}/{file}` on a mirror.
    pub fn url(&self, entry: &ModelEntry) -> Url {
        if self.mirror {
            let mut url = self.base.clone();
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().push(&entry.hf_filename);
            }
            url
        } else {
            entry.hf_url(&self.base)
        }
    }

    fn request(
        &self,
        url: &Url,
        request: &FetchRequest,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let mut req = self.agent.get(url.as_str()).header("Accept-Encoding", "identity");
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
            if same_origin(url, &self.base) {
                req = req.header("Authorization", format!("Bearer {}", token.expose()));
            }
        }
        req
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

/// Resolves a `Location` against the URL it came from; refuses anything but HTTPS.
fn follow(from: &Url, location: &str) -> Result<Url, SourceError> {
    let next = from.join(location).map_err(|e| {
        SourceError::failed_by(ErrorKind::Network, format!("{}: unusable redirect target", redact(from)), e)
    })?;
    match next.scheme() {
        "https" => Ok(next),
        "http" => Err(SourceError::failed(
            ErrorKind::Network,
            format!("refused a redirect from {} to plain HTTP ({})", redact(from), redact(&next)),
        )),
        _ => Err(SourceError::failed(
            ErrorKind::Network,
            format!("unsupported redirect target `{}`", redact(&next)),
        )),
    }
}

impl ModelSource for HttpSource {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError> {
        let mut url = self.url(entry);
        let mut linked_etag: Option<String> = None;
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.request(&url, request).call().map_err(|e| classify(e, &redact(&url)))?;
            let status = resp.status();
            let headers = resp.headers();
            let here = redact(&url);
            if status.is_redirection() {
                let location = header(headers, "location").ok_or_else(|| {
                    SourceError::failed(ErrorKind::Network, format!("{here}: redirect without Location"))
                })?;
                if let Some(size) = header(headers, "x-linked-size").and_then(|s| s.parse::<u64>().ok()) {
                    if size != entry.size_bytes {
                        return Err(SourceError::WrongSize {
                            location: here,
                            actual: size,
                            expected: entry.size_bytes,
                        });
                    }
                }
                if let Some(etag) = header(headers, "x-linked-etag") {
                    linked_etag = Some(etag.to_string());
                }
                url = follow(&url, location)?;
                continue;
            }
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
                        cause: None,
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
                redact(&self.url(entry))
            ),
        ))
    }

    fn is_network(&self) -> bool {
        true
    }

    fn check(&self) -> Result<String, String> {
        let started = std::time::Instant::now();
        match self.agent.head(self.base.as_str()).call() {
            Ok(resp) => {
                Ok(format!("answers (HTTP {}, {} ms)", resp.status().as_u16(), started.elapsed().as_millis()))
            }
            Err(e) => Err(crate::error::Report::new(&classify(e, &redact(&self.base))).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        s.parse().unwrap()
    }

    #[test]
    fn the_token_goes_to_the_endpoints_origin_only() {
        assert!(same_origin(&url("https://huggingface.co/a/b"), &url("https://huggingface.co")));
        assert!(same_origin(&url("https://h:443/x"), &url("https://h/")));
        assert!(!same_origin(&url("https://h:8443/x"), &url("https://h/")));
        assert!(!same_origin(&url("https://cdn.h/x"), &url("https://h/")));
    }

    #[test]
    fn redirects_are_joined_and_stay_on_https() {
        let from = url("https://a.example:1/x/y");
        assert_eq!(follow(&from, "/z").unwrap().as_str(), "https://a.example:1/z");
        assert_eq!(follow(&from, "z?q=1").unwrap().as_str(), "https://a.example:1/x/z?q=1");
        assert_eq!(follow(&from, "//b.example/w").unwrap().as_str(), "https://b.example/w");
        assert_eq!(follow(&from, "https://b/y").unwrap().as_str(), "https://b/y");
        for bad in ["http://b/y", "HTTP://b/y", "ftp://b/y"] {
            assert!(follow(&from, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_range_parses() {
        assert_eq!(content_range("bytes 10-19/100"), Some((10, 19, Some(100))));
        assert_eq!(content_range("bytes 10-19/*"), Some((10, 19, None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }

    #[test]
    fn plain_http_endpoints_are_refused_and_tokens_stay_hidden() {
        let config = Config::new("/m").with_hf_endpoint(url("http://huggingface.co"));
        let err = HttpSource::hugging_face(&config).unwrap_err();
        assert!(err.to_string().contains("HF_ENDPOINT"), "{err}");
        let ok =
            HttpSource::hugging_face(&Config::new("/m").with_hf_token(Some(Secret::new("hf_abc")))).unwrap();
        assert!(!format!("{ok:?}").contains("hf_abc"));
    }

    #[test]
    fn mirror_urls_encode_the_file_name() {
        let m = HttpSource::mirror(&url("https://m.example/gguf/"), &Config::new("/m")).unwrap();
        let mut e = crate::catalog::Catalog::builtin().resolve("minilm").unwrap().clone();
        e.hf_filename = "a b#c.gguf".into();
        assert_eq!(m.url(&e).as_str(), "https://m.example/gguf/a%20b%23c.gguf");
        assert_eq!(m.to_string(), "HTTPS mirror https://m.example/gguf");
    }
}
