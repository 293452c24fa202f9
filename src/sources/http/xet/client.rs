//! The Xet requests, on the Hub source's client: a read token for a repository at a revision
//! (hub-docs `docs/xet/auth.md`: `GET {endpoint}/api/models/{repo}/xet-read-token/{revision}`
//! with the Hub token → `{accessToken, exp, casUrl}`), a file's reconstruction
//! (`GET {casUrl}/v2/reconstructions/{file id}`, the v1 path on 404 or 501), and a xorb
//! fetch (every range of one signed URL in one request; `multipart/byteranges` when several).
//! The CAS token and the signed URLs are secrets: never in errors, logs or `Debug`.

use std::fmt;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use ureq::http::StatusCode;
use url::Url;

use super::multipart;
use super::reconstruction::{Reconstruction, XorbFetch};
use crate::config::Secret;
use crate::error::{ErrorKind, SourceError};
use crate::sources::agent::classify;
use crate::sources::http::{read_said, saying, HttpSource};
use crate::sources::location::redact;

/// The most of a reconstruction answer read (terms for a very large file fit).
const MAX_RECONSTRUCTION: u64 = 64 * 1024 * 1024;
/// The most of one xorb fetch held in memory (a xorb is at most 64 MiB serialized).
const MAX_FETCH: u64 = 80 * 1024 * 1024;
/// A token is renewed this long before it expires (xet-core's margin).
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// Why a xorb fetch failed.
#[derive(Debug)]
pub enum XorbFetchError {
    /// The signed URL was refused (401, 403: expired): new URLs may work.
    Refused(SourceError),
    /// Anything else (no connection, a timeout, a 5xx, an answer that is not the ranges).
    Failed(SourceError),
}

/// A CAS read token.
#[derive(Clone)]
pub struct XetToken {
    access: Secret,
    /// When it expires.
    pub expires: SystemTime,
    /// The CAS endpoint.
    pub cas: Url,
}

impl fmt::Debug for XetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XetToken").field("cas", &redact(&self.cas)).field("access", &"<redacted>").finish()
    }
}

impl XetToken {
    /// Whether it may still be used.
    pub fn is_fresh(&self) -> bool {
        SystemTime::now() + TOKEN_MARGIN < self.expires
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    access_token: String,
    exp: u64,
    cas_url: String,
}

fn failed(what: String) -> SourceError {
    SourceError::failed(ErrorKind::Network, what)
}

fn read_bounded(
    resp: ureq::http::Response<ureq::Body>,
    max: u64,
    here: &str,
) -> Result<Vec<u8>, SourceError> {
    read_paced(resp, max, here, &|_| true)
}

/// The body, at most `max` bytes, `pace` told of every piece read (it sleeps to keep a rate;
/// `false`: stop, the read fails).
fn read_paced(
    resp: ureq::http::Response<ureq::Body>,
    max: u64,
    here: &str,
    pace: &dyn Fn(usize) -> bool,
) -> Result<Vec<u8>, SourceError> {
    let reading = |e| SourceError::failed_by(ErrorKind::Network, format!("{here}: reading the answer"), e);
    let mut reader = resp.into_body().into_reader().take(max + 1);
    let (mut out, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reading(e)),
        };
        out.extend_from_slice(&buf[..n]);
        if !pace(n) {
            return Err(failed(format!("{here}: stopped")));
        }
    }
    if out.len() as u64 > max {
        return Err(failed(format!("{here}: the answer is larger than {max} bytes")));
    }
    Ok(out)
}

impl HttpSource {
    /// A Xet read token for `repo_id` at `revision` (a commit), with the Hub token.
    #[doc(hidden)] // the test suite checks its look-alike with it; not part of the API
    pub fn xet_read_token(&self, repo_id: &str, revision: &str) -> Result<XetToken, SourceError> {
        let mut url = self.base.clone();
        if let Ok(mut s) = url.path_segments_mut() {
            s.pop_if_empty().push("api").push("models").extend(repo_id.split('/'));
            s.push("xet-read-token").push(revision);
        }
        let here = redact(&url);
        let mut req = self.agent.get(url.as_str()).header("Accept", "application/json");
        if let Some(token) = self.token_for(&url) {
            req = req.header("Authorization", format!("Bearer {}", token.expose()));
        }
        let resp = req.call().map_err(|e| classify(e, &here))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let (parts, body) = resp.into_parts();
            let said = read_said(&parts.headers, body, &self.secrets());
            return Err(failed(format!("{here}: HTTP {status}{}", saying(said.as_deref()))));
        }
        let text = read_bounded(resp, 128 * 1024, &here)?;
        let t: TokenAnswer =
            serde_json::from_slice(&text).map_err(|_| failed(format!("{here}: not a Xet token answer")))?;
        let cas = Url::parse(&t.cas_url)
            .ok()
            .filter(|u| u.scheme() == "https")
            .ok_or_else(|| failed(format!("{here}: the CAS URL is not an https:// URL")))?;
        let expires = UNIX_EPOCH
            .checked_add(Duration::from_secs(t.exp))
            .ok_or_else(|| failed(format!("{here}: a Xet token expiring past any date")))?;
        Ok(XetToken { access: Secret::new(t.access_token), expires, cas })
    }

    /// The reconstruction of the file `file_id` (its `X-Xet-Hash`): v2, else v1 when the CAS
    /// does not serve v2 (404 or 501).
    #[doc(hidden)] // the test suite checks its look-alike with it; not part of the API
    pub fn xet_reconstruction(&self, token: &XetToken, file_id: &str) -> Result<Reconstruction, SourceError> {
        if file_id.len() != 64 || !file_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(failed(format!("`{file_id}` is not a Xet file id")));
        }
        for version in ["v2", "v1"] {
            let mut url = token.cas.clone();
            if let Ok(mut s) = url.path_segments_mut() {
                s.pop_if_empty().push(version).push("reconstructions").push(file_id);
            }
            let here = redact(&url);
            let resp = self
                .agent
                .get(url.as_str())
                .header("Authorization", format!("Bearer {}", token.access.expose()))
                .call()
                .map_err(|e| classify(e, &here))?;
            let status = resp.status();
            if version == "v2" && matches!(status, StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED) {
                crate::sources::http::drain(resp.into_body());
                continue;
            }
            if !status.is_success() {
                let (parts, body) = resp.into_parts();
                let said = read_said(&parts.headers, body, &[token.access.expose()]);
                return Err(failed(format!("{here}: HTTP {status}{}", saying(said.as_deref()))));
            }
            let text = read_bounded(resp, MAX_RECONSTRUCTION, &here)?;
            return Reconstruction::parse(&text).map_err(|why| failed(format!("{here}: {why}")));
        }
        Err(failed("the CAS serves no reconstruction API".into()))
    }

    /// The bytes of every range of `fetch`, in its order: one request with all its ranges
    /// (the signed URL authorizes exactly those), one part each.
    /// `pace` is told of every piece of the body read (it may sleep to keep a rate, or say
    /// `false` to stop).
    #[doc(hidden)] // the test suite checks its look-alike with it; not part of the API
    pub fn xet_fetch(
        &self,
        fetch: &XorbFetch,
        pace: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<Vec<u8>>, XorbFetchError> {
        self.xet_fetch_ranges(fetch, pace).map_err(|e| match e {
            (true, e) => XorbFetchError::Refused(e),
            (false, e) => XorbFetchError::Failed(e),
        })
    }

    /// [`HttpSource::xet_fetch`]; `true` with an error that is the URL's refusal (401, 403).
    fn xet_fetch_ranges(
        &self,
        fetch: &XorbFetch,
        pace: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<Vec<u8>>, (bool, SourceError)> {
        let other = |e| (false, e);
        let url =
            Url::parse(&fetch.url).map_err(|_| other(failed("a xorb fetch URL that is not a URL".into())))?;
        let here = redact(&url);
        let ranges: Vec<String> =
            fetch.ranges.iter().map(|(_, b)| format!("{}-{}", b.start, b.end)).collect();
        let resp = self
            .agent
            .get(url.as_str())
            .header("Range", format!("bytes={}", ranges.join(",")))
            .header("Accept-Encoding", "identity")
            .call()
            .map_err(|e| other(classify(e, &here)))?;
        let status = resp.status();
        if status != StatusCode::PARTIAL_CONTENT {
            crate::sources::http::drain(resp.into_body());
            return Err(if matches!(status.as_u16(), 401 | 403) {
                (true, SourceError::transient(format!("{here}: HTTP {status} (an expired signed URL?)")))
            } else {
                other(failed(format!("{here}: HTTP {status} for a xorb range")))
            });
        }
        let content_type = super::super::header(resp.headers(), "content-type").unwrap_or("").to_string();
        // One range answered alone: its Content-Range must be the range asked.
        let single = super::super::header(resp.headers(), "content-range")
            .and_then(super::super::signals::content_range)
            .map(|(start, end, _)| (start, end));
        let body = read_paced(resp, MAX_FETCH, &here, pace).map_err(other)?;
        let wanted: Vec<(u64, u64)> =
            fetch.ranges.iter().map(|(_, b)| (b.start, b.end - b.start + 1)).collect();
        let parts = match multipart::boundary(&content_type) {
            Some(b) => multipart::parts(&body, &b).map_err(|why| other(failed(format!("{here}: {why}"))))?,
            None if wanted.len() == 1 => {
                let (start, len) = wanted[0];
                if single != Some((start, start + len - 1)) {
                    return Err(other(failed(format!(
                        "{here}: the answer's Content-Range is not the range asked"
                    ))));
                }
                vec![multipart::Part { start, bytes: body }]
            }
            None => return Err(other(failed(format!("{here}: several ranges asked, one answered")))),
        };
        wanted
            .iter()
            .map(|&(start, len)| {
                parts
                    .iter()
                    .find(|p| p.start == start && p.bytes.len() as u64 == len)
                    .map(|p| p.bytes.clone())
                    .ok_or_else(|| {
                        other(failed(format!(
                            "{here}: the range from {start} ({len} bytes) is not in the answer"
                        )))
                    })
            })
            .collect()
    }
}
