//! nginx (Debian `nginx-light`, installed by `.ci/run` and found by `scripts/emulators`:
//! `STRATA_TEST_NGINX`) as a reverse proxy in front of a test [`Registry`], over TLS with the
//! registry's own certificate: a cap on request bodies (`client_max_body_size`), request
//! buffering on (nginx's default: a request reaches the registry whole or not at all) or off
//! (streamed as it comes), and optionally `405` for every `PATCH` (a registry path that refuses
//! chunked uploads). Every request is logged as `method status request_length` (the bytes of
//! its request line, headers and body): what a client sent through it. And [`Throttle`], a
//! TCP forwarder that slows what a client sends (a slow uplink) so a test can stop a push
//! half way.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::oci::Registry;

/// How the proxy treats requests.
#[derive(Clone, Copy, Debug)]
pub struct ProxyRules {
    /// `client_max_body_size` (`8m`).
    pub max_body: &'static str,
    /// `proxy_request_buffering`.
    pub buffering: bool,
    /// Answer `PATCH` with `405`.
    pub refuse_patch: bool,
    /// Answer a `GET` on an upload (its status) with `405`.
    pub refuse_status: bool,
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub status: u16,
    /// Request line, headers and body, in bytes.
    pub length: u64,
}

/// A running nginx in front of a registry.
pub struct Proxy {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Starts nginx in front of `registry`, or `None` (with the reason printed) when nginx is
    /// not installed — a failure under `CI=true`.
    pub fn start(registry: &Registry, rules: ProxyRules) -> Option<Self> {
        let binary = super::test_env("STRATA_TEST_NGINX", "the OCI proxy tests")?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let certs = registry.dir.path().display();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut patch =
            if rules.refuse_patch { "if ($request_method = PATCH) { return 405; }" } else { "" }.to_string();
        if rules.refuse_status {
            patch.push_str(
                "set $status_get \"\"; if ($request_method = GET) { set $status_get G; }                  if ($uri ~ /blobs/uploads/.) { set $status_get \"${status_get}U\"; }                  if ($status_get = GU) { return 405; }",
            );
        }
        // One process (`master_process off`): no worker switching to another user who could not
        // read this directory.
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\nhttp {{\n  log_format sent '$request_method $status $request_length';\n  \
             access_log {d}/access.log sent;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {certs}/cert.pem;\n    \
             ssl_certificate_key {certs}/key.pem;\n    client_max_body_size {max};\n    \
             proxy_request_buffering {buffering};\n    location / {{\n      {patch}\n      \
             proxy_pass https://{upstream};\n      proxy_http_version 1.1;\n      \
             proxy_set_header Host $http_host;\n      proxy_set_header X-Forwarded-Proto https;\n      \
             proxy_read_timeout 60s;\n    }}\n  }}\n}}\n",
            max = rules.max_body,
            buffering = if rules.buffering { "on" } else { "off" },
            upstream = registry.addr,
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut proxy = Self { addr, dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("nginx exited ({status}): {}", proxy.error_log());
            }
            assert!(Instant::now() < deadline, "nginx did not listen: {}", proxy.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(proxy)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// `oci://127.0.0.1:PORT/<repository>`, through the proxy.
    pub fn location(&self, repository: &str) -> String {
        format!("oci://{}/{repository}", self.addr)
    }

    /// Every request logged so far.
    pub fn requests(&self) -> Vec<Logged> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some(Logged {
                    method: f.next()?.to_string(),
                    status: f.next()?.parse().ok()?,
                    length: f.next()?.parse().ok()?,
                })
            })
            .collect()
    }
}

/// A TCP forwarder to `target` that passes what clients send at `rate` bytes per second per
/// connection (what comes back goes at full speed): a slow uplink. What a client sends is
/// taken in at once and let out at the rate; when the client's connection ends, what it sent
/// that has not gone out yet is lost with it, as on a link that breaks.
pub struct Throttle {
    pub addr: SocketAddr,
    open: Arc<AtomicUsize>,
    /// Bytes passed on from clients to the target (TLS records: bodies, headers and overhead).
    pub uplinked: Arc<AtomicU64>,
    /// When not 0: the connection passing this many uplinked bytes is cut, once.
    pub cut_at: Arc<AtomicU64>,
}

impl Throttle {
    pub fn start(target: SocketAddr, rate: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let uplinked = Arc::new(AtomicU64::new(0));
        let cut_at = Arc::new(AtomicU64::new(0));
        let counter = open.clone();
        let bytes = uplinked.clone();
        let cut = cut_at.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(target) else { continue };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                counter.fetch_add(1, Ordering::SeqCst);
                let (open, bytes, cut) = (counter.clone(), bytes.clone(), cut.clone());
                std::thread::spawn(move || {
                    uplink(client, server, rate, &bytes, &cut);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
                std::thread::spawn(move || downlink(s2, c2));
            }
        });
        Self { addr, open, uplinked, cut_at }
    }

    /// Waits until no client connection is open (a killed client's has been cut).
    pub fn wait_idle(&self, deadline: Instant) {
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "a connection through the throttle stays open");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Client to server at `rate`: a thread takes in what the client sends; this one lets it out.
fn uplink(client: TcpStream, mut server: TcpStream, rate: u64, uplinked: &AtomicU64, cut_at: &AtomicU64) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut from = client.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
        // `tx` drops: the link is cut.
    });
    let started = Instant::now();
    let mut sent = 0u64;
    'link: while let Ok(data) = rx.recv() {
        for piece in data.chunks(16 * 1024) {
            let due = Duration::from_secs_f64((sent + piece.len() as u64) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            if server.write_all(piece).is_err() {
                break 'link;
            }
            sent += piece.len() as u64;
            let total = uplinked.fetch_add(piece.len() as u64, Ordering::SeqCst) + piece.len() as u64;
            let cut = cut_at.load(Ordering::SeqCst);
            if cut > 0
                && total >= cut
                && cut_at.compare_exchange(cut, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                break 'link; // the link breaks here, once
            }
        }
    }
    // Whatever is still queued is lost with the connection.
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Server to client, at full speed.
fn downlink(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
