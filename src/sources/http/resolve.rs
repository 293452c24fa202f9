//! Resolving a file on the Hub once per download: one `HEAD` on the pinned `resolve` URL that
//! follows only the Hub's own (relative, renamed-repository) redirects and stops at the first
//! redirect to another host, the file host (the CDN). Its `X-Linked-Size` and `X-Linked-Etag`
//! are checked against the catalog before any byte is fetched; range requests then go straight
//! to the file host. As huggingface_hub does (`get_hf_file_metadata`,
//! `_httpx_follow_relative_redirects_with_backoff`).

use std::time::{Duration, Instant, SystemTime};

use ureq::http::StatusCode;
use url::Url;

use super::signals::{bare_etag, busy, content_range, expires, header, hub_refusal};
use super::{follow, same_origin, HttpSource, MAX_REDIRECTS};
use crate::catalog::ModelEntry;
use crate::error::{ErrorKind, SourceError};
use crate::sources::agent::classify;
use crate::sources::location::redact;

/// A resolved URL is used for at most this long when it does not say when it expires.
pub(super) const MAX_URL_AGE: Duration = Duration::from_secs(3600);
/// A signed URL is resolved again this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Re-resolutions of one file (refused or expired URLs, repeated failures) before giving up.
pub(super) const MAX_RERESOLVES: u32 = 3;
/// Transient failures in a row at the file host after which the URL is resolved again.
pub(super) const FAILURES_BEFORE_RERESOLVE: u32 = 3;

/// What the Hub says about a file: [`HttpSource::inspect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linked {
    /// The HTTP status of the Hub's last answer (302 for an LFS file, 200 for one it serves).
    pub status: u16,
    /// Where the bytes are: the file host's URL, or the Hub's own for a file it serves.
    pub file_url: Url,
    /// `X-Linked-Size`, else the total of a 2xx answer's `Content-Range`, else its
    /// `Content-Length` (never a redirect's). `None` when unknown: a size of 0 in a `HEAD`
    /// answer is unknown too (proxies and mirrors that drop the length send 0).
    pub size: Option<u64>,
    /// `X-Linked-Etag`, else the `ETag` of a 2xx answer, bare: the SHA-256 of an LFS file.
    pub sha256: Option<String>,
    /// `X-Repo-Commit`.
    pub commit: Option<String>,
    /// `X-Xet-Hash`: the file's Xet file id, when the Hub stores it in Xet (for a delta update).
    pub xet_hash: Option<String>,
}

/// A file's resolved URL and when to stop using it.
#[derive(Clone, Debug)]
pub(super) struct Resolved {
    pub url: Url,
    /// `X-Xet-Hash`, when the Hub stores the file in Xet.
    pub xet_hash: Option<String>,
    at: Instant,
    expires: Option<SystemTime>,
}

impl Resolved {
    pub(super) fn new(url: Url) -> Self {
        let expires = expires(&url);
        Self { url, xet_hash: None, at: Instant::now(), expires }
    }

    /// Whether the URL may still be used.
    pub(super) fn is_fresh(&self) -> bool {
        let expired = self.expires.is_some_and(|e| SystemTime::now() + EXPIRY_MARGIN >= e);
        !expired && self.at.elapsed() < MAX_URL_AGE
    }
}

/// A size from a `HEAD` answer's header: 0 (or no number) means unknown.
fn known_size(value: Option<&str>) -> Option<u64> {
    value.and_then(|v| v.parse().ok()).filter(|&n: &u64| n > 0)
}

impl HttpSource {
    /// Asks the Hub where `entry`'s bytes are, with `HEAD` requests (no body) that follow
    /// only the Hub's own redirects: status, file URL, `X-Linked-Size`, `X-Linked-Etag`,
    /// `X-Repo-Commit`. Errors carry the Hub's `X-Error-Code` meaning (gated, no such
    /// repository, revision or file).
    pub fn inspect(&self, entry: &ModelEntry) -> Result<Linked, SourceError> {
        let mut url = entry.hf_url(&self.base);
        let (mut size, mut sha256, mut commit, mut xet_hash) = (None, None, None, None);
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.head(url.as_str()).header("Accept-Encoding", "identity");
            if let Some(token) = self.token_for(&url) {
                req = req.header("Authorization", format!("Bearer {}", token.expose()));
            }
            let here = redact(&url);
            let resp = req.call().map_err(|e| classify(e, &here))?;
            let (status, headers) = (resp.status(), resp.headers());
            size = known_size(header(headers, "x-linked-size")).or(size);
            sha256 = header(headers, "x-linked-etag").map(bare_etag).or(sha256);
            commit = header(headers, "x-repo-commit").map(str::to_string).or(commit);
            xet_hash = header(headers, "x-xet-hash").map(str::to_ascii_lowercase).or(xet_hash);
            if status.is_redirection() {
                let location = header(headers, "location").ok_or_else(|| {
                    SourceError::failed(ErrorKind::Network, format!("{here}: redirect without Location"))
                })?;
                let next = follow(&url, location)?;
                if same_origin(&next, &self.base) {
                    url = next; // a renamed repository, a resolve cache: still the Hub
                    continue;
                }
                return Ok(Linked {
                    status: status.as_u16(),
                    file_url: next,
                    size,
                    sha256,
                    commit,
                    xet_hash,
                });
            }
            if status.is_success() {
                let size = size
                    .or_else(|| header(headers, "content-range").and_then(content_range).and_then(|r| r.2))
                    .or_else(|| known_size(header(headers, "content-length")))
                    .filter(|&n| n > 0);
                let sha256 = sha256.or_else(|| header(headers, "etag").map(bare_etag));
                return Ok(Linked { status: status.as_u16(), file_url: url, size, sha256, commit, xet_hash });
            }
            return Err(match status {
                StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::GONE => {
                    hub_refusal(status, headers, &here, &entry.into(), self.token.is_some())
                }
                s if s == StatusCode::REQUEST_TIMEOUT
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s.is_server_error() =>
                {
                    busy(s, headers, &here, None)
                }
                s => SourceError::failed(ErrorKind::Network, format!("{here}: unexpected HTTP {s}")),
            });
        }
        Err(SourceError::failed(
            ErrorKind::Network,
            format!(
                "more than {MAX_REDIRECTS} redirects from {} (a redirect loop?)",
                redact(&entry.hf_url(&self.base))
            ),
        ))
    }

    /// Resolves `entry` and checks what the Hub reports against the catalog, before any byte;
    /// what it does not report (a size of 0 or none, no SHA-256) is left to the transfer's
    /// checks (`Content-Range`, the size on disk, the hash).
    pub(super) fn resolve(&self, entry: &ModelEntry) -> Result<Resolved, SourceError> {
        let linked = self.inspect(entry)?;
        let location = redact(&entry.hf_url(&self.base));
        if let Some(size) = linked.size.filter(|&s| s != entry.size_bytes) {
            return Err(SourceError::WrongSize { location, actual: size, expected: entry.size_bytes });
        }
        let is_sha256 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if let Some(sha) = linked.sha256.filter(|s| is_sha256(s) && !s.eq_ignore_ascii_case(&entry.sha256)) {
            return Err(SourceError::WrongSha256 {
                location,
                actual: sha,
                expected: entry.sha256.to_string(),
            });
        }
        Ok(Resolved { xet_hash: linked.xet_hash, ..Resolved::new(linked.file_url) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_of_0_in_a_head_is_unknown() {
        assert_eq!(known_size(Some("0")), None);
        assert_eq!(known_size(Some("")), None);
        assert_eq!(known_size(None), None);
        assert_eq!(known_size(Some("25008064")), Some(25_008_064));
    }

    #[test]
    fn a_url_is_fresh_until_it_expires_or_ages() {
        let fresh = Resolved::new("https://cdn.example/f".parse().unwrap());
        assert!(fresh.is_fresh());
        let soon = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 30;
        let expiring = Resolved::new(format!("https://cdn.example/f?Expires={soon}").parse().unwrap());
        assert!(!expiring.is_fresh(), "within the margin of its expiry");
        let mut old = Resolved::new("https://cdn.example/f".parse().unwrap());
        old.at = Instant::now() - MAX_URL_AGE - Duration::from_secs(1);
        assert!(!old.is_fresh());
    }
}
