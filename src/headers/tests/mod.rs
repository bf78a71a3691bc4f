//! Table-driven tests for the header parsers, on a fixed clock, plus a
//! deterministic "never panics" sweep over pseudo-random input.

pub(super) use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) use http::{HeaderMap, HeaderName, HeaderValue};

pub(super) use super::*;

mod formats;
mod grpc;
mod rate_limits;
mod retry_after;
mod totality;

/// 2026-11-18T11:06:40Z; never the real clock.
pub(super) const NOW_SECS: u64 = 1_795_000_000;

pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) type Headers = &'static [(&'static str, &'static [u8])];

pub(super) fn map(pairs: Headers) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    headers
}

pub(super) fn rl(
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<Duration>,
    window: Option<Duration>,
) -> Option<RateLimit> {
    Some(RateLimit {
        limit,
        remaining,
        reset,
        window,
    })
}
