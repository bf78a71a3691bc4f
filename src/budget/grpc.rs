use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{RetryBudget, RetryCost};

/// gRPC retry throttling (gRPC A6): a token bucket of `max_tokens` that
/// loses 1 per failed attempt and gains `token_ratio` per success; retries
/// are allowed only while the tokens are above `max_tokens / 2`.
///
/// Clones share one bucket. Token arithmetic is done in thousandths, as A6
/// allows three decimal places for `token_ratio`.
///
/// ```
/// use tower_backoff::budget::{GrpcThrottle, RetryBudget, RetryCost};
/// let throttle = GrpcThrottle::new(10, 0.1);
/// for _ in 0..5 { throttle.on_failure(RetryCost::Normal); }
/// assert!(!throttle.try_retry(RetryCost::Normal)); // 5 tokens: not above 10/2
/// ```
#[derive(Debug, Clone)]
pub struct GrpcThrottle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Tokens × 1000.
    milli_tokens: AtomicU64,
    max: u64,
    ratio: u64,
}

impl GrpcThrottle {
    /// A throttle with `max_tokens` (A6 allows 1..=1000; clamped to that)
    /// and `token_ratio` (clamped to `0.001..=max_tokens`; NaN counts as 0.1).
    pub fn new(max_tokens: u32, token_ratio: f64) -> Self {
        let max = u64::from(max_tokens.clamp(1, 1000)) * 1000;
        let ratio = if token_ratio.is_nan() {
            0.1
        } else {
            token_ratio
        };
        let ratio = (ratio * 1000.0).round().clamp(1.0, max as f64) as u64;
        GrpcThrottle {
            inner: Arc::new(Inner {
                milli_tokens: AtomicU64::new(max),
                max,
                ratio,
            }),
        }
    }

    /// The tokens left, for metrics.
    pub fn tokens(&self) -> f64 {
        self.inner.milli_tokens.load(Ordering::Relaxed) as f64 / 1000.0
    }

    fn update(&self, f: impl Fn(u64) -> u64) {
        let _ = self
            .inner
            .milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(f(t)));
    }
}

impl RetryBudget for GrpcThrottle {
    fn on_success(&self, _last_retry: Option<RetryCost>) {
        let (max, ratio) = (self.inner.max, self.inner.ratio);
        self.update(|t| t.saturating_add(ratio).min(max));
    }

    fn on_failure(&self, _cost: RetryCost) {
        self.update(|t| t.saturating_sub(1000));
    }

    fn try_retry(&self, _cost: RetryCost) -> bool {
        self.inner.milli_tokens.load(Ordering::Acquire) > self.inner.max / 2
    }
}
