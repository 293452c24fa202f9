//! `catalog check`: for maintainers, compares each pinned catalog entry with what the Hub
//! reports (`HEAD` on the pinned `resolve` URL, no body): `X-Linked-Size` and `X-Linked-Etag`.

use serde::Serialize;

use url::Url;

use super::Registry;
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
    /// What the Hub reports.
    pub hub_size_bytes: Option<u64>,
    /// The catalog's SHA-256.
    pub sha256: String,
    /// What the Hub reports.
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
        Ok(entries
            .iter()
            .map(|e| {
                let (hub_size, hub_sha256, verdict, note) = match hub.inspect(e) {
                    Err(e) => (None, None, Verdict::Missing, Some(Report::new(&e).to_string())),
                    Ok(l) => {
                        let size_ok = l.size == Some(e.size_bytes);
                        let sha_ok = l.sha256.as_deref() == Some(&*e.sha256);
                        let note = match (size_ok, sha_ok) {
                            (true, true) => None,
                            (false, true) => Some("size differs".into()),
                            (true, false) => Some("SHA-256 differs".into()),
                            (false, false) => Some("size and SHA-256 differ".into()),
                        };
                        let verdict = if note.is_none() { Verdict::Match } else { Verdict::Mismatch };
                        (l.size, l.sha256, verdict, note)
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
