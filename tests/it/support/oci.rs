//! The CNCF distribution server (Debian `docker-registry`, installed by `.ci/run` and found by
//! `scripts/emulators`), started for one test on 127.0.0.1 with a certificate from the test
//! CA: open, behind htpasswd `Basic` auth, or behind a token realm — [`TokenServer`], a small
//! token issuer here that signs ES256 tokens with a certificate from the same CA (the
//! registry trusts it through `rootcertbundle`).

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use strata_model::Config;

use super::tls::{Leaf, TestCa};

pub const USER: &str = "fleet";
pub const PASSWORD: &str = "s3cret-pw";

/// How the registry authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Open,
    /// htpasswd, user [`USER`], password [`PASSWORD`].
    Basic,
    /// Tokens from a [`TokenServer`] that gives pull tokens to anyone and push tokens to
    /// [`USER`].
    Token,
    /// Tokens for [`USER`] only.
    PrivateToken,
}

/// A running registry.
pub struct Registry {
    pub addr: SocketAddr,
    pub ca_file: PathBuf,
    pub dir: tempfile::TempDir,
    pub token: Option<TokenServer>,
    child: Child,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// Starts a registry, or `None` (with the reason printed) when the server is not
    /// installed — a failure under `CI=true`.
    pub fn start(auth: Auth) -> Option<Self> {
        let binary = super::test_env("STRATA_TEST_DOCKER_REGISTRY", "the OCI registry tests")?;
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let server = ca.server();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).unwrap();
        std::fs::write(dir.path().join("cert.pem"), format!("{}{}", server.cert_pem, ca.pem)).unwrap();
        std::fs::write(dir.path().join("key.pem"), server.key.serialize_pem()).unwrap();
        let port = free_port();
        let mut token = None;
        let auth_section = match auth {
            Auth::Open => String::new(),
            Auth::Basic => {
                let htpasswd = super::test_env("STRATA_TEST_HTPASSWD", "the OCI registry tests")?;
                let out = Command::new(htpasswd).args(["-Bbn", USER, PASSWORD]).output().unwrap();
                assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
                std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            Auth::Token | Auth::PrivateToken => {
                let server = TokenServer::start(&ca, auth == Auth::Token);
                let section = format!(
                    "auth:\n  token:\n    realm: https://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    server.addr,
                    ca_file.display()
                );
                token = Some(server);
                section
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: strata-test\n  \
             tls:\n    certificate: {dir}/cert.pem\n    key: {dir}/key.pem\n{auth_section}",
            root = dir.path().join("storage").display(),
            dir = dir.path().display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut registry = Self { addr, ca_file, dir, token, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", registry.log());
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen: {}", registry.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `oci://127.0.0.1:PORT/<repository>`.
    pub fn location(&self, repository: &str) -> String {
        format!("oci://{}/{repository}", self.addr)
    }

    /// Where the registry keeps the bytes of blob `sha256` (to tamper with them by hand).
    pub fn blob_data(&self, sha256: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("storage/docker/registry/v2/blobs/sha256/{}/{sha256}/data", &sha256[..2]))
    }

    /// A Docker `config.json` with the test user's credentials, in a directory of its own
    /// (for `DOCKER_CONFIG`).
    pub fn docker_config(&self) -> PathBuf {
        let dir = self.dir.path().join("docker");
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let text = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.addr);
        std::fs::write(dir.join("config.json"), text).unwrap();
        dir
    }

    /// A library configuration that trusts the test CA and reads credentials from `auth`.
    pub fn config(&self, models: &Path, auth: &[PathBuf]) -> Config {
        Config::new(models)
            .with_ca_file(Some(self.ca_file.clone()))
            .with_registry_auth_files(auth.to_vec())
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_secs(10))
    }
}

const SERVICE: &str = "strata-test-registry";
const ISSUER: &str = "strata-test-issuer";

/// A token issuer: `GET /token?service=…&scope=…` (with `Basic` credentials, or none), and
/// the OAuth2 `POST /token` of a refresh token. Counts what it was asked.
pub struct TokenServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    fn start(ca: &TestCa, anonymous_pull: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ca.server_config();
        let signer = Arc::new(ca.signer());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, signer, seen) = (config.clone(), signer.clone(), seen.clone());
                std::thread::spawn(move || serve_token(stream, config, &signer, &seen, anonymous_pull));
            }
        });
        Self { addr, requests }
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn serve_token(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    signer: &Leaf,
    seen: &Mutex<Vec<String>>,
    anonymous_pull: bool,
) {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let Some((line, headers)) = super::tls::read_head(&mut tls) else { return };
        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; length];
        if tls.read_exact(&mut body).is_err() {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let query = target.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
        let form = if line.starts_with("POST") { String::from_utf8_lossy(&body).into_owned() } else { query };
        let params: HashMap<String, String> =
            url::form_urlencoded::parse(form.as_bytes()).into_owned().collect();
        seen.lock().unwrap().push(format!("{} {}", line.split_whitespace().next().unwrap_or(""), form));
        let basic = headers.get("authorization").and_then(|a| a.strip_prefix("Basic ")).map(|b| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default())
                .unwrap_or_default()
        });
        let user_ok = basic.as_deref() == Some(&format!("{USER}:{PASSWORD}"))
            || params.get("refresh_token").is_some_and(|t| t == "refresh-for-fleet");
        let scope = params.get("scope").cloned().unwrap_or_default();
        let mut parts = scope.splitn(3, ':');
        let (kind, name, actions) =
            (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let granted: Vec<&str> =
            actions.split(',').filter(|a| user_ok || (anonymous_pull && *a == "pull")).collect();
        let wrong_password = basic.is_some() && !user_ok;
        let out = tls.get_mut();
        let response = if wrong_password || granted.is_empty() {
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_string()
        } else {
            let token = jwt(signer, kind, name, &granted);
            let body = format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if out.write_all(response.as_bytes()).and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// A token as the distribution server verifies it (`registry/auth/token/token.go`): ES256,
/// the signing certificate in `x5c`, issuer, audience, lifetime and the granted access.
fn jwt(signer: &Leaf, kind: &str, name: &str, actions: &[&str]) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let x5c = base64::engine::general_purpose::STANDARD.encode(&signer.cert_der);
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let header = format!(r#"{{"typ":"JWT","alg":"ES256","x5c":["{x5c}"]}}"#);
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{name}"), "access": [{"type": kind, "name": name, "actions": actions}],
    });
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(claims.to_string().as_bytes()));
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &signer.key.serialize_der(),
        &rng,
    )
    .unwrap();
    let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(signature.as_ref()))
}
