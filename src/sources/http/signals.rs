//! What the Hub and its file hosts say in headers, read in one place: how long to wait
//! (`RateLimit`, `Retry-After` in seconds or as an HTTP date), what an error means
//! (`X-Error-Code`), which validators may go back in `If-Range` (strong ones, to the host that
//! gave them), and when a signed URL expires (`Expires=`).
//!
//! As huggingface_hub reads them (`utils/_http.py`: `parse_ratelimit_headers`,
//! `hf_raise_for_status`; `file_download.py`: `get_hf_file_metadata`).

use std::time::{Duration, SystemTime};

use ureq::http::{HeaderMap, StatusCode};
use url::Url;

use crate::catalog::ModelEntry;
use crate::error::SourceError;

/// A header's value, trimmed.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// How long the server asks to wait: the `RateLimit` reset (`"resolvers";r=0;t=55`) when no
/// request is left, else `Retry-After` in seconds or as an HTTP date.
pub(super) fn wait_asked(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some((remaining, reset)) = header(headers, "ratelimit").and_then(ratelimit) {
        if remaining == 0 {
            return Some(Duration::from_secs(reset));
        }
    }
    let value = header(headers, "retry-after")?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `(remaining, reset seconds)` of a `RateLimit` header (IETF draft, as the Hub sends it:
/// `"resolvers";r=0;t=55`).
fn ratelimit(value: &str) -> Option<(u64, u64)> {
    let (mut r, mut t) = (None, None);
    for part in value.split(';').map(str::trim) {
        match part.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("r", v)) => r = v.parse().ok(),
            Some(("t", v)) => t = v.parse().ok(),
            _ => {}
        }
    }
    Some((r?, t?))
}

/// The failure a busy answer (408, 429, 5xx) means: a wait the server asked for (429 with
/// `RateLimit` or `Retry-After`), or a transient failure. `said` is what its body says
/// ([`said`]).
pub(crate) fn busy(status: StatusCode, headers: &HeaderMap, here: &str, said: Option<&str>) -> SourceError {
    let wait = wait_asked(headers, SystemTime::now());
    let said = saying(said);
    match wait {
        Some(wait) if status == StatusCode::TOO_MANY_REQUESTS => {
            let policy = header(headers, "ratelimit-policy").map(|p| format!(" ({p})")).unwrap_or_default();
            SourceError::RateLimited { reason: format!("{here}: HTTP 429, rate limited{policy}{said}"), wait }
        }
        _ => SourceError::Transient {
            reason: format!("{here}: HTTP {status}{said}"),
            retry_after: wait,
            cause: None,
        },
    }
}

/// `": {said}"`, to end a message with what the server said; empty when it said nothing.
pub(crate) fn saying(said: Option<&str>) -> String {
    said.map(|s| format!(": {s}")).unwrap_or_default()
}

/// What a Hub answer is about: a repository at a revision, and a file of it (or the API's
/// view of the whole revision).
pub(super) struct HubTarget<'a> {
    pub repo: &'a str,
    pub revision: &'a str,
    pub file: Option<&'a str>,
}

impl<'a> From<&'a ModelEntry> for HubTarget<'a> {
    fn from(entry: &'a ModelEntry) -> Self {
        Self { repo: &entry.hf_repo, revision: &entry.revision, file: Some(&entry.hf_filename) }
    }
}

/// What a 401, 403, 404 or 410 from the Hub itself means, from its `X-Error-Code`.
pub(super) fn hub_refusal(
    status: StatusCode,
    headers: &HeaderMap,
    here: &str,
    target: &HubTarget<'_>,
    has_token: bool,
) -> SourceError {
    let HubTarget { repo, revision, file } = *target;
    let code = header(headers, "x-error-code").unwrap_or("");
    let missing = |reason: String| SourceError::NotFound { detail: Some(reason) };
    match code {
        "GatedRepo" => SourceError::denied(if has_token {
            format!("{here}: HTTP {status}: {repo} is gated and the token in HF_TOKEN has no access: accept the model's license on its Hub page")
        } else {
            format!("{here}: HTTP {status}: {repo} is gated: accept its license on the Hub and set HF_TOKEN")
        }),
        "RepoNotFound" => missing(format!(
            "{here}: HTTP {status}: the repository {repo} does not exist{}",
            if has_token { " or the token in HF_TOKEN cannot see it" } else { " (or is private: set HF_TOKEN)" }
        )),
        "RevisionNotFound" => missing(match file {
            Some(_) => format!(
                "{here}: HTTP {status}: {repo} has no revision {revision}; check the pin with `strata-model catalog check`"
            ),
            None => format!("{here}: HTTP {status}: {repo} has no revision {revision} (a branch, tag or commit)"),
        }),
        "EntryNotFound" => missing(format!(
            "{here}: HTTP {status}: {repo} has no file {} at revision {revision}",
            file.unwrap_or("asked for")
        )),
        _ if status == StatusCode::NOT_FOUND || status == StatusCode::GONE => {
            missing(format!("{here}: HTTP {status}"))
        }
        _ => SourceError::denied(if has_token {
            format!("{here}: HTTP {status}: the token in HF_TOKEN has no access: accept the model's license on its Hub page")
        } else {
            format!("{here}: HTTP {status}: the repository is gated or private: accept its license on the Hub and set HF_TOKEN")
        }),
    }
}

/// The response's `ETag` when it is a strong validator (a weak `W/"…"` one may not be sent
/// in `If-Range`, RFC 9110 §13.1.5), tagged with the origin that gave it.
pub(super) fn validator(headers: &HeaderMap, url: &Url) -> Option<String> {
    let etag = header(headers, "etag").filter(|e| e.starts_with('"') && e.len() > 2)?;
    Some(format!("{} {etag}", url.origin().ascii_serialization()))
}

/// The entity tag of a validator given by [`validator`], when it came from `url`'s origin.
pub(crate) fn if_range_for<'a>(validator: &'a str, url: &Url) -> Option<&'a str> {
    let (origin, etag) = validator.split_once(' ')?;
    (origin == url.origin().ascii_serialization() && etag.starts_with('"')).then_some(etag)
}

/// When a signed URL stops working: its `Expires=` query parameter (seconds since the epoch,
/// as CloudFront signs them).
pub(super) fn expires(url: &Url) -> Option<SystemTime> {
    let secs = url.query_pairs().find(|(k, _)| k.eq_ignore_ascii_case("expires"))?.1.parse::<u64>().ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// An `X-Linked-Etag` or `ETag` without `W/` and quotes: the SHA-256 for an LFS file.
pub(super) fn bare_etag(value: &str) -> String {
    value.trim_start_matches("W/").trim_matches('"').to_string()
}

/// Parses `Content-Range: bytes START-END/TOTAL`.
pub(super) fn content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn waits_come_from_ratelimit_then_retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = headers(&[("ratelimit", "\"resolvers\";r=0;t=55"), ("retry-after", "3")]);
        assert_eq!(wait_asked(&h, now), Some(Duration::from_secs(55)));
        let h = headers(&[("ratelimit", "\"resolvers\";r=12;t=55"), ("retry-after", "3")]);
        assert_eq!(wait_asked(&h, now), Some(Duration::from_secs(3)), "requests left: Retry-After decides");
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(wait_asked(&headers(&[("retry-after", &date)]), now), Some(Duration::from_secs(90)));
        assert_eq!(wait_asked(&headers(&[("retry-after", "soon")]), now), None);
        let busy =
            busy(StatusCode::TOO_MANY_REQUESTS, &headers(&[("retry-after", "7")]), "https://hub/x", None);
        assert!(matches!(busy, SourceError::RateLimited { wait, .. } if wait == Duration::from_secs(7)));
    }

    #[test]
    fn only_strong_validators_go_back_and_only_to_their_origin() {
        let cdn: Url = "https://cdn.example/f?sig=1".parse().unwrap();
        let other: Url = "https://hub.example/f".parse().unwrap();
        assert_eq!(validator(&headers(&[("etag", "W/\"abc\"")]), &cdn), None);
        let v = validator(&headers(&[("etag", "\"abc\"")]), &cdn).unwrap();
        assert_eq!(if_range_for(&v, &cdn), Some("\"abc\""));
        assert_eq!(if_range_for(&v, &other), None);
        assert_eq!(if_range_for("\"abc\"", &cdn), None, "an untagged validator from an older version");
    }

    #[test]
    fn signed_urls_say_when_they_expire() {
        let url: Url = "https://cdn.example/f?Expires=1700000000&Signature=x".parse().unwrap();
        assert_eq!(expires(&url), Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        assert_eq!(expires(&"https://cdn.example/f".parse().unwrap()), None);
    }

    #[test]
    fn error_codes_become_the_right_message() {
        let entry = crate::catalog::Catalog::builtin().resolve("minilm").unwrap().clone();
        let text = |code: &str, status: StatusCode| {
            hub_refusal(status, &headers(&[("x-error-code", code)]), "https://hub/x", &(&entry).into(), false)
                .to_string()
        };
        assert!(text("GatedRepo", StatusCode::UNAUTHORIZED).contains("is gated"));
        assert!(text("RepoNotFound", StatusCode::UNAUTHORIZED).contains("does not exist"));
        assert!(text("RevisionNotFound", StatusCode::NOT_FOUND).contains("has no revision"));
        assert!(text("EntryNotFound", StatusCode::NOT_FOUND).contains("has no file"));
        let plain = hub_refusal(StatusCode::NOT_FOUND, &HeaderMap::new(), "h", &(&entry).into(), false);
        assert!(plain.is_not_found());
    }

    #[test]
    fn content_range_parses() {
        assert_eq!(content_range("bytes 10-19/100"), Some((10, 19, Some(100))));
        assert_eq!(content_range("bytes 10-19/*"), Some((10, 19, None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }
}
