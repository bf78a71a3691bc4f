//! The time-based sliding window a closed breaker judges by: calls and
//! failures of the last `sampling_duration`, kept in a fixed ring of
//! buckets.
//!
//! A call counts from its admission (so a success needs no second visit);
//! a failure is added to the bucket its call was admitted in. Recording is
//! O(1) and allocates nothing: the ring is an array inside the
//! key's entry, and moving time forward clears at most [`BUCKETS`] buckets.
//! The window covers between `BUCKETS − 1` and `BUCKETS` bucket lengths of
//! history (the oldest bucket ages out whole), as Polly's and resilience4j's
//! time-based windows do.

use std::time::Duration;

use tokio::time::Instant;

/// Buckets in a window: enough that the oldest tenth ageing out at once is a
/// small step, few enough to clear in a handful of instructions.
pub(crate) const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u32,
    failures: u32,
}

/// Calls and failures over the last `sampling_duration`.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// Bucket indices count whole bucket lengths since here.
    epoch: Instant,
    /// One bucket's length in nanoseconds (at least 1).
    bucket_nanos: u64,
    ring: [Bucket; BUCKETS],
    /// The index (in bucket lengths since `epoch`) of the newest bucket.
    head: u64,
    /// When the head bucket ends: before it, no division is needed.
    head_end: Option<Instant>,
    calls: u32,
    failures: u32,
}

impl Window {
    /// An empty window of `sampling` (split into [`BUCKETS`] buckets).
    pub(crate) fn new(sampling: Duration, now: Instant) -> Self {
        let nanos = u64::try_from(sampling.as_nanos()).unwrap_or(u64::MAX);
        Window {
            epoch: now,
            bucket_nanos: (nanos / BUCKETS as u64).max(1),
            ring: [Bucket::default(); BUCKETS],
            head: 0,
            head_end: None,
            calls: 0,
            failures: 0,
        }
    }

    /// Counts a call admitted at `now`; returns its bucket, for
    /// [`Window::fail`] or [`Window::uncount`] once it ends. A call counts
    /// from its admission, so that a success costs nothing more.
    pub(crate) fn admit(&mut self, now: Instant) -> u64 {
        self.advance(now);
        let bucket = &mut self.ring[slot(self.head)];
        bucket.calls = bucket.calls.saturating_add(1);
        self.calls = self.calls.saturating_add(1);
        self.head
    }

    /// Marks a call of bucket `index` failed, if that bucket is still in
    /// the window.
    pub(crate) fn fail(&mut self, index: u64) {
        if let Some(bucket) = self.bucket(index) {
            bucket.failures = bucket.failures.saturating_add(1);
            self.failures = self.failures.saturating_add(1);
        }
    }

    /// Takes back a call of bucket `index` that said nothing about the
    /// service (ignored, or cancelled), if that bucket is still in the
    /// window.
    pub(crate) fn uncount(&mut self, index: u64) {
        if let Some(bucket) = self.bucket(index) {
            if bucket.calls > bucket.failures {
                bucket.calls -= 1;
                self.calls = self.calls.saturating_sub(1);
            }
        }
    }

    fn bucket(&mut self, index: u64) -> Option<&mut Bucket> {
        let live = index <= self.head && self.head - index < BUCKETS as u64;
        live.then(|| &mut self.ring[slot(index)])
    }

    /// Calls and failures in the window as of `now`.
    pub(crate) fn totals(&mut self, now: Instant) -> (u32, u32) {
        self.advance(now);
        (self.calls, self.failures)
    }

    /// Forgets everything (a breaker that closes starts afresh).
    pub(crate) fn clear(&mut self) {
        self.ring = [Bucket::default(); BUCKETS];
        self.calls = 0;
        self.failures = 0;
    }

    /// Moves the head to `now`'s bucket, clearing the buckets it passes.
    /// Time never runs backwards here: an earlier `now` records into the
    /// current head.
    fn advance(&mut self, now: Instant) {
        // The common case: still in the head bucket.
        if self.head_end.is_some_and(|end| now < end) {
            return;
        }
        let since = now.saturating_duration_since(self.epoch);
        let index = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX) / self.bucket_nanos;
        self.head_end = end_of(self.epoch, index.saturating_add(1), self.bucket_nanos);
        if index <= self.head {
            return;
        }
        let steps = (index - self.head).min(BUCKETS as u64);
        for i in 1..=steps {
            let old = std::mem::take(&mut self.ring[slot(self.head + i)]);
            self.calls = self.calls.saturating_sub(old.calls);
            self.failures = self.failures.saturating_sub(old.failures);
        }
        self.head = index;
    }
}

/// The instant bucket `index` ends (`None` past what `Instant` holds).
fn end_of(epoch: Instant, index: u64, bucket_nanos: u64) -> Option<Instant> {
    epoch.checked_add(Duration::from_nanos(index.checked_mul(bucket_nanos)?))
}

/// Where bucket `index` lives in the ring.
fn slot(index: u64) -> usize {
    (index % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLING: Duration = Duration::from_secs(10);

    impl Window {
        /// A call admitted and ended at `now`.
        fn record(&mut self, now: Instant, failed: bool) {
            let index = self.admit(now);
            if failed {
                self.fail(index);
            }
        }
    }

    #[test]
    fn counts_calls_and_failures_within_the_window() {
        let t0 = Instant::now();
        let mut w = Window::new(SAMPLING, t0);
        w.record(t0, true);
        w.record(t0 + Duration::from_secs(3), false);
        w.record(t0 + Duration::from_secs(9), true);
        assert_eq!(w.totals(t0 + Duration::from_secs(9)), (3, 2));
    }

    #[test]
    fn old_buckets_age_out() {
        let t0 = Instant::now();
        let mut w = Window::new(SAMPLING, t0);
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
        let mut w = Window::new(SAMPLING, t0);
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
            let mut w = Window::new(sampling, t0);
            w.record(t0, true);
            w.record(t0 + Duration::from_secs(1), false);
            let _ = w.totals(t0 + Duration::from_secs(2));
            w.clear();
            assert_eq!(w.totals(t0), (0, 0));
        }
    }

    #[test]
    fn late_outcomes_land_in_their_bucket_or_nowhere() {
        let t0 = Instant::now();
        let mut w = Window::new(SAMPLING, t0);
        let early = w.admit(t0);
        let ignored = w.admit(t0);
        w.uncount(ignored);
        assert_eq!(w.totals(t0 + Duration::from_secs(5)), (1, 0));
        w.fail(early);
        assert_eq!(w.totals(t0 + Duration::from_secs(5)), (1, 1));
        let stale = w.admit(t0 + Duration::from_secs(5));
        let _ = w.totals(t0 + Duration::from_secs(30));
        w.fail(stale);
        w.uncount(stale);
        assert_eq!(w.totals(t0 + Duration::from_secs(30)), (0, 0));
    }

    #[test]
    fn an_earlier_instant_records_into_the_head() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut w = Window::new(SAMPLING, t0);
        w.record(t0 - Duration::from_secs(1), true);
        assert_eq!(w.totals(t0), (1, 1));
    }
}
