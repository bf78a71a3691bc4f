use std::time::Duration;

use super::Schedule;
use crate::BackoffRng;

/// The same delay before every retry (the AI-API retry article's `CONSTANT`,
/// for a known rate-limit window).
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::schedule::{Constant, Schedule};
/// let s = Constant::new(Duration::from_secs(1));
/// assert_eq!(s.delays().take(3).collect::<Vec<_>>(), [Duration::from_secs(1); 3]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Constant {
    delay: Duration,
}

impl Constant {
    /// Wait `delay` before every retry; `delay` is also the cap.
    pub fn new(delay: Duration) -> Self {
        Constant { delay }
    }
}

impl Schedule for Constant {
    fn delay(&self, _retry: u32, _prev: Duration, _rng: &mut BackoffRng) -> Option<Duration> {
        Some(self.delay)
    }
    fn max_delay(&self) -> Duration {
        self.delay
    }
}
