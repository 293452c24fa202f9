//! `multipart/byteranges` (RFC 9110 §14.6): the answer to a request for several ranges —
//! parts separated by `--BOUNDARY`, each with its own `Content-Range`, the last followed by
//! `--BOUNDARY--`. A xorb fetch asks for every range of a signed URL at once and reads them
//! from such an answer.

/// One part: the first byte's offset, and the bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    /// The offset of the first byte (from its `Content-Range`).
    pub start: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The boundary of a `Content-Type: multipart/byteranges; boundary=…` value.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/byteranges") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of `body`, delimited by `boundary`; each must carry a `Content-Range:
/// bytes A-B/…` whose length is its body's.
pub fn parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    let mut out = Vec::new();
    // Anything before the first delimiter is a preamble.
    let first = find(rest, delimiter.as_bytes()).ok_or("no boundary in the multipart answer")?;
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(out); // the closing delimiter
        }
        rest = strip_crlf(rest);
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part without the end of its headers")?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|_| "a part's headers are not text")?;
        let (start, end) = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("content-range").then(|| content_range(v.trim())).flatten()
            })
            .ok_or("a part without a Content-Range it can read")?;
        let body_start = head_end + 4;
        let len = end
            .checked_sub(start)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("a part's Content-Range is malformed")?;
        let part = rest.get(body_start..body_start + len).ok_or("a part shorter than its Content-Range")?;
        out.push(Part { start, bytes: part.to_vec() });
        rest = strip_crlf(&rest[body_start + len..]);
        if !rest.starts_with(delimiter.as_bytes()) {
            return Err("a part longer than its Content-Range".into());
        }
        rest = &rest[delimiter.len()..];
    }
}

fn strip_crlf(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\r\n").unwrap_or(b)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `bytes A-B/TOTAL` (or `/*`) → `(A, B)`.
fn content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.strip_prefix("bytes")?.trim();
    let (range, _) = v.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(parts: &[(u64, &[u8])], b: &str) -> Vec<u8> {
        let mut out = b"preamble\r\n".to_vec();
        for (start, bytes) in parts {
            out.extend(format!("--{b}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {start}-{}/999\r\n\r\n", start + bytes.len() as u64 - 1).as_bytes());
            out.extend_from_slice(bytes);
            out.extend(b"\r\n");
        }
        out.extend(format!("--{b}--\r\n").as_bytes());
        out
    }

    #[test]
    fn parts_are_read_with_their_offsets() {
        assert_eq!(
            boundary("multipart/byteranges; boundary=\"3d6b6a416f9b5\""),
            Some("3d6b6a416f9b5".into())
        );
        assert_eq!(boundary("application/octet-stream"), None);
        let body = answer(&[(0, b"abc\r\n--x-not"), (500, b"zz")], "x");
        let got = parts(&body, "x").unwrap();
        assert_eq!(
            got,
            [
                Part { start: 0, bytes: b"abc\r\n--x-not".to_vec() },
                Part { start: 500, bytes: b"zz".to_vec() }
            ]
        );
        // A part cut short, or longer than it says: refused.
        assert!(parts(&body[..body.len() - 12], "x").is_err());
        let mut longer = body.clone();
        let at = find(&longer, b"zz").unwrap();
        longer.insert(at, b'!');
        assert!(parts(&longer, "x").is_err());
        assert!(parts(b"no boundary here", "x").is_err());
    }
}
