//! A multi-file model (split weights, sidecars) ensured as one unit: every file fetched in
//! parallel by the resolver's own per-file path (lock, resume, verification, rename), under
//! one connection budget — what a single file of the model's total size would use — shared
//! by size; the model's path is returned only once every file is verified. A file that fails
//! does not stop the others: what verified stays for the next run.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use super::resolver::auto_connections;
use super::Resolver;
use crate::catalog::ModelEntry;
use crate::error::Result;

impl Resolver<'_> {
    /// Returns the path of the file an engine opens (the weights, their first shard) once
    /// every file of `entry`'s model is verified, fetching those that are not. A single-file
    /// model is [`Resolver::ensure`]. On failure, the error of the first file (in the
    /// catalog's order) that could not be ensured; the files that were verified stay.
    /// `offline_endpoint` (offline mode: the Hugging Face endpoint) only changes the error
    /// when no source has a file: it names that file's pinned URL.
    pub fn ensure_model(&self, entry: &ModelEntry, offline_endpoint: Option<&url::Url>) -> Result<PathBuf> {
        let offline_url = |e: &ModelEntry| offline_endpoint.map(|endpoint| e.hf_url(endpoint).to_string());
        if !entry.is_multi_file() {
            return self.ensure(entry, offline_url(entry).as_deref());
        }
        let unit = self.dir.unit(entry);
        if unit.is_verified() {
            crate::trace::emit!(TRACE, file = %entry.hf_filename, files = unit.parts().len(), "already verified");
            return Ok(unit.model_path());
        }
        let todo: Vec<&ModelEntry> =
            unit.parts().iter().filter(|(_, files)| !files.is_verified()).map(|(e, _)| e).collect();
        let total: u64 = todo.iter().map(|e| e.size_bytes).sum();
        let budget = self.connections.unwrap_or_else(|| auto_connections(total)).max(1);
        let shares = shares(&todo.iter().map(|e| e.size_bytes).collect::<Vec<_>>(), budget);
        crate::trace::emit!(
            DEBUG,
            model = %entry.display_name(),
            files = todo.len(),
            bytes = total,
            connections = budget,
            "fetching the files of a multi-file model"
        );
        let free = Mutex::new(budget);
        let returned = Condvar::new();
        let results: Vec<(usize, Result<PathBuf>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .iter()
                .zip(&shares)
                .enumerate()
                .map(|(i, (file, &share))| {
                    let (free, returned) = (&free, &returned);
                    let mut resolver = *self;
                    resolver.connections = Some(share);
                    resolver.max_rate =
                        self.max_rate.map(|r| (r.saturating_mul(share as u64) / budget as u64).max(1));
                    let context = crate::trace::Context::current();
                    scope.spawn(move || {
                        let _context = context.enter();
                        take(free, returned, share);
                        let result = resolver.ensure(file, offline_url(file).as_deref());
                        give(free, returned, share);
                        (i, result)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        let mut first_error = None;
        for (_, result) in results {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if unit.parts().iter().all(|(_, f)| f.status() == crate::store::Status::Downloaded) => {
                Ok(unit.model_path())
            }
            None => Err(unit.first().not_downloaded(entry.display_name())),
        }
    }
}

/// Waits until `n` connections of the budget are free, and takes them.
pub(crate) fn take(free: &Mutex<usize>, returned: &Condvar, n: usize) {
    let mut left = free.lock().unwrap_or_else(|e| e.into_inner());
    while *left < n {
        left = returned.wait(left).unwrap_or_else(|e| e.into_inner());
    }
    *left -= n;
}

/// Gives `n` connections back to the budget.
pub(crate) fn give(free: &Mutex<usize>, returned: &Condvar, n: usize) {
    *free.lock().unwrap_or_else(|e| e.into_inner()) += n;
    returned.notify_all();
}

/// Each file's connections out of `budget`, by size (largest remainders), at least one each
/// and never more than `budget` in all when there are no more files than connections; with
/// more files than connections, one each (files then wait their turn for a connection).
pub(crate) fn shares(sizes: &[u64], budget: usize) -> Vec<usize> {
    let n = sizes.len();
    if n == 0 {
        return Vec::new();
    }
    if budget <= n {
        return vec![1; n];
    }
    let total: u128 = sizes.iter().map(|&s| u128::from(s.max(1))).sum();
    let spare = (budget - n) as u128;
    let exact: Vec<u128> = sizes.iter().map(|&s| u128::from(s.max(1)) * spare).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| 1 + (e / total) as usize).collect();
    let mut left = budget - out.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(exact[i] % total));
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn the_budget_is_shared_by_size_and_never_exceeded() {
        assert_eq!(shares(&[300, 300, 300, 100], 10), vec![3, 3, 3, 1]);
        assert_eq!(shares(&[1000, 1], 4), vec![3, 1]);
        assert_eq!(shares(&[5, 5, 5], 2), vec![1, 1, 1]);
        assert_eq!(shares(&[7], 5), vec![5]);
        for budget in 1..40 {
            let s = shares(&[123_456, 99, 7_000_000, 1], budget);
            assert!(s.iter().all(|&c| c >= 1));
            if budget >= 4 {
                assert_eq!(s.iter().sum::<usize>(), budget, "{budget}: {s:?}");
            }
        }
    }
}
