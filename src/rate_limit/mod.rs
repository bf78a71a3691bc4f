//! Rate-limit-aware gating: stop sending calls that can only get 429.
//!
//! [`RateLimitAwareLayer`] reads what a server says about its limits, keeps
//! that knowledge in one state shared by every clone of the layer and its
//! services, and holds or paces outgoing requests accordingly. A request's
//! path: wait for a permit from the gate → the inner service → the gate
//! learns from the response (status and headers) → the permit is released.
//!
//! It sits inside a retry layer, so that every attempt passes through it:
//!
//! ```ignore
//! let client = tower::ServiceBuilder::new()
//!     .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!     .layer(RateLimitAwareLayer::new())
//!     .service(http_client);
//! ```
//!
//! # What it reads
//!
//! Every response is parsed by [`crate::headers::hints`]: `Retry-After`
//! (delta-seconds or HTTP-date, read against the response's `Date`),
//! `retry-after-ms`, `x-ms-retry-after-ms`, every limit of the IETF
//! `RateLimit`/`RateLimit-Policy` fields and their older forms,
//! `X-RateLimit-*` (with GitHub's `x-ratelimit-resource`), X's
//! `x-rate-limit-*`, OpenAI's and Anthropic's requests and tokens headers,
//! and gRPC's `grpc-retry-pushback-ms`. A *throttle* is a `429`, a `403`
//! with rate-limit evidence (GitHub), a gRPC `RESOURCE_EXHAUSTED`
//! (`grpc-status: 8` in the headers of a trailers-only reply), or a
//! `503`/`UNAVAILABLE` that names a wait. A gRPC status sent in trailers
//! after a streamed reply is not visible to the gate.
//!
//! # What it does, per key
//!
//! A key holds several constraints at once, each from its own source; a
//! request goes when every constraint that binds it has room, so the
//! tightest binds:
//!
//! * **Holds.** After a throttle with a wait hint, no request goes before
//!   the hint has passed — for the whole host, or for the one resource the
//!   response named. A hold does not wipe a quota that still states room.
//!   When it ends, requests come back as from a fresh key (slow start)
//!   unless something paces the key. Waiting requests are woken by a timer,
//!   never by polling. One exception, limited to what the hint can say: a
//!   `Retry-After` of one second or less counts whole seconds, so a limiter
//!   whose next slot is 10 ms away can only round it up to `1` — an upper
//!   bound, not a measurement. On a key whose rate the gate learns (no
//!   stated quota paces it, the hint names no resource),
//!   such a hint is *probed*: the key pauses a few intervals of the learned
//!   rate, then one request goes alone; if the server accepts it, the key
//!   goes on at the learned rate, and if it refuses it, the hint was meant
//!   and the key is held for it. The refused request itself is answered
//!   with its hint at once, marked with the gate's own, shorter wait
//!   ([`GateRetryAfter`]): a retry layer above (its default classifier)
//!   sends the retry back after that, to wait in the gate's line rather
//!   than sleep out the whole second. Longer hints,
//!   quotas' resets and gRPC pushback are holds as always.
//! * **Stated quotas**, every one apart: requests and tokens, each IETF
//!   policy by name, each resource's. The gate keeps an estimate of what the
//!   server still takes: the `remaining` it stated, less the requests (or
//!   tokens, by [`RequestCost`](crate::RequestCost)) in flight it may not
//!   have counted yet. Read as a fixed window by default, a quota comes back
//!   at the reset, spread at the policy's rate; once the server is seen to
//!   refill continuously — or says so, as OpenAI's and Anthropic's headers
//!   do — releases follow its rate at once. A quota out before a reset of a
//!   second or less (whole seconds, so an upper bound) that was never seen
//!   even half full gets one probe a few intervals of its rate later:
//!   accepted, it refills continuously (a token bucket stating the time to
//!   its next token); refused, it is a window, and the next probe waits
//!   1 s, doubling to a minute. A quota contradicted by repeated
//!   throttles while it claims room stops pacing until it says it is out.
//! * **Configured limits** ([`Limit`]): token buckets per key, binding from
//!   the first request.
//! * **A learned rate** for a server that only says "429": each throttle
//!   measures how many requests the server accepted in the period before
//!   it. After a probed short hint the server's bucket was empty when the
//!   period began and is empty again at its throttle, so what it accepted
//!   in between is its refill rate (corrected for any stretch in which the
//!   bucket overflowed, by the burst the first period showed); after a hold,
//!   two periods give the rate with the burst taken out. The gate paces just
//!   under it and probes upward as CUBIC does (RFC 9438): flat near the last
//!   measure, faster past it. Where no measure or fit is possible it falls
//!   back to multiplicative decrease (β = 0.7, as the AWS SDKs' adaptive
//!   mode), never below the rate the server sustained from one throttle to
//!   the next. Probes of a server that accepts nothing are spaced further
//!   and further apart.
//! * **Slow start** for a key it knows nothing about: one probe, then the
//!   number in flight grows by one per two accepted responses (by half per
//!   round trip, as RFC 3742 grows large windows: a small burst meets half
//!   the refusals doubling would send it) until headers or a throttle say
//!   what the limit is. While no response comes back, the window still
//!   grows by one a second, so a slow service does not serialise every
//!   caller behind its probe.
//!
//! Every wait has a bound: no request waits longer than
//! [`max_hold`](RateLimitAwareLayer::max_hold) in all, nor past its
//! [`Deadline`](crate::Deadline); then it is sent. With
//! [`max_wait`](RateLimitAwareLayer::max_wait), a request that would wait
//! longer gets, at once and without reaching the server, a local `429` with
//! `Retry-After` and the [`LocalRateLimited`] extension; requests already
//! waiting are refused the same way as soon as a new hold makes their wait
//! too long. Permits go to requests whose futures are polled: one created
//! and never awaited holds no place in line.
//!
//! Malformed, negative, huge or contradictory header values are ignored or
//! capped. Memory is bounded by
//! [`max_keys`](RateLimitAwareLayer::max_keys). Dropping a request's future
//! while it waits or is in flight gives back whatever it reserved.
//!
//! **Many processes, one limit** (feature `redis`): with
//! [`store`](RateLimitAwareLayer::store), gates in many processes share holds,
//! learned rates and the pace of every limit through Redis, so that together
//! they keep to a limit that one API key has for all of them; see
//! `RedisStore`. Without a store nothing of it is on a request's path.
//!
//! `tracing` events: `info` when a key becomes limited (held, quota
//! exhausted, a quota no longer trusted) and when a request is answered
//! locally; `debug` when a request is held, released, or a key's learned
//! rate is lowered.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_backoff::{LocalRateLimited, RateLimitAwareLayer};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A server that is over its limit for the next two minutes.
//! let server = tower::service_fn(|_req: Request<String>| async {
//!     let res = Response::builder()
//!         .status(StatusCode::TOO_MANY_REQUESTS)
//!         .header("retry-after", "120")
//!         .body(String::new())
//!         .unwrap();
//!     Ok::<_, Infallible>(res)
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(RateLimitAwareLayer::new().max_wait(std::time::Duration::from_secs(30)))
//!     .service(server);
//!
//! let req = || Request::get("https://api.example.com/v1/x").body(String::new()).unwrap();
//! // The server's 429 teaches the gate…
//! let first = client.ready().await.unwrap().call(req()).await.unwrap();
//! assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert!(first.extensions().get::<LocalRateLimited>().is_none());
//!
//! // …so the next call is answered locally, at once: 120 s > max_wait.
//! let second = client.ready().await.unwrap().call(req()).await.unwrap();
//! assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
//! let local = second.extensions().get::<LocalRateLimited>().unwrap();
//! assert_eq!(local.wait.as_secs(), 120);
//! assert_eq!(second.headers()["retry-after"], "120");
//! # }
//! ```

mod constraints;
mod entry;
mod future;
mod lane;
mod layer;
mod learner;
mod limit;
mod meter;
mod model;
mod permit;
mod quota;
mod quotas;
mod refusal;
mod request;
mod response;
mod service;
#[cfg(feature = "redis")]
mod shared;
mod short_hint;
mod slow_start;
#[cfg(feature = "redis")]
mod store;
mod table;
mod time;

use std::time::Duration;

pub use future::ResponseFuture;
pub use layer::RateLimitAwareLayer;
pub use limit::Limit;
pub use refusal::{Local429, Refusal, WaitForPermit};
pub use service::RateLimitAware;
#[cfg(feature = "redis")]
pub use store::{ErrorKind as RedisErrorKind, RedisStore, RedisStoreError};
#[cfg(feature = "redis")]
#[doc(hidden)]
pub use store::{Notify, Offer, Pace, Reservation};

/// Marks a `429 Too Many Requests` made by the gate itself, in the response's
/// extensions, so that callers can tell it from a server's 429: the request
/// never reached the server.
///
/// ```
/// # use http::Response;
/// use tower_backoff::LocalRateLimited;
/// # let res: Response<()> = Response::new(());
/// if let Some(local) = res.extensions().get::<LocalRateLimited>() {
///     println!("not sent; the gate expects a wait of {:?}", local.wait);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalRateLimited {
    /// How long the request would have had to wait (its `Retry-After`,
    /// before rounding up to whole seconds).
    pub wait: Duration,
}

/// Set by the gate on a server's throttle whose wait hint it reads as an
/// upper bound: when, by the gate's own reading of the key, a retry of the
/// request could go. [`HttpClassifier`](crate::classify::HttpClassifier)
/// takes it as the wait in place of the server's, so that
/// [`BackoffRetryLayer`](crate::BackoffRetryLayer) above the gate does not
/// sleep out a whole second the server only rounded up to.
///
/// `Retry-After` counts whole seconds: a server whose next slot is 10 ms
/// away can only say `1`. The gate tests such a hint (a pause of a few
/// intervals of the rate it learns, then one probe) and paces the key
/// itself; a retry that comes back early waits in the gate's line, and
/// goes when the gate lets it — at once if the probe was accepted, at the
/// end of the hint if it was refused. Only a hint of one second or less,
/// and only when the gate's figure is the shorter, is vouched for this way.
///
/// ```
/// # use http::Response;
/// use tower_backoff::GateRetryAfter;
/// # let res: Response<()> = Response::new(());
/// if let Some(gate) = res.extensions().get::<GateRetryAfter>() {
///     println!("the server said wait; the gate expects room in {:?}", gate.retry_after);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateRetryAfter {
    /// How long until the gate expects to let a retry of the request go,
    /// behind the requests already waiting, from when the answer came.
    pub retry_after: Duration,
}

/// A snapshot of a gate's shared state, from
/// [`RateLimitAwareLayer::stats`] or [`RateLimitAware::stats`]. Taking it
/// walks every key: meant for monitoring and tests, not per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GateStats {
    /// Keys remembered (bounded by `max_keys`, plus keys in use).
    pub keys: usize,
    /// Keys held by a server hint or out of quota right now.
    pub limited_keys: usize,
    /// Requests waiting for a release.
    pub waiting: usize,
    /// Requests released and not yet answered, of keys the gate paces or
    /// probes: a key about which nothing is known sends its requests by a
    /// lock-free fast lane that does not count them.
    pub in_flight: usize,
}
