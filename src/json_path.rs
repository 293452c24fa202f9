//! Paths in JSON, losslessly. A path is a JSON string when it is valid UTF-8 (always on
//! Windows, almost always on Unix); a Unix path that is not is written as
//! `{"bytes": "<base64 of its raw bytes>"}` (standard alphabet, with padding), as ripgrep's
//! JSON output writes data that is not UTF-8. A consumer never receives a different path, such
//! as one with U+FFFD in place of the bytes it could not decode.
//!
//! Use with serde: `#[serde(serialize_with = "strata_model::json_path::serialize")]`.
//!
//! ```
//! #[derive(serde::Serialize)]
//! struct Doc {
//!     #[serde(serialize_with = "strata_model::json_path::serialize")]
//!     path: std::path::PathBuf,
//! }
//! let doc = Doc { path: "/m/minilm.gguf".into() };
//! assert_eq!(serde_json::to_string(&doc)?, r#"{"path":"/m/minilm.gguf"}"#);
//! # #[cfg(unix)] {
//! use std::os::unix::ffi::OsStrExt;
//! let doc = Doc { path: std::ffi::OsStr::from_bytes(b"/m/mod\xe8les").into() };
//! assert_eq!(serde_json::to_string(&doc)?, r#"{"path":{"bytes":"L20vbW9k6Gxlcw=="}}"#);
//! # }
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! [`deserialize`] reads both forms back (for files this crate writes, such as where a model
//! came from).

use std::path::Path;

use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::Serializer;

/// Serializes `path` as a string, or as `{"bytes": base64}` when it is not UTF-8.
pub fn serialize<S: Serializer, P: AsRef<Path>>(path: P, s: S) -> Result<S::Ok, S::Error> {
    let path = path.as_ref();
    match path.to_str() {
        Some(text) => s.serialize_str(text),
        None => {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("bytes", &base64::engine::general_purpose::STANDARD.encode(raw(path)))?;
            map.end()
        }
    }
}

/// Reads a path written by [`serialize`]: a string, or `{"bytes": base64}` (a path that is
/// not UTF-8 on Unix; elsewhere its bytes as the platform encodes them).
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::path::PathBuf, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Bytes { bytes: String },
    }
    match <Written as serde::Deserialize>::deserialize(d)? {
        Written::Text(t) => Ok(t.into()),
        Written::Bytes { bytes } => {
            let raw =
                base64::engine::general_purpose::STANDARD.decode(bytes).map_err(serde::de::Error::custom)?;
            from_raw(raw).ok_or_else(|| serde::de::Error::custom("not a path of this platform"))
        }
    }
}

#[cfg(unix)]
fn from_raw(raw: Vec<u8>) -> Option<std::path::PathBuf> {
    Some(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(raw).into())
}

#[cfg(not(unix))]
fn from_raw(raw: Vec<u8>) -> Option<std::path::PathBuf> {
    String::from_utf8(raw).ok().map(Into::into)
}

/// [`serialize`] for an optional path (`null` when absent).
pub fn serialize_opt<S: Serializer, P: AsRef<Path>>(path: &Option<P>, s: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(p) => serialize(p, s),
        None => s.serialize_none(),
    }
}

#[cfg(unix)]
fn raw(path: &Path) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec()
}

#[cfg(not(unix))]
fn raw(path: &Path) -> Vec<u8> {
    path.as_os_str().as_encoded_bytes().to_vec()
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Doc {
        #[serde(serialize_with = "super::serialize", deserialize_with = "super::deserialize")]
        path: std::path::PathBuf,
    }

    #[test]
    fn both_forms_round_trip() {
        for raw in [&b"/m/minilm.gguf"[..], b"/m/mod\xe8les/x.gguf"] {
            let doc = Doc { path: std::ffi::OsStr::from_bytes(raw).into() };
            let text = serde_json::to_string(&doc).unwrap();
            assert_eq!(serde_json::from_str::<Doc>(&text).unwrap(), doc, "{text}");
        }
    }
}
