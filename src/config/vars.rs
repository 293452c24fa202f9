//! Every environment variable this crate reads, in one place.

/// The models directory (default `~/.strata/models`).
pub const MODELS_DIR: &str = "STRATA_MODELS_DIR";
/// The custom catalog file (default `<models dir>/catalog.json`).
pub const MODELS_CATALOG: &str = "STRATA_MODELS_CATALOG";
/// Comma-separated mirror sources, tried before Hugging Face.
pub const MODELS_MIRROR: &str = "STRATA_MODELS_MIRROR";
/// `1` makes no network connection at all.
pub const OFFLINE: &str = "STRATA_OFFLINE";
/// Hugging Face's own offline switch, honoured too.
pub const HF_HUB_OFFLINE: &str = "HF_HUB_OFFLINE";
/// The Hugging Face endpoint (default `https://huggingface.co`).
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";
/// A Hugging Face access token, for gated repositories.
pub const HF_TOKEN: &str = "HF_TOKEN";
/// The file holding the token `hf auth login` saved (default `$HF_HOME/token`).
pub const HF_TOKEN_PATH: &str = "HF_TOKEN_PATH";
/// The home directory.
pub const HOME: &str = "HOME";
/// `0` turns off reusing model files found in other tools' caches.
pub const REUSE_CACHES: &str = "STRATA_REUSE_CACHES";
/// A PEM file of extra trusted certificate authorities (added to the system's).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// The Hugging Face hub cache (reused before downloading).
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";
/// Hugging Face's home (`$HF_HOME/hub` is its cache, `$HF_HOME/token` its saved token).
pub const HF_HOME: &str = "HF_HOME";
/// The hub cache's older name, still read by huggingface_hub.
pub const HUGGINGFACE_HUB_CACHE: &str = "HUGGINGFACE_HUB_CACHE";
/// The base of per-user caches (`$XDG_CACHE_HOME/huggingface`, `$XDG_CACHE_HOME/llama.cpp`).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// The base of per-user data (`$XDG_DATA_HOME/ramalama`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Ollama's models folder.
pub const OLLAMA_MODELS: &str = "OLLAMA_MODELS";
/// LM Studio's home.
pub const LMSTUDIO_HOME: &str = "LMSTUDIO_HOME";
/// Windows' per-user application data (`%LOCALAPPDATA%\llama.cpp`).
pub const LOCALAPPDATA: &str = "LOCALAPPDATA";
/// `1`: after every download, make the model visible in the Hugging Face hub cache.
pub const SHARE_HF_CACHE: &str = "STRATA_SHARE_HF_CACHE";
/// llama.cpp's cache.
pub const LLAMA_CACHE: &str = "LLAMA_CACHE";
/// podman's and skopeo's registry credentials file (read first for `oci://` sources).
pub const REGISTRY_AUTH_FILE: &str = "REGISTRY_AUTH_FILE";
/// Where podman keeps its credentials by default (`$XDG_RUNTIME_DIR/containers/auth.json`).
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// Where `~/.config` is (`$XDG_CONFIG_HOME/containers/auth.json`).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Docker's configuration directory (`$DOCKER_CONFIG/config.json`, else `~/.docker`).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// How long to wait for another process that holds a model (downloading it), as seconds
/// (`90`) or with a unit (`500ms`, `30s`, `10m`, `2h`); unset: as long as it takes.
pub const LOCK_TIMEOUT: &str = "STRATA_LOCK_TIMEOUT";
/// Any value turns color off in the command line's output.
pub const NO_COLOR: &str = "NO_COLOR";
/// The command line's log filter (`tracing_subscriber`'s `EnvFilter` directives,
/// `strata_model=debug`): when set, log events go to stderr as `-v` would send them. The
/// library never reads it: a host's subscriber decides what it sees.
pub const RUST_LOG: &str = "RUST_LOG";
/// A proxy for HTTPS requests (read by the HTTP client, with `ALL_PROXY` and `NO_PROXY`).
pub const HTTPS_PROXY: &str = "HTTPS_PROXY";
/// A proxy for every request.
pub const ALL_PROXY: &str = "ALL_PROXY";
/// Hosts that bypass the proxy.
pub const NO_PROXY: &str = "NO_PROXY";
