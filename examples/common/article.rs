//! The AI-API retry article's client (`AIRetryClient`): its retry loop, as a `tower::retry::Policy`.
//!
//! The Python loop it mirrors, for each request:
//!
//! ```text
//! for attempt in range(max_attempts):              # 5
//!     response = send()
//!     if response.status == 200: return response
//!     if should_retry(response):                   # 429/500/502/503/504; a 429 whose
//!         sleep(get_delay(attempt)); continue      # Retry-After >= max_delay is not retried
//!     raise APIError                               # (Retry-After is read, never slept)
//! ```
//!
//! with `get_delay(attempt)` = constant `base`, linear `base × attempt`
//! (0 s before the first retry), or exponential `base × 2^attempt`;
//! optionally `× U(0.5, 1.5)`; then `min(·, max_delay)`. Transport errors are
//! retried on the same schedule.
//!
//! Two differences, both in the article's favour: the article's client also sleeps once more
//! after its fifth failure before raising (wasted time, skipped here), and an
//! unparseable `Retry-After` (a `ValueError` in Python) just gives up.
//!
//! **Scaling.** The article's durations are in "article seconds": one article second is
//! one window of the server (`burst ÷ rate`, its refill time), so a delay the
//! article chose for its API means the same here. With the default limits the
//! window is exactly 1 s and the article's figures are used as published.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{header, Request, Response, StatusCode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tower::retry::Policy;

/// `RetryConfig.max_attempts`: attempts in all, the first included.
const MAX_ATTEMPTS: u32 = 5;
/// `RetryConfig.max_delay`, in article seconds.
const MAX_DELAY: f64 = 60.0;

/// `RetryConfig.retryable_status_codes`, shared with the tower reference.
pub const RETRYABLE: [StatusCode; 5] = [
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// `RetryStrategy`, with the article's `base_delay` in article seconds.
#[derive(Clone, Copy, Debug)]
pub enum Strategy {
    /// `base` before every retry.
    Constant(f64),
    /// `base × attempt`.
    Linear(f64),
    /// `base × 2^attempt`.
    Exponential(f64),
}

/// One request's run through the article's loop.
#[derive(Clone, Debug)]
pub struct ArticlePolicy {
    strategy: Strategy,
    jitter: bool,
    /// Length of one article second on this server.
    unit: Duration,
    /// Index of the attempt whose result comes next (`attempt` in Python).
    attempt: u32,
    /// Python's global `random`, shared by every request.
    rng: Arc<Mutex<SmallRng>>,
}

impl ArticlePolicy {
    /// The article's loop with `strategy`, `× U(0.5, 1.5)` jitter if `jitter`.
    pub fn new(strategy: Strategy, jitter: bool, unit: Duration, seed: u64) -> Self {
        ArticlePolicy {
            strategy,
            jitter,
            unit,
            attempt: 0,
            rng: Arc::new(Mutex::new(SmallRng::seed_from_u64(seed))),
        }
    }

    /// `_should_retry`: a retryable status, and for a 429 a `Retry-After`
    /// (if any) below `max_delay`.
    fn should_retry<B>(&self, response: &Response<B>) -> bool {
        let status = response.status();
        if !RETRYABLE.contains(&status) {
            return false;
        }
        if status != StatusCode::TOO_MANY_REQUESTS {
            return true;
        }
        match response.headers().get(header::RETRY_AFTER) {
            None => true,
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .is_some_and(|secs| secs / self.unit.as_secs_f64() < MAX_DELAY),
        }
    }

    /// `_get_delay(attempt)`, in wall-clock time.
    fn delay(&self, attempt: u32) -> Duration {
        let attempt_f = f64::from(attempt);
        let mut delay = match self.strategy {
            Strategy::Constant(base) => base,
            Strategy::Linear(base) => base * attempt_f,
            Strategy::Exponential(base) => base * 2f64.powf(attempt_f),
        };
        if self.jitter {
            let u: f64 = self.rng.lock().unwrap_or_else(|e| e.into_inner()).random();
            delay *= 0.5 + u;
        }
        self.unit.mul_f64(delay.min(MAX_DELAY))
    }
}

impl<B: Clone, Rb, E> Policy<Request<B>, Response<Rb>, E> for ArticlePolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Request<B>,
        result: &mut Result<Response<Rb>, E>,
    ) -> Option<Self::Future> {
        let retry = match result {
            Ok(response) => response.status() != StatusCode::OK && self.should_retry(response),
            Err(_) => true,
        };
        if !retry || self.attempt + 1 >= MAX_ATTEMPTS {
            return None;
        }
        let delay = self.delay(self.attempt);
        self.attempt += 1;
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        Some(req.clone())
    }
}
