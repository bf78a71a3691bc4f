//! The random source behind jitter and randomised schedules.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A small, fast, seedable random number generator.
///
/// Every random choice the crate makes (jitter, decorrelated and slotted
/// schedules) draws from a `BackoffRng`, so a run can be reproduced by seeding
/// it with [`BackoffRng::seeded`]. It wraps a non-cryptographic generator:
/// backoff needs spread, not secrecy.
///
/// ```
/// use tower_backoff::BackoffRng;
/// let mut a = BackoffRng::seeded(7);
/// let mut b = BackoffRng::seeded(7);
/// assert_eq!(a.next_f64(), b.next_f64());
/// ```
#[derive(Debug, Clone)]
pub struct BackoffRng(SmallRng);

impl BackoffRng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn seeded(seed: u64) -> Self {
        BackoffRng(SmallRng::seed_from_u64(seed))
    }

    /// A generator seeded from the operating system's entropy.
    pub fn from_entropy() -> Self {
        BackoffRng(SmallRng::from_os_rng())
    }

    /// A uniform draw from `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// A uniform draw from `[0, 1]` (both ends included).
    pub(crate) fn unit_inclusive(&mut self) -> f64 {
        // 53 random bits mapped onto [0, 1] with both ends reachable.
        const MAX: u64 = (1 << 53) - 1;
        (self.0.random::<u64>() >> 11) as f64 / MAX as f64
    }

    /// A uniform integer in `0..=max`.
    pub fn below_inclusive(&mut self, max: u64) -> u64 {
        self.0.random_range(0..=max)
    }

    /// A raw 64-bit draw, used to derive independent per-request generators.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.random::<u64>()
    }
}

impl Default for BackoffRng {
    fn default() -> Self {
        Self::from_entropy()
    }
}

/// SplitMix64 finaliser: spreads consecutive integers over the whole `u64`
/// range, so per-request seeds `base ^ counter` give unrelated streams.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
