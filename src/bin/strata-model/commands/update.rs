//! `strata-model update NAME… [--dry-run]`: re-pins custom models to the commit their branch
//! points to now and fetches the files that changed.

use strata_model::{ByteSize, Registry, UpdateAction};

use super::each;
use crate::exit::Failure;
use crate::output::{Out, Ui};

pub fn run(registry: &Registry, ui: &Ui, names: &[String], dry_run: bool) -> Result<(), Failure> {
    each(ui, names, "updated", |name| {
        let u = registry.update(name, dry_run)?;
        let short = |c: &str| c.chars().take(12).collect::<String>();
        let (from, to) = (short(&u.from), short(&u.to));
        let line = match u.action {
            UpdateAction::Current => format!("{}: current ({} still points at {from})\n", u.name, u.tracks),
            UpdateAction::Repinned => format!("{}: re-pinned {from} → {to}, its files unchanged\n", u.name),
            UpdateAction::Updated => format!(
                "{}: updated {from} → {to} ({}: {} verified, {} fetched)\n",
                u.name,
                u.changed.join(", "),
                ByteSize(u.fetch_bytes),
                ByteSize(u.fetched_bytes)
            ),
            UpdateAction::WouldUpdate if u.changed.is_empty() => {
                format!("{}: would re-pin {from} → {to}, its files unchanged\n", u.name)
            }
            UpdateAction::WouldUpdate => format!(
                "{}: would update {from} → {to} ({}: {} to fetch)\n",
                u.name,
                u.changed.join(", "),
                ByteSize(u.fetch_bytes)
            ),
            _ => format!("{}: {:?}\n", u.name, u.action),
        };
        Ok((u, Out::new(&line)))
    })
}
