//! [`RateLimitAwareLayer`] and its builder methods.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use tower_layer::Layer;

use super::limit::Limit;
use super::refusal::{Local429, WaitForPermit};
use super::request::RequestFns;
use super::table::{Config, Gate};
use super::{GateStats, RateLimitAware};
use crate::key::KeyFn;

/// Default for [`RateLimitAwareLayer::max_hold`]: 5 min.
const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(5 * 60);
/// Default for [`RateLimitAwareLayer::max_keys`].
const DEFAULT_MAX_KEYS: usize = 10_000;

/// A [`tower::Layer`](tower_layer::Layer) that reads what servers say about
/// their limits and holds or paces requests so that calls that can only get
/// `429 Too Many Requests` are not sent. See the [module docs](super) for
/// the behaviour.
///
/// All services made by one layer, and all their clones, share one state.
/// Changing a setting starts a fresh state, so configure the layer before
/// cloning it or making services.
///
/// Defaults: key = request authority, requests wait for their permit (no
/// [`max_wait`](Self::max_wait), so any response body type works),
/// [`max_hold`](Self::max_hold) 5 min, [`slow_start`](Self::slow_start) on,
/// [`max_keys`](Self::max_keys) 10,000.
///
/// `R` is [`WaitForPermit`] until [`max_wait`](Self::max_wait) makes it
/// [`Local429`].
pub struct RateLimitAwareLayer<R = WaitForPermit> {
    gate: Arc<Gate>,
    fns: RequestFns,
    refusal: PhantomData<fn() -> R>,
}

impl<R> Clone for RateLimitAwareLayer<R> {
    fn clone(&self) -> Self {
        RateLimitAwareLayer {
            gate: self.gate.clone(),
            fns: self.fns.clone(),
            refusal: PhantomData,
        }
    }
}

impl RateLimitAwareLayer {
    /// A layer with the defaults above.
    pub fn new() -> Self {
        RateLimitAwareLayer {
            gate: Gate::new(Config {
                max_wait: Duration::MAX,
                refuses: false,
                max_hold: DEFAULT_MAX_HOLD,
                slow_start: true,
                max_keys: DEFAULT_MAX_KEYS,
                limits: Arc::from(Vec::new()),
                #[cfg(feature = "redis")]
                store: None,
            }),
            fns: RequestFns::default(),
            refusal: PhantomData,
        }
    }
}

impl<R> RateLimitAwareLayer<R> {
    fn configure<R2>(self, f: impl FnOnce(&mut Config)) -> RateLimitAwareLayer<R2> {
        let mut config = self.gate.config.clone();
        f(&mut config);
        RateLimitAwareLayer {
            gate: Gate::new(config),
            fns: self.fns,
            refusal: PhantomData,
        }
    }

    /// The longest a request may wait for the gate. A request whose wait,
    /// as far as the gate can foresee it (a hold, the pace of the requests
    /// ahead of it), would be longer is answered at once, without reaching
    /// the inner service, with a local `429 Too Many Requests` carrying
    /// `Retry-After` (whole seconds, rounded up) and a [`LocalRateLimited`]
    /// extension. A waiting request is refused the same way as soon as a new
    /// hold makes its wait too long.
    ///
    /// Default: none — requests wait (up to [`max_hold`](Self::max_hold)).
    /// Setting it needs a response body type with a `Default` (an empty
    /// body for the local 429): `String`, `Full<Bytes>`, axum's and tonic's
    /// bodies do; hyper's `Incoming` does not (map it, e.g. to a `BoxBody`).
    /// `Duration::ZERO` never waits: held requests are answered 429 at once.
    ///
    /// [`LocalRateLimited`]: super::LocalRateLimited
    pub fn max_wait(self, max_wait: Duration) -> RateLimitAwareLayer<Local429> {
        self.configure(|c| {
            c.max_wait = max_wait;
            c.refuses = true;
        })
    }

    /// The longest a request waits in the gate, in all, and the longest
    /// hold any one response can cause: `Retry-After`, pushback and quota
    /// resets above it count as this long, and a stated quota never spaces
    /// releases further apart, so a malformed or hostile value never stalls
    /// a key for longer. A request that has waited `max_hold` is sent
    /// (or, with [`max_wait`](Self::max_wait), refused with a local 429),
    /// whatever the limits say. A request's [`Deadline`](crate::Deadline)
    /// bounds its wait the same way.
    ///
    /// Default: 5 min.
    pub fn max_hold(self, max_hold: Duration) -> Self {
        self.configure::<R>(|c| c.max_hold = max_hold)
    }

    /// Whether a key the gate knows nothing about starts like TCP slow
    /// start: one request in flight as a probe, then one more per two
    /// accepted responses (the window grows by half per round trip, as RFC
    /// 3742 grows large windows; while no response comes back, it still
    /// grows by one a second), until the server's headers or its first
    /// throttle say what the limit is.
    ///
    /// Default: on. Off, a new key takes the callers' full concurrency at
    /// once (a server whose burst is smaller answers the excess with 429).
    pub fn slow_start(self, enabled: bool) -> Self {
        self.configure::<R>(|c| c.slow_start = enabled)
    }

    /// How many keys the gate remembers. At the cap, idle keys are evicted,
    /// those that know nothing worth keeping first, then the least recently
    /// used. Keys with requests waiting or in flight are never evicted, so
    /// the count can exceed the cap only by the number of keys in use at
    /// that moment.
    ///
    /// Default: 10,000. Zero counts as one.
    pub fn max_keys(self, max_keys: usize) -> Self {
        self.configure::<R>(|c| c.max_keys = max_keys)
    }

    /// Chooses which requests share a limit. `key` gets the request head and
    /// returns anything hashable; requests with equal keys share a state.
    ///
    /// Default: the request URI's authority (`host:port`, ASCII case
    /// folded), else the `Host` header, else one key for all.
    ///
    /// ```
    /// use tower_backoff::RateLimitAwareLayer;
    ///
    /// // One limit per API key, as most LLM APIs count.
    /// let layer = RateLimitAwareLayer::new().key_fn(|parts: &http::request::Parts| {
    ///     parts.headers.get("authorization").map(|v| v.as_bytes().to_vec())
    /// });
    /// # let _ = layer;
    /// ```
    pub fn key_fn<F, K>(mut self, key: F) -> Self
    where
        F: Fn(&Parts) -> K + Send + Sync + 'static,
        K: Hash,
    {
        self.fns.key = KeyFn::custom(key);
        self
    }

    /// Adds a limit the caller knows, for every key: see [`Limit`].
    /// Repeatable; every limit binds, and so does whatever the server states
    /// (the tighter wins). A key under a configured requests limit starts
    /// without slow start.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_backoff::rate_limit::Limit;
    /// use tower_backoff::RateLimitAwareLayer;
    ///
    /// let layer = RateLimitAwareLayer::new()
    ///     .limit(Limit::requests(500, Duration::from_secs(60)))
    ///     .limit(Limit::tokens(200_000, Duration::from_secs(60)).burst(20_000));
    /// # let _ = layer;
    /// ```
    pub fn limit(self, limit: Limit) -> Self {
        if limit.rate().is_none() {
            tracing::warn!(
                ?limit,
                "rate limit: a limit of zero requests or tokens, or over zero time, is ignored"
            );
        }
        self.configure::<R>(|c| {
            let mut limits = c.limits.to_vec();
            limits.push(limit);
            c.limits = Arc::from(limits);
        })
    }

    /// What a request costs in tokens, for tokens limits, when it carries no
    /// [`RequestCost`](crate::RequestCost) extension (which wins). Without
    /// either, a request costs 0 tokens.
    ///
    /// ```
    /// use tower_backoff::RateLimitAwareLayer;
    ///
    /// // The client states its estimate in a header.
    /// let layer = RateLimitAwareLayer::new().cost_fn(|parts: &http::request::Parts| {
    ///     parts
    ///         .headers
    ///         .get("x-estimated-tokens")
    ///         .and_then(|v| v.to_str().ok()?.parse().ok())
    ///         .unwrap_or(0)
    /// });
    /// # let _ = layer;
    /// ```
    pub fn cost_fn<F>(mut self, cost: F) -> Self
    where
        F: Fn(&Parts) -> u64 + Send + Sync + 'static,
    {
        self.fns.set_cost(cost);
        self
    }

    /// Which resource a request belongs to, by the names servers give
    /// resources (GitHub's `x-ratelimit-resource`: `core`, `search`,
    /// `graphql`, …; matched with ASCII case folded). Limits and holds that
    /// a response states for a resource bind only requests of that
    /// resource; `None` binds a request by the host's limits alone.
    ///
    /// Default: learned from the responses — a request's method and first
    /// path segment (`GET /search/…`) belong to the resource that responses
    /// to that route named.
    ///
    /// ```
    /// use tower_backoff::RateLimitAwareLayer;
    ///
    /// let layer = RateLimitAwareLayer::new().scope_fn(|parts: &http::request::Parts| {
    ///     let path = parts.uri.path();
    ///     Some(if path.starts_with("/search/") {
    ///         "search"
    ///     } else if path == "/graphql" {
    ///         "graphql"
    ///     } else {
    ///         "core"
    ///     })
    /// });
    /// # let _ = layer;
    /// ```
    pub fn scope_fn<F, S>(mut self, scope: F) -> Self
    where
        F: Fn(&Parts) -> Option<S> + Send + Sync + 'static,
        S: AsRef<str>,
    {
        self.fns.set_scope(scope);
        self
    }

    /// Shares what the gate knows with the gates of other processes through
    /// Redis (feature `redis`): holds, the learned rate, the responses the
    /// server accepted, and the pace of every limit — the configured
    /// [`Limit`]s, the rate of a stated quota, the learned rate — reserved in
    /// Redis so that all processes together keep to it. Each gate still
    /// queues, orders and cancels its own requests. Keys are hashed alike in
    /// every process and named `{prefix}:{key hex}:{limit}` in Redis.
    ///
    /// While Redis is unavailable, the gate decides on its own state, as
    /// without a store (see [`RedisStore`](super::RedisStore)).
    ///
    /// Default: none — nothing is shared, and nothing is added to a
    /// request's path.
    ///
    /// ```no_run
    /// use tower_backoff::{RateLimitAwareLayer, RedisStore};
    ///
    /// # async fn run() -> Result<(), tower_backoff::rate_limit::RedisStoreError> {
    /// let store = RedisStore::connect("redis://127.0.0.1:6379").await?.prefix("my-app");
    /// let layer = RateLimitAwareLayer::new().store(store);
    /// # let _ = layer;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    pub fn store(self, store: super::RedisStore) -> Self {
        self.configure::<R>(|c| c.store = Some(store))
    }

    /// A snapshot of the shared state; see [`GateStats`].
    pub fn stats(&self) -> GateStats {
        self.gate.stats()
    }

    pub(super) fn wrap<S>(&self, inner: S) -> RateLimitAware<S, R> {
        RateLimitAware::from_parts(inner, self.gate.clone(), self.fns.clone())
    }
}

impl Default for RateLimitAwareLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, R> Layer<S> for RateLimitAwareLayer<R> {
    type Service = RateLimitAware<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        self.wrap(inner)
    }
}

impl<R> fmt::Debug for RateLimitAwareLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.gate.config;
        f.debug_struct("RateLimitAwareLayer")
            .field("max_wait", &c.max_wait)
            .field("max_hold", &c.max_hold)
            .field("slow_start", &c.slow_start)
            .field("max_keys", &c.max_keys)
            .field("limits", &c.limits)
            .field("store", &StoreField(c))
            .field("key", &self.fns.key)
            .finish()
    }
}

/// The store, if any, for `Debug` (a field only with feature `redis`).
struct StoreField<'a>(&'a Config);

impl fmt::Debug for StoreField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.0.store {
            return store.fmt(f);
        }
        let _ = self.0;
        f.write_str("None")
    }
}
