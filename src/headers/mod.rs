//! What servers say about their limits: pure parsing of `Retry-After`,
//! RateLimit, vendor and gRPC pushback headers. No tower, no async.
//!
//! Every function is total: malformed, negative, overflowing or contradictory
//! values parse to `None` (or are left out), never to a panic.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// gRPC's server pushback (`grpc-retry-pushback-ms`, gRPC A6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// RateLimit fields of any family.
    pub rate_limit: Option<RateLimit>,
}

/// How long the server asked the client to wait before retrying, from
/// `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After` (delta-seconds or
/// HTTP-date relative to `now`; a past date is zero).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let _ = (headers, now);
    None
}

/// gRPC A6 server pushback, if the header is present.
pub fn grpc_pushback(headers: &HeaderMap) -> Option<Pushback> {
    let _ = headers;
    None
}

/// RateLimit information, if any family of RateLimit headers is present.
pub fn rate_limit(headers: &HeaderMap, now: SystemTime) -> Option<RateLimit> {
    let _ = (headers, now);
    None
}

/// All hints in one pass.
pub fn hints(headers: &HeaderMap, now: SystemTime) -> Hints {
    Hints {
        retry_after: retry_after(headers, now),
        pushback: grpc_pushback(headers),
        rate_limit: rate_limit(headers, now),
    }
}
