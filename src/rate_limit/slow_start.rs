//! Cold start for a key the gate knows nothing about, after TCP slow start
//! (RFC 5681 §3.1): one request goes alone as a probe; every two accepted
//! responses let one more request be in flight, so the window grows by half
//! per round trip, until the server's headers or its first throttle say what
//! the limit is.
//!
//! Half, not TCP's doubling, as RFC 3742's limited slow start grows large
//! windows: whatever is in flight when a server's burst runs out is
//! refused, and at the moment a burst of `b` runs out a doubling window
//! holds about `b` requests — a burst of 10 meets 11 refusals — where one
//! growing by half holds about `b ÷ 2`. A round trip is short next to the
//! time a window takes to matter (a window of 1 at a 2 ms round trip is
//! 500 requests a second), and a slow server still gets one more request a
//! second from the stall tick.

use std::time::Duration;

use tokio::time::Instant;

use super::model::Admit;
use super::time::after;

/// Requests in flight allowed before anything is known.
const INITIAL_WINDOW: u32 = 1;

/// Accepted responses per growth of the window by one.
const GROWTH_EVERY: u32 = 2;

/// Past this window the server has shown it takes whatever the caller sends:
/// slow start ends and the key is no longer limited.
const OPEN_WINDOW: u32 = 4096;

/// If the window stays full this long after the last release or growth (no
/// response came back), it grows by one anyway, so that a slow service (an
/// LLM call of 30 s) does not serialise every caller behind its probe —
/// slowly, since nothing is known yet: at most one extra request a second.
pub(super) const STALL_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(super) struct SlowStart {
    window: u32,
    /// Accepted responses toward the next growth.
    credit: u32,
    grown_at: Instant,
}

impl SlowStart {
    pub(super) fn new(now: Instant) -> Self {
        SlowStart {
            window: INITIAL_WINDOW,
            credit: 0,
            grown_at: now,
        }
    }

    pub(super) fn check(&mut self, now: Instant, in_flight: u32) -> Admit {
        if in_flight < self.window {
            return Admit::Now;
        }
        let tick = after(self.grown_at, STALL_TICK);
        if now >= tick {
            self.window = self.window.saturating_add(1);
            self.grown_at = now;
            if in_flight < self.window {
                return Admit::Now;
            }
            return Admit::At(after(now, STALL_TICK));
        }
        Admit::At(tick)
    }

    /// A release: the stall tick counts from the latest one.
    pub(super) fn on_grant(&mut self, now: Instant) {
        self.grown_at = now;
    }

    /// An accepted response: every second one lets one more be in flight.
    /// Returns `true` when the window is so large that slow start should
    /// end.
    pub(super) fn on_success(&mut self, now: Instant) -> bool {
        self.credit += 1;
        if self.credit >= GROWTH_EVERY {
            self.credit = 0;
            self.window = self.window.saturating_add(1);
        }
        self.grown_at = now;
        self.window >= OPEN_WINDOW
    }

    #[cfg(test)]
    pub(super) fn window(&self) -> u32 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_then_one_more_per_two_accepted_responses() {
        let now = Instant::now();
        let mut ss = SlowStart::new(now);
        assert_eq!(ss.check(now, 0), Admit::Now);
        assert!(matches!(ss.check(now, 1), Admit::At(_)));
        ss.on_success(now);
        assert_eq!(ss.window(), 1);
        ss.on_success(now);
        assert_eq!(ss.window(), 2);
        assert_eq!(ss.check(now, 1), Admit::Now);
        assert!(matches!(ss.check(now, 2), Admit::At(_)));
    }

    #[test]
    fn a_stalled_window_grows_by_one_after_the_tick() {
        let now = Instant::now();
        let mut ss = SlowStart::new(now);
        assert_eq!(ss.check(now, 1), Admit::At(now + STALL_TICK));
        assert_eq!(ss.check(now + STALL_TICK, 1), Admit::Now);
        assert_eq!(ss.window(), 2);
    }

    #[test]
    fn the_tick_counts_from_the_latest_release() {
        let now = Instant::now();
        let mut ss = SlowStart::new(now);
        let later = now + Duration::from_secs(2);
        assert_eq!(ss.check(later, 0), Admit::Now);
        ss.on_grant(later);
        assert_eq!(ss.check(later, 1), Admit::At(later + STALL_TICK));
    }

    #[test]
    fn ends_when_the_window_is_wide_open() {
        let now = Instant::now();
        let mut ss = SlowStart::new(now);
        let mut ended = false;
        for _ in 0..OPEN_WINDOW * GROWTH_EVERY {
            ended |= ss.on_success(now);
        }
        assert!(ended);
    }
}
