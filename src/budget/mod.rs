//! Retry budgets: limits on how many retries a whole client may send, so a
//! full outage does not multiply the load by `max_attempts`.
//!
//! A budget given to [`BackoffRetryLayer::budget`](crate::BackoffRetryLayer::budget)
//! is shared by every clone of the layer and of its services. Any
//! [`tower::retry::budget::Budget`] (e.g. `TpsBudget`, Finagle/Envoy style)
//! works as it is; the crate adds [`GrpcThrottle`] (gRPC A6 retry
//! throttling) and [`RetryQuota`] (the AWS SDKs' standard retry quota).

mod grpc;
mod quota;

pub use grpc::GrpcThrottle;
pub use quota::RetryQuota;

/// What a retry costs in budgets that price retries (see [`RetryQuota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryCost {
    /// A retry after an ordinary failure.
    Normal,
    /// A retry after a timeout.
    Timeout,
}

/// A limit on retries shared by many requests.
///
/// The retry policy calls, for each request:
/// [`deposit`](RetryBudget::deposit) once when its first attempt completes;
/// [`on_success`](RetryBudget::on_success) when an attempt succeeds;
/// [`on_failure`](RetryBudget::on_failure) for every retryable failure; and
/// [`try_retry`](RetryBudget::try_retry) just before it would retry (only
/// when every other limit allows the retry); and
/// [`cancel_retry`](RetryBudget::cancel_retry) if the request is dropped
/// while waiting for that retry. When `try_retry` says no, the last response
/// or error is returned to the caller.
///
/// Every [`tower::retry::budget::Budget`] is a `RetryBudget`: `deposit` maps
/// to `Budget::deposit`, `try_retry` to `Budget::withdraw`.
pub trait RetryBudget: Send + Sync {
    /// A request's first attempt completed (whatever its outcome).
    fn deposit(&self) {}

    /// An attempt succeeded; `last_retry` is the cost of the retry that led to
    /// it, or `None` if it was the first attempt.
    fn on_success(&self, last_retry: Option<RetryCost>) {
        let _ = last_retry;
    }

    /// An attempt failed in a retryable way.
    fn on_failure(&self, cost: RetryCost) {
        let _ = cost;
    }

    /// May a retry of this cost be sent now? A `true` answer spends the budget.
    fn try_retry(&self, cost: RetryCost) -> bool;

    /// A retry that [`try_retry`](RetryBudget::try_retry) allowed will not be
    /// sent after all (the request was dropped while backing off): give back
    /// what it took. Default: nothing.
    fn cancel_retry(&self, cost: RetryCost) {
        let _ = cost;
    }
}

impl<T> RetryBudget for T
where
    T: tower::retry::budget::Budget + Send + Sync,
{
    fn deposit(&self) {
        tower::retry::budget::Budget::deposit(self);
    }

    fn try_retry(&self, _cost: RetryCost) -> bool {
        tower::retry::budget::Budget::withdraw(self)
    }
}
