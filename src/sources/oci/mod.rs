//! OCI registries (Harbor, Artifactory, GHCR, ECR, the CNCF distribution server…) as a
//! source: `oci://HOST[:PORT]/REPOSITORY`. A GGUF pushed as one raw layer has the file's
//! SHA-256 as its digest, so the catalog's pin is the blob's address:
//! `GET /v2/<repository>/blobs/sha256:<sha256>` needs no manifest. Ranges, resume and the
//! parallel engine work as for any HTTPS source; whatever the registry serves is verified by
//! `ensure()` like every other source's bytes.
//!
//! Authentication follows the distribution spec's `WWW-Authenticate` challenge (`auth.rs`)
//! with the credentials podman, skopeo and Docker keep (`credentials.rs`). A redirect to the
//! registry's storage backend (a signed URL) is followed without the credentials. `push.rs`
//! uploads blobs and manifests for `mirror push oci://…`, large blobs in resumable chunks
//! (`chunked.rs`); `layout.rs` reads and writes OCI image layout directories
//! (`oci-layout:PATH`), the same artifacts on disk.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use ureq::http::{HeaderMap, StatusCode};
use url::Url;

use super::agent::{agent, classify};
use super::http::{
    busy, drain, header, if_range_for, open_body, read_said, redirect_target, same_origin, saying,
    MAX_REDIRECTS,
};
use super::location::redact;
use super::source::{Fetch, FetchRequest, ModelSource};
use crate::catalog::ModelEntry;
use crate::config::Config;
use crate::error::{ErrorKind, Result, SourceError};

mod auth;
mod chunked;
mod credentials;
mod helper;
mod layout;
pub(crate) mod manifest;
mod push;
mod read;

pub use read::{Descriptor, Manifest};

use auth::{fetch_token, parse_challenge, Challenge, Token, TokenError};
pub use chunked::{Pushed, UploadJournal};
use credentials::{basic, Credential, Lookup};
pub use layout::OciLayout;

/// What a request needs the registry to allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    /// Reading blobs and manifests.
    Pull,
    /// Writing them (and reading, as uploads check what is there).
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "pull,push",
        }
    }
}

/// A request to send: given the `Authorization` to add, if any, it sends and returns the
/// answer.
pub(crate) type MakeRequest<'a> =
    dyn FnMut(Option<&str>) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> + 'a;

/// An OCI registry repository as a source of model files (blobs named by their SHA-256).
pub struct OciSource {
    /// `https://host[:port]/`.
    registry: Url,
    repository: String,
    agent: ureq::Agent,
    auth_files: Vec<PathBuf>,
    auth: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<Access, Token>,
    /// The credential lookup, done once, when a registry first asks.
    credential: Option<Lookup>,
}

impl fmt::Debug for OciSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OciSource")
            .field("registry", &self.host())
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OciSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OCI registry {}/{}", self.host(), self.repository)
    }
}

impl OciSource {
    /// The repository `repository` of the registry at `registry` (`https://host[:port]/`),
    /// with `config`'s trust roots, proxy, timeouts and credential files.
    pub fn new(registry: &Url, repository: &str, config: &Config) -> Result<Self> {
        Ok(Self {
            registry: registry.clone(),
            repository: repository.to_string(),
            agent: agent(config)?,
            auth_files: config.registry_auth_files().to_vec(),
            auth: Mutex::default(),
        })
    }

    /// `host[:port]`.
    pub fn host(&self) -> String {
        match self.registry.port() {
            Some(p) => format!("{}:{p}", self.registry.host_str().unwrap_or_default()),
            None => self.registry.host_str().unwrap_or_default().to_string(),
        }
    }

    /// The repository.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `https://host/v2/<repository>/<rest…>`.
    pub(crate) fn api_url(&self, rest: &[&str]) -> Url {
        let mut url = self.registry.clone();
        if let Ok(mut s) = url.path_segments_mut() {
            s.clear().push("v2").extend(self.repository.split('/')).extend(rest);
        }
        url
    }

    /// The URL of the blob of `entry`'s file: its SHA-256 is its digest.
    pub fn blob_url(&self, sha256: &str) -> Url {
        self.api_url(&["blobs", &format!("sha256:{}", sha256.to_ascii_lowercase())])
    }

    fn state<R>(&self, f: impl FnOnce(&mut AuthState) -> R) -> R {
        f(&mut self.auth.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn credential(&self) -> Result<Lookup, SourceError> {
        if let Some(found) = self.state(|s| s.credential.clone()) {
            return Ok(found);
        }
        let found = credentials::lookup(&self.auth_files, &self.host(), &self.repository)
            .map_err(|reason| SourceError::failed(ErrorKind::Config, reason))?;
        self.state(|s| s.credential = Some(found.clone()));
        Ok(found)
    }

    /// The `Authorization` to send to the registry for `access`, when it is known.
    pub(crate) fn authorization(&self, access: Access) -> Option<String> {
        self.state(|s| match &s.challenge {
            Some(Challenge::Basic) => match &s.credential {
                Some(Lookup::Found(Credential::Basic { user, password }, _)) => Some(basic(user, password)),
                _ => None,
            },
            Some(Challenge::Bearer { .. }) => {
                s.tokens.get(&access).filter(|t| t.is_fresh()).map(|t| format!("Bearer {}", t.value.expose()))
            }
            None => None,
        })
    }

    /// After a `401`: reads the challenge and gets what it asks for (the credentials, or a
    /// token for `access`). `sent` is whether the refused request carried credentials.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        access: Access,
        sent: bool,
    ) -> Result<(), SourceError> {
        let value = header(headers, "www-authenticate").unwrap_or("");
        let challenge = parse_challenge(value).ok_or_else(|| {
            SourceError::failed(
                ErrorKind::Network,
                format!(
                    "{} answered 401 with an authentication scheme strata-model does not speak ({value:?}); \
                     Basic and Bearer are supported",
                    self.host()
                ),
            )
        })?;
        let lookup = self.credential()?;
        let credential = match &lookup {
            Lookup::Found(c, _) => Some(c.clone()),
            _ => None,
        };
        match &challenge {
            Challenge::Basic => {
                if credential.is_none() || sent {
                    return Err(self.refused(&lookup, sent));
                }
                self.state(|s| s.challenge = Some(challenge.clone()));
                Ok(())
            }
            Challenge::Bearer { realm, service, scope } => {
                let wanted = format!("repository:{}:{}", self.repository, access.actions());
                let scope = scope.clone().filter(|s| s.contains(':')).unwrap_or(wanted);
                match fetch_token(&self.agent, realm, service.as_deref(), &scope, credential.as_ref()) {
                    Ok(token) => {
                        self.state(|s| {
                            s.challenge = Some(challenge.clone());
                            s.tokens.insert(access, token);
                        });
                        Ok(())
                    }
                    Err(TokenError::Refused) => Err(self.refused(&lookup, credential.is_some())),
                    Err(TokenError::Failed(e)) => Err(e),
                }
            }
        }
    }

    /// The error for credentials missing or refused: it names the registry, the repository
    /// and where credentials were looked for, never a secret.
    fn refused(&self, lookup: &Lookup, sent: bool) -> SourceError {
        let (host, repo) = (self.host(), &self.repository);
        let reason = match lookup {
            Lookup::Found(_, from) if sent => format!(
                "{host} refused the credentials for {host}/{repo} from {from}; log in again (docker login {host}, or podman login {host})"
            ),
            Lookup::Helper { helper, file } => format!(
                "{host} asks for credentials for {host}/{repo}, and {} keeps them in the credential helper \
                 `docker-credential-{helper}`, which has none for {host}: run `docker login {host}`, or log in \
                 with podman (podman login {host}) or point REGISTRY_AUTH_FILE at a file with an `auth` entry for {host}",
                file.display()
            ),
            _ => format!(
                "{host} asks for credentials for {host}/{repo} and none were found (looked in {}): \
                 run `docker login {host}` or `podman login {host}`, or set REGISTRY_AUTH_FILE",
                self.auth_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        };
        SourceError::denied(reason)
    }

    /// Sends a request built by `make` (given the `Authorization` to add, if any) to the
    /// registry; on a `401` authenticates for `access` and sends it once more.
    pub(crate) fn call(
        &self,
        access: Access,
        here: &str,
        make: &mut MakeRequest<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>, SourceError> {
        let authorization = self.authorization(access);
        let resp = make(authorization.as_deref()).map_err(|e| classify(e, here))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        drain(resp.into_body());
        self.authenticate(&headers, access, authorization.is_some())?;
        let resp = make(self.authorization(access).as_deref()).map_err(|e| classify(e, here))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            drain(resp.into_body());
            return Err(self.refused(&self.credential()?, true));
        }
        Ok(resp)
    }

    /// [`Self::call`] when `url` is the registry's; elsewhere (its storage backend, a signed
    /// URL) the request goes without credentials and without the authentication dance.
    pub(crate) fn call_at(
        &self,
        url: &Url,
        access: Access,
        here: &str,
        make: &mut MakeRequest<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>, SourceError> {
        if same_origin(url, &self.registry) {
            self.call(access, here, make)
        } else {
            make(None).map_err(|e| classify(e, here))
        }
    }

    /// What a refusal or failure from the registry means (`401` is handled by [`Self::call`]);
    /// `said` is what its body says ([`read_said`]).
    pub(crate) fn failure(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        here: &str,
        said: Option<&str>,
    ) -> SourceError {
        let says = saying(said);
        match status {
            StatusCode::NOT_FOUND => SourceError::NotFound {
                detail: Some(format!("{here}: HTTP 404 (the registry has no such blob){says}")),
            },
            StatusCode::FORBIDDEN => SourceError::denied(format!(
                "{here}: HTTP 403: the credentials for {} may not access {}{says}",
                self.host(),
                self.repository
            )),
            s if s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS
                || s.is_server_error() =>
            {
                busy(s, headers, here, said)
            }
            s => match said {
                Some(said) => {
                    SourceError::failed(ErrorKind::Network, format!("{here}: HTTP {}: {said}", s.as_u16()))
                }
                None => SourceError::failed(ErrorKind::Network, format!("{here}: unexpected HTTP {s}")),
            },
        }
    }
}

impl ModelSource for OciSource {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError> {
        let mut url = self.blob_url(&entry.sha256);
        for _ in 0..=MAX_REDIRECTS {
            let here = redact(&url);
            let at_registry = same_origin(&url, &self.registry);
            let target = url.clone();
            let mut make = |authorization: Option<&str>| {
                let mut req = self.agent.get(target.as_str()).header("Accept-Encoding", "identity");
                if request.offset > 0 || request.end.is_some() {
                    let range = match request.end {
                        Some(end) => format!("bytes={}-{}", request.offset, end.saturating_sub(1)),
                        None => format!("bytes={}-", request.offset),
                    };
                    req = req.header("Range", range);
                    if let Some(etag) = request.if_range.as_deref().and_then(|v| if_range_for(v, &target)) {
                        req = req.header("If-Range", etag);
                    }
                }
                // Credentials go to the registry only, never to its storage backend.
                if let Some(a) = authorization.filter(|_| at_registry) {
                    req = req.header("Authorization", a);
                }
                req.call()
            };
            let resp = self.call_at(&url, Access::Pull, &here, &mut make)?;
            let status = resp.status();
            if status.is_redirection() {
                url = redirect_target(resp, &url, &here)?;
                continue;
            }
            if status == StatusCode::RANGE_NOT_SATISFIABLE && request.offset > 0 && request.end.is_none() {
                drain(resp.into_body());
                return self.fetch(entry, &FetchRequest { offset: 0, end: None, if_range: None });
            }
            if !status.is_success() {
                let (parts, body) = resp.into_parts();
                let said = read_said(&parts.headers, body, &[]);
                return Err(if !at_registry && matches!(status.as_u16(), 401 | 403 | 404) {
                    SourceError::transient(format!(
                        "{here}: HTTP {status} from the registry's storage (an expired link?){}",
                        saying(said.as_deref())
                    ))
                } else {
                    self.failure(status, &parts.headers, &here, said.as_deref())
                });
            }
            return open_body(resp, request, &url, here);
        }
        Err(SourceError::failed(
            ErrorKind::Network,
            format!("more than {MAX_REDIRECTS} redirects from {}", redact(&self.blob_url(&entry.sha256))),
        ))
    }

    fn is_network(&self) -> bool {
        true
    }

    /// `GET /v2/` says whether this is a registry and how it authenticates; then the
    /// repository's tag list says whether pulling from it is allowed.
    fn check(&self) -> Result<String, String> {
        let started = std::time::Instant::now();
        let mut base = self.registry.clone();
        base.set_path("/v2/");
        let here = redact(&base);
        let resp = self
            .agent
            .get(base.as_str())
            .call()
            .map_err(|e| crate::error::Report::new(&classify(e, &here)).to_string())?;
        let status = resp.status();
        let scheme =
            match (status.as_u16(), header(resp.headers(), "www-authenticate").and_then(parse_challenge)) {
                (200, _) => "no authentication".to_string(),
                (401, Some(Challenge::Basic)) => "Basic authentication".to_string(),
                (401, Some(Challenge::Bearer { realm, .. })) => format!("tokens from {realm}"),
                (s, _) => return Err(format!("{here}: HTTP {s}: not an OCI distribution API (/v2/)")),
            };
        drain(resp.into_body());
        let tags = self.api_url(&["tags", "list"]);
        let tags_here = redact(&tags);
        let mut make = |authorization: Option<&str>| {
            let mut req = self.agent.get(tags.as_str());
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.call()
        };
        let resp = self
            .call(Access::Pull, &tags_here, &mut make)
            .map_err(|e| crate::error::Report::new(&e).to_string())?;
        let status = resp.status();
        drain(resp.into_body());
        let credentials = match self.state(|s| s.credential.clone()) {
            Some(Lookup::Found(_, from)) => format!(", credentials from {from}"),
            _ => String::new(),
        };
        let ms = started.elapsed().as_millis();
        match status.as_u16() {
            200 => Ok(format!("answers (OCI distribution API, {scheme}{credentials}; pull allowed, {ms} ms)")),
            404 => Ok(format!(
                "answers (OCI distribution API, {scheme}{credentials}); the repository {} is empty so far ({ms} ms)",
                self.repository
            )),
            s => Err(format!("{tags_here}: HTTP {s} ({scheme}{credentials})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_name_the_digest_and_debug_shows_no_secret() {
        let s =
            OciSource::new(&"https://reg.example:5000/".parse().unwrap(), "team/models", &Config::new("/m"))
                .unwrap();
        assert_eq!(
            s.blob_url(&"AB".repeat(32)).as_str(),
            format!("https://reg.example:5000/v2/team/models/blobs/sha256:{}", "ab".repeat(32))
        );
        assert_eq!(s.to_string(), "OCI registry reg.example:5000/team/models");
        assert_eq!(s.host(), "reg.example:5000");
    }
}
