//! A Hugging Face look-alike over real HTTPS, for the download tests.
//!
//! Two TLS servers with a certificate chain from a test CA: the Hub on 127.0.0.1 answers
//! `/{repo}/resolve/{rev}/{file}` with a 302 to the CDN on 127.0.0.2 (another host, as on the
//! real Hub), carrying `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size` and `ETag`, to a signed
//! URL (`?sig=N`, a new one per resolution); the CDN serves byte ranges. Both keep connections
//! alive (HTTP/1.1). Faults can be switched on: drop the connection at an offset, stall, answer
//! with a status (429/503 with `Retry-After`, an error body), flip a byte, ignore `Range`, lie
//! in a 206 (`Content-Range`, `Content-Length`), redirect to `http://`, expire signatures, weak
//! or no `ETag`s, Hub error codes and rate limits, a Hub that serves the file itself with a
//! `HEAD` of `Content-Length: 0`. The Hub also answers the model API as the real one does
//! (`/api/models/{repo}/revision/{rev}`, with each file's `lfs` facts when asked
//! `?blobs=true`). Every request is recorded, with its headers and connection, per host. As an OCI registry (`/v2/…`, token realm `/token`) it
//! redirects blob reads to the CDN, as registries backed by S3 or GCS do.
//!
//! Off by default, [`Hub::enable_xet`] adds a Xet CAS on 127.0.0.3 (host `"cas"` in [`Seen`];
//! see [`super::xet`]): every file is then also stored there, resolve answers carry
//! `X-Xet-Hash` and the Xet `Link`s, and the Hub issues CAS tokens at
//! `/api/models/{repo}/xet-read-token/{rev}`.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use super::xet::{Scheme, XetFaults, XetOptions, XetTerm};

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub(super) id: u64,
    pub host: &'static str,
    /// The connection it came on (numbered per server, from 1).
    pub conn: u64,
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
}

/// Faults to inject; each applies to CDN responses for the file.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Close the connection once the body reaches this absolute offset (once).
    pub drop_at: Option<u64>,
    /// Stop sending at this absolute offset for this long, then close (once).
    pub stall_at: Option<(u64, Duration)>,
    /// Answer the next requests with these statuses and `Retry-After` seconds.
    pub statuses: Vec<(u16, Option<u64>)>,
    /// Flip one byte in the middle of every body.
    pub flip_byte: bool,
    /// Answer 200 with the whole body whatever the `Range`.
    pub ignore_range: bool,
    /// The Hub redirects to `http://` instead of `https://`.
    pub redirect_http: bool,
    /// The Hub redirects to itself, forever.
    pub redirect_loop: bool,
    /// Serve an HTML page with status 200 instead of the file.
    pub html: bool,
    /// Send the body at about this many bytes per second.
    pub rate: Option<u64>,
    /// Cut the connection (no TLS close_notify, TCP shutdown) once the body reaches this
    /// absolute offset (once).
    pub cut_at: Option<u64>,
    /// Send no Content-Length and 1000 bytes more than the file.
    pub extra_bytes: bool,
    /// Answer the first request that carries a `Range` with 416.
    pub range_416_once: bool,
    /// Apply `statuses` only from the CDN request after this many (0: from the first).
    pub statuses_after: usize,
    /// Send the body of the first CDN transfer only at this many bytes per second (one slow
    /// connection among fast ones).
    pub slow_first: Option<u64>,
    /// A signed URL stops working (403) once the CDN has sent this many bytes under it.
    pub expire_signature_after: Option<u64>,
    /// The CDN's `ETag` is weak (`W/"…"`).
    pub weak_etag: bool,
    /// The CDN sends no `ETag`.
    pub no_etag: bool,
    /// Answer the first request for a range that does not start at 0 with 200 and the whole
    /// file (once).
    pub whole_file_for_a_range_once: bool,
    /// The Hub answers every resolve with this status and `X-Error-Code`.
    pub hub_error: Option<(u16, &'static str)>,
    /// The Hub first answers with a relative redirect to `/api/resolve-cache/…` (as for a
    /// renamed repository), which then redirects to the CDN.
    pub relative_redirect: bool,
    /// The Hub answers the first resolve with 429 and `RateLimit: "resolvers";r=0;t=N`.
    pub hub_rate_limit: Option<u64>,
    /// `Retry-After` of `statuses` as an HTTP date rather than seconds.
    pub retry_after_as_date: bool,
    /// Files the model API lists without `lfs` (stored in Git, not LFS).
    pub not_lfs: Vec<&'static str>,
    /// The Hub answers a resolve itself (200, no redirect) with `Content-Length: 0` to a
    /// `HEAD`, no `X-Linked-Size` and the SHA-256 as `ETag` (a proxy that drops the length), and
    /// serves the bytes itself, with ranges, to a `GET`.
    pub hub_serves_unsized: bool,
    /// The CDN's 206 answers say (and send) something other than the range asked for.
    pub range_lie: Option<RangeLie>,
    /// `range_lie` applies to one answer only.
    pub range_lie_once: bool,
    /// `statuses` answers carry this body, with this `Content-Type`.
    pub status_body: Option<(&'static str, &'static str)>,
}

/// How a 206 differs from the range asked for.
#[derive(Clone, Copy, Debug)]
pub enum RangeLie {
    /// It starts 512 bytes later (and sends from there).
    Start,
    /// It ends 512 bytes earlier (and sends up to there).
    End,
    /// Its total is its last byte, so that the range ends past the file.
    Total,
    /// Its `Content-Length` (and body) is 512 bytes shorter than its `Content-Range`.
    Length,
}

/// The prefix of the names under which the files of the commit `main` moved to are served.
const MOVED: &str = "@moved/";

/// A commit and its files.
pub(super) type Revision = (String, HashMap<String, Arc<Vec<u8>>>);

#[derive(Default)]
pub(super) struct State {
    cdn_requests: usize,
    next_id: u64,
    /// Connections accepted, per host.
    accepted: HashMap<&'static str, u64>,
    /// The Hub's own address (for the token realm it names).
    pub(super) hub: Option<SocketAddr>,
    /// Resolutions handed out (the signature of the next one).
    signatures: u64,
    /// Bytes sent per signature.
    sent_by_signature: HashMap<u64, u64>,
    sent_by: HashMap<u64, u64>,
    pub(super) files: HashMap<String, Arc<Vec<u8>>>,
    /// Where `main` points when it has moved on from [`REVISION`]: the commit and its files.
    pub(super) moved: Option<Revision>,
    faults: Faults,
    pub(super) seen: Vec<Seen>,
    /// The Xet CAS, once [`Hub::enable_xet`] has started it.
    pub(super) xet: Option<super::xet::Cas>,
}

/// The running servers.
pub struct Hub {
    pub hub: SocketAddr,
    pub cdn: SocketAddr,
    pub ca_file: PathBuf,
    pub(super) state: Arc<Mutex<State>>,
    pub(super) server: Arc<rustls::ServerConfig>,
    _dir: tempfile::TempDir,
}

pub const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";
pub const REPO: &str = "test-org/test-repo";

impl Hub {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, server) = tls_config();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let cdn_listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let cdn = cdn_listener.local_addr().unwrap();
        let hub_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let hub = hub_listener.local_addr().unwrap();
        state.lock().unwrap().hub = Some(hub);
        for (listener, host) in [(hub_listener, "hub"), (cdn_listener, "cdn")] {
            listen(listener, host, &state, &server, cdn);
        }
        Self { hub, cdn, ca_file, state, server, _dir: dir }
    }
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.hub)
    }

    /// `strata-model ARGS` in `sb`, pointed at this Hub (its endpoint and its CA).
    pub fn run(&self, sb: &super::Sandbox, args: &[&str]) -> super::Run {
        let mut c = sb.cmd();
        c.env("HF_ENDPOINT", self.endpoint()).env("SSL_CERT_FILE", &self.ca_file);
        super::Run::of(c.args(args).output().expect("run strata-model"))
    }

    pub fn endpoint_url(&self) -> url::Url {
        self.endpoint().parse().unwrap()
    }

    pub fn add_file(&self, name: &str, bytes: Vec<u8>) {
        let mut s = self.state.lock().unwrap();
        let file = HashMap::from([(name.to_string(), Arc::new(bytes))]);
        super::xet::store(&mut s.xet, &file);
        s.files.extend(file);
    }

    /// Moves `main` on to `commit`, whose files are `files` (those of [`REVISION`] stay as
    /// they are): what the model API says from now on.
    pub fn move_main(&self, commit: &str, files: &[(&str, Vec<u8>)]) {
        let files: HashMap<_, _> = files.iter().map(|(n, b)| (n.to_string(), Arc::new(b.clone()))).collect();
        let mut s = self.state.lock().unwrap();
        super::xet::store(&mut s.xet, &files);
        s.moved = Some((commit.to_string(), files));
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().unwrap().faults = faults;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// GET requests that reached the CDN (transfers of bytes).
    pub fn cdn_gets(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.host == "cdn" && s.method == "GET").collect()
    }

    pub fn clear_seen(&self) {
        self.state.lock().unwrap().seen.clear();
    }

    /// Requests that reached `host` (`"hub"` or `"cdn"`).
    pub fn requests(&self, host: &str) -> usize {
        self.seen().iter().filter(|s| s.host == host).count()
    }

    /// Connections `host` accepted since the start.
    pub fn connections(&self, host: &str) -> u64 {
        self.state.lock().unwrap().accepted.get(host).copied().unwrap_or(0)
    }

    /// Body bytes the CDN has sent for the requests seen since the start (or the last
    /// `clear_seen`).
    pub fn bytes_sent(&self) -> u64 {
        let s = self.state.lock().unwrap();
        s.seen.iter().filter_map(|r| s.sent_by.get(&r.id)).sum()
    }
}

/// Serves every connection `listener` accepts as `host`, each on its own thread.
pub(super) fn listen(
    listener: TcpListener,
    host: &'static str,
    state: &Arc<Mutex<State>>,
    server: &Arc<rustls::ServerConfig>,
    cdn: SocketAddr,
) {
    let (state, server) = (state.clone(), server.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (state, server) = (state.clone(), server.clone());
            std::thread::spawn(move || serve(stream, server, host, state, cdn));
        }
    });
}

fn tls_config() -> (String, Arc<rustls::ServerConfig>) {
    let ca = super::tls::TestCa::new();
    (ca.pem.clone(), ca.server_config())
}

/// What to do with a connection after a response.
#[derive(PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
    /// Cut it: no TLS close_notify, a TCP shutdown.
    Cut,
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    host: &'static str,
    state: Arc<Mutex<State>>,
    cdn: SocketAddr,
) {
    tcp.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let conn_id = {
        let mut s = state.lock().unwrap();
        let n = s.accepted.entry(host).or_default();
        *n += 1;
        *n
    };
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let Some((line, headers)) = super::tls::read_head(&mut tls) else { return };
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let (faults, files, id) = {
            let mut s = state.lock().unwrap();
            s.next_id += 1;
            let id = s.next_id;
            let seen = Seen {
                id,
                host,
                conn: conn_id,
                method: method.clone(),
                path: path.clone(),
                headers: headers.clone(),
            };
            s.seen.push(seen);
            // The files of the commit `main` moved to are served under `MOVED`-prefixed names.
            let mut files = s.files.clone();
            if let Some((_, moved)) = &s.moved {
                files.extend(moved.iter().map(|(n, b)| (format!("{MOVED}{n}"), b.clone())));
            }
            (s.faults.clone(), files, id)
        };
        let out = tls.get_mut();
        let after = match host {
            "hub" if path.starts_with("/v2/") || path.starts_with("/token") => {
                oci_response(out, &path, &headers, &files, &state, cdn)
            }
            "hub" if faults.hub_serves_unsized && method == "GET" => {
                match path.strip_prefix(&format!("/{REPO}/resolve/{REVISION}/")) {
                    Some(file) => {
                        cdn_response(out, &method, &format!("/cdn/{file}"), &headers, &files, &state, id)
                    }
                    None => hub_response(out, &path, &files, &faults, &state, cdn),
                }
            }
            "hub" => hub_response(out, &path, &files, &faults, &state, cdn),
            "cas" => {
                super::xet::cas_response(out, &method, &path, &headers, &state, id).map(|()| After::KeepAlive)
            }
            _ => cdn_response(out, &method, &path, &headers, &files, &state, id),
        };
        match after {
            Ok(After::KeepAlive) => {
                if out.flush().is_err() {
                    return;
                }
            }
            Ok(After::Cut) | Err(_) => {
                let _ = out.sock.shutdown(std::net::Shutdown::Both);
                return;
            }
            Ok(After::Close) => {
                out.conn.send_close_notify();
                let _ = out.flush();
                return;
            }
        }
    }
}

fn head(out: &mut (impl Write + ?Sized), status: &str, headers: &[(&str, String)]) -> std::io::Result<()> {
    let close = headers.iter().all(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
    let mut text = format!("HTTP/1.1 {status}\r\n");
    if close {
        text.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    out.write_all(text.as_bytes())
}

/// Decodes `%XX` escapes in a request path, as a real server does.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sha_hex(bytes: &[u8]) -> String {
    super::sha256_hex(bytes)
}

fn hub_response(
    out: &mut impl Write,
    path: &str,
    files: &HashMap<String, Arc<Vec<u8>>>,
    faults: &Faults,
    state: &Mutex<State>,
    cdn: SocketAddr,
) -> std::io::Result<After> {
    let not_found = |out: &mut dyn Write, code: &str| {
        head(out, "404 Not Found", &[("Content-Length", "0".into()), ("X-Error-Code", code.into())])
            .map(|()| After::KeepAlive)
    };
    if let Some((status, code)) = faults.hub_error {
        let reason = match status {
            401 => "Unauthorized",
            403 => "Forbidden",
            _ => "Not Found",
        };
        let h = [("Content-Length", "0".to_string()), ("X-Error-Code", code.to_string())];
        return head(out, &format!("{status} {reason}"), &h).map(|()| After::KeepAlive);
    }
    if let Some(reset) = faults.hub_rate_limit {
        state.lock().unwrap().faults.hub_rate_limit = None;
        let h = [
            ("Content-Length", "0".to_string()),
            ("RateLimit", format!("\"resolvers\";r=0;t={reset}")),
            ("RateLimit-Policy", "\"fixed window\";\"resolvers\";q=3000;w=300".to_string()),
        ];
        return head(out, "429 Too Many Requests", &h).map(|()| After::KeepAlive);
    }
    let token = super::xet::token_response(&mut state.lock().unwrap(), &percent_decode(path));
    if let Some(answer) = token {
        return answer.write(out, "GET").map(|()| After::KeepAlive);
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let moved = state.lock().unwrap().moved.clone();
        return api_response(out, rest, files, moved.as_ref(), faults);
    }
    let prefix = format!("/{REPO}/resolve/{REVISION}/");
    let cache = format!("/api/resolve-cache/models/{REPO}/{REVISION}/");
    let moved_commit = state.lock().unwrap().moved.as_ref().map(|(c, _)| c.clone());
    let moved = moved_commit.as_ref().map(|c| format!("/{REPO}/resolve/{c}/"));
    let at_moved = moved.as_deref().and_then(|p| path.strip_prefix(p));
    let (file, relative) = match (path.strip_prefix(&prefix), path.strip_prefix(&cache), at_moved) {
        (Some(f), _, _) => (percent_decode(f), faults.relative_redirect),
        (_, Some(f), _) => (percent_decode(f), false),
        (_, _, Some(f)) => (format!("{MOVED}{}", percent_decode(f)), false),
        _ => return not_found(out, "RepoNotFound"),
    };
    let Some(bytes) = files.get(&file) else {
        return not_found(out, "EntryNotFound");
    };
    let revision = if at_moved.is_some() { moved_commit.as_deref().unwrap_or(REVISION) } else { REVISION };
    let xet_headers = super::xet::resolve_headers(&state.lock().unwrap(), bytes, revision);
    let encoded = {
        let mut u = url::Url::parse("https://cdn.invalid/").unwrap();
        u.path_segments_mut().unwrap().pop_if_empty().push(&file);
        u.path()[1..].to_string()
    };
    if relative {
        let h = [("Location", format!("{cache}{encoded}")), ("Content-Length", "0".into())];
        return head(out, "307 Temporary Redirect", &h).map(|()| After::KeepAlive);
    }
    let signature = {
        let mut s = state.lock().unwrap();
        s.signatures += 1;
        s.signatures
    };
    let etag = format!("\"{}\"", sha_hex(bytes));
    if faults.hub_serves_unsized {
        let mut h =
            vec![("X-Repo-Commit", REVISION.to_string()), ("ETag", etag), ("Content-Length", "0".into())];
        h.extend(xet_headers);
        return head(out, "200 OK", &h).map(|()| After::KeepAlive);
    }
    let location = if faults.redirect_loop {
        path.to_string()
    } else if faults.redirect_http {
        format!("http://{cdn}/cdn/{encoded}?sig={signature}")
    } else {
        format!("https://{cdn}/cdn/{encoded}?sig={signature}")
    };
    let mut h = vec![
        ("Location", location),
        ("X-Repo-Commit", REVISION.to_string()),
        ("X-Linked-Etag", etag.clone()),
        ("X-Linked-Size", bytes.len().to_string()),
        ("ETag", etag),
        ("Content-Length", "0".into()),
    ];
    h.extend(xet_headers);
    head(out, "302 Found", &h).map(|()| After::KeepAlive)
}

/// The Hub as an OCI registry whose storage is another host (as S3-backed registries are):
/// `/v2/{REPO}/blobs/sha256:<hex>` asks for a token (`Bearer` challenge, realm `/token` here),
/// then redirects (307) to the CDN's signed URL of the file with that SHA-256.
fn oci_response(
    out: &mut impl Write,
    path: &str,
    headers: &HashMap<String, String>,
    files: &HashMap<String, Arc<Vec<u8>>>,
    state: &Mutex<State>,
    cdn: SocketAddr,
) -> std::io::Result<After> {
    const TOKEN: &str = "lookalike-token";
    if path.starts_with("/token") {
        let body = format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#);
        head(
            out,
            "200 OK",
            &[("Content-Type", "application/json".into()), ("Content-Length", body.len().to_string())],
        )?;
        return out.write_all(body.as_bytes()).map(|()| After::KeepAlive);
    }
    if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
        let hub = state.lock().unwrap().hub.unwrap();
        let challenge = format!(
            r#"Bearer realm="https://{hub}/token",service="lookalike",scope="repository:{REPO}:pull""#
        );
        let h = [("Content-Length", "0".to_string()), ("WWW-Authenticate", challenge)];
        return head(out, "401 Unauthorized", &h).map(|()| After::KeepAlive);
    }
    let digest = path.strip_prefix(&format!("/v2/{REPO}/blobs/sha256:"));
    let file = digest.and_then(|d| files.iter().find(|(_, b)| sha_hex(b) == d).map(|(name, _)| name.clone()));
    let Some(file) = file else {
        return head(out, "404 Not Found", &[("Content-Length", "0".into())]).map(|()| After::KeepAlive);
    };
    let signature = {
        let mut s = state.lock().unwrap();
        s.signatures += 1;
        s.signatures
    };
    let mut u = url::Url::parse(&format!("https://{cdn}/cdn/")).unwrap();
    u.path_segments_mut().unwrap().pop_if_empty().push(&file);
    u.set_query(Some(&format!("sig={signature}")));
    head(out, "307 Temporary Redirect", &[("Location", u.to_string()), ("Content-Length", "0".into())])
        .map(|()| After::KeepAlive)
}

/// The model API: `{owner}/{repo}/revision/{rev}[?blobs=true]` for [`REPO`] at `main` or
/// [`REVISION`] (or the commit `main` moved to, [`Hub::move_main`]), listing a `README.md` stored in Git and every file added (LFS, unless the
/// `not_lfs` fault names it). Shaped as the Hub's answer (`sha`, `siblings` with `rfilename`,
/// `size`, `blobId`, `lfs: {size, sha256, pointerSize}`).
fn api_response(
    out: &mut impl Write,
    rest: &str,
    files: &HashMap<String, Arc<Vec<u8>>>,
    moved: Option<&Revision>,
    faults: &Faults,
) -> std::io::Result<After> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let refuse = |out: &mut dyn Write, code: &str, message: &str| {
        let body = format!("{{\"error\":\"{message}\"}}");
        head(
            out,
            "404 Not Found",
            &[
                ("Content-Type", "application/json".into()),
                ("Content-Length", body.len().to_string()),
                ("X-Error-Code", code.into()),
            ],
        )?;
        out.write_all(body.as_bytes()).map(|()| After::KeepAlive)
    };
    let Some((repo, revision)) = path.split_once("/revision/") else {
        return refuse(out, "RepoNotFound", "Repository not found");
    };
    if repo != REPO {
        return refuse(out, "RepoNotFound", "Repository not found");
    }
    let revision = percent_decode(revision);
    let (sha, files) = match moved {
        Some((commit, moved_files)) if revision == "main" || revision == *commit => {
            (commit.as_str(), moved_files)
        }
        _ if revision == "main" || revision == REVISION => (REVISION, files),
        _ => return refuse(out, "RevisionNotFound", &format!("Invalid rev id: {revision}")),
    };
    let blobs = query.split('&').any(|p| p == "blobs=true" || p == "blobs=True");
    let mut names: Vec<&String> = files.keys().filter(|n| !n.starts_with(MOVED)).collect();
    names.sort();
    let mut siblings = vec![if blobs {
        serde_json::json!({"rfilename": "README.md", "size": 14, "blobId": "5f1c0d3e"})
    } else {
        serde_json::json!({"rfilename": "README.md"})
    }];
    for name in names {
        let bytes = &files[name];
        let mut sibling = serde_json::json!({"rfilename": name});
        if blobs {
            sibling["size"] = bytes.len().into();
            sibling["blobId"] = sha_hex(name.as_bytes())[..40].into();
            if !faults.not_lfs.contains(&name.as_str()) {
                sibling["lfs"] =
                    serde_json::json!({"size": bytes.len(), "sha256": sha_hex(bytes), "pointerSize": 135});
            }
        }
        siblings.push(sibling);
    }
    let body = serde_json::json!({
        "_id": "6650f0c0a1b2c3d4e5f60718",
        "id": REPO,
        "modelId": REPO,
        "author": REPO.split('/').next(),
        "sha": sha,
        "private": false,
        "gated": false,
        "disabled": false,
        "tags": ["gguf"],
        "siblings": siblings,
    })
    .to_string();
    head(
        out,
        "200 OK",
        &[
            ("Content-Type", "application/json; charset=utf-8".into()),
            ("Content-Length", body.len().to_string()),
        ],
    )?;
    out.write_all(body.as_bytes()).map(|()| After::KeepAlive)
}

fn cdn_response(
    out: &mut impl Write,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    files: &HashMap<String, Arc<Vec<u8>>>,
    state: &Arc<Mutex<State>>,
    id: u64,
) -> std::io::Result<After> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let signature = query.strip_prefix("sig=").and_then(|s| s.parse::<u64>().ok());
    let Some(bytes) = path.strip_prefix("/cdn/").map(percent_decode).and_then(|f| files.get(&f)) else {
        return head(out, "404 Not Found", &[("Content-Length", "0".into())]).map(|()| After::KeepAlive);
    };
    let expired = {
        let s = state.lock().unwrap();
        let limit = s.faults.expire_signature_after;
        signature
            .zip(limit)
            .is_some_and(|(sig, limit)| s.sent_by_signature.get(&sig).copied().unwrap_or(0) >= limit)
    };
    if expired {
        let page = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        head(out, "403 Forbidden", &[("Content-Length", page.len().to_string())])?;
        return out.write_all(page).map(|()| After::KeepAlive);
    }
    let mut faults = {
        let mut s = state.lock().unwrap();
        s.cdn_requests += 1;
        let mut f = s.faults.clone();
        if s.cdn_requests > f.statuses_after {
            if !s.faults.statuses.is_empty() {
                s.faults.statuses.remove(0);
            }
        } else {
            f.statuses.clear();
        }
        f
    };
    if let Some((code, retry)) = faults.statuses.first().copied() {
        let (content_type, body) = faults.status_body.unwrap_or(("text/plain", ""));
        let mut h = vec![("Content-Length", body.len().to_string())];
        if !body.is_empty() {
            h.push(("Content-Type", content_type.to_string()));
        }
        if let Some(r) = retry {
            h.push(("Retry-After", r.to_string()));
        }
        let reason = match code {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            408 => "Request Timeout",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Error",
        };
        if retry.is_some() && faults.retry_after_as_date {
            let at = std::time::SystemTime::now() + Duration::from_secs(retry.unwrap_or(0));
            h.retain(|(k, _)| *k != "Retry-After");
            h.push(("Retry-After", httpdate::fmt_http_date(at)));
        }
        head(out, &format!("{code} {reason}"), &h)?;
        return out.write_all(body.as_bytes()).map(|()| After::KeepAlive);
    }
    if faults.range_416_once && headers.contains_key("range") {
        state.lock().unwrap().faults.range_416_once = false;
        return head(out, "416 Range Not Satisfiable", &[("Content-Length", "0".into())])
            .map(|()| After::KeepAlive);
    }
    if faults.html {
        let page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>";
        head(
            out,
            "200 OK",
            &[("Content-Type", "text/html".into()), ("Content-Length", page.len().to_string())],
        )?;
        return out.write_all(page).map(|()| After::KeepAlive);
    }
    let etag = format!("\"{}\"", sha_hex(bytes));
    let sent_etag = if faults.weak_etag { format!("W/{etag}") } else { etag.clone() };
    let total = bytes.len() as u64;
    let mut len = total; // one past the last byte sent
    let mut start = 0u64;
    let mut partial = false;
    let whole_file_once = faults.whole_file_for_a_range_once
        && headers.get("range").is_some_and(|r| !r.starts_with("bytes=0-"))
        && std::mem::take(&mut state.lock().unwrap().faults.whole_file_for_a_range_once);
    if let Some(range) = headers.get("range").and_then(|r| r.strip_prefix("bytes=")) {
        let if_range_ok = headers.get("if-range").is_none_or(|v| *v == etag);
        if !faults.ignore_range && if_range_ok && !whole_file_once {
            let (a, b) = range.split_once('-').unwrap_or((range, ""));
            start = a.parse().unwrap_or(0);
            if let Ok(last) = b.parse::<u64>() {
                len = (last + 1).min(total);
            }
            if start >= total {
                return head(
                    out,
                    "416 Range Not Satisfiable",
                    &[("Content-Range", format!("bytes */{total}")), ("Content-Length", "0".into())],
                )
                .map(|()| After::KeepAlive);
            }
            partial = true;
        }
    }
    // What the Content-Range says (start, last byte, total); the body is `start..len`.
    let mut claim = (start, len.saturating_sub(1), total);
    let lie = faults.range_lie.filter(|_| partial);
    if lie.is_some() && faults.range_lie_once {
        state.lock().unwrap().faults.range_lie = None;
    }
    match lie {
        Some(RangeLie::Start) => {
            start += 512;
            claim.0 = start;
        }
        Some(RangeLie::End) => {
            len -= 512;
            claim.1 = len - 1;
        }
        Some(RangeLie::Total) => claim.2 = claim.1,
        Some(RangeLie::Length) => len -= 512,
        None => {}
    }
    let mut h = vec![("Accept-Ranges", "bytes".to_string())];
    if !faults.no_etag {
        h.push(("ETag", sent_etag));
    }
    h.extend([("Content-Type", "application/octet-stream".into())]);
    if !faults.extra_bytes {
        h.push(("Content-Length", (len - start).to_string()));
    }
    if partial {
        h.push(("Content-Range", format!("bytes {}-{}/{}", claim.0, claim.1, claim.2)));
    }
    head(out, if partial { "206 Partial Content" } else { "200 OK" }, &h)?;
    if method == "HEAD" {
        return Ok(After::KeepAlive);
    }
    // One-shot faults are consumed by the transfer that meets them.
    let take_once = |f: &mut Faults| {
        let mut s = state.lock().unwrap();
        if f.drop_at.is_some() {
            s.faults.drop_at = None;
        }
        if f.stall_at.is_some() {
            s.faults.stall_at = None;
        }
        if f.cut_at.is_some() {
            s.faults.cut_at = None;
        }
    };
    take_once(&mut faults);
    if let Some(slow) = faults.slow_first {
        let mut s = state.lock().unwrap();
        if s.faults.slow_first.is_some() {
            s.faults.slow_first = None;
            faults.rate = Some(slow);
        }
    }
    let mut pos = start;
    let chunk = 16 * 1024u64;
    while pos < len {
        let mut end = (pos + chunk).min(len);
        if let Some(d) = faults.drop_at.filter(|&d| d > pos && d < len) {
            end = end.min(d);
        }
        if let Some(d) = faults.cut_at.filter(|&d| d > pos && d < len) {
            end = end.min(d);
        }
        if let Some((s, _)) = faults.stall_at.filter(|&(s, _)| s > pos) {
            end = end.min(s);
        }
        let mut piece = bytes[pos as usize..end as usize].to_vec();
        let mid = total / 2;
        if faults.flip_byte && (pos..end).contains(&mid) {
            piece[(mid - pos) as usize] ^= 0xff;
        }
        out.write_all(&piece)?;
        {
            let mut s = state.lock().unwrap();
            *s.sent_by.entry(id).or_default() += piece.len() as u64;
            if let Some(sig) = signature {
                *s.sent_by_signature.entry(sig).or_default() += piece.len() as u64;
            }
        }
        pos = end;
        if faults.drop_at == Some(pos) {
            return out.flush().map(|()| After::Close);
        }
        if faults.cut_at == Some(pos) {
            return Ok(After::Cut);
        }
        if let Some((s, d)) = faults.stall_at {
            if s == pos {
                out.flush()?;
                std::thread::sleep(d);
                return Ok(After::Close);
            }
        }
        if let Some(rate) = faults.rate {
            out.flush()?;
            std::thread::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64));
        }
    }
    if faults.extra_bytes {
        out.write_all(&[b'!'; 1000])?;
        return out.flush().map(|()| After::Close);
    }
    out.flush().map(|()| After::KeepAlive)
}
