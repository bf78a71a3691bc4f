//! What a response tells the gate: was the request throttled, did the server
//! process it, and what did its headers say.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::headers::{self, Pushback, RateLimits};

/// gRPC status codes that matter here (carried in response headers when the
/// reply is trailers-only).
const GRPC_RESOURCE_EXHAUSTED: &[u8] = b"8";
const GRPC_UNAVAILABLE: &[u8] = b"14";

/// One response, classified for the gate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    /// The server refused for load: 429, gRPC RESOURCE_EXHAUSTED, or a 503
    /// (or gRPC UNAVAILABLE) that names a wait.
    pub(super) throttled: bool,
    /// The server processed the request (any other response but a bare 503).
    pub(super) accepted: bool,
    /// How long the server asked to wait, on a throttle.
    pub(super) hold: Option<Duration>,
    /// Every limit the headers stated, on any response.
    pub(super) limits: Option<RateLimits>,
}

impl Outcome {
    /// Classifies a response by status and headers.
    ///
    /// A 503 without a hint is an outage, not a limit (RFC 9110 §15.6.4
    /// says Retry-After *may* come with it): it neither holds the key nor
    /// counts as accepted. A 403 is a throttle only with rate-limit evidence
    /// ([`Hints::shows_rate_limit`](headers::Hints::shows_rate_limit):
    /// GitHub's primary and secondary limits); a plain 403 is an answer.
    /// Retry-After on other statuses means something else (a redirect's
    /// delay) and is ignored.
    pub(crate) fn read(status: StatusCode, headers: &HeaderMap) -> Outcome {
        // The common header-less reply costs no lookup; one without a hint
        // header, a scan of its names and no clock read.
        let (grpc, hints) = if headers.is_empty() {
            (None, headers::Hints::default())
        } else {
            (
                headers.get("grpc-status").map(|v| v.as_bytes()),
                headers::hints_with_clock(headers, SystemTime::now),
            )
        };
        let exhausted = grpc == Some(GRPC_RESOURCE_EXHAUSTED);
        let unavailable =
            status == StatusCode::SERVICE_UNAVAILABLE || grpc == Some(GRPC_UNAVAILABLE);
        // gRPC A6: pushback is the server's own wait, and wins over
        // Retry-After; "do not retry" names no wait.
        let wait = match hints.pushback {
            Some(Pushback::After(d)) => Some(d),
            Some(Pushback::DoNotRetry) => None,
            None => hints.retry_after,
        };
        let throttled = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && hints.shows_rate_limit())
            || exhausted
            || matches!(hints.pushback, Some(Pushback::After(_)))
            || (unavailable && wait.is_some());
        Outcome {
            throttled,
            accepted: !throttled && !unavailable,
            hold: if throttled { wait } else { None },
            limits: (!hints.limits.is_empty()).then_some(hints.limits),
        }
    }
}

impl Outcome {
    /// Whether a response is a plain acceptance, with nothing to learn: not
    /// a 429 or 503, no gRPC status, no hint header (so not a throttling
    /// 403 either). Cheaper than [`Outcome::read`]: a scan of the names.
    #[inline]
    pub(super) fn is_plain(status: StatusCode, headers: &HeaderMap) -> bool {
        static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
        status != StatusCode::TOO_MANY_REQUESTS
            && status != StatusCode::SERVICE_UNAVAILABLE
            && (headers.is_empty()
                || (!headers.contains_key(&GRPC_STATUS) && !headers::has_hints(headers)))
    }
}

/// An outcome read from a status and header pairs, as the gate reads one
/// (for tests).
#[cfg(test)]
pub(super) fn read_pairs(status: u16, headers: &[(&str, &str)]) -> Outcome {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    Outcome::read(StatusCode::from_u16(status).unwrap(), &map)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::read_pairs as read;

    #[test]
    fn a_plain_response_is_an_acceptance_with_nothing_to_learn() {
        let plain = |status: u16, headers: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in headers {
                map.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            let status = StatusCode::from_u16(status).unwrap();
            let is_plain = Outcome::is_plain(status, &map);
            let outcome = Outcome::read(status, &map);
            if is_plain {
                assert!(outcome.accepted && !outcome.throttled && outcome.limits.is_none());
            }
            is_plain
        };
        assert!(plain(200, &[]));
        assert!(plain(404, &[("content-type", "text/plain"), ("date", "x")]));
        assert!(plain(403, &[("content-type", "text/plain")]));
        assert!(plain(500, &[]));
        assert!(!plain(429, &[]));
        assert!(!plain(503, &[]));
        assert!(!plain(200, &[("grpc-status", "14")]));
        assert!(!plain(403, &[("retry-after", "60")]));
        assert!(!plain(200, &[("x-ratelimit-remaining", "10")]));
        assert!(!plain(
            200,
            &[("ratelimit", "limit=10, remaining=9, reset=1")]
        ));
    }

    #[test]
    fn classifies_throttles() {
        assert!(read(429, &[]).throttled);
        assert!(!read(429, &[]).accepted);
        assert!(read(200, &[("grpc-status", "8")]).throttled);
        assert!(!read(503, &[]).throttled);
        assert!(!read(503, &[]).accepted);
        assert!(!read(200, &[("grpc-status", "14")]).accepted);
        assert!(read(200, &[]).accepted);
        assert!(read(500, &[]).accepted);
        assert!(read(404, &[]).accepted);
        // GitHub: a 403 is a throttle only with rate-limit evidence.
        assert!(!read(403, &[]).throttled);
        assert!(read(403, &[]).accepted);
        let secondary = read(403, &[("retry-after", "60")]);
        assert!(secondary.throttled);
        assert_eq!(secondary.hold, Some(Duration::from_secs(60)));
        let primary = read(
            403,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "30")],
        );
        assert!(primary.throttled && !primary.accepted);
    }
}
