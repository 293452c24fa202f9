//! `outdated`: whether the branch or tag each entry was pinned from has moved on the Hub, and
//! whether its files changed there. One model API request per repository and ref (the one
//! `add` makes: the commit the ref points to, every file's LFS size and SHA-256); nothing is
//! downloaded and no pin changes. Pins never move by themselves: this only says what moved.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Registry;
use crate::catalog::ModelEntry;
use crate::error::{ErrorKind, RegistryError, Result};
use crate::sources::{HttpSource, RepoInfo};

/// What became of an entry's pin upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Freshness {
    /// The ref still points at the pinned commit.
    Current,
    /// The ref points at another commit, where every file of the entry has the pinned size
    /// and SHA-256: re-pinning would fetch nothing.
    Moved,
    /// The ref points at another commit, where a file of the entry has other bytes or is gone.
    Changed,
    /// The ref points at another commit, where no file differs by its size or SHA-256 but
    /// one's SHA-256 is not given (not stored in LFS there): its bytes cannot be compared.
    Unknown,
    /// The entry does not say which ref it follows (registered by hand, or pinned from a
    /// commit): nothing to ask.
    Untracked,
    /// The Hub could not be asked, or refused (see [`Outdated::error`]).
    Failed,
}

/// One file of an entry, pinned and upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileNow {
    /// Its path in the repository.
    pub file: String,
    /// The pinned size, in bytes.
    pub size_bytes: u64,
    /// The pinned SHA-256.
    pub sha256: String,
    /// Its size at the ref's commit now; `None` when the file is gone there.
    pub now_size_bytes: Option<u64>,
    /// Its SHA-256 there (the LFS one); `None` when gone or not in LFS.
    pub now_sha256: Option<String>,
}

impl FileNow {
    /// Whether the file has the pinned bytes at the ref's commit (same size and SHA-256).
    pub fn is_same(&self) -> bool {
        self.same() == Some(true)
    }

    /// Whether the file has the pinned bytes there: `None` when that cannot be told (the
    /// same size, and no SHA-256 given).
    pub fn same(&self) -> Option<bool> {
        match (self.now_size_bytes, self.now_sha256.as_deref()) {
            (None, _) => Some(false),
            (Some(n), _) if n != self.size_bytes => Some(false),
            (Some(_), Some(s)) => Some(s.eq_ignore_ascii_case(&self.sha256)),
            (Some(_), None) => None,
        }
    }
}

/// What `outdated` found for one entry.
#[derive(Clone, Debug, Serialize)]
pub struct Outdated {
    /// The name that selects the entry (`minilm:f16`).
    pub name: String,
    /// Its Hugging Face repository.
    pub repo: String,
    /// The ref it follows.
    pub tracks: Option<String>,
    /// The pinned commit.
    pub pinned: String,
    /// The commit the ref points to now (when asked and answered).
    pub now: Option<String>,
    /// The verdict.
    pub state: Freshness,
    /// Every file of the entry, pinned and now (empty when not asked).
    pub files: Vec<FileNow>,
    /// Why the Hub could not be asked ([`Freshness::Failed`]).
    pub error: Option<String>,
    /// The kind of that failure.
    #[serde(skip)]
    pub error_kind: Option<ErrorKind>,
}

impl Registry {
    /// Asks the Hub, for each entry of `names` (every catalog entry when empty) that knows
    /// the ref it was pinned from ([`ModelEntry::tracks`]), whether that ref now points at
    /// another commit and whether the entry's files differ there. One model API request per
    /// repository and ref, made concurrently; nothing is downloaded, no pin changes.
    ///
    /// # Errors
    /// An unknown name; offline mode (`outdated` needs the Hub); a configuration the Hub
    /// source refuses. A repository the Hub cannot answer about is reported in its entries
    /// ([`Freshness::Failed`]), not as an error.
    pub fn outdated(&self, names: &[String]) -> Result<Vec<Outdated>> {
        let mut entries: Vec<&ModelEntry> = if names.is_empty() {
            self.catalog().entries().iter().collect()
        } else {
            names.iter().map(|n| self.resolve(n)).collect::<Result<_>>()?
        };
        let mut seen = std::collections::HashSet::new();
        entries.retain(|e| seen.insert(e.display_name()));
        if self.config().offline() {
            return Err(RegistryError::config(
                crate::config::vars::OFFLINE,
                "network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE) and `outdated` asks the Hub; turn it back on",
            ));
        }
        let source = HttpSource::hugging_face(self.config())?;
        // One request per repository and ref.
        let mut asks: BTreeMap<
            (&str, &str),
            Option<std::result::Result<RepoInfo, crate::error::SourceError>>,
        > = BTreeMap::new();
        for e in &entries {
            if let Some(r) = &e.tracks {
                asks.insert((&e.hf_repo, r), None);
            }
        }
        std::thread::scope(|s| {
            let handles: Vec<_> =
                asks.keys().map(|&(repo, r)| ((repo, r), s.spawn(|| source.model_info(repo, r)))).collect();
            for (key, handle) in handles {
                let answer = handle.join().unwrap_or_else(|_| {
                    Err(crate::error::SourceError::failed(ErrorKind::Network, "the request panicked"))
                });
                asks.insert(key, Some(answer));
            }
        });
        Ok(entries
            .iter()
            .map(|e| {
                let answer =
                    e.tracks.as_deref().and_then(|r| asks.get(&(&*e.hf_repo, r))).and_then(Option::as_ref);
                report(e, answer)
            })
            .collect())
    }
}

fn report(
    e: &ModelEntry,
    answer: Option<&std::result::Result<RepoInfo, crate::error::SourceError>>,
) -> Outdated {
    let mut out = Outdated {
        name: e.display_name(),
        repo: e.hf_repo.to_string(),
        tracks: e.tracks.as_deref().map(str::to_string),
        pinned: e.revision.to_string(),
        now: None,
        state: Freshness::Untracked,
        files: Vec::new(),
        error: None,
        error_kind: None,
    };
    match answer {
        None => {}
        Some(Err(err)) => {
            out.state = Freshness::Failed;
            out.error = Some(crate::error::Report::new(err).to_string());
            out.error_kind = Some(err.kind());
        }
        Some(Ok(info)) => {
            out.now = Some(info.sha.clone());
            out.files = e
                .model_files()
                .iter()
                .map(|f| {
                    let there = info.siblings.iter().find(|s| s.rfilename == *f.path);
                    FileNow {
                        file: f.path.to_string(),
                        size_bytes: f.size_bytes,
                        sha256: f.sha256.to_string(),
                        now_size_bytes: there.and_then(|s| s.lfs.as_ref().map(|l| l.size).or(s.size)),
                        now_sha256: there.and_then(|s| s.lfs.as_ref().map(|l| l.sha256.to_ascii_lowercase())),
                    }
                })
                .collect();
            out.state = if info.sha.eq_ignore_ascii_case(&e.revision) {
                Freshness::Current
            } else if out.files.iter().any(|f| f.same() == Some(false)) {
                Freshness::Changed
            } else if out.files.iter().all(FileNow::is_same) {
                Freshness::Moved
            } else {
                Freshness::Unknown
            };
        }
    }
    out
}
