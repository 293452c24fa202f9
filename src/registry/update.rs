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
use crate::catalog::{custom, CustomFile, ModelEntry, Origin, UNKNOWN};
use crate::download::{Base, OldId};
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
    /// Bytes of the new files to fetch (those changed): what a plain download costs.
    pub fetch_bytes: u64,
    /// Bytes actually fetched (0 for a dry run): less than `fetch_bytes` when a file was
    /// rebuilt from its old version and the chunks that changed (a Xet delta), or resumed.
    pub fetched_bytes: u64,
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
        let config = |reason: String| RegistryError::config("update", reason);
        if old.origin == Origin::Builtin {
            return Err(config(format!(
                "`{shown}` is a built-in model, pinned by this release; to follow its repository, add it with \
                 `strata-model add hf.co/{}`",
                old.hf_repo
            )));
        }
        if let Some(r) = &old.oci {
            return Err(config(format!(
                "`{shown}` was adopted from a registry ({r}); `strata-model add {}{}` pins what its tag names now",
                r.repository_location(),
                r.tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default()
            )));
        }
        let Some(tracks) = old.tracks.as_deref().map(str::to_string) else {
            return Err(config(format!(
                "`{shown}` does not say which branch it follows (it was registered by hand or pinned from a \
                 commit); set it with `register --tracks main`, or add the model again"
            )));
        };
        if self.config().offline() {
            return Err(RegistryError::config(
                crate::config::vars::OFFLINE,
                "network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE) and `update` asks the Hub; turn it back on",
            ));
        }
        let cannot = |kind: ErrorKind, reason: String, source: Option<crate::error::SourceError>| {
            RegistryError::CannotUpdate { model: shown.clone(), reason, kind, source: source.map(Box::new) }
        };
        let catalog_file = self.config().catalog_file();
        let was = custom::stored(&catalog_file, &old)?;
        // The sources a download of the new files uses; the Hub among them answers the model
        // API and the header read too, so that its resolution of a changed file serves the
        // header read, a delta and the download alike (one round trip).
        let built;
        let sources: &[Box<dyn crate::sources::ModelSource>] = match &self.sources {
            Some(s) => s,
            None => {
                built = crate::sources::from_config(self.config())?;
                &built
            }
        };
        let own_hub;
        let source = match sources.iter().find_map(|s| crate::sources::hub(s.as_ref())) {
            Some(hub) => hub,
            None => {
                own_hub = HttpSource::hugging_face(self.config())?;
                &own_hub
            }
        };
        let info = source.model_info(&old.hf_repo, &tracks).map_err(|e| {
            cannot(e.kind(), format!("asking the Hub where {tracks} of {} points", old.hf_repo), Some(e))
        })?;
        let mut report = Update {
            name: shown.clone(),
            tracks: tracks.clone(),
            from: old.revision.to_string(),
            to: info.sha.clone(),
            action: UpdateAction::Current,
            changed: Vec::new(),
            fetch_bytes: 0,
            fetched_bytes: 0,
        };
        if info.sha.eq_ignore_ascii_case(&old.revision) {
            // A swap cut short (killed after the catalog was rewritten) is finished here.
            self.install_staged_files(&old)?;
            return Ok(report);
        }
        // The new facts of every file of the entry, at the new commit; every other field as
        // the catalog holds it.
        let mut model = was.clone();
        model.revision = info.sha.clone();
        let mut files: Vec<CustomFile> = old.model_files().iter().map(CustomFile::from).collect();
        for f in &mut files {
            let there = info.siblings.iter().find(|s| s.rfilename == f.path);
            let lfs = there.and_then(|s| s.lfs.as_ref()).filter(|l| l.size > 0).ok_or_else(|| {
                let why = match there {
                    None => "is gone there",
                    Some(s) if s.lfs.is_none() => "is not stored with Git LFS there (no SHA-256 to pin)",
                    Some(_) => "has 0 bytes there",
                };
                cannot(
                    ErrorKind::UnknownModel,
                    format!("{} {why} (commit {}); the pin stays: add the model's new file with `strata-model add`", f.path, info.sha),
                    None,
                )
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
        let new = custom::check_repin(&catalog_file, &old, &model)?;
        // A model not downloaded (never, or pruned) is re-pinned, not fetched.
        let old_unit = self.models_dir().unit(&old);
        let downloaded = old_unit.parts().iter().any(|(_, f)| f.model_path().exists());
        // The changed files whose old version is verified here: a delta may rebuild them.
        let parts = old_unit.parts();
        let bases: Vec<(&ModelEntry, &crate::store::ModelFiles)> = parts
            .iter()
            .filter(|(f, o)| report.changed.iter().any(|c| *c == *f.hf_filename) && o.is_verified())
            .map(|(f, o)| (f, o))
            .collect();
        // The new header, read by range as `add` reads it: still GGUF, still the same model;
        // meanwhile what a delta asks first (a token, the old files' Xet ids).
        let prepared = std::thread::scope(|s| {
            let ahead = (!dry_run && !bases.is_empty())
                .then(|| s.spawn(|| crate::download::prepare_delta(source, &new, &bases, &|| false, true)));
            if !report.changed.is_empty() {
                self.check_new_header(source, &old, &new)?;
            }
            Ok::<_, RegistryError>(ahead.and_then(|h| h.join().ok()))
        })?;
        if !downloaded {
            report.fetch_bytes = 0;
        }
        if dry_run {
            report.action = UpdateAction::WouldUpdate;
            return Ok(report);
        }
        // Every old file's lock, held from here to the swap: another update of the model (or a
        // removal) is refused at once rather than fetching the same files for nothing.
        let _held = old_unit.hold_for_update()?;
        let changed_meanwhile = || {
            cannot(
                ErrorKind::Busy,
                "its catalog entry changed while it was being updated (an edit, another update or unregister); \
                 nothing was re-pinned: run update again with the catalog as it is now"
                    .into(),
                None,
            )
        };
        if custom::stored(&catalog_file, &old)? != was {
            return Err(changed_meanwhile()); // another update finished first: nothing fetched
        }
        // Every changed file, fetched and verified under its staged names.
        let unit = self.models_dir().unit(&new);
        let changed = |f: &ModelEntry| report.changed.iter().any(|c| *c == *f.hf_filename);
        if downloaded {
            // The bytes fetched, counted from the progress events (a delta's or a download's).
            let fetched = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counted: crate::progress::ProgressFn = {
                let (fetched, outer) = (fetched.clone(), self.progress.clone());
                std::sync::Arc::new(move |p: &crate::progress::Progress<'_>| {
                    if let crate::progress::Progress::Finished { fetched: n, .. }
                    | crate::progress::Progress::Rebuilt { fetched: n, .. }
                    | crate::progress::Progress::DeltaFailed { fetched: n, .. } = p
                    {
                        fetched.fetch_add(*n, std::sync::atomic::Ordering::Relaxed);
                    }
                    if let Some(f) = &outer {
                        f(p);
                    }
                })
            };
            let resolver =
                crate::download::Resolver::new(&self.dir, sources, self.config().retry(), Some(&counted))
                    .with_connections(self.config().connections())
                    .with_max_rate(self.config().max_rate())
                    .with_lock_timeout(self.config().lock_timeout());
            let old_parts = old_unit.parts();
            for (file, files) in unit.parts().iter().filter(|(f, _)| changed(f)) {
                // The old verified file, to rebuild the new one from (a Xet delta).
                let base = old_parts
                    .iter()
                    .find(|(f, o)| f.hf_filename == file.hf_filename && o.is_verified())
                    .map(|(entry, files)| {
                        let id = match &prepared {
                            Some(p) => OldId::Prepared(p, &entry.hf_filename),
                            None => OldId::Resolve(entry),
                        };
                        Base::of(entry, files, id)
                    });
                resolver.with_base(base.as_ref()).ensure_into(file, &files.staged(), None)?;
            }
            report.fetched_bytes = fetched.load(std::sync::atomic::Ordering::Relaxed);
        }
        // The swap. The catalog is the commit point: rewritten first, then each staged file
        // renamed into place. Cut short after the rewrite, the staged verified files are
        // installed by the next `ensure()` or `update`.
        // Unchanged files keep serving under the new pin only if they are verified now.
        let keep: Vec<bool> = old_unit.parts().iter().map(|(_, f)| f.is_verified()).collect();
        if custom::repin(&catalog_file, &self.catalog_lock_dir(), &old, &was, &model)?.is_none() {
            // Nothing will install what was fetched: it goes.
            for (_, files) in unit.parts().iter().filter(|(f, _)| changed(f)) {
                let _ = files.staged().remove();
            }
            return Err(changed_meanwhile());
        }
        for (i, (file, files)) in unit.parts().iter().enumerate() {
            if changed(file) {
                if files.staged().is_verified() {
                    files.install_staged(&files.staged())?;
                }
            } else if keep.get(i).copied().unwrap_or(false) {
                files.write_stamp()?; // the same verified bytes, pinned anew
            }
        }
        report.action = if report.changed.is_empty() || !downloaded {
            UpdateAction::Repinned
        } else {
            UpdateAction::Updated
        };
        Ok(report)
    }

    /// Installs every file of `entry` whose verified copy waits under its staged names (an
    /// update cut short between the catalog's rewrite and the renames).
    pub(super) fn install_staged_files(&self, entry: &ModelEntry) -> Result<()> {
        let unit = self.models_dir().unit(entry);
        // Usually nothing is staged: one `stat` per file, no stamp read.
        if unit.parts().iter().all(|(_, f)| !f.staged().model_path().exists()) {
            return Ok(());
        }
        if unit.parts().iter().all(|(_, f)| f.is_verified() || !f.staged().is_verified()) {
            return Ok(());
        }
        let _held = unit.hold_for_update()?;
        for (_, files) in unit.parts() {
            if !files.is_verified() && files.staged().is_verified() {
                files.install_staged(&files.staged())?;
            }
        }
        Ok(())
    }

    /// Reads the header of `new`'s first file from the Hub by range and checks it is GGUF of
    /// the architecture `old` was.
    fn check_new_header(&self, source: &HttpSource, old: &ModelEntry, new: &ModelEntry) -> Result<()> {
        let first = new.file_entries().into_iter().next().unwrap_or_else(|| new.clone());
        let mut prefix = super::add::prefix::Prefix::new(source, &first);
        let header = crate::gguf::read_header_prefix(&mut prefix);
        let reference = format!("hf.co/{}@{}", new.hf_repo, new.revision);
        if let Some(e) = prefix.error.take() {
            return Err(RegistryError::CannotUpdate {
                model: old.display_name(),
                reason: format!("reading the header of {} at {reference}", first.hf_filename),
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
