//! The quotas a key's server stated, each apart (an IETF policy, requests or
//! tokens, a resource's quota), and whether each is still believed.
//!
//! Trust: a quota that claims room while the server throttles the requests
//! it binds is contradicted. Contradictions come singly at a window's edge
//! (a request in flight not yet counted), so a quota is dropped from pacing
//! only after [`STRIKES`] of them with fewer than [`FORGIVE`] accepted
//! replies in between; the key's rate is then learned from its throttles
//! instead. It is believed again once what it says and what happens agree:
//! it states that nothing is left (`remaining` 0).

use std::time::Duration;

use tokio::time::Instant;

use super::model::{Admit, Grant, Need, Uncounted};
use super::quota::{Quota, Reply, Statement};
use crate::headers::{Stated, Unit, MAX_STATED};

/// Contradictions that make a quota lose trust.
const STRIKES: u8 = 3;
/// Accepted replies, in a row, that wipe the strikes.
const FORGIVE: u32 = 50;

#[derive(Debug, Clone)]
pub(super) struct Tracked {
    id: u64,
    pub(super) unit: Unit,
    /// Binds only requests of this resource (`None`: every request).
    resource: Option<u64>,
    pub(super) quota: Quota,
    strikes: u8,
    accepted_in_a_row: u32,
    pub(super) trusted: bool,
    updated: Instant,
}

impl Tracked {
    /// Whether this quota binds a request of `resource`.
    pub(super) fn binds(&self, need: &Need) -> bool {
        self.trusted && (self.resource.is_none() || self.resource == need.resource)
    }

    /// Whether this quota binds every request of the host.
    pub(super) fn binds_host(&self) -> bool {
        self.resource.is_none()
    }

    /// A trusted quota of the whole host that paces requests at a known
    /// rate: the key's rate needs no learning then.
    pub(super) fn paces_requests(&self) -> bool {
        self.trusted
            && self.resource.is_none()
            && !self.unit.counts_tokens()
            && self.quota.has_rate()
    }

    pub(super) fn check(&self, now: Instant, in_flight: u32, need: &Need) -> Admit {
        self.quota.check(now, in_flight, need.units(self.unit))
    }
}

/// Every stated quota of a key: at most [`MAX_STATED`] (the least recently
/// stated goes).
#[derive(Debug, Clone, Default)]
pub(super) struct Quotas {
    pub(super) items: Vec<Tracked>,
}

/// What a response's statements changed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Learned {
    /// A windowed quota ran dry; it resets after this long.
    pub(super) exhausted: Option<Duration>,
    /// A resource was named: the request belonged to it.
    pub(super) resource: Option<u64>,
}

impl Quotas {
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Tracked> {
        self.items.iter()
    }

    /// Reads one response's statements. `uncounted` are the requests in
    /// flight its numbers may not include.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_statements<'a>(
        &mut self,
        stated: impl Iterator<Item = &'a Stated>,
        now: Instant,
        grant: Grant,
        uncounted: Uncounted,
        next_seq: u64,
        max_hold: Duration,
        reply: Reply,
    ) -> Learned {
        let throttled = reply == Reply::Throttled;
        let mut learned = Learned::default();
        for s in stated {
            let Some(st) = Statement::from_stated(s, max_hold) else {
                continue;
            };
            learned.resource = learned.resource.or(s.resource);
            let others = uncounted.units(s.unit);
            let t = match self.items.iter().position(|t| t.id == s.id) {
                Some(i) => {
                    let t = &mut self.items[i];
                    let was_exhausted = t.quota.is_exhausted(now);
                    t.quota.update(&st, now, grant, (others, next_seq), reply);
                    if st.remaining == 0 && !was_exhausted && !t.quota.is_continuous() {
                        learned.exhausted = Some(st.reset);
                    }
                    t
                }
                None => {
                    if self.items.len() >= MAX_STATED {
                        self.forget_oldest();
                    }
                    if st.remaining == 0 && !st.continuous {
                        learned.exhausted = Some(st.reset);
                    }
                    self.items.push(Tracked {
                        id: s.id,
                        unit: s.unit,
                        resource: s.resource,
                        quota: Quota::new(&st, now, grant, others, next_seq),
                        strikes: 0,
                        accepted_in_a_row: 0,
                        trusted: true,
                        updated: now,
                    });
                    self.items.last_mut().expect("just pushed")
                }
            };
            t.updated = now;
            if st.remaining == 0 {
                // Says it is out: consistent with any throttle.
                t.strikes = 0;
                t.trusted = true;
            } else if throttled && t.binds(&grant.need) {
                // Throttled while stating room: contradicted.
                t.strikes = t.strikes.saturating_add(1);
                t.accepted_in_a_row = 0;
            }
        }
        learned
    }

    fn forget_oldest(&mut self) {
        if let Some(i) = (0..self.items.len()).min_by_key(|&i| self.items[i].updated) {
            self.items.swap_remove(i);
        }
    }

    /// A throttle for `need`: quotas that bind it and claimed room are
    /// contradicted (unless this very reply said otherwise, counted in
    /// [`Quotas::on_statements`]); a quota read as continuous on evidence
    /// alone switches back. Returns whether a quota lost trust.
    pub(super) fn on_throttle(
        &mut self,
        now: Instant,
        grant: &Grant,
        need: &Need,
        stated: &[u64],
    ) -> bool {
        let mut lost = false;
        for t in &mut self.items {
            if !t.binds(need) {
                continue;
            }
            t.quota.on_throttle(now, grant.released_at);
            if !stated.contains(&t.id) && !t.quota.is_exhausted(now) {
                t.strikes = t.strikes.saturating_add(1);
                t.accepted_in_a_row = 0;
            }
            if t.strikes >= STRIKES {
                t.trusted = false;
                t.strikes = 0;
                lost = true;
            }
        }
        lost
    }

    /// An accepted reply for `need`: enough of them in a row forgive.
    pub(super) fn on_accepted(&mut self, need: &Need) {
        for t in &mut self.items {
            if t.binds(need) {
                t.accepted_in_a_row = t.accepted_in_a_row.saturating_add(1);
                if t.accepted_in_a_row >= FORGIVE {
                    t.strikes = 0;
                }
            }
        }
    }

    pub(super) fn on_grant(&mut self, now: Instant, need: &Need) {
        for t in &mut self.items {
            if t.binds(need) {
                t.quota.on_grant(now, need.units(t.unit));
            }
        }
    }

    pub(super) fn on_ungrant(&mut self, need: &Need) {
        for t in &mut self.items {
            if t.binds(need) {
                t.quota.on_ungrant(need.units(t.unit));
            }
        }
    }

    /// Drops quotas whose window is over with nothing known past it.
    /// Returns whether any was dropped.
    pub(super) fn drop_stale(&mut self, now: Instant) -> bool {
        let before = self.items.len();
        self.items.retain(|t| !t.quota.is_stale(now));
        self.items.len() != before
    }

    pub(super) fn paces_requests(&self) -> bool {
        self.items.iter().any(Tracked::paces_requests)
    }

    /// The slowest rate of the quotas that pace requests.
    #[cfg(feature = "redis")]
    pub(super) fn request_rate(&self) -> Option<f64> {
        self.items
            .iter()
            .filter(|t| t.paces_requests())
            .filter_map(|t| t.quota.rate())
            .min_by(f64::total_cmp)
    }

    /// Whether any quota binding the whole host is believed.
    pub(super) fn trusted_host_wide(&self) -> bool {
        self.items.iter().any(|t| t.trusted && t.resource.is_none())
    }

    /// Whether a believed quota binding `need` is out: a throttle for it
    /// is explained.
    pub(super) fn explains(&self, now: Instant, need: &Need) -> bool {
        self.items
            .iter()
            .any(|t| t.binds(need) && t.quota.is_exhausted(now))
    }

    pub(super) fn is_exhausted(&self, now: Instant) -> bool {
        self.items
            .iter()
            .any(|t| t.trusted && t.quota.is_exhausted(now))
    }

    pub(super) fn knows_something(&self, now: Instant) -> bool {
        self.items.iter().any(|t| !t.quota.is_stale(now))
    }
}
