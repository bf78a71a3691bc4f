//! reqwest and reqwest-middleware: the same retry policy for `reqwest`
//! clients (feature `reqwest-middleware`).
//!
//! [`BackoffMiddleware`] turns a [`BackoffRetryLayer`] into a
//! [`reqwest_middleware::Middleware`]. It does not re-implement anything: it
//! drives the layer's own [`tower::retry::Policy`], so the schedule, jitter,
//! attempt and time limits, budget, `Retry-After`, idempotency rules,
//! classification and `on_retry` hook are exactly those of the tower layer.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_backoff::{reqwest::BackoffMiddleware, BackoffRetryLayer};
//!
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(BackoffMiddleware::new(BackoffRetryLayer::exponential(
//!         Duration::from_millis(100),
//!         Duration::from_secs(10),
//!     )))
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
use crate::retry::is_idempotent_request;
use crate::{Attempt, BackoffRetryLayer, RetryRequest};

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
