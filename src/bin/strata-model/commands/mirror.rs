//! `strata-model mirror push DEST`: copies verified models to a directory or bucket.

use strata_model::{ByteSize, PushAction, Registry};

use crate::exit::Failure;
use crate::output::{emit, emit_json, Ui};

pub fn push(
    registry: &Registry,
    ui: &Ui,
    destination: &std::ffi::OsStr,
    names: &[String],
    dry_run: bool,
) -> Result<(), Failure> {
    let reports = registry.push(destination, names, dry_run)?;
    if ui.json {
        return emit_json(&reports);
    }
    let mut out = String::new();
    for r in &reports {
        let verb = match r.action {
            PushAction::Copied => "copied   ",
            PushAction::Present => "present  ",
            PushAction::WouldCopy => "would copy",
        };
        let resumed = match r.resumed_from_bytes {
            Some(n) => format!(" (resumed at {})", ByteSize(n)),
            None => String::new(),
        };
        out.push_str(&format!(
            "{verb} {:<20} {:>9}  {}{resumed}\n",
            r.name,
            ByteSize(r.size_bytes).to_string(),
            r.target
        ));
    }
    if reports.is_empty() {
        out.push_str("no model is downloaded; nothing to push\n");
    }
    emit(&out)
}
