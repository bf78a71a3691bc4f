//! What counts as a failure for the breaker: the default classifier and the
//! trait a custom one implements.

use http::{HeaderMap, Response, StatusCode};

use super::open::CircuitOpen;

/// A breaker's verdict on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The service did its job (or refused the request for the request's own
    /// fault): counts as a success.
    Success,
    /// The service failed: counts towards opening the breaker, and a failed
    /// half-open probe opens it again.
    Failure,
    /// Says nothing about the service's health (a rate limit, say): not
    /// counted at all; a half-open probe answered so leaves the breaker
    /// half-open and frees its place for another probe.
    Ignored,
}

/// Decides whether a call succeeded or failed, for the breaker.
///
/// Implemented by [`ServerErrors`] (the default) and by any
/// `Fn(Result<&Res, &E>) -> CallOutcome`, given to
/// [`CircuitBreakerLayer::classifier`](super::CircuitBreakerLayer::classifier).
pub trait ClassifyCall<Res, E> {
    /// The verdict on one call's result.
    fn classify(&self, result: Result<&Res, &E>) -> CallOutcome;
}

impl<Res, E, F> ClassifyCall<Res, E> for F
where
    F: Fn(Result<&Res, &E>) -> CallOutcome,
{
    fn classify(&self, result: Result<&Res, &E>) -> CallOutcome {
        self(result)
    }
}

/// The default classifier: server failures open the breaker, nothing else.
///
/// * **Failure**: any error of the inner service (transport errors,
///   timeouts), any `5xx` status, and the gRPC codes that mean the server
///   is unwell, in the headers of a trailers-only reply: `UNAVAILABLE` (14),
///   `DEADLINE_EXCEEDED` (4), `INTERNAL` (13), `UNKNOWN` (2), `DATA_LOSS`
///   (15).
/// * **Ignored**: `429 Too Many Requests` and gRPC `RESOURCE_EXHAUSTED` (8):
///   a rate limit is the gate's business, not an outage; and a response
///   carrying [`CircuitOpen`] (an inner breaker's own answer).
/// * **Success**: everything else, other `4xx` included (the request's
///   fault, not the server's).
///
/// A custom classifier can start from it:
///
/// ```
/// use http::Response;
/// use tower_backoff::circuit::{CallOutcome, ClassifyCall, ServerErrors};
///
/// // Also count 408 Request Timeout as a failure.
/// let classify = |res: Result<&Response<String>, &std::io::Error>| match res {
///     Ok(r) if r.status() == 408 => CallOutcome::Failure,
///     other => ServerErrors.classify(other),
/// };
/// let layer = tower_backoff::CircuitBreakerLayer::new().classifier(classify);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrors;

impl<Rb, E> ClassifyCall<Response<Rb>, E> for ServerErrors {
    fn classify(&self, result: Result<&Response<Rb>, &E>) -> CallOutcome {
        match result {
            Ok(res) if res.extensions().get::<CircuitOpen>().is_some() => CallOutcome::Ignored,
            Ok(res) => classify_status(res.status(), res.headers()),
            Err(_) => CallOutcome::Failure,
        }
    }
}

/// The default verdict for a response head (see [`ServerErrors`]).
pub fn classify_status(status: StatusCode, headers: &HeaderMap) -> CallOutcome {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return CallOutcome::Ignored;
    }
    if status.is_server_error() {
        return CallOutcome::Failure;
    }
    // The common header-less reply costs no lookup.
    if headers.is_empty() {
        return CallOutcome::Success;
    }
    match headers.get("grpc-status").map(|v| v.as_bytes()) {
        Some(b"14" | b"4" | b"13" | b"2" | b"15") => CallOutcome::Failure,
        Some(b"8") => CallOutcome::Ignored,
        _ => CallOutcome::Success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(status: u16, headers: &[(&'static str, &'static str)]) -> CallOutcome {
        let mut res = Response::new(());
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        for (k, v) in headers {
            res.headers_mut().insert(*k, v.parse().unwrap());
        }
        ServerErrors.classify(Ok::<_, &()>(&res))
    }

    #[test]
    fn server_errors_fail_429_is_ignored_other_4xx_succeed() {
        for code in [500, 501, 502, 503, 504, 599] {
            assert_eq!(verdict(code, &[]), CallOutcome::Failure, "{code}");
        }
        assert_eq!(verdict(429, &[]), CallOutcome::Ignored);
        for code in [200, 204, 301, 400, 401, 403, 404, 408, 409, 422] {
            assert_eq!(verdict(code, &[]), CallOutcome::Success, "{code}");
        }
    }

    #[test]
    fn errors_fail() {
        let res: Result<&Response<()>, &std::io::Error> =
            Err(&std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(ServerErrors.classify(res), CallOutcome::Failure);
    }

    #[test]
    fn grpc_codes_in_trailers_only_replies() {
        assert_eq!(verdict(200, &[("grpc-status", "14")]), CallOutcome::Failure);
        assert_eq!(verdict(200, &[("grpc-status", "8")]), CallOutcome::Ignored);
        assert_eq!(verdict(200, &[("grpc-status", "0")]), CallOutcome::Success);
        assert_eq!(verdict(200, &[("grpc-status", "5")]), CallOutcome::Success);
    }

    #[test]
    fn an_inner_breakers_answer_is_ignored() {
        let mut res = Response::new(());
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res.extensions_mut().insert(CircuitOpen {
            retry_after: std::time::Duration::from_secs(1),
        });
        assert_eq!(
            ServerErrors.classify(Ok::<_, &()>(&res)),
            CallOutcome::Ignored
        );
    }
}
