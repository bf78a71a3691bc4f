//! The `tower::retry::Policy` implementation: one decision per attempt.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tower::retry::Policy;

use super::{Backoff, BackoffRetryLayer, GiveUp, Idempotency, RetryEvent, RetryRequest, Retrying};
use crate::budget::RetryCost;
use crate::classify::{Classify, Decision};
use crate::rng::mix64;
use crate::BackoffRng;

impl<Req, Res, E, C> Policy<Req, Res, E> for BackoffRetryLayer<C>
where
    Req: RetryRequest,
    C: Classify<Req, Res, E>,
{
    type Future = Backoff;

    #[inline]
    fn retry(&mut self, req: &mut Req, result: &mut Result<Res, E>) -> Option<Backoff> {
        let decision = self.classifier.classify(req, result.as_ref());
        if decision.is_success() && self.config.budget.is_none() {
            // The happy path: nothing to count, nothing to plan.
            return None;
        }
        let attempt = self.state.attempts().saturating_add(1);
        match self.plan_retry(req, &decision, attempt) {
            Ok((delay, cost)) => {
                req.set_attempt(attempt.saturating_add(1));
                // The next attempt must be done by `max_elapsed`: layers
                // inside (the gate) wait no longer. The first attempt cannot
                // carry it (tower sends the caller's own request), so set
                // `Deadline` on it yourself to bound its wait too.
                if let (Some(start), Some(max)) = (self.state.start, self.config.max_elapsed) {
                    if let Some(deadline) = start.checked_add(max) {
                        req.set_deadline(deadline);
                    }
                }
                let budget = self.config.budget.clone();
                Some(Backoff::new(tokio::time::sleep(delay), budget, cost))
            }
            Err(None) => None,
            Err(Some(why)) => {
                tracing::debug!(
                    target: "tower_backoff::retry",
                    attempt,
                    reason = ?decision.reason(),
                    why = %why,
                    "giving up; returning the last response"
                );
                if let Some(hook) = &self.config.on_give_up {
                    hook(why);
                }
                None
            }
        }
    }

    #[inline]
    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        let first = self.state.retrying.is_none();
        if first && self.config.max_elapsed.is_some() {
            // tower calls this on the service's own policy right before it
            // clones that policy for the request: the start time travels with
            // the clone.
            self.state.start = Some(Instant::now());
        }
        match req.try_clone() {
            Some(copy) => Some(copy),
            None => {
                if first {
                    not_replayable();
                }
                None
            }
        }
    }
}

/// tower#690: a `None` from `clone_request` silently disables retries; say
/// so once per request.
#[cold]
fn not_replayable() {
    tracing::debug!(
        target: "tower_backoff::retry",
        "request cannot be replayed (streaming or non-clonable body); it is sent once and never retried: buffer it with BackoffRetryLayer::buffered or BufferBodyLayer"
    );
}

impl<C> BackoffRetryLayer<C> {
    /// The delay before the next attempt and what it cost, `Err(None)` when the attempt ended
    /// the request (success or a final failure), or `Err(Some(why))` when a
    /// retryable failure is not retried.
    fn plan_retry<Req: RetryRequest>(
        &mut self,
        req: &Req,
        decision: &Decision,
        attempt: u32,
    ) -> Result<(Duration, RetryCost), Option<GiveUp>> {
        let config = &*self.config;
        let budget = config.budget.as_deref();
        if attempt == 1 {
            if let Some(b) = budget {
                b.deposit();
            }
        }
        if decision.is_success() {
            if let Some(b) = budget {
                b.on_success(self.state.retrying.as_ref().and_then(|r| r.last_cost));
            }
            return Err(None);
        }
        if !decision.is_retryable() {
            return Err(None);
        }
        let cost = if decision.is_timeout() {
            RetryCost::Timeout
        } else {
            RetryCost::Normal
        };
        if let Some(b) = budget {
            b.on_failure(cost);
        }

        let may_replay = decision.is_not_processed()
            || match config.idempotency {
                Idempotency::Auto => req.is_idempotent(),
                Idempotency::AllIdempotent => true,
                Idempotency::NoneIdempotent => false,
            };
        if !may_replay {
            return Err(Some(GiveUp::NotIdempotent));
        }
        if attempt >= config.max_attempts {
            return Err(Some(GiveUp::Attempts));
        }

        let cap = config.schedule.max_delay();
        let hint = decision.retry_after().filter(|_| config.honor_retry_after);
        if hint.is_some_and(|h| h > config.max_retry_after.unwrap_or(cap)) {
            return Err(Some(GiveUp::RetryAfterTooLong));
        }

        let retrying = self.state.retrying.get_or_insert_with(|| {
            let stream = config.streams.fetch_add(1, Ordering::Relaxed);
            Box::new(Retrying {
                attempts: 0,
                prev_delay: Duration::ZERO,
                last_cost: None,
                rng: BackoffRng::seeded(mix64(config.seed ^ mix64(stream))),
            })
        });
        let rng = &mut retrying.rng;
        let base = config
            .schedule
            .delay(attempt - 1, retrying.prev_delay, rng)
            .ok_or(Some(GiveUp::ScheduleExhausted))?
            .min(cap);
        let delay = match hint {
            None => config.jitter.apply(base, cap, rng),
            Some(h) => config.jitter.above_hint(base, h, cap, rng),
        };

        if let Some(max_elapsed) = config.max_elapsed {
            let now = Instant::now();
            let start = *self.state.start.get_or_insert(now);
            let deadline = start.checked_add(max_elapsed);
            let next_start = now.checked_add(delay);
            if matches!((next_start, deadline), (Some(n), Some(d)) if n > d)
                || (next_start.is_none() && deadline.is_some())
            {
                return Err(Some(GiveUp::Elapsed));
            }
        }

        if let Some(b) = budget {
            if !b.try_retry(cost) {
                return Err(Some(GiveUp::Budget));
            }
        }

        // A server's wait counts as the previous delay for schedules that grow
        // from it (decorrelated: the next draw is from `[base, 3 × hint]`, so
        // requests held by the same hint drift apart on their next retry).
        retrying.prev_delay = hint.map_or(base, |h| base.max(h.min(cap)));
        retrying.last_cost = Some(cost);
        retrying.attempts = attempt;
        let event = RetryEvent {
            attempt: attempt.saturating_add(1),
            delay,
            reason: decision.reason(),
            retry_after: hint,
        };
        tracing::debug!(
            target: "tower_backoff::retry",
            attempt = event.attempt,
            delay_ms = delay.as_millis() as u64,
            reason = ?event.reason,
            retry_after_ms = hint.map(|h| h.as_millis() as u64),
            "retrying"
        );
        if let Some(hook) = &config.on_retry {
            hook(&event);
        }
        Ok((delay, cost))
    }
}
