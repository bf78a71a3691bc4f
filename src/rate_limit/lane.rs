//! The gate's fast lanes: a request to a key about which nothing is known
//! (no hold, no quota, no configured or learned rate, slow start over, no
//! queue) goes without taking the table's lock.
//!
//! A fixed array of lanes, one per slot of the key's hash, each owned by at
//! most one key at a time. Only the table, under its lock, writes a lane's
//! owner and opens or closes it ([`Lanes::publish`], after every change to
//! the owner's entry); a request reads two atomics to find its key's lane
//! open ([`Lanes::try_release`]), and its plain accepted answer — no
//! throttle, no rate-limit header — is one atomic increment
//! ([`Lanes::count_accepted`]) that the entry folds into its count of
//! accepted requests at its next change. Anything else the answer says
//! takes the lock, as every request of a key that is not open does.
//!
//! Keys that share a slot take turns: the slot goes to whichever opens
//! while it is closed; the other key uses the table. A request admitted
//! just before its lane closed still goes (as it would have, a moment
//! earlier); its answer, read after the lane closed, takes the lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Lanes per gate: the keys that can be open at once without the lock.
const LANES: usize = 256;

/// A release through an open lane, as the lane recorded the key when it
/// opened: what the table needs should the answer carry news.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastGrant {
    pub(super) key: u64,
    /// Nanoseconds since the lanes' epoch of the change that last opened
    /// the lane: a release instant no later than the real one.
    released: u64,
    pub(super) generation: u64,
}

/// One lane, on cache lines of its own: what each release reads (owner,
/// open, published) apart from the counter each answer bumps, so that
/// concurrent requests to one key do not invalidate each other's reads.
#[derive(Default)]
#[repr(align(64))]
struct Lane {
    /// The owner's key (0: none).
    key: AtomicU64,
    open: AtomicBool,
    published: AtomicU64,
    generation: AtomicU64,
    /// Plain accepted answers not yet folded into the owner's entry.
    accepted: Counter,
}

#[derive(Default)]
#[repr(align(64))]
struct Counter(AtomicU64);

impl std::ops::Deref for Counter {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

pub(super) struct Lanes {
    epoch: Instant,
    lanes: Box<[Lane]>,
}

impl Lanes {
    pub(super) fn new(now: Instant) -> Self {
        Lanes {
            epoch: now,
            lanes: (0..LANES).map(|_| Lane::default()).collect(),
        }
    }

    #[inline]
    fn lane(&self, key: u64) -> &Lane {
        // Keys are already uniform hashes.
        &self.lanes[(key % LANES as u64) as usize]
    }

    #[inline]
    fn is_open_for(lane: &Lane, key: u64) -> bool {
        lane.key.load(Ordering::Acquire) == key && lane.open.load(Ordering::Acquire)
    }

    /// Lock-free: a release for `key` if its lane is open.
    #[inline]
    pub(super) fn try_release(&self, key: u64) -> Option<FastGrant> {
        let lane = self.lane(key);
        Self::is_open_for(lane, key).then(|| FastGrant {
            key,
            released: lane.published.load(Ordering::Relaxed),
            generation: lane.generation.load(Ordering::Relaxed),
        })
    }

    /// Lock-free: counts a plain accepted answer to `grant`, if its lane
    /// is still open for its key; `false` when the table must take it.
    #[inline]
    pub(super) fn count_accepted(&self, grant: &FastGrant) -> bool {
        let lane = self.lane(grant.key);
        if !Self::is_open_for(lane, grant.key) {
            return false;
        }
        lane.accepted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// When `grant` was released, at the latest.
    pub(super) fn released_at(&self, grant: &FastGrant) -> Instant {
        self.epoch + Duration::from_nanos(grant.released)
    }

    /// Under the table lock: the plain accepted answers counted on `key`'s
    /// lane since the last call, for its entry.
    pub(super) fn take_accepted(&self, key: u64) -> u64 {
        let lane = self.lane(key);
        if lane.key.load(Ordering::Acquire) == key {
            lane.accepted.swap(0, Ordering::AcqRel)
        } else {
            0
        }
    }

    /// Under the table lock, after a change to `key`'s entry: opens its
    /// lane (taking the slot if no other key holds it open) or closes it.
    /// Returns the accepted answers counted since [`Lanes::take_accepted`],
    /// for the entry.
    pub(super) fn publish(&self, key: u64, open: bool, now: Instant, generation: u64) -> u64 {
        let lane = self.lane(key);
        let owner = lane.key.load(Ordering::Acquire);
        if owner != key {
            if !open || lane.open.load(Ordering::Acquire) {
                return 0;
            }
            // The slot is closed: take it over.
            lane.key.store(key, Ordering::Release);
            lane.accepted.store(0, Ordering::Release);
        }
        let late = lane.accepted.swap(0, Ordering::AcqRel);
        if open {
            let since = now.saturating_duration_since(self.epoch);
            let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
            lane.published.store(nanos, Ordering::Relaxed);
            lane.generation.store(generation, Ordering::Relaxed);
        }
        lane.open.store(open, Ordering::Release);
        late
    }

    /// Under the table lock: `key`'s entry is gone; so is its lane.
    pub(super) fn close(&self, key: u64) {
        let lane = self.lane(key);
        if lane.key.load(Ordering::Acquire) == key {
            lane.open.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lane_opens_for_one_key_of_a_slot_at_a_time() {
        let now = Instant::now();
        let lanes = Lanes::new(now);
        let (a, b) = (7, 7 + LANES as u64);
        assert!(lanes.try_release(a).is_none());
        lanes.publish(a, true, now, 3);
        let grant = lanes.try_release(a).expect("open");
        assert_eq!(grant.generation, 3);
        // b shares a's slot: it stays on the table while a is open.
        assert_eq!(lanes.publish(b, true, now, 0), 0);
        assert!(lanes.try_release(b).is_none());
        assert!(lanes.count_accepted(&grant));
        assert!(lanes.count_accepted(&grant));
        assert_eq!(lanes.take_accepted(a), 2);
        lanes.count_accepted(&grant);
        // Closing hands back what was counted since.
        assert_eq!(lanes.publish(a, false, now, 3), 1);
        assert!(!lanes.count_accepted(&grant), "closed: the table takes it");
        lanes.publish(b, true, now, 0);
        assert!(lanes.try_release(b).is_some());
        assert!(lanes.try_release(a).is_none());
        lanes.close(b);
        assert!(lanes.try_release(b).is_none());
    }
}
