//! [`CircuitBreakerLayer`] and its builder methods.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use tower_layer::Layer;

use super::breaker::{Breaker, Hook};
use super::events::{BreakerStats, StateChange};
use super::open::{Local503, OpenError};
use super::outcome::ServerErrors;
use super::service::CircuitBreaker;
use super::state::Settings;
use crate::duration::mul_u64;
use crate::key::KeyFn;

/// The builder's values as given; [`Options::settings`] makes them safe.
#[derive(Debug, Clone, Copy)]
struct Options {
    failure_ratio: f64,
    minimum_throughput: u32,
    sampling_duration: Duration,
    break_duration: Duration,
    max_break_duration: Option<Duration>,
    half_open_probes: u32,
    slow_call: Option<Duration>,
    max_keys: usize,
    /// For the breaks' jitter; `None`: from the OS.
    seed: Option<u64>,
}

/// Defaults, as Polly v8's circuit breaker, with resilience4j's number of
/// half-open calls.
const DEFAULTS: Options = Options {
    failure_ratio: 0.5,
    minimum_throughput: 20,
    sampling_duration: Duration::from_secs(10),
    break_duration: Duration::from_secs(5),
    max_break_duration: None,
    half_open_probes: 5,
    slow_call: None,
    max_keys: 10_000,
    seed: None,
};

/// Without [`max_break_duration`](CircuitBreakerLayer::max_break_duration),
/// breaks grow up to this many times `break_duration`.
const MAX_BREAK_FACTOR: u64 = 10;

impl Options {
    fn settings(&self) -> Settings {
        let failure_ratio = if self.failure_ratio.is_nan() {
            DEFAULTS.failure_ratio
        } else {
            self.failure_ratio.clamp(0.0, 1.0)
        };
        let max_break = self
            .max_break_duration
            .unwrap_or_else(|| mul_u64(self.break_duration, MAX_BREAK_FACTOR));
        Settings {
            failure_ratio,
            minimum_throughput: self.minimum_throughput.max(1),
            sampling_duration: self.sampling_duration,
            break_duration: self.break_duration,
            max_break_duration: max_break.max(self.break_duration),
            half_open_probes: self.half_open_probes.max(1),
            slow_call: self.slow_call,
        }
    }
}

/// A [`tower::Layer`](tower_layer::Layer) that stops calling a failing
/// service for a while, then probes it. See the [module docs](super) for
/// the behaviour.
///
/// All services made by one layer, and all their clones, share one state.
/// Changing a setting starts a fresh state, so configure the layer before
/// cloning it or making services.
///
/// | method | default |
/// | --- | --- |
/// | [`failure_ratio`](Self::failure_ratio) | 0.5 |
/// | [`minimum_throughput`](Self::minimum_throughput) | 20 calls |
/// | [`sampling_duration`](Self::sampling_duration) | 10 s |
/// | [`break_duration`](Self::break_duration) | 5 s |
/// | [`max_break_duration`](Self::max_break_duration) | 10 × `break_duration` |
/// | [`half_open_probes`](Self::half_open_probes) | 5 at once |
/// | [`slow_call_threshold`](Self::slow_call_threshold) | off |
/// | [`classifier`](Self::classifier) | [`ServerErrors`]: 5xx and errors fail, 429 ignored |
/// | [`key_fn`](Self::key_fn) | the request authority |
/// | [`max_keys`](Self::max_keys) | 10,000 |
/// | [`open_as_error`](Self::open_as_error) | off: a local `503` |
/// | [`on_state_change`](Self::on_state_change) | no hook |
/// | [`seed`](Self::seed) | from the OS |
///
/// `C` is the classifier; `O` says how an open breaker answers:
/// [`Local503`] until [`open_as_error`](Self::open_as_error) makes it
/// [`OpenError`].
pub struct CircuitBreakerLayer<C = ServerErrors, O = Local503> {
    options: Options,
    breaker: Arc<Breaker<C>>,
    key: KeyFn,
    open: PhantomData<fn() -> O>,
}

impl<C, O> Clone for CircuitBreakerLayer<C, O> {
    fn clone(&self) -> Self {
        CircuitBreakerLayer {
            options: self.options,
            breaker: self.breaker.clone(),
            key: self.key.clone(),
            open: PhantomData,
        }
    }
}

impl CircuitBreakerLayer {
    /// A layer with the defaults above.
    pub fn new() -> Self {
        CircuitBreakerLayer {
            options: DEFAULTS,
            breaker: Arc::new(Breaker::new(
                DEFAULTS.settings(),
                DEFAULTS.max_keys,
                DEFAULTS.seed,
                ServerErrors,
                None,
            )),
            key: KeyFn::Authority,
            open: PhantomData,
        }
    }
}

impl Default for CircuitBreakerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clone, O> CircuitBreakerLayer<C, O> {
    /// A fresh state with `classifier`, `hook` and the options after `f`.
    fn rebuild<C2, O2>(
        self,
        classifier: C2,
        hook: Option<Hook>,
        f: impl FnOnce(&mut Options),
    ) -> CircuitBreakerLayer<C2, O2> {
        let mut options = self.options;
        f(&mut options);
        CircuitBreakerLayer {
            options,
            breaker: Arc::new(Breaker::new(
                options.settings(),
                options.max_keys,
                options.seed,
                classifier,
                hook,
            )),
            key: self.key,
            open: PhantomData,
        }
    }

    fn configure(self, f: impl FnOnce(&mut Options)) -> Self {
        let (classifier, hook) = (self.breaker.classifier().clone(), self.breaker.hook());
        self.rebuild(classifier, hook, f)
    }

    /// The share of failed calls in the window, at or above which the
    /// breaker opens (once [`minimum_throughput`](Self::minimum_throughput)
    /// calls were seen). Values are clamped to `0.0..=1.0` (0 opens on any
    /// failure); NaN means the default.
    ///
    /// Default: 0.5.
    pub fn failure_ratio(self, ratio: f64) -> Self {
        self.configure(|o| o.failure_ratio = ratio)
    }

    /// How many calls the window must hold before the breaker may open, so
    /// that one failure in a quiet minute does not.
    ///
    /// Default: 20. Zero counts as one.
    pub fn minimum_throughput(self, calls: u32) -> Self {
        self.configure(|o| o.minimum_throughput = calls)
    }

    /// The sliding window over which calls and failures are counted (in ten
    /// buckets of at least 1 ms, so it covers between 9/10 and all of this;
    /// a call may be counted up to a sixteenth of a bucket early, as the
    /// clock is read only now and then on the happy path). Also the
    /// longest a half-open breaker waits for a probe's answer before
    /// counting its probes as failed.
    ///
    /// Default: 10 s.
    pub fn sampling_duration(self, window: Duration) -> Self {
        self.configure(|o| o.sampling_duration = window)
    }

    /// How long the breaker stays open the first time, before it lets
    /// probes through (half-open). Each failed probe opens it again for
    /// about twice as long as the last break (jittered ×0.8–1.2), up to
    /// [`max_break_duration`](Self::max_break_duration).
    ///
    /// Default: 5 s.
    pub fn break_duration(self, duration: Duration) -> Self {
        self.configure(|o| o.break_duration = duration)
    }

    /// The longest break after repeated failed probes. Never less than
    /// [`break_duration`](Self::break_duration).
    ///
    /// Default: 10 × `break_duration`.
    pub fn max_break_duration(self, duration: Duration) -> Self {
        self.configure(|o| o.max_break_duration = Some(duration))
    }

    /// How many probes a half-open breaker lets run at once; further
    /// requests are answered locally, with a wait of a tenth of
    /// `break_duration` (a probe's answer is due by then).
    /// The first probe to succeed closes the breaker, the first to fail
    /// opens it again; one answered with an [`Ignored`] outcome (a 429)
    /// frees its place.
    ///
    /// Default: 5. Zero counts as one.
    ///
    /// [`Ignored`]: super::CallOutcome::Ignored
    pub fn half_open_probes(self, probes: u32) -> Self {
        self.configure(|o| o.half_open_probes = probes)
    }

    /// Counts a call that took `threshold` or longer as a failure even if it
    /// succeeded (resilience4j's slow-call rule): a service that answers
    /// too slowly to be useful is treated as down.
    ///
    /// Default: off.
    pub fn slow_call_threshold(self, threshold: Duration) -> Self {
        self.configure(|o| o.slow_call = Some(threshold))
    }

    /// How many keys the breaker remembers. At the cap, an eighth of them
    /// is evicted at once: closed ones that have not broken since they last
    /// closed first, then the least recently used (calls still in flight
    /// for an evicted key end uncounted).
    ///
    /// Default: 10,000. Zero counts as one.
    pub fn max_keys(self, max_keys: usize) -> Self {
        self.configure(|o| o.max_keys = max_keys)
    }

    /// Seeds the random source of the breaks' jitter, making them
    /// reproducible (default: seeded from the OS).
    pub fn seed(self, seed: u64) -> Self {
        self.configure(|o| o.seed = Some(seed))
    }

    /// Calls `hook` on every state change of every key, after the change
    /// (outside the breaker's lock). It must be quick and must not panic.
    ///
    /// ```
    /// use tower_backoff::circuit::CircuitState;
    /// use tower_backoff::CircuitBreakerLayer;
    ///
    /// let layer = CircuitBreakerLayer::new().on_state_change(|change| {
    ///     if change.to == CircuitState::Open {
    ///         eprintln!("upstream down, breaking for {:?}", change.break_duration);
    ///     }
    /// });
    /// # let _ = layer;
    /// ```
    pub fn on_state_change<F>(self, hook: F) -> Self
    where
        F: Fn(&StateChange) + Send + Sync + 'static,
    {
        let classifier = self.breaker.classifier().clone();
        self.rebuild(classifier, Some(Arc::new(hook)), |_| {})
    }

    /// Replaces what counts as a failure: any
    /// [`ClassifyCall`](super::ClassifyCall), such as a closure
    /// `Fn(Result<&Res, &E>) -> CallOutcome`. See
    /// [`ServerErrors`] for the default and an example.
    pub fn classifier<C2: Clone>(self, classifier: C2) -> CircuitBreakerLayer<C2, O> {
        let hook = self.breaker.hook();
        self.rebuild(classifier, hook, |_| {})
    }

    /// An open breaker answers with the error [`CircuitOpen`](super::CircuitOpen)
    /// (through `From`) instead of a local `503`: for services whose
    /// response is not HTTP, or whose body has no `Default`.
    ///
    /// ```
    /// use tower_backoff::CircuitBreakerLayer;
    ///
    /// // Errors boxed as `Box<dyn Error + Send + Sync>` take `CircuitOpen`.
    /// let layer = CircuitBreakerLayer::new().open_as_error();
    /// # let _ = layer;
    /// ```
    pub fn open_as_error(self) -> CircuitBreakerLayer<C, OpenError> {
        let (classifier, hook) = (self.breaker.classifier().clone(), self.breaker.hook());
        self.rebuild(classifier, hook, |_| {})
    }

    /// Chooses which requests share a breaker. `key` gets the request head
    /// and returns anything hashable; requests with equal keys share one.
    ///
    /// Default: the request URI's authority (`host:port`, ASCII case
    /// folded), else the `Host` header, else one key for all.
    pub fn key_fn<F, K>(mut self, key: F) -> Self
    where
        F: Fn(&Parts) -> K + Send + Sync + 'static,
        K: Hash,
    {
        self.key = KeyFn::custom(key);
        self
    }
}

impl<C, O> CircuitBreakerLayer<C, O> {
    /// A snapshot of the shared state; see [`BreakerStats`].
    pub fn stats(&self) -> BreakerStats {
        self.breaker.stats()
    }
}

impl<S, C, O> Layer<S> for CircuitBreakerLayer<C, O> {
    type Service = CircuitBreaker<S, C, O>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::from_parts(inner, self.breaker.clone(), self.key.clone())
    }
}

impl<C, O> fmt::Debug for CircuitBreakerLayer<C, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("options", &self.options)
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_made_safe() {
        let settings = |f: fn(&mut Options)| {
            let mut o = DEFAULTS;
            f(&mut o);
            o.settings()
        };
        assert_eq!(settings(|o| o.failure_ratio = f64::NAN).failure_ratio, 0.5);
        assert_eq!(settings(|o| o.failure_ratio = -3.0).failure_ratio, 0.0);
        assert_eq!(settings(|o| o.failure_ratio = 7.0).failure_ratio, 1.0);
        assert_eq!(settings(|o| o.minimum_throughput = 0).minimum_throughput, 1);
        assert_eq!(settings(|o| o.half_open_probes = 0).half_open_probes, 1);
        let s = settings(|o| o.break_duration = Duration::MAX);
        assert_eq!(s.max_break_duration, Duration::MAX);
        let s = settings(|o| o.max_break_duration = Some(Duration::from_secs(1)));
        assert_eq!(
            s.max_break_duration, s.break_duration,
            "never below the break"
        );
        assert_eq!(
            DEFAULTS.settings().max_break_duration,
            Duration::from_secs(50)
        );
    }
}
