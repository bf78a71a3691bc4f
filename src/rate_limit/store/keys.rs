//! What this process knows of each key, between calls to Redis: its hold,
//! the fleet's learned rate, a lease per constraint, and the background
//! calls that refresh them.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::lease::{Lease, Pace, Segment};
use super::offer::Offer;
use super::script::Reply;
use crate::rate_limit::learner::Curve;

/// A process's share of the fleet's answers is measured over at least this
/// long, and at least this many of the fleet's answers.
const SHARE_WINDOW: Duration = Duration::from_secs(1);
const SHARE_ANSWERS: u64 = 16;
/// A stretch this old without enough answers is begun again.
const SHARE_STALE: Duration = Duration::from_secs(30);
/// The least share kept to while Redis is down: a process that was idle
/// while the others sent still gets some of the pace (up to 64 processes
/// at this floor together keep to the pace).
const MIN_SHARE: f64 = 1.0 / 64.0;

/// Keys remembered locally before idle ones are forgotten.
pub(super) const MAX_KEYS: usize = 10_000;
pub(super) const IDLE: Duration = Duration::from_secs(60);

/// What this process knows of one key.
pub(super) struct KeyState {
    pub(super) hold: Option<Instant>,
    /// The fleet's rate, and until when it stands.
    pub(super) rate: Option<(Curve, Instant)>,
    pub(super) leases: Vec<(String, Lease)>,
    pub(super) synced: Option<Instant>,
    pub(super) syncing: bool,
    pub(super) used: Instant,
    /// Responses accepted here and not yet added in Redis.
    pub(super) unsent: u64,
    /// Responses accepted by all processes, as last read.
    pub(super) accepted: u64,
    /// The count in Redis before this process first added to it: what
    /// earlier processes (a previous run, a restarted replica) counted is
    /// not this process's to measure.
    pub(super) origin: Option<u64>,
    /// When the count in Redis began (server µs), and the one before: a
    /// new one means the count vanished (Redis restarted, or the key
    /// expired) and began again from 0; a late reply may still bring the
    /// one before.
    epoch: i64,
    old_epoch: i64,
    /// What the fleet accepted since this process's first read, in counts
    /// that have since vanished.
    carried: u64,
    /// Bumped whenever the fleet count stops being continuous for this
    /// process: a call failed (the others' answers reach it late, or not
    /// at all, until Redis answers again), Redis answered again, the count
    /// began again, or another process came back to it with what it counted
    /// meanwhile. A count read in one era and one read in another cannot be
    /// subtracted.
    era: u32,
    pub(super) failing: bool,
    /// The count's rejoins as last read (see `Reply::rejoins`): another
    /// one means a process added late what it counted while Redis did not
    /// answer it — a jump that measures nothing.
    rejoins: u64,
    /// Responses this process accepted, all told.
    pub(super) own: u64,
    /// This process's share of what the fleet accepted, over the last
    /// stretch measured (see `SHARE_WINDOW`), and where the current one
    /// began: `(when, own, fleet)`.
    share: Option<f64>,
    share_mark: Option<(Instant, u64, u64)>,
}

/// A background call.
pub(super) enum Job {
    Refill {
        constraint: String,
        pace: Pace,
        n: u64,
    },
    Hold(Duration),
    /// Offer a rate.
    Rate(Offer),
    Peek,
}

/// The state of `key`, made if new (forgetting idle keys at the cap).
pub(super) fn entry<'a>(
    table: &'a mut HashMap<String, KeyState>,
    key: &str,
    now: Instant,
) -> Option<&'a mut KeyState> {
    if !table.contains_key(key) {
        if table.len() >= MAX_KEYS {
            table.retain(|_, ks| {
                now.saturating_duration_since(ks.used) < IDLE
                    || ks.leases.iter().any(|(_, l)| l.refilling.is_some())
            });
        }
        table.insert(key.to_owned(), KeyState::new(now));
    }
    let ks = table.get_mut(key)?;
    ks.used = now;
    Some(ks)
}

impl KeyState {
    pub(super) fn new(now: Instant) -> Self {
        KeyState {
            hold: None,
            rate: None,
            leases: Vec::new(),
            synced: None,
            syncing: false,
            used: now,
            unsent: 0,
            accepted: 0,
            origin: None,
            epoch: 0,
            old_epoch: 0,
            carried: 0,
            era: 0,
            failing: false,
            rejoins: 0,
            own: 0,
            share: None,
            share_mark: None,
        }
    }

    pub(super) fn lease(&mut self, constraint: &str) -> &mut Lease {
        let i = match self.leases.iter().position(|(c, _)| c == constraint) {
            Some(i) => i,
            None => {
                self.leases.push((constraint.to_owned(), Lease::new()));
                self.leases.len() - 1
            }
        };
        &mut self.leases[i].1
    }

    /// Responses accepted by all processes since this one first read the
    /// count, its own not yet added included.
    pub(super) fn fleet_accepted(&self) -> u64 {
        self.accepted
            .saturating_sub(self.origin.unwrap_or(self.accepted))
            .saturating_add(self.carried)
            .saturating_add(self.unsent)
    }

    /// This process's recent share of what the fleet accepted, once
    /// measured: what it keeps to of each shared pace while Redis is down.
    pub(super) fn share(&self) -> Option<f64> {
        self.share
    }

    /// Measures the share over stretches of the fleet's count read back
    /// while Redis answers.
    fn measure_share(&mut self, now: Instant) {
        let fleet = self.fleet_accepted();
        let Some((at, own, total)) = self.share_mark else {
            self.share_mark = Some((now, self.own, fleet));
            return;
        };
        let elapsed = now.saturating_duration_since(at);
        let answers = fleet.saturating_sub(total);
        if elapsed >= SHARE_WINDOW && answers >= SHARE_ANSWERS {
            let mine = self.own.saturating_sub(own) as f64;
            self.share = Some((mine / answers as f64).clamp(MIN_SHARE, 1.0));
            self.share_mark = Some((now, self.own, fleet));
        } else if elapsed >= SHARE_STALE {
            self.share_mark = Some((now, self.own, fleet));
        }
    }

    /// The era of the fleet count (see `era`), `None` while calls fail:
    /// the count then holds only what this process accepted itself.
    pub(super) fn count_era(&self) -> Option<u32> {
        (!self.failing).then_some(self.era)
    }

    /// Takes in the count a reply read: a count that began again carries
    /// what the vanished one held; a late reply about the vanished one is
    /// left out.
    fn take_count(&mut self, r: &Reply, flushed: u64) {
        if r.epoch == 0 || r.epoch == self.old_epoch {
            // No count yet (or it just vanished; the next one to count
            // begins it again), or news of the count before: nothing new.
            if self.origin.is_none() && r.epoch == 0 {
                self.origin = Some(0);
            }
            return;
        }
        if r.epoch != self.epoch {
            if self.epoch != 0 {
                // A count that began again (from 0: the call's own flush
                // is in it) after this process had read one: carry the old
                // one's, and the new one is all since this process began.
                self.carried = self.fleet_accepted().saturating_sub(self.unsent);
                self.origin = Some(0);
                self.accepted = 0;
                self.era = self.era.wrapping_add(1);
            }
            self.old_epoch = self.epoch;
            self.epoch = r.epoch;
            self.rejoins = r.rejoins;
        } else if r.rejoins > self.rejoins {
            self.rejoins = r.rejoins;
            self.era = self.era.wrapping_add(1);
        }
        if self.origin.is_none() {
            self.origin = Some(r.accepted.saturating_sub(flushed));
        }
        self.accepted = self.accepted.max(r.accepted);
    }

    /// Records what a call that added `flushed` accepted responses brought
    /// back (`None`: it failed); whether the gate should be told.
    pub(super) fn record(
        &mut self,
        job: &Job,
        reply: Option<&Reply>,
        flushed: u64,
        now: Instant,
    ) -> bool {
        let mut tell = false;
        match job {
            Job::Refill {
                constraint, pace, ..
            } => {
                let lease = self.lease(constraint);
                lease.refilling = None;
                if let Some(r) = reply {
                    lease.add(segment(r, pace, now));
                }
                // Waiters may be pending on it, whatever the outcome.
                tell = true;
            }
            Job::Peek => self.syncing = false,
            Job::Hold(_) | Job::Rate(_) => {}
        }
        let Some(r) = reply else {
            if !self.failing {
                self.failing = true;
                self.era = self.era.wrapping_add(1);
            }
            return tell;
        };
        let era = self.era;
        if self.failing {
            self.failing = false;
            self.era = self.era.wrapping_add(1);
        }
        self.synced = Some(now);
        self.take_count(r, flushed);
        if era != self.era {
            // Counts of two eras: a stretch across them measures nothing.
            self.share_mark = None;
        }
        self.measure_share(now);
        if r.hold > 0 {
            let until = crate::rate_limit::time::after(now, micros(r.hold));
            if self.hold.is_none_or(|h| until > h) {
                self.hold = Some(until);
                tell = true;
            }
        }
        let rate = r.rate.map(|sr| {
            let curve = Curve {
                base: sr.base,
                w_max: sr.w_max,
                tau: sr.tau,
                since: crate::rate_limit::time::before(now, micros(sr.age)),
            };
            (curve, crate::rate_limit::time::after(now, micros(sr.ttl)))
        });
        let changed = |new: &Curve, old: &Curve| (new.base, new.w_max) != (old.base, old.w_max);
        if rate.is_some_and(|(new, _)| self.rate.is_none_or(|(old, _)| changed(&new, &old))) {
            tell = true;
        }
        self.rate = rate;
        tell
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// A reserved batch dated on this process's clock, from the moment the reply
/// arrived (a little after the server's now: on the safe side).
fn segment(r: &Reply, pace: &Pace, now: Instant) -> Segment {
    let floor = crate::rate_limit::time::after(now, micros(r.floor));
    let start = if r.first >= 0 {
        crate::rate_limit::time::after(now, micros(r.first))
    } else {
        crate::rate_limit::time::before(now, micros(-r.first))
    };
    Segment {
        floor,
        start,
        interval: Duration::from_micros(pace.interval_us()),
        count: r.granted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peek's reply: the count `accepted`, begun at `epoch`.
    fn read(accepted: u64, epoch: i64) -> Reply {
        Reply {
            granted: 0,
            first: 0,
            floor: 0,
            hold: 0,
            rate: None,
            total: 0,
            accepted,
            epoch,
            rejoins: 0,
        }
    }

    #[test]
    fn the_fleet_count_goes_on_when_redis_begins_it_again() {
        let now = Instant::now();
        let mut ks = KeyState::new(now);
        // First read: 500 counted before this process began, 3 of them its own.
        assert!(!ks.record(&Job::Peek, Some(&read(503, 7)), 3, now));
        assert_eq!(ks.fleet_accepted(), 3);
        assert_eq!(ks.count_era(), Some(0));
        ks.record(&Job::Peek, Some(&read(520, 7)), 0, now);
        assert_eq!(ks.fleet_accepted(), 20);
        // Redis restarted: no count, then one begun again from 0.
        ks.record(&Job::Peek, Some(&read(0, 0)), 0, now);
        assert_eq!(ks.fleet_accepted(), 20, "no count is no news");
        ks.unsent = 2;
        ks.record(&Job::Peek, Some(&read(5, 9)), 0, now);
        assert_eq!(ks.fleet_accepted(), 27, "the new count adds to the old");
        assert_eq!(
            ks.count_era(),
            Some(1),
            "two counts that cannot be subtracted"
        );
        // A late reply about the count before changes nothing.
        ks.record(&Job::Peek, Some(&read(530, 7)), 0, now);
        assert_eq!(ks.fleet_accepted(), 27);
        ks.unsent = 0;
        ks.record(&Job::Peek, Some(&read(11, 9)), 2, now);
        assert_eq!(ks.fleet_accepted(), 31);
        assert_eq!(ks.count_era(), Some(1));
    }

    #[test]
    fn a_failed_call_ends_the_counts_era_until_redis_answers_again() {
        let now = Instant::now();
        let mut ks = KeyState::new(now);
        // No count in Redis yet: all the count that begins later is new.
        ks.record(&Job::Peek, Some(&read(0, 0)), 0, now);
        ks.record(&Job::Peek, Some(&read(4, 3)), 0, now);
        assert_eq!((ks.fleet_accepted(), ks.count_era()), (4, Some(0)));
        ks.record(&Job::Peek, None, 0, now);
        ks.record(&Job::Peek, None, 0, now);
        assert_eq!(ks.count_era(), None, "no fleet count while calls fail");
        ks.record(&Job::Peek, Some(&read(9, 3)), 0, now);
        assert_eq!((ks.fleet_accepted(), ks.count_era()), (9, Some(2)));
    }

    #[test]
    fn a_process_measures_its_share_of_the_fleets_answers_while_redis_answers() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut ks = KeyState::new(t0);
        ks.record(&Job::Peek, Some(&read(0, 0)), 0, t0);
        assert_eq!(ks.share(), None, "not measured yet");
        // A second in which the fleet accepted 40, this process 10 of them
        // (flushed with the read).
        ks.own = 10;
        ks.record(&Job::Peek, Some(&read(40, 5)), 10, at(1000));
        assert_eq!(ks.share(), Some(0.25));
        // Too few answers for a measure: the share stands, the stretch
        // goes on until it has enough.
        ks.own += 1;
        ks.record(&Job::Peek, Some(&read(44, 5)), 1, at(2000));
        assert_eq!(ks.share(), Some(0.25));
        ks.own += 19;
        ks.record(&Job::Peek, Some(&read(80, 5)), 19, at(2500));
        assert_eq!(ks.share(), Some(0.5));
        // An outage: no measure across it; the share stands until one
        // stretch after it has been measured.
        ks.record(&Job::Peek, None, 0, at(3000));
        ks.own += 30;
        ks.record(&Job::Peek, Some(&read(110, 5)), 30, at(6000));
        assert_eq!(ks.share(), Some(0.5), "a stretch across the outage");
        ks.own += 5;
        ks.record(&Job::Peek, Some(&read(135, 5)), 5, at(7000));
        assert_eq!(ks.share(), Some(0.2));
        // Idle while the others sent: the floor, not nothing.
        ks.record(&Job::Peek, Some(&read(175, 5)), 0, at(8000));
        assert_eq!(ks.share(), Some(MIN_SHARE));
    }

    #[test]
    fn another_process_coming_back_with_its_count_ends_the_era() {
        let now = Instant::now();
        let mut ks = KeyState::new(now);
        ks.record(&Job::Peek, Some(&read(10, 3)), 0, now);
        let era = ks.count_era();
        // Another process could not reach Redis for a while; it comes back
        // and adds, at once, what it counted meanwhile.
        let back = Reply {
            rejoins: 1,
            ..read(90, 3)
        };
        ks.record(&Job::Peek, Some(&back), 0, now);
        assert_eq!(ks.fleet_accepted(), 80, "counted, all the same");
        assert_ne!(ks.count_era(), era, "a jump that measures nothing");
        let era = ks.count_era();
        // A late reply from before it came back changes nothing.
        ks.record(&Job::Peek, Some(&read(85, 3)), 0, now);
        assert_eq!(ks.count_era(), era);
    }
}
