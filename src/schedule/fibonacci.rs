use std::time::Duration;

use super::Schedule;
use crate::duration::mul_u64;
use crate::BackoffRng;

/// `base × F(n + 1)` (1, 1, 2, 3, 5, 8, …), capped: grows more gently than
/// doubling.
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::schedule::{Fibonacci, Schedule};
/// let s = Fibonacci::new(Duration::from_secs(1), Duration::from_secs(10));
/// let secs: Vec<u64> = s.delays().take(7).map(|d| d.as_secs()).collect();
/// assert_eq!(secs, [1, 1, 2, 3, 5, 8, 10]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fibonacci {
    base: Duration,
    max: Duration,
}

impl Fibonacci {
    /// Start at `base`, grow along the Fibonacci numbers, never above `max_delay`.
    pub fn new(base: Duration, max_delay: Duration) -> Self {
        Fibonacci {
            base,
            max: max_delay,
        }
    }
}

/// F(n + 1), or `None` once it no longer fits in a `u64` (from n = 93 on).
fn fib(n: u32) -> Option<u64> {
    let (mut a, mut b) = (1u64, 1u64);
    for _ in 0..n {
        let next = a.checked_add(b)?;
        a = b;
        b = next;
    }
    Some(a)
}

impl Schedule for Fibonacci {
    fn delay(&self, retry: u32, _prev: Duration, _rng: &mut BackoffRng) -> Option<Duration> {
        let grown = match fib(retry) {
            Some(f) => mul_u64(self.base, f),
            None if self.base.is_zero() => Duration::ZERO,
            None => Duration::MAX,
        };
        Some(grown.min(self.max))
    }
    fn max_delay(&self) -> Duration {
        self.max
    }
}
