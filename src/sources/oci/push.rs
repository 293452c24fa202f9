//! Uploads to a registry (the distribution spec's push): a blob is checked with `HEAD`, then
//! uploaded monolithically — `POST /v2/<name>/blobs/uploads/`, then `PUT <Location>?digest=…`
//! with the whole body — or in chunks (`chunked.rs`), and a manifest is `PUT` under its tag.

use std::io::Read;

use ureq::http::StatusCode;

use super::{Access, OciSource};
use crate::error::{ErrorKind, SourceError};
use crate::sources::agent::classify;
use crate::sources::http::{drain, header, read_said, same_origin};
use crate::sources::location::redact;

impl OciSource {
    /// The size of the blob `digest` (`sha256:<hex>`) when the repository has it.
    pub fn blob_size(&self, digest: &str) -> Result<Option<u64>, SourceError> {
        let url = self.api_url(&["blobs", digest]);
        let here = redact(&url);
        let mut make = |authorization: Option<&str>| {
            let mut req = self.agent.head(url.as_str());
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.call()
        };
        let resp = self.call(Access::Push, &here, &mut make)?;
        let status = resp.status();
        let size = header(resp.headers(), "content-length").and_then(|s| s.parse().ok());
        drain(resp.into_body());
        match status {
            s if s.is_success() => Ok(size),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(self.failure(s, &ureq::http::HeaderMap::new(), &here, None)),
        }
    }

    /// Uploads `size` bytes from `body` as the blob `digest` (`sha256:<hex>`) in one request:
    /// `POST`, then `PUT <Location>?digest=…` with the whole body. The registry checks the
    /// digest; a `body` that fails (its reader returns an error, e.g. on a hash mismatch)
    /// aborts the upload, which the registry then never completes. Larger blobs go in chunks
    /// ([`OciSource::push_blob`]).
    pub fn upload_blob(&self, digest: &str, size: u64, body: &mut dyn Read) -> Result<(), SourceError> {
        let mut target = self.start_upload()?;
        target.query_pairs_mut().append_pair("digest", digest);
        let put_here = redact(&target);
        let mut req = self
            .agent
            .put(target.as_str())
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", size.to_string());
        if let Some(a) = self.authorization(Access::Push).filter(|_| same_origin(&target, &self.registry)) {
            req = req.header("Authorization", a);
        }
        let resp = req.send(ureq::SendBody::from_reader(body)).map_err(|e| classify(e, &put_here))?;
        let status = resp.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            drain(resp.into_body());
            return Err(SourceError::failed(
                ErrorKind::Network,
                format!(
                    "{put_here}: HTTP 413: the registry, or a proxy before it, refuses a request body of {size} \
                     bytes; push in chunks smaller than its limit (`mirror push --chunk-size`, \
                     Config::with_push_chunk_size), or raise the limit (nginx: client_max_body_size)"
                ),
            ));
        }
        if status != StatusCode::CREATED {
            let (parts, body) = resp.into_parts();
            let said = read_said(&parts.headers, body, &[]);
            return Err(self.failure(status, &parts.headers, &put_here, said.as_deref()));
        }
        drain(resp.into_body());
        Ok(())
    }

    /// Puts `bytes` (of media type `media_type`) as the manifest tagged `tag`.
    pub fn put_manifest(&self, tag: &str, media_type: &str, bytes: &[u8]) -> Result<(), SourceError> {
        let url = self.api_url(&["manifests", tag]);
        let here = redact(&url);
        let mut make = |authorization: Option<&str>| {
            let mut req = self.agent.put(url.as_str()).header("Content-Type", media_type);
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.send(bytes)
        };
        let resp = self.call(Access::Push, &here, &mut make)?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            let mut detail = String::new();
            let _ = resp.into_body().into_reader().take(4096).read_to_string(&mut detail);
            return Err(SourceError::failed(
                ErrorKind::Network,
                format!("{here}: the registry refused the manifest (HTTP {status}): {}", detail.trim()),
            ));
        }
        drain(resp.into_body());
        Ok(())
    }
}
