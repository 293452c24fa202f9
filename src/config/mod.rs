//! Configuration: where models live and where they come from, read from the environment
//! through an injectable lookup so tests never touch the process environment. Every variable
//! the crate reads is a constant in [`vars`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

#[cfg(test)]
use crate::error::Result;

pub mod caches;
mod env;
pub mod vars;

pub use env::parse_lock_timeout;

pub use caches::{CacheDir, CacheTool, Layout};

/// Prefixes of the object-store variables captured by [`Config::from_env`].
pub const CLOUD_PREFIXES: &[&str] = &["AWS_", "GOOGLE_", "AZURE_"];

/// The default Hugging Face endpoint.
pub const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

/// A secret value (a token). Its `Debug` output is redacted, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The configuration of a [`crate::Registry`].
///
/// Built from the environment with [`Config::from_env`], or explicitly. Every setting has a
/// setter `with_x` and a getter `x`:
///
/// ```
/// let config = strata_model::Config::new("/tmp/models").with_offline(true);
/// assert_eq!(config.models_dir(), std::path::Path::new("/tmp/models"));
/// assert!(config.offline());
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    models_dir: PathBuf,
    catalog_file: Option<PathBuf>,
    mirrors: Vec<OsString>,
    hf_endpoint: Url,
    hf_token: Option<Secret>,
    offline: bool,
    ca_file: Option<PathBuf>,
    env_proxy: bool,
    connect_timeout: Duration,
    read_timeout: Duration,
    retry: RetryPolicy,
    cloud_options: Vec<(String, Secret)>,
    connections: Option<usize>,
    max_rate: Option<u64>,
    push_chunk_size: u64,
    caches: Vec<CacheDir>,
    hf_token_file: Option<PathBuf>,
    hf_hub_cache: Option<PathBuf>,
    share_hf_cache: bool,
    registry_auth_files: Vec<PathBuf>,
    lock_timeout: Option<Duration>,
    cloud_unreadable: Vec<String>,
    resolve: Vec<(String, Vec<SocketAddr>)>,
}

/// The default chunk size of pushes to OCI registries: 64 MiB.
pub const DEFAULT_PUSH_CHUNK_SIZE: u64 = 64 << 20;

/// The smallest chunk of a push to an OCI registry: 1 MiB.
pub const MIN_PUSH_CHUNK_SIZE: u64 = 1 << 20;

/// Where the Hugging Face token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `HF_TOKEN` (or a token given to [`Config::with_hf_token`]).
    Variable,
    /// A token file (`HF_TOKEN_PATH`, else `$HF_HOME/token`), as `hf auth login` saves it.
    File(PathBuf),
    /// No token.
    None,
}

/// How transient failures are retried: up to `attempts` tries per source without progress,
/// waiting `base`, `2 × base`, `4 × base`, ... (at most `max_delay`), or what the server
/// asks with `Retry-After` (at most `max_delay`). A rate limit (HTTP 429 with `RateLimit` or
/// `Retry-After`) is waited out, up to `rate_limit_wait`, without counting as a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per source in a row that make no progress before giving up on it.
    pub attempts: u32,
    /// The first back-off delay.
    pub base: Duration,
    /// The longest delay, including one asked for by `Retry-After` on a 5xx.
    pub max_delay: Duration,
    /// The longest wait for a rate limit to reset (the Hub's window is 5 minutes).
    pub rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            rate_limit_wait: Duration::from_secs(300),
        }
    }
}

/// `path` with a leading `~` (alone, or before a `/`) expanded to the home directory (`HOME`,
/// else the password database), as the environment's paths are: for a path given on a command
/// line where no shell expanded it (`--models-dir=~/models`).
///
/// # Errors
/// [`crate::RegistryError::InvalidConfig`] naming `what` when the path starts with `~` and no
/// home directory is known, or with `~user` (which is not expanded).
pub fn expand_home(what: &str, path: &Path) -> crate::error::Result<PathBuf> {
    let home =
        std::env::var_os(vars::HOME).filter(|h| !h.is_empty()).map(PathBuf::from).or_else(dirs::home_dir);
    caches::expand(what, path.as_os_str(), home.as_deref())
}

/// The default Hugging Face endpoint, as a URL.
fn default_endpoint() -> Url {
    Url::parse(DEFAULT_HF_ENDPOINT).expect("the default endpoint is a URL")
}

impl Config {
    /// A configuration with this models directory and every other setting at its default
    /// (no custom catalog path, no mirrors, the public Hugging Face endpoint, online).
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            catalog_file: None,
            mirrors: Vec::new(),
            hf_endpoint: default_endpoint(),
            hf_token: None,
            offline: false,
            ca_file: None,
            env_proxy: false,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            cloud_options: Vec::new(),
            connections: None,
            max_rate: None,
            push_chunk_size: DEFAULT_PUSH_CHUNK_SIZE,
            caches: Vec::new(),
            hf_token_file: None,
            hf_hub_cache: None,
            share_hf_cache: false,
            registry_auth_files: Vec::new(),
            lock_timeout: None,
            cloud_unreadable: Vec::new(),
            resolve: Vec::new(),
        }
    }

    /// Sets the models directory.
    pub fn with_models_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = dir.into();
        self
    }

    /// The models directory.
    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// Sets the custom catalog file (default `<models dir>/catalog.json`).
    pub fn with_catalog_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.catalog_file = Some(file.into());
        self
    }

    /// The custom catalog file in effect.
    pub fn catalog_file(&self) -> PathBuf {
        self.catalog_file.clone().unwrap_or_else(|| self.models_dir.join("catalog.json"))
    }

    /// Sets the mirror entries (`STRATA_MODELS_MIRROR` syntax, one location each), tried in
    /// order before Hugging Face. Entries are OS strings, so that a mirror directory keeps
    /// its exact name; URLs must be UTF-8.
    pub fn with_mirrors<I, S>(mut self, mirrors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.mirrors = mirrors.into_iter().map(Into::into).collect();
        self
    }

    /// The mirror entries, in order.
    pub fn mirrors(&self) -> &[OsString] {
        &self.mirrors
    }

    /// Sets how long to wait for another process that holds a model (downloading it) before
    /// giving up with [`crate::RegistryError::Busy`]; `None` (the default) waits as long as it takes.
    pub fn with_lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long to wait for another process holding a model (`STRATA_LOCK_TIMEOUT`,
    /// `--lock-timeout`); `None`: without limit.
    pub fn lock_timeout(&self) -> Option<Duration> {
        self.lock_timeout
    }

    /// Sets the Hugging Face endpoint.
    pub fn with_hf_endpoint(mut self, endpoint: Url) -> Self {
        self.hf_endpoint = endpoint;
        self
    }

    /// The Hugging Face endpoint.
    pub fn hf_endpoint(&self) -> &Url {
        &self.hf_endpoint
    }

    /// Sets the Hugging Face token.
    pub fn with_hf_token(mut self, token: Option<Secret>) -> Self {
        self.hf_token = token;
        self
    }

    /// The Hugging Face token given directly (`HF_TOKEN`), if any; see
    /// [`Config::resolve_hf_token`] for the saved token file too.
    pub fn hf_token(&self) -> Option<&Secret> {
        self.hf_token.as_ref()
    }

    /// Sets the file a saved token is read from when no token is given (`HF_TOKEN_PATH`, else
    /// `$HF_HOME/token`, as huggingface_hub reads it).
    pub fn with_hf_token_file(mut self, file: Option<PathBuf>) -> Self {
        self.hf_token_file = file;
        self
    }

    /// The file a saved token is read from.
    pub fn hf_token_file(&self) -> Option<&Path> {
        self.hf_token_file.as_deref()
    }

    /// Sets the files registry credentials are read from, in order (see
    /// [`Config::registry_auth_files`]).
    pub fn with_registry_auth_files(mut self, files: Vec<PathBuf>) -> Self {
        self.registry_auth_files = files;
        self
    }

    /// The files `oci://` sources read credentials from, in the order podman and skopeo
    /// read them (containers-auth.json(5)): `REGISTRY_AUTH_FILE`, else
    /// `$XDG_RUNTIME_DIR/containers/auth.json`; then `$XDG_CONFIG_HOME/containers/auth.json`
    /// (`~/.config/…`); then Docker's `$DOCKER_CONFIG/config.json` (else
    /// `~/.docker/config.json`). The first file with an entry for the registry is used.
    pub fn registry_auth_files(&self) -> &[PathBuf] {
        &self.registry_auth_files
    }

    /// The token to send to the Hub, and where it came from: `HF_TOKEN` wins, then the token
    /// file (read now, trimmed; an empty or unreadable file is no token).
    pub fn resolve_hf_token(&self) -> (Option<Secret>, TokenSource) {
        if let Some(t) = &self.hf_token {
            return (Some(t.clone()), TokenSource::Variable);
        }
        let Some(file) = &self.hf_token_file else { return (None, TokenSource::None) };
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let token = text.replace(['\r', '\n'], "");
                let token = token.trim();
                if token.is_empty() {
                    (None, TokenSource::None)
                } else {
                    (Some(Secret::new(token)), TokenSource::File(file.clone()))
                }
            }
            Err(_) => (None, TokenSource::None),
        }
    }

    /// Sets the Hugging Face hub cache that `share` writes to.
    pub fn with_hf_hub_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.hf_hub_cache = dir;
        self
    }

    /// The Hugging Face hub cache that `share` writes to (`HF_HUB_CACHE`, else
    /// `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, as huggingface_hub reads it).
    pub fn hf_hub_cache(&self) -> Option<&Path> {
        self.hf_hub_cache.as_deref()
    }

    /// Shares every model in the Hugging Face hub cache after it is downloaded when `true`.
    pub fn with_share_hf_cache(mut self, on: bool) -> Self {
        self.share_hf_cache = on;
        self
    }

    /// Whether models are shared in the Hugging Face hub cache after each download.
    pub fn share_hf_cache(&self) -> bool {
        self.share_hf_cache
    }

    /// Makes no network connection when `true`.
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Whether network access is off.
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// Trusts the certificate authorities in this PEM file, besides the system's.
    pub fn with_ca_file(mut self, file: Option<PathBuf>) -> Self {
        self.ca_file = file;
        self
    }

    /// The extra CA file, if any.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Whether to use a proxy from `HTTPS_PROXY`/`ALL_PROXY` (and `NO_PROXY`) of the process
    /// environment; on for [`Config::from_env`], off for [`Config::new`].
    pub fn with_env_proxy(mut self, on: bool) -> Self {
        self.env_proxy = on;
        self
    }

    /// Whether the environment's proxy settings are used.
    pub fn env_proxy(&self) -> bool {
        self.env_proxy
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Connects to `host` (a name as URLs spell it, any case) at `addrs`, tried in this order
    /// instead of what the system resolves, as curl's `--resolve`; each address carries its
    /// own port, which replaces the URL's (none: host not found). Not used where a proxy
    /// resolves the host.
    pub fn with_resolve(mut self, host: &str, addrs: Vec<SocketAddr>) -> Self {
        self.resolve.retain(|(h, _)| !h.eq_ignore_ascii_case(host));
        self.resolve.push((host.to_string(), addrs));
        self
    }

    /// The hosts set with [`Config::with_resolve`] and their addresses.
    pub fn resolve(&self) -> &[(String, Vec<SocketAddr>)] {
        &self.resolve
    }

    /// Sets the read timeout: the longest silence of a transfer before it counts as stalled
    /// and is restarted.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The read (stall) timeout.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// Sets how transient failures are retried.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Sets the object-store variables (`AWS_*`, `GOOGLE_*`, `AZURE_*` names with their
    /// values) used by `s3://`, `gs://` and `az://` mirrors. Values are kept as secrets.
    pub fn with_cloud_options(mut self, options: Vec<(String, Secret)>) -> Self {
        self.cloud_options = options;
        self
    }

    /// The object-store variables.
    pub fn cloud_options(&self) -> &[(String, Secret)] {
        &self.cloud_options
    }

    /// Object-store variables ([`CLOUD_PREFIXES`]) whose values are not UTF-8: left out of
    /// [`Config::cloud_options`], and an error only where a bucket mirror needs them.
    pub fn cloud_unreadable(&self) -> &[String] {
        &self.cloud_unreadable
    }

    /// Sets the number of connections per download from a network source (`None`: chosen
    /// by file size).
    pub fn with_connections(mut self, n: Option<usize>) -> Self {
        self.connections = n;
        self
    }

    /// The number of connections set, if any.
    pub fn connections(&self) -> Option<usize> {
        self.connections
    }

    /// Caps the total download rate, in bytes per second.
    pub fn with_max_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.max_rate = bytes_per_second;
        self
    }

    /// The rate cap, in bytes per second, if any.
    pub fn max_rate(&self) -> Option<u64> {
        self.max_rate
    }

    /// The size of the chunks a blob is pushed to an OCI registry in (`mirror push oci://…`):
    /// a blob larger than this goes in `PATCH` requests of this size (halved down to
    /// [`MIN_PUSH_CHUNK_SIZE`] while a proxy answers `413`), a smaller one in one `PUT`.
    /// Values below [`MIN_PUSH_CHUNK_SIZE`] are raised to it. Default
    /// [`DEFAULT_PUSH_CHUNK_SIZE`] (64 MiB); each chunk is held in memory while it is sent.
    pub fn with_push_chunk_size(mut self, bytes: u64) -> Self {
        self.push_chunk_size = bytes.max(MIN_PUSH_CHUNK_SIZE);
        self
    }

    /// The chunk size of pushes to OCI registries (see [`Config::with_push_chunk_size`]).
    pub fn push_chunk_size(&self) -> u64 {
        self.push_chunk_size
    }

    /// Sets the other tools' cache folders searched before any download (empty: no reuse).
    pub fn with_caches(mut self, dirs: Vec<CacheDir>) -> Self {
        self.caches = dirs;
        self
    }

    /// The other tools' cache folders searched before any download.
    pub fn caches(&self) -> &[CacheDir] {
        &self.caches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, OsString> =
            pairs.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        Config::from_env_with(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_home() {
        let c = env(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(c.models_dir(), Path::new("/home/u/.strata/models"));
        assert_eq!(c.catalog_file(), Path::new("/home/u/.strata/models/catalog.json"));
        assert_eq!(c.hf_endpoint().as_str(), "https://huggingface.co/");
        assert!(!c.offline() && c.hf_token().is_none() && c.mirrors().is_empty());
    }

    #[test]
    fn variables_override() {
        let c = env(&[
            ("HOME", "/home/u"),
            ("STRATA_MODELS_DIR", "~/m"),
            ("STRATA_MODELS_CATALOG", "/etc/strata/catalog.json"),
            ("HF_ENDPOINT", "https://hub.internal/"),
            ("HF_HUB_OFFLINE", "1"),
            ("STRATA_MODELS_MIRROR", "/a, file:///b"),
            ("HF_TOKEN", "hf_secret"),
        ])
        .unwrap();
        assert_eq!(c.models_dir(), Path::new("/home/u/m"));
        assert_eq!(c.catalog_file(), Path::new("/etc/strata/catalog.json"));
        assert_eq!(c.hf_endpoint().as_str(), "https://hub.internal/");
        assert!(c.offline());
        assert_eq!(c.mirrors(), ["/a", "file:///b"]);
        assert!(!format!("{c:?}").contains("hf_secret"), "the token must not appear in Debug");
        assert_eq!(c.hf_token().unwrap().expose(), "hf_secret");
    }

    #[test]
    fn relative_dirs_become_absolute_and_bad_flags_are_named() {
        let c = env(&[("STRATA_MODELS_DIR", "rel/models")]).unwrap();
        assert!(c.models_dir().is_absolute());
        let err = env(&[("HOME", "/h"), ("STRATA_OFFLINE", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("STRATA_OFFLINE"), "{err}");
        assert!(env(&[("HOME", "/h"), ("STRATA_OFFLINE", "")]).is_ok());
        let err = env(&[("HOME", "/h"), ("HF_ENDPOINT", "not a url")]).unwrap_err();
        assert!(err.to_string().contains("HF_ENDPOINT"), "{err}");
    }

    #[test]
    fn the_token_comes_from_hf_token_then_the_saved_file() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().to_str().unwrap();
        std::fs::create_dir_all(tmp.path().join(".cache/huggingface")).unwrap();
        std::fs::write(tmp.path().join(".cache/huggingface/token"), "hf_saved\n").unwrap();
        let c = env(&[("HOME", home)]).unwrap();
        let (token, from) = c.resolve_hf_token();
        assert_eq!(token.unwrap().expose(), "hf_saved");
        assert_eq!(from, TokenSource::File(tmp.path().join(".cache/huggingface/token")));
        assert!(!format!("{c:?}").contains("hf_saved"));
        let c = env(&[("HOME", home), ("HF_TOKEN", "hf_env")]).unwrap();
        assert_eq!(c.resolve_hf_token().0.unwrap().expose(), "hf_env", "HF_TOKEN wins");
        std::fs::write(tmp.path().join("t"), "hf_path").unwrap();
        let path = tmp.path().join("t");
        let c = env(&[("HOME", home), ("HF_TOKEN_PATH", path.to_str().unwrap())]).unwrap();
        assert_eq!(c.resolve_hf_token().0.unwrap().expose(), "hf_path");
        let c = env(&[("HOME", home), ("HF_HOME", "~/elsewhere")]).unwrap();
        assert_eq!(c.resolve_hf_token(), (None, TokenSource::None), "no file there");
        assert_eq!(c.hf_hub_cache(), Some(tmp.path().join("elsewhere/hub").as_path()));
    }

    #[test]
    fn caches_follow_the_variables_and_can_be_turned_off() {
        let c = env(&[("HOME", "/h"), ("HF_HUB_CACHE", "/hf"), ("LLAMA_CACHE", "/llama")]).unwrap();
        let tools: Vec<_> = c.caches().iter().map(|d| (d.tool, d.path.clone())).collect();
        assert_eq!(tools[0], (CacheTool::HuggingFace, PathBuf::from("/hf")));
        let llama = tools.iter().position(|t| t.0 == CacheTool::LlamaCpp).unwrap();
        assert_eq!(tools[llama], (CacheTool::LlamaCpp, PathBuf::from("/llama")));
        assert!(tools[..llama].iter().all(|t| t.0 == CacheTool::HuggingFace), "the Hugging Face chain first");
        assert!(env(&[("HOME", "/h"), ("STRATA_REUSE_CACHES", "0")]).unwrap().caches().is_empty());
    }
}
