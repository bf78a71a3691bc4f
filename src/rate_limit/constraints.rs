//! Everything the gate knows about one key, as a set of constraints that
//! each say "not before t", and the one question it answers: may this
//! request go now, and if not, when? A request goes when every constraint
//! that binds it has room; the tightest binds.
//!
//! * **holds** — the server said wait (Retry-After, gRPC pushback, on a
//!   throttle): for the whole host, or for one resource when the response
//!   named it;
//! * **stated quotas** — every limit the server's headers state
//!   ([`Quotas`]), requests or tokens, each from its own statements;
//! * **configured limits** — what the user told the layer ([`Bucket`]);
//! * **a learned rate** — when the server throttles without a quota that
//!   explains it ([`Learner`]);
//! * **slow start** — while nothing at all is known ([`SlowStart`]).
//!
//! A throttle with a wait hint is a hold for that hint: it does not wipe a
//! quota that still states room (a long-window quota is not the short-term
//! limiter that refused). A throttle teaches the learned rate unless a
//! believed quota paces the key.

use tokio::time::Instant;

use super::learner::Learner;
use super::limit::{Bucket, Limit};
use super::meter::Meter;
use super::model::{Admit, Grant, Knobs, Limited, Need, Uncounted};
use super::quota::Reply;
use super::quotas::Quotas;
use super::response::Outcome;
use super::short_hint::{Answer, Probe};
use super::slow_start::SlowStart;
use crate::headers::MAX_STATED;

/// A verdict for one request: when it may go, and whether what blocks it
/// binds only its own resource (then requests of other resources may pass
/// it in the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verdict {
    pub(super) admit: Admit,
    pub(super) scoped: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Constraints {
    hold_until: Option<Instant>,
    /// Holds of one resource each, `(resource, until)`.
    resource_holds: Vec<(u64, Instant)>,
    quotas: Quotas,
    configured: Vec<Bucket>,
    learner: Option<Learner>,
    slow_start: Option<SlowStart>,
    meter: Meter,
    /// A short hint being tested by a probe (see `short_hint`).
    probe: Option<Probe>,
    /// The current episode's throttle was not held for: the hints of its
    /// other throttles (requests already in flight) are not either.
    soft_episode: bool,
    /// Quota statements received so far.
    statements: u64,
    /// Throttles in a row with nothing accepted between them: probes of a
    /// server that accepts nothing are spaced ever further apart.
    futile: u32,
    /// The link to other processes' gates, with a store.
    #[cfg(feature = "redis")]
    shared: Option<super::shared::Shared>,
    /// With a store: the latest end of a hold of the whole key this
    /// process set or adopted (kept after the hold is over), to tell its
    /// own hold, read back from the store, from another's.
    #[cfg(feature = "redis")]
    hold_seen: Option<Instant>,
}

/// A process's own hold, read back from the store, ends up to a round trip
/// later than it does here: a hold ending no later than this past the
/// local one is taken as the same hold.
#[cfg(feature = "redis")]
const READ_BACK_SLACK: std::time::Duration = std::time::Duration::from_millis(50);

/// The first probe back-off after a throttle that nothing was accepted
/// before; it doubles with each one in a row, up to `max_hold`.
const PROBE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(25);

impl Constraints {
    pub(super) fn new(now: Instant, knobs: Knobs, limits: &[Limit]) -> Self {
        let configured: Vec<Bucket> = limits.iter().filter_map(|l| Bucket::new(l, now)).collect();
        // What configured limits cover needs no probing.
        let covered = configured.iter().any(|b| b.request_rate().is_some());
        Constraints {
            hold_until: None,
            resource_holds: Vec::new(),
            quotas: Quotas::default(),
            configured,
            learner: None,
            slow_start: (knobs.slow_start && !covered).then(|| SlowStart::new(now)),
            meter: Meter::new(),
            probe: None,
            soft_episode: false,
            statements: 0,
            futile: 0,
            #[cfg(feature = "redis")]
            shared: None,
            #[cfg(feature = "redis")]
            hold_seen: None,
        }
    }

    /// Shares this key with other processes through a store.
    #[cfg(feature = "redis")]
    pub(super) fn share(&mut self, shared: super::shared::Shared) {
        self.shared = Some(shared);
    }

    /// With a store: responses accepted by all processes so far, while
    /// Redis answers.
    fn fleet_accepted(&self) -> Option<super::meter::Fleet> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.accepted();
        }
        None
    }

    /// With a store: a hold some process published (this one's own, read
    /// back, or another's). Another's cuts this process's period short
    /// without a throttle of its own: what it counted up to now, and the
    /// idle time of the hold, measure nothing (a period spanning the hold
    /// would read the rate far too low), so the period starts afresh after
    /// the hold, as after any hold. A probe out, and the soft episode's
    /// requests in flight, are still answered as before the hold: a short
    /// hint in their refusal holds no one.
    #[cfg(feature = "redis")]
    fn adopt_hold(&mut self, until: Instant) {
        let foreign = self
            .hold_seen
            .is_none_or(|u| until > super::time::after(u, READ_BACK_SLACK));
        self.hold_seen = self.hold_seen.max(Some(until));
        if self.hold_until.is_some_and(|u| until <= u) {
            return;
        }
        self.hold_until = Some(until);
        if foreign && self.meter.has_begun() {
            self.meter.restart();
        }
    }

    /// With a store: the request pace to reserve at, shared by all
    /// processes — a stated quota's rate, else the fleet's shared learned
    /// rate, else this process's own if it was measured from the fleet's
    /// count.
    #[cfg(feature = "redis")]
    fn shared_pace(
        &self,
        now: Instant,
        shared: &super::shared::Shared,
    ) -> Option<super::store::Pace> {
        use super::shared::Shared;
        if let Some(rate) = self.quotas.request_rate() {
            return Some(Shared::quota_pace(rate));
        }
        // A guess is paced locally: reserved in Redis, one process's
        // cautious guess would space every process's releases by it. So is
        // a rate measured from this process's own answers alone (while
        // Redis was down, or across a restart of it): it is its share, not
        // the fleet's.
        let learned = self
            .learner
            .as_ref()
            .filter(|l| l.is_fitted() && l.is_fleet_rate())
            .and_then(|l| l.rate(now));
        // The fleet's rate, where one stands, is what every process paces
        // at: one process's own lower measure (or a rough cut of it) would
        // slow the shared reservation for all of them (each reservation
        // advances it at the rate it names).
        let rate = shared.rate(now).or(learned)?;
        Some(super::store::Pace { rate, burst: 1.0 })
    }

    /// Whether a believed stated quota of the whole host paces requests at a
    /// known rate (the learner then stands aside).
    fn quota_paces(&self) -> bool {
        self.quotas.paces_requests()
    }

    fn slow_start_applies(&self) -> bool {
        !self.quotas.trusted_host_wide()
    }

    /// After a hold, or once what was known has expired: unless something
    /// paces the key, requests come back as from a fresh key — one probe,
    /// then a growing window — not all at once into a limiter that may still be
    /// tight.
    fn ramp_up(&mut self, now: Instant, knobs: Knobs) {
        let paced = self.quota_paces()
            || self.learner.as_ref().is_some_and(Learner::is_measured)
            || self.configured.iter().any(|b| b.request_rate().is_some());
        if knobs.slow_start && !paced && self.slow_start.is_none() {
            self.slow_start = Some(SlowStart::new(now));
        }
    }

    pub(super) fn check(
        &mut self,
        now: Instant,
        in_flight: u32,
        need: &Need,
        knobs: Knobs,
    ) -> Verdict {
        let mut host = Admit::Now;
        let mut scoped = Admit::Now;
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let (hold, fleet) = (shared.hold(now), shared.curve(now));
            if let Some(until) = hold {
                self.adopt_hold(until);
            }
            if let (Some(fleet), Some(learner)) = (fleet, &mut self.learner) {
                learner.adopt_fleet_rate(now, fleet);
            }
        }
        if let Some(until) = self.hold_until {
            if now < until {
                host = Admit::At(until);
            } else {
                self.hold_until = None;
                self.ramp_up(now, knobs);
            }
        }
        if !self.resource_holds.is_empty() {
            self.resource_holds.retain(|&(_, u)| now < u);
            if let Some(r) = need.resource {
                for &(res, until) in &self.resource_holds {
                    if res == r {
                        scoped = scoped.and(Admit::At(until));
                    }
                }
            }
        }
        if self.quotas.drop_stale(now) && self.quotas.is_empty() {
            // The window the statements were about is over: probe afresh.
            self.ramp_up(now, knobs);
        }
        for t in self.quotas.iter().filter(|t| t.binds(need)) {
            let a = t.check(now, in_flight, need).at(now);
            if t.binds_host() {
                host = host.and(a);
            } else {
                scoped = scoped.and(a);
            }
        }
        for b in &self.configured {
            host = host.and(b.check(now, need.units(b.unit)));
        }
        if !self.quota_paces() {
            if let Some(learner) = &self.learner {
                host = host.and(learner.check(now).at(now));
            }
        }
        if let Some(p) = self.probe {
            if p.is_over(now) {
                self.probe = None;
            } else {
                host = host.and(p.check(now).at(now));
            }
        }
        if self.slow_start_applies() {
            if let Some(ss) = &mut self.slow_start {
                host = host.and(ss.check(now, in_flight).at(now));
            }
        }
        #[allow(unused_mut)]
        let mut host = host.at(now);
        #[cfg(feature = "redis")]
        if host == Admit::Now && scoped.at(now) == Admit::Now {
            if let Some(shared) = &self.shared {
                let pace = self.shared_pace(now, shared);
                host = shared.admit(now, need, pace);
            }
        }
        Verdict {
            admit: host.and(scoped).at(now),
            scoped: host == Admit::Now,
        }
    }

    /// When the request behind `ahead_requests` others (`ahead_tokens` in
    /// all, its own included) could go, if nothing new is learned. Waits on
    /// responses (slow start, a quota past its reset) cannot be foreseen, so
    /// they add nothing.
    pub(super) fn estimate(&self, now: Instant, ahead: Uncounted, need: &Need) -> Instant {
        let mut t = now.max(self.hold_until.unwrap_or(now));
        if let Some(p) = &self.probe {
            t = t.max(p.earliest());
        }
        if let Some(r) = need.resource {
            for &(res, until) in &self.resource_holds {
                if res == r {
                    t = t.max(until);
                }
            }
        }
        for q in self.quotas.iter().filter(|q| q.binds(need)) {
            if let Some(at) = q.quota.time_for(t, ahead.units(q.unit)) {
                t = t.max(at);
            }
        }
        for b in &self.configured {
            t = t.max(b.time_for(t, ahead.units(b.unit)));
        }
        if !self.quota_paces() {
            if let Some(learner) = &self.learner {
                let n = ahead.requests.saturating_sub(1) as usize;
                t = t.max(learner.time_for(t, n));
            }
        }
        t
    }

    /// See [`Grant::generation`].
    pub(super) fn generation(&self) -> u64 {
        self.statements
    }

    pub(super) fn on_grant(&mut self, now: Instant, need: &Need) {
        self.quotas.on_grant(now, need);
        for b in &mut self.configured {
            b.take(now, need.units(b.unit));
        }
        if !self.quota_paces() {
            if let Some(learner) = &mut self.learner {
                learner.on_grant(now);
            }
        }
        if self.slow_start_applies() {
            if let Some(ss) = &mut self.slow_start {
                ss.on_grant(now);
            }
        }
        if let Some(p) = &mut self.probe {
            p.on_grant(now);
        }
        let fleet = self.fleet_accepted();
        self.meter.on_grant(now, self.slow_start.is_some(), fleet);
    }

    pub(super) fn on_ungrant(&mut self, now: Instant, need: &Need) {
        if let Some(p) = &mut self.probe {
            p.on_ungrant();
        }
        self.quotas.on_ungrant(need);
        for b in &mut self.configured {
            b.give_back(need.units(b.unit));
        }
        if !self.quota_paces() {
            if let Some(learner) = &mut self.learner {
                learner.on_ungrant(now);
            }
        }
    }

    /// Learns from a response. `uncounted` are the requests still in flight
    /// besides this one that the server may not have counted; `next_seq` is
    /// the sequence of the next release. Returns why the key became limited,
    /// and the resource the response named, if any.
    pub(super) fn on_response(
        &mut self,
        now: Instant,
        outcome: &Outcome,
        grant: Grant,
        uncounted: Uncounted,
        next_seq: u64,
        knobs: Knobs,
    ) -> (Option<Limited>, Option<u64>) {
        let mut limited = None;
        let mut named = None;
        let mut stated_ids = [0u64; MAX_STATED];
        let mut n_stated = 0;
        if let Some(limits) = &outcome.limits {
            let reply = match (outcome.throttled, outcome.accepted) {
                (true, _) => Reply::Throttled,
                (false, true) => Reply::Accepted,
                (false, false) => Reply::Neither,
            };
            let learned = self.quotas.on_statements(
                limits.iter(),
                now,
                grant,
                uncounted,
                next_seq,
                knobs.max_hold,
                reply,
            );
            for s in limits.iter() {
                stated_ids[n_stated] = s.id;
                n_stated += 1;
            }
            self.statements += 1;
            named = learned.resource;
            if self.quotas.trusted_host_wide() {
                self.slow_start = None;
            }
            limited = learned.exhausted.map(Limited::Exhausted);
        }
        // The request belonged to the resource the response named.
        let need = Need {
            resource: named.or(grant.need.resource),
            ..grant.need
        };

        if outcome.throttled {
            self.slow_start = None;
            if self
                .quotas
                .on_throttle(now, &grant, &need, &stated_ids[..n_stated])
            {
                limited = Some(Limited::Distrusted);
            }
            let resource = need.resource.filter(|_| named.is_some());
            match self.on_throttled(now, outcome, grant, &need, resource, knobs) {
                Some(Limited::Throttled) => limited = limited.or(Some(Limited::Throttled)),
                Some(l) => limited = Some(l),
                None => {}
            }
        } else if outcome.accepted {
            self.futile = 0;
            self.quotas.on_accepted(&need);
            #[cfg(feature = "redis")]
            if let Some(shared) = &self.shared {
                shared.count_accepted(self.counts_promptly(now));
            }
            if self
                .probe
                .is_some_and(|p| p.answer(grant, false) == Answer::Accepted)
            {
                // The hint was an upper bound: the key is free.
                self.probe = None;
            }
            let fleet = self.fleet_accepted();
            self.meter.on_accepted(now, grant, fleet);
            if let Some(ss) = &mut self.slow_start {
                if ss.on_success(now) {
                    self.slow_start = None;
                }
            }
        } else {
            // Neither accepted nor throttled: the server is down (a bare
            // 503). What it accepts now says nothing of its rate limit: the
            // period starts afresh, with the server's bucket presumably full
            // again after the outage.
            self.meter.restart();
        }
        (limited, named)
    }

    /// Holds the host (`resource` `None`) or one resource until `until`;
    /// returns whether that is longer than the hold already there.
    fn hold(&mut self, resource: Option<u64>, until: Instant) -> bool {
        let Some(r) = resource else {
            let longer = self.hold_until.is_none_or(|u| until > u);
            if longer {
                self.hold_until = Some(until);
            }
            #[cfg(feature = "redis")]
            {
                self.hold_seen = self.hold_seen.max(Some(until));
            }
            return longer;
        };
        match self.resource_holds.iter_mut().find(|(res, _)| *res == r) {
            Some((_, u)) if *u >= until => false,
            Some((_, u)) => {
                *u = until;
                true
            }
            None => {
                if self.resource_holds.len() >= MAX_STATED {
                    // Bounded: the hold ending first goes.
                    if let Some(i) =
                        (0..self.resource_holds.len()).min_by_key(|&i| self.resource_holds[i].1)
                    {
                        self.resource_holds.swap_remove(i);
                    }
                }
                self.resource_holds.push((r, until));
                true
            }
        }
    }

    /// Whether nothing is known that could hold or pace a request: no
    /// hold, no stated quota, no configured limit, no learned rate, slow
    /// start over, the current period begun, no probe out or backed off,
    /// nothing shared with other processes. Such a key's requests may skip
    /// the table (see [`super::lane`]).
    pub(super) fn is_free(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            return false;
        }
        self.hold_until.is_none()
            && self.resource_holds.is_empty()
            && self.quotas.is_empty()
            && self.configured.is_empty()
            && self.learner.is_none()
            && self.slow_start.is_none()
            && self.probe.is_none()
            && self.meter.has_begun()
            && self.futile == 0
    }

    /// `n` plain accepted answers counted outside the lock (see
    /// [`super::lane`]), as [`Constraints::on_response`] counts each.
    pub(super) fn add_accepted(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.futile = 0;
        self.meter.add_accepted(n);
    }

    /// Held, or out of quota.
    pub(super) fn is_limited(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|u| now < u)
            || self.resource_holds.iter().any(|&(_, u)| now < u)
            || self.quotas.is_exhausted(now)
    }

    /// Whether forgetting this key loses anything a fresh key would not
    /// relearn for free (evicted last).
    pub(super) fn knows_something(&self, now: Instant) -> bool {
        self.is_limited(now)
            || self.quotas.knows_something(now)
            || self.learner.as_ref().is_some_and(Learner::is_measured)
    }

    /// The hold of the whole host, if any (for the shared store and tests).
    #[cfg(test)]
    pub(super) fn hold_until(&self) -> Option<Instant> {
        self.hold_until
    }
}

mod throttle;

#[cfg(test)]
mod tests;
