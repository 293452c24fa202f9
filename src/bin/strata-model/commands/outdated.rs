//! `strata-model outdated [NAME…]`: whether the branch each model was pinned from has moved
//! on the Hub, and whether its files changed there.

use strata_model::{ByteSize, Freshness, Outdated, Registry};

use crate::exit::{code, Failure};
use crate::output::{emit, emit_json, Table, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String]) -> Result<(), Failure> {
    let reports = registry.outdated(names)?;
    if ui.json {
        emit_json(&reports)?;
    } else {
        let mut table = Table::new(&[
            ("NAME", false),
            ("TRACKS", false),
            ("PINNED", false),
            ("NOW", false),
            ("STATE", false),
        ]);
        for r in &reports {
            let short = |c: &str| c.chars().take(12).collect::<String>();
            table.push(vec![
                r.name.clone(),
                r.tracks.clone().unwrap_or_else(|| "-".into()),
                short(&r.pinned),
                r.now.as_deref().map(short).unwrap_or_else(|| "-".into()),
                state(r),
            ]);
        }
        emit(format!("{}\n", table.render(|_, _, cell| cell).trim_end()))?;
    }
    if let Some(failed) = reports.iter().find(|r| r.state == Freshness::Failed) {
        let n = reports.iter().filter(|r| r.state == Freshness::Failed).count();
        let kind = failed.error_kind.map(crate::exit::code_of_kind).unwrap_or(code::NETWORK);
        return Err(Failure::Message(
            format!("the Hub could not be asked about {n} of {} models", reports.len()),
            kind,
        ));
    }
    let changed = reports.iter().filter(|r| r.state == Freshness::Changed).count();
    if changed > 0 {
        return Err(Failure::Message(
            format!(
                "{changed} model{} changed upstream (the pins stay as they are; `strata-model update NAME` re-pins a custom model and fetches what changed)",
                if changed == 1 { "" } else { "s" }
            ),
            code::OUTDATED,
        ));
    }
    Ok(())
}

/// The verdict, and for a change what changed.
fn state(r: &Outdated) -> String {
    match r.state {
        Freshness::Current => "current".into(),
        Freshness::Moved => "moved, files unchanged".into(),
        Freshness::Unknown => {
            let which: Vec<&str> =
                r.files.iter().filter(|f| f.same().is_none()).map(|f| f.file.as_str()).collect();
            format!("moved; {} not in LFS there: cannot compare", which.join(", "))
        }
        Freshness::Untracked => "not tracking a branch".into(),
        Freshness::Failed => format!("failed: {}", r.error.as_deref().unwrap_or("")),
        Freshness::Changed => {
            let what: Vec<String> = r
                .files
                .iter()
                .filter(|f| f.same() == Some(false))
                .map(|f| match f.now_size_bytes {
                    None => format!("{} is gone", f.file),
                    Some(n) if n == f.size_bytes => format!("{} has other bytes ({})", f.file, ByteSize(n)),
                    Some(n) => format!("{} {} → {} bytes", f.file, f.size_bytes, n),
                })
                .collect();
            format!("changed: {}", what.join(", "))
        }
        _ => "unknown".into(),
    }
}
