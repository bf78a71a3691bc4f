use std::time::Duration;

use super::Schedule;
use crate::duration::mul_u64;
use crate::BackoffRng;

/// `initial + step × n`, capped: a delay that grows by a fixed step.
///
/// By default `initial = step`, so the first retry waits one step. The AI-API
/// retry article's `linear_backoff` (`step × attempt` with `attempt` from 0) is
/// `.initial(Duration::ZERO)`.
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::schedule::{Linear, Schedule};
/// let s = Linear::new(Duration::from_secs(2), Duration::from_secs(5));
/// let secs: Vec<u64> = s.delays().take(4).map(|d| d.as_secs()).collect();
/// assert_eq!(secs, [2, 4, 5, 5]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    initial: Duration,
    step: Duration,
    max: Duration,
}

impl Linear {
    /// Grow by `step` before each retry, starting at `step`, never above `max_delay`.
    pub fn new(step: Duration, max_delay: Duration) -> Self {
        Linear {
            initial: step,
            step,
            max: max_delay,
        }
    }

    /// The delay before the first retry (default: one `step`).
    pub fn initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }
}

impl Schedule for Linear {
    fn delay(&self, retry: u32, _prev: Duration, _rng: &mut BackoffRng) -> Option<Duration> {
        let grown = mul_u64(self.step, u64::from(retry));
        Some(self.initial.saturating_add(grown).min(self.max))
    }
    fn max_delay(&self) -> Duration {
        self.max
    }
}
