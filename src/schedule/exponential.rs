use std::time::Duration;

use super::Schedule;
use crate::duration::{mul_f64, mul_pow2};
use crate::BackoffRng;

/// `base × factor^n`, capped at `max_delay`: the classic exponential backoff
/// (factor 2 by default).
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::schedule::{Exponential, Schedule};
/// let s = Exponential::new(Duration::from_millis(100), Duration::from_secs(1));
/// let ms: Vec<u128> = s.delays().take(6).map(|d| d.as_millis()).collect();
/// assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponential {
    base: Duration,
    factor: f64,
    max: Duration,
}

impl Exponential {
    /// Start at `base`, double before each retry, never above `max_delay`.
    pub fn new(base: Duration, max_delay: Duration) -> Self {
        Exponential {
            base,
            factor: 2.0,
            max: max_delay,
        }
    }

    /// The growth factor (default 2). A factor below 1, or NaN, is clamped to
    /// 1 (a constant schedule) so the schedule never shrinks; `f64::MAX` or
    /// infinity reach the cap at the second retry.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_nan() {
            1.0
        } else {
            factor.max(1.0)
        };
        self
    }
}

impl Schedule for Exponential {
    fn delay(&self, retry: u32, _prev: Duration, _rng: &mut BackoffRng) -> Option<Duration> {
        let grown = if self.factor == 2.0 {
            mul_pow2(self.base, retry)
        } else if retry == 0 {
            self.base
        } else {
            // powf saturates to +inf, which mul_f64 turns into Duration::MAX.
            // With a factor ≥ 1 the delay never drops below base, which f64
            // rounding alone could do (10^9 s + 1 ns × 1.0 = 10^9 s).
            mul_f64(self.base, self.factor.powf(f64::from(retry))).max(self.base)
        };
        Some(grown.min(self.max))
    }
    fn max_delay(&self) -> Duration {
        self.max
    }
}
