//! `Retry-After` (RFC 9110 §10.2.3) and the millisecond headers of OpenAI
//! (`retry-after-ms`) and Azure (`x-ms-retry-after-ms`).

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::number::NANOS_PER_MILLI;
use super::number::{decimal_nanos, nanos_to_duration, seconds, trim, until, within_hint};
use super::{first_valid, Seen};

/// Parses one `Retry-After` value: delta-seconds, or an HTTP-date whose
/// distance from `now` is the wait (zero if the date has passed), as RFC 9110
/// §10.2.3 defines it.
///
/// Lenient where servers commonly stray: surrounding whitespace is trimmed
/// and decimal seconds (`1.5`) are accepted. Returns `None` for anything
/// else (negative, empty, non-numeric, non-UTF-8, a number that overflows
/// `u64`) and for a wait above [`MAX_HINT`](super::MAX_HINT).
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
        b'0'..=b'9' | b'.' => seconds(value)?,
        _ => {
            let date = httpdate::parse_http_date(std::str::from_utf8(value).ok()?).ok()?;
            until(date, now)
        }
    };
    within_hint(wait)
}

/// A millisecond count, integer or decimal (`retry-after-ms: 1500.5`).
fn millis(value: &[u8]) -> Option<Duration> {
    within_hint(nanos_to_duration(decimal_nanos(
        trim(value),
        NANOS_PER_MILLI,
    )?)?)
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
