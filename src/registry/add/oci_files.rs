//! The files of a model adopted from an OCI registry: each chosen layer's file name (its
//! title when that is a portable GGUF file name, else `<name>-<tag>.gguf`), and the check that
//! several GGUF weight layers — or one titled as a shard — are one whole split.

use crate::catalog::{
    invalid_file_name, non_portable_file_name, split_name, CustomFile, FileRole, OciReference,
};
use crate::error::ErrorKind;
use crate::shown::{bounded_list, printable};
use crate::sources::Descriptor;

/// A GGUF layer chosen for the entry.
pub(super) struct Chosen<'a> {
    pub(super) layer: &'a Descriptor,
    pub(super) sha256: String,
    pub(super) role: FileRole,
    /// The title (or ModelPack path) as given.
    pub(super) name: Option<String>,
}

/// The longest file name made for a layer without a usable title.
const MAX_GENERATED: usize = 120;

/// The file of each chosen layer: its title's base name when that is a GGUF file name the
/// catalog accepts, else one made of the model's `name` and the tag (or the digest's first
/// 12 digits): `<name>-<tag>.gguf`, `mmproj-<name>-<tag>.gguf`. Whether any name was made so.
/// Refused: several weight layers that are not one split's shards 1 to N (exit 9), and a
/// split of which some shards are missing (exit 6).
pub(super) fn file_names(
    chosen: &[Chosen<'_>],
    name: &str,
    reference: &OciReference,
) -> Result<(Vec<CustomFile>, bool), (ErrorKind, String)> {
    let stem = file_part(name, 64);
    let label = reference
        .tag
        .clone()
        .or_else(|| reference.digest.as_deref().and_then(|d| d.get(..12)).map(str::to_string))
        .unwrap_or_default();
    let room = MAX_GENERATED - "mmproj--.gguf".len() - stem.len();
    let label = file_part(&label, room);
    let titled = |c: &Chosen<'_>| {
        c.name
            .as_deref()
            .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string())
            .filter(|n| invalid_file_name(n).is_none() && non_portable_file_name(n).is_none())
    };
    whole_split(chosen, &titled)?;
    let mut files = Vec::new();
    let mut generated = false;
    for c in chosen {
        let path = match (titled(c), c.role) {
            (Some(n), _) => n,
            (None, role) => {
                generated = true;
                match role {
                    FileRole::Weights => format!("{stem}-{label}.gguf"),
                    _ => format!("mmproj-{stem}-{label}.gguf"),
                }
            }
        };
        files.push(CustomFile { path, size_bytes: c.layer.size, sha256: c.sha256.clone(), role: c.role });
    }
    Ok((files, generated))
}

/// Checks that the weight layers are one model: a single layer not titled as a shard, or
/// the shards 1 to N of one split, each titled `PREFIX-0000i-of-0000N.gguf`.
fn whole_split(
    chosen: &[Chosen<'_>],
    titled: &dyn Fn(&Chosen<'_>) -> Option<String>,
) -> Result<(), (ErrorKind, String)> {
    let weights: Vec<&Chosen<'_>> = chosen.iter().filter(|c| c.role == FileRole::Weights).collect();
    let names: Vec<Option<String>> = weights.iter().map(|c| titled(c)).collect();
    let splits: Vec<_> = names.iter().map(|n| n.as_deref().and_then(split_name)).collect();
    let listed = || {
        bounded_list(
            weights.iter().map(|c| match &c.name {
                Some(n) => printable(n),
                None => format!("an untitled layer sha256:{}", c.sha256.get(..12).unwrap_or_default()),
            }),
            ", ",
        )
    };
    if let [None] = splits.as_slice() {
        return Ok(());
    }
    let one_split = splits.iter().all(|s| {
        s.as_ref()
            .zip(splits[0].as_ref())
            .is_some_and(|(s, first)| s.prefix == first.prefix && s.count == first.count)
    });
    if !one_split {
        return Err((
            ErrorKind::Unsupported,
            format!(
                "several GGUF layers that are not one split's shards ({}): one model per reference; publish each model under its own tag",
                listed()
            ),
        ));
    }
    let count = splits[0].as_ref().map_or(0, |s| s.count);
    let in_order = splits
        .iter()
        .enumerate()
        .all(|(i, s)| s.as_ref().is_some_and(|s| usize::try_from(s.index).ok() == Some(i + 1)));
    if usize::try_from(count).ok() == Some(weights.len()) && in_order {
        return Ok(());
    }
    Err((
        ErrorKind::Integrity,
        format!(
            "split not whole: the layers are titled as shards of a split of {count}, and the artifact has {} of them ({}); publish all {count} shards in one manifest",
            weights.len(),
            listed()
        ),
    ))
}

/// `s` as part of a file name: only `[A-Za-z0-9._-]` (others become `-`), a run of dots
/// becomes `-`, at most `max` bytes, no leading or trailing dot.
fn file_part(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '.' && chars.peek() == Some(&'.') {
            while chars.peek() == Some(&'.') {
                chars.next();
            }
            out.push('-');
        } else if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_matches(['.', ' ']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_file_names_keep_to_portable_characters() {
        assert_eq!(file_part("a..b...c.", 50), "a-b-c");
        assert_eq!(file_part("a b/c", 50), "a-b-c");
        assert_eq!(file_part("abc.def", 4), "abc");
    }
}
