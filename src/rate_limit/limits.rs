//! Everything the gate knows about one key, and the single question it
//! answers: may a request go now, and if not, when?
//!
//! Four sources, checked in order, each able to say "not before t":
//!
//! 1. a **hold**: the server said wait (Retry-After, gRPC pushback on a
//!    throttle) — nothing goes before it ends;
//! 2. a **quota** read from RateLimit headers ([`Quota`]);
//! 3. a **learned rate**, when the server throttles without stating a quota
//!    ([`Learner`]);
//! 4. **slow start**, while nothing at all is known ([`SlowStart`]).

use std::time::Duration;

use tokio::time::Instant;

use super::learner::{Learner, Period};
use super::quota::{Quota, Statement};
use super::response::Outcome;
use super::slow_start::SlowStart;
use super::time::{after, secs_between};

/// May a request go?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    Now,
    /// Not before this instant (a new response may change it).
    At(Instant),
    /// Not before a response brings news: nothing known comes back by itself.
    OnResponse,
}

/// Why a key just became limited, for `tracing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limited {
    /// Held for this long by a server hint.
    Held(Duration),
    /// `remaining` reached zero; the window resets after this long.
    Exhausted(Duration),
    /// Throttled without a hint: the learned rate was lowered.
    Throttled,
}

/// A release, as the gate recorded it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    pub(super) released_at: Instant,
    pub(super) seq: u64,
    /// Quota statements received before the release: requests released
    /// with the same knowledge form one batch.
    pub(super) generation: u64,
}

/// Knobs of the layer that the per-key logic needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Knobs {
    pub(super) slow_start: bool,
    pub(super) max_hold: Duration,
}

#[derive(Debug, Clone)]
pub(super) struct Limits {
    hold_until: Option<Instant>,
    quota: Option<Quota>,
    learner: Option<Learner>,
    slow_start: Option<SlowStart>,
    meter: Meter,
    /// Quota statements received so far.
    statements: u64,
}

/// Measures the current active period for the learner.
#[derive(Debug, Clone)]
struct Meter {
    /// First release of the period; `None` until one happens.
    start: Option<Instant>,
    accepted: u64,
    after_hold: bool,
    slow_start: bool,
    last_throttle: Option<Instant>,
    accepted_since_throttle: u64,
}

impl Limits {
    pub(super) fn new(now: Instant, knobs: Knobs) -> Self {
        Limits {
            hold_until: None,
            quota: None,
            learner: None,
            slow_start: knobs.slow_start.then(|| SlowStart::new(now)),
            meter: Meter {
                start: None,
                accepted: 0,
                // A key never seen is presumably at its full burst.
                after_hold: true,
                slow_start: false,
                last_throttle: None,
                accepted_since_throttle: 0,
            },
            statements: 0,
        }
    }

    fn quota_paces(&self) -> bool {
        self.quota.as_ref().is_some_and(Quota::has_rate)
    }

    pub(super) fn check(&mut self, now: Instant, in_flight: u32, knobs: Knobs) -> Admit {
        if let Some(until) = self.hold_until {
            if now < until {
                return Admit::At(until);
            }
            self.hold_until = None;
        }
        if self.quota.as_ref().is_some_and(|q| q.is_stale(now)) {
            // The window the statement was about is over: probe afresh.
            self.quota = None;
            if knobs.slow_start && !self.learner.as_ref().is_some_and(Learner::is_measured) {
                self.slow_start = Some(SlowStart::new(now));
            }
        }
        if let Some(quota) = &self.quota {
            match quota.check(now, in_flight) {
                Admit::Now => {}
                wait => return wait,
            }
        }
        if !self.quota_paces() {
            if let Some(learner) = &self.learner {
                if let Admit::At(t) = learner.check(now) {
                    return Admit::At(t);
                }
            }
        }
        if self.quota.is_none() {
            if let Some(ss) = &mut self.slow_start {
                return ss.check(now, in_flight);
            }
        }
        Admit::Now
    }

    /// When the request behind `ahead` others could go, if nothing new is
    /// learned. Waits on responses (slow start, a quota past its reset)
    /// cannot be foreseen, so they add nothing.
    pub(super) fn estimate(&self, now: Instant, ahead: usize) -> Instant {
        let mut t = now.max(self.hold_until.unwrap_or(now));
        if let Some(quota) = &self.quota {
            if let Some(at) = quota.time_for(t, ahead as f64 + 1.0) {
                t = t.max(at);
            }
        }
        if !self.quota_paces() {
            if let Some(learner) = &self.learner {
                t = t.max(learner.time_for(t, ahead));
            }
        }
        t
    }

    /// See [`Grant::generation`].
    pub(super) fn generation(&self) -> u64 {
        self.statements
    }

    pub(super) fn on_grant(&mut self, now: Instant) {
        if let Some(quota) = &mut self.quota {
            quota.on_grant(now);
        }
        if !self.quota_paces() {
            if let Some(learner) = &mut self.learner {
                learner.on_grant(now);
            }
        }
        if self.quota.is_none() {
            if let Some(ss) = &mut self.slow_start {
                ss.on_grant(now);
            }
        }
        if self.meter.start.is_none() {
            self.meter.start = Some(now);
            self.meter.slow_start = self.slow_start.is_some();
        }
    }

    pub(super) fn on_ungrant(&mut self, now: Instant) {
        if let Some(quota) = &mut self.quota {
            quota.on_ungrant();
        }
        if !self.quota_paces() {
            if let Some(learner) = &mut self.learner {
                learner.on_ungrant(now);
            }
        }
    }

    /// Learns from a response. `others` are the requests still in flight
    /// besides this one; `next_seq` is the sequence of the next release.
    pub(super) fn on_response(
        &mut self,
        now: Instant,
        outcome: &Outcome,
        grant: Grant,
        others: u32,
        next_seq: u64,
        knobs: Knobs,
    ) -> Option<Limited> {
        let mut limited = None;
        if let Some(s) = outcome
            .rate_limit
            .as_ref()
            .and_then(|rl| Statement::from_headers(rl, knobs.max_hold))
        {
            let was_exhausted = self.quota.as_ref().is_some_and(|q| q.is_exhausted(now));
            let quota = match &mut self.quota {
                Some(q) => {
                    q.update(&s, now, grant, others, next_seq);
                    q
                }
                None => self
                    .quota
                    .insert(Quota::new(&s, now, grant, others, next_seq)),
            };
            self.statements += 1;
            self.slow_start = None;
            // Running dry is news only for a windowed quota; a continuous one
            // is paced at its refill rate with `remaining` near zero.
            if s.remaining == 0 && !was_exhausted && !quota.is_continuous() {
                limited = Some(Limited::Exhausted(s.reset));
            }
        }

        if outcome.throttled {
            self.slow_start = None;
            if let Some(quota) = &mut self.quota {
                quota.on_throttle(now);
            }
            let hold = outcome
                .hold
                .map(|d| d.min(knobs.max_hold))
                .filter(|d| !d.is_zero());
            if let Some(hold) = hold {
                let until = after(now, hold);
                if self.hold_until.is_none_or(|u| until > u) {
                    self.hold_until = Some(until);
                    limited = Some(Limited::Held(hold));
                }
            }
            if !self.quota_paces() && self.closes_period(grant) {
                let period = self.close_period(now, hold.is_some());
                let learner = self.learner.get_or_insert_with(|| Learner::new(now));
                learner.on_throttle(now, period);
                if !learner.is_measured() && knobs.slow_start {
                    self.slow_start = Some(SlowStart::new(now));
                }
                limited = limited.or(Some(Limited::Throttled));
            }
        } else if outcome.accepted {
            let m = &mut self.meter;
            if m.start.is_some_and(|s| grant.released_at >= s) {
                m.accepted += 1;
            }
            m.accepted_since_throttle += 1;
            if let Some(ss) = &mut self.slow_start {
                if ss.on_success(now) {
                    self.slow_start = None;
                }
            }
        }
        limited
    }

    /// A throttle for a request released before the current period began
    /// belongs to the episode already learned from.
    fn closes_period(&self, grant: Grant) -> bool {
        self.meter.start.is_some_and(|s| grant.released_at >= s)
    }

    fn close_period(&mut self, now: Instant, held: bool) -> Period {
        let m = &mut self.meter;
        let start = m.start.unwrap_or(now);
        let sustained = m.last_throttle.and_then(|t| {
            let secs = secs_between(t, now);
            (secs > 0.0).then(|| m.accepted_since_throttle as f64 / secs)
        });
        let period = Period {
            secs: secs_between(start, now),
            accepted: m.accepted as f64,
            after_hold: m.after_hold,
            slow_start: m.slow_start,
            sustained,
        };
        m.start = None;
        m.accepted = 0;
        m.after_hold = held;
        m.slow_start = false;
        m.last_throttle = Some(now);
        m.accepted_since_throttle = 0;
        period
    }

    /// Held, or out of quota.
    pub(super) fn is_limited(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|u| now < u)
            || self.quota.as_ref().is_some_and(|q| q.is_exhausted(now))
    }

    /// Whether forgetting this key loses anything a fresh key would not
    /// relearn for free (evicted last).
    pub(super) fn knows_something(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|u| now < u)
            || self.quota.as_ref().is_some_and(|q| !q.is_stale(now))
            || self.learner.as_ref().is_some_and(Learner::is_measured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::RateLimit;

    const KNOBS: Knobs = Knobs {
        slow_start: true,
        max_hold: Duration::from_secs(300),
    };

    fn outcome(throttled: bool, hold: Option<u64>) -> Outcome {
        Outcome {
            throttled,
            accepted: !throttled,
            hold: hold.map(Duration::from_secs),
            rate_limit: None,
        }
    }

    fn grant(now: Instant, seq: u64) -> Grant {
        Grant {
            released_at: now,
            seq,
            generation: 0,
        }
    }

    #[test]
    fn a_throttle_with_a_hint_holds_the_key_capped_at_max_hold() {
        let now = Instant::now();
        let mut l = Limits::new(now, KNOBS);
        assert_eq!(l.check(now, 0, KNOBS), Admit::Now);
        l.on_grant(now);
        let r = l.on_response(
            now,
            &outcome(true, Some(100_000)),
            grant(now, 1),
            0,
            2,
            KNOBS,
        );
        assert_eq!(r, Some(Limited::Held(Duration::from_secs(300))));
        assert_eq!(
            l.check(now, 0, KNOBS),
            Admit::At(now + Duration::from_secs(300))
        );
        assert!(l.is_limited(now));
    }

    #[test]
    fn remaining_zero_holds_until_reset() {
        let now = Instant::now();
        let mut l = Limits::new(now, KNOBS);
        l.on_grant(now);
        let mut o = outcome(false, None);
        o.rate_limit = Some(RateLimit {
            remaining: Some(0),
            reset: Some(Duration::from_secs(7)),
            ..RateLimit::default()
        });
        let r = l.on_response(now, &o, grant(now, 1), 0, 2, KNOBS);
        assert_eq!(r, Some(Limited::Exhausted(Duration::from_secs(7))));
        assert_eq!(
            l.check(now, 0, KNOBS),
            Admit::At(now + Duration::from_secs(7))
        );
        assert_eq!(l.estimate(now, 0), now + Duration::from_secs(7));
        // After the reset, a fresh probe (slow start) goes.
        let later = now + Duration::from_secs(7);
        assert_eq!(l.check(later, 0, KNOBS), Admit::Now);
        assert!(matches!(l.check(later, 1, KNOBS), Admit::At(_)));
    }

    #[test]
    fn throttles_of_one_episode_are_learned_from_once() {
        let now = Instant::now();
        let mut l = Limits::new(now, KNOBS);
        l.on_grant(now);
        l.on_grant(now);
        let t1 = now + Duration::from_millis(100);
        l.on_response(t1, &outcome(false, None), grant(now, 1), 1, 3, KNOBS);
        assert_eq!(
            l.on_response(t1, &outcome(true, None), grant(now, 2), 0, 3, KNOBS),
            Some(Limited::Throttled)
        );
        // A second in-flight request of the same episode teaches nothing new.
        assert_eq!(
            l.on_response(t1, &outcome(true, None), grant(now, 2), 0, 3, KNOBS),
            None
        );
    }
}
