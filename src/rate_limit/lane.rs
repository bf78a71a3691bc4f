//! The gate's fast lanes: a request to a key about which nothing is known
//! (no hold, no quota, no configured or learned rate, slow start over, no
//! queue) goes without taking the table's lock.
//!
//! One fixed array of lanes serves every gate of the process, so that a
//! request released through a lane holds no reference to its gate: its
//! plain answer needs none, and only an answer with news looks the gate up
//! (see [`super::permit`]). A lane is named by a tag, the key's hash mixed
//! with the gate's salt, and is owned by at most one tag at a time. Only the
//! owner's gate, under its lock, opens, rewrites or frees the lane
//! ([`Lanes::publish`], after every change to the owner's entry); a request
//! reads one atomic to find its key's lane open ([`Lanes::try_release`]),
//! and its plain accepted answer — no throttle, no rate-limit header — is
//! one atomic increment ([`Lanes::count_accepted`]) that the entry folds
//! into its count of accepted requests at its next change. Anything else
//! the answer says takes the lock, as every request of a key that is not
//! open does.
//!
//! Tags that share a slot take turns: a closed lane is free, and goes to
//! whichever key opens first (claimed with one compare-and-swap, since the
//! gates of two tags lock apart); the other key uses its table. A request
//! admitted just before its lane closed still goes (as it would have, a
//! moment earlier); its answer, read after the lane closed, takes the lock.
//! A gate frees its lanes when it is dropped.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::rng::mix64;

/// Lanes in the process: the keys that can be open at once without a lock,
/// over all gates (128 KiB, allocated on first use).
#[cfg_attr(test, allow(dead_code))]
const LANES: usize = 1024;

/// The lane is open: requests of its owner go through it.
const OPEN: u64 = 1;
/// The owner's gate is rewriting the lane: requests use the table.
const BUSY: u64 = 2;
const FLAGS: u64 = OPEN | BUSY;

/// Every gate's lanes, but in unit tests, where each gate has its own so
/// that tests running in parallel never take each other's slots.
#[cfg_attr(test, allow(dead_code))]
static SHARED: LazyLock<LaneTable> = LazyLock::new(|| LaneTable::new(LANES));

/// Salts for the gates' tags, one per gate.
static NEXT_GATE: AtomicU64 = AtomicU64::new(1);

/// An array of lanes, a power of two long.
pub(crate) struct LaneTable {
    lanes: Box<[Lane]>,
}

impl LaneTable {
    fn new(n: usize) -> Self {
        LaneTable {
            lanes: (0..n.next_power_of_two())
                .map(|_| Lane::default())
                .collect(),
        }
    }
}

/// A release through an open lane, as the lane recorded the key when it
/// opened: what the table needs should the answer carry news.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastGrant {
    pub(super) key: u64,
    /// Nanoseconds since the gate's lane epoch of the change that last
    /// opened the lane: a release instant no later than the real one.
    released: u64,
    pub(super) generation: u64,
}

/// One lane, on cache lines of its own: what each release reads (state,
/// published) apart from the counter each answer bumps, so that concurrent
/// requests to one key do not invalidate each other's reads.
#[derive(Default)]
#[repr(align(64))]
struct Lane {
    /// The owner's tag with the `OPEN` and `BUSY` flags; 0: free.
    state: AtomicU64,
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

/// Where a gate's keys find their lanes: the lane array and the gate's
/// salt. Copied into each fast release instead of a reference to the gate.
#[derive(Clone, Copy)]
pub(crate) struct LaneRef {
    lanes: &'static LaneTable,
    /// The gate's salt, unique in the process (see [`Lanes::salt`]).
    pub(super) salt: u64,
}

impl LaneRef {
    #[inline]
    fn tag(&self, key: u64) -> u64 {
        // Keys are already uniform hashes; the salt keeps two gates' keys
        // (alike with a store's fixed hash) apart.
        match (key ^ self.salt) & !FLAGS {
            0 => 1 << 2,
            tag => tag,
        }
    }

    #[inline]
    fn lane(&self, tag: u64) -> &'static Lane {
        let lanes = &self.lanes.lanes;
        &lanes[(tag >> 2) as usize & (lanes.len() - 1)]
    }

    /// Lock-free: a release for `key` if its lane is open.
    #[inline]
    pub(super) fn try_release(&self, key: u64) -> Option<FastGrant> {
        let open = self.tag(key) | OPEN;
        let lane = self.lane(open);
        if lane.state.load(Ordering::Acquire) != open {
            return None;
        }
        let grant = FastGrant {
            key,
            released: lane.published.load(Ordering::Relaxed),
            generation: lane.generation.load(Ordering::Relaxed),
        };
        // Read as a sequence lock: the two values are the owner's, written
        // before it opened the lane and not since (another gate's, had the
        // lane changed hands in between).
        fence(Ordering::Acquire);
        (lane.state.load(Ordering::Relaxed) == open).then_some(grant)
    }

    /// Lock-free: counts a plain accepted answer to `grant`, if its lane
    /// is still open for its key; `false` when the table must take it.
    #[inline]
    pub(super) fn count_accepted(&self, grant: &FastGrant) -> bool {
        let tag = self.tag(grant.key);
        let lane = self.lane(tag);
        if lane.state.load(Ordering::Acquire) != tag | OPEN {
            return false;
        }
        lane.accepted.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// A gate's lanes: where they are, and the epoch their release instants
/// count from.
pub(super) struct Lanes {
    epoch: Instant,
    at: LaneRef,
}

impl Lanes {
    pub(super) fn new(now: Instant) -> Self {
        #[cfg(not(test))]
        let lanes: &'static LaneTable = &SHARED;
        // A few hundred gates in the unit tests, 32 KiB each, kept for the
        // run.
        #[cfg(test)]
        let lanes: &'static LaneTable = Box::leak(Box::new(LaneTable::new(256)));
        Lanes {
            epoch: now,
            at: LaneRef {
                lanes,
                salt: mix64(NEXT_GATE.fetch_add(1, Ordering::Relaxed)),
            },
        }
    }

    /// What a fast release needs to find its lane again.
    #[inline]
    pub(super) fn at(&self) -> LaneRef {
        self.at
    }

    /// The gate's salt: unique in the process, since `mix64` is a bijection.
    pub(super) fn salt(&self) -> u64 {
        self.at.salt
    }

    /// When `grant` was released, at the latest.
    pub(super) fn released_at(&self, grant: &FastGrant) -> Instant {
        self.epoch + Duration::from_nanos(grant.released)
    }

    /// Under the table lock: the plain accepted answers counted on `key`'s
    /// lane since the last call, for its entry.
    pub(super) fn take_accepted(&self, key: u64) -> u64 {
        let tag = self.at.tag(key);
        let lane = self.at.lane(tag);
        if lane.state.load(Ordering::Acquire) & !FLAGS == tag {
            lane.accepted.swap(0, Ordering::AcqRel)
        } else {
            0
        }
    }

    /// Under the table lock, after a change to `key`'s entry: opens its
    /// lane (taking the slot if it is free) or frees it. Returns the
    /// accepted answers counted since [`Lanes::take_accepted`], for the
    /// entry.
    pub(super) fn publish(&self, key: u64, open: bool, now: Instant, generation: u64) -> u64 {
        let tag = self.at.tag(key);
        let lane = self.at.lane(tag);
        let state = lane.state.load(Ordering::Acquire);
        let late = if state & !FLAGS == tag {
            // Ours: only this gate, under its lock, writes it.
            lane.state.store(tag | BUSY, Ordering::Relaxed);
            fence(Ordering::Release);
            lane.accepted.swap(0, Ordering::AcqRel)
        } else {
            // Another gate's lanes lock apart from ours: claim a free lane
            // in one step, or leave it.
            let claimed = open
                && state == 0
                && lane
                    .state
                    .compare_exchange(0, tag | BUSY, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if !claimed {
                return 0;
            }
            fence(Ordering::Release);
            lane.accepted.store(0, Ordering::Release);
            0
        };
        if open {
            let since = now.saturating_duration_since(self.epoch);
            let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
            lane.published.store(nanos, Ordering::Relaxed);
            lane.generation.store(generation, Ordering::Relaxed);
            lane.state.store(tag | OPEN, Ordering::Release);
        } else {
            lane.state.store(0, Ordering::Release);
        }
        late
    }

    /// Under the table lock (or as the gate is dropped): `key`'s entry is
    /// gone; its lane is freed.
    pub(super) fn close(&self, key: u64) {
        let tag = self.at.tag(key);
        let lane = self.at.lane(tag);
        if lane.state.load(Ordering::Acquire) & !FLAGS == tag {
            lane.state.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Lanes {
        /// Another gate's lanes on the same array as `self`'s.
        fn beside(&self, now: Instant) -> Lanes {
            let mut other = Lanes::new(now);
            other.at.lanes = self.at.lanes;
            other
        }
    }

    /// A key other than `key` whose lane is `key`'s.
    fn same_slot(lanes: &Lanes, key: u64) -> u64 {
        let slot = |k| std::ptr::from_ref(lanes.at.lane(lanes.at.tag(k)));
        (key + 1..)
            .find(|&k| slot(k) == slot(key))
            .expect("a slot is shared")
    }

    #[tokio::test(start_paused = true)]
    async fn a_lane_opens_for_one_key_of_a_slot_at_a_time() {
        let now = Instant::now();
        let lanes = Lanes::new(now);
        let at = lanes.at();
        let a = 7;
        let b = same_slot(&lanes, a);
        assert!(at.try_release(a).is_none());
        lanes.publish(a, true, now, 3);
        let grant = at.try_release(a).expect("open");
        assert_eq!(grant.generation, 3);
        // b shares a's slot: it stays on the table while a is open.
        assert_eq!(lanes.publish(b, true, now, 0), 0);
        assert!(at.try_release(b).is_none());
        assert!(at.count_accepted(&grant));
        assert!(at.count_accepted(&grant));
        assert_eq!(lanes.take_accepted(a), 2);
        at.count_accepted(&grant);
        // Closing hands back what was counted since, and frees the slot.
        assert_eq!(lanes.publish(a, false, now, 3), 1);
        assert!(!at.count_accepted(&grant), "closed: the table takes it");
        assert_eq!(lanes.take_accepted(a), 0);
        lanes.publish(b, true, now, 0);
        assert!(at.try_release(b).is_some());
        assert!(at.try_release(a).is_none());
        lanes.close(b);
        assert!(at.try_release(b).is_none());
        assert_eq!(lanes.publish(a, false, now, 3), 0, "closing a free lane");
        assert!(at.try_release(a).is_none(), "and it stays closed");
    }

    #[tokio::test(start_paused = true)]
    async fn two_gates_never_share_a_key_lane() {
        let now = Instant::now();
        let one = Lanes::new(now);
        let two = one.beside(now);
        // The same key (a store hashes keys alike in every gate), on two
        // lanes.
        let lane = |l: &Lanes, k| std::ptr::from_ref(l.at.lane(l.at.tag(k)));
        let key = (42..)
            .find(|&k| lane(&one, k) != lane(&two, k))
            .expect("a key on two lanes");
        one.publish(key, true, now, 1);
        assert!(one.at().try_release(key).is_some());
        assert!(two.at().try_release(key).is_none(), "not two's");
        assert_eq!(two.take_accepted(key), 0);
        two.publish(key, true, now, 9);
        let grant = two.at().try_release(key).expect("two's own lane");
        assert_eq!(grant.generation, 9);
        assert!(two.at().count_accepted(&grant));
        assert_eq!(one.take_accepted(key), 0, "counted on two's lane");
        assert_eq!(two.take_accepted(key), 1);
        // A key of two's whose lane one holds open waits its turn.
        let other = (0..)
            .find(|&k| lane(&two, k) == lane(&one, key))
            .expect("a key on one's lane");
        two.publish(other, true, now, 2);
        assert!(two.at().try_release(other).is_none());
        one.close(key);
        two.publish(other, true, now, 2);
        assert!(two.at().try_release(other).is_some());
    }
}
