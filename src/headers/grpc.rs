//! gRPC server pushback, `grpc-retry-pushback-ms` (gRPC A6, "Pushback").

use std::time::Duration;

use http::HeaderMap;

use super::number::{trim, uint, within_hint};
use super::{Pushback, Seen};

/// A6: a non-negative integer of milliseconds means "retry after this";
/// a negative or unparseable value means "do not retry". An overflowing or
/// absurd (above `MAX_HINT`) value cannot be honoured either, so it is also
/// "do not retry" rather than a silent fallback to the client's schedule.
fn parse(value: &[u8]) -> Pushback {
    uint(trim(value))
        .map(Duration::from_millis)
        .and_then(within_hint)
        .map_or(Pushback::DoNotRetry, Pushback::After)
}

pub(super) fn from_headers(headers: &HeaderMap, seen: Seen) -> Option<Pushback> {
    if !seen.has(Seen::PUSHBACK) {
        return None;
    }
    let mut values = headers.get_all("grpc-retry-pushback-ms").iter();
    let first = parse(values.next()?.as_bytes());
    // grpc-go refuses to retry on any repeated pushback; values that agree
    // are harmless, so only a disagreement means "do not retry".
    if values.any(|v| parse(v.as_bytes()) != first) {
        return Some(Pushback::DoNotRetry);
    }
    Some(first)
}
