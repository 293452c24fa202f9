//! Every shared test helper: an isolated environment for the `strata-model` binary
//! ([`Sandbox`]), fixture files, the Hugging Face look-alike ([`hub`]) with a registered
//! model ([`Setup`]), the object-store emulators ([`emulators`]), the `LD_PRELOAD` filesystem
//! shim ([`shim`]), black-holed addresses ([`blackhole`]) and the one mockall
//! [`mock::MockSource`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

pub mod blackhole;
#[cfg(feature = "cloud")]
pub mod emulators;
pub mod hub;
pub mod mock;
pub mod nginx;
pub mod oci;
mod setup;
pub mod shim;
pub mod tls;
pub mod xet;

pub use setup::{setup, Setup};

/// A temporary home and models directory; commands run with a clean environment.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self { tmp: tempfile::tempdir().expect("temp dir") }
    }

    pub fn models(&self) -> PathBuf {
        self.tmp.path().join("models")
    }

    /// The binary with only the variables a test gives (plus PATH).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strata-model"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path().join("home"))
            .env("STRATA_MODELS_DIR", self.models());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args).output().expect("run strata-model"))
    }
}

/// A finished command, with helpers that print everything on failure.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// A GGUF-shaped file of exactly `size` bytes: a real header, then filler.
pub fn gguf_bytes(arch: &str, dim: u32, size: usize, seed: u8) -> Vec<u8> {
    gguf_file(strata_model::gguf::test_header(arch, dim, 7), size, seed)
}

/// `header`, then filler up to exactly `size` bytes.
pub fn gguf_file(header: Vec<u8>, size: usize, seed: u8) -> Vec<u8> {
    let mut b = header;
    assert!(size >= b.len(), "size {size} smaller than the header");
    let mut x = u32::from(seed) | 1;
    while b.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b.push(x as u8);
    }
    b
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Registers `bytes` as custom model `name` (file `<name>-Q8_0.gguf`) through the CLI.
pub fn register(sb: &Sandbox, name: &str, bytes: &[u8]) -> String {
    register_file(sb, name, &format!("{name}-Q8_0.gguf"), bytes)
}

/// Registers `bytes` as custom model `name` with file name `file` through the CLI.
pub fn register_file(sb: &Sandbox, name: &str, file: &str, bytes: &[u8]) -> String {
    let extra = ["--arch", "bert", "--dim", "384", "--description", "test fixture"];
    register_with(sb, name, file, bytes, &extra).ok();
    file.to_string()
}

/// `register NAME` for `bytes` as `file` of the test repository, with `extra` flags; the run.
pub fn register_with(sb: &Sandbox, name: &str, file: &str, bytes: &[u8], extra: &[&str]) -> Run {
    let (sha, size) = (sha256_hex(bytes), bytes.len().to_string());
    let args = [
        "register",
        name,
        "--repo",
        hub::REPO,
        "--file",
        file,
        "--revision",
        hub::REVISION,
        "--sha256",
        &sha,
        "--size",
        &size,
    ];
    sb.run(&[&args[..], extra].concat())
}

pub fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// A value `scripts/emulators start` provides (an emulator's address, the Python with
/// huggingface_hub): from the environment, else from its env file. Missing: a failure under
/// `CI=true`, else `None` with the reason printed (`what` needs it).
pub fn test_env(var: &str, what: &str) -> Option<String> {
    if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
        return Some(v);
    }
    let dir = std::env::var_os("STRATA_EMULATORS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/strata-model/emulators")
    });
    let file = dir.join("env");
    let from_file = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix(&format!("{var}=")).map(str::to_string)));
    if from_file.is_some() {
        return from_file;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{var} is not set and {} is missing: CI must run scripts/test", file.display());
    }
    eprintln!("skipping: {var} is not set (run scripts/emulators start for {what})");
    None
}

/// A sandbox with custom model `tiny` registered, and a Hugging Face endpoint nobody
/// answers.
pub fn registered_sandbox(bytes: &[u8]) -> (Sandbox, String, String) {
    let sb = Sandbox::new();
    let file = register(&sb, "tiny", bytes);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    (sb, file, format!("https://{dead}"))
}
