//! One key's entry in the gate's table: its constraints, the requests in
//! flight, the queue of waiting requests, and the pump that releases them.
//!
//! Waiting costs no polling: a waiter is woken when it is granted or refused,
//! and only one waiter, the *keeper* (the first in line that has been
//! polled), holds a timer, set to the next instant something can change
//! (a constraint frees up, or a waiter's wait reaches its bound). Whoever
//! changes an entry (a new request, a response, a cancelled waiter, the
//! keeper's timer) runs [`Entry::pump`].
//!
//! Order: first come, first served within what binds each request. A
//! request blocked by a limit of the whole host blocks everyone behind it; a
//! request blocked only by its own resource's limit (GitHub's `search`)
//! blocks only that resource. A waiter whose future was never polled holds
//! no place that could stall others: permits go to requests being polled.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::constraints::Constraints;
use super::limit::Limit;
use super::model::{Admit, Grant, Knobs, Need, Uncounted};
use super::time::before;
use crate::headers::MAX_STATED;

/// Routes remembered per key, with the resource each was seen to belong to.
const MAX_ROUTES: usize = 64;

pub(super) struct Entry {
    /// LRU clock value of the last use.
    pub(super) used: u64,
    /// Requests released and not yet answered, in release order.
    flights: VecDeque<Flight>,
    /// Smoothed round-trip time of answered requests (RFC 6298's gain, 1/8).
    srtt: Option<Duration>,
    /// Sequence number of the latest release.
    seq: u64,
    pub(super) constraints: Constraints,
    pub(super) queue: VecDeque<Waiter>,
    /// Decisions made for waiters that have not yet polled to see them.
    decided: Vec<(u64, Decision)>,
    /// The keeper's timer, as it last armed it: `(ticket, instant)`.
    armed: Option<(u64, Instant)>,
    /// The next instant the last pump saw something change.
    next_at: Option<Instant>,
    /// Waiters in the queue that have been polled.
    parked: usize,
    /// Route → resource, learned from responses that named a resource.
    routes: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Copy)]
struct Flight {
    seq: u64,
    released_at: Instant,
    cost: u64,
}

pub(super) struct Waiter {
    pub(super) ticket: u64,
    pub(super) need: Need,
    /// With `max_wait`: past this the waiter is refused.
    pub(super) refuse_at: Option<Instant>,
    /// Without: at this the waiter is released whatever the limits say
    /// (`max_hold`, or the request's [`Deadline`](crate::Deadline)).
    pub(super) release_at: Instant,
    pub(super) waker: Option<Waker>,
}

pub(super) enum Decision {
    Granted(Grant),
    Refused(Duration),
}

/// What a waiter learns when it polls.
pub(super) enum Parked {
    /// Still waiting; the keeper gets the instant to sleep until.
    Pending(Option<Instant>),
    /// Not in the queue (cannot happen while it is queued; handled by
    /// queueing again rather than by a panic).
    Lost,
}

impl Entry {
    pub(super) fn new(now: Instant, knobs: Knobs, limits: &[Limit], used: u64) -> Self {
        Entry {
            used,
            flights: VecDeque::new(),
            srtt: None,
            seq: 0,
            constraints: Constraints::new(now, knobs, limits),
            queue: VecDeque::new(),
            decided: Vec::new(),
            armed: None,
            next_at: None,
            parked: 0,
            routes: Vec::new(),
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        self.flights.is_empty() && self.queue.is_empty() && self.decided.is_empty()
    }

    pub(super) fn in_flight(&self) -> u32 {
        u32::try_from(self.flights.len()).unwrap_or(u32::MAX)
    }

    /// Whether its requests may skip the table: nothing known, nobody
    /// waiting (see [`super::lane`]).
    pub(super) fn is_open(&self) -> bool {
        self.queue.is_empty() && self.decided.is_empty() && self.constraints.is_free()
    }

    /// The latest release's sequence number.
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a request arriving now may pass the queue: no waiter that is
    /// being polled is ahead of it.
    pub(super) fn line_is_free(&self) -> bool {
        self.parked == 0
    }

    /// The resource `route` was seen to belong to.
    pub(super) fn resource_of(&self, route: u64) -> Option<u64> {
        self.routes.iter().find(|r| r.0 == route).map(|r| r.1)
    }

    /// Remembers that `route` belongs to `resource` (bounded: the oldest
    /// route goes).
    pub(super) fn learn_route(&mut self, route: u64, resource: u64) {
        match self.routes.iter_mut().find(|r| r.0 == route) {
            Some(r) => r.1 = resource,
            None => {
                if self.routes.len() >= MAX_ROUTES {
                    self.routes.remove(0);
                }
                self.routes.push((route, resource));
            }
        }
    }

    pub(super) fn grant(&mut self, now: Instant, need: Need) -> Grant {
        self.constraints.on_grant(now, &need);
        self.seq += 1;
        self.flights.push_back(Flight {
            seq: self.seq,
            released_at: now,
            cost: need.cost,
        });
        Grant {
            released_at: now,
            seq: self.seq,
            generation: self.constraints.generation(),
            need,
        }
    }

    pub(super) fn ungrant(&mut self, now: Instant, grant: Grant) {
        self.constraints.on_ungrant(now, &grant.need);
        self.land(grant);
    }

    /// The request is no longer in flight.
    pub(super) fn land(&mut self, grant: Grant) {
        if let Ok(i) = self.flights.binary_search_by_key(&grant.seq, |f| f.seq) {
            self.flights.remove(i);
        }
    }

    /// The next release's sequence number.
    pub(super) fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Of the other requests in flight, those the server may not yet have
    /// counted when it answered `grant`: released after it, or shortly
    /// before (half a round trip: latency varies). Earlier ones were, with
    /// the same latency, processed first, and are in the `remaining` it
    /// states. Also updates the round-trip estimate.
    pub(super) fn not_yet_counted(&mut self, now: Instant, grant: Grant) -> Uncounted {
        let rtt = now.saturating_duration_since(grant.released_at);
        let srtt = match self.srtt {
            Some(s) => (s * 7 + rtt) / 8,
            None => rtt,
        };
        self.srtt = Some(srtt);
        let since = before(grant.released_at, srtt / 2);
        let first = self.flights.partition_point(|f| f.released_at < since);
        let mut out = Uncounted::default();
        for f in self.flights.range(first..).filter(|f| f.seq != grant.seq) {
            out.requests = out.requests.saturating_add(1);
            out.tokens = out.tokens.saturating_add(f.cost);
        }
        out
    }

    pub(super) fn take_decision(&mut self, ticket: u64) -> Option<Decision> {
        let i = self.decided.iter().position(|(t, _)| *t == ticket)?;
        Some(self.decided.swap_remove(i).1)
    }

    /// A waiter leaves the queue without a decision (cancelled).
    pub(super) fn leave(&mut self, ticket: u64) {
        if let Some(i) = self.queue.iter().position(|w| w.ticket == ticket) {
            if let Some(w) = self.queue.remove(i) {
                self.parked -= usize::from(w.waker.is_some());
            }
        }
    }

    fn decide(
        &mut self,
        i: usize,
        decision: Decision,
        current: Option<u64>,
        wake: &mut Vec<Waker>,
    ) {
        let Some(w) = self.queue.remove(i) else {
            return;
        };
        self.parked -= usize::from(w.waker.is_some());
        if self.armed.is_some_and(|(t, _)| t == w.ticket) {
            self.armed = None;
        }
        self.decided.push((w.ticket, decision));
        if Some(w.ticket) != current {
            wake.extend(w.waker);
        }
    }

    /// Records the waker of a still-waiting `ticket`; the keeper also gets
    /// the instant to sleep until.
    pub(super) fn park(&mut self, ticket: u64, waker: &Waker) -> Parked {
        let Some(i) = self.queue.iter().position(|w| w.ticket == ticket) else {
            return Parked::Lost;
        };
        let slot = &mut self.queue[i].waker;
        match slot {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => *w = waker.clone(),
            None => {
                *slot = Some(waker.clone());
                self.parked += 1;
            }
        }
        let keeper = self.queue.iter().position(|w| w.waker.is_some());
        match self.next_at {
            Some(at) if keeper == Some(i) => {
                self.armed = Some((ticket, at));
                Parked::Pending(Some(at))
            }
            _ => Parked::Pending(None),
        }
    }

    /// Releases (or refuses) waiters while the constraints allow; records
    /// the next instant anything can change. `current` is the ticket of the
    /// waiter running this (it counts as polled and needs no wake-up).
    pub(super) fn pump(
        &mut self,
        now: Instant,
        knobs: Knobs,
        current: Option<u64>,
        wake: &mut Vec<Waker>,
    ) {
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        let mut host_blocked = false;
        let mut blocked = [0u64; MAX_STATED];
        let mut n_blocked = 0;
        let mut i = 0;
        while i < self.queue.len() {
            let w = &self.queue[i];
            if w.waker.is_none() && Some(w.ticket) != current {
                // Never polled: holds no place (a future created and not
                // awaited must not stall the line).
                i += 1;
                continue;
            }
            let (mut need, refuse_at, release_at) = (w.need, w.refuse_at, w.release_at);
            if need.resource.is_none() && need.route != 0 {
                // A response may have named its route's resource since.
                need.resource = self.resource_of(need.route);
                self.queue[i].need = need;
            }
            let in_line = host_blocked
                || need
                    .resource
                    .is_some_and(|r| blocked[..n_blocked].contains(&r));
            let verdict = if in_line {
                None
            } else {
                Some(self.constraints.check(now, self.in_flight(), &need, knobs))
            };
            let wait = match verdict.map(|v| v.admit) {
                Some(Admit::Now) => None,
                Some(Admit::At(t)) => Some(Some(t)),
                Some(Admit::OnResponse) | None => Some(None),
            };
            match (wait, refuse_at) {
                (None, _) => {
                    let grant = self.grant(now, need);
                    self.decide(i, Decision::Granted(grant), current, wake);
                    continue;
                }
                (Some(t), Some(refuse_at)) => {
                    if now >= refuse_at || t.is_some_and(|t| t > refuse_at) {
                        let wait = t.unwrap_or(refuse_at).saturating_duration_since(now);
                        self.decide(i, Decision::Refused(wait), current, wake);
                        continue;
                    }
                    soonest(refuse_at);
                    if let Some(t) = t {
                        soonest(t);
                    }
                }
                (Some(t), None) => {
                    if now >= release_at {
                        // Waited as long as it may: it goes.
                        let grant = self.grant(now, need);
                        self.decide(i, Decision::Granted(grant), current, wake);
                        continue;
                    }
                    soonest(release_at);
                    if let Some(t) = t {
                        soonest(t);
                    }
                }
            }
            if let Some(v) = verdict {
                match need.resource {
                    Some(r) if v.scoped && n_blocked < MAX_STATED => {
                        blocked[n_blocked] = r;
                        n_blocked += 1;
                    }
                    _ => host_blocked = true,
                }
            }
            i += 1;
        }
        self.rearm(next, current, wake);
    }

    /// Wakes the keeper if the timer it holds fires too late (or it holds
    /// none), so that it re-arms for `next`.
    fn rearm(&mut self, next: Option<Instant>, current: Option<u64>, wake: &mut Vec<Waker>) {
        self.next_at = next;
        let Some(next) = next else {
            self.armed = None;
            return;
        };
        let Some(keeper) = self.queue.iter().find(|w| w.waker.is_some()) else {
            return;
        };
        let stale = self
            .armed
            .is_none_or(|(ticket, at)| ticket != keeper.ticket || next < at);
        if stale && Some(keeper.ticket) != current {
            wake.extend(keeper.waker.clone());
        }
    }

    /// After the key became limited: refuse at once every waiter (with
    /// `max_wait`) that can no longer go in time.
    pub(super) fn sweep(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        let mut ahead = Uncounted::default();
        let mut i = 0;
        while i < self.queue.len() {
            let w = &self.queue[i];
            let Some(refuse_at) = w.refuse_at else {
                i += 1;
                continue;
            };
            let mine = Uncounted {
                requests: ahead.requests + 1,
                tokens: ahead.tokens.saturating_add(w.need.cost),
            };
            let at = self.constraints.estimate(now, mine, &w.need);
            if at > refuse_at {
                let wait = at.saturating_duration_since(now);
                self.decide(i, Decision::Refused(wait), None, wake);
            } else {
                ahead = mine;
                i += 1;
            }
        }
    }

    /// Requests and tokens queued, for estimates.
    pub(super) fn queued(&self) -> Uncounted {
        let mut q = Uncounted::default();
        for w in &self.queue {
            q.requests = q.requests.saturating_add(1);
            q.tokens = q.tokens.saturating_add(w.need.cost);
        }
        q
    }
}
