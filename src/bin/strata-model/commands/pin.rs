//! `strata-model pin NAME…` and `unpin NAME…`: prune never removes a pinned model.

use strata_model::Registry;

use crate::exit::Failure;
use crate::json::Pinned;
use crate::output::{Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String], pin: bool) -> Result<(), Failure> {
    super::each(ui, names, if pin { "pinned" } else { "unpinned" }, |name| {
        let changed = if pin { registry.pin(name)? } else { registry.unpin(name)? };
        let shown = registry.resolve(name)?.display_name();
        let text = match (pin, changed) {
            (true, true) => format!("pinned {shown}\n"),
            (true, false) => format!("{shown} was already pinned\n"),
            (false, true) => format!("unpinned {shown}\n"),
            (false, false) => format!("{shown} was not pinned\n"),
        };
        Ok((Pinned { name: shown, pinned: pin, changed }, Out::new(&text)))
    })
}
