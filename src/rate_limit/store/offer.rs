//! A rate offered as the fleet's: one process's measure of it, or a cut
//! after throttles that measured nothing.

use std::time::Duration;

use tokio::time::Instant;

use crate::rate_limit::learner::{Curve, BETA, PROBE_FITTED};

/// Offers within this long of the standing rate's start are of the same
/// throttle: every process meets it within a round trip or two of the
/// others, and measures the fleet's count over nearly the same period.
/// Their measures are averaged, not the lowest taken: each one's drain is
/// read from a count that reaches it up to 100 ms late, and the lowest of
/// such readings is the most wrong. Cuts within it are ignored: a request
/// in flight when the rate was set, or released before every process had
/// read it, is refused for the same excess.
pub(super) const EPISODE: Duration = Duration::from_millis(250);

/// A rate offered as the fleet's shared rate (see
/// [`RedisStore::publish_rate`](super::RedisStore::publish_rate)).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    pub(super) base: f64,
    pub(super) w_max: f64,
    pub(super) tau: f64,
    pub(super) cut: bool,
}

impl Offer {
    /// A measure: the rate `rate` it set, the `measure` itself (CUBIC's
    /// `W_max`), and the time constant `tau` (seconds) to climb past it.
    pub fn measure(rate: f64, measure: f64, tau: f64) -> Offer {
        Offer {
            base: rate,
            w_max: if measure.is_finite() {
                measure.max(rate)
            } else {
                rate
            },
            tau,
            cut: false,
        }
    }

    /// The standing `rate` cut by β (multiplicative decrease, as AWS's and
    /// CUBIC's), climbing back to it as slowly as after a measure: the
    /// rate was too high, and with many processes every return past the
    /// server's rate costs each of them a refusal or more.
    pub fn cut(rate: f64) -> Offer {
        Offer {
            base: rate * BETA,
            w_max: rate,
            tau: PROBE_FITTED,
            cut: true,
        }
    }

    pub(super) fn is_valid(&self) -> bool {
        self.base.is_finite() && self.base > 0.0 && self.tau.is_finite()
    }

    /// Whether the offer replaces `standing` (a curve, and until when it
    /// stands) at `now`, as the script decides: when none stands, or below
    /// what it has climbed to, except within its episode (where Redis
    /// averages a measure in, and ignores a cut).
    pub(super) fn replaces(&self, standing: Option<(Curve, Instant)>, now: Instant) -> bool {
        match standing {
            None => true,
            Some((_, until)) if until <= now => true,
            Some((c, _)) => {
                now.saturating_duration_since(c.since) >= EPISODE && self.base < c.at(now)
            }
        }
    }

    /// The curve the offer sets at `now`.
    pub(super) fn curve(&self, now: Instant) -> Curve {
        Curve {
            base: self.base,
            w_max: self.w_max,
            tau: self.tau,
            since: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_replaces_a_standing_rate_only_below_its_climb_and_outside_its_episode() {
        let now = Instant::now();
        let standing = Offer::measure(194.0, 200.0, 4.5).curve(now);
        let until = now + Duration::from_secs(30);
        let lower = Offer::measure(150.0, 155.0, 4.5);
        let cut = Offer::cut(194.0);
        assert!((cut.base - 194.0 * BETA).abs() < 1e-9);
        // Within the episode: Redis averages a measure in, ignores a cut.
        let soon = now + Duration::from_millis(100);
        assert!(!lower.replaces(Some((standing, until)), soon));
        assert!(!cut.replaces(Some((standing, until)), soon));
        // After it: below the climbed rate wins, above does not.
        let later = now + Duration::from_secs(1);
        assert!(lower.replaces(Some((standing, until)), later));
        assert!(cut.replaces(Some((standing, until)), later));
        let higher = Offer::measure(250.0, 258.0, 4.5);
        assert!(!higher.replaces(Some((standing, until)), later));
        // Expired, or none: anything.
        assert!(higher.replaces(Some((standing, now)), later));
        assert!(higher.replaces(None, later));
    }
}
