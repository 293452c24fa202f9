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
