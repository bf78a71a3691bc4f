//! tower's own retry as a user would put it together today: a `Policy` over
//! `tower::retry::backoff::ExponentialBackoff` and a `TpsBudget`, written
//! the way tower's budget docs show (deposit on success, withdraw per retry),
//! with the same attempt cap as everyone else.
//!
//! Two things a user gets with it, on purpose left as they are: tower's
//! backoff knows nothing of `Retry-After`, and every request session clones
//! the same random-number state, so all requests draw the same jitter
//! sequence.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use tower::retry::backoff::{
    Backoff, ExponentialBackoff, ExponentialBackoffMaker, InvalidBackoff, MakeBackoff,
};
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::Policy;
use tower::util::rng::Rng;

use super::article::RETRYABLE;

/// Attempts in all, the first included (as `BackoffRetryLayer`'s default).
const MAX_ATTEMPTS: u32 = 5;

/// tower's `Rng` over a seeded generator, so `--seed` reproduces a run.
#[derive(Clone, Debug)]
pub struct SeededRng(SmallRng);

impl Rng for SeededRng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// Exponential backoff with tower's jitter, under a `TpsBudget`.
#[derive(Clone, Debug)]
pub struct TowerPolicy {
    backoff: ExponentialBackoff<SeededRng>,
    budget: Arc<TpsBudget>,
    attempts_left: u32,
}

impl TowerPolicy {
    /// `ExponentialBackoffMaker::new(min, max, 0.99, rng)` (0.99 is tower's
    /// default jitter) and `TpsBudget::default()`.
    pub fn new(min: Duration, max: Duration, seed: u64) -> Result<TowerPolicy, InvalidBackoff> {
        let rng = SeededRng(SmallRng::seed_from_u64(seed));
        let mut maker = ExponentialBackoffMaker::new(min, max, 0.99, rng)?;
        Ok(TowerPolicy {
            backoff: maker.make_backoff(),
            budget: Arc::new(TpsBudget::default()),
            attempts_left: MAX_ATTEMPTS - 1,
        })
    }
}

impl<B: Clone, Rb, E> Policy<Request<B>, Response<Rb>, E> for TowerPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Request<B>,
        result: &mut Result<Response<Rb>, E>,
    ) -> Option<Self::Future> {
        if let Ok(response) = result {
            if !RETRYABLE.contains(&response.status()) {
                self.budget.deposit();
                return None;
            }
        }
        if self.attempts_left == 0 || !self.budget.withdraw() {
            return None;
        }
        self.attempts_left -= 1;
        Some(self.backoff.next_backoff())
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        Some(req.clone())
    }
}
