//! One parser for every place a location string is accepted: each `STRATA_MODELS_MIRROR`
//! entry, the destination of `mirror push`, and what `sources` shows. An unknown scheme is
//! the same clear error everywhere, and a string that looks like a URL is never taken for a
//! relative directory.

use std::fmt;
use std::path::PathBuf;

use url::Url;

use crate::catalog::valid_repository;

/// Where models can be read from (or pushed to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory with the flat layout: a path (relative paths stay relative), or a
    /// `file://` URL (absolute, percent-decoded).
    Dir(PathBuf),
    /// An HTTPS server holding the flat layout: `{base}/{file}`.
    Https(Url),
    /// An object-store bucket: `s3://bucket/prefix`, `gs://bucket/prefix` or
    /// `az://container/prefix` (the `cloud` feature reads them).
    Bucket(Url),
    /// A repository of an OCI registry: `oci://HOST[:PORT]/REPOSITORY`, spoken to over HTTPS.
    Oci {
        /// `https://host[:port]/`.
        registry: Url,
        /// The repository (`team/models`).
        repository: String,
    },
    /// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`):
    /// `oci-layout:PATH`, what `skopeo copy … oci:DIR`, `oras copy --to-oci-layout` and
    /// `crane` write. Files are read by their digest; `mirror push` writes ModelPack
    /// manifests tagged in `index.json`.
    OciLayout(PathBuf),
}

/// The prefix of an OCI image layout location.
const OCI_LAYOUT: &str = "oci-layout:";

/// Why a location string was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// Nothing was given.
    #[error(
        "an empty location; give a directory, file://, https://, oci://, oci-layout:, s3://, gs:// or az:// location"
    )]
    Empty,
    /// `http://`: refused, bytes must come over TLS.
    #[error("`{0}`: plain HTTP mirrors are refused; use https://")]
    PlainHttp(String),
    /// A scheme this crate does not know.
    #[error(
        "`{raw}`: `{scheme}:` is not a kind of location; use a directory, file://, https://, oci://, \
         oci-layout:PATH, s3://, gs:// or az:// (write ./{raw} for a directory whose name has a colon)"
    )]
    UnknownScheme {
        /// The string as given (without credentials).
        raw: String,
        /// Its scheme.
        scheme: String,
    },
    /// An `oci://` location without a host and a valid repository name.
    #[error(
        "`{0}`: expected oci://HOST[:PORT]/REPOSITORY, the repository in lower-case letters, digits, \
         `.`, `_`, `-` and `/` (oci://registry.example:5000/team/models)"
    )]
    BadOci(String),
    /// `oci:PATH` (skopeo's spelling of a layout directory).
    #[error(
        "`{0}`: for an OCI image layout directory write oci-layout:PATH; oci:// is a registry \
         (oci://HOST[:PORT]/REPOSITORY)"
    )]
    OciPath(String),
    /// `oci-layout:` without a path.
    #[error("`oci-layout:` needs the layout's directory: oci-layout:/srv/models-layout")]
    EmptyOciLayout,
    /// A URL whose bytes are not UTF-8.
    #[error("`{0}`: a URL must be text (this one is not valid UTF-8)")]
    NotUtf8(String),
    /// A `file://` URL that is not an absolute local path.
    #[error("`{0}`: a file URL needs an absolute path (file:///srv/models)")]
    RelativeFileUrl(String),
    /// A string that starts like a URL but is not one.
    #[error("`{raw}` is not a valid URL")]
    BadUrl {
        /// The string as given (without credentials).
        raw: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
}

/// The scheme of `raw` when it looks like a URL: letters, digits, `+`, `.`, `-` before a `:`,
/// at least two characters (so that `C:\models` stays a path).
fn scheme_of(raw: &str) -> Option<&str> {
    let (scheme, _) = raw.split_once(':')?;
    let mut chars = scheme.chars();
    let looks = scheme.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    looks.then_some(scheme)
}

impl Location {
    /// Parses a location string.
    ///
    /// ```
    /// use strata_model::sources::Location;
    /// assert!(matches!(Location::parse("/srv/models")?, Location::Dir(_)));
    /// assert!(matches!(Location::parse("file:///srv/my%20models")?, Location::Dir(p) if p.ends_with("my models")));
    /// assert!(matches!(Location::parse("https://models.internal/gguf")?, Location::Https(_)));
    /// assert!(matches!(Location::parse("s3://bucket/models")?, Location::Bucket(_)));
    /// assert!(matches!(Location::parse("oci://registry.example:5000/team/models")?, Location::Oci { .. }));
    /// assert!(matches!(Location::parse("oci-layout:/media/usb/models")?, Location::OciLayout(_)));
    /// assert!(Location::parse("http://plain.example/models").is_err());
    /// # Ok::<(), strata_model::sources::LocationError>(())
    /// ```
    pub fn parse(raw: &str) -> Result<Self, LocationError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(LocationError::Empty);
        }
        if let Some(path) = strip_oci_layout(raw) {
            let path = path.trim();
            if path.to_ascii_lowercase().starts_with("file:") {
                let url = Url::parse(path)
                    .map_err(|source| LocationError::BadUrl { raw: redact_str(raw), source })?;
                let dir = url.to_file_path().map_err(|()| LocationError::RelativeFileUrl(raw.to_string()))?;
                return Self::oci_layout(dir);
            }
            return Self::oci_layout(PathBuf::from(path));
        }
        let Some(scheme) = scheme_of(raw) else { return Ok(Self::Dir(PathBuf::from(raw))) };
        let scheme = scheme.to_ascii_lowercase();
        let url = || Url::parse(raw).map_err(|source| LocationError::BadUrl { raw: redact_str(raw), source });
        match scheme.as_str() {
            "https" => Ok(Self::Https(url()?)),
            "http" => Err(LocationError::PlainHttp(redact_str(raw))),
            "s3" | "gs" | "az" => Ok(Self::Bucket(url()?)),
            "oci" if !raw[4..].starts_with("//") => Err(LocationError::OciPath(redact_str(raw))),
            "oci" => {
                let url = url()?;
                let bad = || LocationError::BadOci(redact_str(raw));
                let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
                if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
                    return Err(bad()); // credentials come from the container tools' files
                }
                let repository = url.path().trim_matches('/').to_string();
                if !valid_repository(&repository) {
                    return Err(bad());
                }
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                let registry = Url::parse(&format!("https://{host}{port}/")).map_err(|_| bad())?;
                Ok(Self::Oci { registry, repository })
            }
            "file" => {
                let url = url()?;
                url.to_file_path()
                    .map(Self::Dir)
                    .map_err(|()| LocationError::RelativeFileUrl(raw.to_string()))
            }
            _ => Err(LocationError::UnknownScheme { raw: redact_str(raw), scheme }),
        }
    }
}

impl Location {
    /// Parses a location given as an OS string (an entry of `STRATA_MODELS_MIRROR`): text is
    /// parsed as [`Location::parse`] does; a value that is not UTF-8 is a directory with that
    /// exact name, unless it looks like a URL (which must be text).
    pub fn parse_os(raw: &std::ffi::OsStr) -> Result<Self, LocationError> {
        if let Some(text) = raw.to_str() {
            return Self::parse(text);
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let bytes = raw.as_bytes();
            let prefix = OCI_LAYOUT.as_bytes();
            if bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix) {
                return Self::oci_layout(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes[prefix.len()..])));
            }
        }
        let lossy = raw.to_string_lossy();
        match scheme_of(lossy.trim()) {
            Some(_) => Err(LocationError::NotUtf8(redact_str(lossy.trim()))),
            None => Ok(Self::Dir(PathBuf::from(raw))),
        }
    }
}

impl Location {
    fn oci_layout(path: PathBuf) -> Result<Self, LocationError> {
        if path.as_os_str().is_empty() {
            return Err(LocationError::EmptyOciLayout);
        }
        Ok(Self::OciLayout(path))
    }
}

/// The path of an `oci-layout:PATH` location (the prefix in any case).
fn strip_oci_layout(raw: &str) -> Option<&str> {
    let head = raw.get(..OCI_LAYOUT.len())?;
    head.eq_ignore_ascii_case(OCI_LAYOUT).then(|| &raw[OCI_LAYOUT.len()..])
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(path) => write!(f, "{}", path.display()),
            Self::OciLayout(path) => write!(f, "{OCI_LAYOUT}{}", path.display()),
            Self::Https(url) | Self::Bucket(url) => f.write_str(redact(url).trim_end_matches('/')),
            Self::Oci { registry, repository } => {
                let port = registry.port().map(|p| format!(":{p}")).unwrap_or_default();
                write!(f, "oci://{}{port}/{repository}", registry.host_str().unwrap_or_default())
            }
        }
    }
}

/// A URL as it may be shown: without credentials, query or fragment (signed CDN URLs carry
/// secrets in the query).
///
/// ```
/// let url = "https://user:secret@cdn.example/f.gguf?X-Amz-Signature=abc".parse().unwrap();
/// assert_eq!(strata_model::sources::redact(&url), "https://cdn.example/f.gguf");
/// ```
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.into()
}

/// [`redact`] for a string that may not parse.
fn redact_str(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => redact(&url),
        Err(_) => raw.split(['?', '#']).next().unwrap_or(raw).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn an_oci_layout_path_may_be_any_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"oci-layout:/media/\xffusb");
        let want = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b"/media/\xffusb"));
        assert_eq!(Location::parse_os(raw).unwrap(), Location::OciLayout(want));
        assert!(matches!(
            Location::parse_os(std::ffi::OsStr::from_bytes(b"oci:/\xff")),
            Err(LocationError::NotUtf8(_))
        ));
    }

    #[test]
    fn every_kind_parses_and_urls_are_never_directories() {
        assert_eq!(Location::parse(" /a ").unwrap(), Location::Dir("/a".into()));
        assert_eq!(Location::parse("relative/dir").unwrap(), Location::Dir("relative/dir".into()));
        assert_eq!(Location::parse("::odd::").unwrap(), Location::Dir("::odd::".into()));
        assert_eq!(Location::parse("file:///b%20c").unwrap(), Location::Dir("/b c".into()));
        assert_eq!(Location::parse("https://m.internal/x/").unwrap().to_string(), "https://m.internal/x");
        assert_eq!(Location::parse("GS://bucket/p").unwrap().to_string(), "gs://bucket/p");
        for bad in ["ftp://x/y", "s3x://b", "gopher://h", "models:v2"] {
            assert!(matches!(Location::parse(bad), Err(LocationError::UnknownScheme { .. })), "{bad}");
        }
        let oci = Location::parse("OCI://Reg.Example:5000/team/models/").unwrap();
        assert_eq!(oci.to_string(), "oci://reg.example:5000/team/models");
        assert!(
            matches!(&oci, Location::Oci { registry, .. } if registry.as_str() == "https://reg.example:5000/")
        );
        for bad in ["oci://host", "oci://host/", "oci://host/Models", "oci://u:pw@host/m", "oci://host/a//b"]
        {
            assert!(matches!(Location::parse(bad), Err(LocationError::BadOci(_))), "{bad}");
        }
        assert!(matches!(Location::parse("file://relative/path"), Err(LocationError::RelativeFileUrl(_))));
        assert_eq!(
            Location::parse(" oci-layout:/media/usb ").unwrap(),
            Location::OciLayout("/media/usb".into())
        );
        assert_eq!(Location::parse("OCI-Layout:rel/dir").unwrap(), Location::OciLayout("rel/dir".into()));
        assert_eq!(Location::parse("oci-layout:/a b").unwrap().to_string(), "oci-layout:/a b");
        assert!(matches!(Location::parse("oci-layout:"), Err(LocationError::EmptyOciLayout)));
        assert_eq!(Location::parse("oci-layout: /a").unwrap(), Location::OciLayout("/a".into()));
        assert_eq!(Location::parse("oci-layout:file:///a%20b").unwrap(), Location::OciLayout("/a b".into()));
        assert!(matches!(Location::parse("oci:/srv/layout:tag"), Err(LocationError::OciPath(_))));
        assert!(matches!(Location::parse("http://plain/x"), Err(LocationError::PlainHttp(_))));
        assert!(matches!(Location::parse(""), Err(LocationError::Empty)));
        let err = Location::parse("http://u:pw@plain/x?sig=1").unwrap_err().to_string();
        assert!(!err.contains("pw") && !err.contains("sig"), "{err}");
    }
}
