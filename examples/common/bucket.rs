//! The token bucket that every test and example server enforces: `rate`
//! tokens a second, up to `burst`, full at first, on tokio's clock, so that
//! paused-clock tests and loopback runs count alike. One copy, included by
//! the showdown's and the fleet's server (`examples/common/limiter.rs`) and
//! by the tests' servers (`tests/support/rl_server.rs`,
//! `tests/support/api_server.rs`, `tests/load.rs`).

#![allow(dead_code)]

use std::time::Duration;

use tokio::time::Instant;

/// Float rounding in refills: a level this close to what is needed counts.
const EPS: f64 = 1e-6;

/// A token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// Full, refilling at `rate` per second up to `burst`.
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Starting with `tokens` instead of full (a quota partly spent).
    pub fn with_tokens(mut self, tokens: f64) -> Self {
        self.tokens = tokens.min(self.burst);
        self
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Tokens at `now` (refilled up to it).
    pub fn level(&mut self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = self.at.max(now);
        self.tokens
    }

    /// Takes `n` tokens at `now` if they are there; whether it did.
    pub fn take(&mut self, now: Instant, n: f64) -> bool {
        let ok = self.level(now) >= n - EPS;
        if ok {
            self.tokens -= n;
        }
        ok
    }

    /// From `now` on, refill at `rate`.
    pub fn set_rate(&mut self, now: Instant, rate: f64) {
        self.level(now);
        self.rate = rate;
    }

    /// Time until `n` tokens are there (zero if they are), as of the last
    /// [`level`](Self::level).
    pub fn until(&self, n: f64) -> Duration {
        Duration::from_secs_f64(((n - self.tokens) / self.rate).max(0.0))
    }

    /// Time until the bucket holds one more whole token than now; zero when
    /// it is full.
    pub fn until_next_token(&self) -> Duration {
        if self.tokens >= self.burst {
            return Duration::ZERO;
        }
        self.until(self.tokens.floor() + 1.0)
    }

    /// Time until the bucket is full again.
    pub fn until_full(&self) -> Duration {
        self.until(self.burst)
    }
}
