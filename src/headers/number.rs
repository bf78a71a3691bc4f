//! Number and time helpers shared by every parser: byte slices in, no
//! allocation, no floating point (so no `Duration::from_secs_f64` panics).

use std::time::{Duration, SystemTime};

use super::MAX_HINT;

pub(super) const NANOS_PER_SEC: u64 = 1_000_000_000;
pub(super) const NANOS_PER_MILLI: u64 = 1_000_000;

/// Fraction digits kept; later ones are checked and dropped. 18 digits keep
/// the numerator below 10^18, so nothing below can overflow.
const MAX_FRACTION_DIGITS: usize = 18;

/// The value without the whitespace around it (RFC 9110 §5.5 OWS, and
/// leniency for servers that pad).
pub(super) fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

fn digit(b: u8) -> Option<u64> {
    b.is_ascii_digit().then(|| u64::from(b - b'0'))
}

/// A non-empty run of ASCII digits (no sign, no whitespace) as `u64`;
/// `None` on anything else or on overflow.
pub(super) fn uint(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter()
        .try_fold(0u64, |acc, &b| acc.checked_mul(10)?.checked_add(digit(b)?))
}

/// The integer a count field starts with: the text before the first `,` or
/// `;`, trimmed (`100, 100;w=60` gives 100).
pub(super) fn leading_uint(value: &[u8]) -> Option<u64> {
    let first = value.split(|&b| b == b',' || b == b';').next()?;
    uint(trim(first))
}

/// `digits ["." digits]` (at least one digit in all, so `.5` and `5.` pass)
/// times `unit` nanoseconds, as total nanoseconds. The integer part must fit
/// in a `u64`.
pub(super) fn decimal_nanos(s: &[u8], unit: u64) -> Option<u128> {
    let mut parts = s.splitn(2, |&b| b == b'.');
    let int = parts.next()?;
    let frac = parts.next().unwrap_or_default();
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int = if int.is_empty() { 0 } else { uint(int)? };
    let (mut num, mut scale) = (0u64, 1u64);
    for (i, &b) in frac.iter().enumerate() {
        let d = digit(b)?;
        if i < MAX_FRACTION_DIGITS {
            num = num * 10 + d;
            scale *= 10;
        }
    }
    // u64 × u64 fits in u128, and num < scale keeps the fraction below one unit.
    let unit = u128::from(unit);
    Some(u128::from(int) * unit + u128::from(num) * unit / u128::from(scale))
}

/// Nanoseconds as a `Duration`; `None` if beyond `Duration::MAX`.
pub(super) fn nanos_to_duration(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / u128::from(NANOS_PER_SEC)).ok()?;
    let sub = u32::try_from(nanos % u128::from(NANOS_PER_SEC)).ok()?;
    Some(Duration::new(secs, sub))
}

/// Decimal seconds (`30`, `1.5`) as a `Duration`.
pub(super) fn seconds(s: &[u8]) -> Option<Duration> {
    nanos_to_duration(decimal_nanos(s, NANOS_PER_SEC)?)
}

/// The duration if it is a plausible hint (at most [`MAX_HINT`]).
pub(super) fn within_hint(d: Duration) -> Option<Duration> {
    (d <= MAX_HINT).then_some(d)
}

/// Time from `now` until `target`; zero if `target` has passed.
pub(super) fn until(target: SystemTime, now: SystemTime) -> Duration {
    target.duration_since(now).unwrap_or(Duration::ZERO)
}
