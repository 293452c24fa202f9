//! `update`: re-pins a custom entry to the commit its branch points to now, with the files'
//! new sizes and SHA-256 (the model API request `add` and `outdated` make), the new header
//! checked as `add` checks it, then fetches the new files. Until every new file is verified
//! the old pin and the old verified files stay and keep serving `path` and `ensure()`: each
//! new file is fetched under staged names (`.strata/update/`, `store/staged.rs`), then the
//! catalog entry is rewritten and each staged file renamed over the old one, under the
//! model's locks. A failed or interrupted update changes nothing (a staged partial stays, to
//! resume). Built-in entries are not re-pinned: `add` pins another version.

use serde::Serialize;

use super::Registry;
use crate::catalog::{custom, CustomFile, CustomModel, ModelEntry, Origin, UNKNOWN};
use crate::error::{ErrorKind, RegistryError, Result};
use crate::sources::HttpSource;

/// What `update` did, or would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UpdateAction {
    /// The branch still points at the pin: nothing to do.
    Current,
    /// The branch moved but the files are the same bytes: the pin moved, nothing fetched.
    Repinned,
    /// New files were fetched and verified, and replaced the old ones.
    Updated,
    /// A dry run: would re-pin (and fetch what [`Update::fetch_bytes`] says).
    WouldUpdate,
}

/// One model's update.
#[derive(Clone, Debug, Serialize)]
pub struct Update {
    /// The name that selects the entry.
    pub name: String,
    /// The ref followed.
    pub tracks: String,
    /// The commit pinned before.
    pub from: String,
    /// The commit pinned now (or that would be).
    pub to: String,
    /// What was done.
    pub action: UpdateAction,
    /// The files whose bytes changed (their repository paths).
    pub changed: Vec<String>,
    /// Bytes of the new files to fetch (those changed).
    pub fetch_bytes: u64,
}

impl Registry {
    /// Updates the custom entry `name` to the commit its branch or tag ([`ModelEntry::tracks`])
    /// points to now, fetching the files that changed; `dry_run` checks everything (the Hub's
    /// answer, the new header) and changes nothing.
    ///
    /// # Errors
    /// A built-in entry or one that tracks no ref ([`RegistryError::NotCustom`],
    /// [`RegistryError::InvalidConfig`]); offline; a file gone upstream, not in LFS, or whose
    /// new header is not GGUF or another architecture; the download of a new file
    /// ([`RegistryError::AllSourcesFailed`] and the rest of `ensure`'s errors). On any error
    /// the old pin and files stay.
    pub fn update(&self, name: &str, dry_run: bool) -> Result<Update> {
        let old = self.resolve(name)?.clone();
        let shown = old.display_name();
        if old.origin == Origin::Builtin {
            return Err(RegistryError::config(
                "update",
                format!("`{shown}` is a built-in model, pinned by this release; to follow its repository, add it with `strata-model add hf.co/{}`", old.hf_repo),
            ));
        }
        if let Some(r) = &old.oci {
            return Err(RegistryError::config(
                "update",
                format!(
                    "`{shown}` was adopted from a registry ({r}); `strata-model add {}{}` pins what its tag names now",
                    r.repository_location(),
                    r.tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default()
                ),
            ));
        }
        let Some(tracks) = old.tracks.as_deref().map(str::to_string) else {
            return Err(RegistryError::config(
                "update",
                format!("`{shown}` does not say which branch it follows (it was registered by hand or pinned from a commit); set it with `register --tracks main`, or add the model again"),
            ));
        };
        if self.config().offline() {
            return Err(RegistryError::config(
                crate::config::vars::OFFLINE,
                "network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE) and `update` asks the Hub; turn it back on",
            ));
        }
        let source = HttpSource::hugging_face(self.config())?;
        let failed = |e: crate::error::SourceError, what: String| RegistryError::CannotAdd {
            reference: format!("hf.co/{}@{tracks}", old.hf_repo),
            reason: what,
            kind: e.kind(),
            source: Some(Box::new(e)),
        };
        let info = source
            .model_info(&old.hf_repo, &tracks)
            .map_err(|e| failed(e, format!("asking the Hub where {tracks} points")))?;
        let mut report = Update {
            name: shown.clone(),
            tracks: tracks.clone(),
            from: old.revision.to_string(),
            to: info.sha.clone(),
            action: UpdateAction::Current,
            changed: Vec::new(),
            fetch_bytes: 0,
        };
        if info.sha.eq_ignore_ascii_case(&old.revision) {
            return Ok(report);
        }
        // The new facts of every file of the entry, at the new commit.
        let mut model = to_custom(&old);
        model.revision = info.sha.clone();
        let mut files: Vec<CustomFile> = old.model_files().iter().map(CustomFile::from).collect();
        for f in &mut files {
            let there = info.siblings.iter().find(|s| s.rfilename == f.path);
            let lfs = there.and_then(|s| s.lfs.as_ref()).ok_or_else(|| {
                let why = if there.is_some() {
                    "is not stored with Git LFS there (no SHA-256 to pin)"
                } else {
                    "is gone there"
                };
                RegistryError::CannotAdd {
                    reference: format!("hf.co/{}@{tracks}", old.hf_repo),
                    reason: format!("{} {why}; add the model's new file with `strata-model add`", f.path),
                    kind: ErrorKind::UnknownModel,
                    source: None,
                }
            })?;
            if lfs.size != f.size_bytes || !lfs.sha256.eq_ignore_ascii_case(&f.sha256) {
                report.changed.push(f.path.clone());
                report.fetch_bytes = report.fetch_bytes.saturating_add(lfs.size);
            }
            (f.size_bytes, f.sha256) = (lfs.size, lfs.sha256.to_ascii_lowercase());
        }
        if old.is_multi_file() {
            model.files = files;
        } else if let Some(f) = files.pop() {
            (model.sha256, model.size_bytes) = (f.sha256, f.size_bytes);
        }
        let new = custom::check_repin(&self.config().catalog_file(), &old, &model)?;
        // The new header, read by range as `add` reads it: still GGUF, still the same model.
        if !report.changed.is_empty() {
            self.check_new_header(&source, &old, &new)?;
        }
        if dry_run {
            report.action = UpdateAction::WouldUpdate;
            return Ok(report);
        }
        // Every changed file, fetched and verified under its staged names.
        let unit = self.models_dir().unit(&new);
        let built;
        let sources: &[Box<dyn crate::sources::ModelSource>] = match &self.sources {
            Some(s) => s,
            None => {
                built = crate::sources::from_config(self.config())?;
                &built
            }
        };
        let resolver =
            crate::download::Resolver::new(&self.dir, sources, self.config().retry(), self.progress.as_ref())
                .with_connections(self.config().connections())
                .with_max_rate(self.config().max_rate())
                .with_lock_timeout(self.config().lock_timeout());
        for (file, files) in unit.parts() {
            if report.changed.iter().any(|c| *c == *file.hf_filename) {
                resolver.ensure_into(file, &files.staged(), None)?;
            }
        }
        // The swap, under every old file's lock: the catalog first, then each rename.
        let old_unit = self.models_dir().unit(&old);
        let _held = old_unit.hold_for_removal()?;
        custom::repin(&self.config().catalog_file(), &self.catalog_lock_dir(), &old, &model)?;
        for (file, files) in unit.parts() {
            if report.changed.iter().any(|c| *c == *file.hf_filename) {
                files.install_staged(&files.staged())?;
            } else if files.model_path().exists() {
                files.write_stamp()?; // the same bytes, pinned anew
            }
        }
        report.action =
            if report.changed.is_empty() { UpdateAction::Repinned } else { UpdateAction::Updated };
        Ok(report)
    }

    /// Reads the header of `new`'s first file from the Hub by range and checks it is GGUF of
    /// the architecture `old` was.
    fn check_new_header(&self, source: &HttpSource, old: &ModelEntry, new: &ModelEntry) -> Result<()> {
        let first = new.file_entries().into_iter().next().unwrap_or_else(|| new.clone());
        let mut prefix = super::add::prefix::Prefix::new(source, &first);
        let header = crate::gguf::read_header_prefix(&mut prefix);
        let reference = format!("hf.co/{}@{}", new.hf_repo, new.revision);
        if let Some(e) = prefix.error.take() {
            return Err(RegistryError::CannotAdd {
                reference,
                reason: format!("reading the header of {}", first.hf_filename),
                kind: e.kind(),
                source: Some(Box::new(e)),
            });
        }
        let cannot = |kind, reason: String| RegistryError::CannotAdd {
            reference: reference.clone(),
            reason,
            kind,
            source: None,
        };
        let header = header.map_err(|e| {
            cannot(ErrorKind::Integrity, format!("the new {} is not a GGUF file: {e}", first.hf_filename))
        })?;
        match header.architecture.as_deref() {
            Some(arch) if old.arch != UNKNOWN && arch != old.arch => Err(cannot(
                ErrorKind::Unsupported,
                format!(
                    "the new {} is a `{arch}` model, the entry a `{}` one; add it as another model",
                    first.hf_filename, old.arch
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The custom catalog's form of `entry`.
fn to_custom(entry: &ModelEntry) -> CustomModel {
    let known = |s: &str| (s != UNKNOWN && !s.is_empty()).then(|| s.to_string());
    let mut m = CustomModel {
        name: entry.name.to_string(),
        hf_repo: entry.hf_repo.to_string(),
        revision: entry.revision.to_string(),
        arch: known(&entry.arch),
        embedding_dim: (entry.embedding_dim > 0).then_some(entry.embedding_dim),
        quant: known(&entry.quant),
        task: Some(entry.task),
        description: known(&entry.description),
        license: known(&entry.license),
        tracks: entry.tracks.as_deref().map(str::to_string),
        ..Default::default()
    };
    if entry.is_multi_file() {
        m.files = entry.model_files().iter().map(CustomFile::from).collect();
    } else {
        (m.hf_filename, m.sha256, m.size_bytes) =
            (entry.hf_filename.to_string(), entry.sha256.to_string(), entry.size_bytes);
    }
    m
}
