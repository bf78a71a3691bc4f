//! Jitter: spreading delays so that clients which failed together do not
//! retry together.

use std::time::Duration;

use crate::duration::mul_f64;
use crate::BackoffRng;

/// How a schedule's delay is randomised before the retry waits.
///
/// Jitter is applied to the delay *after* the schedule has capped it, and the
/// result is clamped to the cap again: at the cap clients still spread out
/// (tower's `ExponentialBackoff` loses its jitter there), and jitter never
/// pushes a delay above the cap (backon can reach about twice the cap).
///
/// The default used by [`BackoffRetryLayer`](crate::BackoffRetryLayer) is
/// [`Jitter::Full`].
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::{BackoffRng, Jitter};
///
/// let mut rng = BackoffRng::seeded(1);
/// let cap = Duration::from_secs(60);
/// let d = Jitter::Proportional { low: 0.5, high: 1.5 }.apply(Duration::from_secs(4), cap, &mut rng);
/// assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    /// No randomisation: the schedule's delay as it is.
    None,
    /// Uniform in `[0, d]` ("full jitter"); mean `d/2`.
    #[default]
    Full,
    /// `d/2 + U(0, d/2)` ("equal jitter"); mean `3d/4`, never below `d/2`.
    Equal,
    /// `d × U(low, high)`: the AI-API retry article's client uses `0.5..1.5`,
    /// gRPC `0.8..1.2`.
    ///
    /// A NaN bound counts as `1.0`, a negative one as `0.0`, and the bounds
    /// are swapped if given in the wrong order.
    Proportional {
        /// Lowest factor.
        low: f64,
        /// Highest factor.
        high: f64,
    },
    /// `d + U(0, max)`: the `2^attempt + U(0, 1)` seconds of the common Python
    /// retry loop for AI APIs.
    Additive(Duration),
}

impl Jitter {
    /// gRPC's jitter (A6 / connection backoff): `d × U(0.8, 1.2)`.
    pub const GRPC: Jitter = Jitter::Proportional {
        low: 0.8,
        high: 1.2,
    };

    /// Randomise `delay`, then clamp the result to `cap`.
    pub fn apply(&self, delay: Duration, cap: Duration, rng: &mut BackoffRng) -> Duration {
        let delay = delay.min(cap);
        let jittered = match *self {
            Jitter::None => delay,
            Jitter::Full => unit_share(delay, rng),
            Jitter::Equal => {
                let half = delay / 2;
                half.saturating_add(unit_share(delay - half, rng))
            }
            Jitter::Proportional { low, high } => {
                let (low, high) = proportional_bounds(low, high);
                // `low + (high − low) × u` can round above `high` (11.5 + 65.2 × 1 does).
                mul_f64(delay, (low + (high - low) * rng.unit_inclusive()).min(high))
            }
            Jitter::Additive(max) => delay.saturating_add(unit_share(max, rng)),
        };
        jittered.min(cap)
    }

    /// The interval `[low, high]` that [`apply`](Self::apply) draws from for `delay`
    /// (before clamping to a cap).
    pub fn bounds(&self, delay: Duration) -> (Duration, Duration) {
        match *self {
            Jitter::None => (delay, delay),
            Jitter::Full => (Duration::ZERO, delay),
            Jitter::Equal => (delay / 2, delay),
            Jitter::Proportional { low, high } => {
                let (low, high) = proportional_bounds(low, high);
                (mul_f64(delay, low), mul_f64(delay, high))
            }
            Jitter::Additive(max) => (delay, delay.saturating_add(max)),
        }
    }

    /// The wait before a retry when the server asked for at least `hint`:
    /// never shorter than `hint`, and spread *above* it, so that clients
    /// released by the same whole-second `Retry-After` do not return in the
    /// same instant (they did when the wait was `max(jittered, hint)`: every
    /// short jittered delay became exactly the hint).
    ///
    /// The jittered `delay` stands if it is already longer than the hint.
    /// Otherwise the wait is `hint + U(0, w)`, where `w` is the width this
    /// jitter gives a delay of `max(delay, hint / 2)` (full jitter: that
    /// delay; `Additive(m)`: `m`; `None`: zero), limited to `cap − hint`
    /// so that the spread never passes the cap.
    pub(crate) fn above_hint(
        &self,
        delay: Duration,
        hint: Duration,
        cap: Duration,
        rng: &mut BackoffRng,
    ) -> Duration {
        let jittered = self.apply(delay, cap, rng);
        if jittered > hint {
            return jittered;
        }
        let (low, high) = self.bounds(delay.min(cap).max(hint / 2));
        let width = high.saturating_sub(low).min(cap.saturating_sub(hint));
        hint.saturating_add(unit_share(width, rng))
    }
}

/// `d × U(0, 1)`, never above `d`: `Duration → f64` rounds to nearest, so
/// `d × 1.0` can come back a little larger than `d`.
fn unit_share(d: Duration, rng: &mut BackoffRng) -> Duration {
    mul_f64(d, rng.unit_inclusive()).min(d)
}

fn proportional_bounds(low: f64, high: f64) -> (f64, f64) {
    let clean = |f: f64| {
        if f.is_nan() {
            1.0
        } else {
            f.clamp(0.0, f64::MAX)
        }
    };
    let (low, high) = (clean(low), clean(high));
    if low <= high {
        (low, high)
    } else {
        (high, low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_hint_waits_are_spread_above_it_and_below_the_cap() {
        let second = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        let mut rng = BackoffRng::seeded(7);
        let waits: Vec<Duration> = (0..1000)
            .map(|_| Jitter::Full.above_hint(Duration::from_millis(100), second, cap, &mut rng))
            .collect();
        assert!(waits.iter().all(|w| *w >= second && *w <= second * 3 / 2));
        let spread = *waits.iter().max().unwrap() - *waits.iter().min().unwrap();
        assert!(spread > Duration::from_millis(400), "{spread:?}");

        // A cap just above the hint bounds the spread.
        let tight = Duration::from_millis(1200);
        for _ in 0..1000 {
            let w = Jitter::Full.above_hint(Duration::from_millis(100), second, tight, &mut rng);
            assert!(w >= second && w <= tight, "{w:?}");
        }
        // No jitter: exactly the hint, or the schedule's delay if longer.
        assert_eq!(
            Jitter::None.above_hint(Duration::from_millis(100), second, cap, &mut rng),
            second
        );
        assert_eq!(
            Jitter::None.above_hint(second * 3, second, cap, &mut rng),
            second * 3
        );
        // Additive jitter (the Python AI-API retry loop's): hint + U(0, max).
        let w = Jitter::Additive(second).above_hint(Duration::ZERO, second * 4, cap, &mut rng);
        assert!(w >= second * 4 && w <= second * 5, "{w:?}");
        // A hint above the cap (allowed by max_retry_after): the hint, no spread.
        assert_eq!(
            Jitter::Full.above_hint(second, cap * 2, cap, &mut rng),
            cap * 2
        );
    }

    const DRAWS: u32 = 100_000;

    fn mean_secs(jitter: Jitter, d: Duration) -> f64 {
        let mut rng = BackoffRng::seeded(42);
        let cap = Duration::MAX;
        (0..DRAWS)
            .map(|_| jitter.apply(d, cap, &mut rng).as_secs_f64())
            .sum::<f64>()
            / f64::from(DRAWS)
    }

    fn assert_within_2pct(actual: f64, expected: f64) {
        let err = (actual - expected).abs() / expected;
        assert!(
            err < 0.02,
            "mean {actual} vs expected {expected} ({:.2} %)",
            err * 100.0
        );
    }

    #[test]
    fn full_jitter_mean_is_half() {
        assert_within_2pct(mean_secs(Jitter::Full, Duration::from_secs(10)), 5.0);
    }

    #[test]
    fn equal_jitter_mean_is_three_quarters() {
        assert_within_2pct(mean_secs(Jitter::Equal, Duration::from_secs(10)), 7.5);
    }

    #[test]
    fn proportional_half_to_one_and_a_half_mean_is_d() {
        let j = Jitter::Proportional {
            low: 0.5,
            high: 1.5,
        };
        assert_within_2pct(mean_secs(j, Duration::from_secs(10)), 10.0);
    }

    #[test]
    fn additive_mean_is_d_plus_half_max() {
        let j = Jitter::Additive(Duration::from_secs(1));
        assert_within_2pct(mean_secs(j, Duration::from_secs(4)), 4.5);
    }

    #[test]
    fn jitter_at_the_cap_still_spreads() {
        // tower's ExponentialBackoff pitfall: at the cap every client sleeps exactly max.
        let mut rng = BackoffRng::seeded(3);
        let cap = Duration::from_secs(60);
        let draws: Vec<_> = (0..100)
            .map(|_| Jitter::Full.apply(cap, cap, &mut rng))
            .collect();
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert!(
            distinct.len() > 90,
            "full jitter at the cap collapsed to {} values",
            distinct.len()
        );
    }

    #[test]
    fn jitter_never_overshoots_the_cap() {
        // backon / tokio-retry2 pitfall: jitter added after the cap check.
        let mut rng = BackoffRng::seeded(4);
        let cap = Duration::from_secs(60);
        for j in [
            Jitter::Proportional {
                low: 0.5,
                high: 1.5,
            },
            Jitter::Additive(Duration::from_secs(30)),
            Jitter::Proportional {
                low: 1.0,
                high: f64::MAX,
            },
        ] {
            for _ in 0..10_000 {
                assert!(j.apply(Duration::from_secs(59), cap, &mut rng) <= cap);
                assert!(j.apply(Duration::MAX, cap, &mut rng) <= cap);
            }
        }
    }

    #[test]
    fn hostile_proportional_bounds_are_cleaned() {
        let mut rng = BackoffRng::seeded(5);
        let d = Duration::from_secs(2);
        let j = Jitter::Proportional {
            low: f64::NAN,
            high: -1.0,
        };
        // NaN → 1.0, -1 → 0.0, swapped → [0, 1].
        assert_eq!(j.bounds(d), (Duration::ZERO, d));
        for _ in 0..1000 {
            assert!(j.apply(d, Duration::MAX, &mut rng) <= d);
        }
    }
}
