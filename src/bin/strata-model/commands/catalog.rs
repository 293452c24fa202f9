//! `strata-model catalog check`: compares each pinned entry with what the Hub reports.

use strata_model::{Registry, Verdict};
use url::Url;

use crate::exit::{code, Failure};
use crate::output::{emit, emit_json, Ui};

pub fn check(registry: &Registry, ui: &Ui, endpoint: Option<&Url>, names: &[String]) -> Result<(), Failure> {
    let rows = registry.check_catalog(endpoint, names)?;
    let count = |v| rows.iter().filter(|r| r.verdict == v).count();
    let (mismatched, missing) = (count(Verdict::Mismatch), count(Verdict::Missing));
    if ui.json {
        emit_json(&rows)?;
    } else {
        let mut out = format!("  {:<20} {:<8} {}\n", "NAME", "RESULT", "DETAIL");
        for r in &rows {
            let (word, code) = match r.verdict {
                Verdict::Match => ("match", "32"),
                Verdict::Mismatch => ("MISMATCH", "31"),
                Verdict::Missing => ("missing", "33"),
            };
            let detail = match (&r.note, r.hub_size_bytes, &r.hub_sha256) {
                (None, _, _) => format!("{} bytes, sha256 {}", r.size_bytes, &r.sha256[..16]),
                (Some(n), Some(size), sha) => format!(
                    "{n}: catalog {} bytes / {}…, Hub {size} bytes / {}…",
                    r.size_bytes,
                    &r.sha256[..16],
                    sha.as_deref().map_or("?", |s| &s[..s.len().min(16)])
                ),
                (Some(n), _, _) => n.clone(),
            };
            out.push_str(&format!("  {:<20} {} {detail}\n", r.name, ui.paint(&format!("{word:<8}"), code)));
        }
        out.push_str(&format!(
            "{} checked: {} match, {mismatched} mismatch, {missing} missing\n",
            rows.len(),
            rows.len() - mismatched - missing
        ));
        emit(&out)?;
    }
    if mismatched > 0 {
        Err(Failure::Message(format!("{mismatched} catalog entries differ from the Hub"), code::INTEGRITY))
    } else if missing > 0 {
        Err(Failure::Message(format!("{missing} catalog entries could not be checked"), code::NETWORK))
    } else {
        Ok(())
    }
}
