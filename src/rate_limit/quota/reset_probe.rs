//! Short resets: a windowed quota out of units whose reset is one second or
//! less.
//!
//! Like `Retry-After`, a reset is stated in whole seconds, rounded up. A
//! token bucket stating its policy (`q` per `w`) and "the next unit comes
//! in `t`" (draft-ietf-httpapi-ratelimit-headers-10) says `r=0;t=1` when its
//! next token is 5 ms away. Read as a window, that holds the key for a
//! second each time the bucket's burst is spent: a bucket of 200/s, burst
//! 20, then gets 20 requests a second, a tenth of its rate. And the gate,
//! spending what `remaining` states at once, never sees the count rise, the
//! evidence that would switch it to the continuous reading.
//!
//! So once such a quota is out, the gate asks: a few intervals of the
//! policy's rate after the last statement, **one probe** goes.
//!
//! * Accepted: units came back before the stated reset, which no window
//!   does (a window that reset early states nearly its whole quota, and is
//!   read as a new window). The quota reads as continuous from then on.
//! * Refused: it was a window. No probe goes before this window is over;
//!   refusals in a row space the next probe ever further apart (1 s, 2 s,
//!   4 s… up to a minute), so a true window of `q` per second loses at most
//!   one call in `q` to a probe, and then fewer.
//!
//! A probe that gets no answer is forgotten at the reset; one never sent
//! (its request cancelled after its release), at once.

use std::time::Duration;

use tokio::time::Instant;

use crate::rate_limit::time::{after, after_secs, doubling};

/// What became of a request, as a probe's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The server took it.
    Accepted,
    /// The server refused it for its rate limit.
    Throttled,
    /// Neither (a 5xx, an outage): says nothing of the limit.
    Neither,
}

/// The longest reset a probe may cut short: the resolution of delta-seconds.
pub(super) const SHORT_RESET: Duration = Duration::from_secs(1);

/// Intervals of the policy's rate after the last statement before the
/// probe: at that rate, this many units have come back.
pub(super) const PAUSE_INTERVALS: f64 = 3.0;

/// The longest a refused probe defers the next one.
const MAX_DEFER: Duration = Duration::from_secs(64);

/// The probe of one quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ResetProbe {
    /// When the probe out went, if one is.
    sent: Option<Instant>,
    /// Probes refused in a row.
    refused: u32,
    /// No probe before this (after a refusal).
    not_before: Option<Instant>,
}

impl ResetProbe {
    pub(super) fn new() -> Self {
        ResetProbe {
            sent: None,
            refused: 0,
            not_before: None,
        }
    }

    /// When a probe may go, if one may: `last` is the last statement, `rate`
    /// the policy's, `reset` the window's end.
    pub(super) fn at(&self, last: Instant, rate: f64, reset: Instant) -> Option<Instant> {
        if self.sent.is_some() || !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let at = after_secs(last, PAUSE_INTERVALS / rate).max(self.not_before.unwrap_or(last));
        (at < reset).then_some(at)
    }

    /// The probe went at `now`.
    pub(super) fn sent(&mut self, now: Instant) {
        self.sent = Some(now);
    }

    /// A request released at `released_at` was answered at `now`. Returns
    /// whether it was the probe, accepted.
    pub(super) fn answer(&mut self, now: Instant, released_at: Instant, reply: Reply) -> bool {
        if self.sent.is_none_or(|sent| released_at < sent) {
            return false;
        }
        self.sent = None;
        if reply == Reply::Neither {
            // No verdict: another probe may go.
            return false;
        }
        if reply == Reply::Accepted {
            self.refused = 0;
            self.not_before = None;
            return true;
        }
        self.refused = self.refused.saturating_add(1);
        let defer = doubling(SHORT_RESET, self.refused, MAX_DEFER);
        self.not_before = Some(after(now, defer));
        false
    }

    /// The window is over (a probe still out will not be answered in it),
    /// or the probe was never sent after all (cancelled): another may go.
    pub(super) fn forget(&mut self) {
        self.sent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_probe_a_pause_after_the_last_statement_then_it_waits_for_the_answer() {
        let t0 = Instant::now();
        let mut p = ResetProbe::new();
        let reset = t0 + ms(1000);
        assert_eq!(p.at(t0, 200.0, reset), Some(t0 + ms(15)));
        p.sent(t0 + ms(15));
        assert_eq!(p.at(t0, 200.0, reset), None);
        // An answer to a request released before the probe is not its answer.
        assert!(!p.answer(t0 + ms(20), t0 + ms(10), Reply::Accepted));
        assert_eq!(p.at(t0, 200.0, reset), None);
        assert!(p.answer(t0 + ms(35), t0 + ms(15), Reply::Accepted));
        assert_eq!(p.at(t0 + ms(35), 200.0, reset), Some(t0 + ms(50)));
    }

    #[test]
    fn refusals_in_a_row_defer_the_next_probe_ever_longer() {
        let t0 = Instant::now();
        let mut p = ResetProbe::new();
        let far = t0 + Duration::from_secs(3600);
        let mut now = t0;
        for defer in [1, 2, 4, 8, 16, 32, 64, 64] {
            let at = p.at(now, 200.0, far).unwrap();
            p.sent(at);
            assert!(!p.answer(at, at, Reply::Throttled));
            assert_eq!(p.at(at, 200.0, far), Some(at + Duration::from_secs(defer)));
            now = at + Duration::from_secs(defer);
        }
        // Not before the window's end: no probe in this window.
        assert_eq!(p.at(now, 200.0, now + ms(10)), None);
        // An accepted probe forgets the refusals.
        let at = p.at(now, 200.0, far).unwrap();
        p.sent(at);
        assert!(p.answer(at, at, Reply::Accepted));
        assert_eq!(p.at(at, 200.0, far), Some(at + ms(15)));
    }

    #[test]
    fn no_rate_no_probe_and_a_lost_probe_is_forgotten() {
        let t0 = Instant::now();
        let mut p = ResetProbe::new();
        assert_eq!(p.at(t0, 0.0, t0 + ms(1000)), None);
        assert_eq!(p.at(t0, f64::NAN, t0 + ms(1000)), None);
        p.sent(t0);
        p.forget();
        assert_eq!(p.at(t0, 200.0, t0 + ms(1000)), Some(t0 + ms(15)));
        // A reply that is neither accepted nor throttled (a 503) frees the
        // probe without a verdict: no refusal counted.
        p.sent(t0);
        assert!(!p.answer(t0 + ms(20), t0, Reply::Neither));
        assert_eq!(p.at(t0 + ms(20), 200.0, t0 + ms(1000)), Some(t0 + ms(35)));
    }
}
