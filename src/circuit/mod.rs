//! Circuit breaking: stop calling a service that is down, then probe it.
//!
//! [`CircuitBreakerLayer`] counts, per key (the request authority by
//! default), how many calls failed in a sliding window. When at least
//! [`failure_ratio`](CircuitBreakerLayer::failure_ratio) of at least
//! [`minimum_throughput`](CircuitBreakerLayer::minimum_throughput) calls in
//! the last [`sampling_duration`](CircuitBreakerLayer::sampling_duration)
//! failed, the key's breaker **opens**: for
//! [`break_duration`](CircuitBreakerLayer::break_duration) every request is
//! answered at once, without reaching the inner service, by a local
//! `503 Service Unavailable` with `Retry-After` (whole seconds until the
//! probe, rounded up) and the [`CircuitOpen`] extension. Then it is
//! **half-open**: a few probes go through
//! ([`half_open_probes`](CircuitBreakerLayer::half_open_probes), 5 at once)
//! while other requests are still answered locally; the first probe to
//! succeed **closes** it, the first to fail opens it again for a longer,
//! jittered break (doubling, up to
//! [`max_break_duration`](CircuitBreakerLayer::max_break_duration)).
//!
//! What fails is the [`classifier`](CircuitBreakerLayer::classifier)'s
//! call; by default ([`ServerErrors`]) `5xx` and errors of the inner
//! service (transport failures, timeouts). A `429` is not a failure — a
//! rate limit is the [gate](crate::rate_limit)'s business — and other
//! `4xx` count as successes. An optional slow-call rule
//! ([`slow_call_threshold`](CircuitBreakerLayer::slow_call_threshold))
//! counts slow successes as failures.
//!
//! A closed breaker admits and counts a call without a lock: each service
//! remembers the state of the last key it called, and the window is a fixed
//! ring of ten buckets of atomic counters per key, into which a success is
//! counted once, at admission (a failure takes the key's lock to be judged):
//! O(1), no allocation, and a clock reading only now and then. State is
//! shared by every clone of the layer and its services; keys are bounded by
//! [`max_keys`](CircuitBreakerLayer::max_keys).
//!
//! # Stacking
//!
//! Retry outside, breaker inside, gate innermost:
//!
//! ```ignore
//! let client = tower::ServiceBuilder::new()
//!     .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!     .layer(CircuitBreakerLayer::new())
//!     .layer(RateLimitAwareLayer::new())
//!     .service(http_client);
//! ```
//!
//! The retry layer sees the local `503` with `Retry-After` and waits for the
//! probe if that is within its cap; the [`CircuitOpen`] extension proves the
//! request was never sent, so even a `POST` may be retried after it. The
//! gate's local `429` and the server's `429` pass through the breaker
//! without opening it, and the gate never mistakes the breaker's local
//! `503` for a server's hint, nor queues requests the breaker would refuse.
//!
//! # Observability
//!
//! `tracing` events: `warn` when a key's breaker opens, `info` when it goes
//! half-open or closes, `debug` for each request answered locally. A hook
//! ([`on_state_change`](CircuitBreakerLayer::on_state_change)) sees every
//! [`StateChange`]; [`stats`](CircuitBreakerLayer::stats) gives each key's
//! state and window.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use http::{Request, Response, StatusCode};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_backoff::{CircuitBreakerLayer, CircuitOpen};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A server that is down.
//! let server = tower::service_fn(|_req: Request<String>| async {
//!     let mut res = Response::new(String::new());
//!     *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
//!     Ok::<_, Infallible>(res)
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new().minimum_throughput(5).break_duration(Duration::from_secs(5)))
//!     .service(server);
//!
//! let req = || Request::get("https://api.example.com/v1/x").body(String::new()).unwrap();
//! // Five failures in the window open the breaker…
//! for _ in 0..5 {
//!     let res = client.ready().await.unwrap().call(req()).await.unwrap();
//!     assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
//! }
//! // …so the next call is answered locally, at once.
//! let res = client.ready().await.unwrap().call(req()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(res.headers()["retry-after"], "5");
//! assert!(res.extensions().get::<CircuitOpen>().is_some());
//! # }
//! ```

mod breaker;
mod cell;
mod events;
mod future;
mod layer;
mod open;
mod outcome;
mod service;
mod state;
mod window;

pub use events::{BreakerStats, Cause, CircuitState, KeyStats, StateChange};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use open::{CircuitOpen, Local503, OpenAnswer, OpenError};
pub use outcome::{classify_status, CallOutcome, ClassifyCall, ServerErrors};
pub use service::CircuitBreaker;
