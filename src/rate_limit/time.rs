//! Saturating arithmetic on `tokio::time::Instant`: hints come from servers,
//! so no value they carry may overflow an instant or panic.

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: what "never" means for a deadline (as tokio's own
/// far-future instant does).
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `t + d`, saturating at about 30 years after `t`.
pub(super) fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(FAR))
        .or_else(|| t.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(t)
}

/// `t + secs`, for rates computed in floating point; NaN or negative give `t`.
pub(super) fn after_secs(t: Instant, secs: f64) -> Instant {
    after(t, crate::duration::from_secs_f64(secs))
}

/// `t − d`, saturating at `t` when the clock cannot go that far back.
pub(super) fn before(t: Instant, d: Duration) -> Instant {
    t.checked_sub(d).unwrap_or(t)
}

/// A back-off after the `n`-th failure in a row: `base` for the first,
/// doubling with each one after, capped at `cap`.
pub(super) fn doubling(base: Duration, n: u32, cap: Duration) -> Duration {
    base.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(30)))
        .min(cap)
}

/// `b − a` in seconds, zero if `b` is not after `a`.
pub(super) fn secs_between(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64()
}
