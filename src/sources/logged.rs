//! One `debug` event per HTTP request of the shared client (the Hub's resolve and API, its
//! file host, HTTPS mirrors, OCI registries): method, host, path *without its query* (a signed
//! URL's secret is its query), the `Range` asked for, and the status or what failed, with the
//! time to the answer's headers. No header value but `Range` is read: never `Authorization`,
//! cookies or credentials. A ureq middleware ([`request`]), so no source can forget it.

use std::time::Instant;

use ureq::http::{Request, Response};
use ureq::middleware::MiddlewareNext;
use ureq::{Body, SendBody};

/// The middleware: passes `req` on, and says what became of it.
pub(crate) fn request(req: Request<SendBody>, next: MiddlewareNext) -> Result<Response<Body>, ureq::Error> {
    if !crate::trace::enabled!(DEBUG)
        || !crate::trace::guarded(false, || tracing::enabled!(tracing::Level::DEBUG))
    {
        return next.handle(req);
    }
    let method = req.method().clone();
    let uri = req.uri();
    let host = match (uri.host(), uri.port_u16()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (h, _) => h.unwrap_or_default().to_string(),
    };
    let path = uri.path().to_string();
    let range = req.headers().get("range").and_then(|v| v.to_str().ok()).map(str::to_string);
    let started = Instant::now();
    let result = next.handle(req);
    let ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(resp) => crate::trace::emit!(
            DEBUG,
            method = %method,
            host,
            path,
            range,
            status = resp.status().as_u16(),
            ms,
            "HTTP request"
        ),
        Err(e) => crate::trace::emit!(
            DEBUG,
            method = %method,
            host,
            path,
            range,
            error = %failure(e),
            ms,
            "HTTP request failed"
        ),
    }
    result
}

/// What failed, without any part of the URL (some of ureq's errors quote it whole).
fn failure(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(e) => format!("I/O error: {e}"),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Tls(e) => format!("TLS failure: {e}"),
        ureq::Error::TlsRequired | ureq::Error::RequireHttpsOnly(_) => "refused: HTTPS only".into(),
        ureq::Error::ConnectProxyFailed(_) | ureq::Error::InvalidProxyUrl => "proxy failure".into(),
        _ => "failed (the source's error says why)".into(),
    }
}
