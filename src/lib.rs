//! # tower-backoff
//!
//! Tower middleware for calling services that say "slow down".
//!
//! * [`BackoffRetryLayer`] retries failed calls after a delay drawn from a
//!   pluggable [`Schedule`], randomised by [`Jitter`], within attempt, time and
//!   budget limits, honouring `Retry-After`, and never replaying a request
//!   that is unsafe to send twice.
//! * `RateLimitAwareLayer` reads what servers say about their limits and
//!   holds or paces requests so the client stops sending calls that can only
//!   get `429 Too Many Requests`.
//!
//! ```ignore
//! let client = tower::ServiceBuilder::new()
//!     .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!     .layer(RateLimitAwareLayer::new())
//!     .service(http_client);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod body;
pub mod budget;
pub mod classify;
mod duration;
pub mod headers;
mod jitter;
pub mod rate_limit;
pub mod retry;
mod rng;
pub mod schedule;

pub use body::BufferBodyLayer;
pub use jitter::Jitter;
pub use rate_limit::{LocalRateLimited, RateLimitAware, RateLimitAwareLayer};
pub use retry::{Attempt, BackoffRetryLayer, Idempotency, ReplayBody, RetryRequest};
pub use rng::BackoffRng;
pub use schedule::Schedule;
