//! Registry authentication as the distribution spec and the container tools do it: a `401`
//! carries `WWW-Authenticate: Basic realm=…` (send the user name and password) or
//! `Bearer realm=…,service=…,scope=repository:<name>:pull` (fetch a token from the realm —
//! anonymously, with the user name and password, or by exchanging an identity token — then
//! send it). Tokens are kept for their lifetime (`expires_in`, 60 s when not given).

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::credentials::{basic, Credential};
use crate::config::Secret;
use crate::error::{ErrorKind, SourceError};
use crate::sources::agent::classify;
use crate::sources::location::redact;

/// A token is used until this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// The lifetime of a token that does not state one (the token spec's default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// The most of a token answer read.
const MAX_ANSWER: u64 = 1024 * 1024;

/// What a registry's `WWW-Authenticate` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// A user name and password on every request.
    Basic,
    /// A token from `realm`.
    Bearer {
        /// Where tokens are issued.
        realm: String,
        /// The `service` parameter to send back.
        service: Option<String>,
        /// The scope the registry asked for, when it said.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1: a scheme, then `name=value` pairs,
/// values quoted or not).
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    let params = parse_params(rest);
    let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
    } else {
        None
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_string();
        if name.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
        }
        out.push((name, value.trim().to_string()));
    }
}

/// A token and when to stop using it.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) value: Secret,
    until: Instant,
}

impl Token {
    pub(crate) fn is_fresh(&self) -> bool {
        Instant::now() + EXPIRY_MARGIN < self.until
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Why a token could not be had: the realm refused (credentials missing or wrong), or
/// anything else (the realm is down, its answer unreadable).
pub(crate) enum TokenError {
    /// The realm answered 401 or 403.
    Refused,
    /// Another failure.
    Failed(SourceError),
}

/// Fetches a token for `scope` from the realm of a `Bearer` challenge, with `credential`
/// when there is one: `GET realm?service=…&scope=…` (with `Basic` for a user and password),
/// or the OAuth2 `POST` of an identity token (`grant_type=refresh_token`).
pub(crate) fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    credential: Option<&Credential>,
) -> Result<Token, TokenError> {
    let failed = |reason: String| TokenError::Failed(SourceError::failed(ErrorKind::Network, reason));
    let mut url = Url::parse(realm)
        .map_err(|_| failed(format!("the registry's token realm `{realm}` is not a URL")))?;
    if url.scheme() != "https" {
        return Err(failed(format!("the registry's token realm {} is not HTTPS; refused", redact(&url))));
    }
    let here = redact(&url);
    let resp = match credential {
        Some(Credential::IdentityToken(refresh)) => {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
                ("client_id", "strata-model"),
                ("scope", scope),
            ];
            form.extend(service.map(|s| ("service", s)));
            agent.post(url.as_str()).send_form(form)
        }
        other => {
            {
                let mut q = url.query_pairs_mut();
                q.extend_pairs(service.map(|s| ("service", s)));
                q.append_pair("scope", scope);
            }
            let mut req = agent.get(url.as_str()).header("Accept", "application/json");
            if let Some(Credential::Basic { user, password }) = other {
                req = req.header("Authorization", basic(user, password));
            }
            req.call()
        }
    }
    .map_err(|e| TokenError::Failed(classify(e, &here)))?;
    let status = resp.status().as_u16();
    if status == 401 || status == 403 {
        return Err(TokenError::Refused);
    }
    if !resp.status().is_success() {
        return Err(failed(format!("{here}: the token realm answered HTTP {status}")));
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(resp.into_body().into_reader(), MAX_ANSWER),
        &mut text,
    )
    .map_err(|e| TokenError::Failed(SourceError::transient_by(&here, e)))?;
    let answer: TokenAnswer = serde_json::from_slice(&text)
        .map_err(|e| failed(format!("{here}: the token realm's answer is not a token ({e})")))?;
    let value = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| failed(format!("{here}: the token realm's answer holds no token")))?;
    let lifetime = answer.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs);
    Ok(Token { value: Secret::new(value), until: Instant::now() + lifetime })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/x:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=https://r/t, service=s"),
            Some(Challenge::Bearer { realm: "https://r/t".into(), service: Some("s".into()), scope: None })
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="a\"b""#),
            Some(Challenge::Bearer { realm: "a\"b".into(), service: None, scope: None })
        );
        assert_eq!(parse_challenge("Bearer service=s"), None, "a bearer challenge needs a realm");
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
