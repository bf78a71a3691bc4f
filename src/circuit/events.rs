//! What the breaker tells the outside: its states, state changes (for the
//! `on_state_change` hook) and statistics.

use std::fmt;
use std::time::Duration;

/// Where a key's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; their outcomes fill the sliding window.
    Closed,
    /// Calls are answered locally, without reaching the inner service,
    /// until the break ends.
    Open,
    /// The break is over: a few probes go through, the rest are answered
    /// locally; the first probe to succeed closes the breaker, the first to
    /// fail opens it again for a longer break.
    HalfOpen,
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        })
    }
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The window reached `minimum_throughput` calls with at least
    /// `failure_ratio` of them failed.
    FailureRatio {
        /// Calls in the window.
        calls: u32,
        /// Failed calls in the window.
        failures: u32,
    },
    /// The break ended.
    BreakOver,
    /// A half-open probe succeeded.
    ProbeSucceeded,
    /// A half-open probe failed.
    ProbeFailed,
    /// Every half-open probe place stayed taken for `sampling_duration`
    /// without an answer: the probes count as failed.
    ProbesUnanswered,
}

/// One state change of one key's breaker, given to the
/// [`on_state_change`](super::CircuitBreakerLayer::on_state_change) hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange {
    /// The key, as a hash (the same number [`KeyStats::key`] shows).
    pub key: u64,
    /// The state before.
    pub from: CircuitState,
    /// The state after.
    pub to: CircuitState,
    /// What caused it.
    pub cause: Cause,
    /// On a change to [`CircuitState::Open`], how long the break lasts.
    pub break_duration: Option<Duration>,
}

/// One key's breaker, in [`BreakerStats::keys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// The key, as a hash.
    pub key: u64,
    /// Where it stands now (an open breaker whose break has ended shows as
    /// half-open).
    pub state: CircuitState,
    /// Calls in the sliding window (counted from their admission, so calls
    /// in flight are included).
    pub calls: u32,
    /// Failed calls in the sliding window.
    pub failures: u32,
    /// Times this key's breaker has opened (re-opens after a failed probe
    /// included).
    pub opened: u64,
    /// While open, the time left until the half-open probe.
    pub retry_after: Option<Duration>,
}

/// A snapshot of a breaker's shared state, from
/// [`CircuitBreakerLayer::stats`](super::CircuitBreakerLayer::stats) or
/// [`CircuitBreaker::stats`](super::CircuitBreaker::stats). Taking it walks
/// every key: meant for monitoring and tests, not per request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BreakerStats {
    /// Every remembered key (bounded by `max_keys`, plus keys in use).
    pub keys: Vec<KeyStats>,
    /// Calls answered locally because a breaker was open or its probes
    /// were all taken, since the layer was made.
    pub rejected: u64,
}

impl BreakerStats {
    /// Keys whose breaker is in `state`.
    pub fn count(&self, state: CircuitState) -> usize {
        self.keys.iter().filter(|k| k.state == state).count()
    }
}
