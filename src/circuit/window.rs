//! The time-based sliding window a closed breaker judges by: calls and
//! failures of the last `sampling_duration`, kept in a fixed ring of
//! buckets that every clone records into without a lock.
//!
//! A call counts from its admission (so a success needs no second visit);
//! a failure is added to the bucket its call was admitted in (or, if that
//! bucket has left the window since, to the bucket it ended in). Each bucket
//! is one atomic word per counter holding the bucket's index (whole bucket
//! lengths since the window was made) beside its count, so recording is a
//! compare-and-swap that also ages the slot's previous bucket out: O(1), no
//! allocation, no lock.
//!
//! **Clock reads.** A clock reading costs more than the rest of a closed
//! breaker's admission together, so [`Window::admit`] reads it only now and
//! then: it counts the call in the bucket of the last reading until that
//! bucket has grown by a sixteenth since (and at every one of its first 16
//! calls). Under steady traffic a call is thus counted at most a sixteenth
//! of a bucket's length early in the bucket before its own; after a pause,
//! at most a sixteenth of the calls the last bucket saw are counted there.
//! Failures, probes and every other state change read the clock: a failure
//! is never counted in a bucket that has already left the window.
//!
//! Reading the totals sums the [`BUCKETS`] slots whose
//! index is within the window. The window covers between `BUCKETS − 1` and
//! `BUCKETS` bucket lengths of history (the oldest bucket ages out whole),
//! as Polly's and resilience4j's time-based windows do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Buckets in a window: enough that the oldest tenth ageing out at once is a
/// small step, few enough to sum in a handful of instructions.
pub(crate) const BUCKETS: usize = 10;

/// Shortest bucket: 1 ms, so that bucket indices (40 bits) never wrap.
const MIN_BUCKET_NANOS: u64 = 1_000_000;
/// A word is `index << COUNT_BITS | count`.
const COUNT_BITS: u32 = 24;
/// Counts saturate here (16.7 million calls in one bucket).
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
/// Indices past this (35 years of 1 ms buckets) are clamped.
const INDEX_MAX: u64 = (1 << (64 - COUNT_BITS)) - 1;

/// Calls and failures over the last `sampling_duration`.
#[derive(Debug)]
pub(crate) struct Window {
    /// Bucket indices count whole bucket lengths since here.
    epoch: Instant,
    /// One bucket's length in nanoseconds.
    bucket_nanos: u64,
    /// The index of the newest clock reading: [`Window::admit`] counts in
    /// it between readings, and a reading within it needs no division.
    head: AtomicU64,
    /// The head bucket's count at which [`Window::admit`] reads the clock
    /// again.
    next_read: AtomicU64,
    calls: [AtomicU64; BUCKETS],
    failures: [AtomicU64; BUCKETS],
}

fn pack(index: u64, count: u64) -> u64 {
    (index << COUNT_BITS) | count
}

fn index_of(word: u64) -> u64 {
    word >> COUNT_BITS
}

fn count_of(word: u64) -> u64 {
    word & COUNT_MAX
}

/// Where bucket `index` lives in the ring.
fn slot(index: u64) -> usize {
    (index % BUCKETS as u64) as usize
}

impl Window {
    /// An empty window of `sampling` (split into [`BUCKETS`] buckets of at
    /// least 1 ms).
    pub(crate) fn new(sampling: Duration, now: Instant) -> Self {
        let nanos = u64::try_from(sampling.as_nanos()).unwrap_or(u64::MAX);
        Window {
            epoch: now,
            bucket_nanos: (nanos / BUCKETS as u64).max(MIN_BUCKET_NANOS),
            head: AtomicU64::new(0),
            next_read: AtomicU64::new(0),
            calls: Default::default(),
            failures: Default::default(),
        }
    }

    /// The index of the bucket `now` falls in. Time never runs backwards
    /// here: an instant before the epoch is bucket 0.
    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch);
        let nanos = since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()));
        let head = self.head.load(Ordering::Relaxed);
        let start = head.saturating_mul(self.bucket_nanos);
        if nanos >= start && nanos - start < self.bucket_nanos {
            return head;
        }
        let index = (nanos / self.bucket_nanos).min(INDEX_MAX);
        self.head.fetch_max(index, Ordering::Relaxed);
        index
    }

    /// Counts a call admitted now, reading the clock only when due (see
    /// the module docs); returns its bucket, for [`Window::fail`] or
    /// [`Window::uncount`] once it ends. A call counts from its admission,
    /// so that a success costs nothing more.
    #[inline]
    pub(crate) fn admit(&self) -> u64 {
        let head = self.head.load(Ordering::Relaxed);
        let word = &self.calls[slot(head)];
        let mut current = word.load(Ordering::Relaxed);
        loop {
            if index_of(current) != head
                || count_of(current) >= self.next_read.load(Ordering::Relaxed)
            {
                return self.admit_at(Instant::now());
            }
            match word.compare_exchange_weak(
                current,
                current + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return head,
                Err(seen) => current = seen,
            }
        }
    }

    /// Counts a call admitted at `now` (a clock reading); returns its bucket.
    pub(crate) fn admit_at(&self, now: Instant) -> u64 {
        let index = self.index(now);
        let (bucket, count) = self.count_call(index);
        if bucket == self.head.load(Ordering::Relaxed) {
            // Read again once the bucket has grown by a sixteenth (at each
            // of its first 16 calls).
            let next = count.saturating_add(count / 16).min(COUNT_MAX);
            self.next_read.store(next, Ordering::Relaxed);
        }
        bucket
    }

    /// Adds a call to bucket `index`; returns the bucket it went to and
    /// that bucket's new count.
    fn count_call(&self, index: u64) -> (u64, u64) {
        let word = &self.calls[slot(index)];
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let held = index_of(current);
            let (bucket, new) = if held < index {
                // The slot's bucket has aged out: this call starts the new one.
                (index, pack(index, 1))
            } else {
                // This bucket, or (read by a racing clone with a later
                // clock) a newer one: count the call there.
                (held, current + u64::from(count_of(current) < COUNT_MAX))
            };
            match word.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (bucket, count_of(new)),
                Err(seen) => current = seen,
            }
        }
    }

    /// Marks a call of bucket `index` failed at `now`. If that bucket has
    /// left the window (a long call, or one counted early after a pause),
    /// the failure counts, with a call, in `now`'s bucket instead: a
    /// failure seen now is news about the service now.
    pub(crate) fn fail(&self, index: u64, now: Instant) {
        let head = self.index(now);
        let live = index <= head
            && head - index < BUCKETS as u64
            && index_of(self.calls[slot(index)].load(Ordering::Relaxed)) == index;
        let index = if live { index } else { self.count_call(head).0 };
        let word = &self.failures[slot(index)];
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let held = index_of(current);
            let new = match held.cmp(&index) {
                std::cmp::Ordering::Less => pack(index, 1),
                std::cmp::Ordering::Equal => current + u64::from(count_of(current) < COUNT_MAX),
                std::cmp::Ordering::Greater => return,
            };
            match word.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes back a call of bucket `index` that said nothing about the
    /// service (ignored, or cancelled), if that bucket is still in the
    /// window and holds more calls than failures.
    pub(crate) fn uncount(&self, index: u64) {
        let failed = self.failures_of(index);
        let word = &self.calls[slot(index)];
        let mut current = word.load(Ordering::Relaxed);
        while index_of(current) == index && count_of(current) > failed {
            match word.compare_exchange_weak(
                current,
                current - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Failures recorded for bucket `index` (0 if its slot moved on).
    fn failures_of(&self, index: u64) -> u64 {
        let word = self.failures[slot(index)].load(Ordering::Relaxed);
        if index_of(word) == index {
            count_of(word)
        } else {
            0
        }
    }

    /// Calls and failures in the window as of `now`.
    pub(crate) fn totals(&self, now: Instant) -> (u32, u32) {
        let head = self.index(now);
        let live = |word: u64| {
            let index = index_of(word);
            index <= head && head - index < BUCKETS as u64
        };
        let sum = |words: &[AtomicU64; BUCKETS]| {
            words
                .iter()
                .map(|w| w.load(Ordering::Relaxed))
                .filter(|&w| live(w))
                .map(count_of)
                .sum::<u64>()
        };
        let calls = sum(&self.calls);
        let failures = sum(&self.failures).min(calls);
        let narrow = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        (narrow(calls), narrow(failures))
    }

    /// The newest bucket any call was counted in: how recently the key was
    /// used, for eviction.
    pub(crate) fn newest(&self) -> u64 {
        self.calls
            .iter()
            .map(|w| index_of(w.load(Ordering::Relaxed)))
            .max()
            .unwrap_or(0)
    }

    /// Forgets everything (a breaker that closes starts afresh).
    pub(crate) fn clear(&self) {
        for word in self.calls.iter().chain(&self.failures) {
            word.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLING: Duration = Duration::from_secs(10);

    impl Window {
        /// A call admitted and ended at `now`.
        fn record(&self, now: Instant, failed: bool) {
            let index = self.admit_at(now);
            if failed {
                self.fail(index, now);
            }
        }
    }

    #[test]
    fn counts_calls_and_failures_within_the_window() {
        let t0 = Instant::now();
        let w = Window::new(SAMPLING, t0);
        w.record(t0, true);
        w.record(t0 + Duration::from_secs(3), false);
        w.record(t0 + Duration::from_secs(9), true);
        assert_eq!(w.totals(t0 + Duration::from_secs(9)), (3, 2));
    }

    #[test]
    fn old_buckets_age_out() {
        let t0 = Instant::now();
        let w = Window::new(SAMPLING, t0);
        w.record(t0, true);
        w.record(t0 + Duration::from_secs(5), true);
        // The first bucket leaves once ten bucket lengths have passed.
        assert_eq!(w.totals(t0 + Duration::from_millis(9_999)), (2, 2));
        assert_eq!(w.totals(t0 + Duration::from_secs(10)), (1, 1));
        assert_eq!(w.totals(t0 + Duration::from_secs(15)), (0, 0));
    }

    #[test]
    fn a_long_silence_clears_everything_in_bounded_steps() {
        let t0 = Instant::now();
        let w = Window::new(SAMPLING, t0);
        for i in 0..100 {
            w.record(t0 + Duration::from_millis(i * 90), i % 2 == 0);
        }
        let later = t0 + Duration::from_secs(86_400 * 365);
        assert_eq!(w.totals(later), (0, 0));
        w.record(later, true);
        assert_eq!(w.totals(later), (1, 1));
    }

    #[test]
    fn tiny_and_huge_sampling_durations_do_not_panic() {
        let t0 = Instant::now();
        for sampling in [Duration::ZERO, Duration::from_nanos(3), Duration::MAX] {
            let w = Window::new(sampling, t0);
            w.record(t0, true);
            w.record(t0 + Duration::from_secs(1), false);
            let _ = w.totals(t0 + Duration::from_secs(2));
            w.clear();
            assert_eq!(w.totals(t0), (0, 0));
        }
    }

    #[test]
    fn late_outcomes_land_in_their_bucket_or_now() {
        let t0 = Instant::now();
        let w = Window::new(SAMPLING, t0);
        let early = w.admit_at(t0);
        let ignored = w.admit_at(t0);
        w.uncount(ignored);
        assert_eq!(w.totals(t0 + Duration::from_secs(5)), (1, 0));
        w.fail(early, t0 + Duration::from_secs(5));
        assert_eq!(w.totals(t0 + Duration::from_secs(5)), (1, 1));
        // A call whose bucket left the window: taking it back does nothing,
        // its failure counts when it is seen.
        let stale = w.admit_at(t0 + Duration::from_secs(5));
        let later = t0 + Duration::from_secs(30);
        w.uncount(stale);
        assert_eq!(w.totals(later), (0, 0));
        w.fail(stale, later);
        assert_eq!(w.totals(later), (1, 1));
        assert_eq!(w.totals(later + SAMPLING), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn admissions_read_the_clock_now_and_then_and_stay_close_to_it() {
        let t0 = Instant::now();
        let w = Window::new(SAMPLING, t0);
        for _ in 0..1_600 {
            w.admit();
        }
        // 1.5 s later (bucket 1), the next reading is due within a
        // sixteenth of bucket 0's calls: at most 100 land there.
        tokio::time::advance(Duration::from_millis(1_500)).await;
        for _ in 0..1_000 {
            w.admit();
        }
        let (in_window, _) = w.totals(t0 + Duration::from_secs(10));
        assert!(
            (900..=1_000).contains(&in_window),
            "{in_window} of 1,000 calls counted in bucket 1"
        );
        assert_eq!(w.totals(Instant::now()), (2_600, 0));
        // A bucket's first 16 calls each read the clock: a quiet key's
        // calls all land in their own bucket.
        let quiet = Window::new(SAMPLING, t0);
        for _ in 0..16 {
            quiet.admit();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let now = Instant::now();
        assert_eq!(quiet.totals(now), (9, 0), "one a second, the last 9 s");
        assert_eq!(quiet.totals(now + Duration::from_secs(8)), (1, 0));
    }

    #[test]
    fn an_earlier_instant_records_into_the_head() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let w = Window::new(SAMPLING, t0);
        w.record(t0 - Duration::from_secs(1), true);
        assert_eq!(w.totals(t0), (1, 1));
    }
}
