//! [`Config::from_env`]: the configuration read from the environment, as the operating
//! system gives it (`var_os`): a variable this crate does not read never matters, paths keep
//! their exact bytes, and a value that cannot serve its purpose is an error naming it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::{caches, default_endpoint, vars, Config, Secret, CLOUD_PREFIXES};
use crate::error::{RegistryError, Result};

impl Config {
    /// Reads the process environment (see [`vars`]), including the object-store variables
    /// (`AWS_*`, `GOOGLE_*`, `AZURE_*`) for bucket mirrors.
    ///
    /// Values are read as the operating system gives them (`std::env::var_os`): a variable
    /// this crate does not read never matters, whatever bytes it holds, and paths keep their
    /// exact bytes. A variable it reads whose value cannot serve its purpose (text that is not
    /// UTF-8, a `~` with no home directory, an unknown flag value) is
    /// [`RegistryError::InvalidConfig`] naming it; it never panics.
    pub fn from_env() -> Result<Self> {
        let (mut cloud, mut unreadable) = (Vec::new(), Vec::new());
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str() else { continue };
            if !CLOUD_PREFIXES.iter().any(|p| k.starts_with(p)) || v.is_empty() {
                continue;
            }
            match v.into_string() {
                Ok(v) => cloud.push((k.to_string(), Secret::new(v))),
                Err(_) => unreadable.push(k.to_string()),
            }
        }
        let mut config = Self::from_env_with(|k| std::env::var_os(k))?.with_cloud_options(cloud);
        config.cloud_unreadable = unreadable;
        Ok(config)
    }

    /// Reads the configuration through `get`, which returns the raw value of a variable (as
    /// `std::env::var_os` does). Empty values (or only blanks) count as unset.
    ///
    /// ```
    /// let config = strata_model::Config::from_env_with(|k| match k {
    ///     "STRATA_MODELS_DIR" => Some("/srv/models".into()),
    ///     "STRATA_OFFLINE" => Some("1".into()),
    ///     _ => None,
    /// })?;
    /// assert!(config.offline());
    /// assert_eq!(config.catalog_file(), std::path::Path::new("/srv/models/catalog.json"));
    /// # Ok::<(), strata_model::RegistryError>(())
    /// ```
    ///
    /// # Errors
    /// [`RegistryError::InvalidConfig`] naming the variable: a value that must be text and is
    /// not UTF-8 (`HF_ENDPOINT`, `HF_TOKEN`, flags, URLs in `STRATA_MODELS_MIRROR`), a path that
    /// starts with `~` when no home directory is known, a flag that is not a boolean, an
    /// endpoint that is not a URL, a lock timeout that is not a duration.
    pub fn from_env_with(get: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let get = |k: &str| get(k).filter(|v| !is_blank(v));
        let text = |k: &str| -> Result<Option<String>> {
            get(k).map(|v| v.into_string().map_err(|_| RegistryError::config(k, NOT_UTF8))).transpose()
        };
        let home: Option<PathBuf> = get(vars::HOME).map(PathBuf::from).or_else(dirs::home_dir);
        let home = home.as_deref();
        let models_dir = match get(vars::MODELS_DIR) {
            Some(v) => absolute(vars::MODELS_DIR, &v, home)?,
            None => home
                .ok_or_else(|| {
                    RegistryError::config(
                        vars::MODELS_DIR,
                        "the home directory is unknown (HOME is unset and this user has no home in the \
                         password database); set STRATA_MODELS_DIR to an absolute path",
                    )
                })?
                .join(".strata")
                .join("models"),
        };
        let catalog_file =
            get(vars::MODELS_CATALOG).map(|v| absolute(vars::MODELS_CATALOG, &v, home)).transpose()?;
        let offline = flag(vars::OFFLINE, text(vars::OFFLINE)?)?
            || flag(vars::HF_HUB_OFFLINE, text(vars::HF_HUB_OFFLINE)?)?;
        let reuse = flag(vars::REUSE_CACHES, text(vars::REUSE_CACHES)?.or(Some("1".into())))?;
        let caches =
            if reuse { caches::default_dirs(&get, home.map(Path::to_path_buf))? } else { Vec::new() };
        let hf_token_file = match caches::path_var(&get, vars::HF_TOKEN_PATH, home)? {
            Some(p) => Some(p),
            None => caches::hf_home(&get, home)?.map(|h| h.join("token")),
        };
        let mirrors = get(vars::MODELS_MIRROR).map(|v| split_list(&v)).unwrap_or_default();
        let hf_endpoint = match text(vars::HF_ENDPOINT)? {
            Some(v) => Url::parse(v.trim()).map_err(|e| {
                RegistryError::config_caused(
                    vars::HF_ENDPOINT,
                    format!("`{}` is not a URL such as https://huggingface.co", v.trim()),
                    e,
                )
            })?,
            None => default_endpoint(),
        };
        let lock_timeout =
            text(vars::LOCK_TIMEOUT)?.map(|v| parse_lock_timeout(vars::LOCK_TIMEOUT, &v)).transpose()?;
        for proxy in
            [vars::HTTPS_PROXY, "https_proxy", vars::ALL_PROXY, "all_proxy", vars::NO_PROXY, "no_proxy"]
        {
            // The HTTP client reads these itself and would skip a value it cannot read,
            // sending requests around the proxy: refused here instead.
            text(proxy)?;
        }
        Ok(Self {
            models_dir,
            catalog_file,
            mirrors,
            hf_endpoint,
            hf_token: text(vars::HF_TOKEN)?.map(|t| token(t.trim())).transpose()?,
            offline,
            ca_file: get(vars::SSL_CERT_FILE).map(PathBuf::from),
            env_proxy: true,
            caches,
            hf_token_file,
            hf_hub_cache: caches::hf_hub_cache(&get, home)?,
            share_hf_cache: flag(vars::SHARE_HF_CACHE, text(vars::SHARE_HF_CACHE)?)?,
            registry_auth_files: caches::registry_auth_files(&get, home)?,
            lock_timeout,
            ..Self::new(PathBuf::new())
        })
    }
}

/// Why a variable that must be text is refused.
pub(crate) const NOT_UTF8: &str = "the value is not valid UTF-8 (it must be text, not raw bytes)";

/// A token as `HF_TOKEN` gives it: it goes in an HTTP header, so a line break, a control
/// character or a non-ASCII one (a paste gone wrong) is refused here, naming the variable
/// (the token itself is never shown).
fn token(t: &str) -> Result<Secret> {
    if t.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(Secret::new(t))
    } else {
        Err(RegistryError::config(
            vars::HF_TOKEN,
            "the token holds a character an HTTP header cannot carry (a line break, a space, a control or \
             non-ASCII character); set it again from the token's page",
        ))
    }
}

/// Whether a value is empty or only blanks (unset, for every variable).
fn is_blank(v: &OsStr) -> bool {
    v.as_encoded_bytes().iter().all(u8::is_ascii_whitespace)
}

/// A comma-separated list (`STRATA_MODELS_MIRROR`), entries trimmed. On Unix it is split
/// on the raw bytes, so that a directory whose name is not UTF-8 keeps its exact bytes.
fn split_list(value: &OsStr) -> Vec<OsString> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        value
            .as_bytes()
            .split(|b| *b == b',')
            .map(|part| OsStr::from_bytes(part.trim_ascii()).to_os_string())
            .collect()
    }
    #[cfg(not(unix))]
    {
        value.to_string_lossy().split(',').map(|s| OsString::from(s.trim())).collect()
    }
}

fn absolute(variable: &str, value: &OsStr, home: Option<&Path>) -> Result<PathBuf> {
    if value.as_encoded_bytes().contains(&0) {
        return Err(RegistryError::config(variable, "contains a NUL byte"));
    }
    let path = caches::expand(variable, value, home)?;
    std::path::absolute(&path).map_err(|e| {
        RegistryError::config_caused(variable, format!("cannot make `{}` absolute", path.display()), e)
    })
}

/// A lock timeout: seconds (`90`), or a number with a unit (`500ms`, `30s`, `10m`, `2h`);
/// `0` means do not wait at all.
pub fn parse_lock_timeout(variable: &str, value: &str) -> Result<Duration> {
    let v = value.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && scale.is_finite() && n * scale >= 1e9 => Err(RegistryError::config(
            variable,
            format!("`{v}` is too long a wait; leave it unset to wait as long as it takes"),
        )),
        Ok(n) if n.is_finite() && n >= 0.0 && scale.is_finite() => Ok(Duration::from_secs_f64(n * scale)),
        _ => Err(RegistryError::config(
            variable,
            format!("`{v}` is not a duration; use seconds (90) or a unit: 500ms, 30s, 10m, 2h"),
        )),
    }
}

fn flag(variable: &str, value: Option<String>) -> Result<bool> {
    match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(RegistryError::config(variable, format!("`{v}` is not a boolean; use 1 or 0"))),
        },
    }
}
