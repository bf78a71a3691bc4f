//! # tower-backoff
//!
//! Tower middleware for calling services that say "slow down".
//!
//! * [`BackoffRetryLayer`] retries failed calls after a delay drawn from a
//!   pluggable [`Schedule`], randomised by [`Jitter`], within attempt, time and
//!   budget limits, honouring `Retry-After`, and never replaying a request
//!   that is unsafe to send twice.
//! * [`RateLimitAwareLayer`] reads what servers say about their limits and
//!   holds or paces requests so the client stops sending calls that can only
//!   get `429 Too Many Requests`.
//! * [`CircuitBreakerLayer`] stops calling a service that is down — a local
//!   `503` with `Retry-After` and the [`CircuitOpen`] extension while it is
//!   open — then lets a few probes through. It sits between the two:
//!   retry → breaker → gate (see [`circuit`]).
//!
//! ```
//! # use std::time::Duration;
//! # use tower::{Service, ServiceExt};
//! # use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! # let http_client = tower::service_fn(|_req: http::Request<String>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! # });
//! let client = tower::ServiceBuilder::new()
//!     .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!     .layer(RateLimitAwareLayer::new())
//!     .service(http_client);
//! # let res = client.oneshot(http::Request::new(String::new())).await.unwrap();
//! # assert_eq!(res.status(), 200);
//! # }
//! ```
//!
//! The retry layer sits outside the rate-limit layer, so every attempt waits
//! for the gate's permit and teaches it what the server said. Streaming
//! request bodies (axum, tonic, hyper) need
//! [`BackoffRetryLayer::buffered`] to be replayed.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod body;
pub mod budget;
pub mod circuit;
pub mod classify;
mod duration;
pub mod headers;
mod jitter;
mod key;
pub mod rate_limit;
#[cfg(feature = "reqwest-middleware")]
pub mod reqwest;
pub mod retry;
mod rng;
pub mod schedule;

pub use body::BufferBodyLayer;
pub use circuit::{CircuitBreaker, CircuitBreakerLayer, CircuitOpen};
pub use jitter::Jitter;
pub use rate_limit::{LocalRateLimited, RateLimitAware, RateLimitAwareLayer};
pub use retry::{Attempt, BackoffRetryLayer, Idempotency, ReplayBody, RetryRequest};
pub use rng::BackoffRng;
pub use schedule::Schedule;
