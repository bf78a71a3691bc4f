use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::{RetryBudget, RetryCost};

/// The AWS SDKs' standard-mode retry quota: a bucket of 500 tokens; a retry
/// costs 5 (10 after a timeout) and is refused when the bucket cannot pay; a
/// success refunds the cost of the retry that led to it, or adds 1 when it
/// needed no retry.
///
/// Clones share one bucket.
///
/// ```
/// use tower_backoff::budget::{RetryBudget, RetryCost, RetryQuota};
/// let quota = RetryQuota::new().capacity(10);
/// assert!(quota.try_retry(RetryCost::Timeout)); // 10 → 0
/// assert!(!quota.try_retry(RetryCost::Normal));
/// quota.on_success(Some(RetryCost::Timeout)); // refund: 0 → 10
/// assert_eq!(quota.available(), 10);
/// ```
#[derive(Debug, Clone)]
pub struct RetryQuota {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tokens: AtomicU32,
    capacity: u32,
    retry_cost: u32,
    timeout_cost: u32,
    success_refund: u32,
}

impl Default for RetryQuota {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryQuota {
    /// The AWS defaults: 500 tokens, retry cost 5, timeout cost 10, +1 per
    /// first-try success.
    pub fn new() -> Self {
        Self::with(500, 5, 10, 1)
    }

    fn with(capacity: u32, retry_cost: u32, timeout_cost: u32, success_refund: u32) -> Self {
        RetryQuota {
            inner: Arc::new(Inner {
                tokens: AtomicU32::new(capacity),
                capacity,
                retry_cost,
                timeout_cost,
                success_refund,
            }),
        }
    }

    /// A full bucket of `tokens` (default 500). Returns a new, unshared quota.
    pub fn capacity(self, tokens: u32) -> Self {
        let i = &self.inner;
        Self::with(tokens, i.retry_cost, i.timeout_cost, i.success_refund)
    }

    /// The cost of a retry (default 5) and of a retry after a timeout
    /// (default 10). Returns a new, unshared quota.
    pub fn costs(self, retry: u32, timeout: u32) -> Self {
        let i = &self.inner;
        Self::with(i.capacity, retry, timeout, i.success_refund)
    }

    /// The tokens left.
    pub fn available(&self) -> u32 {
        self.inner.tokens.load(Ordering::Relaxed)
    }

    fn refund(&self, tokens: u32) {
        let cap = self.inner.capacity;
        let _ = self
            .inner
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(tokens).min(cap))
            });
    }

    fn cost(&self, cost: RetryCost) -> u32 {
        match cost {
            RetryCost::Normal => self.inner.retry_cost,
            RetryCost::Timeout => self.inner.timeout_cost,
        }
    }
}

impl RetryBudget for RetryQuota {
    fn on_success(&self, last_retry: Option<RetryCost>) {
        self.refund(last_retry.map_or(self.inner.success_refund, |c| self.cost(c)));
    }

    fn cancel_retry(&self, cost: RetryCost) {
        self.refund(self.cost(cost));
    }

    fn try_retry(&self, cost: RetryCost) -> bool {
        let cost = self.cost(cost);
        self.inner
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(cost))
            .is_ok()
    }
}
