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
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::{client::legacy::Client, rt::TokioExecutor};
//! use tower::ServiceExt;
//! use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     // Any tower service works; here hyper-util's client (crate features
//!     // "client-legacy", "http1", "tokio").
//!     let http_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//!
//!     let client = tower::ServiceBuilder::new()
//!         .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!         .layer(RateLimitAwareLayer::new())
//!         .service(http_client);
//!
//!     let req = http::Request::get("http://example.com/").body(Full::default())?;
//!     let res = client.oneshot(req).await?;
//!     println!("{}", res.status());
//!     Ok(())
//! }
//! ```
//!
//! The retry layer sits outside the rate-limit layer, so every attempt waits
//! for the gate's permit and teaches it what the server said. Streaming
//! request bodies (axum, tonic, hyper) need
//! [`BackoffRetryLayer::buffered`] to be replayed.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod body;
pub mod budget;
pub mod circuit;
pub mod classify;
mod duration;
mod extensions;
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
pub use extensions::{Deadline, RequestCost};
pub use jitter::Jitter;
#[cfg(feature = "redis")]
pub use rate_limit::RedisStore;
pub use rate_limit::{GateRetryAfter, LocalRateLimited, RateLimitAware, RateLimitAwareLayer};
pub use retry::{Attempt, BackoffRetryLayer, Idempotency, ReplayBody, RetryRequest};
pub use rng::BackoffRng;
pub use schedule::Schedule;

/// The README's snippets, compiled as doc tests: a snippet that stops
/// compiling fails `cargo test --all-features`.
#[cfg(all(
    doctest,
    feature = "hyper-util",
    feature = "reqwest-middleware",
    feature = "redis"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
