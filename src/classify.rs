//! What is worth retrying: HTTP statuses, gRPC codes, transport errors, and
//! whether the failure proves the server did not process the request.
//!
//! The vocabulary follows tower-http's `classify` module: a classifier looks
//! at one attempt's result and returns a [`Decision`].

use std::any::Any;
use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Request, Response, StatusCode};

use crate::circuit::CircuitOpen;
use crate::headers::{self, Pushback};
use crate::rate_limit::GateRetryAfter;

/// Why an attempt was judged a failure, as reported in events and tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// An HTTP status.
    Status(StatusCode),
    /// A gRPC status code carried in the response headers (trailers-only).
    Grpc(u16),
    /// The inner service returned an error (transport failure).
    Error,
    /// The inner service returned an error that is a timeout.
    Timeout,
    /// The server's gRPC pushback asked for no retry (gRPC A6).
    PushbackStop,
    /// A custom classifier's own reason.
    Custom(&'static str),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Status(s) => write!(f, "status {}", s.as_u16()),
            Reason::Grpc(code) => write!(f, "grpc-status {code}"),
            Reason::Error => f.write_str("transport error"),
            Reason::Timeout => f.write_str("timeout"),
            Reason::PushbackStop => f.write_str("server pushback: do not retry"),
            Reason::Custom(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Success,
    Retry,
    Fail,
}

/// A classifier's verdict on one attempt.
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::classify::{Decision, Reason};
///
/// let d = Decision::retry(Reason::Custom("busy"))
///     .after(Duration::from_secs(2))
///     .not_processed();
/// assert!(d.is_retryable());
/// assert_eq!(d.retry_after(), Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    kind: Kind,
    reason: Option<Reason>,
    retry_after: Option<Duration>,
    not_processed: bool,
    timeout: bool,
}

impl Decision {
    /// The attempt succeeded: stop, and count a success in the budget.
    pub const fn success() -> Self {
        Decision {
            kind: Kind::Success,
            reason: None,
            retry_after: None,
            not_processed: false,
            timeout: false,
        }
    }

    /// The attempt failed in a way a retry may fix.
    pub const fn retry(reason: Reason) -> Self {
        Decision {
            kind: Kind::Retry,
            reason: Some(reason),
            retry_after: None,
            not_processed: false,
            timeout: false,
        }
    }

    /// The attempt failed in a way a retry cannot fix (a 400, say): stop and
    /// return it.
    pub const fn fail(reason: Reason) -> Self {
        Decision {
            kind: Kind::Fail,
            reason: Some(reason),
            retry_after: None,
            not_processed: false,
            timeout: false,
        }
    }

    /// The server asked to wait at least `delay` before retrying.
    pub const fn after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The failure proves the server did not process the request (a 429, a
    /// refused connection), so even a non-idempotent request may be retried.
    pub const fn not_processed(mut self) -> Self {
        self.not_processed = true;
        self
    }

    /// The failure was a timeout (budgets such as [`RetryQuota`](crate::budget::RetryQuota)
    /// charge more for it).
    pub const fn timeout(mut self) -> Self {
        self.timeout = true;
        self
    }

    /// Whether the attempt succeeded.
    pub const fn is_success(&self) -> bool {
        matches!(self.kind, Kind::Success)
    }

    /// Whether a retry may fix the failure.
    pub const fn is_retryable(&self) -> bool {
        matches!(self.kind, Kind::Retry)
    }

    /// Why the attempt failed, if it did.
    pub const fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// The server's requested wait, if any.
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the failure proves the request was not processed.
    pub const fn is_not_processed(&self) -> bool {
        self.not_processed
    }

    /// Whether the failure was a timeout.
    pub const fn is_timeout(&self) -> bool {
        self.timeout
    }
}

/// Decides, for one attempt, whether it succeeded, failed for good, or may be
/// retried.
///
/// Implemented by [`HttpClassifier`] (the default) and by closures wrapped
/// by [`BackoffRetryLayer::classify`](crate::BackoffRetryLayer::classify).
pub trait Classify<Req, Res, E> {
    /// Classify the result of one attempt of `req`.
    fn classify(&self, req: &Req, result: Result<&Res, &E>) -> Decision;
}

/// A closure used as a classifier; made by
/// [`BackoffRetryLayer::classify`](crate::BackoffRetryLayer::classify).
#[derive(Clone)]
pub struct FnClassifier<F>(pub(crate) F);

impl<F> std::fmt::Debug for FnClassifier<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnClassifier")
    }
}

impl<Req, Res, E, F> Classify<Req, Res, E> for FnClassifier<F>
where
    F: Fn(&Req, Result<&Res, &E>) -> Decision,
{
    fn classify(&self, req: &Req, result: Result<&Res, &E>) -> Decision {
        (self.0)(req, result)
    }
}

/// The default classification for HTTP and gRPC-over-HTTP/2.
///
/// * Retried: `408`, `429`, `500`, `502`, `503`, `504`, any `Err` from the
///   inner service, and `grpc-status` 14 (UNAVAILABLE) or 8
///   (RESOURCE_EXHAUSTED) in the response headers (trailers-only replies).
/// * A `403` with rate-limit evidence — a `Retry-After` (or its millisecond
///   forms), or `remaining` 0 with a reset (GitHub's primary and secondary
///   limits) — is retried as a `429` would be, after `Retry-After` or else
///   until the stated reset.
/// * Never retried: every other status (2xx and 3xx succeed; 400, 401, 403,
///   404, 422 and all other 4xx fail), other gRPC codes, and any reply whose
///   `grpc-retry-pushback-ms` is negative or malformed (gRPC A6).
/// * Server hints: `Retry-After` (delta-seconds or HTTP-date),
///   `retry-after-ms`, `x-ms-retry-after-ms`, `grpc-retry-pushback-ms`.
/// * Proof of "not processed" (lets non-idempotent requests be retried):
///   `429`; a rate-limited `403`; `503` with a retry hint; gRPC UNAVAILABLE /
///   RESOURCE_EXHAUSTED trailers-only replies; a response or error marked
///   [`CircuitOpen`] (the breaker answered without sending); a connect-phase
///   error (connection refused, or hyper-util's `is_connect()` with the
///   `hyper-util` feature) found in an error of type
///   `Box<dyn Error + Send + Sync>`, `std::io::Error` or hyper-util's
///   client error.
///
/// An error sent in gRPC *trailers* after a streamed reply is not visible
/// here: tower's retry decides when the response head arrives.
///
/// A custom classifier can start from it and add a rule:
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::classify::{classify_response, Decision, Reason};
/// use tower_backoff::BackoffRetryLayer;
///
/// // Also retry 409 Conflict, otherwise behave as the default.
/// let layer = BackoffRetryLayer::exponential(Duration::from_millis(50), Duration::from_secs(5))
///     .classify(|_req: &http::Request<String>, res: Result<&http::Response<()>, &std::io::Error>| {
///         match res {
///             Ok(r) if r.status() == 409 => Decision::retry(Reason::Status(r.status())),
///             Ok(r) => classify_response(r.status(), r.headers()),
///             Err(e) => tower_backoff::classify::classify_error(e),
///         }
///     });
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClassifier;

const GRPC_RESOURCE_EXHAUSTED: u16 = 8;
const GRPC_UNAVAILABLE: u16 = 14;

impl<B, Rb, E: 'static> Classify<Request<B>, Response<Rb>, E> for HttpClassifier {
    #[inline]
    fn classify(&self, _req: &Request<B>, result: Result<&Response<Rb>, &E>) -> Decision {
        match result {
            // The common answer: a success with nothing else to read.
            Ok(res)
                if res.status().is_success()
                    && res.headers().is_empty()
                    && res.extensions().is_empty() =>
            {
                Decision::success()
            }
            Ok(res) => match res.extensions().get::<CircuitOpen>() {
                // The breaker answered without sending: proof of "not
                // processed", and its exact wait (`Retry-After` is rounded
                // up to whole seconds).
                Some(open) => classify_response(res.status(), res.headers())
                    .after(open.retry_after)
                    .not_processed(),
                None => gate_vouched(res, classify_response(res.status(), res.headers())),
            },
            Err(err) => classify_error(err),
        }
    }
}

/// A throttle the rate-limit gate below answered with its own, shorter
/// wait ([`GateRetryAfter`]): the retry waits that, and the gate holds it
/// until the key has room.
#[inline]
fn gate_vouched<Rb>(res: &Response<Rb>, decision: Decision) -> Decision {
    match (
        res.extensions().get::<GateRetryAfter>(),
        decision.retry_after(),
    ) {
        (Some(gate), Some(hint)) if decision.is_retryable() => {
            decision.after(gate.retry_after.min(hint))
        }
        _ => decision,
    }
}

/// The default verdict for an HTTP response head (see [`HttpClassifier`]).
pub fn classify_response(status: StatusCode, headers: &HeaderMap) -> Decision {
    let decision = match status.as_u16() {
        200..=399 => match grpc_status(headers) {
            None | Some(0) => return Decision::success(),
            Some(code @ (GRPC_UNAVAILABLE | GRPC_RESOURCE_EXHAUSTED)) => {
                Decision::retry(Reason::Grpc(code)).not_processed()
            }
            Some(code) => return Decision::fail(Reason::Grpc(code)),
        },
        429 => Decision::retry(Reason::Status(status)).not_processed(),
        403 => return forbidden(headers),
        408 | 500 | 502 | 503 | 504 => Decision::retry(Reason::Status(status)),
        _ => return Decision::fail(Reason::Status(status)),
    };
    with_server_hints(decision, status, headers)
}

/// A `403` is a permission error, unless it carries rate-limit evidence
/// ([`Hints::shows_rate_limit`](headers::Hints::shows_rate_limit)): GitHub
/// answers its primary and secondary rate limits with `403 Forbidden` and
/// asks clients to wait for `retry-after`, or else until `x-ratelimit-reset`.
/// Such a 403 is a 429 under another number: the request was not processed.
fn forbidden(headers: &HeaderMap) -> Decision {
    let reason = Reason::Status(StatusCode::FORBIDDEN);
    let hints = headers::hints(headers, SystemTime::now());
    if !hints.shows_rate_limit() {
        return Decision::fail(reason);
    }
    let wait = match hints.pushback {
        Some(Pushback::DoNotRetry) => return Decision::fail(Reason::PushbackStop),
        Some(Pushback::After(d)) => Some(d),
        None => hints.retry_after,
    };
    let until_reset = || {
        hints
            .rate_limit
            .filter(|rl| rl.remaining == Some(0))
            .and_then(|rl| rl.reset)
    };
    let throttled = Decision::retry(reason).not_processed();
    match wait.or_else(until_reset) {
        Some(d) => throttled.after(d),
        None => throttled,
    }
}

fn with_server_hints(decision: Decision, status: StatusCode, headers: &HeaderMap) -> Decision {
    let pushback = headers::grpc_pushback(headers);
    if pushback == Some(Pushback::DoNotRetry) {
        return Decision::fail(Reason::PushbackStop);
    }
    let hint = match pushback {
        Some(Pushback::After(d)) => Some(d),
        _ => headers::retry_after(headers, SystemTime::now()),
    };
    match hint {
        // RFC 9110 §15.6.4: a 503 with Retry-After is the server shedding
        // load before doing the work.
        Some(d) if status == StatusCode::SERVICE_UNAVAILABLE => decision.after(d).not_processed(),
        Some(d) => decision.after(d),
        None => decision,
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<u16> {
    // Most responses carry no headers the classifier needs: skip the lookup.
    if headers.is_empty() {
        return None;
    }
    static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
    let value = headers.get(&GRPC_STATUS)?;
    std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The default verdict for an error of the inner service: retryable, marked
/// not-processed when it is a connect-phase failure and as a timeout when it
/// is one.
pub fn classify_error<E: 'static>(err: &E) -> Decision {
    let Some(err) = as_std_error(err) else {
        return Decision::retry(Reason::Error);
    };
    let mut decision = Decision::retry(Reason::Error);
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        // An open breaker's error (`open_as_error`): never sent.
        if let Some(open) = e.downcast_ref::<CircuitOpen>() {
            return Decision::retry(Reason::Error)
                .after(open.retry_after)
                .not_processed();
        }
        if is_timeout(e) {
            decision = Decision::retry(Reason::Timeout).timeout();
        }
        if is_connect_failure(e) {
            decision = decision.not_processed();
        }
        cur = e.source();
    }
    decision
}

fn as_std_error<E: 'static>(err: &E) -> Option<&(dyn StdError + 'static)> {
    let any = err as &dyn Any;
    if let Some(e) = any.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
        return Some(&**e);
    }
    if let Some(e) = any.downcast_ref::<Box<dyn StdError>>() {
        return Some(&**e);
    }
    if let Some(e) = any.downcast_ref::<std::io::Error>() {
        return Some(e);
    }
    #[cfg(feature = "hyper-util")]
    if let Some(e) = any.downcast_ref::<hyper_util::client::legacy::Error>() {
        return Some(e);
    }
    None
}

fn is_timeout(e: &(dyn StdError + 'static)) -> bool {
    e.is::<tokio::time::error::Elapsed>()
        || e.is::<tower::timeout::error::Elapsed>()
        || e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

fn is_connect_failure(e: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "hyper-util")]
    if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
        if h.is_connect() {
            return true;
        }
    }
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Decision {
        classify_response(StatusCode::from_u16(code).unwrap(), &HeaderMap::new())
    }

    #[test]
    fn retries_the_transient_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).is_retryable(), "{code}");
        }
    }

    #[test]
    fn never_retries_client_errors_or_successes() {
        for code in [
            200, 204, 301, 304, 400, 401, 403, 404, 409, 422, 451, 501, 505,
        ] {
            assert!(!status(code).is_retryable(), "{code}");
        }
    }

    #[test]
    fn only_429_proves_not_processed_without_a_hint() {
        assert!(status(429).is_not_processed());
        assert!(!status(503).is_not_processed());
        assert!(!status(500).is_not_processed());
    }

    #[test]
    fn grpc_trailers_only_unavailable_and_exhausted_are_retried() {
        let mut h = HeaderMap::new();
        for (code, retry) in [
            ("14", true),
            ("8", true),
            ("0", false),
            ("3", false),
            ("x", false),
        ] {
            h.insert("grpc-status", code.parse().unwrap());
            let d = classify_response(StatusCode::OK, &h);
            assert_eq!(d.is_retryable(), retry, "grpc-status {code}");
        }
    }

    fn forbidden_with(headers: &[(&'static str, &str)]) -> Decision {
        let mut h = HeaderMap::new();
        for (name, value) in headers {
            h.insert(*name, value.parse().unwrap());
        }
        classify_response(StatusCode::FORBIDDEN, &h)
    }

    #[test]
    fn rate_limited_403_waits_for_retry_after() {
        let d = forbidden_with(&[("retry-after", "60")]);
        assert!(d.is_retryable() && d.is_not_processed());
        assert_eq!(d.retry_after(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn rate_limited_403_without_retry_after_waits_until_the_reset() {
        // GitHub's primary limit: remaining 0, reset as a Unix time.
        let reset = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 120;
        let d = forbidden_with(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset.to_string()),
        ]);
        assert!(d.is_retryable() && d.is_not_processed());
        let wait = d.retry_after().unwrap();
        assert!(
            wait > Duration::from_secs(118) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        // Retry-After wins over the reset when both are sent.
        let d = forbidden_with(&[
            ("retry-after", "5"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset.to_string()),
        ]);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn plain_403_is_never_retried() {
        for headers in [
            &[][..],
            // Quota left: a permission error on an API that reports its limit.
            &[("x-ratelimit-remaining", "12"), ("x-ratelimit-reset", "30")][..],
            // Exhausted but no reset: no evidence of when to come back.
            &[("x-ratelimit-remaining", "0")][..],
            &[("retry-after", "soon")][..],
        ] {
            let d = forbidden_with(headers);
            assert!(!d.is_retryable(), "{headers:?}");
            assert_eq!(d.reason(), Some(Reason::Status(StatusCode::FORBIDDEN)));
        }
    }

    #[test]
    fn io_errors_are_classified() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(classify_error(&refused).is_not_processed());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let d = classify_error(&reset);
        assert!(d.is_retryable() && !d.is_not_processed());
        let boxed: Box<dyn StdError + Send + Sync> =
            Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(classify_error(&boxed).is_timeout());
        assert!(classify_error(&"opaque").is_retryable());
    }

    #[test]
    fn a_circuit_open_answer_proves_not_processed() {
        let open = CircuitOpen {
            retry_after: Duration::from_secs(2),
        };
        let mut res = Response::new(());
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res.extensions_mut().insert(open);
        let req = Request::post("/").body(()).unwrap();
        let d = HttpClassifier.classify(&req, Ok::<_, &()>(&res));
        assert!(d.is_retryable() && d.is_not_processed());
        assert_eq!(d.retry_after(), Some(Duration::from_secs(2)));
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(open);
        let d = classify_error(&boxed);
        assert!(d.is_not_processed());
        assert_eq!(d.retry_after(), Some(Duration::from_secs(2)));
    }
}
