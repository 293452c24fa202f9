//! The Hub's model API, asked as huggingface_hub's `model_info(files_metadata=True)` asks it
//! (`hf_api.py`): `GET {endpoint}/api/models/{owner}/{repo}/revision/{revision}?blobs=true`,
//! the revision percent-encoded as one path segment. The answer names the commit the revision
//! points to (`sha`) and every file of it (`siblings`: `rfilename`, `size`, and `lfs` with
//! `sha256` and `size` for an LFS file).

use std::io::Read;

use serde::Deserialize;
use ureq::http::StatusCode;

use super::signals::{busy, hub_refusal, HubTarget};
use super::{read_said, redirect_target, same_origin, saying, HttpSource, MAX_REDIRECTS};
use crate::error::{ErrorKind, SourceError};
use crate::sources::agent::classify;
use crate::sources::location::redact;

/// The most of an API answer read: a repository with thousands of files fits.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// A repository at one revision, as the Hub's model API describes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RepoInfo {
    /// The commit the revision points to (40 hex digits).
    pub sha: String,
    /// Every file of the repository at that commit.
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

/// One file of a repository.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Sibling {
    /// Its path in the repository (`model-Q8_0.gguf`, `sub/dir/file`).
    pub rfilename: String,
    /// Its size in bytes, when the Hub gave it.
    #[serde(default)]
    pub size: Option<u64>,
    /// What Git LFS holds of it; `None` for a file stored in Git itself.
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
}

/// The LFS facts of a file: the size and SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LfsInfo {
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size of the file's bytes.
    pub size: u64,
}

impl HttpSource {
    /// The Hub's description of `repo_id` (`owner/name`) at `revision` (a branch, tag or
    /// commit), with each file's size and LFS SHA-256. Errors carry the Hub's `X-Error-Code`
    /// meaning (gated, no such repository or revision).
    pub fn model_info(&self, repo_id: &str, revision: &str) -> Result<RepoInfo, SourceError> {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                SourceError::failed(ErrorKind::Network, format!("{} cannot take a path", redact(&self.base)))
            })?;
            segments.pop_if_empty().push("api").push("models");
            segments.extend(repo_id.split('/'));
            segments.push("revision").push(revision);
        }
        url.query_pairs_mut().append_pair("blobs", "true");
        let target = HubTarget { repo: repo_id, revision, file: None };
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.get(url.as_str()).header("Accept", "application/json");
            if let Some(token) = self.token_for(&url) {
                req = req.header("Authorization", format!("Bearer {}", token.expose()));
            }
            let here = redact(&url);
            let resp = req.call().map_err(|e| classify(e, &here))?;
            let status = resp.status();
            if status.is_redirection() {
                let next = redirect_target(resp, &url, &here)?;
                if !same_origin(&next, &self.base) {
                    return Err(SourceError::failed(
                        ErrorKind::Network,
                        format!("{here}: the API redirected to another host ({})", redact(&next)),
                    ));
                }
                url = next; // a renamed repository
                continue;
            }
            if !status.is_success() {
                let (parts, body) = resp.into_parts();
                let said = read_said(&parts.headers, body, &self.secrets());
                let said = said.as_deref();
                let error = match status {
                    StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::NOT_FOUND
                    | StatusCode::GONE => {
                        hub_refusal(status, &parts.headers, &here, &target, self.token.is_some())
                    }
                    s if s == StatusCode::REQUEST_TIMEOUT
                        || s == StatusCode::TOO_MANY_REQUESTS
                        || s.is_server_error() =>
                    {
                        busy(s, &parts.headers, &here, said)
                    }
                    s => SourceError::failed(
                        ErrorKind::Network,
                        format!("{here}: unexpected HTTP {s}{}", saying(said)),
                    ),
                };
                return Err(error);
            }
            let mut text = Vec::new();
            resp.into_body().into_reader().take(MAX_ANSWER + 1).read_to_end(&mut text).map_err(|e| {
                SourceError::failed_by(ErrorKind::Network, format!("{here}: reading the answer"), e)
            })?;
            if text.len() as u64 > MAX_ANSWER {
                return Err(SourceError::failed(
                    ErrorKind::Network,
                    format!("{here}: the answer is larger than {MAX_ANSWER} bytes"),
                ));
            }
            let info: RepoInfo = serde_json::from_slice(&text).map_err(|e| {
                SourceError::failed_by(
                    ErrorKind::Network,
                    format!("{here}: not the Hub's model API answer"),
                    e,
                )
            })?;
            let sha = info.sha.to_ascii_lowercase();
            if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(SourceError::failed(
                    ErrorKind::Network,
                    format!("{here}: `sha` is not a commit hash: {:?}", info.sha),
                ));
            }
            return Ok(RepoInfo { sha, ..info });
        }
        Err(SourceError::failed(
            ErrorKind::Network,
            format!("more than {MAX_REDIRECTS} redirects from the API"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hubs_answer_parses_with_and_without_lfs() {
        let text = r#"{"_id":"x","id":"acme/tiny-GGUF","sha":"0123456789abcdef0123456789abcdef01234567",
            "siblings":[{"rfilename":"README.md","size":12,"blobId":"b"},
                        {"rfilename":"tiny-Q8_0.gguf","size":100,"blobId":"c",
                         "lfs":{"size":100,"sha256":"ab","pointerSize":130}}],"private":false}"#;
        let info: RepoInfo = serde_json::from_str(text).unwrap();
        assert_eq!(info.siblings.len(), 2);
        assert_eq!(info.siblings[0].lfs, None);
        assert_eq!(info.siblings[1].lfs, Some(LfsInfo { sha256: "ab".into(), size: 100 }));
    }
}
