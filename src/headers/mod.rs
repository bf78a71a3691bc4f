//! What servers say about their limits: pure parsing of `Retry-After`,
//! RateLimit, vendor and gRPC pushback headers. No tower, no async.
//!
//! Every function is total: malformed, negative, overflowing or contradictory
//! values parse to `None` (or are left out), never to a panic. Time is never
//! read from the clock: callers pass `now`, so tests are deterministic.
//!
//! # Rules
//!
//! **Retry-After** ([`retry_after`]). Headers are tried in this order, and the
//! first that holds a valid value wins:
//! `retry-after-ms` (OpenAI, Azure), `x-ms-retry-after-ms` (Azure), then
//! `Retry-After` (RFC 9110 §10.2.3: delta-seconds or an HTTP-date; a date in
//! the past means zero, and a date is read against the response's own
//! `Date`, so a skewed client clock does not change the wait). A header
//! repeated with conflicting values counts by its first valid value. Lenient
//! on purpose: surrounding whitespace is trimmed and decimal seconds such as
//! `1.5` are accepted (many servers send them). Negative, empty, non-numeric
//! or non-UTF-8 values are ignored. Large waits are kept so that a retry
//! layer can see them and give up; a wait above [`MAX_HINT`] (a year, or a
//! number too long for a `u64`) reads as `MAX_HINT`.
//!
//! **gRPC pushback** ([`grpc_pushback`], gRPC A6). A non-negative integer of
//! milliseconds is [`Pushback::After`]; anything else (negative, malformed,
//! overflowing, above [`MAX_HINT`]) is [`Pushback::DoNotRetry`], as A6 asks.
//! Repeated values that disagree are also `DoNotRetry`, as grpc-go does for
//! any repeated pushback.
//!
//! **RateLimit** ([`stated`], and [`rate_limit`] for the one that binds
//! first). Every limit stated is kept apart (at most [`MAX_STATED`]), each
//! with its [`Unit`] and [`Refill`]:
//!
//! 1. IETF structured fields (draft-ietf-httpapi-ratelimit-headers-08 and
//!    later): every item of `RateLimit: "name";r=10;t=30` (in one field line
//!    or several, RFC 9110 §5.3) is a limit, matched by name to the item of
//!    `RateLimit-Policy: "name";q=100;w=60` for `limit` (`q`), `window`
//!    (`w`) and unit (`qu`: `"requests"` by default; other units are left
//!    out). Items without `r` are ignored; a field line that is not a valid
//!    structured-field list (RFC 9651) is skipped (the RFC drops the whole
//!    field; the other lines are still good). Without any, draft-07's
//!    dictionary `RateLimit: limit=100, remaining=10, reset=30` (window from
//!    `RateLimit-Policy: 100;w=60`), else the older separate fields
//!    `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`
//!    (`RateLimit-Limit: 100, 100;w=60` gives limit 100, window 60 s).
//! 2. `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset-After`
//!    (Discord) or else `X-RateLimit-Reset`, in the resource named by
//!    GitHub's `X-RateLimit-Resource` (`core`, `search`, …) if any.
//! 3. X's (Twitter's) `x-rate-limit-{limit,remaining,reset}`.
//! 4. OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: two
//!    limits, refilling continuously ([`Refill::Continuous`]).
//! 5. Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`:
//!    up to four, refilling continuously.
//!
//! [`rate_limit`] and [`Hints::rate_limit`] give the one that binds first:
//! of those exhausted (`remaining` 0), the one that resets last; else the
//! first stated.
//!
//! Every reset value, whatever the family, may be written as:
//! * seconds, integer or decimal (`30`, `1.5`). A value above 1,000,000,000
//!   (a Unix time after September 2001; no server asks for a 31-year wait)
//!   is an epoch time, as GitHub and Discord send: reset = that time − `now`;
//! * a Go duration (`6m0s`, `1.5s`, `20ms`; see [`parse_duration_str`]);
//! * an RFC 3339 timestamp (`2026-11-23T16:30:00Z`; see [`parse_rfc3339`]).
//!
//! A time in the past resets in zero; a reset above [`MAX_HINT`] is ignored.
//! Limits and counts are non-negative integers; negative or malformed ones
//! are ignored, and so is a window of zero or above [`MAX_HINT`]. A header
//! repeated with conflicting values counts by its first valid value. When
//! `remaining` exceeds `limit` (contradictory, e.g. `r > q`), `remaining` is
//! clamped to `limit`: a server cannot have more left than its quota.
//!
//! # Single values
//!
//! The parsers of one value are public API too, for code that holds a value
//! rather than a `HeaderMap` (a log line, a gRPC metadata entry, a fuzz
//! target): [`parse_retry_after_value`], [`parse_duration_str`] (Go
//! durations) and [`parse_rfc3339`]. They follow the rules above.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

mod duration_str;
mod grpc;
mod number;
mod ratelimit;
mod retry_after;
mod rfc3339;
mod sf;
mod stated;

#[cfg(test)]
mod tests;

pub use duration_str::parse_duration_str;
pub use retry_after::parse_retry_after_value;
pub use rfc3339::parse_rfc3339;
pub(crate) use stated::stable_hash;
pub use stated::{RateLimits, Refill, Stated, Unit, MAX_STATED};

/// The longest wait any hint may ask for: 365 days. A `Retry-After` (or
/// its millisecond forms) above it reads as `MAX_HINT`, "longer than any
/// cap": the gate holds for its `max_hold`, a retry layer gives up at once.
/// A reset or window above it is ignored as malformed.
pub const MAX_HINT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// gRPC's server pushback (`grpc-retry-pushback-ms`, gRPC A6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pushback {
    /// Retry no sooner than this.
    After(Duration),
    /// The server asked not to retry (negative or malformed value, per A6).
    DoNotRetry,
}

/// What a response said about the client's quota, from whichever RateLimit
/// header family it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per window (the quota), if stated.
    pub limit: Option<u64>,
    /// Requests left in the current window, if stated.
    pub remaining: Option<u64>,
    /// Time until the window resets (remaining refills), if stated.
    pub reset: Option<Duration>,
    /// The window length, if stated (`RateLimit-Policy: w=`).
    pub window: Option<Duration>,
}

/// Everything the response headers say, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Hints {
    /// `Retry-After` / `retry-after-ms` / `x-ms-retry-after-ms`.
    pub retry_after: Option<Duration>,
    /// `grpc-retry-pushback-ms`.
    pub pushback: Option<Pushback>,
    /// The limit that binds first, of all those stated
    /// ([`RateLimits::binding`]).
    pub rate_limit: Option<RateLimit>,
    /// Every limit stated, each apart (IETF policies by name, requests and
    /// tokens, resources).
    pub limits: RateLimits,
}

impl Hints {
    /// Whether these hints show that a refusal came from a rate limiter: a
    /// wait hint (`Retry-After`, its millisecond forms, gRPC pushback), or a
    /// quota stated as exhausted (`remaining` 0) with a reset. GitHub answers
    /// its primary and secondary rate limits with `403 Forbidden` carrying
    /// exactly this evidence, and asks clients to wait for `retry-after`, or
    /// else until `x-ratelimit-reset`; a `403` without it is a plain
    /// permission error.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::HeaderMap;
    /// use tower_backoff::headers::hints;
    ///
    /// let mut headers = HeaderMap::new();
    /// assert!(!hints(&headers, SystemTime::now()).shows_rate_limit());
    /// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
    /// headers.insert("x-ratelimit-reset", "30".parse().unwrap());
    /// assert!(hints(&headers, SystemTime::now()).shows_rate_limit());
    /// ```
    pub fn shows_rate_limit(&self) -> bool {
        self.retry_after.is_some()
            || matches!(self.pushback, Some(Pushback::After(_)))
            || self
                .limits
                .iter()
                .any(|s| s.quota.remaining == Some(0) && s.quota.reset.is_some())
    }
}

/// How long the server asked the client to wait before retrying, from
/// `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After` (delta-seconds or
/// HTTP-date relative to `now`; a past date is zero).
///
/// The first of those headers with a valid value wins; see the
/// [module docs](crate::headers) for what counts as valid.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_backoff::headers::retry_after;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "120".parse().unwrap());
/// assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(120)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let seen = Seen::scan(headers);
    retry_after::from_headers(headers, reference_time(headers, now, seen), seen)
}

/// gRPC A6 server pushback, if the header is present: `After` for a
/// non-negative millisecond count, `DoNotRetry` for anything else.
pub fn grpc_pushback(headers: &HeaderMap) -> Option<Pushback> {
    grpc::from_headers(headers, Seen::scan(headers))
}

/// RateLimit information, if any family of RateLimit headers is present and
/// states at least `remaining` or `reset`. Families are tried in the order
/// given in the [module docs](crate::headers).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_backoff::headers::rate_limit;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("ratelimit-policy", r#""default";q=100;w=60"#.parse().unwrap());
/// headers.insert("ratelimit", r#""default";r=0;t=30"#.parse().unwrap());
/// let limit = rate_limit(&headers, SystemTime::now()).unwrap();
/// assert_eq!(limit.limit, Some(100));
/// assert_eq!(limit.remaining, Some(0));
/// assert_eq!(limit.reset, Some(Duration::from_secs(30)));
/// assert_eq!(limit.window, Some(Duration::from_secs(60)));
/// ```
pub fn rate_limit(headers: &HeaderMap, now: SystemTime) -> Option<RateLimit> {
    stated(headers, now).binding()
}

/// Every limit the headers state, each apart: each IETF policy by name,
/// OpenAI's requests and tokens, Anthropic's requests, tokens, input and
/// output tokens, `X-RateLimit-*` (with GitHub's `x-ratelimit-resource`) and
/// X's `x-rate-limit-*`. At most [`MAX_STATED`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_backoff::headers::{stated, Unit};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("ratelimit-policy", r#""burst";q=10;w=1, "day";q=1000;w=86400"#.parse().unwrap());
/// headers.insert("ratelimit", r#""burst";r=9;t=1, "day";r=500;t=3600"#.parse().unwrap());
/// let limits = stated(&headers, SystemTime::now());
/// assert_eq!(limits.len(), 2);
/// let day = limits.iter().nth(1).unwrap();
/// assert_eq!(day.unit, Unit::Requests);
/// assert_eq!(day.quota.limit, Some(1000));
/// assert_eq!(day.quota.window, Some(Duration::from_secs(86400)));
/// ```
pub fn stated(headers: &HeaderMap, now: SystemTime) -> RateLimits {
    let seen = Seen::scan(headers);
    stated::from_headers(headers, reference_time(headers, now, seen), seen)
}

/// The clock that absolute times in a response are read against: the
/// server's `Date` when it sent one (RFC 9110 §6.6.1: the time the message
/// was generated), else `now`. An HTTP-date `Retry-After` and an epoch
/// reset are the server's times; reading them against its own `Date` makes
/// the wait right whatever the skew between the two clocks (RFC 9110
/// §10.2.3). Only ever late by the response's transit time, never early.
fn reference_time(headers: &HeaderMap, now: SystemTime, seen: Seen) -> SystemTime {
    if !seen.has(Seen::DATE) {
        return now;
    }
    first_valid(headers, "date", |v| {
        httpdate::parse_http_date(std::str::from_utf8(v).ok()?).ok()
    })
    .unwrap_or(now)
}

/// Every header name the parsers read, lowercase: useful to let them through
/// a proxy or to list them in `Access-Control-Expose-Headers`.
pub const HEADER_NAMES: &[&str] = &[
    "retry-after",
    "retry-after-ms",
    "x-ms-retry-after-ms",
    "grpc-retry-pushback-ms",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-resource",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    "date",
];

/// All hints in one pass over the header names. A response without any
/// hint header costs one scan of its names and no lookups.
pub fn hints(headers: &HeaderMap, now: SystemTime) -> Hints {
    hints_with_clock(headers, || now)
}

/// Whether `headers` hold any header [`hints`] reads (`Date` aside): one
/// scan of their names.
pub(crate) fn has_hints(headers: &HeaderMap) -> bool {
    !headers.is_empty() && !Seen::scan(headers).is_empty()
}

/// [`hints`], reading the clock (`now`) only when a hint header is there:
/// the common reply without one costs a scan of its names.
pub(crate) fn hints_with_clock(headers: &HeaderMap, now: impl FnOnce() -> SystemTime) -> Hints {
    let seen = Seen::scan(headers);
    if seen.is_empty() {
        return Hints::default();
    }
    let now = now();
    let now = reference_time(headers, now, seen);
    let limits = stated::from_headers(headers, now, seen);
    Hints {
        retry_after: retry_after::from_headers(headers, now, seen),
        pushback: grpc::from_headers(headers, seen),
        rate_limit: limits.binding(),
        limits,
    }
}

/// Which hint header groups a map holds, found in one scan of its names, so
/// that parsers look up only headers that are there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen(u8);

impl Seen {
    const RETRY_AFTER: u8 = 1 << 0;
    const PUSHBACK: u8 = 1 << 1;
    /// `RateLimit` and `RateLimit-*`.
    const IETF: u8 = 1 << 2;
    /// `X-RateLimit-*`, including OpenAI's.
    const X_RATELIMIT: u8 = 1 << 3;
    const ANTHROPIC: u8 = 1 << 4;
    /// X's `x-rate-limit-*`.
    const X_RATE_LIMIT: u8 = 1 << 5;
    /// `Date`: not a hint by itself, only the clock others are read by.
    const DATE: u8 = 1 << 6;

    fn scan(headers: &HeaderMap) -> Seen {
        let mut bits = 0;
        for name in headers.keys() {
            // Header names in a `HeaderMap` are already lowercase.
            bits |= match name.as_str() {
                "retry-after" | "retry-after-ms" | "x-ms-retry-after-ms" => Self::RETRY_AFTER,
                "grpc-retry-pushback-ms" => Self::PUSHBACK,
                "ratelimit" => Self::IETF,
                n if n.starts_with("ratelimit-") => Self::IETF,
                n if n.starts_with("x-ratelimit-") => Self::X_RATELIMIT,
                n if n.starts_with("anthropic-ratelimit-") => Self::ANTHROPIC,
                n if n.starts_with("x-rate-limit-") => Self::X_RATE_LIMIT,
                "date" => Self::DATE,
                _ => 0,
            };
        }
        Seen(bits)
    }

    fn is_empty(self) -> bool {
        self.0 & !Self::DATE == 0
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// The first value of header `name` that `parse` accepts: a repeated header
/// counts by its first valid value.
fn first_valid<'a, T>(
    headers: &'a HeaderMap,
    name: &str,
    parse: impl FnMut(&'a [u8]) -> Option<T>,
) -> Option<T> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.as_bytes())
        .find_map(parse)
}
