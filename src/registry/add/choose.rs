//! Which files of a repository a Hub reference selects: the weights (one file, or every
//! shard of a split) and, as llama.cpp chooses it, a projector.

use crate::catalog::{infer_quant, split_name, HubReference, Select};
use crate::error::ErrorKind;
use crate::size::ByteSize;
use crate::sources::{RepoInfo, Sibling};

/// What a reference selects in a repository.
#[derive(Debug)]
pub(super) struct Chosen<'a> {
    /// The weights: one file, or every shard of a split in order.
    pub(super) weights: Vec<&'a Sibling>,
}

/// What a projector option says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Projector {
    /// The one llama.cpp would load beside the weights, when the repository has one.
    #[default]
    Default,
    /// This file (a repository path, or a base name found anywhere in the repository).
    File(String),
    /// None.
    Skip,
}

/// The last segment of a repository path.
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A path's folder (empty at the top of the repository).
fn folder(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Whether a GGUF file is a model's weights, not a sidecar (llama.cpp's
/// `gguf_filename_is_model`: no `mmproj`, `imatrix`, `mtp-`, `eagle3-`, `dflash-`, `dspark-`
/// in its base name).
fn is_weights(path: &str) -> bool {
    let base = base_name(path).to_ascii_lowercase();
    base.ends_with(".gguf")
        && !["mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-"].iter().any(|k| base.contains(k))
}

/// Whether `quant` (lowercase) names `file`: the quantization read from its name, a run of
/// its name between separators (`-`, `.`, `_` or its ends), or one of its folders.
fn names_quant(file: &str, quant: &str) -> bool {
    if folder(file).split('/').any(|d| d.eq_ignore_ascii_case(quant)) {
        return true;
    }
    let base = base_name(file);
    let stem_name = split_name(base).map_or(base.to_string(), |s| format!("{}.gguf", s.prefix));
    if infer_quant(&stem_name) == quant {
        return true;
    }
    let lower = stem_name.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gguf").unwrap_or(&lower);
    // A quantization may hold `_` (`q4_k_m`), so only `-` and `.` may end it.
    let before = |c: Option<char>| c.is_none_or(|c| matches!(c, '-' | '.' | '_'));
    let after = |c: Option<char>| c.is_none_or(|c| matches!(c, '-' | '.'));
    stem.match_indices(quant)
        .any(|(i, _)| before(stem[..i].chars().next_back()) && after(stem[i + quant.len()..].chars().next()))
}

/// The `:QUANT` to type for `file`, upper-case as repositories spell it.
fn quant_label(file: &str) -> Option<String> {
    let base = base_name(file);
    let name = split_name(base).map_or(base.to_string(), |s| format!("{}.gguf", s.prefix));
    let q = infer_quant(&name);
    (q != crate::catalog::UNKNOWN).then(|| q.to_ascii_uppercase())
}

/// The files a reference selects, as llama.cpp's `get_split_files` groups them: a file of
/// its own, or every shard with the first shard's folder, prefix and count. One group, or
/// why there is not exactly one.
pub(super) fn choose<'a>(
    reference: &HubReference,
    info: &'a RepoInfo,
    revision: &str,
) -> Result<Chosen<'a>, (ErrorKind, String)> {
    let repo = reference.repo_id();
    let at = format!("{repo} at {revision} ({})", &info.sha[..12.min(info.sha.len())]);
    let ggufs: Vec<&Sibling> =
        info.siblings.iter().filter(|s| s.rfilename.to_ascii_lowercase().ends_with(".gguf")).collect();
    let chosen: Vec<&Sibling> = match &reference.select {
        Some(Select::File(file)) => {
            let found =
                info.siblings.iter().find(|s| s.rfilename == *file || s.rfilename.eq_ignore_ascii_case(file));
            match found {
                Some(s) => vec![s],
                None => {
                    return Err((
                        ErrorKind::UnknownModel,
                        format!("{at} has no file {file}{}", listing(&ggufs)),
                    ))
                }
            }
        }
        Some(Select::Quant(q)) => {
            let q = q.to_ascii_lowercase();
            let found: Vec<&Sibling> = ggufs
                .iter()
                .copied()
                .filter(|s| is_weights(&s.rfilename) && names_quant(&s.rfilename, &q))
                .collect();
            if found.is_empty() {
                return Err((
                    ErrorKind::UnknownModel,
                    format!(
                        "{at} has no GGUF file for quantization {}{}",
                        q.to_ascii_uppercase(),
                        listing(&ggufs)
                    ),
                ));
            }
            found
        }
        None => ggufs.iter().copied().filter(|s| is_weights(&s.rfilename)).collect(),
    };
    if chosen.is_empty() {
        return Err((ErrorKind::UnknownModel, format!("{at} has no GGUF file{}", listing(&ggufs))));
    }
    // Group: a split's shards are one model.
    let key = |s: &Sibling| -> (String, String, u32) {
        match split_name(base_name(&s.rfilename)).filter(|x| x.count > 1) {
            Some(x) => (folder(&s.rfilename).to_string(), x.prefix.to_ascii_lowercase(), x.count),
            None => (s.rfilename.clone(), String::new(), 1),
        }
    };
    let mut groups: Vec<(String, String, u32)> = Vec::new();
    for s in &chosen {
        let k = key(s);
        if !groups.contains(&k) {
            groups.push(k);
        }
    }
    if groups.len() > 1 {
        let firsts: Vec<&Sibling> = chosen
            .iter()
            .copied()
            .filter(|s| split_name(base_name(&s.rfilename)).is_none_or(|x| x.count <= 1 || x.index == 1))
            .collect();
        return Err((
            ErrorKind::UnknownModel,
            format!("{at} has several GGUF files; choose one{}", listing(&firsts)),
        ));
    }
    let (dir, prefix, count) = groups.remove(0);
    if count == 1 {
        return Ok(Chosen { weights: chosen });
    }
    // Every shard of the split, from the whole repository (a reference may name only one).
    let mut shards: Vec<(u32, &Sibling)> = ggufs
        .iter()
        .copied()
        .filter_map(|s| {
            let x = split_name(base_name(&s.rfilename))?;
            (folder(&s.rfilename) == dir && x.prefix.eq_ignore_ascii_case(&prefix)).then_some((x.index, s))
        })
        .collect();
    shards.sort_by_key(|(i, _)| *i);
    let indexes: Vec<u32> = shards.iter().map(|(i, _)| *i).collect();
    let want: Vec<u32> = (1..=count).collect();
    let same_count =
        shards.iter().all(|(_, s)| split_name(base_name(&s.rfilename)).is_some_and(|x| x.count == count));
    if indexes != want || !same_count {
        let missing: Vec<String> =
            want.iter().filter(|i| !indexes.contains(i)).map(|i| format!("{i:05}")).collect();
        let there: Vec<&Sibling> = shards.iter().map(|(_, s)| *s).collect();
        return Err((
            ErrorKind::Integrity,
            format!(
                "the split {}{prefix} of {count} shards is not whole in {at}{}: it has{}",
                if dir.is_empty() { String::new() } else { format!("{dir}/") },
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (missing shard {})", missing.join(", "))
                },
                listing(&there).trim_start_matches(':')
            ),
        ));
    }
    Ok(Chosen { weights: shards.into_iter().map(|(_, s)| s).collect() })
}

/// The projector to add beside `weights` (the repository path of its first file): the one
/// `option` names, else (by default) the one llama.cpp's `find_best_mmproj` picks — a `.gguf`
/// file with `mmproj` in its path, in the weights' folder or one above it, the deepest first,
/// then the closest in bits to the weights' quantization — else none.
pub(super) fn projector<'a>(
    info: &'a RepoInfo,
    weights: &str,
    option: &Projector,
) -> Result<Option<&'a Sibling>, String> {
    match option {
        Projector::Skip => Ok(None),
        Projector::File(file) => {
            let exact = info.siblings.iter().find(|s| s.rfilename.eq_ignore_ascii_case(file));
            let mut by_name =
                info.siblings.iter().filter(|s| base_name(&s.rfilename).eq_ignore_ascii_case(file));
            let found = exact.or_else(|| match (by_name.next(), by_name.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            });
            match found {
                Some(s) if !s.rfilename.to_ascii_lowercase().ends_with(".gguf") => {
                    Err(format!("{} is not a GGUF file, so not a projector", s.rfilename))
                }
                Some(s) if s.rfilename == weights => {
                    Err(format!("{} is the weights, not a projector", s.rfilename))
                }
                Some(s) => Ok(Some(s)),
                None => {
                    let all: Vec<&Sibling> = info
                        .siblings
                        .iter()
                        .filter(|s| s.rfilename.to_ascii_lowercase().contains("mmproj"))
                        .collect();
                    Err(format!(
                        "the repository has no projector {file} (or several of that name){}",
                        listing(&all)
                    ))
                }
            }
        }
        Projector::Default => {
            let model_dirs: Vec<&str> = folder(weights).split('/').filter(|d| !d.is_empty()).collect();
            let model_bits = bits(weights);
            let mut best: Option<(usize, u32, &Sibling)> = None;
            for s in &info.siblings {
                let path = &s.rfilename;
                if !path.to_ascii_lowercase().ends_with(".gguf") || !path.contains("mmproj") {
                    continue;
                }
                let dirs: Vec<&str> = folder(path).split('/').filter(|d| !d.is_empty()).collect();
                if dirs.len() > model_dirs.len() || dirs[..] != model_dirs[..dirs.len()] {
                    continue;
                }
                let diff = bits(path).abs_diff(model_bits);
                let better = match best {
                    None => true,
                    Some((depth, d, _)) => dirs.len() > depth || (dirs.len() == depth && diff < d),
                };
                if better {
                    best = Some((dirs.len(), diff, s));
                }
            }
            Ok(best.map(|(_, _, s)| s))
        }
    }
}

/// The bits of a file's quantization, as llama.cpp's `extract_quant_bits` reads them: the
/// first number in the tag ending its name (`Q4_K_M` 4, `F16` 16, `BF16` 16), else 0.
fn bits(path: &str) -> u32 {
    let base = base_name(path);
    let stem = split_name(base)
        .map_or_else(|| base.get(..base.len().saturating_sub(5)).unwrap_or(base), |s| s.prefix);
    let tag = stem.rsplit(['-', '.']).next().unwrap_or("");
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return 0;
    }
    let digits: String =
        tag.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// The GGUF files of a repository, one per line with its size and the `:QUANT` to type.
pub(super) fn listing(ggufs: &[&Sibling]) -> String {
    if ggufs.is_empty() {
        return String::new();
    }
    let label = |s: &Sibling| match split_name(base_name(&s.rfilename)).filter(|x| x.count > 1) {
        Some(x) if x.index != 1 => None,
        _ if !is_weights(&s.rfilename) => None,
        _ => Some(quant_label(&s.rfilename).map_or_else(|| format!("/{}", s.rfilename), |q| format!(":{q}"))),
    };
    let labels: Vec<Option<String>> = ggufs.iter().map(|s| label(s)).collect();
    let mut out = String::from(":");
    for (s, how) in ggufs.iter().zip(&labels) {
        let size =
            s.lfs.as_ref().map(|l| l.size).or(s.size).map(|b| ByteSize(b).to_string()).unwrap_or_default();
        // A `:QUANT` that names more than one model is no choice: the file's path is.
        let how = match how {
            Some(h) if labels.iter().filter(|l| l.as_ref() == Some(h)).count() > 1 => {
                format!("/{}", s.rfilename)
            }
            Some(h) => h.clone(),
            None => String::new(),
        };
        out.push_str(&format!("\n  {how:<12} {:<48} {size:>10}", s.rfilename));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::LfsInfo;

    fn sibling(name: &str, lfs: bool) -> Sibling {
        Sibling {
            rfilename: name.into(),
            size: Some(10),
            lfs: lfs.then(|| LfsInfo { sha256: "ab".repeat(32), size: 10 }),
        }
    }

    fn info(names: &[&str]) -> RepoInfo {
        RepoInfo { sha: "c".repeat(40), siblings: names.iter().map(|n| sibling(n, true)).collect() }
    }

    fn pick_file(reference: &str, names: &[&str]) -> Result<String, (ErrorKind, String)> {
        let r = HubReference::parse(reference).unwrap();
        choose(&r, &info(names), "main").map(|c| c.weights[0].rfilename.clone())
    }

    fn chosen(reference: &str, names: &[&str]) -> Result<Vec<String>, (ErrorKind, String)> {
        let r = HubReference::parse(reference).unwrap();
        choose(&r, &info(names), "main").map(|c| c.weights.iter().map(|s| s.rfilename.clone()).collect())
    }

    #[test]
    fn a_split_is_every_shard_in_order_in_its_folder() {
        let repo = [
            "Q4_K_M/Big-Q4_K_M-00002-of-00003.gguf",
            "Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf",
            "Q4_K_M/Big-Q4_K_M-00003-of-00003.gguf",
            "Big-Q8_0.gguf",
            "mmproj-F16.gguf",
        ];
        assert_eq!(
            chosen("acme/Big-GGUF:Q4_K_M", &repo).unwrap(),
            [
                "Q4_K_M/Big-Q4_K_M-00001-of-00003.gguf",
                "Q4_K_M/Big-Q4_K_M-00002-of-00003.gguf",
                "Q4_K_M/Big-Q4_K_M-00003-of-00003.gguf"
            ]
        );
        assert_eq!(chosen("acme/Big-GGUF/Q4_K_M/Big-Q4_K_M-00003-of-00003.gguf", &repo).unwrap().len(), 3);
        assert_eq!(chosen("acme/Big-GGUF:Q8_0", &repo).unwrap(), ["Big-Q8_0.gguf"]);
        let (kind, msg) = chosen("acme/Big-GGUF:Q4_K_M", &repo[1..]).unwrap_err();
        assert_eq!(kind, ErrorKind::Integrity);
        assert!(msg.contains("missing shard 00002"), "{msg}");
        assert!(msg.contains("Big-Q4_K_M-00003-of-00003.gguf"), "{msg}");
        let (_, msg) = chosen("acme/Big-GGUF", &repo).unwrap_err();
        assert!(
            msg.contains("several GGUF files") && msg.contains(":Q4_K_M") && msg.contains(":Q8_0"),
            "{msg}"
        );
    }

    #[test]
    fn the_projector_is_the_one_llama_cpp_would_load() {
        let repo =
            info(&["Q4_K_M/m-Q4_K_M.gguf", "mmproj-F16.gguf", "mmproj-Q8_0.gguf", "other/mmproj-F32.gguf"]);
        let pick = |opt: &Projector| {
            projector(&repo, "Q4_K_M/m-Q4_K_M.gguf", opt).map(|p| p.map(|s| s.rfilename.clone()))
        };
        assert_eq!(
            pick(&Projector::Default).unwrap().as_deref(),
            Some("mmproj-Q8_0.gguf"),
            "closest in bits, not in a sibling folder"
        );
        assert_eq!(pick(&Projector::Skip).unwrap(), None);
        assert_eq!(
            pick(&Projector::File("mmproj-F16.gguf".into())).unwrap().as_deref(),
            Some("mmproj-F16.gguf")
        );
        assert_eq!(
            pick(&Projector::File("mmproj-F32.gguf".into())).unwrap().as_deref(),
            Some("other/mmproj-F32.gguf")
        );
        assert!(pick(&Projector::File("nope.gguf".into())).unwrap_err().contains("no projector nope.gguf"));
        let nested = info(&["Q4_K_M/m-Q4_K_M.gguf", "mmproj-F16.gguf", "Q4_K_M/mmproj-F16.gguf"]);
        assert_eq!(
            projector(&nested, "Q4_K_M/m-Q4_K_M.gguf", &Projector::Default)
                .unwrap()
                .map(|s| s.rfilename.as_str()),
            Some("Q4_K_M/mmproj-F16.gguf"),
            "the deepest folder first"
        );
        assert_eq!(bits("m-Q4_K_M.gguf"), 4);
        assert_eq!(bits("mmproj-BF16.gguf"), 16);
        assert_eq!(bits("Big-Q8_0-00001-of-00002.gguf"), 8);
    }

    #[test]
    fn quantizations_match_file_names_in_any_case() {
        assert!(names_quant("tiny-Q4_K_M.gguf", "q4_k_m"));
        assert!(names_quant("tiny.Q8_0.gguf", "q8_0"));
        assert!(names_quant("tiny-Q4_K_M-imat.gguf", "q4_k_m"));
        assert!(!names_quant("tiny-Q4_K_M.gguf", "q4_k"));
        assert!(!names_quant("tiny-Q8_0.gguf", "f16"));
    }

    #[test]
    fn the_file_is_the_one_named_the_only_one_or_an_error_that_lists_them() {
        let three = ["README.md", "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf", "tiny-F16.gguf"];
        assert_eq!(pick_file("acme/tiny-GGUF:q8_0", &three).unwrap(), "tiny-Q8_0.gguf");
        assert_eq!(pick_file("acme/tiny-GGUF/tiny-F16.gguf", &three).unwrap(), "tiny-F16.gguf");
        let (kind, msg) = pick_file("acme/tiny-GGUF", &three).unwrap_err();
        assert_eq!(kind, ErrorKind::UnknownModel);
        for want in [":Q4_K_M", ":Q8_0", ":F16", "tiny-F16.gguf", "several GGUF files"] {
            assert!(msg.contains(want), "{want} in {msg}");
        }
        assert!(pick_file("acme/tiny-GGUF:q2_k", &three)
            .unwrap_err()
            .1
            .contains("no GGUF file for quantization Q2_K"));
        assert_eq!(pick_file("acme/tiny-GGUF", &["tiny.gguf", "mmproj-tiny-f16.gguf"]).unwrap(), "tiny.gguf");
        let split = ["big-Q8_0-00002-of-00002.gguf", "big-Q8_0-00001-of-00002.gguf", "big-F16.gguf"];
        assert_eq!(pick_file("acme/big-GGUF:Q8_0", &split).unwrap(), "big-Q8_0-00001-of-00002.gguf");
        assert_eq!(pick_file("acme/x", &["sub/x-Q8_0.gguf"]).unwrap(), "sub/x-Q8_0.gguf");
        assert!(pick_file("acme/x", &["README.md"]).unwrap_err().1.contains("has no GGUF file"));
    }
}
