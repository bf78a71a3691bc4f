//! The retry stacks under test, each wrapped around the same transport.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::retry::RetryLayer;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceBuilder};
use tower_backoff::{BackoffRetryLayer, CircuitBreakerLayer, RateLimitAwareLayer};

use super::article::{ArticlePolicy, Strategy};
use super::tower_reference::TowerPolicy;

/// Any error a transport or a retry stack returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client for the rate-limited server: hyper over loopback in the
/// showdown, the bucket itself in the simulation. Contenders wrap it.
pub type Transport = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, BoxError>;

/// Smallest and largest delay of the exponential contenders that are not
/// the article's: the crate's quick-start values.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What a contender may need to build its stack.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Seed for every random draw.
    pub seed: u64,
    /// One "article second" (a second of the article's client) on this server (see [`super::article`]).
    pub article_second: Duration,
}

/// One retry stack.
pub struct Contender {
    /// Short name, for `--only`.
    pub id: &'static str,
    /// Name in the table and chart.
    pub label: &'static str,
    wrap: fn(Transport, &Setup) -> Transport,
}

impl Contender {
    /// This contender's stack around `transport`.
    pub fn wrap(&self, transport: Transport, setup: &Setup) -> Transport {
        (self.wrap)(transport, setup)
    }
}

/// Every contender, in table order.
pub fn all() -> Vec<Contender> {
    vec![
        contender("none", "no retry", |t, _| t),
        contender("article-constant", "article constant 1s", |t, s| {
            article_client(t, s, Strategy::Constant(1.0), false)
        }),
        contender("article-linear", "article linear 2s", |t, s| {
            article_client(t, s, Strategy::Linear(2.0), false)
        }),
        contender("article-exp", "article exponential 1s", |t, s| {
            article_client(t, s, Strategy::Exponential(1.0), false)
        }),
        contender(
            "article-exp-jitter",
            "article exp 1s ×U(.5,1.5)",
            |t, s| article_client(t, s, Strategy::Exponential(1.0), true),
        ),
        contender(
            "tower",
            "tower ExponentialBackoff+TpsBudget",
            tower_reference,
        ),
        contender(
            "backoff-full",
            "BackoffRetry exp, full jitter",
            backoff_full,
        ),
        contender(
            "backoff-decorrelated",
            "BackoffRetry decorrelated",
            backoff_decorrelated,
        ),
        contender(
            "backoff+gate",
            "BackoffRetry + RateLimitAware",
            backoff_with_gate,
        ),
        contender(
            "backoff+breaker",
            "BackoffRetry + CircuitBreaker",
            backoff_with_breaker,
        ),
        contender(
            "backoff+breaker+gate",
            "BackoffRetry + Breaker + RateLimit",
            backoff_breaker_gate,
        ),
    ]
}

/// The `--only` ids, for the usage text.
pub fn ids() -> String {
    all().iter().map(|c| c.id).collect::<Vec<_>>().join(", ")
}

fn contender(
    id: &'static str,
    label: &'static str,
    wrap: fn(Transport, &Setup) -> Transport,
) -> Contender {
    Contender { id, label, wrap }
}

fn article_client(
    transport: Transport,
    setup: &Setup,
    strategy: Strategy,
    jitter: bool,
) -> Transport {
    let policy = ArticlePolicy::new(strategy, jitter, setup.article_second, setup.seed);
    with_retry(policy, transport)
}

fn tower_reference(transport: Transport, setup: &Setup) -> Transport {
    let policy =
        TowerPolicy::new(BACKOFF_MIN, BACKOFF_MAX, setup.seed).expect("BACKOFF_MIN ≤ BACKOFF_MAX");
    with_retry(policy, transport)
}

/// `BackoffRetryLayer` as in the crate's quick start, jitter left at its
/// default (full).
fn backoff_full(transport: Transport, setup: &Setup) -> Transport {
    let layer = BackoffRetryLayer::exponential(BACKOFF_MIN, BACKOFF_MAX).seed(setup.seed);
    layered(transport, layer)
}

/// AWS decorrelated jitter: the schedule draws each delay itself.
fn backoff_decorrelated(transport: Transport, setup: &Setup) -> Transport {
    let layer = BackoffRetryLayer::decorrelated(BACKOFF_MIN, BACKOFF_MAX).seed(setup.seed);
    layered(transport, layer)
}

/// The crate's quick start: `BackoffRetryLayer` over `RateLimitAwareLayer`.
fn backoff_with_gate(transport: Transport, setup: &Setup) -> Transport {
    over_gate(transport, RateLimitAwareLayer::new(), setup.seed)
}

/// The quick start's `BackoffRetryLayer` over `gate`, around `transport`.
pub fn over_gate(transport: Transport, gate: RateLimitAwareLayer, seed: u64) -> Transport {
    let stack = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(BACKOFF_MIN, BACKOFF_MAX).seed(seed))
        .layer(gate);
    layered(transport, stack)
}

/// The breaker as the showdown sets it: the defaults (open at 50 % failed
/// of at least 20 calls) over a 1 s window, breaking for 1 s at first.
fn breaker() -> CircuitBreakerLayer {
    CircuitBreakerLayer::new()
        .sampling_duration(Duration::from_secs(1))
        .break_duration(Duration::from_secs(1))
}

/// Retry outside, breaker inside: the retry layer waits for the breaker's
/// probe instead of knocking on a server that is down.
fn backoff_with_breaker(transport: Transport, setup: &Setup) -> Transport {
    let stack = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(BACKOFF_MIN, BACKOFF_MAX).seed(setup.seed))
        .layer(breaker());
    layered(transport, stack)
}

/// All three, in the recommended order: retry → breaker → gate.
fn backoff_breaker_gate(transport: Transport, setup: &Setup) -> Transport {
    let stack = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(BACKOFF_MIN, BACKOFF_MAX).seed(setup.seed))
        .layer(breaker())
        .layer(RateLimitAwareLayer::new());
    layered(transport, stack)
}

/// `layer` around `transport`, boxed.
fn layered<L>(transport: Transport, layer: L) -> Transport
where
    L: Layer<Transport>,
    L::Service: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    <L::Service as Service<Request<Full<Bytes>>>>::Future: Send + 'static,
{
    BoxCloneService::new(layer.layer(transport))
}

fn with_retry<P>(policy: P, transport: Transport) -> Transport
where
    P: tower::retry::Policy<Request<Full<Bytes>>, Response<Full<Bytes>>, BoxError>
        + Clone
        + Send
        + 'static,
    P::Future: Send,
{
    layered(transport, RetryLayer::new(policy))
}
