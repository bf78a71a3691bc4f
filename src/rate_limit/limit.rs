//! Limits the user knows ([`Limit`]), paced by a token bucket per key.

use std::time::Duration;

use tokio::time::Instant;

use super::model::Admit;
use super::time::{after_secs, secs_between};
use crate::headers::Unit;

/// A limit the caller knows, given to
/// [`RateLimitAwareLayer::limit`](super::RateLimitAwareLayer::limit): at most
/// `amount` requests (or tokens) per `per`, with bursts of up to `burst`
/// (default: `amount`). Each key gets its own bucket, full at first, refilled
/// continuously at `amount ÷ per`.
///
/// Configured limits bind from a key's first request: no slow-start probe is
/// needed for what they cover. Limits the server states combine with them;
/// the tighter binds.
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::rate_limit::Limit;
/// use tower_backoff::RateLimitAwareLayer;
///
/// // OpenAI's tier: 500 requests and 200,000 tokens a minute.
/// let layer = RateLimitAwareLayer::new()
///     .limit(Limit::requests(500, Duration::from_secs(60)))
///     .limit(Limit::tokens(200_000, Duration::from_secs(60)).burst(20_000));
/// # let _ = layer;
/// ```
///
/// A zero `amount` or `per` makes no sense and is ignored (with a warning
/// when the layer is built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    unit: Unit,
    amount: u64,
    per: Duration,
    burst: Option<u64>,
}

impl Limit {
    /// At most `amount` requests per `per`; each request counts 1.
    pub fn requests(amount: u64, per: Duration) -> Self {
        Limit {
            unit: Unit::Requests,
            amount,
            per,
            burst: None,
        }
    }

    /// At most `amount` tokens per `per`; each request counts its
    /// [`RequestCost`](crate::RequestCost) (0 when absent).
    pub fn tokens(amount: u64, per: Duration) -> Self {
        Limit {
            unit: Unit::Tokens,
            amount,
            per,
            burst: None,
        }
    }

    /// The most that may go at once, after a quiet spell (the bucket's
    /// size). Default: `amount`. At least 1.
    pub fn burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst.max(1));
        self
    }

    /// What the limit counts.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// Refill rate per second; `None` for a limit that makes no sense.
    pub(crate) fn rate(&self) -> Option<f64> {
        let secs = self.per.as_secs_f64();
        (self.amount > 0 && secs > 0.0).then(|| self.amount as f64 / secs)
    }

    /// The amount per period.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn amount(&self) -> u64 {
        self.amount
    }

    /// The period.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn per(&self) -> Duration {
        self.per
    }

    /// The bucket's size: the burst, else the amount (at least 1).
    pub(crate) fn size(&self) -> f64 {
        self.burst.unwrap_or(self.amount).max(1) as f64
    }
}

/// How much later than the exact refill a release goes.
const MARGIN_SECS: f64 = 1e-6;

/// One key's bucket for one [`Limit`]: continuous refill, full at first. A
/// request larger than the bucket waits until the bucket is full, then goes
/// and leaves it in debt, so that no request is refused for its size.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    pub(super) unit: Unit,
    rate: f64,
    size: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// `None` for a limit that makes no sense (zero amount or period).
    pub(super) fn new(limit: &Limit, now: Instant) -> Option<Self> {
        let rate = limit.rate()?;
        let size = limit.size();
        Some(Bucket {
            unit: limit.unit,
            rate,
            size,
            tokens: size,
            at: now,
        })
    }

    fn available(&self, now: Instant) -> f64 {
        (self.tokens + self.rate * secs_between(self.at, now)).min(self.size)
    }

    /// When `need` units will be there (a need above the size waits for a
    /// full bucket). A microsecond late rather than a rounding early: a
    /// server counting the same bucket exactly must have the units too.
    pub(super) fn time_for(&self, now: Instant, need: f64) -> Instant {
        let need = need.min(self.size);
        let have = self.available(now);
        if have >= need {
            now
        } else {
            after_secs(now, (need - have) / self.rate + MARGIN_SECS)
        }
    }

    pub(super) fn check(&self, now: Instant, need: f64) -> Admit {
        Admit::At(self.time_for(now, need)).at(now)
    }

    pub(super) fn take(&mut self, now: Instant, units: f64) {
        self.tokens = self.available(now) - units;
        self.at = now;
    }

    pub(super) fn give_back(&mut self, units: f64) {
        self.tokens = (self.tokens + units).min(self.size);
    }

    /// The rate, when it paces requests (a requests limit).
    pub(super) fn request_rate(&self) -> Option<f64> {
        (!self.unit.counts_tokens()).then_some(self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_go_then_paces_at_its_rate() {
        let now = Instant::now();
        let mut b =
            Bucket::new(&Limit::requests(100, Duration::from_secs(1)).burst(10), now).unwrap();
        for _ in 0..10 {
            assert_eq!(b.check(now, 1.0), Admit::Now);
            b.take(now, 1.0);
        }
        assert_eq!(
            b.check(now, 1.0),
            Admit::At(now + Duration::from_micros(10_001))
        );
        b.give_back(1.0);
        assert_eq!(b.check(now, 1.0), Admit::Now);
    }

    #[test]
    fn a_cost_above_the_bucket_waits_for_a_full_bucket_then_goes_in_debt() {
        let now = Instant::now();
        let mut b = Bucket::new(&Limit::tokens(1_000, Duration::from_secs(1)), now).unwrap();
        b.take(now, 1_000.0);
        assert_eq!(
            b.time_for(now, 5_000.0),
            now + Duration::from_micros(1_000_001)
        );
        let later = now + Duration::from_secs(1);
        b.take(later, 5_000.0);
        assert_eq!(
            b.time_for(later, 1.0),
            later + Duration::from_micros(4_001_001)
        );
    }

    #[test]
    fn nonsense_limits_are_ignored() {
        let now = Instant::now();
        assert!(Bucket::new(&Limit::requests(0, Duration::from_secs(1)), now).is_none());
        assert!(Bucket::new(&Limit::tokens(5, Duration::ZERO), now).is_none());
    }
}
