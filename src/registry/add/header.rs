//! The GGUF facts `add` reads from a model's files by range, wherever they are (the Hub, an
//! OCI registry): the first file's header (arch, dimension, pooling), each later shard's
//! `split.no` and `split.count`, and a projector's architecture when one was named.

use super::prefix::Prefix;
use super::{AddOptions, Projector, HEADER_READ_LIMIT};
use crate::catalog::{FileRole, ModelEntry};
use crate::error::{ErrorKind, SourceError};
use crate::gguf::{self, GgufError, GgufHeader};
use crate::size::ByteSize;
use crate::sources::ModelSource;

/// What the headers say, and what reading them cost.
pub(super) struct Facts {
    /// The first file's header (default when it could not be read and `--arch` and `--dim`
    /// were given).
    pub(super) header: GgufHeader,
    /// Bytes of the first file the parser read.
    pub(super) read: u64,
    /// Bytes of the first file asked for.
    pub(super) asked: u64,
}

/// Why the facts could not be read.
pub(super) enum HeaderError {
    /// The source failed; what was being read.
    Source(SourceError, String),
    /// The bytes are not what the entry says.
    Refused(ErrorKind, String),
}

/// Reads `entry`'s facts from `source` (the entry's first file; for a split, every shard's
/// split keys; a projector named with `--mmproj`, its architecture).
pub(super) fn read(
    source: &dyn ModelSource,
    entry: &ModelEntry,
    options: &AddOptions,
) -> Result<Facts, HeaderError> {
    let refused = |kind, reason| Err(HeaderError::Refused(kind, reason));
    let files = entry.file_entries();
    let shards = files.iter().filter(|f| f.role() == FileRole::Weights).count().max(1);
    let first = &files[0];
    let mut prefix = Prefix::new(source, first);
    // Ranged economy: the model's own keys come first; the tokenizer's arrays are not read
    // — but for a split, whose `split.*` keys `gguf-split` writes after all the others.
    let header =
        if shards > 1 { gguf::read_header(&mut prefix) } else { gguf::read_header_prefix(&mut prefix) };
    if let Some(e) = prefix.error.take() {
        return Err(HeaderError::Source(e, format!("reading the header of {}", first.hf_filename)));
    }
    // The size pinned is the size stated (a manifest's layer, the Hub's LFS pointer): the
    // bytes served must agree before the entry is written, or every download would fail.
    if let Some((total, location)) = prefix.total.take().filter(|(t, _)| *t != first.size_bytes) {
        return refused(
            ErrorKind::Integrity,
            format!(
                "{} (sha256:{}) is said to have {} bytes, but {location} has {total}; the size stated for it is wrong",
                first.hf_filename, first.sha256, first.size_bytes
            ),
        );
    }
    let header = match header {
        Ok(h) => Some(h),
        Err(_) if prefix.hit_limit && options.arch.is_some() && options.dim.is_some() => None,
        Err(GgufError::Io(_)) if prefix.hit_limit => {
            return refused(
                ErrorKind::Unsupported,
                format!(
                    "the GGUF header of {} is larger than the {} read; give --arch and --dim",
                    first.hf_filename,
                    ByteSize(HEADER_READ_LIMIT)
                ),
            )
        }
        Err(e) => {
            return refused(
                ErrorKind::Integrity,
                format!("{} does not start with a readable GGUF header: {e}", first.hf_filename),
            )
        }
    };
    let whole_header = header.is_some();
    let header = header.unwrap_or_default();
    // The first shard's `split.count` (when its header could be read whole), and every
    // later shard's own `split.no` and `split.count` (their headers hold only those keys).
    for (i, shard) in files.iter().enumerate().take(shards).skip(1) {
        let mut prefix = Prefix::new(source, shard);
        let got = gguf::read_header_prefix(&mut prefix);
        if let Some(e) = prefix.error.take() {
            return Err(HeaderError::Source(e, format!("reading the header of {}", shard.hf_filename)));
        }
        let said = got.as_ref().ok().map(|h| (h.split_no, h.split_count));
        if said != Some((u32::try_from(i).ok(), u32::try_from(shards).ok())) {
            return refused(
                ErrorKind::Integrity,
                format!(
                    "{} is shard {} of {shards} by its name, but its header says {}",
                    shard.hf_filename,
                    i + 1,
                    match said {
                        Some((Some(no), Some(count))) =>
                            format!("`split.no` = {no} (from 0), `split.count` = {count}"),
                        Some(_) => "nothing of a split (no `split.no` or `split.count`)".into(),
                        None => "nothing readable".into(),
                    }
                ),
            );
        }
    }
    // A projector given by name must be one: llama.cpp's projectors are `clip` models.
    if let (Projector::File(_), Some(p)) =
        (&options.projector, files.iter().find(|f| f.role() == FileRole::Mmproj))
    {
        let mut prefix = Prefix::new(source, p);
        let arch = gguf::read_header_prefix(&mut prefix).ok().and_then(|h| h.architecture);
        if let Some(e) = prefix.error.take() {
            return Err(HeaderError::Source(e, format!("reading the header of {}", p.hf_filename)));
        }
        if arch.as_deref() != Some("clip") {
            return refused(
                ErrorKind::Integrity,
                format!(
                    "{} is not a projector: its `general.architecture` is {}, a projector's is `clip`",
                    p.hf_filename,
                    arch.map_or("not readable".into(), |a| format!("`{a}`"))
                ),
            );
        }
    }
    if shards == 1 && header.split_count.is_some_and(|n| n > 1) {
        return refused(
            ErrorKind::Integrity,
            format!(
                "split not whole: {}'s header says it is shard {} of a split of {}, and the model has only it; add all its shards",
                first.hf_filename,
                header.split_no.map_or("?".into(), |n| (u64::from(n) + 1).to_string()),
                header.split_count.unwrap_or_default()
            ),
        );
    }
    if shards > 1 && whole_header && header.split_count != u32::try_from(shards).ok() {
        let names: Vec<&str> = files.iter().take(shards).map(|f| &*f.hf_filename).collect();
        return refused(
            ErrorKind::Integrity,
            format!(
                "the model has {shards} shards of {}, but its first shard's header says {}: {}",
                entry.unit_dir().unwrap_or_default(),
                match header.split_count {
                    Some(n) => format!("`split.count` = {n}"),
                    None => "nothing of a split (no `split.count`)".into(),
                },
                names.join(", ")
            ),
        );
    }
    Ok(Facts { header, read: prefix.read, asked: prefix.asked })
}
