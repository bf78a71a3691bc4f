//! reqwest and reqwest-middleware: the same retry policy and rate-limit gate
//! for `reqwest` clients (feature `reqwest-middleware`).
//!
//! [`BackoffMiddleware`] turns a [`BackoffRetryLayer`] into a
//! [`reqwest_middleware::Middleware`]. It does not re-implement anything: it
//! drives the layer's own [`tower::retry::Policy`], so the schedule, jitter,
//! attempt and time limits, budget, `Retry-After`, idempotency rules,
//! classification and `on_retry` hook are exactly those of the tower layer.
//! [`RateLimitMiddleware`] likewise runs a [`RateLimitAwareLayer`]'s own
//! service around the rest of the middleware chain; attach it after
//! [`BackoffMiddleware`].
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_backoff::reqwest::{BackoffMiddleware, RateLimitMiddleware};
//! use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};
//!
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(BackoffMiddleware::new(BackoffRetryLayer::exponential(
//!         Duration::from_millis(100),
//!         Duration::from_secs(10),
//!     )))
//!     .with(RateLimitMiddleware::new(RateLimitAwareLayer::new()))
//!     .build();
//! let res = client.get("http://127.0.0.1:8080/").send().await?;
//! # let _ = res; Ok(()) }
//! ```
//!
//! The same module makes `reqwest::Client` usable as a plain tower service
//! under the layer (`reqwest::Client` implements `tower::Service<reqwest::Request>`):
//! [`RetryRequest`] is implemented for [`reqwest::Request`] and
//! [`HttpClassifier`] classifies `reqwest::Response` and `reqwest::Error`.
//!
//! Bodies: a request whose body is in memory (`.body(String/Vec<u8>/Bytes)`,
//! `.json(..)`, `.form(..)`) is replayed; a streaming body
//! (`reqwest::Body::wrap`, `wrap_stream`) cannot be cloned, so it is sent once
//! and never retried, as with the tower layer.
//!
//! Each attempt's number is in the middleware [`Extensions`] as an
//! [`Attempt`] (reqwest keeps a request's own extensions private); after
//! `send()` it tells how many attempts were made.

use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use tower::retry::Policy;

use crate::classify::{classify_response, Classify, Decision, HttpClassifier, Reason};
use crate::rate_limit::{Local429, Refusal, WaitForPermit};
use crate::retry::is_idempotent_request;
use crate::{Attempt, BackoffRetryLayer, RateLimitAwareLayer, RetryRequest};

/// A [`reqwest_middleware::Middleware`] that retries with a
/// [`BackoffRetryLayer`]'s policy.
///
/// Clones share the layer's configuration and budget, like clones of the
/// layer. Build it with [`BackoffMiddleware::new`] or `From`.
#[derive(Debug, Clone)]
pub struct BackoffMiddleware<C = HttpClassifier> {
    policy: BackoffRetryLayer<C>,
}

impl<C: Clone> BackoffMiddleware<C> {
    /// Retry with `layer`'s schedule, limits, budget and classification.
    ///
    /// A custom classifier must implement
    /// `Classify<reqwest::Request, reqwest::Response, reqwest_middleware::Error>`.
    pub fn new(layer: BackoffRetryLayer<C>) -> Self {
        BackoffMiddleware {
            policy: layer.fresh(),
        }
    }
}

impl<C: Clone> From<BackoffRetryLayer<C>> for BackoffMiddleware<C> {
    fn from(layer: BackoffRetryLayer<C>) -> Self {
        BackoffMiddleware::new(layer)
    }
}

#[async_trait::async_trait]
impl<C> Middleware for BackoffMiddleware<C>
where
    C: Classify<reqwest::Request, reqwest::Response, reqwest_middleware::Error>
        + Clone
        + Send
        + Sync
        + 'static,
{
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // The same steps as `tower::retry::Retry`: a fresh policy per request,
        // `clone_request` before each attempt, `retry` after it.
        let mut policy = self.policy.clone();
        let mut req = req;
        let mut attempt: u32 = 1;
        // Bounded: the policy stops at `max_attempts` (a `u32`, counted with
        // saturating arithmetic), and earlier on any final result.
        loop {
            let replay = policy.clone_request(&req);
            extensions.insert(Attempt(attempt));
            let mut result = next.clone().run(req, extensions).await;
            let Some(mut again) = replay else {
                return result;
            };
            let Some(wait) = policy.retry(&mut again, &mut result) else {
                return result;
            };
            wait.await;
            req = again;
            attempt = attempt.saturating_add(1);
        }
    }
}

impl RetryRequest for reqwest::Request {
    /// `reqwest::Request::try_clone`: `None` for streaming bodies.
    fn try_clone(&self) -> Option<Self> {
        reqwest::Request::try_clone(self)
    }

    fn is_idempotent(&self) -> bool {
        is_idempotent_request(self.method(), self.headers())
    }
}

impl Classify<reqwest::Request, reqwest::Response, reqwest_middleware::Error> for HttpClassifier {
    fn classify(
        &self,
        _req: &reqwest::Request,
        result: Result<&reqwest::Response, &reqwest_middleware::Error>,
    ) -> Decision {
        match result {
            Ok(res) => classify_response(res.status(), res.headers()),
            Err(reqwest_middleware::Error::Reqwest(err)) => classify_reqwest_error(err),
            // Another middleware's error: opaque, retryable like any inner
            // service error under the default classification.
            Err(_) => Decision::retry(Reason::Error),
        }
    }
}

impl Classify<reqwest::Request, reqwest::Response, reqwest::Error> for HttpClassifier {
    fn classify(
        &self,
        _req: &reqwest::Request,
        result: Result<&reqwest::Response, &reqwest::Error>,
    ) -> Decision {
        match result {
            Ok(res) => classify_response(res.status(), res.headers()),
            Err(err) => classify_reqwest_error(err),
        }
    }
}

/// The default verdict for a `reqwest::Error`: a request that could not be
/// built or a redirect-policy error fails for good; any other error is
/// retryable, as a timeout when it is one, and as not processed when the
/// connection was never made (`is_connect`).
pub fn classify_reqwest_error(err: &reqwest::Error) -> Decision {
    if err.is_builder() || err.is_redirect() {
        return Decision::fail(Reason::Error);
    }
    let decision = if err.is_timeout() {
        Decision::retry(Reason::Timeout).timeout()
    } else {
        Decision::retry(Reason::Error)
    };
    if err.is_connect() {
        decision.not_processed()
    } else {
        decision
    }
}

/// A [`reqwest_middleware::Middleware`] that runs a [`RateLimitAwareLayer`]'s
/// gate: requests wait for (or are refused by) the gate shared by every clone
/// of the layer, and the gate learns from every response.
///
/// It drives the layer's own tower service around the rest of the middleware
/// chain, so holding, pacing, slow start, `max_wait` and the local `429`
/// (with [`LocalRateLimited`](crate::LocalRateLimited) in the response's
/// extensions) are exactly those of the tower layer. Attach it *after*
/// [`BackoffMiddleware`] so that every attempt passes the gate:
///
/// ```no_run
/// use std::time::Duration;
/// use tower_backoff::reqwest::{BackoffMiddleware, RateLimitMiddleware};
/// use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BackoffMiddleware::new(BackoffRetryLayer::exponential(
///         Duration::from_millis(100),
///         Duration::from_secs(10),
///     )))
///     .with(RateLimitMiddleware::new(RateLimitAwareLayer::new()))
///     .build();
/// ```
///
/// `R` follows the layer: [`WaitForPermit`] by default, [`Local429`] after
/// [`RateLimitAwareLayer::max_wait`].
#[derive(Clone)]
pub struct RateLimitMiddleware<R = WaitForPermit> {
    layer: RateLimitAwareLayer<R>,
}

impl<R> RateLimitMiddleware<R> {
    /// Gate requests with `layer` (its state is shared with every other use
    /// of the same layer, tower services included).
    pub fn new(layer: RateLimitAwareLayer<R>) -> Self {
        RateLimitMiddleware { layer }
    }
}

impl<R> From<RateLimitAwareLayer<R>> for RateLimitMiddleware<R> {
    fn from(layer: RateLimitAwareLayer<R>) -> Self {
        RateLimitMiddleware::new(layer)
    }
}

impl<R> std::fmt::Debug for RateLimitMiddleware<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitMiddleware")
            .field("stats", &self.layer.stats())
            .finish()
    }
}

/// The request the gate sees: the head it keys on, and the reqwest request
/// (with the chain's extensions) carried as the body, untouched.
struct Carried<'a>(reqwest::Request, &'a mut Extensions);

/// The response the gate sees: the head it learns from, and the reqwest
/// response carried as the body; `None` in the gate's own local 429.
#[derive(Default)]
struct Answer(Option<reqwest::Response>);

/// The rest of the middleware chain as a tower service.
#[derive(Clone)]
struct Rest<'a>(Next<'a>);

impl<'a> tower::Service<http::Request<Carried<'a>>> for Rest<'a> {
    type Response = http::Response<Answer>;
    type Error = reqwest_middleware::Error;
    type Future = BoxFuture<'a, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Carried<'a>>) -> Self::Future {
        let Carried(req, extensions) = req.into_body();
        let next = self.0.clone();
        Box::pin(async move {
            let res = next.run(req, extensions).await?;
            let mut head = http::Response::new(());
            *head.status_mut() = res.status();
            *head.version_mut() = res.version();
            *head.headers_mut() = res.headers().clone();
            Ok(head.map(|()| Answer(Some(res))))
        })
    }
}

/// The gate around the rest of the chain, boxed here where the lifetimes are
/// named: inside `handle`, rustc's `Send` check of the `async_trait` future
/// cannot prove `Rest<'_>: Service<Request<Carried<'_>>>` for its erased
/// lifetimes ("implementation of `Service` is not general enough").
fn gate_call<'a, R: Refusal<Answer> + 'static>(
    layer: &RateLimitAwareLayer<R>,
    next: Next<'a>,
    req: http::Request<Carried<'a>>,
) -> BoxFuture<'a, reqwest_middleware::Result<http::Response<Answer>>> {
    use tower::ServiceExt;
    use tower_layer::Layer;
    Box::pin(layer.layer(Rest(next)).oneshot(req))
}

/// A boxed, `Send` future, as reqwest-middleware's `Next::run` returns.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

macro_rules! gate_middleware {
    ($($refusal:ty),*) => {$(
        #[async_trait::async_trait]
        impl Middleware for RateLimitMiddleware<$refusal> {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // The gate keys on the head (authority by default, or the layer's
        // key function): method, URI and headers, copied.
        let mut head = http::Request::new(());
        *head.method_mut() = req.method().clone();
        *head.uri_mut() = req
            .url()
            .as_str()
            .parse()
            .map_err(reqwest_middleware::Error::middleware)?;
        *head.headers_mut() = req.headers().clone();
        let carried = head.map(|()| Carried(req, extensions));

        let res = gate_call(&self.layer, next, carried).await?;
        let (parts, Answer(res)) = res.into_parts();
        Ok(match res {
            Some(res) => res,
            // The gate's own 429: its head (Retry-After, `LocalRateLimited`)
            // becomes a reqwest response with an empty body.
            None => reqwest::Response::from(http::Response::from_parts(parts, Vec::<u8>::new())),
        })
    }
        }
    )*};
}

gate_middleware!(WaitForPermit, Local429);
