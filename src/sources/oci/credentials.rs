//! Registry credentials where the container tools keep them: podman's and skopeo's
//! `auth.json` and Docker's `config.json` (the files of [`crate::Config::registry_auth_files`],
//! in order). Both hold `auths`, keyed by registry host (`host:port`, or a namespace such as
//! `host/team`, the most specific winning), each with `auth` (base64 of `user:password`) or
//! `identitytoken` (an OAuth2 refresh token). A registry with no entry there but a credential
//! helper (`credHelpers` for its host, else `credsStore`) is asked through that helper, as
//! docker asks it ([`super::helper`]).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::config::Secret;

/// A credential for one registry.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    /// A user name and password (sent as `Basic`, or to the token realm).
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token realm.
    IdentityToken(Secret),
}

/// What the credential files hold for a registry.
#[derive(Clone, Debug)]
pub(crate) enum Lookup {
    /// A credential, and where it came from (a file, or a helper and the file naming it).
    Found(Credential, String),
    /// The registry's credentials would be kept by a helper, which has none for it.
    Helper {
        /// The helper (`desktop`, `ecr-login`, …: the program is `docker-credential-<helper>`).
        helper: String,
        /// The file that names it.
        file: PathBuf,
    },
    /// Nothing for this registry.
    None,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthFile {
    auths: std::collections::BTreeMap<String, Entry>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The key of `auths` as a `host[:port][/path]`, without scheme or `/v1/`.
fn normalize(key: &str) -> &str {
    let key = key.trim();
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let key = key.trim_end_matches('/');
    key.strip_suffix("/v1").or_else(|| key.strip_suffix("/v2")).unwrap_or(key)
}

/// How well `key` names `host` (`host[:port]`) and `repository`: the length of the match,
/// or `None` (a namespace key matches at a path boundary only).
fn matches(key: &str, host: &str, repository: &str) -> Option<usize> {
    let key = normalize(key);
    let full = format!("{host}/{repository}");
    let docker_hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    let same_host =
        |k: &str| k.eq_ignore_ascii_case(host) || (docker_hub.contains(&k) && docker_hub.contains(&host));
    if same_host(key) {
        return Some(key.len());
    }
    let (key_host, path) = key.split_once('/')?;
    let inside = full
        .strip_prefix(host)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|rest| rest == path || rest.strip_prefix(path).is_some_and(|r| r.starts_with('/')));
    (same_host(key_host) && inside).then_some(key.len())
}

/// The credential for `host` (`host[:port]`) and `repository` in the first of `files` that
/// has one. An unreadable or malformed file is an error that names it (never its content).
pub(crate) fn lookup(files: &[PathBuf], host: &str, repository: &str) -> Result<Lookup, String> {
    for file in files {
        let text = match std::fs::read(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        let parsed: AuthFile = serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not a registry credentials file: {e}", file.display()))?;
        let best = parsed
            .auths
            .iter()
            .filter_map(|(k, v)| matches(k, host, repository).map(|n| (n, v)))
            .max_by_key(|(n, _)| *n);
        if let Some((_, entry)) = best {
            if let Some(c) = credential(entry, file)? {
                return Ok(Lookup::Found(c, file.display().to_string()));
            }
        }
        let helper = parsed
            .cred_helpers
            .iter()
            .find(|(k, _)| matches(k, host, repository).is_some())
            .map(|(_, h)| h.clone())
            .or(parsed.creds_store);
        if let Some(helper) = helper.filter(|h| !h.trim().is_empty()) {
            let named_in = file.display().to_string();
            let server = super::helper::server_url(host);
            let answer =
                super::helper::get(helper.trim(), &server, &named_in, super::helper::HELPER_TIMEOUT)?;
            return Ok(match answer {
                Some(answer) => {
                    let credential = if answer.user == "<token>" {
                        Credential::IdentityToken(answer.secret)
                    } else {
                        Credential::Basic { user: answer.user, password: answer.secret }
                    };
                    let from = format!(
                        "the credential helper docker-credential-{} (named in {named_in})",
                        helper.trim()
                    );
                    Lookup::Found(credential, from)
                }
                None => Lookup::Helper { helper, file: file.clone() },
            });
        }
    }
    Ok(Lookup::None)
}

fn credential(entry: &Entry, file: &Path) -> Result<Option<Credential>, String> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(Secret::new(token))));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || format!("{}: an `auth` value is not base64 of `user:password`", file.display());
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, password) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credential::Basic { user: user.to_string(), password: Secret::new(password) }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => {
            Ok(Some(Credential::Basic { user: u.clone(), password: Secret::new(p.clone()) }))
        }
        _ => Ok(None),
    }
}

/// `Basic` authorization for a user name and password.
pub(crate) fn basic(user: &str, password: &Secret) -> String {
    let raw = format!("{user}:{}", password.expose());
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_most_specific_entry_of_the_first_file_that_has_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let podman = write(
            dir.path(),
            "auth.json",
            &format!(
                r#"{{"auths":{{"reg.example:5000":{{"auth":"{}"}},"reg.example:5000/team":{{"auth":"{}"}}}}}}"#,
                enc("alice:pw1"),
                enc("bob:pw2")
            ),
        );
        let docker = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths":{{"https://other.example/v1/":{{"auth":"{}"}},"tok.example":{{"identitytoken":"rt"}}}},"credHelpers":{{"ecr.example":"ecr-login"}},"credsStore":"desktop"}}"#,
                enc("carol:pw3")
            ),
        );
        let files = [dir.path().join("missing.json"), podman, docker.clone()];
        let user = |host: &str, repo: &str| match lookup(&files, host, repo) {
            Ok(Lookup::Found(Credential::Basic { user, .. }, _)) => user,
            Ok(Lookup::Found(Credential::IdentityToken(_), _)) => "<token>".into(),
            Ok(Lookup::Helper { helper, .. }) => format!("<helper {helper}>"),
            Ok(Lookup::None) => "<none>".into(),
            Err(e) => format!("<error {e}>"),
        };
        assert_eq!(user("reg.example:5000", "models/x"), "alice");
        assert_eq!(user("reg.example:5000", "team/x"), "bob");
        assert_eq!(user("reg.example:5000", "teamwork/x"), "alice", "a namespace matches at a boundary");
        assert_eq!(user("other.example", "m"), "carol");
        assert_eq!(user("tok.example", "m"), "<token>");
        // The helpers are asked (these are not installed here: the error names each).
        let ecr = user("ecr.example", "m");
        assert!(ecr.contains("docker-credential-ecr-login") && ecr.contains("not installed"), "{ecr}");
        assert!(user("nowhere.example", "m").contains("docker-credential-desktop"));
        std::fs::write(&docker, "{").unwrap();
        let err = lookup(&files, "nowhere.example", "m").unwrap_err();
        assert!(err.contains("config.json") && err.contains("not a registry credentials file"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = Credential::Basic { user: "u".into(), password: Secret::new("hunter2") };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(basic("u", &Secret::new("p")), "Basic dTpw");
    }
}
