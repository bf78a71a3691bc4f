//! What this process knows of each key, between calls to Redis: its hold,
//! the fleet's learned rate, a lease per constraint, and the background
//! calls that refresh them.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::lease::{Lease, Pace, Segment};
use super::script::Reply;

/// Keys remembered locally before idle ones are forgotten.
pub(super) const MAX_KEYS: usize = 10_000;
pub(super) const IDLE: Duration = Duration::from_secs(60);

/// What this process knows of one key.
pub(super) struct KeyState {
    pub(super) hold: Option<Instant>,
    pub(super) rate: Option<(f64, Instant)>,
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
}

/// A background call.
pub(super) enum Job {
    Refill {
        constraint: String,
        pace: Pace,
        n: u64,
    },
    Hold(Duration),
    Rate(f64),
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
            .saturating_add(self.unsent)
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
            return tell;
        };
        self.synced = Some(now);
        if self.origin.is_none() {
            self.origin = Some(r.accepted.saturating_sub(flushed));
        }
        self.accepted = self.accepted.max(r.accepted);
        if r.hold > 0 {
            let until = crate::rate_limit::time::after(now, micros(r.hold));
            if self.hold.is_none_or(|h| until > h) {
                self.hold = Some(until);
                tell = true;
            }
        }
        let rate = r
            .rate
            .map(|(rate, ttl)| (rate, crate::rate_limit::time::after(now, micros(ttl))));
        if rate.is_some_and(|(new, _)| self.rate.is_none_or(|(old, _)| new < old)) {
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
