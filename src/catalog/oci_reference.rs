//! References to an artifact in an OCI registry, as the container tools write them:
//! `oci://HOST[:PORT]/REPOSITORY:TAG`, `oci://HOST[:PORT]/REPOSITORY@sha256:DIGEST`, or both
//! (`…:TAG@sha256:DIGEST`: the digest decides, the tag is kept for people). The repository
//! follows the distribution spec's name grammar, the tag `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
//! A custom entry adopted from a registry records the pinned form (with the manifest digest).

use std::fmt;

use serde::{Serialize, Serializer};
use url::Url;

use super::files::is_hex;

/// A parsed `oci://` reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OciReference {
    /// `https://host[:port]/`, where the registry's API is.
    pub registry: Url,
    /// `host[:port]`, lower case.
    pub host: String,
    /// The repository (`team/models`).
    pub repository: String,
    /// The tag, when the reference names one.
    pub tag: Option<String>,
    /// The manifest's SHA-256 (64 lower-case hex digits), when the reference names one.
    pub digest: Option<String>,
}

/// Why an `oci://` reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{raw}`: {why}; expected oci://HOST[:PORT]/REPOSITORY:TAG or oci://HOST[:PORT]/REPOSITORY@sha256:DIGEST \
     (oci://registry.example:5000/team/embed:q8_0)"
)]
pub struct ParseOciError {
    raw: String,
    why: &'static str,
}

impl OciReference {
    /// Parses `oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]` (a tag or a digest, or both).
    ///
    /// ```
    /// use strata_model::catalog::OciReference;
    /// let r = OciReference::parse("oci://Reg.example:5000/team/embed:Q8_0")?;
    /// assert_eq!((r.host.as_str(), r.repository.as_str(), r.tag.as_deref()), ("reg.example:5000", "team/embed", Some("Q8_0")));
    /// assert!(OciReference::parse("oci://reg.example/team/embed").is_err()); // no tag, no digest
    /// # Ok::<(), strata_model::catalog::ParseOciError>(())
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ParseOciError> {
        let raw = raw.trim();
        let fail = |why| ParseOciError { raw: shown(raw), why };
        let rest = match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("oci") => rest,
            _ => return Err(fail("not an oci:// reference")),
        };
        if credentials_end(rest).is_some() {
            return Err(fail("it carries credentials; they come from docker's or podman's files"));
        }
        if rest.contains(['?', '#']) {
            return Err(fail("a query or a fragment (`?…`, `#…`) is no part of a reference"));
        }
        let (authority, path) = rest.split_once('/').ok_or_else(|| fail("no repository after the host"))?;
        if authority.is_empty() {
            return Err(fail("the host is missing"));
        }
        let url = Url::parse(&format!("https://{authority}/"))
            .map_err(|_| fail("the host is not a host[:port]"))?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let (name, digest) = match path.split_once('@') {
            Some((name, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| fail("the digest is not sha256:<64 lower-case hex digits>"))?;
                if !is_hex(hex, 64) && is_hex(&hex.to_ascii_lowercase(), 64) {
                    return Err(fail("the digest has upper-case letters; write it in lower case, sha256:<64 lower-case hex digits>"));
                }
                if !is_hex(hex, 64) {
                    return Err(fail("the digest is not sha256:<64 lower-case hex digits>"));
                }
                (name, Some(hex.to_ascii_lowercase()))
            }
            None => (path, None),
        };
        // A tag follows the last `/`'s colon (a port is only in the host).
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => {
                if !valid_tag(tag) {
                    return Err(fail("the tag is not [A-Za-z0-9_][A-Za-z0-9._-]{0,127}"));
                }
                (repo, Some(tag.to_string()))
            }
            _ => (name, None),
        };
        if !valid_repository(repository) {
            return Err(fail(
                "the repository is not lower-case letters, digits, `.`, `_`, `-` in components joined by `/`",
            ));
        }
        if tag.is_none() && digest.is_none() {
            return Err(fail("no tag and no digest"));
        }
        Ok(Self { registry: url, host, repository: repository.to_string(), tag, digest })
    }

    /// The reference the registry is asked for: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("sha256:{d}"),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// `raw` as it may be shown in a message (a reference that did not parse): without
    /// credentials, at most 300 characters.
    pub fn shown(raw: &str) -> String {
        shown(raw)
    }

    /// `oci://host[:port]/repository`, without tag or digest.
    pub fn repository_location(&self) -> String {
        format!("oci://{}/{}", self.host, self.repository)
    }

    /// The same reference pinned to `digest` (the tag kept, for people).
    pub fn pinned(&self, digest: &str) -> Self {
        Self { digest: Some(digest.to_ascii_lowercase()), ..self.clone() }
    }
}

/// The reference a catalog entry's `oci` field holds, which must be pinned by digest; why
/// not, when it is not.
pub(super) fn pinned_reference(raw: &str) -> Result<OciReference, String> {
    let r = OciReference::parse(raw).map_err(|e| e.to_string())?;
    match r.digest {
        Some(_) => Ok(r),
        None => Err(format!(
            "`{r}` names no manifest digest; pin it: oci://HOST/REPOSITORY[:TAG]@sha256:<64 hex digits>"
        )),
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@sha256:{d}")?;
        }
        Ok(())
    }
}

impl Serialize for OciReference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where credentials end in `rest` (what follows the scheme): the last `@` that does not
/// start a digest (`@ALGORITHM:HEX` to the end, or to a query), when there is one.
fn credentials_end(rest: &str) -> Option<usize> {
    let digest = |tail: &str| {
        let tail = tail.split(['?', '#']).next().unwrap_or(tail);
        tail.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'))
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    rest.match_indices('@').map(|(i, _)| i).rfind(|&i| !digest(&rest[i + 1..]))
}

/// A reference as it may be shown in an error: whatever may be credentials (all between the
/// scheme and the last `@` that is not the digest's) left out, and a query or fragment
/// (`?token=…`); at most 300 characters, control and bidirectional characters as `?`.
fn shown(raw: &str) -> String {
    let raw = raw.trim();
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => match raw.get(..4).filter(|s| s.eq_ignore_ascii_case("oci:")) {
            Some(scheme) => (scheme.to_string(), &raw[4..]),
            None => (String::new(), raw),
        },
    };
    let query = rest.find(['?', '#']);
    let hidden = match (credentials_end(rest), query) {
        // No credentials: all but the query.
        (None, q) => rest[..q.unwrap_or(rest.len())].to_string(),
        // Credentials, then the host, the repository, maybe a query.
        (Some(at), q) if q.is_none_or(|q| q > at) => format!("…@{}", &rest[at + 1..q.unwrap_or(rest.len())]),
        // A `?` or `#` before the last `@`: in a password or in a query, nothing shown is sure.
        (Some(_), _) => "…".to_string(),
    };
    format!("{scheme}{hidden}")
        .chars()
        .take(300)
        .map(|c| if c.is_control() || super::file_names::is_bidi_control(c) { '?' } else { c })
        .collect()
}

/// Whether `tag` is a tag as the distribution spec defines it.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Whether `name` is a repository name as the distribution spec defines it: path components
/// of lower-case letters and digits, separated by `.`, `_`, `__` or dashes, joined by `/`.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
                && !part.contains("..")
                && !part.contains("___")
                && !part.contains("._")
                && !part.contains("_.")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_digests_and_both_parse_and_print_back() {
        let d = "ab".repeat(32);
        let r = OciReference::parse("OCI://Reg.Example:5000/team/embed:v1.0_q8-0").unwrap();
        assert_eq!(r.host, "reg.example:5000");
        assert_eq!(r.repository, "team/embed");
        assert_eq!(r.tag.as_deref(), Some("v1.0_q8-0"));
        assert_eq!(r.manifest_reference(), "v1.0_q8-0");
        assert_eq!(r.registry.as_str(), "https://reg.example:5000/");
        let pinned = r.pinned(&d.to_ascii_uppercase());
        assert_eq!(pinned.to_string(), format!("oci://reg.example:5000/team/embed:v1.0_q8-0@sha256:{d}"));
        assert_eq!(OciReference::parse(&pinned.to_string()).unwrap(), pinned);
        let by_digest = OciReference::parse(&format!("oci://h/m@sha256:{d}")).unwrap();
        assert_eq!((by_digest.tag.clone(), by_digest.manifest_reference()), (None, format!("sha256:{d}")));
        assert_eq!(OciReference::parse("oci://127.0.0.1:5000/a/b:latest").unwrap().host, "127.0.0.1:5000");
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let d = "ab".repeat(32);
        for (bad, says) in [
            ("oci://host/models", "no tag and no digest"),
            ("oci://host", "no repository"),
            ("oci:///m:t", "host"),
            ("oci://u:pw@host/m:t", "credentials"),
            ("oci://host/m:t?x=1", "query"),
            (&format!("oci://host/m@sha256:{}", d.to_ascii_uppercase()), "lower-case"),
            ("oci://host/Models:t", "repository"),
            ("oci://host/a//b:t", "repository"),
            ("oci://host/m:-t", "tag"),
            (&format!("oci://host/m:{}", "t".repeat(129)), "tag"),
            ("oci://host/m@sha256:abc", "digest"),
            (&format!("oci://host/m@sha512:{d}"), "digest"),
            ("hf.co/a/b", "not an oci://"),
        ] {
            let err = OciReference::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn a_custom_entry_adopted_from_a_registry_is_pinned_by_digest_and_names_no_hub_repository() {
        use super::super::custom_model::{sample, validate, Ctx};
        use crate::error::RegistryError;
        let ctx = Ctx { file: std::path::Path::new("catalog.json"), entry: None };
        let field = |m| match validate(&ctx, &m) {
            Err(RegistryError::InvalidCatalog { field: Some(f), reason, .. }) => (f, reason),
            other => panic!("{other:?}"),
        };
        let pinned = format!("oci://reg.example:5000/team/embed:q8_0@sha256:{}", "ab".repeat(32));
        let adopted = crate::catalog::CustomModel {
            hf_repo: String::new(),
            revision: String::new(),
            oci: Some(pinned.clone()),
            ..sample()
        };
        let entry = validate(&ctx, &adopted).unwrap();
        assert_eq!(entry.oci.as_ref().map(ToString::to_string), Some(pinned));
        assert_eq!(entry.repository(), "oci://reg.example:5000/team/embed");
        assert_eq!(entry.pinned_revision(), format!("sha256:{}", "ab".repeat(32)));
        // `--json` shows no Hub repository or commit: null, not "".
        let json = serde_json::to_value(&entry).unwrap();
        assert!(json["hf_repo"].is_null() && json["revision"].is_null(), "{json}");
        assert_eq!(
            entry.origin_url(&"https://huggingface.co".parse().unwrap()).as_str(),
            format!("https://reg.example:5000/v2/team/embed/blobs/sha256:{}", "ab".repeat(32))
        );
        let tag_only = crate::catalog::CustomModel { oci: Some("oci://h/m:t".into()), ..adopted.clone() };
        assert!(field(tag_only).1.contains("names no manifest digest"));
        let both = crate::catalog::CustomModel { hf_repo: "a/b".into(), ..adopted.clone() };
        assert_eq!(field(both).0, "hf_repo");
        let text = serde_json::to_string(&adopted).unwrap();
        assert!(!text.contains("hf_repo") && !text.contains("revision"), "{text}");
        // A Hub entry still needs its repository and commit.
        assert_eq!(field(crate::catalog::CustomModel { hf_repo: String::new(), ..sample() }).0, "hf_repo");
    }

    #[test]
    fn credentials_queries_and_fragments_are_never_shown() {
        let d = "ab".repeat(32);
        for (raw, secret) in [
            ("oci://user:pa/ss@127.0.0.1:45001/ai/embed:Q8_0", "pa/ss"),
            ("oci:/user:pass@host/ai/embed:Q8_0", "pass"),
            ("oci://127.0.0.1:45001/ai/embed:Q8_0?token=SECRET", "SECRET"),
            ("oci://host/ai/embed:Q8_0#SECRET", "SECRET"),
            ("oci://user:pa?SECRET@host/m:t", "SECRET"),
            ("oci://host/m:t?x=SECRET@y", "SECRET"),
            (&format!("oci://user:pass@host/m@sha256:{d}"), "pass"),
            (&format!("OCI://user:pass@host/m:t@sha256:{d}"), "pass"),
        ] {
            let err = OciReference::parse(raw).unwrap_err().to_string();
            assert!(!err.contains(secret), "{raw}: {err}");
            assert!(!OciReference::shown(raw).contains(secret), "{raw}: {}", OciReference::shown(raw));
        }
        assert_eq!(
            OciReference::shown("oci://user:pa/ss@127.0.0.1:45001/ai/embed:Q8_0"),
            "oci://…@127.0.0.1:45001/ai/embed:Q8_0"
        );
        assert_eq!(OciReference::shown("oci://h/m:t?token=SECRET"), "oci://h/m:t");
        assert_eq!(OciReference::shown(&format!("oci://h/m@sha256:{d}")), format!("oci://h/m@sha256:{d}"));
    }

    #[test]
    fn repository_names_follow_the_distribution_grammar() {
        for ok in ["models", "team/models", "a.b_c-d/e__f", "x0/y--z"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in ["", "Models", "/models", "models/", "a//b", "-a", "a-", "a..b", "a b", "a:b"] {
            assert!(!valid_repository(bad), "{bad:?}");
        }
        assert!(valid_tag("_x") && valid_tag("Q8_0") && !valid_tag(".x") && !valid_tag("a/b"));
    }
}
