//! Short wait hints: a throttle saying `Retry-After: 1` (or less) on a key
//! whose rate the gate learns.
//!
//! `Retry-After` counts whole seconds (RFC 9110 §10.2.3), so a server whose
//! limiter frees its next slot in 10 ms, and rounds that up, can say nothing
//! shorter than `1`: a hint of one second or less is an upper bound on the
//! wait, not a measurement of it. Holding the whole key for it throws away
//! most of that second — a bucket of 100/s, burst 10, refills in 0.1 s and
//! then overflows for the other 0.9 s.
//!
//! So when such a hint comes with a throttle on a key that no stated quota
//! paces, the gate asks the server instead of guessing: the key pauses for
//! a few intervals of the rate it is learning (at least a slot's worth of
//! refill for a token bucket of that rate), then sends **one probe**, alone.
//!
//! * The probe is accepted: the hint was an upper bound. The key is paced at
//!   the rate learned from the throttle, without waiting out the hint.
//! * The probe is throttled too: the hint was meant (a fixed window that
//!   reopens only at its end, a penalty box). The key is held for the
//!   probe's own hint (and at least to the end of the first), as any hint
//!   holds it, and learns as after a hold.
//! * With a shared store (feature `redis`), a refused probe proves nothing:
//!   the other processes send too, and one of them may have taken the slot
//!   the pause left. The key probes again after a back-off (25 ms, doubling
//!   with each refusal in a row) until the hint ends, instead of holding
//!   every process for the rest of the hint.
//!
//! Either way the refused request itself is answered at once with its hint,
//! marked with the gate's own reading of when a retry could go
//! ([`GateRetryAfter`](super::GateRetryAfter): behind the requests already
//! waiting, after the probe's pause): a retry layer above waits that, not
//! the whole hint, and the retry waits in the gate's line for the probe's
//! answer like any other request. A probe costs at
//! most one wasted call per hint (a few with a store); a longer hint (GitHub's secondary limit's
//! `Retry-After: 60`), a hint scoped to one resource, one explained by a
//! quota the server stated, or one on a key a stated quota paces is a hold
//! as before.

use std::time::Duration;

use tokio::time::Instant;

use super::model::{Admit, Grant};
use super::time::after;

/// The longest hint a probe may cut short: the resolution of
/// `Retry-After`'s delta-seconds.
pub(super) const SHORT_HINT: Duration = Duration::from_secs(1);

/// Intervals of the learned rate the key pauses before its probe: at the
/// server's refill rate, that many slots have come back.
const PAUSE_INTERVALS: f64 = 3.0;

/// After a guessed rate, the pause is one interval of it, but at most this
/// fraction of the hint.
const GUESS_PAUSE_DIVISOR: u32 = 10;

/// A short hint being tested by a probe.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    /// When the probe may go.
    at: Instant,
    /// When the hint ends: the probe's throttle holds the key until then.
    hint_end: Instant,
    /// When the probe went, once it has.
    sent: Option<Instant>,
}

/// What a response says about the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// Not the probe's answer (a request released before it).
    Other,
    /// The probe was accepted: the key is free.
    Accepted,
    /// The probe was throttled: the hint was meant; hold until this.
    Meant(Instant),
}

impl Probe {
    /// A probe after a short `hint` received at `now`, on a key learned to
    /// take `rate` requests per second: `fitted` when measured, else a
    /// cautious guess, whose single interval is pause enough.
    pub(super) fn new(now: Instant, hint: Duration, rate: f64, fitted: bool) -> Self {
        // NaN or no rate: wait the hint out.
        let pause = if rate.is_nan() || rate <= 0.0 {
            hint
        } else if fitted {
            crate::duration::from_secs_f64(PAUSE_INTERVALS / rate).min(hint)
        } else {
            crate::duration::from_secs_f64(1.0 / rate).min(hint / GUESS_PAUSE_DIVISOR)
        };
        Probe {
            at: after(now, pause),
            hint_end: after(now, hint),
            sent: None,
        }
    }

    /// A probe after `pause` (at most the hint), whatever the rate.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn after_pause(now: Instant, hint: Duration, pause: Duration) -> Self {
        Probe {
            at: after(now, pause.min(hint)),
            hint_end: after(now, hint),
            sent: None,
        }
    }

    /// The same probe, sent no earlier than `at` (but before its hint ends).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn not_before(self, at: Instant) -> Self {
        Probe {
            at: self.at.max(at).min(self.hint_end),
            ..self
        }
    }

    /// Whether one more request may go: the probe, once its pause is over;
    /// the others wait for its answer (at most until the hint ends).
    pub(super) fn check(&self, now: Instant) -> Admit {
        match self.sent {
            None if now >= self.at => Admit::Now,
            None => Admit::At(self.at),
            Some(_) if now >= self.hint_end => Admit::Now,
            Some(_) => Admit::At(self.hint_end),
        }
    }

    /// When the key may go, for estimates.
    pub(super) fn earliest(&self) -> Instant {
        self.at
    }

    pub(super) fn on_grant(&mut self, now: Instant) {
        self.sent.get_or_insert(now);
    }

    /// The probe went out, but was never sent: another may go.
    pub(super) fn on_ungrant(&mut self) {
        self.sent = None;
    }

    /// Whether the hint is over by itself (no answer came in time).
    pub(super) fn is_over(&self, now: Instant) -> bool {
        now >= self.hint_end
    }

    /// Reads a response to `grant`.
    pub(super) fn answer(&self, grant: Grant, throttled: bool) -> Answer {
        match self.sent {
            Some(sent) if grant.released_at >= sent => {
                if throttled {
                    Answer::Meant(self.hint_end)
                } else {
                    Answer::Accepted
                }
            }
            _ => Answer::Other,
        }
    }
}

/// The pause before a probe for a rate of `rate` per second, for tests.
#[cfg(test)]
pub(super) fn pause_for(now: Instant, rate: f64) -> Instant {
    super::time::after_secs(now, PAUSE_INTERVALS / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(at: Instant) -> Grant {
        Grant::at(at, 1)
    }

    #[test]
    fn pauses_a_few_intervals_then_lets_one_probe_go() {
        let now = Instant::now();
        let mut p = Probe::new(now, SHORT_HINT, 100.0, true);
        let at = pause_for(now, 100.0);
        assert_eq!(p.check(now), Admit::At(at));
        assert_eq!(p.check(at), Admit::Now);
        p.on_grant(at);
        assert_eq!(p.check(at), Admit::At(now + SHORT_HINT));
        assert_eq!(p.answer(grant(now), true), Answer::Other);
        assert_eq!(p.answer(grant(at), false), Answer::Accepted);
        assert_eq!(p.answer(grant(at), true), Answer::Meant(now + SHORT_HINT));
    }

    #[test]
    fn a_guessed_rate_pauses_one_interval_and_never_past_the_hint() {
        let now = Instant::now();
        let p = Probe::new(now, SHORT_HINT, 20.0, false);
        assert_eq!(p.check(now), Admit::At(now + Duration::from_millis(50)));
        let p = Probe::new(now, SHORT_HINT, 2.0, false);
        assert_eq!(p.check(now), Admit::At(now + Duration::from_millis(100)));
        let p = Probe::new(now, SHORT_HINT, 0.5, true);
        assert_eq!(p.check(now), Admit::At(now + SHORT_HINT));
        assert!(p.is_over(now + SHORT_HINT));
    }
}
