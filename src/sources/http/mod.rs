//! HTTPS sources: Hugging Face (`{endpoint}/{owner}/{repo}/resolve/{revision}/{file}`) and
//! plain HTTPS mirrors holding the flat layout (`{base}/{file}`, e.g. an internal nginx or
//! Artifactory), over HTTPS only.
//!
//! On the Hub a file is resolved once per download (see `resolve.rs`): range requests then go
//! straight to the file host, and the Hub is asked again only when the file host refuses the
//! URL (401, 403, 404, 410: a signed URL that expired or was refused), when the URL is old or
//! about to expire, or after repeated transient failures — at most [`resolve::MAX_RERESOLVES`]
//! times. Every response body is read to its end so that its connection goes back to the
//! pool: a download with N connections opens N connections.
//!
//! Every answer is checked against what was asked before a byte of it is used
//! (`response.rs`: status, `Content-Range`, `Content-Length`, encoding): one that cannot be
//! right is a protocol error, not retried. A refusal is reported with what its body says
//! (`said.rs`: `HTTP 400: InvalidArgument: Invalid Range`), bounded and without secrets.
//!
//! Redirects are followed here, not by the HTTP client, so that each hop is checked: a
//! redirect is resolved against the URL it came from (`Url::join`), a redirect to plain HTTP is
//! refused, and the token goes to the endpoint's host only, never to another host (the CDN).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::http::{HeaderMap, StatusCode};
use url::Url;

use super::agent::{agent, classify};
use super::location::redact;
use super::source::{Fetch, FetchRequest, ModelSource};
use crate::catalog::ModelEntry;
use crate::config::{vars, Config, Secret};
use crate::error::{ErrorKind, RegistryError, Report, Result, SourceError};

mod api;
mod resolve;
mod response;
mod said;
mod signals;
pub(crate) mod xet;

pub use api::{LfsInfo, RepoInfo, Sibling};

pub use resolve::Linked;
use resolve::{Resolved, FAILURES_BEFORE_RERESOLVE, MAX_RERESOLVES};
pub(crate) use response::open_body;
pub(crate) use said::{drain, read_said};
use signals::hub_refusal;
pub(crate) use signals::{busy, header, if_range_for, saying};

pub(crate) const MAX_REDIRECTS: usize = 10;

/// An HTTPS source: Hugging Face, or a mirror with the flat layout.
pub struct HttpSource {
    base: Url,
    token: Option<Secret>,
    agent: ureq::Agent,
    mirror: bool,
    /// Per file: where its bytes are, and how the file host has been answering; each behind a
    /// lock of its own, so that one file's resolution (a round trip to the Hub) never holds up
    /// another's.
    files: Mutex<HashMap<String, Arc<Mutex<FileState>>>>,
}

#[derive(Default)]
struct FileState {
    resolved: Option<Resolved>,
    reresolves: u32,
    failures: u32,
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
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Resolves a `Location` against the URL it came from; refuses anything but HTTPS.
pub(crate) fn follow(from: &Url, location: &str) -> Result<Url, SourceError> {
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

/// Where a redirect answer points, resolved against the URL it came from (HTTPS only); its
/// body is drained so that the connection is reused.
pub(crate) fn redirect_target(
    resp: ureq::http::Response<ureq::Body>,
    from: &Url,
    here: &str,
) -> Result<Url, SourceError> {
    let location = header(resp.headers(), "location").map(str::to_string).ok_or_else(|| {
        SourceError::failed(ErrorKind::Network, format!("{here}: redirect without Location"))
    })?;
    drain(resp.into_body());
    follow(from, &location)
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
        let token = if mirror { None } else { config.resolve_hf_token().0 };
        Ok(Self { base: base.clone(), token, agent: agent(config)?, mirror, files: Mutex::default() })
    }

    /// The endpoint (or mirror base).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Where `entry`'s bytes are asked for first: the pinned resolve URL, or `{base}/{path}`
    /// on a mirror (the file's repository path, each segment percent-encoded).
    pub fn url(&self, entry: &ModelEntry) -> Url {
        if self.mirror {
            let mut url = self.base.clone();
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().extend(entry.hf_filename.split('/'));
            }
            url
        } else {
            entry.hf_url(&self.base)
        }
    }

    /// The token, for a request to `url`: only on the endpoint's own origin.
    fn token_for(&self, url: &Url) -> Option<&Secret> {
        self.token.as_ref().filter(|_| same_origin(url, &self.base))
    }

    /// The state of `file` (made on first use).
    fn file_state(&self, file: &str) -> Arc<Mutex<FileState>> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.entry(file.to_string()).or_default().clone()
    }

    fn state<R>(&self, file: &str, f: impl FnOnce(&mut FileState) -> R) -> R {
        let state = self.file_state(file);
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    /// Where to fetch `entry`'s bytes from now: the resolved URL while it is fresh, else a new
    /// resolution (one at a time per file: its other connections wait for it and share it).
    fn file_url(&self, entry: &ModelEntry) -> Result<Url, SourceError> {
        if self.mirror {
            return Ok(self.url(entry));
        }
        self.resolved(entry).map(|r| r.url)
    }

    /// `entry`'s resolution while it is fresh, else a new one, kept for the transfers.
    fn resolved(&self, entry: &ModelEntry) -> Result<Resolved, SourceError> {
        // This file's lock only: the other files of this source resolve meanwhile.
        let state = self.file_state(&entry.hf_filename);
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = state.resolved.as_ref().filter(|r| r.is_fresh()) {
            return Ok(r.clone());
        }
        let resolved = self.resolve(entry)?;
        state.resolved = Some(resolved.clone());
        state.failures = 0;
        Ok(resolved)
    }

    /// The Xet file id of `entry`'s file from a resolution already made, if one was.
    pub(crate) fn known_xet_id(&self, entry: &ModelEntry) -> Option<String> {
        if self.mirror {
            return None;
        }
        self.state(&entry.hf_filename, |s| s.resolved.as_ref().and_then(|r| r.xet_hash.clone()))
    }

    /// Whether this is the Hugging Face Hub (not an HTTPS mirror).
    pub(crate) fn is_hub(&self) -> bool {
        !self.mirror
    }

    /// The Xet file id of `entry`'s file (`X-Xet-Hash`), `None` when the Hub does not store
    /// it in Xet: from the resolution a download makes anyway, kept for it (no request more).
    pub(crate) fn xet_file_id(&self, entry: &ModelEntry) -> Result<Option<String>, SourceError> {
        if self.mirror {
            return Ok(None);
        }
        self.resolved(entry).map(|r| r.xet_hash)
    }

    /// The file host refused `url` (`status`): forget it, so that the next request resolves
    /// again, unless that was tried too often already. Connections that meet the refusal of a
    /// URL already replaced by another connection's resolution just retry with the new one.
    fn refused(
        &self,
        entry: &ModelEntry,
        url: &Url,
        here: &str,
        status: StatusCode,
        said: Option<&str>,
    ) -> SourceError {
        let n = self.state(&entry.hf_filename, |s| {
            if s.resolved.as_ref().is_some_and(|r| r.url == *url) {
                s.resolved = None;
                s.reresolves += 1;
            }
            s.reresolves
        });
        if n > MAX_RERESOLVES {
            return SourceError::failed(
                ErrorKind::Network,
                format!(
                    "{here}: HTTP {status} from the file host, again after resolving the URL {MAX_RERESOLVES} times{}",
                    saying(said)
                ),
            );
        }
        SourceError::Transient {
            reason: format!(
                "{here}: HTTP {status} from the file host (a signed URL that expired or was refused; \
                 resolving the URL again){}",
                saying(said)
            ),
            retry_after: Some(Duration::ZERO),
            cause: None,
        }
    }

    /// Counts a transient failure at the file host for `url`; after several in a row the URL
    /// is resolved again on the next request.
    fn failed_at_file_host(&self, entry: &ModelEntry, url: &Url) {
        self.state(&entry.hf_filename, |s| {
            if s.resolved.as_ref().is_none_or(|r| r.url != *url) {
                return;
            }
            s.failures += 1;
            if s.failures >= FAILURES_BEFORE_RERESOLVE && s.reresolves < MAX_RERESOLVES {
                s.resolved = None;
                s.reresolves += 1;
            }
        });
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
            if let Some(etag) = request.if_range.as_deref().and_then(|v| if_range_for(v, url)) {
                req = req.header("If-Range", etag);
            }
        }
        if let Some(token) = self.token_for(url) {
            req = req.header("Authorization", format!("Bearer {}", token.expose()));
        }
        req
    }

    /// What a 4xx/5xx from `url` means; `resolved` is the resolution it came from, `said`
    /// what the answer's body says.
    fn refusal(
        &self,
        entry: &ModelEntry,
        url: &Url,
        resolved: &Url,
        status: StatusCode,
        headers: &HeaderMap,
        said: Option<&str>,
    ) -> SourceError {
        let here = redact(url);
        let at_file_host = !self.mirror && !same_origin(url, &self.base);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE
                if at_file_host =>
            {
                self.refused(entry, resolved, &here, status, said)
            }
            StatusCode::NOT_FOUND | StatusCode::GONE if self.mirror => {
                SourceError::NotFound { detail: Some(format!("{here}: HTTP {status}{}", saying(said))) }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.mirror => SourceError::denied(format!(
                "{here}: HTTP {status}: the mirror refused access{}",
                saying(said)
            )),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE => {
                hub_refusal(status, headers, &here, &entry.into(), self.token.is_some())
            }
            s if s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS
                || s.is_server_error() =>
            {
                if at_file_host {
                    self.failed_at_file_host(entry, resolved);
                }
                busy(s, headers, &here, said)
            }
            s => match said {
                Some(said) => {
                    SourceError::failed(ErrorKind::Network, format!("{here}: HTTP {}: {said}", s.as_u16()))
                }
                None => SourceError::failed(ErrorKind::Network, format!("{here}: unexpected HTTP {s}")),
            },
        }
    }

    /// Never shown in what a server says: the token.
    fn secrets(&self) -> Vec<&str> {
        self.token.as_ref().map(Secret::expose).into_iter().collect()
    }
}

impl ModelSource for HttpSource {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError> {
        let resolved = self.file_url(entry)?;
        let mut url = resolved.clone();
        for _ in 0..=MAX_REDIRECTS {
            let here = redact(&url);
            let resp = self.request(&url, request).call().map_err(|e| {
                if !self.mirror && !same_origin(&url, &self.base) {
                    self.failed_at_file_host(entry, &resolved);
                }
                classify(e, &here)
            })?;
            let status = resp.status();
            if status.is_redirection() {
                url = redirect_target(resp, &url, &here)?;
                continue;
            }
            if status == StatusCode::RANGE_NOT_SATISFIABLE && request.offset > 0 && request.end.is_none() {
                // The partial no longer matches what the server has: start over.
                drain(resp.into_body());
                return self.fetch(entry, &FetchRequest { offset: 0, end: None, if_range: None });
            }
            if !status.is_success() {
                let (parts, body) = resp.into_parts();
                let said = read_said(&parts.headers, body, &self.secrets());
                return Err(self.refusal(entry, &url, &resolved, status, &parts.headers, said.as_deref()));
            }
            let fetch = open_body(resp, request, &url, here)?;
            self.state(&entry.hf_filename, |s| s.failures = 0);
            return Ok(fetch);
        }
        Err(SourceError::failed(
            ErrorKind::Network,
            format!(
                "more than {MAX_REDIRECTS} redirects from {} (a redirect loop?)",
                redact(&self.url(entry))
            ),
        ))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn is_network(&self) -> bool {
        true
    }

    /// The Hub has no file of a model adopted from an OCI registry (an HTTPS mirror, a flat
    /// copy of a models directory, may).
    fn serves(&self, entry: &ModelEntry) -> bool {
        self.mirror || entry.oci.is_none()
    }

    fn check(&self) -> Result<String, String> {
        let started = std::time::Instant::now();
        match self.agent.head(self.base.as_str()).call() {
            Ok(resp) => {
                Ok(format!("answers (HTTP {}, {} ms)", resp.status().as_u16(), started.elapsed().as_millis()))
            }
            Err(e) => Err(Report::new(&classify(e, &redact(&self.base))).to_string()),
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
