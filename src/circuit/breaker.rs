//! The state every clone of the layer and service shares: one [`Circuit`]
//! per key, behind one `std::sync::Mutex`.
//!
//! A call takes the lock once to be admitted (and counted); a success of a
//! closed breaker's call needs nothing more, so only failures, ignored or
//! cancelled calls and half-open probes take it a second time. Each
//! critical section is a hash-map lookup and a few comparisons (an eviction
//! scan when a new key arrives at the cap): never an `.await`, a user
//! callback, a `tracing` event or an allocation on the happy path. State
//! changes are announced (events, hook) after unlocking.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::events::{BreakerStats, CircuitState, KeyStats, StateChange};
use super::open::CircuitOpen;
use super::outcome::{CallOutcome, ClassifyCall};
use super::state::{Admit, Circuit, Settings, Ticket, Transition};
use crate::key::{KeyHasher, KeyMap};
use crate::rng::BackoffRng;

/// The `on_state_change` hook.
pub(crate) type Hook = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// Shared by every clone of a layer and its services.
pub(crate) struct Breaker<C> {
    pub(crate) settings: Settings,
    pub(crate) max_keys: usize,
    pub(crate) classifier: C,
    pub(crate) hook: Option<Hook>,
    /// Seeds key hashes, so that key collisions cannot be planned.
    pub(crate) hasher: KeyHasher,
    state: Mutex<Shared>,
    rejected: AtomicU64,
}

struct Shared {
    circuits: KeyMap<Circuit>,
    /// LRU clock: bumped on every admission.
    tick: u64,
    /// Jitter for re-opened breaks.
    rng: BackoffRng,
}

/// The answer to a new request.
pub(crate) enum Admission<C> {
    /// Call the inner service; report the outcome through the [`Call`].
    Go(Call<C>),
    /// Answer locally.
    Reject(CircuitOpen),
}

impl<C> Breaker<C> {
    pub(crate) fn new(
        settings: Settings,
        max_keys: usize,
        seed: Option<u64>,
        classifier: C,
        hook: Option<Hook>,
    ) -> Self {
        Breaker {
            settings,
            max_keys,
            classifier,
            hook,
            hasher: KeyHasher::default(),
            state: Mutex::new(Shared {
                circuits: KeyMap::default(),
                tick: 0,
                rng: seed.map_or_else(BackoffRng::from_entropy, BackoffRng::seeded),
            }),
            rejected: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Nothing that can panic runs under the lock but our own saturating
        // arithmetic; a poisoned state is still consistent enough to serve.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admission of a new request for `key`.
    pub(crate) fn admit(self: &Arc<Self>, key: u64) -> Admission<C> {
        let now = Instant::now();
        let mut guard = self.lock();
        let Shared {
            circuits,
            tick,
            rng,
        } = &mut *guard;
        *tick += 1;
        let circuit = circuit(circuits, key, now, *tick, &self.settings, self.max_keys);
        circuit.used = *tick;
        let (admit, transition) = circuit.admit(&self.settings, now, rng);
        drop(guard);
        if let Some(t) = transition {
            self.announce(key, t);
        }
        match admit {
            Admit::Go(ticket) => Admission::Go(Call {
                breaker: self.clone(),
                key,
                ticket: Some(ticket),
            }),
            Admit::Reject(retry_after) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Admission::Reject(CircuitOpen { retry_after })
            }
        }
    }

    fn finish(&self, key: u64, ticket: Ticket, outcome: Option<CallOutcome>) {
        let now = ticket
            .needs_clock(&self.settings, outcome)
            .then(Instant::now);
        if !ticket.matters(&self.settings, outcome, now) {
            return;
        }
        let mut guard = self.lock();
        let Shared { circuits, rng, .. } = &mut *guard;
        // Evicted since: nothing left to count.
        let Some(circuit) = circuits.get_mut(&key) else {
            return;
        };
        let transition = circuit.finish(&self.settings, ticket, outcome, now, rng);
        drop(guard);
        if let Some(t) = transition {
            self.announce(key, t);
        }
    }

    /// `tracing` event and hook for a state change, outside the lock.
    fn announce(&self, key: u64, t: Transition) {
        let change = StateChange {
            key,
            from: t.from,
            to: t.to,
            cause: t.cause,
            break_duration: t.break_duration,
        };
        match t.to {
            CircuitState::Open => tracing::warn!(
                key,
                from = %t.from,
                cause = ?t.cause,
                break_ms = t.break_duration.map(|d| d.as_millis() as u64),
                "circuit breaker: open"
            ),
            to => {
                tracing::info!(key, from = %t.from, to = %to, cause = ?t.cause, "circuit breaker: {to}")
            }
        }
        if let Some(hook) = &self.hook {
            hook(&change);
        }
    }

    pub(crate) fn stats(&self) -> BreakerStats {
        let now = Instant::now();
        let mut guard = self.lock();
        let keys = guard
            .circuits
            .iter_mut()
            .map(|(&key, c)| {
                let (calls, failures) = c.totals(now);
                KeyStats {
                    key,
                    state: c.state_at(Some(now)),
                    calls,
                    failures,
                    opened: c.opened,
                    retry_after: c.retry_after(now),
                }
            })
            .collect();
        BreakerStats {
            keys,
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// The circuit for `key`, created if new (at `max_keys`, after evicting
/// some).
fn circuit<'a>(
    circuits: &'a mut KeyMap<Circuit>,
    key: u64,
    now: Instant,
    tick: u64,
    settings: &Settings,
    max_keys: usize,
) -> &'a mut Circuit {
    let max = max_keys.max(1);
    if circuits.len() >= max && !circuits.contains_key(&key) {
        evict(circuits, max);
    }
    circuits
        .entry(key)
        .or_insert_with(|| Circuit::new(settings, now, tick))
}

/// Evicts an eighth of `max` circuits at once (so the scan is paid once
/// per eighth of new keys): closed ones that never broke first, then the
/// least recently used. Calls still in flight on an evicted circuit end
/// uncounted.
fn evict(circuits: &mut KeyMap<Circuit>, max: usize) {
    let mut order: Vec<(bool, u64, u64)> = circuits
        .iter()
        .map(|(&key, c)| (!c.is_quiet(), c.used, key))
        .collect();
    let n = (max / 8).max(1).min(order.len());
    if n == 0 {
        return;
    }
    if n < order.len() {
        order.select_nth_unstable(n - 1);
    }
    for &(_, _, key) in &order[..n] {
        circuits.remove(&key);
    }
    tracing::debug!(evicted = n, max_keys = max, "circuit breaker: evicted keys");
}

impl<C> fmt::Debug for Breaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("settings", &self.settings)
            .field("max_keys", &self.max_keys)
            .field("keys", &self.lock().circuits.len())
            .finish_non_exhaustive()
    }
}

/// An admitted call. Report its result with [`Call::finish`]; dropped
/// unfinished (the response future was cancelled), it counts as nothing
/// and frees its place (a half-open probe's included).
pub(crate) struct Call<C> {
    breaker: Arc<Breaker<C>>,
    key: u64,
    ticket: Option<Ticket>,
}

impl<C> Call<C> {
    /// Classifies `result` and counts it.
    pub(crate) fn finish<Res, E>(mut self, result: Result<&Res, &E>)
    where
        C: ClassifyCall<Res, E>,
    {
        if let Some(ticket) = self.ticket.take() {
            let outcome = self.breaker.classifier.classify(result);
            self.breaker.finish(self.key, ticket, Some(outcome));
        }
    }
}

impl<C> Drop for Call<C> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.finish(self.key, ticket, None);
        }
    }
}

impl<C> fmt::Debug for Call<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("key", &self.key)
            .field("ticket", &self.ticket)
            .finish()
    }
}
