//! `Retry-After` (RFC 9110 §10.2.3) and the millisecond headers of OpenAI
//! (`retry-after-ms`) and Azure (`x-ms-retry-after-ms`).

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::number::{decimal_nanos, nanos_to_duration, trim, until};
use super::number::{NANOS_PER_MILLI, NANOS_PER_SEC};
use super::{first_valid, Seen, MAX_HINT};

/// Parses one `Retry-After` value: delta-seconds, or an HTTP-date whose
/// distance from `now` is the wait (zero if the date has passed), as RFC 9110
/// §10.2.3 defines it.
///
/// Lenient where servers commonly stray: surrounding whitespace is trimmed
/// and decimal seconds (`1.5`) are accepted. Returns `None` for anything
/// else (negative, empty, non-numeric, non-UTF-8). A wait above
/// [`MAX_HINT`](super::MAX_HINT) — a number of seconds beyond a year, even
/// one too long for a `u64`, or a date far ahead — is "longer than any cap"
/// and reads as `MAX_HINT`: a gate holds as long as it may, a retry layer
/// gives up at once.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_backoff::headers::parse_retry_after_value;
///
/// let now = SystemTime::now();
/// assert_eq!(parse_retry_after_value(b" 1.5 ", now), Some(Duration::from_millis(1500)));
/// assert_eq!(parse_retry_after_value(b"-1", now), None);
/// assert_eq!(
///     parse_retry_after_value(b"Sun, 06 Nov 1994 08:49:37 GMT", now),
///     Some(Duration::ZERO),
/// );
/// ```
pub fn parse_retry_after_value(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = trim(value);
    let wait = match value.first()? {
        // Every HTTP-date form starts with a day name, so a digit means seconds.
        b'0'..=b'9' | b'.' => saturating(value, NANOS_PER_SEC)?,
        _ => {
            let date = httpdate::parse_http_date(std::str::from_utf8(value).ok()?).ok()?;
            until(date, now)
        }
    };
    Some(wait.min(MAX_HINT))
}

/// A millisecond count, integer or decimal (`retry-after-ms: 1500.5`).
fn millis(value: &[u8]) -> Option<Duration> {
    Some(saturating(trim(value), NANOS_PER_MILLI)?.min(MAX_HINT))
}

/// A decimal number of `unit` nanoseconds; a well-formed number too large
/// for a `Duration` is `MAX_HINT` (absurd, not malformed).
fn saturating(value: &[u8], unit: u64) -> Option<Duration> {
    match decimal_nanos(value, unit).and_then(nanos_to_duration) {
        Some(d) => Some(d),
        None if is_decimal(value) => Some(MAX_HINT),
        None => None,
    }
}

/// `digits ["." digits]` with at least one digit.
fn is_decimal(value: &[u8]) -> bool {
    let mut parts = value.splitn(2, |&b| b == b'.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next().unwrap_or_default();
    (!int.is_empty() || !frac.is_empty()) && int.iter().chain(frac).all(u8::is_ascii_digit)
}

pub(super) fn from_headers(headers: &HeaderMap, now: SystemTime, seen: Seen) -> Option<Duration> {
    if !seen.has(Seen::RETRY_AFTER) {
        return None;
    }
    // The millisecond forms are more precise and come from the same servers
    // that also send a rounded `Retry-After`, so they go first.
    first_valid(headers, "retry-after-ms", millis)
        .or_else(|| first_valid(headers, "x-ms-retry-after-ms", millis))
        .or_else(|| first_valid(headers, "retry-after", |v| parse_retry_after_value(v, now)))
}
