//! What the server's RateLimit headers say, turned into an estimate of how
//! many requests it will still take, and when it takes more.
//!
//! The estimate is a token count. A response stating `remaining = r` sets it
//! to `r` minus the other requests in flight: they may not have reached the
//! server yet, so they are counted against `r` (counting them twice only
//! makes the gate slightly early to wait, never late). Requests released
//! together (with the same statements known) form a batch whose replies may
//! come in any order; the batch's smallest `r` is the latest state, and as
//! its replies arrive, fewer requests are left to count against it. Each
//! release takes one token.
//!
//! When the tokens come back depends on the kind of limiter, which the
//! headers do not say:
//!
//! * **Windowed** (the draft's reading, and the default): nothing comes back
//!   until the announced reset; from the reset on, tokens refill at the
//!   policy's rate `q / w`, spreading the new window instead of bursting into
//!   it. Without a policy rate the estimate expires at the reset, and the key
//!   is probed afresh.
//! * **Continuous** (token bucket, GCRA, sliding window): tokens refill at
//!   `q / w` all the time, up to the largest `remaining` ever seen. The gate
//!   switches to this reading only on evidence: the server accepted more
//!   requests than the `remaining` it stated, before the reset it stated —
//!   which a windowed limiter never does. A throttle switches back.

use std::time::Duration;

use tokio::time::Instant;

use super::limits::{Admit, Grant};
use super::time::{after, after_secs, secs_between};
use crate::headers::RateLimit;

/// The reset assumed when a response states `remaining` but neither a reset
/// nor a window: short, so that a stale count is soon probed again.
const DEFAULT_RESET: Duration = Duration::from_secs(1);

/// Rates outside this range are treated as these bounds (per second).
const MIN_RATE: f64 = 1e-3;
const MAX_RATE: f64 = 1e7;

/// A token count this close to 1 is 1 (float rounding in refills).
const EPS: f64 = 1e-9;

#[derive(Debug, Clone)]
pub(super) struct Quota {
    /// Refill rate in requests per second (`q / w`), if the policy is known.
    rate: Option<f64>,
    /// Most tokens a fresh window can hold (`q`, or the largest `remaining`).
    limit: f64,
    /// Largest `remaining` seen, plus one: the bucket size of a continuous
    /// limiter.
    burst: f64,
    tokens: f64,
    /// When `tokens` was last set.
    at: Instant,
    /// The reset most recently announced.
    reset: Instant,
    continuous: bool,
    /// The batch (see [`Grant::generation`]) whose statements set `tokens`,
    /// and its smallest `remaining`.
    batch: u64,
    batch_remaining: f64,
    evidence: Evidence,
}

/// Evidence that the server refills continuously, measured against the
/// tightest recent statement `remaining = r`. A windowed
/// limiter, before its reset, can neither accept more than `r` requests sent
/// after that statement, nor state a larger `remaining` for one of them
/// (each takes a unit): either sign means tokens came back in between.
#[derive(Debug, Clone)]
struct Evidence {
    remaining: f64,
    /// Counting stops here: the announced reset, less its rounding.
    until: Instant,
    /// Only requests released after the statement count.
    from_seq: u64,
    accepted: u64,
}

/// What one response said, as the gate uses it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Statement {
    pub(super) remaining: u64,
    pub(super) reset: Duration,
    pub(super) limit: Option<u64>,
    pub(super) window: Option<Duration>,
}

impl Statement {
    /// A usable statement needs `remaining`; the reset falls back to the
    /// window, then to a short default. Every duration is capped at `max_hold`.
    pub(super) fn from_headers(rl: &RateLimit, max_hold: Duration) -> Option<Statement> {
        let remaining = rl.remaining?;
        let reset = rl.reset.or(rl.window).unwrap_or(DEFAULT_RESET);
        Some(Statement {
            remaining,
            reset: reset.min(max_hold),
            limit: rl.limit,
            window: rl.window.filter(|w| !w.is_zero()),
        })
    }

    fn rate(&self) -> Option<f64> {
        let (limit, window) = (self.limit?, self.window?);
        if limit == 0 {
            return None;
        }
        Some((limit as f64 / window.as_secs_f64()).clamp(MIN_RATE, MAX_RATE))
    }
}

impl Quota {
    /// A first statement. `others` are the requests in flight besides the
    /// one that carried it; `next_seq` is the sequence the next release gets.
    pub(super) fn new(
        s: &Statement,
        now: Instant,
        grant: Grant,
        others: u32,
        next_seq: u64,
    ) -> Self {
        let remaining = s.remaining as f64;
        let reset = after(now, s.reset);
        Quota {
            rate: s.rate(),
            limit: s.limit.map_or(remaining, |l| l as f64).max(1.0),
            burst: remaining + 1.0,
            tokens: remaining - f64::from(others),
            at: now,
            reset,
            continuous: false,
            batch: grant.generation,
            batch_remaining: remaining,
            evidence: Evidence::new(remaining, now, s.reset, next_seq),
        }
    }

    /// A later statement. One from an older batch than the one that set the
    /// count may be stale (its reply was overtaken): it can only lower it.
    pub(super) fn update(
        &mut self,
        s: &Statement,
        now: Instant,
        grant: Grant,
        others: u32,
        next_seq: u64,
    ) {
        let remaining = s.remaining as f64;
        let estimate = remaining - f64::from(others);
        if let Some(rate) = s.rate() {
            self.rate = Some(rate);
        }
        if let Some(limit) = s.limit {
            self.limit = (limit as f64).max(1.0);
        }
        self.burst = self
            .burst
            .max(remaining + 1.0)
            .min(self.limit.max(remaining + 1.0));
        if grant.generation > self.batch {
            self.batch = grant.generation;
            self.batch_remaining = remaining;
            self.tokens = estimate;
            self.reset = after(now, s.reset);
        } else if grant.generation == self.batch {
            self.batch_remaining = self.batch_remaining.min(remaining);
            self.tokens = self.batch_remaining - f64::from(others);
            self.reset = self.reset.max(after(now, s.reset));
        } else {
            self.tokens = self.available(now).min(estimate);
        }
        self.at = now;
        let (valid, tighter, more) = {
            let e = &self.evidence;
            let valid = now < e.until;
            (
                valid,
                remaining < e.remaining,
                grant.seq >= e.from_seq && remaining > e.remaining,
            )
        };
        if valid && more {
            self.refills_continuously(now);
        }
        if !valid || tighter {
            self.evidence = Evidence::new(remaining, now, s.reset, next_seq);
        }
    }

    fn refills_continuously(&mut self, now: Instant) {
        if self.continuous || self.rate.is_none() {
            return;
        }
        self.tokens = self.available(now);
        self.at = now;
        self.continuous = true;
    }

    /// An accepted response to the request released with sequence `seq`.
    pub(super) fn on_accepted(&mut self, now: Instant, seq: u64) -> bool {
        let e = &mut self.evidence;
        if self.continuous || self.rate.is_none() || seq < e.from_seq || now >= e.until {
            return false;
        }
        e.accepted += 1;
        if e.accepted as f64 > e.remaining {
            self.refills_continuously(now);
            return true;
        }
        false
    }

    /// The server throttled a request: the continuous reading (if taken) was
    /// wrong, or the bucket is shared with others; start over as windowed.
    pub(super) fn on_throttle(&mut self, now: Instant) {
        self.tokens = self.available(now).min(0.0);
        self.at = now;
        self.continuous = false;
    }

    pub(super) fn on_grant(&mut self, now: Instant) {
        self.tokens = self.available(now) - 1.0;
        self.at = now;
    }

    /// A granted release was never sent: its token comes back.
    pub(super) fn on_ungrant(&mut self) {
        self.tokens += 1.0;
    }

    /// Windowed without a rate: nothing is known past the reset.
    pub(super) fn is_stale(&self, now: Instant) -> bool {
        self.rate.is_none() && now >= self.reset
    }

    pub(super) fn is_continuous(&self) -> bool {
        self.continuous
    }

    pub(super) fn has_rate(&self) -> bool {
        self.rate.is_some()
    }

    pub(super) fn is_exhausted(&self, now: Instant) -> bool {
        self.available(now) < 1.0 - EPS
    }

    pub(super) fn check(&self, now: Instant) -> Admit {
        match self.time_for(now, 1.0) {
            t if t <= now => Admit::Now,
            t => Admit::At(t),
        }
    }

    /// When `need` tokens will be there, if nothing else is learned.
    pub(super) fn time_for(&self, now: Instant, need: f64) -> Instant {
        if self.available(now) >= need - EPS {
            return now;
        }
        let Some(rate) = self.rate else {
            return self.reset.max(now);
        };
        let from = self.refill_start().max(now);
        let have = self.available(from);
        if have >= need - EPS {
            return from;
        }
        if need > self.cap() + EPS {
            // More than the bucket ever holds: the wait for the last token.
            return after_secs(
                from,
                (self.cap() - have).max(0.0) / rate + (need - self.cap()) / rate,
            );
        }
        after_secs(from, (need - have) / rate)
    }

    fn refill_start(&self) -> Instant {
        if self.continuous {
            self.at
        } else {
            self.at.max(self.reset)
        }
    }

    fn cap(&self) -> f64 {
        if self.continuous {
            self.burst
        } else {
            self.limit
        }
    }

    fn available(&self, now: Instant) -> f64 {
        let Some(rate) = self.rate else {
            return self.tokens;
        };
        let from = self.refill_start();
        if now <= from || self.tokens >= self.cap() {
            return self.tokens;
        }
        (self.tokens + rate * secs_between(from, now)).min(self.cap())
    }
}

impl Evidence {
    fn new(remaining: f64, now: Instant, reset: Duration, from_seq: u64) -> Self {
        // Resets are stated in whole seconds, rounded either way: stop
        // counting up to a second (at most half the reset) early.
        let slack = (reset / 2).min(Duration::from_secs(1));
        Evidence {
            remaining,
            until: after(now, reset - slack),
            from_seq,
            accepted: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grant whose batch is its sequence number (one request per batch).
    fn g(now: Instant, seq: u64) -> Grant {
        Grant {
            released_at: now,
            seq,
            generation: seq,
        }
    }

    fn statement(remaining: u64, reset: u64, policy: Option<(u64, u64)>) -> Statement {
        Statement {
            remaining,
            reset: Duration::from_secs(reset),
            limit: policy.map(|p| p.0),
            window: policy.map(|p| Duration::from_secs(p.1)),
        }
    }

    #[test]
    fn remaining_zero_waits_for_the_reset_then_spreads_the_window() {
        let now = Instant::now();
        let q = Quota::new(&statement(0, 30, Some((60, 60))), now, g(now, 1), 0, 2);
        assert_eq!(q.check(now), Admit::At(now + Duration::from_secs(31)));
        // The tenth token of the new window comes 10 s after the reset, not at it.
        let t = q.time_for(now, 10.0);
        assert_eq!(t, now + Duration::from_secs(40));
    }

    #[test]
    fn in_flight_requests_count_against_remaining() {
        let now = Instant::now();
        let mut q = Quota::new(&statement(3, 10, None), now, g(now, 1), 2, 4);
        assert_eq!(q.check(now), Admit::Now);
        q.on_grant(now);
        assert!(q.is_exhausted(now));
        assert_eq!(q.check(now), Admit::At(now + Duration::from_secs(10)));
        assert!(q.is_stale(now + Duration::from_secs(10)));
    }

    #[test]
    fn a_stale_reply_only_lowers_the_count() {
        let now = Instant::now();
        let mut q = Quota::new(&statement(5, 10, None), now, g(now, 10), 0, 11);
        q.update(&statement(9, 10, None), now, g(now, 3), 0, 11);
        assert!((q.available(now) - 5.0).abs() < 1e-9);
        q.update(&statement(2, 10, None), now, g(now, 4), 0, 11);
        assert!((q.available(now) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_batch_counts_from_its_smallest_remaining_as_replies_arrive() {
        let now = Instant::now();
        let batch = |seq| Grant {
            released_at: now,
            seq,
            generation: 1,
        };
        let first = Grant {
            released_at: now,
            seq: 1,
            generation: 0,
        };
        let mut q = Quota::new(&statement(9, 1, None), now, first, 0, 2);
        // Nine released together; the last released is processed first.
        q.update(&statement(5, 1, None), now, batch(10), 8, 11);
        assert!((q.available(now) - -3.0).abs() < 1e-9);
        q.update(&statement(8, 1, None), now, batch(3), 7, 11);
        q.update(&statement(1, 1, None), now, batch(7), 6, 11);
        for (i, seq) in [2, 4, 5, 6, 8, 9].into_iter().enumerate() {
            q.update(
                &statement(10 - seq, 1, None),
                now,
                batch(seq),
                5 - i as u32,
                11,
            );
        }
        // All replies in: the server has the batch's smallest `remaining`.
        assert!((q.available(now) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn accepting_more_than_remaining_before_reset_means_continuous() {
        let now = Instant::now();
        let mut q = Quota::new(&statement(2, 1, Some((100, 1))), now, g(now, 1), 0, 2);
        assert!(!q.on_accepted(now, 2));
        assert!(!q.on_accepted(now, 3));
        assert!(q.on_accepted(now, 4));
        q.update(&statement(0, 1, Some((100, 1))), now, g(now, 6), 0, 7);
        // Next token in 10 ms at 100/s, not at the 1 s reset.
        assert_eq!(q.check(now), Admit::At(now + Duration::from_millis(10)));
        q.on_throttle(now);
        assert_eq!(q.check(now), Admit::At(now + Duration::from_millis(1010)));
    }

    #[test]
    fn a_later_request_stating_more_remaining_means_continuous() {
        let now = Instant::now();
        let later = now + Duration::from_millis(20);
        // Statement r=1 from request 1, received when request 3 is next.
        let mut q = Quota::new(&statement(1, 1, Some((100, 1))), now, g(now, 1), 0, 3);
        // Request 2 was released before the statement arrived: the server may
        // have counted it first.
        q.update(&statement(2, 1, Some((100, 1))), later, g(now, 2), 0, 4);
        assert!(!q.continuous);
        q.update(&statement(2, 1, Some((100, 1))), later, g(later, 3), 0, 4);
        assert!(q.continuous);
    }

    #[test]
    fn a_fixed_window_never_looks_continuous() {
        let now = Instant::now();
        let mut q = Quota::new(&statement(5, 60, Some((5, 60))), now, g(now, 1), 0, 2);
        for seq in 2..7 {
            let t = now + Duration::from_millis(seq * 10);
            q.on_grant(t);
            q.update(
                &statement(6 - seq, 60, Some((5, 60))),
                t,
                g(t, seq),
                0,
                seq + 1,
            );
            assert!(!q.on_accepted(t, seq));
        }
        assert!(!q.continuous);
        assert!(matches!(
            q.check(now + Duration::from_secs(1)),
            Admit::At(_)
        ));
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let now = Instant::now();
        let s = Statement {
            remaining: u64::MAX,
            reset: Duration::MAX,
            limit: Some(u64::MAX),
            window: Some(Duration::from_nanos(1)),
        };
        let mut q = Quota::new(&s, now, g(now, 1), u32::MAX, 2);
        let _ = q.check(now);
        let _ = q.time_for(now, 1e300);
        q.on_grant(now);
        q.update(&s, now, g(now, 2), u32::MAX, 3);
    }
}
