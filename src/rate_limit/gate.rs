//! The state every clone of the layer and service shares: one entry per key
//! with its [`Limits`], requests in flight, and a FIFO queue of waiting
//! requests.
//!
//! Waiting costs no polling: a waiter is woken when it is granted or refused,
//! and only the queue's head holds a timer, set to the instant the key's
//! limits next allow a release. Whoever changes an entry (a new request, a
//! response, a cancelled waiter, the head's timer) runs [`pump`], which
//! releases waiters in order while the limits allow.
//!
//! One `std::sync::Mutex` guards the map: every critical section is a few
//! hash-map and arithmetic operations, never an `.await`, a user callback or
//! a waker (wakers are called after unlocking).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::limits::{Admit, Grant, Knobs, Limited, Limits};
use super::response::Outcome;
use super::time::{after, before};
use super::GateStats;

/// The layer's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) max_wait: Duration,
    pub(crate) max_hold: Duration,
    pub(crate) slow_start: bool,
    pub(crate) max_keys: usize,
}

impl Config {
    fn knobs(&self) -> Knobs {
        Knobs {
            slow_start: self.slow_start,
            max_hold: self.max_hold,
        }
    }
}

pub(crate) struct Gate {
    pub(crate) config: Config,
    /// Seeds key hashes, so that key collisions cannot be planned.
    pub(crate) hasher: RandomState,
    state: Mutex<State>,
}

/// Keys are already uniform hashes: the map need not hash them again.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct State {
    entries: HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>,
    /// LRU clock: bumped on every use of an entry.
    tick: u64,
    next_ticket: u64,
}

struct Entry {
    used: u64,
    /// Requests released and not yet answered, `(seq, released_at)`, in
    /// release order.
    flights: VecDeque<(u64, Instant)>,
    /// Smoothed round-trip time of answered requests (RFC 6298's gain, 1/8).
    srtt: Option<Duration>,
    /// Sequence number of the latest release.
    seq: u64,
    limits: Limits,
    queue: VecDeque<Waiter>,
    /// Decisions made for waiters that have not yet polled to see them.
    decided: Vec<(u64, Decision)>,
    /// The head's timer, as it last armed it: `(ticket, instant)`.
    armed: Option<(u64, Instant)>,
}

struct Waiter {
    ticket: u64,
    /// Past this, waiting breaks `max_wait`: the waiter is refused.
    deadline: Instant,
    waker: Option<Waker>,
}

enum Decision {
    Granted(Grant),
    Refused(Duration),
}

/// The answer to a new request.
pub(crate) enum Acquire {
    /// Go now.
    Go(Permit),
    /// Wait in line (about this long, as far as can be foreseen).
    Wait(Waiting, Duration),
    /// The wait would exceed `max_wait`.
    Refuse(Duration),
}

enum TicketPoll {
    Granted(Permit),
    Refused(Duration),
    /// Still waiting; the head gets the instant to sleep until.
    Pending(Option<Instant>),
    /// The entry is gone (cannot happen while a waiter is queued; handled by
    /// queueing again rather than by a panic).
    Lost,
}

/// How a granted release ended.
enum Finish<'a> {
    /// Dropped before reaching the inner service: everything comes back.
    Unsent,
    /// The inner service failed or the future was dropped in flight: the
    /// server may have counted it, so only the in-flight slot comes back.
    Failed,
    Answered(&'a Outcome),
}

impl Gate {
    pub(crate) fn new(config: Config) -> Self {
        Gate {
            config,
            hasher: RandomState::new(),
            state: Mutex::new(State {
                entries: HashMap::default(),
                tick: 0,
                next_ticket: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code that can panic runs under the lock except our own
        // arithmetic; if it ever did, the state is still consistent enough
        // to keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admission of a new request for `key`.
    pub(crate) fn acquire(self: &Arc<Self>, key: u64) -> Acquire {
        let now = Instant::now();
        let knobs = self.config.knobs();
        let mut guard = self.lock();
        let state = &mut *guard;
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let entry = state.entry(key, now, knobs, self.config.max_keys);
        if entry.queue.is_empty() {
            let admit = entry.limits.check(now, entry.in_flight(), knobs);
            if matches!(admit, Admit::Now) || matches!(admit, Admit::At(t) if t <= now) {
                let grant = entry.grant(now);
                drop(guard);
                return Acquire::Go(Permit::new(self.clone(), key, grant));
            }
        }
        let wait = entry
            .limits
            .estimate(now, entry.queue.len())
            .saturating_duration_since(now);
        if wait > self.config.max_wait {
            return Acquire::Refuse(wait);
        }
        entry.queue.push_back(Waiter {
            ticket,
            deadline: after(now, self.config.max_wait),
            waker: None,
        });
        drop(guard);
        let waiting = Waiting {
            gate: self.clone(),
            key,
            ticket,
            since: now,
            sleep: None,
            done: false,
        };
        Acquire::Wait(waiting, wait)
    }

    fn poll_ticket(self: &Arc<Self>, key: u64, ticket: u64, waker: &Waker) -> TicketPoll {
        let now = Instant::now();
        let knobs = self.config.knobs();
        let mut wake = Vec::new();
        let result = {
            let mut guard = self.lock();
            let Some(entry) = guard.entries.get_mut(&key) else {
                return TicketPoll::Lost;
            };
            let mut decision = entry.take_decision(ticket);
            let mut blocked = None;
            if decision.is_none() {
                blocked = pump(entry, now, knobs, Some(ticket), &mut wake);
                decision = entry.take_decision(ticket);
            }
            match decision {
                Some(Decision::Granted(grant)) => Ok(grant),
                Some(Decision::Refused(wait)) => Err(TicketPoll::Refused(wait)),
                None => Err(entry.park(ticket, waker, blocked)),
            }
        };
        for w in wake {
            w.wake();
        }
        match result {
            Ok(grant) => TicketPoll::Granted(Permit::new(self.clone(), key, grant)),
            Err(other) => other,
        }
    }

    /// A waiter went away: out of the queue, or, if it had already been
    /// granted without noticing, its release comes back.
    fn cancel(&self, key: u64, ticket: u64) {
        let now = Instant::now();
        let knobs = self.config.knobs();
        let mut wake = Vec::new();
        {
            let mut guard = self.lock();
            let Some(entry) = guard.entries.get_mut(&key) else {
                return;
            };
            match entry.take_decision(ticket) {
                Some(Decision::Granted(grant)) => entry.ungrant(now, grant),
                Some(Decision::Refused(_)) => {}
                None => entry.queue.retain(|w| w.ticket != ticket),
            }
            pump(entry, now, knobs, None, &mut wake);
        }
        for w in wake {
            w.wake();
        }
    }

    fn complete(&self, key: u64, grant: Grant, finish: Finish<'_>) {
        let now = Instant::now();
        let knobs = self.config.knobs();
        let mut wake = Vec::new();
        {
            let mut guard = self.lock();
            let Some(entry) = guard.entries.get_mut(&key) else {
                return;
            };
            match finish {
                Finish::Unsent => entry.ungrant(now, grant),
                Finish::Failed => entry.land(grant),
                Finish::Answered(outcome) => {
                    let others = entry.not_yet_counted(now, grant);
                    let next_seq = entry.seq + 1;
                    let limited = entry
                        .limits
                        .on_response(now, outcome, grant, others, next_seq, knobs);
                    entry.land(grant);
                    if let Some(limited) = limited {
                        trace_limited(key, limited, entry.queue.len());
                        entry.sweep(now, &mut wake);
                    }
                }
            }
            pump(entry, now, knobs, None, &mut wake);
        }
        for w in wake {
            w.wake();
        }
    }

    pub(crate) fn stats(&self) -> GateStats {
        let now = Instant::now();
        let guard = self.lock();
        let mut stats = GateStats {
            keys: guard.entries.len(),
            ..GateStats::default()
        };
        for entry in guard.entries.values() {
            stats.waiting += entry.queue.len();
            stats.in_flight += entry.flights.len();
            stats.limited_keys += usize::from(entry.limits.is_limited(now));
        }
        stats
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The entry for `key`, created if new; at `max_keys`, idle entries are
    /// evicted first.
    fn entry(&mut self, key: u64, now: Instant, knobs: Knobs, max_keys: usize) -> &mut Entry {
        self.tick += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= max_keys.max(1) {
            self.evict(now, max_keys.max(1));
        }
        let entry = self.entries.entry(key).or_insert_with(|| Entry {
            used: 0,
            flights: VecDeque::new(),
            srtt: None,
            seq: 0,
            limits: Limits::new(now, knobs),
            queue: VecDeque::new(),
            decided: Vec::new(),
            armed: None,
        });
        entry.used = self.tick;
        entry
    }

    /// Evicts an eighth of `max_keys` at once, so that the scan is paid once
    /// per many insertions: idle keys only (a key with requests waiting or in
    /// flight is in use), those that know nothing worth keeping first (their
    /// hold or reset has passed), then least recently used.
    fn evict(&mut self, now: Instant, max_keys: usize) {
        let target = max_keys - max_keys / 8;
        let excess = (self.entries.len() + 1).saturating_sub(target);
        let mut idle: Vec<(bool, u64, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_idle())
            .map(|(&k, e)| (e.limits.knows_something(now), e.used, k))
            .collect();
        let n = excess.min(idle.len());
        if n == 0 {
            return;
        }
        idle.select_nth_unstable_by_key(n - 1, |&(knows, used, _)| (knows, used));
        for &(_, _, key) in &idle[..n] {
            self.entries.remove(&key);
        }
        tracing::debug!(
            evicted = n,
            keys = self.entries.len(),
            "rate limit: evicted idle keys"
        );
    }
}

impl Entry {
    fn is_idle(&self) -> bool {
        self.flights.is_empty() && self.queue.is_empty() && self.decided.is_empty()
    }

    fn in_flight(&self) -> u32 {
        u32::try_from(self.flights.len()).unwrap_or(u32::MAX)
    }

    fn grant(&mut self, now: Instant) -> Grant {
        self.limits.on_grant(now);
        self.seq += 1;
        self.flights.push_back((self.seq, now));
        Grant {
            released_at: now,
            seq: self.seq,
            generation: self.limits.generation(),
        }
    }

    fn ungrant(&mut self, now: Instant, grant: Grant) {
        self.limits.on_ungrant(now);
        self.land(grant);
    }

    /// The request is no longer in flight.
    fn land(&mut self, grant: Grant) {
        if let Ok(i) = self.flights.binary_search_by_key(&grant.seq, |f| f.0) {
            self.flights.remove(i);
        }
    }

    /// Of the other requests in flight, those the server may not yet have
    /// counted when it answered `grant`: released after it, or shortly
    /// before (half a round trip: latency varies). Earlier ones were, with
    /// the same latency, processed first, and are in the `remaining` it
    /// states. Also updates the round-trip estimate.
    fn not_yet_counted(&mut self, now: Instant, grant: Grant) -> u32 {
        let rtt = now.saturating_duration_since(grant.released_at);
        let srtt = match self.srtt {
            Some(s) => (s * 7 + rtt) / 8,
            None => rtt,
        };
        self.srtt = Some(srtt);
        let since = before(grant.released_at, srtt / 2);
        let first = self.flights.partition_point(|f| f.1 < since);
        let count = self.flights.len() - first;
        // Minus this request itself, still listed.
        u32::try_from(count.saturating_sub(1)).unwrap_or(u32::MAX)
    }

    fn take_decision(&mut self, ticket: u64) -> Option<Decision> {
        let i = self.decided.iter().position(|(t, _)| *t == ticket)?;
        Some(self.decided.swap_remove(i).1)
    }

    /// Records the waker of a still-waiting `ticket`; the head also gets the
    /// instant to sleep until.
    fn park(&mut self, ticket: u64, waker: &Waker, blocked: Option<Instant>) -> TicketPoll {
        let Some(i) = self.queue.iter().position(|w| w.ticket == ticket) else {
            return TicketPoll::Lost;
        };
        let slot = &mut self.queue[i].waker;
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
        // The head keeps the timer; so does the next in line while the head
        // has never been polled (a future created and not yet awaited must
        // not stall the line).
        let keeps_timer = i == 0 || self.queue[0].waker.is_none();
        match blocked {
            Some(at) if keeps_timer => {
                self.armed = Some((self.queue[0].ticket, at));
                TicketPoll::Pending(Some(at))
            }
            _ => TicketPoll::Pending(None),
        }
    }

    /// After the key became limited: refuse at once every waiter that can no
    /// longer go within its `max_wait`.
    fn sweep(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        let mut kept = VecDeque::with_capacity(self.queue.len());
        let mut ahead = 0;
        for w in self.queue.drain(..) {
            let at = self.limits.estimate(now, ahead);
            if at > w.deadline {
                self.decided.push((
                    w.ticket,
                    Decision::Refused(at.saturating_duration_since(now)),
                ));
                wake.extend(w.waker);
            } else {
                ahead += 1;
                kept.push_back(w);
            }
        }
        self.queue = kept;
    }
}

/// Releases waiters from the head of `entry`'s queue while its limits allow;
/// returns the instant the head is blocked until, if any. `current` is the
/// ticket of the waiter running this (it needs no wake-up).
fn pump(
    entry: &mut Entry,
    now: Instant,
    knobs: Knobs,
    current: Option<u64>,
    wake: &mut Vec<Waker>,
) -> Option<Instant> {
    loop {
        let Some(head) = entry.queue.front() else {
            entry.armed = None;
            return None;
        };
        let blocked = match entry.limits.check(now, entry.in_flight(), knobs) {
            Admit::At(t) if t > now => Some(t),
            Admit::Now | Admit::At(_) => None,
            Admit::OnResponse => {
                // A reply will pump again; no timer needed.
                entry.armed = None;
                return None;
            }
        };
        match blocked {
            None => {
                let w = entry.queue.pop_front()?;
                let grant = entry.grant(now);
                entry.decided.push((w.ticket, Decision::Granted(grant)));
                entry.armed = None;
                if Some(w.ticket) != current {
                    wake.extend(w.waker);
                }
            }
            Some(t) if head.deadline < t => {
                let w = entry.queue.pop_front()?;
                let wait = t.saturating_duration_since(now);
                entry.decided.push((w.ticket, Decision::Refused(wait)));
                entry.armed = None;
                if Some(w.ticket) != current {
                    wake.extend(w.waker);
                }
            }
            Some(t) => {
                // The head sleeps until `t`; wake it to (re)arm its timer
                // unless the timer it has already fires by then.
                let stale = entry
                    .armed
                    .is_none_or(|(ticket, at)| ticket != head.ticket || t < at);
                if stale && Some(head.ticket) != current {
                    if let Some(w) = &head.waker {
                        wake.push(w.clone());
                    }
                }
                return Some(t);
            }
        }
    }
}

fn trace_limited(key: u64, limited: Limited, waiting: usize) {
    let key = format_args!("{key:016x}");
    match limited {
        Limited::Held(hold) => {
            tracing::info!(%key, ?hold, waiting, "rate limit: server throttled, key held");
        }
        Limited::Exhausted(reset) => {
            tracing::info!(%key, ?reset, waiting, "rate limit: quota exhausted until reset");
        }
        Limited::Throttled => {
            tracing::debug!(%key, waiting, "rate limit: server throttled, pacing slower");
        }
    }
}

/// A granted release. Dropping it without [`Permit::finish`] gives back
/// what it holds: everything if the request was never sent, the in-flight
/// slot otherwise.
pub(crate) struct Permit {
    gate: Arc<Gate>,
    key: u64,
    grant: Grant,
    sent: bool,
    done: bool,
}

impl Permit {
    fn new(gate: Arc<Gate>, key: u64, grant: Grant) -> Self {
        Permit {
            gate,
            key,
            grant,
            sent: false,
            done: false,
        }
    }

    /// The request has been handed to the inner service.
    pub(crate) fn mark_sent(&mut self) {
        self.sent = true;
    }

    /// The inner service answered (or failed, with `None`).
    pub(crate) fn finish(mut self, outcome: Option<&Outcome>) {
        self.done = true;
        let finish = match outcome {
            Some(outcome) => Finish::Answered(outcome),
            None => Finish::Failed,
        };
        self.gate.complete(self.key, self.grant, finish);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            let finish = if self.sent {
                Finish::Failed
            } else {
                Finish::Unsent
            };
            self.gate.complete(self.key, self.grant, finish);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("key", &format_args!("{:016x}", self.key))
            .field("sent", &self.sent)
            .finish()
    }
}

/// A place in a key's queue. Dropping it leaves the queue (cancel-safety).
pub(crate) struct Waiting {
    gate: Arc<Gate>,
    key: u64,
    ticket: u64,
    since: Instant,
    /// The head's timer; boxed so the future stays `Unpin`-agnostic, and
    /// reused across re-arms.
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl Waiting {
    /// Ready with a permit, or with the wait that made the gate refuse.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Permit, Duration>> {
        // Bounded: each turn either returns or found its timer already due,
        // which a granted or re-armed head cannot be twice in a row.
        for _ in 0..8 {
            match self.gate.poll_ticket(self.key, self.ticket, cx.waker()) {
                TicketPoll::Granted(permit) => {
                    self.done = true;
                    tracing::debug!(
                        key = %format_args!("{:016x}", self.key),
                        waited = ?self.since.elapsed(),
                        "rate limit: request released"
                    );
                    return Poll::Ready(Ok(permit));
                }
                TicketPoll::Refused(wait) => {
                    self.done = true;
                    return Poll::Ready(Err(wait));
                }
                TicketPoll::Lost => match self.gate.acquire(self.key) {
                    Acquire::Go(permit) => {
                        self.done = true;
                        return Poll::Ready(Ok(permit));
                    }
                    Acquire::Refuse(wait) => {
                        self.done = true;
                        return Poll::Ready(Err(wait));
                    }
                    Acquire::Wait(mut again, _) => {
                        // Take over the new place in line.
                        self.ticket = again.ticket;
                        again.done = true;
                    }
                },
                TicketPoll::Pending(None) => return Poll::Pending,
                TicketPoll::Pending(Some(at)) => {
                    let sleep = match &mut self.sleep {
                        Some(sleep) => {
                            if sleep.deadline() != at {
                                sleep.as_mut().reset(at);
                            }
                            sleep
                        }
                        None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
                    };
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.gate.cancel(self.key, self.ticket);
        }
    }
}

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting")
            .field("key", &format_args!("{:016x}", self.key))
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}
