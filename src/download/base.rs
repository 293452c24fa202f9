//! The verified old version of a file a delta starts from ([`Base`], `delta.rs`), and what a
//! delta asks the Hub before it needs it ([`prepare`]: asked ahead, at the same time as other
//! requests, it costs no round trip of its own).

use crate::catalog::ModelEntry;
use crate::error::{Report, SourceError};
use crate::sources::xet::chunking::chunk_lengths;
use crate::sources::xet::client::XetToken;
use crate::sources::HttpSource;
use crate::store::ModelFiles;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The verified old version of a file, to rebuild its new version from.
pub(crate) struct Base<'a> {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// The SHA-256 it was verified to have (checked again as it is read).
    pub(crate) sha256: String,
    /// Its size.
    pub(crate) size: u64,
    /// Its Xet file id, or how to learn it.
    pub(crate) id: OldId<'a>,
    /// Its names: its stamp must still say `sha256` when the delta starts.
    pub(crate) files: ModelFiles,
}

/// How a delta learns the old file's Xet id.
pub(crate) enum OldId<'a> {
    /// Recorded when it was downloaded (its provenance).
    Known(String),
    /// Its resolution asked ahead, with a token ([`prepare`]): under this file name.
    Prepared(&'a Prepared, &'a str),
    /// To be resolved now: the old pin's entry for it (with a token, at once).
    Resolve(&'a ModelEntry),
}

impl<'a> Base<'a> {
    /// The verified file of `entry` (an earlier pin) in `files`.
    pub(crate) fn of(entry: &ModelEntry, files: &ModelFiles, id: OldId<'a>) -> Self {
        Self {
            path: files.model_path(),
            sha256: entry.sha256.to_string(),
            size: entry.size_bytes,
            id,
            files: files.clone(),
        }
    }

    /// The file at `files`' model path when it is an earlier version of `entry`'s: verified
    /// with another SHA-256 than the pin's (its stamp still describes it, or, gone stale in a
    /// copied or restored directory, its bytes hash to the stamp's SHA-256 again), downloaded
    /// from the Hub with its Xet id recorded. A catalog whose pin moved (a new release's
    /// built-in row, an edited custom entry) finds it there.
    pub(crate) fn earlier(entry: &ModelEntry, files: &ModelFiles, stop: &dyn Fn() -> bool) -> Option<Self> {
        // Only a file downloaded from the Hub has a Xet id to start from: looked at first.
        let id = files.recorded_xet_id()?;
        let sha256 = files.earlier_version(&entry.sha256, stop).filter(|s| *s != *entry.sha256)?;
        let size = std::fs::metadata(files.model_path()).ok()?.len();
        Some(Self { path: files.model_path(), sha256, size, id: OldId::Known(id), files: files.clone() })
    }
}

/// What a delta needs before the reconstructions, asked ahead at the same time as other
/// requests (`update` asks it while it reads the new header): a read token for the new
/// revision, the old files' Xet ids (from their resolution), and each old file's chunk
/// lengths and SHA-256 (read locally).
pub(crate) struct Prepared {
    pub(super) token: Result<XetToken, String>,
    old: Vec<Old>,
}

/// One old file's facts, asked ahead.
struct Old {
    name: String,
    id: Result<Option<String>, String>,
    local: Option<Result<(Vec<u32>, String), String>>,
}

impl Prepared {
    /// The Xet id asked for the old file `name` (`None`: not in Xet).
    pub(super) fn old_id(&self, name: &str) -> Result<Option<String>, String> {
        self.old
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.id.clone())
            .unwrap_or_else(|| Err(format!("the Xet id of {name} was not asked")))
    }

    /// The chunk lengths and SHA-256 of the old file `name`, when read ahead.
    pub(super) fn old_local(&self, name: &str) -> Option<Result<(Vec<u32>, String), String>> {
        self.old.iter().find(|o| o.name == name).and_then(|o| o.local.clone())
    }
}

/// Asks, at once, a read token for `new`'s revision and the Xet id of each of `old`'s files
/// (an entry and its names: its verified file, its recorded Xet id); with `read`, reads each
/// of those that the Hub stores in Xet too
/// (its chunk lengths and SHA-256, [`read_old`]).
pub(crate) fn prepare(
    hub: &HttpSource,
    new: &ModelEntry,
    old: &[(&ModelEntry, &ModelFiles)],
    stop: &(dyn Fn() -> bool + Sync),
    read: bool,
) -> Prepared {
    let said = |what: &str, e: SourceError| format!("{what}: {}", Report::new(&e));
    let panicked = || "a thread of the delta panicked".to_string();
    std::thread::scope(|s| {
        let asked: Vec<_> = old
            .iter()
            .map(|(e, files)| {
                // The old file is read only when the Hub stores it in Xet: at once when its Xet
                // id was recorded when it was downloaded, else once its resolution says so.
                let (recorded, path) = (files.recorded_xet_id(), files.model_path());
                let facts = s.spawn(move || {
                    let id = match recorded {
                        Some(id) => Ok(Some(id)),
                        None => hub.inspect(e).map(|l| l.xet_hash),
                    };
                    let local = (read && matches!(id, Ok(Some(_)))).then(|| read_old(&path, stop));
                    (id, local)
                });
                (e.hf_filename.to_string(), facts)
            })
            .collect();
        let token = hub
            .xet_read_token(&new.hf_repo, &new.revision)
            .map_err(|e| said("asking for a Xet read token", e));
        let old = asked
            .into_iter()
            .map(|(name, facts)| match facts.join() {
                Ok((id, local)) => Old { name, id: id.map_err(|e| said("resolving the old file", e)), local },
                Err(_) => Old { name, id: Err(panicked()), local: None },
            })
            .collect();
        Prepared { token, old }
    })
}

/// A reader that stops with an error once `stop` says so.
struct Until<'a, R> {
    inner: R,
    stop: &'a (dyn Fn() -> bool + Sync),
}

impl<R: Read> Read for Until<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if (self.stop)() {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "cancelled"));
        }
        self.inner.read(buf)
    }
}

/// The old file's chunk lengths (as Xet cuts them) and its SHA-256, read at once by two
/// threads (the file is read twice, from the page cache the second time).
pub(crate) fn read_old(path: &Path, stop: &(dyn Fn() -> bool + Sync)) -> Result<(Vec<u32>, String), String> {
    let open = || {
        fs::File::open(path)
            .map(|inner| Until { inner, stop })
            .map_err(|e| format!("opening the old file: {e}"))
    };
    let reading = |e: std::io::Error| format!("reading the old file: {e}");
    std::thread::scope(|s| {
        let hashed = s.spawn(|| match crate::digest::hash_file_until(path, stop) {
            Ok(Some(sha256)) => Ok(sha256),
            Ok(None) => Err("stopped reading the old file".to_string()),
            Err(e) => Err(format!("reading the old file: {}", Report::new(&e))),
        });
        let lengths = chunk_lengths(&mut open()?).map_err(reading)?;
        let sha256 = hashed.join().map_err(|_| "a thread of the delta panicked".to_string())??;
        Ok((lengths, sha256))
    })
}
