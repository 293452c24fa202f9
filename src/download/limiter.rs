//! `--max-rate`: one cap on the total rate of all connections of a transfer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Caps the total rate of all connections.
pub(crate) struct Limiter {
    pub(crate) rate: u64,
    pub(crate) started: Instant,
    pub(crate) bytes: Mutex<u64>,
}

impl Limiter {
    /// Accounts `n` bytes and sleeps until the total is within the rate.
    pub(crate) fn take(&self, n: usize) {
        let total = {
            let mut b = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
            *b += n as u64;
            *b
        };
        let due = Duration::from_secs_f64(total as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}
