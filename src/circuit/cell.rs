//! One key's breaker as every clone shares it: the state machine
//! ([`Circuit`]) behind its own lock, and beside it what a closed breaker's
//! calls need without that lock — whether it is closed, and the window they
//! are counted in.
//!
//! A call to a closed breaker is admitted with an atomic load and one
//! compare-and-swap in the window (which reads the clock only now and then:
//! see [`Window::admit`]); its success needs nothing more. Failures, ignored or cancelled calls, probes and every call while
//! open or half-open take the cell's lock. Each critical section is a few
//! comparisons: never an `.await`, a user callback, a `tracing` event or an
//! allocation. State changes are announced (events, hook) after unlocking.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::events::{CircuitState, KeyStats, StateChange};
use super::outcome::CallOutcome;
use super::state::{Admit, Circuit, Settings, Ticket, Transition};
use super::window::Window;
use crate::rng::BackoffRng;

/// The `on_state_change` hook.
pub(crate) type Hook = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// What every key's cell shares: fixed when the layer is built.
pub(crate) struct Common<C> {
    pub(crate) settings: Settings,
    pub(crate) classifier: C,
    pub(crate) hook: Option<Hook>,
}

/// One key's breaker.
pub(crate) struct Cell<C> {
    pub(crate) common: Arc<Common<C>>,
    pub(crate) key: u64,
    /// [`Circuit::closed_token`], published under the lock after every
    /// change: nonzero while closed.
    closed: AtomicU64,
    /// Set when the key is evicted: services holding the cell look it up
    /// again.
    evicted: AtomicBool,
    window: Window,
    core: Mutex<Core>,
}

struct Core {
    circuit: Circuit,
    /// Jitter for re-opened breaks.
    rng: BackoffRng,
}

impl<C> Cell<C> {
    pub(crate) fn new(common: Arc<Common<C>>, key: u64, now: Instant, rng: BackoffRng) -> Self {
        let circuit = Circuit::new();
        Cell {
            closed: AtomicU64::new(circuit.closed_token()),
            evicted: AtomicBool::new(false),
            window: Window::new(common.settings.sampling_duration, now),
            core: Mutex::new(Core { circuit, rng }),
            common,
            key,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // Nothing that can panic runs under the lock but our own saturating
        // arithmetic; a poisoned state is still consistent enough to serve.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the circuit's state for lock-free admissions; called with
    /// the lock held, after every change.
    fn publish(&self, core: &Core) {
        self.closed
            .store(core.circuit.closed_token(), Ordering::Release);
    }

    /// Whether the map still holds this cell.
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        !self.evicted.load(Ordering::Relaxed)
    }

    pub(crate) fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
    }

    /// Admission of a new call.
    #[inline]
    pub(crate) fn admit(&self) -> Admit {
        let token = self.closed.load(Ordering::Acquire);
        if token != 0 {
            let ticket = if self.common.settings.slow_call.is_some() {
                let now = Instant::now();
                Ticket::closed(token - 1, Some(now), self.window.admit_at(now))
            } else {
                Ticket::closed(token - 1, None, self.window.admit())
            };
            return Admit::Go(ticket);
        }
        let now = Instant::now();
        let mut core = self.lock();
        let Core { circuit, rng } = &mut *core;
        let (admit, transition) = circuit.admit(&self.common.settings, now, rng, &self.window);
        self.publish(&core);
        drop(core);
        if let Some(t) = transition {
            self.announce(t);
        }
        admit
    }

    /// The end of an admitted call; `None` when it was dropped unfinished.
    #[inline]
    pub(crate) fn finish(&self, ticket: Ticket, outcome: Option<CallOutcome>) {
        let settings = &self.common.settings;
        let now = ticket.needs_clock(settings, outcome).then(Instant::now);
        if !ticket.matters(settings, outcome, now) {
            return;
        }
        let mut core = self.lock();
        let Core { circuit, rng } = &mut *core;
        let transition = circuit.finish(settings, ticket, outcome, now, rng, &self.window);
        self.publish(&core);
        drop(core);
        if let Some(t) = transition {
            self.announce(t);
        }
    }

    /// `tracing` event and hook for a state change, outside the lock.
    fn announce(&self, t: Transition) {
        let key = self.key;
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
        if let Some(hook) = &self.common.hook {
            hook(&change);
        }
    }

    /// The key's figures at `now`.
    pub(crate) fn stats(&self, now: Instant) -> KeyStats {
        let (calls, failures) = self.window.totals(now);
        let core = self.lock();
        KeyStats {
            key: self.key,
            state: core.circuit.state_at(Some(now)),
            calls,
            failures,
            opened: core.circuit.opened,
            retry_after: core.circuit.retry_after(now),
        }
    }

    /// For eviction: whether losing the cell loses nothing worth keeping
    /// (closed and never broke), and how recently a call was counted.
    pub(crate) fn eviction_order(&self) -> (bool, u64) {
        (!self.lock().circuit.is_quiet(), self.window.newest())
    }
}

impl<C> fmt::Debug for Cell<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cell")
            .field("key", &self.key)
            .field("closed", &(self.closed.load(Ordering::Relaxed) != 0))
            .finish_non_exhaustive()
    }
}
