//! The state every clone of the layer and service shares: a table of
//! [`Entry`]s, one per key, behind one lock, and the operations a request's
//! life calls on it (acquire, poll, cancel, complete).
//!
//! One `std::sync::Mutex` guards the table: every critical section is a few
//! hash-map and arithmetic operations, never an `.await`, a user callback or
//! a waker (wakers are called after unlocking).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock, Weak};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::entry::{Decision, Entry, Parked, Waiter};
use super::lane::{FastGrant, Lanes};
use super::limit::Limit;
use super::model::{Admit, Grant, Knobs, Limited, Need, Uncounted};
use super::response::Outcome;
use super::short_hint::SHORT_HINT;
use super::time::after;
use super::GateStats;
use crate::key::{KeyHasher as HashKeys, KeyMap};

/// The layer's settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_wait: Duration,
    /// Whether requests past `max_wait` (or their deadline) are refused
    /// with a local 429, rather than released.
    pub(crate) refuses: bool,
    pub(crate) max_hold: Duration,
    pub(crate) slow_start: bool,
    pub(crate) max_keys: usize,
    pub(crate) limits: Arc<[Limit]>,
    /// Shares what the gate knows with other processes.
    #[cfg(feature = "redis")]
    pub(crate) store: Option<super::RedisStore>,
}

impl Config {
    fn knobs(&self) -> Knobs {
        Knobs {
            slow_start: self.slow_start,
            max_hold: self.max_hold,
        }
    }
}

/// Aligned to a cache line so that the reference count in front of it
/// (bumped by every clone of a service, and by every release that is not
/// through a lane or whose answer has news) does not share a line with the
/// fields each request reads.
#[repr(align(64))]
pub(crate) struct Gate {
    pub(crate) config: Config,
    /// Seeds key hashes, so that key collisions cannot be planned (fixed
    /// with a store, so that every process names a key alike).
    pub(crate) hasher: HashKeys,
    /// Keys about which nothing is known go without the lock, by lanes
    /// shared with every gate of the process.
    pub(super) lanes: Lanes,
    state: Mutex<State>,
}

struct State {
    entries: KeyMap<Entry>,
    /// LRU clock: bumped on every use of an entry.
    tick: u64,
    next_ticket: u64,
}

/// The table's answer to a new request (wrapped in handles by
/// [`permit`](super::permit)).
pub(super) enum Admission {
    /// Go now.
    Go(Grant),
    /// Wait in line with this ticket (at most this long).
    Wait(u64, Duration),
    /// The wait would exceed `max_wait` or the request's deadline.
    Refuse(Duration),
}

pub(super) enum TicketPoll {
    Granted(Grant),
    Refused(Duration),
    /// Still waiting; the keeper gets the instant to sleep until.
    Pending(Option<Instant>),
    Lost,
}

/// How a granted release ended.
pub(super) enum Finish<'a> {
    /// Dropped before reaching the inner service: everything comes back.
    Unsent,
    /// The inner service failed or the future was dropped in flight: the
    /// server may have counted it, so only the in-flight slot comes back.
    Failed,
    Answered(&'a Outcome),
}

/// Every live gate by its lanes' salt: where the answer to a fast release
/// that carries news finds its gate (see [`super::lane`]). Read by such
/// answers, written when a gate is made or dropped.
static GATES: LazyLock<RwLock<HashMap<u64, Weak<Gate>>>> = LazyLock::new(RwLock::default);

impl Gate {
    pub(crate) fn new(config: Config) -> Arc<Self> {
        let gate = Self::make(config);
        // The map is consistent after any panic: inserts and removes only.
        let mut gates = GATES.write().unwrap_or_else(|e| e.into_inner());
        gates.insert(gate.lanes.salt(), Arc::downgrade(&gate));
        drop(gates);
        gate
    }

    /// The live gate whose lanes have `salt`.
    pub(super) fn by_salt(salt: u64) -> Option<Arc<Gate>> {
        let gates = GATES.read().unwrap_or_else(|e| e.into_inner());
        gates.get(&salt).and_then(Weak::upgrade)
    }

    fn make(config: Config) -> Arc<Self> {
        #[cfg(feature = "redis")]
        if let Some(store) = &config.store {
            let store = store.clone();
            return Arc::new_cyclic(|gate: &Weak<Gate>| {
                let gate = gate.clone();
                let mut config = config;
                // The store holds the gate weakly: no cycle keeps either alive.
                config.store = Some(store.with_notify(Arc::new(move |name: &str| {
                    if let Some(gate) = gate.upgrade() {
                        gate.poke(name);
                    }
                })));
                Gate::build(config, HashKeys::Fixed)
            });
        }
        Arc::new(Gate::build(config, HashKeys::default()))
    }

    fn build(config: Config, hasher: HashKeys) -> Self {
        Gate {
            config,
            hasher,
            lanes: Lanes::new(Instant::now()),
            state: Mutex::new(State {
                entries: KeyMap::default(),
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
    pub(super) fn admit(&self, key: u64, need: Need, deadline: Option<Instant>) -> Admission {
        let now = Instant::now();
        let config = &self.config;
        let knobs = config.knobs();
        let mut guard = self.lock();
        let state = &mut *guard;
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let entry = state.entry(key, now, knobs, config, &self.lanes);
        self.fold(key, entry);
        let admission = self.admit_entry(entry, now, ticket, need, deadline);
        self.settle(key, entry, now);
        admission
    }

    /// Before a change to `key`'s entry: the plain answers its lane counted.
    fn fold(&self, key: u64, entry: &mut Entry) {
        let accepted = self.lanes.take_accepted(key);
        entry.constraints.add_accepted(accepted);
    }

    /// Opens or closes `key`'s lane after a change to its entry.
    fn settle(&self, key: u64, entry: &mut Entry, now: Instant) {
        let generation = entry.constraints.generation();
        let late = self.lanes.publish(key, entry.is_open(), now, generation);
        entry.constraints.add_accepted(late);
    }

    fn admit_entry(
        &self,
        entry: &mut Entry,
        now: Instant,
        ticket: u64,
        mut need: Need,
        deadline: Option<Instant>,
    ) -> Admission {
        let config = &self.config;
        let knobs = config.knobs();
        if need.resource.is_none() && need.route != 0 {
            need.resource = entry.resource_of(need.route);
        }
        let bound = deadline.map_or(after(now, config.max_hold), |d| {
            d.min(after(now, config.max_hold))
        });
        let refuse_at = config
            .refuses
            .then(|| bound.min(after(now, config.max_wait)));
        if entry.line_is_free() {
            let verdict = entry
                .constraints
                .check(now, entry.in_flight(), &need, knobs);
            if verdict.admit == Admit::Now || (refuse_at.is_none() && bound <= now) {
                return Admission::Go(entry.grant(now, need));
            }
        }
        let wait = match refuse_at {
            Some(refuse_at) => {
                let queued = entry.queued();
                let mine = Uncounted {
                    requests: queued.requests + 1,
                    tokens: queued.tokens.saturating_add(need.cost),
                };
                let at = entry.constraints.estimate(now, mine, &need);
                if at > refuse_at {
                    return Admission::Refuse(at.saturating_duration_since(now));
                }
                at.saturating_duration_since(now)
            }
            None => bound.saturating_duration_since(now),
        };
        entry.queue.push_back(Waiter {
            ticket,
            need,
            refuse_at,
            release_at: bound,
            waker: None,
        });
        Admission::Wait(ticket, wait)
    }

    pub(super) fn poll_ticket(&self, key: u64, ticket: u64, waker: &Waker) -> TicketPoll {
        let now = Instant::now();
        let knobs = self.config.knobs();
        let mut wake = Vec::new();
        let result = {
            let mut guard = self.lock();
            let Some(entry) = guard.entries.get_mut(&key) else {
                return TicketPoll::Lost;
            };
            self.fold(key, entry);
            let mut decision = entry.take_decision(ticket);
            if decision.is_none() {
                entry.pump(now, knobs, Some(ticket), &mut wake);
                decision = entry.take_decision(ticket);
            }
            self.settle(key, entry, now);
            match decision {
                Some(Decision::Granted(grant)) => Ok(grant),
                Some(Decision::Refused(wait)) => Err(TicketPoll::Refused(wait)),
                None => Err(match entry.park(ticket, waker) {
                    Parked::Pending(at) => TicketPoll::Pending(at),
                    Parked::Lost => TicketPoll::Lost,
                }),
            }
        };
        for w in wake {
            w.wake();
        }
        match result {
            Ok(grant) => TicketPoll::Granted(grant),
            Err(other) => other,
        }
    }

    /// A waiter went away: out of the queue, or, if it had already been
    /// granted without noticing, its release comes back.
    pub(super) fn cancel(&self, key: u64, ticket: u64) {
        self.with_entry(key, |entry, now, _| match entry.take_decision(ticket) {
            Some(Decision::Granted(grant)) => entry.ungrant(now, grant),
            Some(Decision::Refused(_)) => {}
            None => entry.leave(ticket),
        });
    }

    /// A granted release ended; for an answer, what [`Gate::learn`]
    /// returns.
    pub(super) fn complete(&self, key: u64, grant: Grant, finish: Finish<'_>) -> Option<Duration> {
        self.with_entry(key, |entry, now, wake| match finish {
            Finish::Unsent => {
                entry.ungrant(now, grant);
                None
            }
            Finish::Failed => {
                entry.land(grant);
                None
            }
            Finish::Answered(outcome) => {
                let uncounted = entry.not_yet_counted(now, grant);
                entry.land(grant);
                self.learn(key, entry, now, wake, outcome, grant, uncounted)
            }
        })
        .flatten()
    }

    /// The answer to a release through an open lane carried news (a
    /// throttle, an outage, rate-limit headers), or came after the lane
    /// closed: the table takes it as it takes any answer, for a request it
    /// did not track in flight.
    pub(super) fn complete_fast(&self, grant: FastGrant, outcome: &Outcome) -> Option<Duration> {
        let released_at = self.lanes.released_at(&grant);
        let key = grant.key;
        self.with_entry(key, |entry, now, wake| {
            let grant = Grant {
                released_at,
                seq: entry.seq(),
                generation: grant.generation,
                need: Need::default(),
            };
            let uncounted = Uncounted::default();
            self.learn(key, entry, now, wake, outcome, grant, uncounted)
        })
        .flatten()
    }

    /// What an answer to `grant` teaches `key`'s entry: its constraints,
    /// the resource of its route, and, if the key became limited, a sweep
    /// of the waiters that can no longer make their bounds. Returns, for a
    /// throttle whose short hint the gate reads as an upper bound, when a
    /// retry of the request could go (see [`retry_wait`]).
    #[allow(clippy::too_many_arguments)]
    fn learn(
        &self,
        key: u64,
        entry: &mut Entry,
        now: Instant,
        wake: &mut Vec<Waker>,
        outcome: &Outcome,
        grant: Grant,
        uncounted: Uncounted,
    ) -> Option<Duration> {
        let next_seq = entry.next_seq();
        let (limited, named) = entry.constraints.on_response(
            now,
            outcome,
            grant,
            uncounted,
            next_seq,
            self.config.knobs(),
        );
        if let (Some(resource), route @ 1..) = (named, grant.need.route) {
            entry.learn_route(route, resource);
        }
        if let Some(limited) = limited {
            trace_limited(key, limited, entry.queue.len());
            entry.sweep(now, wake);
        }
        // A hint naming a resource holds that resource, not the key.
        retry_wait(entry, now, outcome, &grant.need).filter(|_| named.is_none())
    }

    /// News from the store about a key (`{prefix}:{key hex}`): pump it.
    #[cfg(feature = "redis")]
    fn poke(&self, name: &str) {
        let hex = name.rsplit(':').next().unwrap_or_default();
        if let Ok(key) = u64::from_str_radix(hex, 16) {
            self.with_entry(key, |_, _, _| {});
        }
    }

    /// Runs `f` on `key`'s entry, then pumps it; wakers are called after
    /// the lock is released.
    /// What `f` returned, or `None` for a key no longer in the table.
    fn with_entry<T>(
        &self,
        key: u64,
        f: impl FnOnce(&mut Entry, Instant, &mut Vec<Waker>) -> T,
    ) -> Option<T> {
        let now = Instant::now();
        let knobs = self.config.knobs();
        let mut wake = Vec::new();
        let out = {
            let mut guard = self.lock();
            let entry = guard.entries.get_mut(&key)?;
            self.fold(key, entry);
            let out = f(entry, now, &mut wake);
            entry.pump(now, knobs, None, &mut wake);
            self.settle(key, entry, now);
            out
        };
        for w in wake {
            w.wake();
        }
        Some(out)
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
            stats.in_flight += entry.in_flight() as usize;
            stats.limited_keys += usize::from(entry.constraints.is_limited(now));
        }
        stats
    }
}

/// The lanes in the process are shared by every gate: a gate frees those
/// it holds, and leaves the registry of live gates.
impl Drop for Gate {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for &key in state.entries.keys() {
            self.lanes.close(key);
        }
        // Salts are never reused: the entry is this gate's.
        let mut gates = GATES.write().unwrap_or_else(|e| e.into_inner());
        gates.remove(&self.lanes.salt());
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
    fn entry(
        &mut self,
        key: u64,
        now: Instant,
        knobs: Knobs,
        config: &Config,
        lanes: &Lanes,
    ) -> &mut Entry {
        self.tick += 1;
        let max_keys = config.max_keys.max(1);
        if !self.entries.contains_key(&key) && self.entries.len() >= max_keys {
            self.evict(now, max_keys, lanes);
        }
        let tick = self.tick;
        let entry = self.entries.entry(key).or_insert_with(|| {
            #[allow(unused_mut)]
            let mut entry = Entry::new(now, knobs, &config.limits, tick);
            #[cfg(feature = "redis")]
            if let Some(store) = &config.store {
                let shared = super::shared::Shared::new(store, key, &config.limits);
                entry.constraints.share(shared);
            }
            entry
        });
        entry.used = tick;
        entry
    }

    /// Evicts an eighth of `max_keys` at once, so that the scan is paid once
    /// per many insertions: idle keys only (a key with requests waiting or in
    /// flight is in use), those that know nothing worth keeping first (their
    /// hold or reset has passed), then least recently used.
    fn evict(&mut self, now: Instant, max_keys: usize, lanes: &Lanes) {
        let target = max_keys - max_keys / 8;
        let excess = (self.entries.len() + 1).saturating_sub(target);
        let mut idle: Vec<(bool, u64, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_idle())
            .map(|(&k, e)| (e.constraints.knows_something(now), e.used, k))
            .collect();
        let n = excess.min(idle.len());
        if n == 0 {
            return;
        }
        idle.select_nth_unstable_by_key(n - 1, |&(knows, used, _)| (knows, used));
        for &(_, _, key) in &idle[..n] {
            self.entries.remove(&key);
            lanes.close(key);
        }
        tracing::debug!(
            evicted = n,
            keys = self.entries.len(),
            "rate limit: evicted idle keys"
        );
    }
}

/// When a retry of a throttled request could first go, by the gate's own
/// reading of its key, if that is sooner than the server's hint: only for a
/// hint of [`SHORT_HINT`] or less, which counts whole seconds and so is an
/// upper bound the gate tests (see [`super::short_hint`]). The requests
/// already waiting are not counted: the key's pace may be a guess still
/// ramping up, and a retry that comes back early only waits in the gate's
/// line, which, not this figure, decides when it goes.
fn retry_wait(entry: &Entry, now: Instant, outcome: &Outcome, need: &Need) -> Option<Duration> {
    let hint = outcome
        .hold
        .filter(|h| outcome.throttled && *h <= SHORT_HINT)?;
    let mine = Uncounted {
        requests: 1,
        tokens: need.cost,
    };
    let wait = entry
        .constraints
        .estimate(now, mine, need)
        .saturating_duration_since(now);
    (wait < hint).then_some(wait)
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
        Limited::Distrusted => {
            tracing::info!(
                %key,
                waiting,
                "rate limit: the server throttles while its headers claim room; learning its rate instead"
            );
        }
    }
}

#[cfg(test)]
mod tests;
