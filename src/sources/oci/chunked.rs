//! Chunked, resumable blob uploads (the distribution spec's "Pushing a blob in chunks"):
//! `POST /v2/<name>/blobs/uploads/`, then `PATCH <Location>` with each chunk
//! (`Content-Type: application/octet-stream`, `Content-Range: <start>-<end>` inclusive,
//! `Content-Length`), each answer's `Location` followed, then `PUT <Location>?digest=…` with no
//! body. A blob larger than the chunk size goes this way, so a proxy that caps request bodies
//! (nginx's `client_max_body_size`) does not stop it:
//!
//! - a `PATCH` answered `413` halves the chunk (down to [`MIN_PUSH_CHUNK_SIZE`]), asks the
//!   registry where the upload stands (`GET <Location>`: `204`, `Range: 0-<last>`) and goes on;
//! - a registry that refuses chunks (the first `PATCH` answered 400, 404, 405 or 501) gets the
//!   blob in one `PUT` instead;
//! - after each chunk the upload URL and the offset go to an [`UploadJournal`] (`mirror push`
//!   keeps it beside the model), and the next push of the same blob to the same repository
//!   asks that URL where the upload stands and sends only the rest: the bytes before it are
//!   still read (and hashed) from `body`, never sent. An upload the registry no longer knows
//!   (404, or a `416` on its status) is started again.
//!
//! Each chunk is held in memory while it is sent (a `413` or a cut connection may need it
//! again). Upload URLs carry the registry's state in their query: only [`redact`]ed forms are
//! ever shown.

use std::io::Read;

use ureq::http::{Response, StatusCode};
use url::Url;

use super::{Access, OciSource};
use crate::config::MIN_PUSH_CHUNK_SIZE;
use crate::error::{ErrorKind, SourceError};
use crate::sources::http::{drain, follow, header, read_said, same_origin};
use crate::sources::location::redact;

/// Where a chunked upload's progress is kept between processes.
pub trait UploadJournal {
    /// The upload URL an earlier push of this blob to this repository saved, if any.
    fn saved(&self) -> Option<Url>;
    /// Records that the registry holds `offset` bytes of the upload at `location`.
    fn save(&self, location: &Url, offset: u64);
    /// Forgets the upload (complete, refused, or unknown to the registry).
    fn clear(&self);
}

/// What a push of a blob did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The offset an earlier, interrupted push was resumed at (0: from the start).
    pub resumed_from: u64,
    /// The chunk size that went through (smaller than asked after `413`s); 0 for one `PUT`.
    pub chunk_size: u64,
}

/// How a `PATCH` went.
enum Patched {
    /// The registry holds this many bytes now (as its `Range` says; `None` without one), at this
    /// upload URL.
    Accepted(Url, Option<u64>),
    /// `413`: the chunk is too large for something on the way.
    TooLarge,
    /// The registry does not take chunks (first `PATCH` only).
    Refused,
}

impl OciSource {
    /// Uploads the blob `digest` (`sha256:<hex>`) of `size` bytes read from `body`: in chunks
    /// of `chunk_size` when it is larger than that or when `journal` has an upload to resume,
    /// else in one `PUT`. A `body` that fails (its reader returns an error, e.g. on a hash
    /// mismatch) aborts the upload, which the registry then never completes.
    pub fn push_blob(
        &self,
        digest: &str,
        size: u64,
        body: &mut dyn Read,
        chunk_size: u64,
        journal: &dyn UploadJournal,
    ) -> Result<Pushed, SourceError> {
        let chunk_size = chunk_size.max(MIN_PUSH_CHUNK_SIZE);
        // A saved upload is followed only to the registry itself (the file is the user's, but
        // a URL edited to another host would receive the model).
        let saved = journal.saved();
        if saved.as_ref().is_some_and(|u| !same_origin(u, &self.registry)) {
            journal.clear();
        }
        let saved = saved.filter(|u| same_origin(u, &self.registry));
        if saved.is_none() && size <= chunk_size {
            self.upload_blob(digest, size, body)?;
            return Ok(Pushed::default());
        }
        let mut resumed = None;
        if let Some(saved) = saved {
            // Whatever keeps its status from being read (the upload purged, a registry or proxy
            // that does not answer the status GET, a connection refused) starts a new upload:
            // a saved state must never stop every later push.
            match self.upload_status(&saved) {
                Ok(Some((location, offset))) if offset <= size => resumed = Some((location, offset)),
                Ok(_) => crate::trace::emit!(
                    INFO,
                    registry = self.host(),
                    digest,
                    "the registry no longer has the interrupted upload: starting again"
                ),
                Err(e) => crate::trace::emit!(
                    WARN,
                    registry = self.host(),
                    digest,
                    reason = %crate::error::Report::new(&e),
                    "the interrupted upload's status cannot be read: starting again"
                ),
            }
            if resumed.is_none() {
                journal.clear();
            }
        }
        let (mut location, mut offset) = match resumed {
            Some((location, offset)) => {
                skip(body, offset, &redact(&location))?;
                crate::trace::emit!(
                    INFO,
                    registry = self.host(),
                    digest,
                    offset,
                    "resuming an interrupted upload"
                );
                (location, offset)
            }
            None => (self.start_upload()?, 0),
        };
        let resumed_from = offset;
        let mut chunk = chunk_size;
        // Until a chunk of this size has gone through, ask before sending its body
        // (`Expect: 100-continue`): a proxy that caps bodies answers 413 without taking it.
        let mut probing = true;
        let mut buffer = Vec::new();
        let mut failures = 0u32;
        while offset < size {
            let want = usize::try_from(chunk.min(size - offset)).unwrap_or(usize::MAX);
            buffer.resize(want, 0);
            if let Err(e) = body.read_exact(&mut buffer) {
                self.cancel(&location);
                journal.clear();
                return Err(SourceError::failed_by(
                    ErrorKind::Storage,
                    format!("reading the blob {digest} to upload at {offset} of {size} bytes"),
                    e,
                ));
            }
            // Send the buffer, in smaller pieces after a `413`.
            let start = offset;
            let mut sent = 0usize;
            while sent < buffer.len() {
                let end = (sent + usize::try_from(chunk).unwrap_or(usize::MAX)).min(buffer.len());
                let patched = match self.patch(&location, start + sent as u64, &buffer[sent..end], probing) {
                    Ok(p) => {
                        failures = 0;
                        p
                    }
                    // A connection cut or a registry busy for a moment: ask where the upload
                    // stands and go on from there, a few times, before leaving it to the next
                    // push (the saved state stays).
                    Err(e) if e.is_transient() && failures < MAX_PATCH_RETRIES => {
                        failures += 1;
                        crate::trace::emit!(
                            WARN,
                            registry = self.host(),
                            attempt = failures,
                            reason = %crate::error::Report::new(&e),
                            "a chunk failed: asking where the upload stands"
                        );
                        std::thread::sleep(RETRY_PAUSE * 2u32.pow(failures - 1));
                        match self.upload_status(&location) {
                            Ok(Some((next, held)))
                                if held >= start && held <= start + buffer.len() as u64 =>
                            {
                                location = next;
                                sent = (held - start) as usize;
                                journal.save(&location, held);
                                continue;
                            }
                            _ => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                };
                match patched {
                    Patched::Accepted(next, held) if held.unwrap_or(start + end as u64) == start + end as u64 => {
                        location = next;
                        sent = end;
                        probing = false;
                        journal.save(&location, start + end as u64);
                    }
                    Patched::Accepted(_, held) => {
                        let held = held.unwrap_or_default();
                        return Err(SourceError::failed(
                            ErrorKind::Network,
                            format!(
                                "{}: the registry says it holds {held} bytes of the upload after a chunk ending at {}",
                                redact(&location),
                                start + end as u64
                            ),
                        ))
                    }
                    Patched::Refused if start + sent as u64 == 0 => {
                        // Chunks refused: one `PUT` of the whole blob instead.
                        self.cancel(&location);
                        journal.clear();
                        crate::trace::emit!(
                            INFO,
                            registry = self.host(),
                            "the registry refuses chunked uploads: uploading in one request"
                        );
                        let mut whole = (&buffer[..]).chain(body);
                        self.upload_blob(digest, size, &mut whole)?;
                        return Ok(Pushed { resumed_from: 0, chunk_size: 0 });
                    }
                    Patched::Refused => {
                        journal.clear();
                        return Err(SourceError::failed(
                            ErrorKind::Network,
                            format!(
                                "{}: the registry gave up the upload at {} of {size} bytes; push again",
                                redact(&location),
                                start + sent as u64
                            ),
                        ));
                    }
                    Patched::TooLarge if chunk > MIN_PUSH_CHUNK_SIZE => {
                        chunk = (chunk / 2).max(MIN_PUSH_CHUNK_SIZE);
                        probing = true;
                        crate::trace::emit!(
                            INFO,
                            registry = self.host(),
                            chunk,
                            "HTTP 413 on a chunk: halving the chunk size"
                        );
                        let Some((next, held)) = self.upload_status(&location)? else {
                            journal.clear();
                            return Err(SourceError::failed(
                                ErrorKind::Network,
                                format!(
                                    "{}: after a 413 the registry no longer knows the upload or does not say where it stands; push again",
                                    redact(&location)
                                ),
                            ));
                        };
                        if held < start || held > start + buffer.len() as u64 {
                            return Err(SourceError::failed(
                                ErrorKind::Network,
                                format!(
                                    "{}: the registry holds {held} bytes of the upload, outside the chunk {start}-{} being sent",
                                    redact(&next),
                                    start + buffer.len() as u64
                                ),
                            ));
                        }
                        location = next;
                        sent = (held - start) as usize;
                    }
                    Patched::TooLarge => {
                        return Err(SourceError::failed(
                            ErrorKind::Network,
                            format!(
                                "{}: HTTP 413 even for a chunk of {MIN_PUSH_CHUNK_SIZE} bytes: a proxy or the registry \
                                 caps request bodies below 1 MiB; raise its limit (nginx: client_max_body_size)",
                                redact(&location)
                            ),
                        ))
                    }
                }
            }
            offset = start + buffer.len() as u64;
        }
        self.finish(&location, digest, journal)?;
        Ok(Pushed { resumed_from, chunk_size: chunk })
    }

    /// Starts an upload: `POST /v2/<name>/blobs/uploads/`, `202` with its `Location`.
    pub(super) fn start_upload(&self) -> Result<Url, SourceError> {
        let start = self.api_url(&["blobs", "uploads", ""]);
        let here = redact(&start);
        let mut make = |authorization: Option<&str>| {
            let mut req = self.agent.post(start.as_str());
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.send_empty()
        };
        let resp = self.call(Access::Push, &here, &mut make)?;
        let status = resp.status();
        let location = header(resp.headers(), "location").map(str::to_string);
        if status != StatusCode::ACCEPTED {
            let (parts, body) = resp.into_parts();
            let said = read_said(&parts.headers, body, &[]);
            return Err(self.failure(status, &parts.headers, &here, said.as_deref()));
        }
        drain(resp.into_body());
        let location = location.ok_or_else(|| {
            SourceError::failed(ErrorKind::Network, format!("{here}: 202 without the upload's Location"))
        })?;
        follow(&start, &location)
    }

    /// Sends a request to the upload URL `url` (`make` given the `Authorization` to add):
    /// with the registry's credentials when it is the registry's, else none.
    fn at_upload(
        &self,
        url: &Url,
        make: &mut super::MakeRequest<'_>,
    ) -> Result<Response<ureq::Body>, SourceError> {
        self.call_at(url, Access::Push, &redact(url), make)
    }

    /// Where the upload at `url` stands: its next `Location` and the bytes the registry holds,
    /// or `None` when the registry does not know it (404, or 400/416: an upload it gave up).
    fn upload_status(&self, url: &Url) -> Result<Option<(Url, u64)>, SourceError> {
        let mut make = |authorization: Option<&str>| {
            let mut req = self.agent.get(url.as_str());
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.call()
        };
        let resp = self.at_upload(url, &mut make)?;
        let status = resp.status();
        if matches!(status.as_u16(), 400 | 404 | 416) {
            drain(resp.into_body());
            return Ok(None);
        }
        if !status.is_success() {
            let (parts, body) = resp.into_parts();
            let said = read_said(&parts.headers, body, &[]);
            return Err(self.failure(status, &parts.headers, &redact(url), said.as_deref()));
        }
        // No `Range`: where it stands is unknown, and the upload starts again.
        let Some(held) = held(header(resp.headers(), "range")) else {
            drain(resp.into_body());
            return Ok(None);
        };
        let next = match header(resp.headers(), "location") {
            Some(l) => follow(url, l)?,
            None => url.clone(),
        };
        drain(resp.into_body());
        Ok(Some((next, held)))
    }

    /// Sends `chunk`, the bytes from `start`, to the upload at `url`; with `ask`, only once the
    /// server says to go on (`Expect: 100-continue`), so that a refusal (413) costs no body.
    fn patch(&self, url: &Url, start: u64, chunk: &[u8], ask: bool) -> Result<Patched, SourceError> {
        let range = format!("{start}-{}", start + chunk.len() as u64 - 1);
        let mut make = |authorization: Option<&str>| {
            let mut req = self
                .agent
                .patch(url.as_str())
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", &range)
                .header("Content-Length", chunk.len().to_string());
            if ask {
                req = req.header("Expect", "100-continue");
            }
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.send(chunk)
        };
        let resp = self.at_upload(url, &mut make)?;
        let status = resp.status();
        match status.as_u16() {
            202 | 204 => {
                let held = held(header(resp.headers(), "range"));
                let next = match header(resp.headers(), "location") {
                    Some(l) => follow(url, l)?,
                    None => url.clone(),
                };
                drain(resp.into_body());
                Ok(Patched::Accepted(next, held))
            }
            413 => {
                drain(resp.into_body());
                Ok(Patched::TooLarge)
            }
            400 | 404 | 405 | 501 => {
                drain(resp.into_body());
                Ok(Patched::Refused)
            }
            _ => {
                let (parts, body) = resp.into_parts();
                let said = read_said(&parts.headers, body, &[]);
                Err(self.failure(status, &parts.headers, &redact(url), said.as_deref()))
            }
        }
    }

    /// Completes the upload at `url`: `PUT ?digest=` with no body, `201`.
    fn finish(&self, url: &Url, digest: &str, journal: &dyn UploadJournal) -> Result<(), SourceError> {
        let mut target = url.clone();
        target.query_pairs_mut().append_pair("digest", digest);
        let mut make = |authorization: Option<&str>| {
            let mut req = self.agent.put(target.as_str()).header("Content-Type", "application/octet-stream");
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.send(&[][..])
        };
        let resp = self.at_upload(&target, &mut make)?;
        let status = resp.status();
        if status == StatusCode::CREATED {
            drain(resp.into_body());
            journal.clear();
            return Ok(());
        }
        let (parts, body) = resp.into_parts();
        let said = read_said(&parts.headers, body, &[]);
        if status.is_client_error() {
            journal.clear(); // refused (a digest that does not match what it holds): start again
        }
        Err(self.failure(status, &parts.headers, &redact(&target), said.as_deref()))
    }

    /// Cancels the upload at `url` (`DELETE`), best effort: an upload that is not completed is
    /// never a blob, and registries purge them in time anyway.
    pub(super) fn cancel(&self, url: &Url) {
        let mut make = |authorization: Option<&str>| {
            let mut req = self.agent.delete(url.as_str());
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.call()
        };
        if let Ok(resp) = self.at_upload(url, &mut make) {
            drain(resp.into_body());
        }
    }
}

/// Chunks that fail in a row (a cut connection, a 5xx) before a push gives up, keeping its
/// saved state for the next one.
const MAX_PATCH_RETRIES: u32 = 3;
/// The pause before the first retry of a chunk; doubled for each next one.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// The bytes a registry holds from its `Range: 0-<last>` (`bytes=0-<last>` too; `0-0`, as the
/// distribution server says before any byte, is 0); `None` without a `Range` it can read.
fn held(range: Option<&str>) -> Option<u64> {
    let range = range?;
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    match range.split_once('-')?.1.trim().parse::<u64>().ok()? {
        0 => Some(0),
        last => Some(last + 1),
    }
}

/// Reads (and drops) the first `n` bytes of `body`: the part of the blob the registry holds,
/// still read so that a checking reader sees every byte.
fn skip(body: &mut dyn Read, n: u64, here: &str) -> Result<(), SourceError> {
    let copied = std::io::copy(&mut body.take(n), &mut std::io::sink()).map_err(|e| {
        SourceError::failed_by(ErrorKind::Storage, format!("reading the blob to resume {here}"), e)
    })?;
    if copied != n {
        return Err(SourceError::failed(
            ErrorKind::Storage,
            format!("{here}: the registry holds {n} bytes of the upload but the file has only {copied}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_say_how_many_bytes_the_registry_holds() {
        assert_eq!(held(Some("0-1023")), Some(1024));
        assert_eq!(held(Some("bytes=0-1")), Some(2));
        assert_eq!(held(Some("0-0")), Some(0));
        assert_eq!(held(None), None);
        assert_eq!(held(Some("garbage")), None);
    }
}
