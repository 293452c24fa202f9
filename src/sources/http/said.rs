//! What an error answer's body says, for a message (`HTTP 400: InvalidArgument: Invalid
//! Range`), and the draining of bodies nobody reads, so that their connections are reused.
//!
//! The body of a refusal (4xx, 5xx) is read up to [`SAID_READ`] bytes, the rest drained so that
//! the connection is reused. When it is text, the `Code: Message` of an XML or JSON error (S3,
//! GCS, Azure, OCI registries, the Hub) is shown, else its first line with markup removed;
//! control characters become spaces, URLs lose their query and credentials, anything that looks
//! like a credential (a token, a signature, a `Bearer` value) is hidden, and at most
//! [`SAID_MAX`] characters are kept.

use std::io::Read;

use ureq::http::HeaderMap;

use super::signals::header;
use crate::sources::location::redact;

/// The most of an error or redirect body read (to keep its connection) before dropping it.
const MAX_DRAIN: u64 = 64 * 1024;

/// The most of an error body read for what it says.
pub(super) const SAID_READ: usize = 4096;
/// The most characters of it shown.
pub(super) const SAID_MAX: usize = 200;
/// What stands for a hidden credential.
const HIDDEN: &str = "[redacted]";

/// Reads what is left of a small body (an error page, a redirect's), so that its connection
/// returns to the pool; a large one is dropped (its connection closes).
pub(crate) fn drain(body: ureq::Body) {
    let _ = std::io::copy(&mut body.into_reader().take(MAX_DRAIN), &mut std::io::sink());
}

/// Reads what `body` (the body of an answer with `headers`) says, then drains the rest of it
/// (up to [`MAX_DRAIN`]) so that its connection goes back to the pool. `secrets` are values
/// never shown (the token).
pub(crate) fn read_said(headers: &HeaderMap, body: ureq::Body, secrets: &[&str]) -> Option<String> {
    let mut reader = body.into_reader().take(MAX_DRAIN);
    let mut head = Vec::with_capacity(SAID_READ);
    let _ = (&mut reader).take(SAID_READ as u64).read_to_end(&mut head);
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
    said(header(headers, "content-type"), &head, secrets)
}

/// What a body with `content_type` says (see the module's documentation); `None` when it is
/// not text or says nothing.
pub(crate) fn said(content_type: Option<&str>, body: &[u8], secrets: &[&str]) -> Option<String> {
    if !is_text(content_type) || body.contains(&0) {
        return None;
    }
    // A body cut at SAID_READ may end inside a character: keep what is whole.
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&body[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let trimmed = text.trim_start();
    let summary = if trimmed.starts_with('<') {
        xml_error(trimmed).or_else(|| first_line(&strip_tags(trimmed)))
    } else if trimmed.starts_with('{') {
        json_error(trimmed).or_else(|| first_line(trimmed))
    } else {
        first_line(trimmed)
    }?;
    let shown = clean(&summary, secrets);
    (!shown.is_empty()).then_some(shown)
}

/// Text, JSON, XML (and their `+json`/`+xml` kinds), or no type at all (then the bytes decide).
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime.is_empty()
        || mime.starts_with("text/")
        || mime.ends_with("/json")
        || mime.ends_with("/xml")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
}

/// `Code: Message` of an XML error (`<Error><Code>…</Code><Message>…</Message></Error>`).
fn xml_error(text: &str) -> Option<String> {
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find('<').map_or(text.len(), |e| start + e);
        Some(text[start..end].trim()).filter(|v| !v.is_empty())
    };
    join(element("Code"), element("Message"))
}

/// `code: message` of a JSON error: `{"error": "…"}`, `{"error": {"code", "message"}}`,
/// `{"message": "…"}`, `{"errors": [{"code", "message"}]}` (OCI registries).
fn json_error(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let pair = |v: &serde_json::Value| {
        let code = v.get("code").and_then(scalar);
        let message = v.get("message").and_then(scalar);
        join(code.as_deref(), message.as_deref())
    };
    if let Some(e) = value.get("error") {
        return scalar(e).or_else(|| pair(e));
    }
    if let Some(first) = value.get("errors").and_then(|e| e.get(0)) {
        return pair(first);
    }
    pair(&value)
}

fn join(code: Option<&str>, message: Option<&str>) -> Option<String> {
    match (code, message) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m).map(str::to_string),
    }
}

/// The text without `<…>` markup (each tag becomes a line break).
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push('\n');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn first_line(text: &str) -> Option<String> {
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

/// One line, no control or direction-changing characters, credentials hidden, bounded.
fn clean(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, HIDDEN);
    }
    let printable: String = text
        .chars()
        .map(|c| {
            if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut words = Vec::new();
    let mut hide_next = false;
    for word in printable.split_whitespace() {
        let shown = if hide_next { HIDDEN.to_string() } else { hide(word) };
        hide_next = matches!(word.to_ascii_lowercase().as_str(), "bearer" | "basic");
        words.push(shown);
    }
    let line = words.join(" ");
    match line.char_indices().nth(SAID_MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// A word as shown: a URL without its query and credentials, a path without its query, a
/// credential hidden.
fn hide(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    if let Some(scheme) = lower.find("https://").or_else(|| lower.find("http://")) {
        let (before, url) = word.split_at(scheme);
        return match url.parse::<url::Url>() {
            Ok(u) => format!("{before}{}", redact(&u)),
            Err(_) => format!("{before}{}", url.split(['?', '#']).next().unwrap_or("")),
        };
    }
    let word = match word.split_once('?') {
        Some((path, query)) if !query.is_empty() => path,
        _ => word,
    };
    let lower = word.to_ascii_lowercase();
    let secret = ["signature=", "sig=", "token=", "key=", "credential=", "password=", "secret=", "auth="]
        .iter()
        .any(|k| lower.contains(k))
        || (word.starts_with("hf_") && word.len() > 8)
        || (word.starts_with("eyJ") && word.len() > 20);
    if secret {
        HIDDEN.to_string()
    } else {
        word.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_json_errors_show_their_code_and_message() {
        let s3 = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
            <Message>Invalid Range</Message><Resource>/b/f.gguf?X-Amz-Signature=s3cr3t</Resource></Error>";
        assert_eq!(said(Some("application/xml"), s3, &[]).as_deref(), Some("InvalidArgument: Invalid Range"));
        let oci = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":{}}]}"#;
        assert_eq!(
            said(Some("application/json"), oci, &[]).as_deref(),
            Some("BLOB_UNKNOWN: blob unknown to registry")
        );
        let gcs = br#"{"error":{"code":400,"message":"Bad range"}}"#;
        assert_eq!(said(None, gcs, &[]).as_deref(), Some("400: Bad range"));
        assert_eq!(said(None, br#"{"error":"Entry not found"}"#, &[]).as_deref(), Some("Entry not found"));
    }

    #[test]
    fn other_text_shows_its_first_line_without_markup() {
        let nginx = b"<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>...</body></html>";
        assert_eq!(said(Some("text/html"), nginx, &[]).as_deref(), Some("400 Bad Request"));
        assert_eq!(said(Some("text/plain"), b"\n  Slow down\nplease\n", &[]).as_deref(), Some("Slow down"));
        assert_eq!(said(Some("application/octet-stream"), b"Slow down", &[]), None, "not text");
        assert_eq!(said(None, b"GGUF\0\0\0", &[]), None, "binary");
        assert_eq!(said(None, b"  \n ", &[]), None, "nothing said");
    }

    #[test]
    fn control_characters_urls_and_credentials_never_show_and_the_text_is_bounded() {
        let text = "denied\x1b[31m for https://u:p@cdn.example/f.gguf?sig=abc and /f.gguf?X-Amz-Signature=x \
                    with Bearer hf_abcdefghijkl, token=zz, key hunter22 \u{202e}gnp";
        let shown = said(Some("text/plain"), text.as_bytes(), &["hunter22"]).unwrap();
        assert_eq!(
            shown,
            "denied [31m for https://cdn.example/f.gguf and /f.gguf with Bearer [redacted] [redacted] key \
             [redacted] gnp"
        );
        let long = "x".repeat(1000);
        let shown = said(None, long.as_bytes(), &[]).unwrap();
        assert_eq!(shown.chars().count(), SAID_MAX + 1);
        assert!(shown.ends_with('…'));
        // Cut inside a character: what is whole is kept.
        let cut = "é".repeat(10).into_bytes();
        assert_eq!(said(None, &cut[..cut.len() - 1], &[]).as_deref(), Some("ééééééééé"));
    }
}
