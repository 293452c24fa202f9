//! `mirror push`: copy verified models from the models directory to a mirror (a directory, an
//! OCI registry, an OCI image layout or, with the `cloud` feature, a bucket), so an operator
//! seeds a mirror in one command.
//!
//! Files already at the destination with the right size are skipped. Every byte read is
//! hashed on the way, and a copy whose bytes do not match the catalog SHA-256 is never
//! completed (the temporary file is deleted, the multipart or blob upload aborted). To a
//! registry, each model is a ModelPack artifact tagged with its name (`sources/oci/manifest.rs`):
//! the blob (skipped when the registry has the digest), a config blob and the manifest. A blob
//! larger than the chunk size ([`crate::Config::with_push_chunk_size`]) goes in chunks, and
//! where its upload stands is kept beside the model (`.strata/<file>.upload`) so that the next
//! push resumes an interrupted one. To an OCI image layout (`oci-layout:PATH`) the same
//! artifact, its blobs under `blobs/sha256/` and its manifest tagged in `index.json`
//! (`sources/oci/layout.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Registry;
use crate::catalog::ModelEntry;
use crate::digest::HashingReader;
use crate::error::{RegistryError, Result};
use crate::sources::{oci_manifest, Location, UploadJournal};
use crate::store::{ModelFiles, Status, UploadState};

/// What `push` did (or, in a dry run, would do) for one model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushAction {
    /// Copied (or uploaded).
    Copied,
    /// Already there with the right size.
    Present,
    /// A dry run: would be copied.
    WouldCopy,
}

/// One file's line in a push report (a multi-file model has one per file).
#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    /// The model.
    pub name: String,
    /// Where its file goes (a path or an object URL).
    pub target: String,
    /// Its size.
    pub size_bytes: u64,
    /// What was done.
    pub action: PushAction,
    /// To a registry: the bytes an interrupted earlier push had sent, which this one did not
    /// send again (it resumed the upload there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from_bytes: Option<u64>,
}

enum Destination {
    Dir(PathBuf),
    Oci(Box<crate::sources::OciSource>),
    Layout(crate::sources::OciLayout),
    #[cfg(feature = "cloud")]
    Bucket(crate::sources::ObjectStoreSource),
}

/// The option named in destination errors.
const DESTINATION: &str = "destination";

impl Registry {
    /// Pushes blobs to OCI registries in chunks of `bytes` (see
    /// [`crate::Config::with_push_chunk_size`]).
    pub fn with_push_chunk_size(mut self, bytes: u64) -> Self {
        self.config = self.config.with_push_chunk_size(bytes);
        self
    }

    /// Copies the verified files of `names` (all downloaded models when empty) to
    /// `destination`: a directory path or `file://` URL, an `oci://HOST[:PORT]/REPOSITORY`
    /// registry, an `oci-layout:PATH` OCI image layout, or an `s3://`, `gs://` or `az://` bucket URL (the same location syntax as
    /// `STRATA_MODELS_MIRROR`).
    pub fn push(
        &self,
        destination: impl AsRef<std::ffi::OsStr>,
        names: &[String],
        dry_run: bool,
    ) -> Result<Vec<PushReport>> {
        let dest = self.destination(destination.as_ref())?;
        let entries: Vec<&ModelEntry> = if names.is_empty() {
            let downloaded = |e: &&ModelEntry| self.models_dir().unit(e).status() == Status::Downloaded;
            self.catalog().entries().iter().filter(downloaded).collect()
        } else {
            names.iter().map(|n| self.resolve(n)).collect::<Result<_>>()?
        };
        if matches!(dest, Destination::Oci(_) | Destination::Layout(_)) {
            // `a:f16` and a model named `a-f16` would share the tag `a-f16`.
            let mut tags: Vec<(String, String)> =
                entries.iter().map(|e| (oci_manifest::tag_for(e), e.display_name())).collect();
            tags.sort();
            tags.dedup();
            if let Some(w) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(RegistryError::config(
                    DESTINATION,
                    format!(
                        "`{}` and `{}` would both be tagged `{}`; push them to different places",
                        w[0].1, w[1].1, w[0].0
                    ),
                ));
            }
        }
        let mut reports = Vec::new();
        for model in entries {
            let unit = self.models_dir().unit(model);
            if let Some((_, files)) = unit.missing() {
                return Err(files.not_downloaded(model.display_name()));
            }
            // Each file (every shard and sidecar of a multi-file model) at its repository path.
            for (entry, files) in unit.parts() {
                let (target, present, at) = match &dest {
                    Destination::Dir(dir) => {
                        let at = free_path(entry, |p| {
                            let path = dir.join(p);
                            let size =
                                fs::symlink_metadata(&path).ok().filter(|m| m.is_file()).map(|m| m.len());
                            match size {
                                Some(n) if n == entry.size_bytes => {
                                    Ok(Some(crate::digest::hash_file(&path)? == entry.sha256))
                                }
                                Some(_) => Ok(Some(false)),
                                None => Ok(None),
                            }
                        })?;
                        let path = dir.join(&at.0);
                        (path.display().to_string(), at.1.then_some(entry.size_bytes), at.0)
                    }
                    Destination::Layout(layout) => {
                        let present = layout.holds(&entry.sha256, entry.size_bytes)?;
                        let target = format!(
                            "oci-layout:{}:{}{}",
                            layout.root().display(),
                            oci_manifest::tag_for(model),
                            layer_title(&unit, entry)
                        );
                        // The blob's path comes from the layout and the digest (`copy`).
                        (target, present.then_some(entry.size_bytes), String::new())
                    }
                    Destination::Oci(oci) => {
                        let digest = format!("sha256:{}", entry.sha256);
                        let size = oci.blob_size(&digest).map_err(|e| oci_failed(oci, e))?;
                        let tag = oci_manifest::tag_for(model);
                        let title = layer_title(&unit, entry);
                        (
                            format!("oci://{}/{}:{tag}{title}", oci.host(), oci.repository()),
                            size,
                            entry.hf_filename.to_string(),
                        )
                    }
                    #[cfg(feature = "cloud")]
                    Destination::Bucket(bucket) => {
                        let failed = |e| RegistryError::DownloadFailed {
                            url: bucket.to_string(),
                            source: Box::new(e),
                        };
                        let at = free_path(entry, |p| match bucket.size_of(p).map_err(failed)? {
                            // A sidecar's name is often the same in every repository
                            // (`mmproj-F16.gguf`): one of the right size is read back and hashed.
                            Some(n)
                                if n == entry.size_bytes
                                    && entry.is_multi_file()
                                    && entry.role() != crate::catalog::FileRole::Weights =>
                            {
                                Ok(Some(
                                    bucket.sha256_of(p).map_err(failed)?.as_deref() == Some(&*entry.sha256),
                                ))
                            }
                            Some(n) => Ok(Some(n == entry.size_bytes)),
                            None => Ok(None),
                        })?;
                        (format!("{bucket}/{}", at.0), at.1.then_some(entry.size_bytes), at.0)
                    }
                };
                let mut resumed_from_bytes = None;
                let action = if present == Some(entry.size_bytes) {
                    if matches!(dest, Destination::Oci(_)) && !dry_run {
                        files.remove_upload_state(); // a push killed after its last PUT
                    }
                    PushAction::Present
                } else if dry_run {
                    PushAction::WouldCopy
                } else {
                    resumed_from_bytes = copy(&dest, entry, &at, files, self.config().push_chunk_size())?;
                    PushAction::Copied
                };
                reports.push(PushReport {
                    name: model.display_name(),
                    target,
                    size_bytes: entry.size_bytes,
                    action,
                    resumed_from_bytes,
                });
            }
            match (&dest, dry_run) {
                (Destination::Oci(oci), false) => tag(oci, model)?, // every blob is there: (re)tag
                (Destination::Layout(layout), false) => {
                    layout.prepare()?; // a model whose blobs were all there already
                    let config = oci_manifest::config_blob(model);
                    layout.put_blob(&config)?;
                    let manifest = oci_manifest::manifest(model, &config);
                    layout.tag(&oci_manifest::tag_for(model), &model.display_name(), &manifest)?;
                }
                _ => {}
            }
        }
        Ok(reports)
    }

    fn destination(&self, raw: &std::ffi::OsStr) -> Result<Destination> {
        let location =
            Location::parse_os(raw).map_err(|e| RegistryError::config(DESTINATION, e.to_string()))?;
        match location {
            Location::Dir(path) => {
                let path = crate::config::expand_home(DESTINATION, &path)?;
                let path = std::path::absolute(&path).map_err(|e| {
                    RegistryError::config_caused(
                        DESTINATION,
                        format!("`{}` cannot be made absolute", path.display()),
                        e,
                    )
                })?;
                Ok(Destination::Dir(path))
            }
            Location::OciLayout(path) => {
                let path = crate::config::expand_home(DESTINATION, &path)?;
                let layout = crate::sources::OciLayout::new(std::path::absolute(&path).map_err(|e| {
                    RegistryError::config_caused(
                        DESTINATION,
                        format!("`{}` cannot be made absolute", path.display()),
                        e,
                    )
                })?);
                layout.check_writable()?;
                Ok(Destination::Layout(layout))
            }
            Location::Oci { registry, repository } => Ok(Destination::Oci(Box::new(
                crate::sources::OciSource::new(&registry, &repository, self.config())?,
            ))),
            Location::Https(_) => Err(RegistryError::config(
                DESTINATION,
                format!(
                    "cannot upload to `{location}`: copy the files with your server's own tools \
                     (`--dry-run` lists them), or push to a directory it serves"
                ),
            )),
            #[cfg(feature = "cloud")]
            Location::Bucket(url) => Ok(Destination::Bucket(crate::sources::ObjectStoreSource::from_url(
                url.as_str(),
                self.config(),
            )?)),
            #[cfg(not(feature = "cloud"))]
            Location::Bucket(_) => Err(RegistryError::config(
                DESTINATION,
                format!("`{location}` needs the `cloud` feature; build strata-model with --features cloud"),
            )),
        }
    }
}

/// Where a directory or a bucket should hold `entry`'s file, and whether it holds it already:
/// its repository path (see [`ModelEntry::mirror_paths`]), unless that path holds another
/// file (another model's, of another repository), then (a multi-file model) the models
/// directory's own layout. `holds(path)`: `None` when nothing is there, else whether what is
/// there is this file.
fn free_path(
    entry: &ModelEntry,
    mut holds: impl FnMut(&str) -> Result<Option<bool>>,
) -> Result<(String, bool)> {
    let repository = entry.hf_filename.to_string();
    if !entry.is_multi_file() {
        // A single-file model's one path; other bytes there are replaced, as before.
        return Ok((repository.clone(), holds(&repository)? == Some(true)));
    }
    let own = entry.local_file();
    Ok(match holds(&repository)? {
        Some(true) => (repository, true),
        at_repository => match (holds(&own)?, at_repository) {
            (Some(true), _) => (own, true),
            (_, None) => (repository, false),
            (_, Some(_)) => (own, false),
        },
    })
}

/// Copies `entry`'s file (`files`) to `dest` at `at`; to a registry, in chunks of
/// `chunk_size` when larger. Returns the offset a registry upload was resumed at, if it was.
fn copy(
    dest: &Destination,
    entry: &ModelEntry,
    at: &str,
    files: &ModelFiles,
    chunk_size: u64,
) -> Result<Option<u64>> {
    let source = files.model_path();
    let file = fs::File::open(&source).map_err(|e| RegistryError::storage("open", &source, e))?;
    let mut reader = HashingReader::new(file);
    let mismatch = |actual: String| RegistryError::ChecksumMismatch {
        file: entry.hf_filename.to_string(),
        expected: entry.sha256.to_string(),
        actual,
    };
    match dest {
        Destination::Oci(oci) => {
            let mut verifying = Verifying::new(reader, entry);
            let digest = format!("sha256:{}", entry.sha256);
            let journal = Journal { oci, files, digest: &digest };
            let result = oci.push_blob(&digest, entry.size_bytes, &mut verifying, chunk_size, &journal);
            match (verifying.mismatch, result) {
                (Some(actual), _) => {
                    journal.clear();
                    Err(mismatch(actual))
                }
                (None, Err(e)) => Err(oci_failed(oci, e)),
                (None, Ok(pushed)) => Ok(Some(pushed.resumed_from).filter(|&n| n > 0)),
            }
        }
        Destination::Layout(layout) => {
            layout.prepare()?;
            write_verified(&mut reader, &layout.blob_path(&entry.sha256), entry, mismatch).map(|()| None)
        }
        Destination::Dir(dir) => write_verified(&mut reader, &dir.join(at), entry, mismatch).map(|()| None),
        #[cfg(feature = "cloud")]
        Destination::Bucket(bucket) => {
            let mut verifying = Verifying::new(reader, entry);
            let result = bucket.upload(at, &mut verifying);
            let reason = match (verifying.mismatch, result) {
                (Some(actual), _) => mismatch(actual).to_string(),
                (None, Err(reason)) => reason,
                (None, Ok(())) => return Ok(None),
            };
            Err(RegistryError::DownloadFailed { url: format!("{bucket}/{at}"), source: reason.into() })
        }
    }
}

/// Copies `reader` to `target` atomically, committed only when the bytes have the catalog's
/// SHA-256 (else `mismatch`, and the temporary file is deleted).
fn write_verified(
    reader: &mut HashingReader<fs::File>,
    target: &Path,
    entry: &ModelEntry,
    mismatch: impl FnOnce(String) -> RegistryError,
) -> Result<()> {
    crate::fs::create_dir(target.parent().unwrap_or(Path::new(".")))?;
    let mut out = crate::fs::AtomicFile::create(target)?;
    std::io::copy(reader, out.file()).map_err(|e| RegistryError::storage("copy to", target, e))?;
    let actual = reader.digest().unwrap_or_default();
    if actual != entry.sha256 {
        return Err(mismatch(actual)); // `out` is dropped: the temporary file goes
    }
    out.commit()
}

/// ` (FILE)` after a multi-file model's target in a report, naming the layer.
fn layer_title(unit: &crate::store::ModelUnit, entry: &ModelEntry) -> String {
    if unit.parts().len() > 1 {
        format!(" ({})", entry.hf_filename)
    } else {
        String::new()
    }
}

/// A chunked upload's progress, kept beside the model (`.strata/<file>.upload`, see
/// [`UploadState`]): an upload saved for another registry, repository or digest is not this
/// one's (and is replaced by it).
struct Journal<'a> {
    oci: &'a crate::sources::OciSource,
    files: &'a ModelFiles,
    digest: &'a str,
}

impl UploadJournal for Journal<'_> {
    fn saved(&self) -> Option<url::Url> {
        let state = self.files.upload_state()?;
        let ours = state.registry == self.oci.host()
            && state.repository == self.oci.repository()
            && state.digest == self.digest;
        ours.then(|| state.location.parse().ok()).flatten()
    }

    fn save(&self, location: &url::Url, offset: u64) {
        // Best effort: a state that cannot be saved only means the next push starts again.
        let _ = self.files.save_upload_state(&UploadState {
            registry: self.oci.host(),
            repository: self.oci.repository().to_string(),
            digest: self.digest.to_string(),
            location: location.to_string(),
            offset,
        });
    }

    fn clear(&self) {
        self.files.remove_upload_state();
    }
}

/// Puts `entry`'s config blob (when missing) and its manifest, tagged with its name.
fn tag(oci: &crate::sources::OciSource, entry: &ModelEntry) -> Result<()> {
    let config = oci_manifest::config_blob(entry);
    let digest = format!("sha256:{}", crate::digest::sha256_hex(&config));
    if oci.blob_size(&digest).map_err(|e| oci_failed(oci, e))? != Some(config.len() as u64) {
        oci.upload_blob(&digest, config.len() as u64, &mut &config[..]).map_err(|e| oci_failed(oci, e))?;
    }
    let manifest = oci_manifest::manifest(entry, &config);
    oci.put_manifest(&oci_manifest::tag_for(entry), oci_manifest::MANIFEST_MEDIA_TYPE, &manifest)
        .map_err(|e| oci_failed(oci, e))
}

fn oci_failed(oci: &crate::sources::OciSource, e: crate::error::SourceError) -> RegistryError {
    RegistryError::DownloadFailed {
        url: format!("oci://{}/{}", oci.host(), oci.repository()),
        source: Box::new(e),
    }
}

/// A reader that fails at its end when the bytes read are not `left` bytes with the SHA-256
/// `expected`: an upload fed by it is aborted before the registry can complete it. The check
/// runs when the last expected byte is read (an upload stops reading at its length).
struct Verifying<'a, R> {
    inner: HashingReader<R>,
    expected: &'a str,
    left: u64,
    mismatch: Option<String>,
}

impl<'a, R> Verifying<'a, R> {
    fn new(inner: HashingReader<R>, entry: &'a ModelEntry) -> Self {
        Self { inner, expected: &entry.sha256, left: entry.size_bytes, mismatch: None }
    }
}

impl<R: std::io::Read> std::io::Read for Verifying<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.saturating_sub(n as u64);
        if self.left == 0 || n == 0 {
            let more = self.inner.read(&mut [0u8; 1])?; // reach the end, so the digest is known
            let actual =
                self.inner.digest().filter(|_| more == 0).unwrap_or_else(|| "(a longer file)".into());
            if actual != self.expected {
                self.mismatch = Some(actual);
                return Err(std::io::Error::other("the bytes read do not have the catalog's SHA-256"));
            }
        }
        Ok(n)
    }
}
