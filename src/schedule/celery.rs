use std::time::Duration;

use super::Schedule;
use crate::BackoffRng;

/// Celery's `get_exponential_backoff_interval(factor, retries, maximum,
/// full_jitter)`: `min(maximum, factor × 2^retries)` whole seconds, and with
/// full jitter a uniform whole number of seconds in `[0, countdown]`.
///
/// Celery's task defaults are `factor = 1`, `maximum = 600` and
/// `retry_jitter = True`; the function's own default is no jitter, as here.
/// With full jitter on, give the layer [`Jitter::None`](crate::Jitter::None).
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::schedule::{Celery, Schedule};
/// let secs: Vec<u64> = Celery::new(1, 600).delays().take(12).map(|d| d.as_secs()).collect();
/// assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Celery {
    factor: u64,
    maximum: u64,
    full_jitter: bool,
}

impl Celery {
    /// `factor` and `maximum` in whole seconds, as Celery takes them.
    pub fn new(factor_secs: u64, maximum_secs: u64) -> Self {
        Celery {
            factor: factor_secs,
            maximum: maximum_secs,
            full_jitter: false,
        }
    }

    /// Draw the countdown uniformly from `[0, countdown]` whole seconds (default off).
    pub fn full_jitter(mut self, on: bool) -> Self {
        self.full_jitter = on;
        self
    }

    fn countdown(&self, retries: u32) -> u64 {
        let power = 1u64.checked_shl(retries).filter(|_| retries < 64);
        let grown = match power {
            Some(p) => self.factor.saturating_mul(p),
            None if self.factor == 0 => 0,
            None => u64::MAX,
        };
        grown.min(self.maximum)
    }
}

impl Schedule for Celery {
    fn delay(&self, retry: u32, _prev: Duration, rng: &mut BackoffRng) -> Option<Duration> {
        let countdown = self.countdown(retry);
        let secs = if self.full_jitter {
            rng.below_inclusive(countdown)
        } else {
            countdown
        };
        Some(Duration::from_secs(secs))
    }
    fn max_delay(&self) -> Duration {
        Duration::from_secs(self.maximum)
    }
}
