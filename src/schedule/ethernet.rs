use std::time::Duration;

use super::Schedule;
use crate::duration::mul_u64;
use crate::BackoffRng;

/// Ethernet's truncated binary exponential backoff (IEEE 802.3): after the
/// `c`-th collision wait a random whole number of slots in
/// `[0, 2^min(c, 10) − 1]`; give up at the 16th collision.
///
/// Retry `n` follows collision `c = n + 1`. The schedule is random by itself,
/// so use it with [`Jitter::None`](crate::Jitter::None).
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::schedule::{Ethernet, Schedule};
/// let slot = Duration::from_nanos(51_200); // 10 Mb/s Ethernet slot time
/// let waits: Vec<_> = Ethernet::new(slot).delays().seed(3).collect();
/// assert_eq!(waits.len(), 15); // the 16th collision aborts
/// assert!(waits.iter().all(|d| *d <= slot * 1023));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet {
    slot: Duration,
    max_exponent: u32,
    attempt_limit: u32,
}

impl Ethernet {
    /// 802.3 defaults: exponent capped at 10, give up at the 16th collision.
    pub fn new(slot: Duration) -> Self {
        Ethernet {
            slot,
            max_exponent: 10,
            attempt_limit: 16,
        }
    }

    /// Cap the exponent (default 10); values above 63 are treated as 63.
    pub fn max_exponent(mut self, exponent: u32) -> Self {
        self.max_exponent = exponent.min(63);
        self
    }

    /// Give up at this collision (default 16: at most 15 retries).
    pub fn attempt_limit(mut self, collisions: u32) -> Self {
        self.attempt_limit = collisions;
        self
    }

    fn max_slots(&self, collision: u32) -> u64 {
        let exponent = collision.min(self.max_exponent).min(63);
        (1u64 << exponent) - 1
    }
}

impl Schedule for Ethernet {
    fn delay(&self, retry: u32, _prev: Duration, rng: &mut BackoffRng) -> Option<Duration> {
        let collision = retry.saturating_add(1);
        if collision >= self.attempt_limit {
            return None;
        }
        let slots = rng.below_inclusive(self.max_slots(collision));
        Some(mul_u64(self.slot, slots))
    }
    fn max_delay(&self) -> Duration {
        mul_u64(self.slot, self.max_slots(self.max_exponent))
    }
}
