//! How a request is answered while its breaker is open: a type-level
//! choice between a local `503` (HTTP responses whose body has a `Default`)
//! and an error (any response type).

use std::fmt;
use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};

use crate::duration::whole_secs_up;

/// Marks a request the breaker answered itself, without calling the inner
/// service: in the extensions of the local `503 Service Unavailable` (the
/// default), or as the error (after
/// [`open_as_error`](super::CircuitBreakerLayer::open_as_error)).
///
/// Its presence proves the request was never sent, so the retry layer may
/// retry even a `POST` after it.
///
/// ```
/// # use http::Response;
/// use tower_backoff::CircuitOpen;
/// # let res: Response<()> = Response::new(());
/// if let Some(open) = res.extensions().get::<CircuitOpen>() {
///     println!("not sent; the breaker probes again in {:?}", open.retry_after);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitOpen {
    /// Time until the breaker lets a probe through (before rounding up to
    /// whole seconds for `Retry-After`). While half-open with every
    /// probe place taken, a tenth of `break_duration`: a probe's answer is
    /// due by then.
    pub retry_after: Duration,
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker open: request not sent; retry after {:?}",
            self.retry_after
        )
    }
}

impl std::error::Error for CircuitOpen {}

/// The default answer of an open breaker: a local
/// `503 Service Unavailable` with `Retry-After` and the [`CircuitOpen`]
/// extension. Needs a response body type with a `Default` (an empty body).
#[derive(Debug, Clone, Copy, Default)]
pub struct Local503;

/// Set by [`open_as_error`](super::CircuitBreakerLayer::open_as_error): an
/// open breaker returns [`CircuitOpen`] as the error, converted with `From`
/// (a `Box<dyn Error + Send + Sync>` takes it, as does any error type with
/// a `From<CircuitOpen>`). Works with any response type.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenError;

/// How an open breaker answers; implemented by [`Local503`] and
/// [`OpenError`] only.
pub trait OpenAnswer<Res, E>: sealed::Sealed {
    /// The answer to a request refused by an open breaker.
    fn answer(open: CircuitOpen) -> Result<Res, E>;
}

impl<Rb: Default, E> OpenAnswer<Response<Rb>, E> for Local503 {
    fn answer(open: CircuitOpen) -> Result<Response<Rb>, E> {
        Ok(local_503(open))
    }
}

impl<Res, E: From<CircuitOpen>> OpenAnswer<Res, E> for OpenError {
    fn answer(open: CircuitOpen) -> Result<Res, E> {
        Err(E::from(open))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Local503 {}
    impl Sealed for super::OpenError {}
}

/// `503 Service Unavailable` made locally, with `Retry-After` in whole
/// seconds, rounded up.
fn local_503<Rb: Default>(open: CircuitOpen) -> Response<Rb> {
    let secs = whole_secs_up(open.retry_after);
    let mut res = Response::new(Rb::default());
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res.extensions_mut().insert(open);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_503_rounds_retry_after_up() {
        for (wait, header) in [(0, "0"), (1, "1"), (1_001, "2"), (4_999, "5")] {
            let open = CircuitOpen {
                retry_after: Duration::from_millis(wait),
            };
            let res: Response<String> = match Local503::answer(open) {
                Ok(res) => res,
                Err(()) => unreachable!(),
            };
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(res.headers()[header::RETRY_AFTER], header);
            assert_eq!(res.extensions().get::<CircuitOpen>(), Some(&open));
        }
    }

    #[test]
    fn open_error_converts_into_boxed_errors() {
        let open = CircuitOpen {
            retry_after: Duration::from_secs(3),
        };
        let err =
            <OpenError as OpenAnswer<(), Box<dyn std::error::Error + Send + Sync>>>::answer(open)
                .unwrap_err();
        assert_eq!(err.downcast_ref::<CircuitOpen>(), Some(&open));
        assert!(err.to_string().contains("circuit breaker open"));
    }
}
