//! A process's lease on a shared pace: units reserved in Redis, each dated
//! (the earliest instant it may go), spent locally without a round trip.
//!
//! A unit not spent soon after its date is dropped rather than kept for a
//! burst later: the fleet's reservations were spread in time for a reason.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::duration::{from_secs_f64, mul_f64, mul_u64};
use crate::rate_limit::time::{after, before};

/// How late after its date a leased unit may still be spent.
const LATE: Duration = Duration::from_millis(50);

/// Units per second and how many may go at once: a pace to reserve at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Units per second (must be finite and above zero).
    pub rate: f64,
    /// Units that may go at once after a quiet period (at least 1).
    pub burst: f64,
}

impl Pace {
    /// Whether the pace can be reserved at: a finite rate above zero.
    pub(super) fn is_valid(&self) -> bool {
        self.rate.is_finite() && self.rate > 0.0 && self.burst.is_finite()
    }

    /// Microseconds per unit, at least 1.
    pub(super) fn interval_us(&self) -> u64 {
        // `as` saturates for floats: huge intervals become u64::MAX.
        ((1e6 / self.rate).ceil() as u64).max(1)
    }

    /// GCRA's burst tolerance τ = (burst − 1) × interval, in µs.
    pub(super) fn tau_us(&self) -> u64 {
        let extra = (self.burst.max(1.0) - 1.0).floor() as u64;
        extra.saturating_mul(self.interval_us())
    }

    /// The largest batch worth reserving: 50 ms of the rate (each unit is
    /// dated, so a batch never lets a process go faster than the pace),
    /// 1 to 64 units.
    pub(super) fn target_batch(&self) -> u64 {
        ((self.rate * 0.05).floor() as u64).clamp(1, 64)
    }
}

/// Units `k = 0..count` of one reservation, unit `k` dated
/// `max(floor, start + k × interval)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    pub(super) floor: Instant,
    pub(super) start: Instant,
    pub(super) interval: Duration,
    pub(super) count: u64,
}

impl Segment {
    fn at(&self, k: u64) -> Instant {
        let t = self
            .start
            .checked_add(mul_u64(self.interval, k))
            .unwrap_or(self.floor);
        t.max(self.floor)
    }

    /// Drops the first `k` units.
    fn skip(&mut self, k: u64) {
        let k = k.min(self.count);
        self.start = self
            .start
            .checked_add(mul_u64(self.interval, k))
            .unwrap_or(self.start);
        self.count -= k;
    }

    /// Units dated before `cutoff`.
    fn before(&self, cutoff: Instant) -> u64 {
        if self.floor >= cutoff || self.count == 0 {
            return 0;
        }
        let span = cutoff.saturating_duration_since(self.start);
        let step = self.interval.as_nanos().max(1);
        let n = span.as_nanos().div_ceil(step);
        u64::try_from(n).unwrap_or(u64::MAX).min(self.count)
    }
}

/// What spending from a lease gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// Spent.
    Go,
    /// The units are leased but dated later.
    At(Instant),
    /// This many units are missing.
    Short(u64),
}

/// One pace's lease.
#[derive(Debug)]
pub(super) struct Lease {
    segments: VecDeque<Segment>,
    /// Since when a refill has been in flight.
    pub(super) refilling: Option<Instant>,
    /// Batch size to ask for next: halves when units go to waste, doubles
    /// (up to the pace's target) when the lease runs dry.
    batch: u64,
    /// While Redis does not answer: the theoretical arrival time of this
    /// process's next unit at its share of the pace.
    local_tat: Option<Instant>,
}

impl Lease {
    pub(super) fn new() -> Self {
        Lease {
            segments: VecDeque::new(),
            refilling: None,
            batch: u64::MAX,
            local_tat: None,
        }
    }

    /// While Redis does not answer: spends `cost` units at `share` of
    /// `pace` (its rate and burst alike, a burst of one at least), paced on
    /// this process's clock by GCRA. `None`: they may go now; else when.
    pub(super) fn take_local(
        &mut self,
        cost: u64,
        now: Instant,
        pace: &Pace,
        share: f64,
    ) -> Option<Instant> {
        let rate = pace.rate * share;
        if !(rate.is_finite() && rate > 0.0) || cost == 0 {
            return None;
        }
        let interval = from_secs_f64(1.0 / rate);
        let extra = (pace.burst * share - 1.0).max(0.0).floor();
        let tau = mul_f64(interval, extra);
        let tat = self.local_tat.map_or(now, |t| t.max(now));
        let at = before(tat, tau);
        if at > now {
            return Some(at);
        }
        self.local_tat = Some(after(tat, mul_u64(interval, cost)));
        None
    }

    /// Units leased and not yet spent or dropped.
    pub(super) fn remaining(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }

    /// How many units to reserve next for a request of `cost` at `pace`.
    pub(super) fn batch(&self, pace: &Pace, cost: u64) -> u64 {
        self.batch.min(pace.target_batch()).max(cost).max(1)
    }

    pub(super) fn add(&mut self, segment: Segment) {
        if segment.count > 0 {
            self.segments.push_back(segment);
        }
    }

    /// Spends `cost` units if the last of them is dated `now` or earlier.
    pub(super) fn take(&mut self, cost: u64, now: Instant, pace: &Pace) -> Take {
        self.expire(now, pace);
        if cost == 0 {
            return Take::Go;
        }
        let mut need = cost;
        let mut last = None;
        for seg in &self.segments {
            if seg.count >= need {
                last = Some(seg.at(need - 1));
                break;
            }
            need -= seg.count;
        }
        let Some(last) = last else {
            self.batch = self.batch.saturating_mul(2);
            return Take::Short(need);
        };
        if last > now {
            return Take::At(last);
        }
        let mut left = cost;
        while left > 0 {
            let Some(seg) = self.segments.front_mut() else {
                break;
            };
            let k = left.min(seg.count);
            seg.skip(k);
            left -= k;
            if seg.count == 0 {
                self.segments.pop_front();
            }
        }
        Take::Go
    }

    /// Drops units dated more than [`LATE`] ago.
    fn expire(&mut self, now: Instant, pace: &Pace) {
        let Some(cutoff) = now.checked_sub(LATE) else {
            return;
        };
        let mut dropped = 0;
        while let Some(seg) = self.segments.front_mut() {
            let k = seg.before(cutoff);
            dropped += k;
            seg.skip(k);
            if seg.count > 0 {
                break;
            }
            self.segments.pop_front();
        }
        if dropped > 0 {
            self.batch = (self.batch.min(pace.target_batch()) / 2).max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: Pace = Pace {
        rate: 100.0,
        burst: 10.0,
    };

    fn seg(now: Instant, count: u64) -> Segment {
        Segment {
            floor: now,
            start: now - Duration::from_millis(20),
            interval: Duration::from_millis(10),
            count,
        }
    }

    #[test]
    fn pace_derives_gcra_parameters_and_batches() {
        assert_eq!(PACE.interval_us(), 10_000);
        assert_eq!(PACE.tau_us(), 90_000);
        assert_eq!(PACE.target_batch(), 5);
        assert_eq!(
            Pace {
                rate: 1e6,
                burst: 1.0
            }
            .target_batch(),
            64
        );
        let slow = Pace {
            rate: 0.5,
            burst: 1.0,
        };
        assert_eq!(
            (slow.interval_us(), slow.tau_us(), slow.target_batch()),
            (2_000_000, 0, 1)
        );
        assert!(!Pace {
            rate: f64::NAN,
            burst: 1.0
        }
        .is_valid());
    }

    #[tokio::test(start_paused = true)]
    async fn spends_dated_units_in_order() {
        let now = Instant::now();
        let mut l = Lease::new();
        assert_eq!(l.take(1, now, &PACE), Take::Short(1));
        l.add(seg(now, 5));
        // Units 0..=2 are dated `now` (the floor), 3 and 4 later.
        assert_eq!(l.take(3, now, &PACE), Take::Go);
        assert_eq!(
            l.take(1, now, &PACE),
            Take::At(now + Duration::from_millis(10))
        );
        assert_eq!(l.take(3, now, &PACE), Take::Short(1));
        assert_eq!(l.remaining(), 2);
        let later = now + Duration::from_millis(20);
        assert_eq!(l.take(2, later, &PACE), Take::Go);
        assert_eq!(l.remaining(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn drops_units_left_unspent_and_asks_for_less() {
        let now = Instant::now();
        let mut l = Lease::new();
        assert_eq!(l.batch(&PACE, 1), 5);
        l.add(seg(now, 5));
        let late = now + Duration::from_millis(65);
        // Dated now, now, now, +10, +20: all but the last are past
        // `late − 50 ms`.
        assert_eq!(l.take(1, late, &PACE), Take::Go);
        assert_eq!(l.remaining(), 0);
        assert_eq!(l.batch(&PACE, 1), 2);
        // A token-sized request still asks for what it needs.
        assert_eq!(l.batch(&PACE, 40), 40);
    }

    #[test]
    fn without_redis_a_process_keeps_to_its_share_of_the_pace() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let pace = Pace {
            rate: 200.0,
            burst: 20.0,
        };
        let mut lease = Lease::new();
        // A quarter: 50/s, a burst of 5.
        for _ in 0..5 {
            assert_eq!(lease.take_local(1, t0, &pace, 0.25), None);
        }
        assert_eq!(lease.take_local(1, t0, &pace, 0.25), Some(ms(20)));
        assert_eq!(lease.take_local(1, ms(20), &pace, 0.25), None);
        assert_eq!(lease.take_local(1, ms(20), &pace, 0.25), Some(ms(40)));
        // Two units at once take two slots.
        assert_eq!(lease.take_local(2, ms(40), &pace, 0.25), None);
        assert_eq!(lease.take_local(1, ms(40), &pace, 0.25), Some(ms(80)));
        // After a quiet second the burst is back, and no more.
        let later = ms(1100);
        let gone = (0..10)
            .take_while(|_| lease.take_local(1, later, &pace, 0.25).is_none())
            .count();
        assert_eq!(gone, 5);
        // No pace to keep to: nothing waits.
        let none = Pace {
            rate: f64::NAN,
            burst: 1.0,
        };
        assert_eq!(lease.take_local(1, later, &none, 0.25), None);
    }
}
