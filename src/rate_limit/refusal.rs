//! What the gate does with a request whose wait would exceed `max_wait`:
//! a type-level choice, so that response bodies without a `Default` (hyper's
//! `Incoming`) work with the layer's defaults.

use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};

use super::LocalRateLimited;

/// The default of [`RateLimitAwareLayer`](super::RateLimitAwareLayer):
/// requests wait for their permit, however long the server asked for (never
/// longer than [`max_hold`](super::RateLimitAwareLayer::max_hold)). Works
/// with any response body type.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitForPermit;

/// Set by [`RateLimitAwareLayer::max_wait`](super::RateLimitAwareLayer::max_wait):
/// a request that would wait longer gets a local `429 Too Many Requests`
/// at once. Needs a response body type with a `Default` (an empty body).
#[derive(Debug, Clone, Copy, Default)]
pub struct Local429;

/// How a refusal is answered; implemented by [`WaitForPermit`] and
/// [`Local429`] only.
pub trait Refusal<Rb>: sealed::Sealed {
    /// Whether the gate may refuse requests at all.
    const REFUSES: bool;

    /// The local answer to a request refused after waiting `wait`.
    fn local_response(wait: Duration) -> Option<Response<Rb>>;
}

impl<Rb> Refusal<Rb> for WaitForPermit {
    const REFUSES: bool = false;

    fn local_response(_wait: Duration) -> Option<Response<Rb>> {
        None
    }
}

impl<Rb: Default> Refusal<Rb> for Local429 {
    const REFUSES: bool = true;

    fn local_response(wait: Duration) -> Option<Response<Rb>> {
        Some(local_429(wait))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::WaitForPermit {}
    impl Sealed for super::Local429 {}
}

/// `429 Too Many Requests` made locally, with `Retry-After` in whole seconds
/// rounded up (RFC 9110 §10.2.3 allows no fractions; rounding down would
/// invite a retry that is refused again).
fn local_429<Rb: Default>(wait: Duration) -> Response<Rb> {
    let secs = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    let mut res = Response::new(Rb::default());
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res.extensions_mut().insert(LocalRateLimited { wait });
    res
}
