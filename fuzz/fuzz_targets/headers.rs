//! Arbitrary response headers through every header parser at once: every
//! family of `HEADER_NAMES` (IETF policies, `X-RateLimit-*` with resources,
//! X's `x-rate-limit-*`, OpenAI's and Anthropic's requests and tokens, and
//! `Date`, the clock absolute times are read against).
#![no_main]

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_backoff::headers::{self, HEADER_NAMES as NAMES, MAX_HINT};


fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    // First 8 bytes: "now" in seconds since the epoch (bounded to year ~2500).
    let secs = u64::from_le_bytes(data[..8].try_into().unwrap()) % 16_725_225_600;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    // Then records: one byte picks the header name, one the value length.
    let mut map = HeaderMap::new();
    let mut rest = &data[8..];
    while rest.len() >= 2 {
        let name = NAMES[rest[0] as usize % NAMES.len()];
        let len = (rest[1] as usize).min(rest.len() - 2);
        let value = &rest[2..2 + len];
        rest = &rest[2 + len..];
        if let Ok(v) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), v);
        }
    }
    let hints = headers::hints(&map, now);
    if let Some(d) = hints.retry_after {
        assert!(d <= MAX_HINT);
    }
    assert!(hints.limits.len() <= headers::MAX_STATED);
    let mut ids = Vec::new();
    for rl in hints.rate_limit.iter().chain(hints.limits.iter().map(|s| &s.quota)) {
        if let (Some(limit), Some(remaining)) = (rl.limit, rl.remaining) {
            assert!(remaining <= limit);
        }
        assert!(rl.reset.is_none_or(|r| r <= MAX_HINT));
        assert!(rl.window.is_none_or(|w| w <= MAX_HINT && !w.is_zero()));
    }
    for s in hints.limits.iter() {
        assert!(!ids.contains(&s.id), "one limit stated twice");
        ids.push(s.id);
    }
    assert_eq!(hints.limits, headers::stated(&map, now));
    assert_eq!(hints.rate_limit, hints.limits.binding());
});
