//! `strata-model catalog check`: compares each pinned entry with what the Hub reports.

use strata_model::{Registry, Verdict};
use url::Url;

use crate::exit::{code, Failure};
use crate::output::{emit, emit_json, Ui};

pub fn check(registry: &Registry, ui: &Ui, endpoint: Option<&Url>, names: &[String]) -> Result<(), Failure> {
    let rows = registry.check_catalog(endpoint, names)?;
    let count = |v| rows.iter().filter(|r| r.verdict == v).count();
    let (mismatched, missing) = (count(Verdict::Mismatch), count(Verdict::Missing) + count(Verdict::Unknown));
    if ui.json {
        emit_json(&rows)?;
    } else {
        let mut out = format!("  {:<20} {:<8} {}\n", "NAME", "RESULT", "DETAIL");
        for r in &rows {
            let (word, code) = match r.verdict {
                Verdict::Match => ("match", "32"),
                Verdict::Mismatch => ("MISMATCH", "31"),
                Verdict::Missing => ("missing", "33"),
                Verdict::Unknown => ("unknown", "33"),
            };
            let short = |s: &str| s.get(..16).unwrap_or(s).to_string();
            let hub_size = r.hub_size_bytes.map_or("size unknown".into(), |n| format!("{n} bytes"));
            let hub_sha =
                r.hub_sha256.as_deref().map_or("SHA-256 unknown".into(), |s| format!("{}…", short(s)));
            let detail = match (&r.verdict, &r.note) {
                (Verdict::Match, None) => format!("{} bytes, sha256 {}", r.size_bytes, short(&r.sha256)),
                (Verdict::Match, Some(n)) => {
                    format!("{} bytes, sha256 {}; {n}", r.size_bytes, short(&r.sha256))
                }
                (Verdict::Mismatch | Verdict::Unknown, Some(n)) => format!(
                    "{n}: catalog {} bytes / {}…, Hub {hub_size} / {hub_sha}",
                    r.size_bytes,
                    short(&r.sha256)
                ),
                (_, n) => n.clone().unwrap_or_default(),
            };
            out.push_str(&format!("  {:<20} {} {detail}\n", r.name, ui.paint(&format!("{word:<8}"), code)));
        }
        out.push_str(&format!(
            "{} checked: {} match, {mismatched} mismatch, {} missing{}\n",
            rows.len(),
            rows.len() - mismatched - missing,
            count(Verdict::Missing),
            match count(Verdict::Unknown) {
                0 => String::new(),
                n => format!(", {n} unknown"),
            }
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
