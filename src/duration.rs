//! Saturating `Duration` arithmetic shared by schedules, jitter and headers.
//!
//! `Duration * u32` and `Duration::from_secs_f64` panic on overflow, NaN or
//! negative input; every helper here saturates instead.

use std::time::Duration;

/// `d` in whole seconds, rounded up: the `Retry-After` of a local answer
/// (RFC 9110 §10.2.3 allows no fractions; rounding down would invite a retry
/// that is refused again).
pub(crate) fn whole_secs_up(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// `d × f`, saturating: NaN or `f ≤ 0` give zero, overflow gives `Duration::MAX`.
pub(crate) fn mul_f64(d: Duration, f: f64) -> Duration {
    if f.is_nan() || f <= 0.0 {
        return Duration::ZERO;
    }
    from_secs_f64(d.as_secs_f64() * f)
}

/// Seconds as `f64` to `Duration`, saturating: NaN or negative give zero,
/// too large gives `Duration::MAX`.
pub(crate) fn from_secs_f64(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// `d × n`, saturating at `Duration::MAX`.
pub(crate) fn mul_u64(d: Duration, n: u64) -> Duration {
    match u32::try_from(n) {
        Ok(n) => d.checked_mul(n).unwrap_or(Duration::MAX),
        Err(_) if d.is_zero() => Duration::ZERO,
        Err(_) => {
            // n > u32::MAX: go through nanoseconds in u128, which cannot overflow
            // for any Duration (< 2^94 ns) times any u64 (< 2^64).
            let nanos = d.as_nanos().saturating_mul(u128::from(n));
            from_nanos_u128(nanos)
        }
    }
}

/// `d × 2^exp`, saturating at `Duration::MAX`.
pub(crate) fn mul_pow2(d: Duration, exp: u32) -> Duration {
    if d.is_zero() {
        return Duration::ZERO;
    }
    match 1u64.checked_shl(exp) {
        Some(p) if exp < 64 => mul_u64(d, p),
        _ => Duration::MAX,
    }
}

/// Nanoseconds as `u128` to `Duration`, saturating at `Duration::MAX`.
pub(crate) fn from_nanos_u128(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = nanos / NANOS_PER_SEC;
    match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_panicking() {
        assert_eq!(mul_f64(Duration::MAX, 2.0), Duration::MAX);
        assert_eq!(mul_f64(Duration::from_secs(1), f64::NAN), Duration::ZERO);
        assert_eq!(mul_f64(Duration::from_secs(1), -3.0), Duration::ZERO);
        assert_eq!(
            mul_f64(Duration::from_secs(1), f64::INFINITY),
            Duration::MAX
        );
        assert_eq!(mul_u64(Duration::MAX, u64::MAX), Duration::MAX);
        assert_eq!(
            mul_u64(Duration::from_nanos(1), u64::MAX),
            Duration::from_nanos(u64::MAX)
        );
        assert_eq!(mul_pow2(Duration::from_secs(1), 64), Duration::MAX);
        assert_eq!(mul_pow2(Duration::from_secs(1), u32::MAX), Duration::MAX);
        assert_eq!(mul_pow2(Duration::ZERO, u32::MAX), Duration::ZERO);
        assert_eq!(mul_pow2(Duration::from_secs(1), 3), Duration::from_secs(8));
        assert_eq!(from_secs_f64(1e300), Duration::MAX);
        assert_eq!(from_nanos_u128(u128::MAX), Duration::MAX);
    }
}
