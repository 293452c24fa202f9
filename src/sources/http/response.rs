//! A 2xx answer to a byte request, checked against what was asked before a byte of it is
//! used: the status (200, or 206), a 206's `Content-Range` (`start ≤ end < total`, starting at
//! the offset asked for and ending at the end asked for, or at the last byte for an open-ended
//! request), its `Content-Length` (the length of that range), and identity encoding. An answer
//! that cannot be right is a [`SourceError::Protocol`] at once: the same server would answer
//! the same, so it is not retried. A 200 to a range request (a server that ignores ranges, or a
//! file whose validator changed) is a legitimate answer: the whole file from byte 0.

use std::io::Read;

use ureq::http::StatusCode;
use url::Url;

use super::signals::{content_range, header, validator};
use crate::error::SourceError;
use crate::sources::source::{Fetch, FetchRequest};

/// The most of a `Content-Range` or `Content-Encoding` value quoted in an error.
const MAX_QUOTED: usize = 80;

/// A 200 or 206 answer to `request` as a [`Fetch`], once checked (see the module's
/// documentation); the body is bounded to what was asked and to its own length (read to its
/// end, so that the connection is reused; a server that sends more is cut).
pub(crate) fn open_body(
    resp: ureq::http::Response<ureq::Body>,
    request: &FetchRequest,
    url: &Url,
    here: String,
) -> Result<Fetch, SourceError> {
    let (start, total, length) = match check(resp.status(), resp.headers(), request) {
        Ok(checked) => checked,
        Err(reason) => return Err(SourceError::Protocol { location: here, reason }),
    };
    let validator = validator(resp.headers(), url);
    let reader = resp.into_body().into_reader();
    // A body is read up to the requested end, and to its own end when that is where it
    // stops (so that the connection is reused); a server that sends more is cut.
    let wanted = request.end.filter(|&end| end > start).map(|end| end - start);
    let limit = match (wanted, length) {
        (Some(w), Some(l)) => Some(w.min(l)),
        (w, l) => w.or(l),
    };
    let body: Box<dyn Read + Send> = match limit {
        Some(left) => Box::new(Bounded { inner: reader, left }),
        None => Box::new(reader),
    };
    Ok(Fetch { body, start, total, validator, location: here })
}

/// `(start, total, Content-Length)` of an answer to `request`, or why it cannot be right.
fn check(
    status: StatusCode,
    headers: &ureq::http::HeaderMap,
    request: &FetchRequest,
) -> Result<(u64, Option<u64>, Option<u64>), String> {
    let asked = asked(request);
    if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
        return Err(format!("the server answered HTTP {status} to a request for {asked}"));
    }
    if let Some(enc) = header(headers, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity")) {
        return Err(format!(
            "the server sent `{}`-encoded content to a request for {asked}; byte ranges need identity encoding",
            quoted(enc)
        ));
    }
    let length = match header(headers, "content-length") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            format!("the server answered a request for {asked} with Content-Length `{}`", quoted(v))
        })?),
    };
    if status == StatusCode::OK {
        return Ok((0, length, length));
    }
    let Some(value) = header(headers, "content-range") else {
        return Err(format!("the server answered a request for {asked} with a 206 without Content-Range"));
    };
    let Some((start, end, total)) = content_range(value) else {
        return Err(format!(
            "the server answered a request for {asked} with an unreadable Content-Range `{}`",
            quoted(value)
        ));
    };
    let answered = format!("bytes {start}-{end}/{}", total.map_or("*".into(), |t| t.to_string()));
    if start > end || total.is_some_and(|t| end >= t) {
        return Err(format!(
            "the server answered {answered}, which is not a range, to a request for {asked}"
        ));
    }
    // The last byte a server should send: the one asked for, or the file's last when the file
    // is shorter (RFC 9110 §14.1.2; the size is then checked against the catalog) or when
    // the request was open-ended.
    let last = match (request.end, total) {
        (Some(e), Some(t)) => Some(e.min(t) - 1),
        (Some(e), None) => Some(e - 1),
        (None, t) => t.map(|t| t - 1),
    };
    if start != request.offset || last.is_some_and(|l| l != end) {
        return Err(format!("the server answered {answered} to a request for {asked}"));
    }
    if let Some(l) = length.filter(|&l| l != end - start + 1) {
        return Err(format!(
            "the server answered {answered} with Content-Length {l} (the range is {} bytes) to a request for {asked}",
            end - start + 1
        ));
    }
    Ok((start, total, length))
}

/// What `request` asks for, as a `Range` would say it.
fn asked(request: &FetchRequest) -> String {
    match request.end {
        None if request.offset == 0 => "the whole file".into(),
        Some(end) => format!("bytes {}-{}", request.offset, end.saturating_sub(1)),
        None => format!("bytes {}-", request.offset),
    }
}

/// A header value as quoted in an error: bounded.
fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// A body of known length. When the last byte is read, the underlying reader is read once
/// more, so that it sees the end and returns its connection to the pool; bytes past the
/// length are never returned.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        if self.left == 0 {
            let _ = self.inner.read(&mut [0u8; 1]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::{HeaderMap, HeaderValue};

    fn answer(
        status: u16,
        pairs: &[(&'static str, &str)],
        offset: u64,
        end: Option<u64>,
    ) -> Result<(u64, Option<u64>, Option<u64>), String> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let status = StatusCode::from_u16(status).unwrap();
        check(status, &h, &FetchRequest { offset, end, if_range: None })
    }

    #[test]
    fn right_answers_pass() {
        let range =
            |cr: &str, len: &str| [("content-range", cr.to_string()), ("content-length", len.to_string())];
        let r = range("bytes 100-199/1000", "100");
        let pairs: Vec<_> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(answer(206, &pairs, 100, Some(200)), Ok((100, Some(1000), Some(100))));
        assert_eq!(
            answer(206, &[("content-range", "bytes 100-999/1000")], 100, None),
            Ok((100, Some(1000), None))
        );
        assert_eq!(
            answer(206, &[("content-range", "bytes 100-199/*")], 100, Some(200)),
            Ok((100, None, None))
        );
        // A shorter file than asked for: the server ends at its last byte (the size is then
        // checked against the catalog).
        assert_eq!(
            answer(206, &[("content-range", "bytes 100-499/500")], 100, Some(800)),
            Ok((100, Some(500), None))
        );
        // A 200 to a range request: the whole file.
        assert_eq!(
            answer(200, &[("content-length", "1000")], 100, Some(200)),
            Ok((0, Some(1000), Some(1000)))
        );
        assert_eq!(answer(200, &[("content-encoding", "identity")], 0, None), Ok((0, None, None)));
    }

    #[test]
    fn answers_that_cannot_be_right_say_what_was_asked_and_what_came_back() {
        let says = |r: Result<_, String>, text: &str| {
            let e = r.unwrap_err();
            assert!(e.contains(text), "{e}");
        };
        says(
            answer(206, &[("content-range", "bytes 0-99/1000")], 100, Some(200)),
            "the server answered bytes 0-99/1000 to a request for bytes 100-199",
        );
        says(
            answer(206, &[("content-range", "bytes 100-149/1000")], 100, Some(200)),
            "bytes 100-149/1000 to a",
        );
        says(
            answer(206, &[("content-range", "bytes 100-998/1000")], 100, None),
            "to a request for bytes 100-",
        );
        says(answer(206, &[("content-range", "bytes 100-199/150")], 100, Some(200)), "which is not a range");
        says(answer(206, &[("content-range", "bytes 199-100/1000")], 100, Some(200)), "which is not a range");
        says(
            answer(206, &[("content-range", "bytes 100-199/1000"), ("content-length", "50")], 100, Some(200)),
            "with Content-Length 50 (the range is 100 bytes)",
        );
        says(answer(206, &[], 100, Some(200)), "a 206 without Content-Range");
        says(
            answer(206, &[("content-range", "items 1-2/3")], 100, Some(200)),
            "unreadable Content-Range `items 1-2/3`",
        );
        says(
            answer(200, &[("content-encoding", "gzip")], 0, None),
            "`gzip`-encoded content to a request for the whole file",
        );
        says(answer(204, &[], 0, Some(10)), "HTTP 204 No Content to a request for bytes 0-9");
        says(answer(200, &[("content-length", "lots")], 0, None), "Content-Length `lots`");
    }

    #[test]
    fn bounded_bodies_read_their_source_to_the_end() {
        struct Counting<'a>(&'a [u8], usize);
        impl Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 += 1;
                self.0.read(buf)
            }
        }
        let mut inner = Counting(b"abcdef", 0);
        let mut body = Bounded { inner: &mut inner, left: 6 };
        let mut out = Vec::new();
        body.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcdef");
        assert_eq!(inner.0.len(), 0);
        assert_eq!(inner.1, 2, "a read for the data and one that sees the end");
        let mut more = Bounded { inner: &b"abcdefXYZ"[..], left: 6 };
        let mut out = Vec::new();
        more.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcdef", "bytes past the length are never returned");
    }
}
