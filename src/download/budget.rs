//! One connection budget shared by transfers running at once: the files of a multi-file
//! model, several models. Each gets a share by size (largest remainders, at least one), and
//! the rate cap likewise; with more transfers than connections, each waits for a free
//! connection before it starts.

use std::sync::{Condvar, Mutex};

/// Runs `job(i, connections, max_rate)` for each of `sizes` at once, on scoped threads that
/// carry the caller's tracing context, each with its share of `budget` connections and of
/// `max_rate` (bytes per second), never more than `budget` connections in use; the results in
/// the order of `sizes`. A job that panics resumes its panic here.
pub(crate) fn share_out<T: Send>(
    sizes: &[u64],
    budget: usize,
    max_rate: Option<u64>,
    job: impl Fn(usize, usize, Option<u64>) -> T + Sync,
) -> Vec<T> {
    let budget = budget.max(1);
    let shares = shares(sizes, budget);
    let free = Mutex::new(budget);
    let returned = Condvar::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(i, &share)| {
                let (free, returned, job) = (&free, &returned, &job);
                let rate = max_rate.map(|r| (r.saturating_mul(share as u64) / budget as u64).max(1));
                let context = crate::trace::Context::current();
                scope.spawn(move || {
                    let _context = context.enter();
                    take(free, returned, share);
                    let result = job(i, share, rate);
                    give(free, returned, share);
                    result
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
    })
}

/// Waits until `n` connections of the budget are free, and takes them.
fn take(free: &Mutex<usize>, returned: &Condvar, n: usize) {
    let mut left = free.lock().unwrap_or_else(|e| e.into_inner());
    while *left < n {
        left = returned.wait(left).unwrap_or_else(|e| e.into_inner());
    }
    *left -= n;
}

/// Gives `n` connections back to the budget.
fn give(free: &Mutex<usize>, returned: &Condvar, n: usize) {
    *free.lock().unwrap_or_else(|e| e.into_inner()) += n;
    returned.notify_all();
}

/// Each file's connections out of `budget`, by size (largest remainders), at least one each
/// and never more than `budget` in all when there are no more files than connections; with
/// more files than connections, one each (files then wait their turn for a connection).
fn shares(sizes: &[u64], budget: usize) -> Vec<usize> {
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
