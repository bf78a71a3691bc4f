//! Measures a key's *active periods* for the learner: from the first release
//! after a throttle (or on a fresh key) to the next throttle, how long it
//! lasted and how many requests the server accepted in it, and in what state
//! the server's limiter presumably was when it began.

use tokio::time::Instant;

use super::learner::Period;
use super::model::Grant;
use super::time::secs_between;

/// With a store: the responses all processes saw accepted, as this one
/// last read them, and the era of that count. Two counts of one era differ
/// by what the fleet accepted in between; counts of different eras cannot
/// be subtracted (Redis went down or began the count again in between), and
/// the period then counts this process's own answers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fleet {
    pub(super) count: u64,
    pub(super) era: u32,
}

/// What the fleet accepted between `then` and `now`, if both are known and
/// of one era.
fn since(now: Option<Fleet>, then: Option<Fleet>) -> Option<u64> {
    match (now, then) {
        (Some(now), Some(then)) if now.era == then.era => {
            Some(now.count.saturating_sub(then.count))
        }
        _ => None,
    }
}

/// How the server's limiter presumably was when the current period began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// Full: a fresh key, or after a hold long enough to refill it.
    Full,
    /// Empty: the period began at a throttle the gate did not hold the key
    /// for (a short hint, see `short_hint`), so the server had just refused.
    Empty,
    /// Neither is known.
    Unknown,
}

/// Checkpoints of the accepted count kept since the last throttle, and
/// their spacing: the last few seconds, in which the server's bucket last
/// overflowed, if it did.
const CHECKPOINTS: usize = 32;
const CHECKPOINT_EVERY: f32 = 0.1;
/// With a store, the shortest period whose count is a measure (seconds).
const FLEET_MIN_PERIOD: f64 = 0.25;
/// The shortest stretch a drain is measured over.
const MIN_DRAIN: f64 = 0.1;

#[derive(Debug, Clone)]
pub(super) struct Meter {
    /// `(seconds since the last throttle, accepted since it)`, a ring
    /// (small: a key's entry carries it).
    checkpoints: [(f32, u32); CHECKPOINTS],
    /// Checkpoints written since the last throttle.
    written: usize,
    /// First release of the period; `None` until one happens.
    start: Option<Instant>,
    accepted: u64,
    state: Start,
    slow_start: bool,
    last_throttle: Option<Instant>,
    accepted_since_throttle: u64,
    /// With a store: responses all processes had seen accepted when the
    /// period began, and at the last throttle. The period's count is then
    /// the fleet's, not this process's share.
    fleet_at_start: Option<Fleet>,
    fleet_at_throttle: Option<Fleet>,
    /// Checkpoints since the last throttle were written from the fleet's
    /// count: they measure no drain (see `close`).
    fleet_checkpoints: bool,
}

impl Meter {
    pub(super) fn new() -> Self {
        Meter {
            checkpoints: [(0.0, 0); CHECKPOINTS],
            written: 0,
            start: None,
            accepted: 0,
            // A key never seen is presumably at its full burst.
            state: Start::Full,
            slow_start: false,
            last_throttle: None,
            accepted_since_throttle: 0,
            fleet_at_start: None,
            fleet_at_throttle: None,
            fleet_checkpoints: false,
        }
    }

    /// A release: the first one opens the period.
    pub(super) fn on_grant(&mut self, now: Instant, slow_start: bool, fleet: Option<Fleet>) {
        if self.start.is_none() {
            self.start = Some(now);
            self.slow_start = slow_start;
            self.fleet_at_start = fleet;
        }
    }

    /// The last throttle, or before the first one the first release of
    /// the period (a fresh key's), if any.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn last_event(&self) -> Option<Instant> {
        self.last_throttle.or(self.start)
    }

    /// The last throttle, if any.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn last_throttle(&self) -> Option<Instant> {
        self.last_throttle
    }

    /// Whether a throttle has closed a period yet.
    pub(super) fn has_throttled(&self) -> bool {
        self.last_throttle.is_some()
    }

    /// Whether the current period has begun (its first release made).
    pub(super) fn has_begun(&self) -> bool {
        self.start.is_some()
    }

    /// `n` accepted responses counted outside the table's lock, to requests
    /// of the current period (see `super::lane`: only a key that was never
    /// throttled uses it, so no checkpoint is due).
    pub(super) fn add_accepted(&mut self, n: u64) {
        if self.start.is_some() {
            self.accepted += n;
        }
        self.accepted_since_throttle += n;
    }

    /// Whether a response to `grant` belongs to the current period: a
    /// throttle for a request released before it began belongs to the
    /// episode already learned from.
    pub(super) fn covers(&self, grant: Grant) -> bool {
        self.start.is_some_and(|s| grant.released_at >= s)
    }

    /// Accepted in the current period: by all processes, with a store.
    pub(super) fn accepted(&self, fleet: Option<Fleet>) -> u64 {
        since(fleet, self.fleet_at_start).map_or(self.accepted, |n| n.max(self.accepted))
    }

    /// An accepted response; `fleet` is what all processes saw accepted,
    /// with a store.
    pub(super) fn on_accepted(&mut self, now: Instant, grant: Grant, fleet: Option<Fleet>) {
        if self.covers(grant) {
            self.accepted += 1;
        }
        if let Some(throttle) = self.last_throttle {
            let at = secs_between(throttle, now) as f32;
            let last = self
                .written
                .checked_sub(1)
                .map(|i| self.checkpoints[i % CHECKPOINTS].0);
            if last.is_none_or(|t| at - t >= CHECKPOINT_EVERY) {
                let count = match since(fleet, self.fleet_at_throttle) {
                    Some(n) => {
                        self.fleet_checkpoints = true;
                        n
                    }
                    None => self.accepted_since_throttle,
                };
                let count = u32::try_from(count).unwrap_or(u32::MAX);
                self.checkpoints[self.written % CHECKPOINTS] = (at, count);
                self.written += 1;
            }
        }
        self.accepted_since_throttle += 1;
    }

    /// The server's refill rate implied by the stretch before a throttle at
    /// `now` in which its bucket drained: a bucket last full at `s` and
    /// empty at `now` accepted `burst + rate × (now − s)`, so the rate is at
    /// least `(accepted since s − burst) ÷ (now − s)` for every `s`, with
    /// equality at the last instant it was full. The burst is known as
    /// `(a0, t0)`: a period from full to empty that accepted
    /// `a0 = burst + rate × t0`, so the rate is
    /// `(accepted since s − a0) ÷ (now − s − t0)`.
    fn drained(&self, now: Instant, (a0, t0): (f64, f64)) -> Option<f64> {
        let since = secs_between(self.last_throttle?, now);
        let first = self.written.saturating_sub(CHECKPOINTS);
        (first..self.written)
            .map(|i| self.checkpoints[i % CHECKPOINTS])
            .filter_map(|(t, count)| {
                let secs = since - f64::from(t) - t0;
                let accepted = self
                    .accepted_since_throttle
                    .saturating_sub(u64::from(count)) as f64;
                (secs >= MIN_DRAIN).then(|| (accepted - a0) / secs)
            })
            .max_by(f64::total_cmp)
    }

    /// Starts afresh with the server presumably full (after an outage, or a
    /// probe that showed a hint was meant).
    pub(super) fn restart(&mut self) {
        self.start = None;
        self.accepted = 0;
        self.state = Start::Full;
    }

    /// A throttle closes the period. `next` is how the next one begins.
    /// `fleet` is what all processes saw accepted, with a store.
    /// `burst` is the server's burst, as far as the learner knows it (see
    /// `drained`).
    pub(super) fn close(
        &mut self,
        now: Instant,
        next: Start,
        fleet: Option<Fleet>,
        burst: Option<(f64, f64)>,
    ) -> Period {
        // What all processes saw accepted, rather than this one's share
        // (never less than this one's: the fleet's count is read back late,
        // and may not show them yet) — if it is known over the stretch.
        let since_start = since(fleet, self.fleet_at_start);
        let since_throttle = since(fleet, self.fleet_at_throttle);
        if let Some(n) = since_start {
            self.accepted = n.max(self.accepted);
        }
        if let Some(n) = since_throttle {
            self.accepted_since_throttle = n.max(self.accepted_since_throttle);
        }
        // The drain is measured from this process's own answers only. The
        // fleet's count, written at once near a throttle (see
        // `Constraints::counts_promptly`), measures a period from an empty
        // bucket as it is; over the drain's stretches, as short as 0.1 s,
        // a few answers written late skew it high (234 to 258/s traced
        // against a 200/s server), and the fleet's rate with it.
        let own = since_throttle.is_none() && !self.fleet_checkpoints;
        let drained = burst.filter(|_| own).and_then(|b| self.drained(now, b));
        let start = self.start.unwrap_or(now);
        let sustained = self.last_throttle.and_then(|t| {
            let secs = secs_between(t, now);
            (secs > 0.0).then(|| self.accepted_since_throttle as f64 / secs)
        });
        // From an empty bucket, the period counts from the throttle that
        // emptied it, with every request accepted since (those in flight
        // then included), not from the first release after it.
        let (from, accepted, counted_by_fleet) = match (self.state, self.last_throttle) {
            (Start::Empty, Some(t)) => (t, self.accepted_since_throttle, since_throttle.is_some()),
            _ => (start, self.accepted, since_start.is_some()),
        };
        let period = Period {
            secs: secs_between(from, now),
            accepted: accepted as f64,
            after_hold: self.state == Start::Full,
            from_empty: self.state == Start::Empty,
            slow_start: self.slow_start,
            hint: None,
            fleet: counted_by_fleet,
            // A store's counts are read back every 50 ms or so: too coarse
            // for a short period.
            coarse: counted_by_fleet && secs_between(from, now) < FLEET_MIN_PERIOD,
            drained,
            sustained,
        };
        self.start = None;
        self.accepted = 0;
        self.state = next;
        self.slow_start = false;
        self.last_throttle = Some(now);
        self.accepted_since_throttle = 0;
        self.written = 0;
        self.fleet_checkpoints = false;
        self.fleet_at_start = None;
        self.fleet_at_throttle = fleet;
        period
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn grant(at: Instant) -> Grant {
        Grant::at(at, 1)
    }

    #[test]
    fn the_drain_before_a_throttle_gives_the_rate_despite_an_overflow() {
        // A bucket of 100/s, burst 10, emptied by a throttle at 0: the gate
        // then sends 50/s for 1 s (the bucket fills at 0.2 s and overflows),
        // then 150/s until it is empty again, 0.2 s later.
        let t0 = Instant::now();
        let mut m = Meter::new();
        m.on_grant(t0, false, None);
        let _ = m.close(t0, Start::Empty, None, None);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for i in 1..=50 {
            m.on_grant(ms(i * 20), false, None);
            m.on_accepted(ms(i * 20), grant(ms(i * 20)), None);
        }
        let mut t = 1000.0;
        for _ in 0..30 {
            t += 1000.0 / 150.0;
            let at = t0 + Duration::from_secs_f64(t / 1000.0);
            m.on_accepted(at, grant(at), None);
        }
        let end = t0 + Duration::from_secs_f64(t / 1000.0);
        let p = m.close(end, Start::Empty, None, Some((10.0, 0.0)));
        assert!(p.from_empty);
        // 80 accepted in 1.2 s reads 67/s; the drain reads about 100.
        assert!((p.accepted / p.secs - 66.7).abs() < 1.0, "{p:?}");
        let drained = p.drained.unwrap();
        assert!((drained - 100.0).abs() < 12.0, "{drained}");
    }

    /// A fleet count of `count` in era 0.
    fn fleet(count: u64) -> Option<Fleet> {
        Some(Fleet { count, era: 0 })
    }

    #[test]
    fn a_period_the_fleet_counted_measures_no_drain() {
        // As above, with the fleet's count: this process accepts every
        // answer of the fleet's stretch; the count is read back as it goes.
        let t0 = Instant::now();
        let mut m = Meter::new();
        m.on_grant(t0, false, fleet(0));
        let _ = m.close(t0, Start::Empty, fleet(0), None);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for i in 1..=50 {
            m.on_grant(ms(i * 20), false, fleet(i - 1));
            m.on_accepted(ms(i * 20), grant(ms(i * 20)), fleet(i));
        }
        let mut t = 1000.0;
        for n in 51..=80 {
            t += 1000.0 / 150.0;
            let at = t0 + Duration::from_secs_f64(t / 1000.0);
            m.on_accepted(at, grant(at), fleet(n));
        }
        let end = t0 + Duration::from_secs_f64(t / 1000.0);
        let p = m.close(end, Start::Empty, fleet(80), Some((10.0, 0.0)));
        assert!(p.from_empty && p.fleet, "{p:?}");
        assert_eq!(p.accepted, 80.0);
        assert_eq!(p.drained, None, "a drain of the fleet's count: {p:?}");
    }

    #[test]
    fn a_fleet_count_read_back_late_never_counts_less_than_this_process() {
        // With a store, the fleet's count comes back every 50 ms or so: at a
        // throttle early in the key's life it may not show yet what this
        // process saw accepted.
        let t0 = Instant::now();
        let mut m = Meter::new();
        m.on_grant(t0, true, fleet(0));
        for i in 0..5 {
            let at = t0 + Duration::from_millis(i);
            m.on_accepted(at, grant(t0), fleet(0));
        }
        let p = m.close(t0 + Duration::from_millis(20), Start::Empty, fleet(0), None);
        assert_eq!(p.accepted, 5.0);
        assert!(p.fleet && p.coarse, "{p:?}");
        // A fleet count that has caught up counts the others too.
        m.on_grant(t0 + Duration::from_millis(30), false, fleet(0));
        m.on_accepted(
            t0 + Duration::from_millis(31),
            grant(t0 + Duration::from_millis(30)),
            fleet(0),
        );
        let p = m.close(
            t0 + Duration::from_millis(300),
            Start::Empty,
            fleet(40),
            None,
        );
        assert_eq!(p.accepted, 40.0);
        assert!(p.fleet && !p.coarse, "{p:?}");
    }

    #[test]
    fn counts_of_two_eras_are_not_subtracted_the_period_counts_its_own() {
        // Redis went down (or began its count again) between the throttle
        // that began the period and the one that ends it: the fleet's count
        // then says nothing of the period; this process's own answers do,
        // and the period is its own share, not the fleet's rate.
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut m = Meter::new();
        m.on_grant(t0, false, fleet(100));
        let _ = m.close(ms(10), Start::Empty, fleet(100), None);
        for i in 1..=30 {
            m.on_grant(ms(10 * i), false, fleet(100));
            m.on_accepted(ms(10 * i + 5), grant(ms(10 * i)), fleet(100 + 4 * i));
        }
        // Era 1 (down, then up again): the count reads less than before.
        let later = Some(Fleet { count: 3, era: 1 });
        let p = m.close(ms(400), Start::Empty, later, Some((20.0, 0.0)));
        assert_eq!(p.accepted, 30.0, "own answers: {p:?}");
        assert!(!p.fleet && !p.coarse, "{p:?}");
        assert_eq!(p.drained, None, "checkpoints of the fleet's count: {p:?}");
        // While Redis does not answer there is no fleet count at all; when
        // it answers again, the count is of a new era.
        for i in 41..=60 {
            m.on_grant(ms(10 * i), false, None);
            m.on_accepted(ms(10 * i + 5), grant(ms(10 * i)), None);
        }
        let back = Some(Fleet { count: 3, era: 2 });
        let p = m.close(ms(700), Start::Empty, back, None);
        assert_eq!(p.accepted, 20.0, "{p:?}");
        assert!(!p.fleet, "{p:?}");
        // One era throughout: the fleet's count again.
        for i in 71..=90 {
            m.on_grant(ms(10 * i), false, back);
            m.on_accepted(ms(10 * i + 5), grant(ms(10 * i)), back);
        }
        let p = m.close(
            ms(1000),
            Start::Empty,
            Some(Fleet { count: 83, era: 2 }),
            None,
        );
        assert_eq!(p.accepted, 80.0, "{p:?}");
        assert!(p.fleet, "{p:?}");
    }
}
