//! `catalog check`: for maintainers, compares each pinned catalog entry with what the Hub
//! reports (`HEAD` on the pinned `resolve` URL, no body): `X-Linked-Size` and `X-Linked-Etag`.
//! What the Hub does not report is unknown, never a difference: a `HEAD` with no size or a
//! size of 0 (a proxy that drops the length) leaves the size unknown.

use serde::Serialize;

use url::Url;

use super::Registry;
use crate::catalog::ModelEntry;
use crate::error::{Report, Result};
use crate::sources::HttpSource;

/// The verdict for one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Size and SHA-256 match.
    Match,
    /// The Hub reports something else.
    Mismatch,
    /// The Hub does not have the file at the pinned revision, or could not be asked.
    Missing,
    /// The Hub answered but reported neither the size nor the SHA-256: nothing to compare.
    Unknown,
}

/// One row of the check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckRow {
    /// The entry's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The catalog's size.
    pub size_bytes: u64,
    /// What the Hub reports; `None` when it does not say (unknown, not 0).
    pub hub_size_bytes: Option<u64>,
    /// The catalog's SHA-256.
    pub sha256: String,
    /// What the Hub reports; `None` when it does not say.
    pub hub_sha256: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Details when not a match.
    pub note: Option<String>,
}

impl Registry {
    /// Checks `names` (every entry when empty) against the Hub at `endpoint` (default: the
    /// configured one).
    pub fn check_catalog(&self, endpoint: Option<&Url>, names: &[String]) -> Result<Vec<CheckRow>> {
        if self.config().offline() {
            return Err(crate::error::RegistryError::config(
                crate::config::vars::OFFLINE,
                "network access is off (STRATA_OFFLINE or HF_HUB_OFFLINE) and `catalog check` asks the Hub; \
                 turn it back on for this command (STRATA_OFFLINE=0 HF_HUB_OFFLINE=0)",
            ));
        }
        let config = match endpoint {
            Some(e) => self.config().clone().with_hf_endpoint(e.clone()),
            None => self.config().clone(),
        };
        let hub = HttpSource::hugging_face(&config)?;
        let entries: Vec<_> = if names.is_empty() {
            self.catalog().entries().to_vec()
        } else {
            names.iter().map(|n| self.resolve(n).cloned()).collect::<Result<_>>()?
        };
        // A multi-file model: a row per file.
        Ok(entries
            .iter()
            .flat_map(ModelEntry::file_entries)
            .map(|e| {
                let asked = match &e.oci {
                    // Adopted from a registry: the Hub has nothing to compare.
                    Some(_) => Ok(None),
                    None => hub.inspect(&e).map(Some),
                };
                let (hub_size, hub_sha256, verdict, note) = match asked {
                    Ok(None) => (
                        None,
                        None,
                        Verdict::Unknown,
                        e.oci.as_ref().map(|r| format!("adopted from {r}, not from the Hub: not checked")),
                    ),
                    Err(e) => (None, None, Verdict::Missing, Some(Report::new(&e).to_string())),
                    Ok(Some(l)) => {
                        let (verdict, note) = compare(&e, l.size, l.sha256.as_deref());
                        (l.size, l.sha256, verdict, note.map(str::to_string))
                    }
                };
                CheckRow {
                    name: e.display_name(),
                    file: e.hf_filename.to_string(),
                    size_bytes: e.size_bytes,
                    hub_size_bytes: hub_size,
                    sha256: e.sha256.to_string(),
                    hub_sha256,
                    verdict,
                    note,
                }
            })
            .collect())
    }
}

/// The verdict on `entry` when the Hub reports `size` and `sha256` (`None`: not reported),
/// and a note when it is not a plain match.
fn compare(entry: &ModelEntry, size: Option<u64>, sha256: Option<&str>) -> (Verdict, Option<&'static str>) {
    let size_differs = size.is_some_and(|s| s != entry.size_bytes);
    let sha_differs = sha256.is_some_and(|s| !s.eq_ignore_ascii_case(&entry.sha256));
    match (size_differs, sha_differs, size, sha256) {
        (true, true, _, _) => (Verdict::Mismatch, Some("size and SHA-256 differ")),
        (true, false, _, _) => (Verdict::Mismatch, Some("size differs")),
        (false, true, _, _) => (Verdict::Mismatch, Some("SHA-256 differs")),
        (false, false, None, None) => (Verdict::Unknown, Some("the Hub reported neither size nor SHA-256")),
        (false, false, None, Some(_)) => {
            (Verdict::Match, Some("SHA-256 matches; size unknown (the Hub did not report it)"))
        }
        (false, false, Some(_), None) => {
            (Verdict::Match, Some("size matches; SHA-256 unknown (the Hub did not report it)"))
        }
        (false, false, Some(_), Some(_)) => (Verdict::Match, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_hub_does_not_report_is_unknown_not_a_difference() {
        let e = crate::catalog::Catalog::builtin().resolve("minilm").unwrap().clone();
        let (size, sha) = (Some(e.size_bytes), Some(&*e.sha256));
        assert_eq!(compare(&e, size, sha), (Verdict::Match, None));
        assert_eq!(compare(&e, None, sha).0, Verdict::Match);
        assert!(compare(&e, None, sha).1.is_some_and(|n| n.contains("size unknown")));
        assert_eq!(compare(&e, None, None).0, Verdict::Unknown);
        assert_eq!(compare(&e, Some(1), sha), (Verdict::Mismatch, Some("size differs")));
        assert_eq!(compare(&e, None, Some("ab")), (Verdict::Mismatch, Some("SHA-256 differs")));
        assert_eq!(compare(&e, Some(1), None), (Verdict::Mismatch, Some("size differs")));
    }
}
