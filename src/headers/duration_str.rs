//! Go's `time.Duration` strings (`6m0s`, `1.5s`, `20ms`), as OpenAI sends in
//! `x-ratelimit-reset-*`.

use std::time::Duration;

use super::number::{decimal_nanos, nanos_to_duration, trim};

/// Parses a Go-style duration string such as `6m0s`, `1h2m3s`, `1.5s`,
/// `20ms`, `500us`/`500µs`, `10ns` or `0`.
///
/// The grammar is Go's `time.ParseDuration` without signs: one or more
/// `number unit` pairs, where a number is decimal (`1.5`, `.5`) and a unit
/// is `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m` or `h`; a bare `0` is zero.
/// Surrounding whitespace is trimmed. Returns `None` for anything else
/// (`5x`, `-1s`, ``, `1.2.3s`, `1s2`) and when a number's integer part
/// overflows `u64`; a sum beyond `Duration::MAX` saturates to it. No cap is
/// applied here: callers compare against their own.
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::headers::parse_duration_str;
///
/// assert_eq!(parse_duration_str("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(parse_duration_str("1.5s"), Some(Duration::from_millis(1500)));
/// assert_eq!(parse_duration_str("-1s"), None);
/// ```
pub fn parse_duration_str(s: &str) -> Option<Duration> {
    parse_bytes(s.as_bytes())
}

/// [`parse_duration_str`] on a header value's bytes.
pub(super) fn parse_bytes(value: &[u8]) -> Option<Duration> {
    let mut rest = trim(value);
    if rest == b"0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (number, tail) = split_where(rest, |b| !is_number_byte(b));
        let (unit, tail) = split_where(tail, is_number_byte);
        let nanos = decimal_nanos(number, unit_nanos(unit)?)?;
        total = total.saturating_add(nanos);
        rest = tail;
    }
    Some(nanos_to_duration(total).unwrap_or(Duration::MAX))
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

/// Splits before the first byte for which `stop` holds.
fn split_where(s: &[u8], stop: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let at = s.iter().position(|&b| stop(b)).unwrap_or(s.len());
    s.split_at(at)
}

fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        // `µs` is U+00B5 MICRO SIGN, `μs` U+03BC GREEK SMALL LETTER MU; Go takes both.
        b"us" | [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        b"m" => 60_000_000_000,
        b"h" => 3_600_000_000_000,
        _ => return None,
    })
}
