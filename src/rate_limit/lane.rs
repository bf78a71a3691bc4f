//! The gate's fast lanes: a request to a key about which nothing is known
//! (no hold, no quota, no configured or learned rate, slow start over, no
//! queue) goes without taking the table's lock.
//!
//! One fixed array of lanes serves every gate of the process, so that a
//! request released through a lane holds no reference to its gate: its
//! plain answer needs none, and only an answer with news looks the gate up
//! (see [`super::permit`]). A lane is named by a tag, the key's hash mixed
//! with the gate's secret salt, and is open for at most one tag at a time.
//! Only the owner's gate, under its lock, rewrites or frees its lane
//! ([`Lanes::publish`], after every change to the owner's entry); another
//! gate may claim a free lane with one compare-and-swap (the gates of two
//! tags lock apart), and holds at most [`PER_GATE`] lanes at once.
//!
//! A request reads its lane as a sequence lock ([`LaneRef::try_release`]:
//! a few loads of one cache line, no write), and its plain accepted answer
//! — no throttle, no rate-limit header — is one atomic increment of the
//! lane's counter ([`LaneRef::count_accepted`]), which the entry folds into
//! its count of accepted requests at its next change. The counter carries
//! the version of the lane the request was released by: once the lane has
//! been rewritten or has changed hands, the increment fails and the answer
//! takes the lock instead, so no count lands on another key or is lost.
//! Anything else the answer says takes the lock, as every request of a key
//! that is not open does.
//!
//! Tags that share a slot take turns: a closed lane is free, and goes to
//! whichever key opens first; the other key uses its table. A request
//! admitted just before its lane closed still goes (as it would have, a
//! moment earlier); its answer takes the lock. A gate frees its lanes when
//! it is dropped.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::rng::mix64;

/// Lanes in the process: the keys that can be open at once without a lock,
/// over all gates (128 KiB, allocated on first use).
#[cfg_attr(test, allow(dead_code))]
const LANES: usize = 1024;

/// Lanes one gate may hold open at once, so that one gate with many keys
/// leaves lanes for the others.
pub(super) const PER_GATE: usize = 256;

/// A lane's state while its writer rewrites it; 0 is a free lane, and any
/// other value the tag of the key it is open for.
const BUSY: u64 = u64::MAX;

/// Every gate's lanes, but in unit tests, where each gate has its own so
/// that tests running in parallel never take each other's slots.
#[cfg_attr(test, allow(dead_code))]
static SHARED: LazyLock<LaneTable> = LazyLock::new(|| LaneTable::new(LANES));

/// Numbers the gates: each gate's salt is this, mixed with a secret.
static NEXT_GATE: AtomicU64 = AtomicU64::new(1);

/// A secret of the process, so that no one can choose keys whose tags meet.
static SECRET: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(0x6c61_6e65_u64));

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
    /// The lane's version when the request went.
    version: u32,
}

/// One lane, on cache lines of its own: what each release reads apart from
/// the counter each answer bumps, so that concurrent requests to one key do
/// not invalidate each other's reads.
#[derive(Default)]
#[repr(align(64))]
struct Lane {
    /// 0 (free), `BUSY`, or the tag of the key the lane is open for.
    state: AtomicU64,
    /// Odd while the lane is being rewritten; bumped twice by every
    /// rewrite, whoever owns the lane, so a reader can tell that nothing
    /// changed while it read.
    seq: AtomicU64,
    published: AtomicU64,
    generation: AtomicU64,
    /// The lane's version (the low half of `seq`) in the high 32 bits, and
    /// plain accepted answers not yet folded into the owner's entry in the
    /// low 32.
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

/// `version` in the high half of a counter, with no count.
fn counter(version: u32) -> u64 {
    u64::from(version) << 32
}

impl Lane {
    /// Begins a rewrite by its owner (or the gate that just claimed it):
    /// readers see the version odd, then changed, and the lane busy.
    fn begin(&self) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.state.store(BUSY, Ordering::Relaxed);
    }

    /// Ends a rewrite with `state` and a fresh count at the new (even)
    /// version. Returns what was counted at version `old` (answers to older
    /// versions were refused, so they are not in it).
    fn end(&self, state: u64, old: u32) -> u64 {
        let seq = (self.seq.load(Ordering::Relaxed) | 1).wrapping_add(1);
        let late = self.take(old, seq as u32);
        // The state too is written while the version is odd: a reader that
        // sees the new version sees the state that goes with it.
        self.state.store(state, Ordering::Relaxed);
        self.seq.store(seq, Ordering::Release);
        late
    }

    /// The count of plain accepted answers since the last take, if counted
    /// at `version`; the count starts afresh at `next`.
    fn take(&self, version: u32, next: u32) -> u64 {
        let old = self.accepted.swap(counter(next), Ordering::AcqRel);
        if (old >> 32) as u32 == version {
            old & u64::from(u32::MAX)
        } else {
            0
        }
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
        // Keys are already uniform hashes; the secret salt keeps two
        // gates' keys (alike with a store's fixed hash) apart.
        match key ^ self.salt {
            0 => 1,
            BUSY => BUSY - 1,
            tag => tag,
        }
    }

    #[inline]
    fn lane(&self, tag: u64) -> &'static Lane {
        let lanes = &self.lanes.lanes;
        &lanes[tag as usize & (lanes.len() - 1)]
    }

    /// Lock-free: a release for `key` if its lane is open.
    #[inline]
    pub(super) fn try_release(&self, key: u64) -> Option<FastGrant> {
        let tag = self.tag(key);
        let lane = self.lane(tag);
        let seq = lane.seq.load(Ordering::Acquire);
        let open = lane.state.load(Ordering::Relaxed) == tag;
        let grant = FastGrant {
            key,
            released: lane.published.load(Ordering::Relaxed),
            generation: lane.generation.load(Ordering::Relaxed),
            version: seq as u32,
        };
        // A sequence lock: what was read is one version's, written by the
        // key's gate before it opened the lane, if the version is even and
        // still the same.
        fence(Ordering::Acquire);
        (open && seq & 1 == 0 && lane.seq.load(Ordering::Relaxed) == seq).then_some(grant)
    }

    /// Lock-free: counts a plain accepted answer to `grant`, if its lane is
    /// still at the version it was released by; `false` when the table
    /// must take it.
    #[inline]
    pub(super) fn count_accepted(&self, grant: &FastGrant) -> bool {
        let lane = self.lane(self.tag(grant.key));
        let mut cur = lane.accepted.load(Ordering::Relaxed);
        loop {
            if (cur >> 32) as u32 != grant.version
                || cur & u64::from(u32::MAX) == u64::from(u32::MAX)
            {
                return false;
            }
            match lane.accepted.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }
}

/// A gate's lanes: where they are, the epoch their release instants count
/// from, and how many it holds.
pub(super) struct Lanes {
    epoch: Instant,
    at: LaneRef,
    held: AtomicUsize,
}

impl Lanes {
    pub(super) fn new(now: Instant) -> Self {
        #[cfg(not(test))]
        let lanes: &'static LaneTable = &SHARED;
        // A few hundred gates in the unit tests, 64 KiB each, kept for the
        // run.
        #[cfg(test)]
        let lanes: &'static LaneTable = Box::leak(Box::new(LaneTable::new(2 * PER_GATE)));
        let n = NEXT_GATE.fetch_add(1, Ordering::Relaxed);
        Lanes {
            epoch: now,
            // `mix64` is a bijection: unique per gate, and secret.
            at: LaneRef {
                lanes,
                salt: mix64(n ^ *SECRET),
            },
            held: AtomicUsize::new(0),
        }
    }

    /// What a fast release needs to find its lane again.
    #[inline]
    pub(super) fn at(&self) -> LaneRef {
        self.at
    }

    /// The gate's salt: unique in the process.
    pub(super) fn salt(&self) -> u64 {
        self.at.salt
    }

    /// When `grant` was released, at the latest.
    pub(super) fn released_at(&self, grant: &FastGrant) -> Instant {
        self.epoch + Duration::from_nanos(grant.released)
    }

    /// `key`'s lane, if open for it: only its gate, under its lock, may
    /// change that.
    fn own(&self, key: u64) -> Option<&'static Lane> {
        let tag = self.at.tag(key);
        let lane = self.at.lane(tag);
        (lane.state.load(Ordering::Acquire) == tag).then_some(lane)
    }

    /// Under the table lock: the plain accepted answers counted on `key`'s
    /// lane since the last call, for its entry.
    pub(super) fn take_accepted(&self, key: u64) -> u64 {
        self.own(key).map_or(0, |lane| {
            let version = lane.seq.load(Ordering::Relaxed) as u32;
            lane.take(version, version)
        })
    }

    /// Under the table lock, after a change to `key`'s entry: opens its
    /// lane (claiming it if it is free and the gate holds fewer than
    /// [`PER_GATE`]) or frees it. Returns the accepted answers counted
    /// since [`Lanes::take_accepted`], for the entry.
    pub(super) fn publish(&self, key: u64, open: bool, now: Instant, generation: u64) -> u64 {
        let tag = self.at.tag(key);
        let lane = self.at.lane(tag);
        let version = lane.seq.load(Ordering::Relaxed) as u32;
        let mine = lane.state.load(Ordering::Acquire) == tag;
        if mine {
            lane.begin();
        } else {
            let claimed = open
                && self.held.load(Ordering::Relaxed) < PER_GATE
                && lane
                    .state
                    .compare_exchange(0, BUSY, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if !claimed {
                return 0;
            }
            self.held.fetch_add(1, Ordering::Relaxed);
            lane.begin();
        }
        if open {
            let since = now.saturating_duration_since(self.epoch);
            let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
            lane.published.store(nanos, Ordering::Relaxed);
            lane.generation.store(generation, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
        let late = lane.end(if open { tag } else { 0 }, version);
        // Counts at the old version are this key's only if the lane was.
        if mine {
            late
        } else {
            0
        }
    }

    /// Under the table lock (or as the gate is dropped): `key`'s entry is
    /// gone; its lane is freed.
    pub(super) fn close(&self, key: u64) {
        if let Some(lane) = self.own(key) {
            let version = lane.seq.load(Ordering::Relaxed) as u32;
            lane.begin();
            self.held.fetch_sub(1, Ordering::Relaxed);
            lane.end(0, version);
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

    /// The lane `key` of `lanes`' gate would use.
    fn lane(lanes: &Lanes, key: u64) -> *const Lane {
        std::ptr::from_ref(lanes.at.lane(lanes.at.tag(key)))
    }

    /// A key other than `key` whose lane is `key`'s.
    fn same_slot(lanes: &Lanes, key: u64) -> u64 {
        (key + 1..)
            .find(|&k| lane(lanes, k) == lane(lanes, key))
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
    async fn an_answer_to_a_lane_that_changed_hands_and_came_back_is_not_counted_on_it() {
        let now = Instant::now();
        let one = Lanes::new(now);
        let two = one.beside(now);
        let key = 5;
        one.publish(key, true, now, 1);
        let old = one.at().try_release(key).expect("open");
        one.publish(key, false, now, 1);
        // Another gate's key takes the lane, counts, and leaves it.
        let theirs = (0..)
            .find(|&k| lane(&two, k) == lane(&one, key))
            .expect("a key on the lane");
        two.publish(theirs, true, now, 7);
        assert!(!two.at().count_accepted(&old), "not theirs");
        let g = two.at().try_release(theirs).expect("theirs");
        assert!(two.at().count_accepted(&g));
        assert_eq!(two.publish(theirs, false, now, 7), 1);
        // Back to the first key: its old release counts no more.
        one.publish(key, true, now, 2);
        assert!(!one.at().count_accepted(&old), "released by an older lane");
        assert!(!one.at().count_accepted(&g));
        let new = one.at().try_release(key).expect("open again");
        assert_eq!(new.generation, 2);
        assert!(one.at().count_accepted(&new));
        assert_eq!(one.take_accepted(key), 1);
        // A rewrite by the owner retires the releases before it, too.
        one.publish(key, true, now, 3);
        assert!(!one.at().count_accepted(&new));
        assert_eq!(one.take_accepted(key), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_holds_at_most_its_share_of_the_lanes() {
        let now = Instant::now();
        let lanes = Lanes::new(now);
        let n = lanes.at.lanes.lanes.len() as u64;
        // Keys 0..n take every slot once.
        for key in 0..n {
            lanes.publish(key, true, now, 0);
        }
        let open = (0..n)
            .filter(|&k| lanes.at().try_release(k).is_some())
            .count();
        assert_eq!(open, PER_GATE);
        let other = lanes.beside(now);
        let theirs = (0..n).filter(|&k| {
            other.publish(k, true, now, 0);
            other.at().try_release(k).is_some()
        });
        assert_eq!(
            theirs.count(),
            PER_GATE,
            "the lanes left are another gate's"
        );
        // Freeing one lets the first gate take another.
        let first = (0..n)
            .find(|&k| lanes.at().try_release(k).is_some())
            .unwrap();
        lanes.close(first);
        let free = (0..n).find(|&k| {
            lanes.at().try_release(k).is_none() && {
                lanes.publish(k, true, now, 0);
                lanes.at().try_release(k).is_some()
            }
        });
        assert!(free.is_some(), "a lane again after one was freed");
    }

    /// Two gates whose keys share one lane, each opening and freeing it
    /// under its own lock while other threads release and count through
    /// it: every count that succeeded reaches its own gate, once.
    #[test]
    fn counts_reach_their_own_gate_while_a_shared_lane_changes_hands() {
        use std::sync::atomic::AtomicU64;
        use std::sync::Mutex;

        let now = Instant::now();
        let one = Lanes::new(now);
        let two = one.beside(now);
        let keys = [3, (0..).find(|&k| lane(&two, k) == lane(&one, 3)).unwrap()];
        let gates = [(one, Mutex::new(0u64)), (two, Mutex::new(0u64))];
        let counted = [AtomicU64::new(0), AtomicU64::new(0)];
        let owners = AtomicU64::new(2);
        let send = |at: LaneRef, key, counted: &AtomicU64| {
            if let Some(grant) = at.try_release(key) {
                if at.count_accepted(&grant) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        std::thread::scope(|s| {
            for g in 0..2 {
                let (lanes, taken) = &gates[g];
                let (key, counted, owners) = (keys[g], &counted[g], &owners);
                // The owner: opens (and sends once), takes, frees, under
                // its lock.
                s.spawn(move || {
                    for round in 0..600u64 {
                        let mut taken = taken.lock().unwrap();
                        *taken += match round % 3 {
                            0 => lanes.publish(key, true, now, round),
                            1 => lanes.take_accepted(key),
                            _ => lanes.publish(key, false, now, round),
                        };
                        drop(taken);
                        send(lanes.at(), key, counted);
                        std::thread::yield_now();
                    }
                    owners.fetch_sub(1, Ordering::Release);
                });
                for _ in 0..2 {
                    s.spawn(move || {
                        while owners.load(Ordering::Acquire) > 0 {
                            send(lanes.at(), key, counted);
                        }
                    });
                }
            }
        });
        for g in 0..2 {
            let (lanes, taken) = &gates[g];
            let mut taken = taken.lock().unwrap();
            *taken += lanes.take_accepted(keys[g]);
            *taken += lanes.publish(keys[g], false, now, 0);
            assert_eq!(*taken, counted[g].load(Ordering::Relaxed), "gate {g}");
        }
        assert!(
            counted.iter().any(|c| c.load(Ordering::Relaxed) > 0),
            "the lane was used"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_gates_never_share_a_key_lane() {
        let now = Instant::now();
        let one = Lanes::new(now);
        let two = one.beside(now);
        // The same key (a store hashes keys alike in every gate), on two
        // lanes.
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
