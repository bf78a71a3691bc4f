//! The rate a server accepts, learned from what it accepted, for servers that
//! say only "429, Retry-After: n" and nothing about their quota.
//!
//! The anchor is the AWS SDKs' adaptive mode (a CUBIC token bucket: β 0.7,
//! C 0.4, floor 0.5 req/s, never above twice the measured rate). It cuts its
//! rate by 30 % on each throttle and regrows it as a cubic, so it meets the
//! limit again and again. This learner instead measures the limit:
//!
//! * Each throttle closes an *active period*: the time since the gate started
//!   releasing after the previous hold (or since the key's first release),
//!   and the requests the server accepted in it. A token bucket, GCRA or
//!   sliding-window limiter that starts a period full accepts
//!   `burst + rate × time` before it throttles, so two periods give its
//!   sustained rate as the slope of accepted over time — the rate accepted
//!   while throttled, with the burst taken out — and the gate paces just
//!   under it.
//! * With one period only (the end of slow start), it paces at half the
//!   rate the server accepted in it, assuming half of that was burst; the
//!   next throttle gives the slope.
//! * When the slope is meaningless (a fixed window accepts the same count
//!   however long the period), it falls back to AWS-style multiplicative
//!   decrease, never below the rate the server sustained from one throttle
//!   to the next, holds included — which is exact for fixed windows.
//! * Between throttles the rate creeps up as a cubic of the time since the
//!   last one (slowly after a good fit, faster after a guess), to find
//!   capacity the server adds later.
//!
//! Releases are spaced by a GCRA scheduler at the current rate.

use tokio::time::Instant;

use super::model::Admit;
use super::time::{after, after_secs, before, secs_between};
use crate::duration::from_secs_f64;

/// Multiplicative decrease on a throttle without a usable fit (AWS, CUBIC).
pub(super) const BETA: f64 = 0.7;
/// Pace this far under a fitted rate.
const FIT_MARGIN: f64 = 0.97;
/// …or this far when one of the two periods was slow start, which leaves
/// part of the server's refill unused in its first rounds and so makes the
/// slope read high.
const SLOW_START_FIT_MARGIN: f64 = 0.95;
/// First guess after one period: half of what the server accepted was burst.
const FIRST_GUESS: f64 = 0.5;
/// Floor on any learned rate (requests per second), as AWS's.
const MIN_RATE: f64 = 0.5;
const MAX_RATE: f64 = 1e7;
/// Time for the rate to double past the last measure after a good fit or
/// measure, after a guess, and after the first period's cautious guess.
pub(super) const PROBE_FITTED: f64 = 4.5;
pub(super) const PROBE_GUESSED: f64 = 2.0;
const PROBE_HINTED: f64 = 0.12;
/// A key adopts the fleet's rate once its own strays this far from it.
const ADOPT_ABOVE: f64 = 1.05;
/// Accepted requests a measure needs to be believed as it is.
const MEASURED: f64 = 8.0;

/// One active period, as measured when a throttle closed it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Period {
    /// Seconds from the period's first release to the throttle.
    pub(super) secs: f64,
    /// Requests the server accepted in it.
    pub(super) accepted: f64,
    /// The period began after a hold (or on a fresh key), so the server's
    /// bucket was presumably full: the point can be fitted.
    pub(super) after_hold: bool,
    /// The period began right after a throttle the key was not held for:
    /// the server's bucket was empty then (and `secs`, `accepted` count from
    /// that throttle).
    pub(super) from_empty: bool,
    /// The period included slow start.
    pub(super) slow_start: bool,
    /// The counts are the whole fleet's (a store's), not this process's
    /// alone: what it measures is the fleet's rate, not this process's
    /// share of it.
    pub(super) fleet: bool,
    /// The counts are too coarse for the period's length (a store's
    /// read-back): it measures roughly at best.
    pub(super) coarse: bool,
    /// The throttle's wait hint, if short enough to be probed (seconds).
    pub(super) hint: Option<f64>,
    /// The refill rate implied by the drain of the server's bucket before
    /// the throttle (see `Meter`), given the burst the learner knows; from
    /// this process's own answers only, never the fleet's count.
    pub(super) drained: Option<f64>,
    /// Accepted per second since the previous throttle, holds included.
    pub(super) sustained: Option<f64>,
}

#[derive(Debug, Clone)]
pub(super) struct Learner {
    /// Pacing rate set by the last throttle; `None` until one period has
    /// been measured (the key is then probed by slow start, if enabled).
    base: Option<f64>,
    /// The rate last measured (CUBIC's `W_max`): the pace climbs back to it
    /// slowly, then probes beyond it ever faster.
    w_max: f64,
    /// Seconds for the probe to double the rate past `w_max`.
    tau: f64,
    /// Whether the rate came from a fit or a measure (not a guess).
    fitted: bool,
    /// Whether the last throttle's counts were the whole fleet's (a
    /// store's), so that its rate is the fleet's, not this process's share.
    fleet: bool,
    /// The last throttle measured roughly (few accepted): the rate was cut,
    /// not measured.
    rough: bool,
    since: Instant,
    /// GCRA theoretical arrival time of the next release.
    tat: Instant,
    point: Option<Point>,
    /// The last good fit, `(rate, burst)`: a later period that lies on it
    /// confirms it (the throttle came from probing above it), one that does
    /// not means the server changed.
    line: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    secs: f64,
    accepted: f64,
    slow_start: bool,
}

impl Learner {
    pub(super) fn new(now: Instant) -> Self {
        Learner {
            base: None,
            w_max: 0.0,
            tau: PROBE_GUESSED,
            fitted: false,
            fleet: false,
            rough: false,
            since: now,
            tat: now,
            point: None,
            line: None,
        }
    }

    /// The server's burst, as far as known, as `(accepted, secs)`: a
    /// period that began full and ended empty accepted `burst + rate × secs`
    /// — the first one (on a fresh key), or the last fit's burst with no
    /// time.
    pub(super) fn burst(&self) -> Option<(f64, f64)> {
        match (self.line, self.point) {
            (Some((_, burst)), _) => Some((burst.max(1.0), 0.0)),
            (None, Some(p)) => Some((p.accepted.max(1.0), p.secs)),
            (None, None) => None,
        }
    }

    /// The pacing rate now, if one has been learned: CUBIC's window
    /// (RFC 9438 §4.2) in requests per second, `W_max × (1 + ((t − K) ÷ τ)³)`
    /// with `K` such that it starts at the base — flat near the rate last
    /// measured, faster the further past it.
    pub(super) fn rate(&self, now: Instant) -> Option<f64> {
        let base = self.base?;
        Some(cubic(
            base,
            self.w_max,
            self.tau,
            secs_between(self.since, now),
        ))
    }

    /// The rate set by the last throttle, the measure it climbs back to
    /// and how fast (`base`, `W_max`, τ): what a store shares as the
    /// fleet's [`Curve`].
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn curve(&self) -> Option<(f64, f64, f64)> {
        let base = self.base?;
        Some((base, self.w_max.max(base), self.tau))
    }

    /// Whether the rate was measured or fitted (a probe may then cut a
    /// short hint: see `short_hint`), not guessed.
    pub(super) fn is_fitted(&self) -> bool {
        self.base.is_some() && self.fitted
    }

    /// Whether the last throttle set the rate from a fit or a full measure:
    /// what other processes may take as the key's rate.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn is_measured_now(&self) -> bool {
        self.is_fitted() && !self.rough
    }

    /// Whether the rate was learned from the whole fleet's counts (a
    /// store's) — what other processes may share — rather than from this
    /// process's own answers, its share of the server's rate.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn is_fleet_rate(&self) -> bool {
        self.fleet
    }

    /// The fleet's rate, shared through a store, is what the fleet is
    /// paced at. A process's own rate above it would climb unchecked (no
    /// throttle comes while the shared rate binds) and run away — to burst
    /// when the shared rate ends (it expires, or Redis restarts); one
    /// below it (a measure of its own that the fleet's average outweighed,
    /// or a rough cut) would pace this process alone slower than the
    /// others once they are done. A key whose rate strays 5 % from the
    /// fleet's takes the fleet's curve as its own, measured: it climbs with
    /// the fleet from then on.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn adopt_fleet_rate(&mut self, now: Instant, fleet: Curve) {
        let rate = fleet.at(now);
        if !(rate.is_finite() && rate > 0.0 && fleet.base.is_finite() && fleet.base > 0.0) {
            return;
        }
        if self
            .rate(now)
            .is_some_and(|mine| mine > rate * ADOPT_ABOVE || mine * ADOPT_ABOVE < rate)
        {
            let base = fleet.base.clamp(MIN_RATE, MAX_RATE);
            self.base = Some(base);
            self.w_max = fleet.w_max.clamp(base, MAX_RATE);
            self.tau = fleet.tau();
            self.fitted = true;
            self.fleet = true;
            self.rough = false;
            self.since = fleet.since;
        }
    }

    fn set(&mut self, now: Instant, w_max: f64, margin: f64, tau: f64, fitted: bool) {
        let w_max = w_max.clamp(MIN_RATE, MAX_RATE);
        self.base = Some((w_max * margin).max(MIN_RATE));
        self.w_max = w_max;
        self.tau = tau;
        self.fitted = fitted;
        self.rough = false;
        self.since = now;
    }

    pub(super) fn is_measured(&self) -> bool {
        self.base.is_some()
    }

    pub(super) fn check(&self, now: Instant) -> Admit {
        if self.base.is_none() || self.tat <= now {
            Admit::Now
        } else {
            Admit::At(self.tat)
        }
    }

    /// When the `n`-th release from now could go, at the current rate.
    pub(super) fn time_for(&self, now: Instant, n: usize) -> Instant {
        match self.rate(now) {
            Some(rate) => after_secs(self.tat.max(now), n as f64 / rate),
            None => now,
        }
    }

    /// GCRA with one interval of slack: a wake-up that comes late (timers
    /// round up to the millisecond) does not push every later slot back,
    /// and after idling, two releases may go together.
    pub(super) fn on_grant(&mut self, now: Instant) {
        if let Some(rate) = self.rate(now) {
            let interval = from_secs_f64(1.0 / rate);
            self.tat = after(self.tat.max(before(now, interval)), interval);
        }
    }

    /// A granted release was never sent: its slot comes back.
    pub(super) fn on_ungrant(&mut self, now: Instant) {
        if let Some(rate) = self.rate(now) {
            self.tat = before(self.tat, from_secs_f64(1.0 / rate));
        }
    }

    /// A throttle closed `period`: set a new rate.
    pub(super) fn on_throttle(&mut self, now: Instant, period: Period) {
        // A rate is the fleet's if this period counted the fleet's answers
        // and the rate is measured from it (below, a rate derived from the
        // last one keeps its origin too).
        let was_fleet = self.fleet;
        self.fleet = period.fleet;
        if period.from_empty && period.secs > 1e-3 {
            self.measure(now, period, was_fleet);
            return;
        }
        let crude =
            (period.secs > 1e-3 && period.accepted > 0.0).then(|| period.accepted / period.secs);
        let point = (period.after_hold && crude.is_some()).then_some(Point {
            secs: period.secs,
            accepted: period.accepted,
            slow_start: period.slow_start,
        });
        let confirmed = match (self.line, point) {
            (Some(line), Some(p)) if on_line(line, p) => Some((line.0, FIT_MARGIN)),
            _ => None,
        };
        let fit = confirmed.or_else(|| match (self.point, point) {
            (Some(a), Some(b)) => {
                let fit = slope(a, b);
                self.line = fit.map(|(rate, _)| (rate, b.accepted - rate * b.secs));
                fit
            }
            _ => None,
        });
        if point.is_some() {
            self.point = point;
        }
        let current = self.rate(now);
        let floor = period.sustained.unwrap_or(0.0).max(MIN_RATE);
        match (fit, current, crude) {
            (Some((rate, margin)), _, _) => {
                self.set(now, rate.max(floor), margin, PROBE_FITTED, true);
            }
            // No fit: decrease, and to at most half of what this period
            // accepted, so that the next period is longer than this one
            // and the two can be fitted.
            (None, Some(current), _) => {
                let rate = (current * BETA).min(crude.map_or(f64::MAX, |c| c * FIRST_GUESS));
                self.fleet &= was_fleet;
                self.set(now, rate.max(floor), 1.0, PROBE_GUESSED, false);
            }
            // The first period, with a short hint: the server accepted this
            // many and then asked for up to the hint, so it takes at least
            // that many per period and hint — a cautious start, probed up
            // fast.
            (None, None, Some(_)) if period.hint.is_some() => {
                let hint = period.hint.unwrap_or(0.0);
                let rate = period.accepted / (period.secs + hint);
                self.set(now, rate.max(floor), 1.0, PROBE_HINTED, false);
            }
            (None, None, Some(crude)) => {
                self.set(
                    now,
                    (crude * FIRST_GUESS).max(floor),
                    1.0,
                    PROBE_GUESSED,
                    false,
                );
            }
            (None, None, None) => {}
        }
    }

    /// A period that began with the server's bucket empty (a throttle the
    /// key was not held for) and ended empty (this throttle): what the
    /// server accepted in it is its refill rate, exactly, unless the bucket
    /// overflowed in between (the gate sent too little for a while), which
    /// makes the measure read low; the probe above it then corrects it.
    fn measure(&mut self, now: Instant, period: Period, was_fleet: bool) {
        let measured = (period.accepted / period.secs).max(period.drained.unwrap_or(0.0));
        if period.accepted >= MEASURED && !period.coarse {
            self.set(now, measured, FIT_MARGIN, PROBE_FITTED, true);
            return;
        }
        // Few accepted: a rough measure. Cut by half at most, and never
        // below it.
        let rate = match self.rate(now) {
            Some(current) => (current * FIRST_GUESS).max(measured).min(current),
            None => measured,
        };
        if rate != measured {
            // Cut from the last rate: it is the fleet's only if that was.
            self.fleet &= was_fleet;
        }
        self.set(now, rate, 1.0, PROBE_GUESSED, self.fitted);
        self.rough = true;
    }
}

/// CUBIC's window (RFC 9438 §4.2) as a rate, `secs` after a throttle set
/// it to `base` below the measure `w_max`: `W_max × (1 + ((t − K) ÷ τ)³)`
/// with `K` such that it starts at `base` — flat near the measure, faster
/// the further past it.
fn cubic(base: f64, w_max: f64, tau: f64, secs: f64) -> f64 {
    let w_max = w_max.max(base);
    let k = tau * (1.0 - base / w_max).cbrt();
    let x = (secs - k) / tau;
    (w_max * (1.0 + x * x * x)).clamp(base.min(w_max), MAX_RATE)
}

/// The fleet's rate, shared through a store: a measure's `base` and
/// `w_max`, climbing from `since` with time constant `tau` as the
/// measuring process's own rate climbs after it. Every process computes the same curve
/// from the same record, so the fleet probes upward together — a rate
/// fixed until it expired would pin every process at one measure, however
/// low it read, and never find capacity the server adds.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Curve {
    pub(super) base: f64,
    pub(super) w_max: f64,
    pub(super) tau: f64,
    pub(super) since: Instant,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Curve {
    /// The rate at `now`.
    pub(super) fn at(&self, now: Instant) -> f64 {
        cubic(
            self.base,
            self.w_max,
            self.tau(),
            secs_between(self.since, now),
        )
    }

    /// Its time constant, as a learner's after a measure when the record's
    /// is missing or unusable (a record from another version, a bad write).
    fn tau(&self) -> f64 {
        if self.tau.is_finite() && self.tau > 0.0 {
            self.tau
        } else {
            PROBE_FITTED
        }
    }
}

/// Whether period `p` accepted what a bucket of `(rate, burst)` would have,
/// within a tenth (or two requests).
fn on_line((rate, burst): (f64, f64), p: Point) -> bool {
    let expected = burst.max(0.0) + rate * p.secs;
    (p.accepted - expected).abs() <= (0.1 * expected).max(2.0)
}

/// The server's sustained rate from two periods that each began full:
/// accepted = burst + rate × secs. `None` when the periods are too alike in
/// length or the fit is not a token bucket's (rate ≤ 0, or burst < 0).
fn slope(a: Point, b: Point) -> Option<(f64, f64)> {
    let (short, long) = if a.secs <= b.secs { (a, b) } else { (b, a) };
    let dt = long.secs - short.secs;
    if dt < 0.05_f64.max(0.2 * long.secs) {
        return None;
    }
    let rate = (long.accepted - short.accepted) / dt;
    let burst = long.accepted - rate * long.secs;
    if rate.is_nan() || rate <= 0.0 || burst < -1.0 {
        return None;
    }
    let margin = if a.slow_start || b.slow_start {
        SLOW_START_FIT_MARGIN
    } else {
        FIT_MARGIN
    };
    Some((rate, margin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn period(secs: f64, accepted: f64) -> Period {
        Period {
            secs,
            accepted,
            after_hold: true,
            from_empty: false,
            slow_start: false,
            fleet: false,
            coarse: false,
            hint: None,
            drained: None,
            sustained: None,
        }
    }

    /// A period between two throttles that each left the bucket empty.
    fn from_empty(secs: f64, accepted: f64) -> Period {
        Period {
            after_hold: false,
            from_empty: true,
            ..period(secs, accepted)
        }
    }

    #[test]
    fn two_periods_give_the_token_bucket_rate() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        // burst 10, 100/s: 0.1 s → 20 accepted, 0.5 s → 60.
        l.on_throttle(now, period(0.1, 20.0));
        assert_eq!(l.rate(now), Some(100.0));
        l.on_throttle(now, period(0.5, 60.0));
        let rate = l.rate(now).unwrap();
        assert!((rate - 97.0).abs() < 1e-6, "{rate}");
    }

    #[test]
    fn a_fixed_window_falls_back_to_decrease_floored_by_what_was_sustained() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.5, 60.0));
        let mut p = period(1.0, 60.0);
        p.sustained = Some(1.0);
        l.on_throttle(now, p);
        // Without a fit: β times the rate, and at most half of what the
        // period accepted (so that the next period is longer).
        assert_eq!(l.rate(now), Some((60.0 * BETA).min(60.0 * FIRST_GUESS)));
        for _ in 0..40 {
            l.on_throttle(now, p);
        }
        assert_eq!(l.rate(now), Some(1.0));
    }

    #[test]
    fn pacing_spaces_releases_and_gives_back_unsent_slots() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.1, 20.0)); // 100/s
        let now = now + Duration::from_secs(1); // after idling…
        assert_eq!(l.check(now), Admit::Now);
        l.on_grant(now);
        assert_eq!(l.check(now), Admit::Now); // …one interval of slack
        l.on_grant(now);
        let next = l.tat;
        assert!(next > now && next <= now + Duration::from_millis(10));
        assert_eq!(l.check(now), Admit::At(next));
        l.on_ungrant(now);
        assert_eq!(l.check(now), Admit::Now);
    }

    #[test]
    fn rate_creeps_up_between_throttles() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.1, 20.0));
        // After a guess, the rate doubles in PROBE_GUESSED seconds.
        let later = now + Duration::from_secs_f64(PROBE_GUESSED);
        assert_eq!(l.rate(later), Some(200.0));
    }

    #[test]
    fn a_period_between_two_empty_buckets_measures_the_refill_rate() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        // A stretch in which the bucket overflowed reads low; the drain
        // before the throttle corrects it.
        let p = Period {
            drained: Some(100.0),
            ..from_empty(2.0, 180.0)
        };
        l.on_throttle(now, p);
        let rate = l.rate(now).unwrap();
        assert!((rate - 100.0 * FIT_MARGIN).abs() < 1e-9, "{rate}");
        assert!(l.is_fitted());
    }

    #[test]
    fn probing_stays_flat_near_the_last_measure_then_speeds_up() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, from_empty(2.0, 200.0));
        let at = |s: f64| l.rate(now + Duration::from_secs_f64(s)).unwrap();
        // Back at the measure after K = τ ∛(1 − margin), barely past it a
        // second later, doubled τ after K.
        let k = PROBE_FITTED * (1.0 - FIT_MARGIN).cbrt();
        assert!((at(k) - 100.0).abs() < 1e-6);
        assert!(at(k + 1.0) < 101.5);
        assert!((at(k + PROBE_FITTED) - 200.0).abs() < 1e-6);
    }

    #[test]
    fn few_accepted_cut_by_half_at_most() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.1, 20.0)); // 100/s
        l.on_throttle(now, from_empty(0.05, 1.0));
        assert_eq!(l.rate(now), Some(50.0));
    }

    #[test]
    fn nothing_accepted_teaches_nothing() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.0, 0.0));
        assert!(!l.is_measured());
        assert_eq!(l.check(now), Admit::Now);
    }

    #[test]
    fn a_rate_is_the_fleets_only_if_measured_from_the_fleets_count() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.1, 20.0));
        // From this process's own answers: its share, not the fleet's.
        l.on_throttle(now, from_empty(1.0, 50.0));
        assert!(l.is_fitted() && !l.is_fleet_rate());
        // A short period of the fleet's count, too rough to measure: the
        // rate is cut from the last one, and keeps its origin.
        let rough = Period {
            fleet: true,
            coarse: true,
            ..from_empty(0.05, 40.0)
        };
        l.on_throttle(now, rough);
        assert!(!l.is_fleet_rate(), "{l:?}");
        // A full measure of the fleet's count is the fleet's.
        let full = Period {
            fleet: true,
            ..from_empty(1.0, 190.0)
        };
        l.on_throttle(now, full);
        assert!(l.is_fleet_rate());
        assert_eq!(l.rate(now), Some(190.0 * FIT_MARGIN));
    }

    #[test]
    fn a_key_follows_the_fleets_rate_and_does_not_climb_past_it() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.1, 20.0));
        l.on_throttle(now, from_empty(1.0, 300.0));
        // The fleet is paced at 180/s (measured at 185.6/s, a second ago):
        // this key adopts its curve as measured…
        let fleet = Curve {
            base: 180.0,
            w_max: 180.0 / FIT_MARGIN,
            tau: PROBE_FITTED,
            since: now - Duration::from_secs(1),
        };
        l.adopt_fleet_rate(now, fleet);
        assert_eq!(l.rate(now), Some(fleet.at(now)));
        assert!(l.is_fitted() && l.is_fleet_rate());
        // A fleet rate within 5 % changes nothing; one further above (this
        // key's measure was the low one of the fleet's) is taken too: the
        // fleet is paced at it, and so is this process when alone.
        let mine = l.rate(now);
        let near = Curve {
            base: 185.0,
            ..fleet
        };
        l.adopt_fleet_rate(now, near);
        assert_eq!(l.rate(now), mine);
        let higher = Curve {
            base: 240.0,
            w_max: 240.0,
            tau: PROBE_FITTED,
            since: now,
        };
        l.adopt_fleet_rate(now, higher);
        assert_eq!(l.rate(now), Some(240.0));
        l.adopt_fleet_rate(now, fleet);
        assert_eq!(l.rate(now), Some(fleet.at(now)));
        // It climbs with the fleet from then on, never past it (here for
        // 30 s, as long as a shared rate stands).
        let mut t = now;
        for _ in 0..300 {
            t += Duration::from_millis(100);
            l.adopt_fleet_rate(t, fleet);
            let rate = l.rate(t).unwrap();
            assert!(
                (rate - fleet.at(t)).abs() < 1e-6 * rate,
                "{rate} after {:?}",
                t - now
            );
        }
    }

    #[test]
    fn a_fleet_record_without_a_usable_tau_climbs_as_after_a_measure() {
        let now = Instant::now();
        let mut l = Learner::new(now);
        l.on_throttle(now, period(0.1, 20.0));
        for tau in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let fleet = Curve {
                base: 50.0,
                w_max: 52.0,
                tau,
                since: now,
            };
            l.adopt_fleet_rate(now, fleet);
            let later = now + Duration::from_secs(10);
            let rate = l.rate(later).unwrap();
            assert!(rate.is_finite() && rate > 52.0, "{tau}: {rate}");
            assert_eq!(Some(fleet.at(later)), l.rate(later), "{tau}");
        }
    }

    #[test]
    fn the_fleets_curve_stays_near_its_measure_then_probes_past_it() {
        let now = Instant::now();
        let fleet = Curve {
            base: 194.0,
            w_max: 200.0,
            tau: PROBE_FITTED,
            since: now,
        };
        let at = |s: f64| fleet.at(now + Duration::from_secs_f64(s));
        assert_eq!(at(0.0), 194.0);
        // Back at the measure after K = τ ∛(1 − base ÷ W_max)…
        let k = PROBE_FITTED * (1.0 - 194.0_f64 / 200.0).cbrt();
        assert!((at(k) - 200.0).abs() < 1e-6);
        // …a percent past it a second later, doubled τ after K: a rate
        // fixed at 194/s would never find the server's new capacity.
        assert!(at(k + 1.0) > 200.0 && at(k + 1.0) < 202.5);
        assert!((at(k + PROBE_FITTED) - 400.0).abs() < 1e-3);
        // Before `since` (a read-back dated a little ahead): the base.
        assert_eq!(fleet.at(now - Duration::from_millis(5)), 194.0);
    }
}
