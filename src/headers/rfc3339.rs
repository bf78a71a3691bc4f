//! RFC 3339 timestamps (`2026-11-23T16:30:00Z`), as Anthropic sends in
//! `anthropic-ratelimit-*-reset`. A small total parser instead of a date
//! library dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::number::{trim, uint};

/// Parses an RFC 3339 `date-time` (§5.6) such as `2026-11-23T16:30:00Z`,
/// `2026-11-23T16:30:00.250Z` or `2026-11-23T17:30:00+01:00`.
///
/// Accepts `T`, `t` or a space between date and time (the §5.6 note), `Z` or
/// `z` for UTC, up to nine significant fraction digits (more are dropped),
/// and surrounding whitespace. Returns `None` for any invalid field (month
/// 13, February 30, hour 24, minute 60, offset hour 24, …). A leap second
/// (`:60`) is accepted and read as the first second of the next minute.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_backoff::headers::parse_rfc3339;
///
/// assert_eq!(
///     parse_rfc3339("1970-01-01T01:00:00+01:00"),
///     Some(UNIX_EPOCH),
/// );
/// assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
/// ```
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    parse_bytes(s.as_bytes())
}

/// [`parse_rfc3339`] on a header value's bytes.
pub(super) fn parse_bytes(value: &[u8]) -> Option<SystemTime> {
    let v = trim(value);
    let (fixed, rest) = v.split_at_checked(19)?;
    // YYYY-MM-DDTHH:MM:SS
    let sep = |at: usize, allowed: &[u8]| fixed.get(at).is_some_and(|b| allowed.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let field = |at: usize, len: usize| uint(fixed.get(at..at + len)?);
    let year = field(0, 4)?;
    let month = field(5, 2)?;
    let day = field(8, 2)?;
    let hour = field(11, 2)?;
    let minute = field(14, 2)?;
    let second = field(17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let (nanos, offset) = fraction(rest)?;
    let offset = utc_offset_secs(offset)?;

    // All terms are small (years ≤ 9999), so i64 cannot overflow.
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days * 86_400 + (hour * 3_600 + minute * 60 + second) as i64 - offset;
    let whole = Duration::from_secs(secs.unsigned_abs());
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(whole)?
    } else {
        UNIX_EPOCH.checked_sub(whole)?
    };
    base.checked_add(Duration::from_nanos(nanos))
}

/// `time-secfrac` (`.` 1*DIGIT), if present: its nanoseconds and the rest.
fn fraction(rest: &[u8]) -> Option<(u64, &[u8])> {
    let Some(after_dot) = rest.strip_prefix(b".") else {
        return Some((0, rest));
    };
    let digits = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let (frac, rest) = after_dot.split_at(digits);
    let mut nanos = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |b| u64::from(b - b'0'));
    }
    Some((nanos, rest))
}

/// `time-offset`: `Z` or `±HH:MM`, in seconds east of UTC.
fn utc_offset_secs(offset: &[u8]) -> Option<i64> {
    match offset {
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = uint(&[*h1, *h2])?;
            let minutes = uint(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = (hours * 3_600 + minutes * 60) as i64;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

fn is_leap_year(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date, counting in 400-year
/// eras of 146,097 days with years starting in March, so that the leap day
/// falls at the end of the counting year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
