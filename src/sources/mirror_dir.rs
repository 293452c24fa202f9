//! A mirror directory: a folder with the same flat layout as the models directory (a plain
//! copy of one), on local disk or a network mount. A multi-file model's files are read at
//! their repository paths (`Q4_K_M/…`, as `mirror push` writes them), else in the models
//! directory's own layout (`<unit dir>/<base name>`).

use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::source::{Fetch, FetchRequest, ModelSource};
use crate::catalog::ModelEntry;
use crate::error::{ErrorKind, SourceError};

/// A mirror directory source.
#[derive(Clone, Debug)]
pub struct MirrorDir {
    root: PathBuf,
}

impl MirrorDir {
    /// A mirror at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl fmt::Display for MirrorDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mirror directory {}", self.root.display())
    }
}

impl ModelSource for MirrorDir {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError> {
        // The repository path, else (a multi-file model) the models directory's own layout.
        let paths: Vec<PathBuf> = entry.mirror_paths().iter().map(|p| self.root.join(p)).collect();
        let path = paths.iter().find(|p| fs::symlink_metadata(p).is_ok()).unwrap_or(&paths[0]).clone();
        open_range(&path, entry, request, || {
            if !self.root.is_dir() {
                return SourceError::failed(
                    ErrorKind::Config,
                    format!("{} is not a directory; check STRATA_MODELS_MIRROR", self.root.display()),
                );
            }
            SourceError::NotFound { detail: Some(format!("no {}", path.display())) }
        })
    }

    fn is_network(&self) -> bool {
        false
    }

    fn check(&self) -> Result<String, String> {
        match fs::read_dir(&self.root) {
            Ok(entries) => {
                let n =
                    entries.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".gguf")).count();
                Ok(format!("readable ({n} .gguf file{})", if n == 1 { "" } else { "s" }))
            }
            Err(e) => Err(format!("cannot read {}: {e}", self.root.display())),
        }
    }
}

/// Opens the local file `path` holding `entry`'s bytes at `request`'s range; `missing` says
/// what its absence means. A file of another size than the catalog's is refused.
pub(super) fn open_range(
    path: &Path,
    entry: &ModelEntry,
    request: &FetchRequest,
    missing: impl FnOnce() -> SourceError,
) -> Result<Fetch, SourceError> {
    let location = path.display().to_string();
    let io_err = |what: &str, e: std::io::Error| {
        SourceError::failed_by(ErrorKind::Storage, format!("cannot {what} {location}"), e)
    };
    // A FIFO or a device would block the open or never end: only a regular file is read.
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Ok(m) if !m.is_file() => {
            return Err(SourceError::failed(ErrorKind::Storage, format!("{location} is not a regular file")))
        }
        _ => {}
    }
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(io_err("open", e)),
    };
    let len = file.metadata().map_err(|e| io_err("stat", e))?.len();
    if len != entry.size_bytes {
        return Err(SourceError::WrongSize { location, actual: len, expected: entry.size_bytes });
    }
    file.seek(SeekFrom::Start(request.offset)).map_err(|e| io_err("seek in", e))?;
    let end = request.end.unwrap_or(len).min(len);
    Ok(Fetch {
        body: Box::new(file.take(end.saturating_sub(request.offset))),
        start: request.offset,
        total: Some(len),
        validator: None,
        location,
    })
}
