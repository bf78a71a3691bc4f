//! [`BackoffRetryLayer`]: retry with a backoff schedule, jitter, limits, a
//! shared budget, `Retry-After`, and safe handling of non-idempotent and
//! non-replayable requests.
//!
//! The layer is also the [`tower::retry::Policy`]: `.layer(BackoffRetryLayer::..)`
//! wraps a service in `tower::retry::Retry<BackoffRetryLayer, S>`, and
//! `tower::retry::RetryLayer::new(BackoffRetryLayer::..)` works too.
//!
//! For every failed attempt the policy, in order: classifies the result
//! ([`HttpClassifier`] by default); stops if it is not retryable, if the
//! request is not idempotent and the failure does not prove it unprocessed,
//! if `max_attempts` is reached, or if the server's `Retry-After` exceeds the
//! cap; draws the delay from the schedule and jitter, and if the server's
//! `Retry-After` is longer, waits that plus a random share of the jitter
//! (so requests released together do not return together); stops if the
//! next attempt would start after `max_elapsed`; asks the budget; and finally
//! waits and retries.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//! use tower_backoff::BackoffRetryLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let counter = calls.clone();
//! let flaky = service_fn(move |_req: http::Request<String>| {
//!     let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     async move {
//!         let status = if n < 2 { 503 } else { 200 };
//!         Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
//!     }
//! });
//! let mut svc = ServiceBuilder::new()
//!     .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!     .service(flaky);
//! let res = svc.ready().await.unwrap().call(http::Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), 200);
//! assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
//! # }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::budget::{RetryBudget, RetryCost};
use crate::classify::{FnClassifier, HttpClassifier};
use crate::schedule::{Constant, Decorrelated, Exponential, Fibonacci, Linear};
use crate::{BackoffRng, Jitter, Schedule};

mod event;
mod future;
mod policy;
mod request;

pub use event::{GiveUp, RetryEvent};
pub use future::Backoff;
#[cfg(feature = "reqwest-middleware")]
pub(crate) use request::is_idempotent_request;
pub use request::{Attempt, Idempotency, ReplayBody, RetryRequest};

type Hook = Arc<dyn Fn(&RetryEvent) + Send + Sync>;
type GiveUpHook = Arc<dyn Fn(GiveUp) + Send + Sync>;

/// Retry with backoff: a [`tower::Layer`] and the [`tower::retry::Policy`]
/// it installs.
///
/// Defaults: 5 attempts in all (`max_attempts` of the AI-API retry article's
/// client), [`Jitter::Full`]
/// (none for [`decorrelated`](Self::decorrelated), which is its own jitter),
/// `Retry-After` honoured up to the schedule's cap, no time limit, no budget,
/// [`HttpClassifier`], [`Idempotency::Auto`], an entropy-seeded random source.
///
/// Clones share the configuration and the budget; each request gets its own
/// copy of the per-request state (attempt count, start time, last delay).
pub struct BackoffRetryLayer<C = HttpClassifier> {
    config: Arc<Config>,
    classifier: C,
    state: RequestState,
}

/// Aligned to a cache line so that the reference count in front of it,
/// bumped for every request, does not share a line with the settings.
#[derive(Clone)]
#[repr(align(64))]
struct Config {
    schedule: Arc<dyn Schedule + Send + Sync>,
    jitter: Jitter,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
    max_retry_after: Option<Duration>,
    budget: Option<Arc<dyn RetryBudget>>,
    honor_retry_after: bool,
    idempotency: Idempotency,
    on_retry: Option<Hook>,
    on_give_up: Option<GiveUpHook>,
    /// What the constructor found wrong with its arguments (base above the
    /// cap, a zero duration), reported with the other settings' problems.
    schedule_problem: Option<String>,
    /// Whether the settings' problems were reported (once per configuration).
    warned: Arc<AtomicBool>,
    seed: u64,
    /// Numbers the requests that need randomness, so that each gets its own
    /// stream derived from `seed` without a shared lock.
    streams: Arc<AtomicU64>,
}

/// Per-request state; tower clones the policy for every request, so what
/// only a retry needs is boxed, made at the first retry (nothing is
/// allocated for a request answered at once).
#[derive(Clone, Default)]
struct RequestState {
    /// When the first attempt began (with `max_elapsed` only).
    start: Option<Instant>,
    retrying: Option<Box<Retrying>>,
}

/// What a request that has been retried carries.
#[derive(Clone)]
struct Retrying {
    /// Attempts completed so far.
    attempts: u32,
    prev_delay: Duration,
    last_cost: Option<RetryCost>,
    rng: BackoffRng,
}

impl RequestState {
    /// Attempts completed so far, as of the last retry.
    #[inline]
    fn attempts(&self) -> u32 {
        self.retrying.as_ref().map_or(0, |r| r.attempts)
    }
}

impl<C: Clone> Clone for BackoffRetryLayer<C> {
    #[inline]
    fn clone(&self) -> Self {
        BackoffRetryLayer {
            config: self.config.clone(),
            classifier: self.classifier.clone(),
            state: self.state.clone(),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for BackoffRetryLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("BackoffRetryLayer")
            .field("max_delay", &c.schedule.max_delay())
            .field("jitter", &c.jitter)
            .field("max_attempts", &c.max_attempts)
            .field("max_elapsed", &c.max_elapsed)
            .field("honor_retry_after", &c.honor_retry_after)
            .field("idempotency", &c.idempotency)
            .field("budget", &c.budget.is_some())
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl BackoffRetryLayer {
    /// Retry along any [`Schedule`].
    pub fn new<S: Schedule + Send + Sync + 'static>(schedule: S) -> Self {
        BackoffRetryLayer {
            config: Arc::new(Config {
                schedule: Arc::new(schedule),
                jitter: Jitter::Full,
                max_attempts: 5,
                max_elapsed: None,
                max_retry_after: None,
                budget: None,
                honor_retry_after: true,
                idempotency: Idempotency::Auto,
                on_retry: None,
                on_give_up: None,
                schedule_problem: None,
                warned: Arc::new(AtomicBool::new(false)),
                seed: BackoffRng::from_entropy().next_u64(),
                streams: Arc::new(AtomicU64::new(0)),
            }),
            classifier: HttpClassifier,
            state: RequestState::default(),
        }
    }

    /// `base × 2^n`, capped at `max_delay` ([`Exponential`]).
    ///
    /// A `base` above `max_delay`, or a zero `base`, is logged once as a
    /// `tracing` warning when the layer wraps a service.
    pub fn exponential(base: Duration, max_delay: Duration) -> Self {
        Self::new(Exponential::new(base, max_delay)).check_base("base", base, max_delay)
    }

    /// `step × (n + 1)`, capped at `max_delay` ([`Linear`]).
    pub fn linear(step: Duration, max_delay: Duration) -> Self {
        Self::new(Linear::new(step, max_delay)).check_base("step", step, max_delay)
    }

    /// The same `delay` before every retry ([`Constant`]); `Retry-After` up to
    /// `delay` is honoured (raise it with [`max_retry_after`](Self::max_retry_after)).
    pub fn constant(delay: Duration) -> Self {
        Self::new(Constant::new(delay)).check_base("delay", delay, delay)
    }

    /// `base × F(n + 1)`, capped at `max_delay` ([`Fibonacci`]).
    pub fn fibonacci(base: Duration, max_delay: Duration) -> Self {
        Self::new(Fibonacci::new(base, max_delay)).check_base("base", base, max_delay)
    }

    /// AWS decorrelated jitter, `min(max_delay, U(base, 3 × previous))`
    /// ([`Decorrelated`]); jitter defaults to [`Jitter::None`] since the
    /// schedule is random by itself.
    pub fn decorrelated(base: Duration, max_delay: Duration) -> Self {
        Self::new(Decorrelated::new(base, max_delay))
            .jitter(Jitter::None)
            .check_base("base", base, max_delay)
    }

    /// Notes a constructor argument that makes the schedule degenerate, for
    /// the warning [`fresh`](Self::fresh) logs.
    fn check_base(mut self, name: &str, base: Duration, max_delay: Duration) -> Self {
        let problem = if base.is_zero() {
            Some(format!(
                "{name} is zero: retries follow each other without a pause"
            ))
        } else if base > max_delay {
            Some(format!(
                "{name} {base:?} is above the cap {max_delay:?}: every delay is the cap (arguments swapped?)"
            ))
        } else {
            None
        };
        self.config_mut().schedule_problem = problem;
        self
    }
}

impl<C> BackoffRetryLayer<C> {
    fn config_mut(&mut self) -> &mut Config {
        let config = Arc::make_mut(&mut self.config);
        // A changed configuration is checked anew.
        config.warned = Arc::new(AtomicBool::new(false));
        config
    }

    /// Attempts in all, the first included (default 5). `0` and `1` both
    /// mean "never retry".
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config_mut().max_attempts = attempts;
        self
    }

    /// No attempt starts later than `elapsed` after the first one started,
    /// and no wait runs past that deadline (default: no limit). Measured on
    /// `tokio::time::Instant`, so paused-clock tests and wall-clock jumps
    /// behave.
    pub fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.config_mut().max_elapsed = Some(elapsed);
        self
    }

    /// How delays are randomised (default [`Jitter::Full`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.config_mut().jitter = jitter;
        self
    }

    /// Limit retries with a budget shared by every clone of this layer and of
    /// its services: any [`tower::retry::budget::Budget`] such as `TpsBudget`,
    /// or [`GrpcThrottle`](crate::budget::GrpcThrottle) /
    /// [`RetryQuota`](crate::budget::RetryQuota). Default: none.
    pub fn budget<B: RetryBudget + 'static>(mut self, budget: B) -> Self {
        self.config_mut().budget = Some(Arc::new(budget));
        self
    }

    /// Honour the server's `Retry-After` / `retry-after-ms` /
    /// `grpc-retry-pushback-ms` (default true): the wait is never shorter than
    /// the server's. When the jittered delay is shorter, the wait is the hint
    /// plus a random share of the jitter's width for `max(delay, hint / 2)`,
    /// within the cap, so that requests released by the same whole-second
    /// `Retry-After` do not return in the same instant. A server asking for
    /// longer than the cap gets its response returned at once instead of a
    /// long sleep ([`GiveUp::RetryAfterTooLong`]). One exception: a
    /// [`RateLimitAwareLayer`](crate::RateLimitAwareLayer) below that reads a
    /// short hint as an upper bound (a whole-second `Retry-After` it probes)
    /// marks the response with its own, shorter wait
    /// ([`GateRetryAfter`](crate::GateRetryAfter)), and the default
    /// classifier takes that instead: the retry then waits in the gate,
    /// which lets it go when the key has room.
    pub fn honor_retry_after(mut self, honor: bool) -> Self {
        self.config_mut().honor_retry_after = honor;
        self
    }

    /// The longest server-requested wait to honour (default: the schedule's
    /// `max_delay`, as in the AI-API retry article's client). Longer requests end
    /// the retries.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.config_mut().max_retry_after = Some(cap);
        self
    }

    /// Which requests may be sent twice (default [`Idempotency::Auto`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_backoff::{BackoffRetryLayer, Idempotency};
    ///
    /// // Every endpoint behind this client de-duplicates requests itself.
    /// let layer = BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
    ///     .idempotency(Idempotency::AllIdempotent);
    /// # let _ = layer;
    /// ```
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.config_mut().idempotency = idempotency;
        self
    }

    /// Seed the random source, making delays reproducible for a given order
    /// of requests (default: seeded from the OS).
    pub fn seed(mut self, seed: u64) -> Self {
        let config = self.config_mut();
        config.seed = seed;
        config.streams = Arc::new(AtomicU64::new(0));
        self
    }

    /// Call `hook` before every retry with the attempt about to be sent, its
    /// delay and the reason (for metrics; keep it quick, it runs inline).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use tower_backoff::BackoffRetryLayer;
    ///
    /// let retries = Arc::new(AtomicU64::new(0));
    /// let counter = retries.clone();
    /// let layer = BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
    ///     .on_retry(move |event| {
    ///         counter.fetch_add(1, Ordering::Relaxed);
    ///         eprintln!("attempt {} in {:?} after {:?}", event.attempt, event.delay, event.reason);
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn on_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RetryEvent) + Send + Sync + 'static,
    {
        self.config_mut().on_retry = Some(Arc::new(hook));
        self
    }

    /// Call `hook` when the layer stops retrying a request that failed in a
    /// retryable way and returns its last response or error, with the reason
    /// ([`GiveUp`]): attempts or time used up, the budget, a server asking to
    /// wait longer than the cap, a request unsafe to replay, the schedule's
    /// own end. Not called for successes or for failures that are never
    /// retried (a 404). The same give-ups are `tracing` events (debug level),
    /// but the hook needs no subscriber. Keep it quick: it runs inline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_backoff::retry::GiveUp;
    /// use tower_backoff::BackoffRetryLayer;
    ///
    /// let layer = BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
    ///     .on_give_up(|why| {
    ///         if why == GiveUp::RetryAfterTooLong {
    ///             eprintln!("the server asked for a longer wait than the cap; answer returned");
    ///         }
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn on_give_up<F>(mut self, hook: F) -> Self
    where
        F: Fn(GiveUp) + Send + Sync + 'static,
    {
        self.config_mut().on_give_up = Some(Arc::new(hook));
        self
    }

    /// Replace the classification with a closure returning a
    /// [`Decision`](crate::classify::Decision).
    /// This also makes the layer usable for request types other than HTTP
    /// (they implement [`RetryRequest`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
    /// use tower_backoff::{classify::{Decision, Reason}, BackoffRetryLayer, RetryRequest};
    ///
    /// #[derive(Debug)]
    /// struct Query(&'static str);
    /// impl RetryRequest for Query {
    ///     fn try_clone(&self) -> Option<Self> { Some(Query(self.0)) }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let layer = BackoffRetryLayer::constant(Duration::from_millis(10))
    ///     .classify(|_req: &Query, res: Result<&u32, &String>| match res {
    ///         Ok(_) => Decision::success(),
    ///         Err(e) if e == "busy" => Decision::retry(Reason::Custom("busy")),
    ///         Err(_) => Decision::fail(Reason::Error),
    ///     });
    /// let mut tries = 0;
    /// let mut svc = ServiceBuilder::new().layer(layer).service(service_fn(move |q: Query| {
    ///     tries += 1;
    ///     let out = if tries < 3 { Err("busy".to_string()) } else { Ok(q.0.len() as u32) };
    ///     async move { out }
    /// }));
    /// assert_eq!(svc.ready().await.unwrap().call(Query("four")).await, Ok(4));
    /// # }
    /// ```
    pub fn classify<F>(self, classifier: F) -> BackoffRetryLayer<FnClassifier<F>> {
        self.classifier(FnClassifier(classifier))
    }

    /// Replace the classification with any [`Classify`](crate::classify::Classify) implementation.
    pub fn classifier<C2>(self, classifier: C2) -> BackoffRetryLayer<C2> {
        BackoffRetryLayer {
            config: self.config,
            classifier,
            state: self.state,
        }
    }
}

impl<C> BackoffRetryLayer<C> {
    /// This layer behind a [`BufferBodyLayer`](crate::BufferBodyLayer):
    /// request bodies up to `max_bytes` are buffered so that streaming body
    /// types (axum, tonic, hyper) can be replayed; larger bodies are sent
    /// once, unchanged, and never retried.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::ServiceBuilder;
    /// use tower_backoff::BackoffRetryLayer;
    ///
    /// let layer = BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
    ///     .buffered(256 * 1024);
    /// # let _ = ServiceBuilder::new().layer(layer);
    /// ```
    pub fn buffered(self, max_bytes: usize) -> tower_layer::Stack<Self, crate::BufferBodyLayer> {
        tower_layer::Stack::new(self, crate::BufferBodyLayer::new(max_bytes))
    }
}

impl<C: Clone> BackoffRetryLayer<C> {
    /// A copy with no per-request state: the policy a new service (or the
    /// reqwest-middleware adapter) starts from.
    pub(crate) fn fresh(&self) -> Self {
        self.config.warn_once_about_settings();
        let mut policy = self.clone();
        policy.state = RequestState::default();
        policy
    }
}

impl Config {
    /// Settings that are legal but almost surely not what the user meant.
    fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self.schedule_problem.iter().cloned().collect();
        if self.schedule_problem.is_none() && self.schedule.max_delay().is_zero() {
            problems.push("the schedule's cap is zero: every retry is sent at once".into());
        }
        if self.max_elapsed.is_some_and(|d| d.is_zero()) {
            problems.push("max_elapsed is zero: no request is ever retried".into());
        }
        if self.honor_retry_after && self.max_retry_after.is_some_and(|d| d.is_zero()) {
            problems.push(
                "max_retry_after is zero: any Retry-After ends the retries (honor_retry_after(false) ignores it instead)".into(),
            );
        }
        if let Jitter::Proportional { low, high } = self.jitter {
            if !(0.0..=f64::MAX).contains(&low) || !(0.0..=f64::MAX).contains(&high) || low > high {
                problems.push(format!(
                    "Jitter::Proportional {{ low: {low}, high: {high} }}: bounds must be finite, non-negative and low ≤ high"
                ));
            }
        }
        problems
    }

    /// Logs [`problems`](Self::problems) as one `tracing` warning, the first
    /// time a service is built from this configuration.
    fn warn_once_about_settings(&self) {
        if self.warned.swap(true, Ordering::Relaxed) {
            return;
        }
        let problems = self.problems();
        if !problems.is_empty() {
            tracing::warn!(
                target: "tower_backoff::retry",
                problems = %problems.join("; "),
                "BackoffRetryLayer built with settings that are probably a mistake"
            );
        }
    }
}

impl<S, C: Clone> tower_layer::Layer<S> for BackoffRetryLayer<C> {
    type Service = tower::retry::Retry<BackoffRetryLayer<C>, S>;

    fn layer(&self, inner: S) -> Self::Service {
        tower::retry::Retry::new(self.fresh(), inner)
    }
}
