//! Request extensions that the layers read: what a request costs and when it
//! must be done.

use tokio::time::Instant;

/// The tokens a request will spend, in its extensions: for an LLM call, the
/// prompt's tokens plus `max_tokens`. The rate-limit gate takes it from every
/// tokens limit (stated by the server, as OpenAI's and Anthropic's headers do,
/// or configured with [`Limit::tokens`](crate::rate_limit::Limit::tokens));
/// a requests limit counts 1 per request whatever the cost. Absent, the cost
/// is 0 (or what the layer's `cost_fn` says).
///
/// ```
/// use tower_backoff::RequestCost;
///
/// let prompt_tokens = 1_200;
/// let max_tokens = 800;
/// let req = http::Request::builder()
///     .uri("https://api.openai.com/v1/chat/completions")
///     .extension(RequestCost(prompt_tokens + max_tokens))
///     .body(String::new())
///     .unwrap();
/// assert_eq!(req.extensions().get::<RequestCost>(), Some(&RequestCost(2_000)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RequestCost(pub u64);

/// When a request must be done, in its extensions. No layer waits past it:
/// the rate-limit gate releases a request whose wait would run past its
/// deadline when the deadline comes (or refuses it at once with a local
/// 429, with [`max_wait`](crate::RateLimitAwareLayer::max_wait)).
/// [`BackoffRetryLayer`](crate::BackoffRetryLayer) sets it from its
/// `max_elapsed` on every attempt, unless an earlier one is already there;
/// users may set it themselves.
///
/// ```
/// use std::time::Duration;
/// use tower_backoff::Deadline;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
/// let req = http::Request::builder()
///     .extension(Deadline(deadline))
///     .body(String::new())
///     .unwrap();
/// assert_eq!(req.extensions().get::<Deadline>(), Some(&Deadline(deadline)));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(pub Instant);
