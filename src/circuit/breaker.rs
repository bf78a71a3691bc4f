//! The state every clone of the layer and service shares: one [`Cell`] per
//! key, found through a map behind a `std::sync::Mutex`.
//!
//! Services remember the cell of the last key they used, so a run of calls
//! to one key (the common case) never takes the map's lock; the cell itself
//! admits a closed breaker's calls without a lock (see [`super::cell`]).
//! The map's lock is taken for a key a service has not seen last, and to
//! evict; its critical sections are a hash-map lookup (an eviction scan
//! when a new key arrives at the cap), never an `.await` or a callback.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::cell::{Cell, Common};
use super::events::BreakerStats;
use super::open::CircuitOpen;
use super::outcome::ClassifyCall;
use super::state::{Admit, Settings, Ticket};
use crate::key::{KeyHasher, KeyMap};
use crate::rng::BackoffRng;

pub(crate) use super::cell::Hook;

/// Shared by every clone of a layer and its services.
pub(crate) struct Breaker<C> {
    pub(crate) common: Arc<Common<C>>,
    pub(crate) max_keys: usize,
    /// Seeds key hashes, so that key collisions cannot be planned.
    pub(crate) hasher: KeyHasher,
    map: Mutex<Map<C>>,
    rejected: AtomicU64,
}

struct Map<C> {
    cells: KeyMap<Arc<Cell<C>>>,
    /// Seeds each new cell's jitter.
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
            common: Arc::new(Common {
                settings,
                classifier,
                hook,
            }),
            max_keys,
            hasher: KeyHasher::default(),
            map: Mutex::new(Map {
                cells: KeyMap::default(),
                rng: seed.map_or_else(BackoffRng::from_entropy, BackoffRng::seeded),
            }),
            rejected: AtomicU64::new(0),
        }
    }

    pub(crate) fn classifier(&self) -> &C {
        &self.common.classifier
    }

    pub(crate) fn hook(&self) -> Option<Hook> {
        self.common.hook.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Map<C>> {
        // Nothing that can panic runs under the lock; a poisoned map is
        // still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cell of `key`, made if new (at `max_keys`, after evicting some).
    pub(crate) fn cell(&self, key: u64) -> Arc<Cell<C>> {
        let mut map = self.lock();
        if let Some(cell) = map.cells.get(&key) {
            return cell.clone();
        }
        let max = self.max_keys.max(1);
        if map.cells.len() >= max {
            evict(&mut map.cells, max);
        }
        let rng = BackoffRng::seeded(map.rng.next_u64());
        let cell = Arc::new(Cell::new(self.common.clone(), key, Instant::now(), rng));
        map.cells.insert(key, cell.clone());
        cell
    }

    /// Admission of a new request through `cell` (see [`Breaker::cell`]).
    #[inline]
    pub(crate) fn admit(&self, cell: &Arc<Cell<C>>) -> Admission<C> {
        match cell.admit() {
            Admit::Go(ticket) => Admission::Go(Call {
                cell: cell.clone(),
                ticket: Some(ticket),
            }),
            Admit::Reject(retry_after) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Admission::Reject(CircuitOpen { retry_after })
            }
        }
    }

    pub(crate) fn stats(&self) -> BreakerStats {
        let now = Instant::now();
        let cells: Vec<_> = self.lock().cells.values().cloned().collect();
        BreakerStats {
            keys: cells.iter().map(|c| c.stats(now)).collect(),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// Evicts an eighth of `max` cells at once (so the scan is paid once per
/// eighth of new keys): closed ones that never broke first, then the least
/// recently used. Calls still in flight on an evicted cell end uncounted by
/// the key's next cell.
fn evict<C>(cells: &mut KeyMap<Arc<Cell<C>>>, max: usize) {
    let mut order: Vec<((bool, u64), u64)> = cells
        .iter()
        .map(|(&key, c)| (c.eviction_order(), key))
        .collect();
    let n = (max / 8).max(1).min(order.len());
    if n == 0 {
        return;
    }
    if n < order.len() {
        order.select_nth_unstable(n - 1);
    }
    for &(_, key) in &order[..n] {
        if let Some(cell) = cells.remove(&key) {
            cell.evict();
        }
    }
    tracing::debug!(evicted = n, max_keys = max, "circuit breaker: evicted keys");
}

impl<C> fmt::Debug for Breaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("settings", &self.common.settings)
            .field("max_keys", &self.max_keys)
            .field("keys", &self.lock().cells.len())
            .finish_non_exhaustive()
    }
}

/// An admitted call. Report its result with [`Call::finish`]; dropped
/// unfinished (the response future was cancelled), it counts as nothing
/// and frees its place (a half-open probe's included).
pub(crate) struct Call<C> {
    cell: Arc<Cell<C>>,
    ticket: Option<Ticket>,
}

impl<C> Call<C> {
    /// Classifies `result` and counts it.
    #[inline]
    pub(crate) fn finish<Res, E>(mut self, result: Result<&Res, &E>)
    where
        C: ClassifyCall<Res, E>,
    {
        if let Some(ticket) = self.ticket.take() {
            let outcome = self.cell.common.classifier.classify(result);
            self.cell.finish(ticket, Some(outcome));
        }
    }
}

impl<C> Drop for Call<C> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.cell.finish(ticket, None);
        }
    }
}

impl<C> fmt::Debug for Call<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("key", &self.cell.key)
            .field("ticket", &self.ticket)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::circuit::events::CircuitState;
    use crate::circuit::outcome::{CallOutcome, ServerErrors};

    fn breaker(max_keys: usize) -> Breaker<ServerErrors> {
        breaker_sampling(max_keys, Duration::from_secs(10))
    }

    fn breaker_sampling(max_keys: usize, sampling: Duration) -> Breaker<ServerErrors> {
        let settings = Settings {
            failure_ratio: 0.5,
            minimum_throughput: 4,
            sampling_duration: sampling,
            break_duration: Duration::from_secs(5),
            max_break_duration: Duration::from_secs(50),
            half_open_probes: 2,
            slow_call: None,
        };
        Breaker::new(settings, max_keys, Some(1), ServerErrors, None)
    }

    fn go(b: &Breaker<ServerErrors>, cell: &Arc<Cell<ServerErrors>>) -> Call<ServerErrors> {
        match b.admit(cell) {
            Admission::Go(call) => call,
            Admission::Reject(open) => panic!("rejected: {open:?}"),
        }
    }

    fn fail(mut call: Call<ServerErrors>) {
        if let (Some(ticket), cell) = (call.ticket.take(), &call.cell) {
            cell.finish(ticket, Some(CallOutcome::Failure));
        }
    }

    fn succeed(mut call: Call<ServerErrors>) {
        if let (Some(ticket), cell) = (call.ticket.take(), &call.cell) {
            cell.finish(ticket, Some(CallOutcome::Success));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_of_an_evicted_cell_do_not_count_on_the_keys_next_cell() {
        let b = breaker(1);
        let old = b.cell(7);
        let late: Vec<_> = (0..4).map(|_| go(&b, &old)).collect();
        // Key 8 evicts key 7: a service holding the old cell sees it.
        let _other = b.cell(8);
        assert!(!old.is_live());
        let new = b.cell(7);
        assert!(!Arc::ptr_eq(&old, &new));
        late.into_iter().for_each(fail);
        let stats = b.stats();
        let key7 = stats.keys.iter().find(|k| k.key == 7).expect("key 7");
        assert_eq!(
            (key7.state, key7.calls, key7.failures),
            (CircuitState::Closed, 0, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_admitted_lock_free_before_the_breaker_opened_is_not_counted_after() {
        let b = breaker(8);
        let cell = b.cell(1);
        let early = go(&b, &cell);
        let calls: Vec<_> = (0..3).map(|_| go(&b, &cell)).collect();
        calls.into_iter().for_each(fail);
        assert!(matches!(b.admit(&cell), Admission::Reject(_)));
        tokio::time::advance(Duration::from_secs(5)).await;
        // Half-open: the probe's success closes it; the window starts afresh.
        succeed(go(&b, &cell));
        let calls: Vec<_> = (0..4).map(|_| go(&b, &cell)).collect();
        let mut calls = calls.into_iter();
        calls.next().into_iter().for_each(fail);
        calls.for_each(succeed);
        // The call admitted before the breaker opened answers now: were it
        // counted, 2 failures of 4 calls would open the breaker.
        fail(early);
        assert!(matches!(b.admit(&cell), Admission::Go(_)));
    }

    #[test]
    fn clones_on_many_threads_count_every_call() {
        // A day-long window: every call stays in it however slow the machine.
        let b = Arc::new(breaker_sampling(8, Duration::from_secs(86_400)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime");
                    let _guard = rt.enter();
                    let cell = b.cell(3);
                    for _ in 0..10_000 {
                        drop(go(&b, &cell));
                        succeed(go(&b, &cell));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        // Dropped calls are taken back; successes stay.
        let stats = b.stats();
        assert_eq!(stats.keys[0].calls, 40_000);
    }
}
