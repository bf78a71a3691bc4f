use std::time::Duration;

use super::Schedule;
use crate::duration::{mul_f64, mul_u64};
use crate::BackoffRng;

/// AWS "decorrelated jitter": `min(max_delay, U(base, prev × 3))`.
///
/// The schedule is its own jitter: each delay is drawn between `base` and
/// three times the previous one, so clients drift apart. Because of that,
/// [`BackoffRetryLayer::decorrelated`](crate::BackoffRetryLayer::decorrelated)
/// sets [`Jitter::None`](crate::Jitter::None).
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::schedule::{Decorrelated, Schedule};
/// let s = Decorrelated::new(Duration::from_millis(100), Duration::from_secs(5));
/// for d in s.delays().seed(1).take(20) {
///     assert!(d >= Duration::from_millis(100) && d <= Duration::from_secs(5));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decorrelated {
    base: Duration,
    max: Duration,
}

impl Decorrelated {
    /// Draw each delay from `[base, 3 × previous]`, never above `max_delay`.
    pub fn new(base: Duration, max_delay: Duration) -> Self {
        Decorrelated {
            base,
            max: max_delay,
        }
    }
}

impl Schedule for Decorrelated {
    fn delay(&self, _retry: u32, prev: Duration, rng: &mut BackoffRng) -> Option<Duration> {
        let low = self.base.min(self.max);
        let high = mul_u64(prev.max(low), 3).min(self.max);
        let span = high.saturating_sub(low);
        // f64 rounding may land a hair above `high`: clamp to it, not only to the cap.
        Some(
            low.saturating_add(mul_f64(span, rng.unit_inclusive()))
                .min(high),
        )
    }
    fn max_delay(&self) -> Duration {
        self.max
    }
}
