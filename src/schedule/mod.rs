//! Backoff schedules: pure functions from "which retry is this" to "how long
//! to wait". No async, no clock, no tower.
//!
//! A [`Schedule`] returns the base delay before retry `n` (0 for the first
//! retry); [`Jitter`] then randomises it. Every schedule
//! saturates instead of overflowing for any `n` up to `u32::MAX` and any
//! `Duration`, and never returns more than its [`max_delay`](Schedule::max_delay).
//!
//! Outside tower, any schedule is an iterator of delays:
//!
//! ```
//! use std::time::Duration;
//! use tower_backoff::schedule::{Exponential, Schedule};
//!
//! // APUE's connect_retry: sleep 1, 2, 4, … 128 s, then give up.
//! let delays: Vec<u64> = Exponential::new(Duration::from_secs(1), Duration::from_secs(128))
//!     .max_retries(8)
//!     .delays()
//!     .map(|d| d.as_secs())
//!     .collect();
//! assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128]);
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::{BackoffRng, Jitter};

mod celery;
mod constant;
mod decorrelated;
mod ethernet;
mod exponential;
mod fibonacci;
mod linear;

pub use celery::Celery;
pub use constant::Constant;
pub use decorrelated::Decorrelated;
pub use ethernet::Ethernet;
pub use exponential::Exponential;
pub use fibonacci::Fibonacci;
pub use linear::Linear;

/// A backoff schedule: the base delay before each retry, before jitter.
///
/// Implementations must be total: no panic and no overflow for any `retry`
/// in `0..=u32::MAX` or any `prev`, and never a delay above
/// [`max_delay`](Schedule::max_delay).
///
/// A schedule of your own plugs into [`BackoffRetryLayer::new`](crate::BackoffRetryLayer::new)
/// and gets the layer's jitter, limits and budget like the built-in ones:
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::{BackoffRetryLayer, BackoffRng, Schedule};
///
/// /// Polls a long-running job: 1 s, 1 s, 1 s, then every 5 s, until 5 s caps it.
/// struct Polling;
///
/// impl Schedule for Polling {
///     fn delay(&self, retry: u32, _prev: Duration, _rng: &mut BackoffRng) -> Option<Duration> {
///         Some(if retry < 3 { Duration::from_secs(1) } else { Duration::from_secs(5) })
///     }
///
///     fn max_delay(&self) -> Duration {
///         Duration::from_secs(5)
///     }
/// }
///
/// let layer = BackoffRetryLayer::new(Polling).max_attempts(10);
/// # let _ = layer;
/// let delays: Vec<u64> = Polling.delays().take(5).map(|d| d.as_secs()).collect();
/// assert_eq!(delays, [1, 1, 1, 5, 5]);
/// ```
pub trait Schedule {
    /// The delay before retry number `retry` (0 for the first retry), given
    /// the previous delay (`Duration::ZERO` before the first retry), or `None`
    /// when the schedule gives up. Randomised schedules draw from `rng`.
    fn delay(&self, retry: u32, prev: Duration, rng: &mut BackoffRng) -> Option<Duration>;

    /// The cap: no delay of this schedule, jittered or not, exceeds it.
    fn max_delay(&self) -> Duration;

    /// Give up after `retries` retries (APUE's `connect_retry` is
    /// `Exponential` from 1 s to 128 s with `.max_retries(8)`).
    fn max_retries(self, retries: u32) -> MaxRetries<Self>
    where
        Self: Sized,
    {
        MaxRetries {
            inner: self,
            retries,
        }
    }

    /// The schedule as an iterator of delays, without jitter, drawing any
    /// randomness from an entropy-seeded generator. See [`Delays`] to add
    /// jitter or a seed.
    fn delays(self) -> Delays<Self>
    where
        Self: Sized,
    {
        Delays {
            schedule: self,
            jitter: Jitter::None,
            rng: BackoffRng::from_entropy(),
            retry: 0,
            prev: Duration::ZERO,
            done: false,
        }
    }
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn delay(&self, retry: u32, prev: Duration, rng: &mut BackoffRng) -> Option<Duration> {
        (**self).delay(retry, prev, rng)
    }
    fn max_delay(&self) -> Duration {
        (**self).max_delay()
    }
}

impl<S: Schedule + ?Sized> Schedule for Arc<S> {
    fn delay(&self, retry: u32, prev: Duration, rng: &mut BackoffRng) -> Option<Duration> {
        (**self).delay(retry, prev, rng)
    }
    fn max_delay(&self) -> Duration {
        (**self).max_delay()
    }
}

/// A schedule that gives up after a fixed number of retries; made by
/// [`Schedule::max_retries`].
#[derive(Debug, Clone)]
pub struct MaxRetries<S> {
    inner: S,
    retries: u32,
}

impl<S: Schedule> Schedule for MaxRetries<S> {
    fn delay(&self, retry: u32, prev: Duration, rng: &mut BackoffRng) -> Option<Duration> {
        if retry >= self.retries {
            return None;
        }
        self.inner.delay(retry, prev, rng)
    }
    fn max_delay(&self) -> Duration {
        self.inner.max_delay()
    }
}

/// A schedule as an iterator of (optionally jittered) delays; made by
/// [`Schedule::delays`]. It ends when the schedule gives up; schedules that
/// never give up make an endless iterator (use `.take(n)`).
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::{schedule::{Constant, Schedule}, Jitter};
///
/// let waits: Vec<_> = Constant::new(Duration::from_secs(2))
///     .delays()
///     .jitter(Jitter::Full)
///     .seed(9)
///     .take(3)
///     .collect();
/// assert!(waits.iter().all(|d| *d <= Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone)]
pub struct Delays<S> {
    schedule: S,
    jitter: Jitter,
    rng: BackoffRng,
    retry: u32,
    prev: Duration,
    done: bool,
}

impl<S> Delays<S> {
    /// Apply `jitter` to each delay (default [`Jitter::None`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Draw randomness from a generator seeded with `seed`, for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = BackoffRng::seeded(seed);
        self
    }
}

impl<S: Schedule> Iterator for Delays<S> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.done {
            return None;
        }
        let Some(base) = self.schedule.delay(self.retry, self.prev, &mut self.rng) else {
            self.done = true;
            return None;
        };
        self.prev = base;
        match self.retry.checked_add(1) {
            Some(next) => self.retry = next,
            None => self.done = true,
        }
        Some(
            self.jitter
                .apply(base, self.schedule.max_delay(), &mut self.rng),
        )
    }
}

#[cfg(test)]
mod tests;
