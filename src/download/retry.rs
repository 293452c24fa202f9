//! The retry policy in motion: how long to wait after a transient failure, and when to give
//! up on a source.

use std::time::Duration;

use crate::config::RetryPolicy;
use crate::error::SourceError;

/// Failures in a row of one range of one source.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self { policy, failures: 0 }
    }

    /// Records a transient failure, `error`. `progressed`: bytes arrived since the last one (the
    /// count starts again). Returns how long to wait before the next try, or `None` when the
    /// policy gives up: `base`, `2 × base`, `4 × base`, ..., or what the server asked
    /// (`Retry-After`), never more than `max_delay`. A host none of whose addresses accepted a
    /// connection within the connect timeout (one black-holed, the others refusing or
    /// black-holed too) is tried twice, not `attempts` times: each try costs that timeout.
    pub(crate) fn failed(&mut self, error: &SourceError, progressed: bool) -> Option<Duration> {
        let retry_after = match error {
            SourceError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        };
        self.failures = if progressed { 1 } else { self.failures + 1 };
        if self.failures >= self.policy.attempts || (self.failures >= 2 && crate::sources::unreachable(error))
        {
            return None;
        }
        self.delay(retry_after)
    }

    fn delay(&self, retry_after: Option<Duration>) -> Option<Duration> {
        let backoff = self.policy.base.saturating_mul(1 << (self.failures - 1).min(16));
        Some(retry_after.unwrap_or(backoff).min(self.policy.max_delay))
    }

    /// Tries so far in a row.
    pub(crate) fn tries(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_honour_retry_after_and_give_up() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(RetryPolicy {
            attempts: 4,
            base: ms(100),
            max_delay: ms(250),
            ..Default::default()
        });
        let plain = SourceError::transient("x");
        let asked = |d| SourceError::Transient { reason: "x".into(), retry_after: Some(d), cause: None };
        assert_eq!(b.failed(&plain, false), Some(ms(100)));
        assert_eq!(b.failed(&plain, false), Some(ms(200)));
        assert_eq!(b.failed(&asked(ms(5)), false), Some(ms(5)));
        assert_eq!(b.failed(&plain, false), None, "the fourth try in a row gives up");
        assert_eq!(b.tries(), 4);
        assert_eq!(
            b.failed(&asked(Duration::from_secs(60)), true),
            Some(ms(250)),
            "progress starts over, capped"
        );
    }
}
