//! [`RedisStore`]: what the gate knows, shared by many processes through
//! Redis (feature `redis`; `redis-tls` adds `rediss://`, with a rustls
//! `CryptoProvider` the application installs).
//!
//! Replicas of a service that call one API with one key share its limit.
//! Given to [`RateLimitAwareLayer::store`](super::RateLimitAwareLayer::store),
//! it lets each replica's gate still queue, cancel and order its own
//! requests, while the pace they may go at is reserved in Redis, and a hold
//! one replica learns (a `Retry-After`) holds all of them:
//!
//! * **Pacing** is an atomic reservation, one Lua script answering "the
//!   earliest time these units may go" (GCRA, on the server's clock), so
//!   that all processes together never exceed the rate plus the burst.
//!   Units are reserved in batches (up to 50 ms of the rate, each unit dated)
//!   and spent locally: Redis sees one call per batch, not per request. A
//!   batch is fetched before the last one runs out.
//! * **Holds** are published (the longest wins) and read back with every
//!   batch, or every 50 ms while a key is in use.
//! * **The learned rate** of a key is published too, with the measure it
//!   came from and when: every process paces at it and climbs from it
//!   alike, as a learner does after a measure (CUBIC), so the fleet probes
//!   upward together. Measures of one throttle by several processes (within
//!   250 ms) are averaged; a later offer wins if it is below what the
//!   standing rate has climbed to (a throttle when the climb went past the
//!   server), or once that one is 30 s old; a throttle that measured
//!   nothing, after that one's episode, cuts it by 30 %. So are the
//!   responses the server accepted, so that
//!   a rate is learned from what the server accepted from all processes,
//!   not from one. They go with the next call, or, for a key learning its
//!   rate near a throttle, at once (at most one call per 10 ms per key),
//!   so that the count measured then lags by milliseconds, not 100 ms.
//!
//! Keys are `{prefix}:{key hash}:{what}`, where the hash is the same in every
//! process; every key expires once unused (a minute after its last
//! reservation, or when its hold or rate expires).
//!
//! # Faults
//!
//! Every call to Redis is bounded by [`timeout`](RedisStore::timeout)
//! (default 50 ms), and none is ever made on the caller's thread: the gate
//! asks the store under its lock and gets an answer at once. When a call
//! fails or times out, the store logs one `warn` (the URL without its
//! password), answers "use your local state" to every question, and leaves
//! Redis alone for a back-off ([`retry_backoff`](RedisStore::retry_backoff),
//! 1 s doubling to 30 s) before one call probes it again; when one succeeds,
//! it logs one `info` and shares again. Meanwhile each process keeps to its
//! share of every shared pace, paced locally: what it accepted of the
//! fleet's accepted answers over the last second or more while Redis
//! answered (until that is known, the whole pace, as local state alone).
//! A rate learned from a process's own answers alone (while Redis was down,
//! or across its restart) is that process's share, and is never offered to
//! the others or reserved for them; a count that Redis began again (after a
//! restart without persistence, or once expired) adds to the old one.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_backoff::rate_limit::Limit;
//! use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer, RedisStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let http_client = tower::service_fn(|_req: http::Request<String>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! # });
//! // Every replica connects to the same Redis, with the same prefix.
//! let store = RedisStore::connect("redis://:secret@127.0.0.1:6379")
//!     .await?
//!     .prefix("billing-api");
//! let client = tower::ServiceBuilder::new()
//!     .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!     .layer(
//!         RateLimitAwareLayer::new()
//!             .limit(Limit::requests(500, Duration::from_secs(60)))
//!             .store(store),
//!     )
//!     .service(http_client);
//! # let _ = client;
//! # Ok(()) }
//! ```
//!
//! Tests and paused clocks: the store's calls are real network calls bounded
//! by real-time timeouts, so a test using a store runs on tokio's real clock.

mod error;
mod keys;
mod lease;
mod link;
mod offer;
mod script;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::{timeout, Instant};

use super::learner::Curve;
pub use error::{ErrorKind, RedisStoreError};
use keys::{entry, Job, KeyState};
pub use lease::Pace;
use lease::Take;
use link::{Backoff, Health, Link};
#[doc(hidden)]
pub use offer::Offer;
use script::{Calls, Keys, Op, Reply};

/// Called with a key (as given to the store) when something about it landed:
/// a batch, a hold, a lower rate, or a failure the caller must notice.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

const DEFAULT_PREFIX: &str = "tower-backoff";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
const DEFAULT_BACKOFF: Backoff = Backoff {
    min: Duration::from_secs(1),
    max: Duration::from_secs(30),
};
/// Bound on making a connection (the first, and after a failure).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a key in use without pacing reads its hold back.
const SYNC_EVERY: Duration = Duration::from_millis(50);
/// The least time between two calls that write a key's count promptly
/// (see `RedisStore::count_accepted_promptly`): at most 100 a second per
/// key and process, however many answers come.
const PROMPT_EVERY: Duration = Duration::from_millis(10);
/// How long a published rate stands.
const RATE_TTL: Duration = Duration::from_secs(30);

/// A connection to Redis through which gates in many processes share what
/// they know about each key: holds, the learned rate, and the pace of every
/// limit. See [`RateLimitAwareLayer::store`](crate::RateLimitAwareLayer::store)
/// and the [`rate_limit`](crate::rate_limit) module docs.
///
/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    calls: Arc<Calls>,
    config: Config,
    runtime: Handle,
    table: Mutex<HashMap<String, KeyState>>,
    notify: Option<Notify>,
}

#[derive(Debug, Clone)]
struct Config {
    prefix: String,
    timeout: Duration,
    backoff: Backoff,
}

/// The store's answer: may these units go now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Yes: the units are spent.
    Go,
    /// Not before this instant (a hold, or the units are dated later).
    At(Instant),
    /// A batch is being fetched; the [`Notify`] callback is called when it
    /// lands. Ask again then, or at this instant at the latest.
    Pending(Instant),
    /// Redis is unavailable: decide on local state alone.
    Local,
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[:password@]host[:port][/db]`,
    /// or `rediss://…` with the `redis-tls` feature) and checks that it
    /// answers, within 1 s. Must be called within a tokio runtime, on which
    /// the store then runs its calls.
    ///
    /// The error never shows the password.
    pub async fn connect(url: &str) -> Result<RedisStore, RedisStoreError> {
        let link = Link::connect(url, CONNECT_TIMEOUT, DEFAULT_BACKOFF).await?;
        let config = Config {
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            backoff: DEFAULT_BACKOFF,
        };
        Ok(RedisStore::build(
            Arc::new(link),
            Arc::new(Calls::new()),
            config,
            Handle::current(),
            None,
        ))
    }

    fn build(
        link: Arc<Link>,
        calls: Arc<Calls>,
        config: Config,
        runtime: Handle,
        notify: Option<Notify>,
    ) -> Self {
        RedisStore {
            inner: Arc::new(Inner {
                link,
                calls,
                config,
                runtime,
                table: Mutex::new(HashMap::new()),
                notify,
            }),
        }
    }

    fn configure(self, f: impl FnOnce(&mut Config)) -> Self {
        let i = &self.inner;
        let mut config = i.config.clone();
        f(&mut config);
        RedisStore::build(
            i.link.clone(),
            i.calls.clone(),
            config,
            i.runtime.clone(),
            i.notify.clone(),
        )
    }

    /// Namespaces every Redis key, so that two applications on one Redis
    /// never share a limit by accident: keys are `{prefix}:…`.
    ///
    /// Default: `tower-backoff`.
    pub fn prefix(self, prefix: &str) -> Self {
        self.configure(|c| c.prefix = prefix.to_owned())
    }

    /// The longest one call to Redis may take before the store gives up on
    /// it and falls back to local state.
    ///
    /// Default: 50 ms.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.timeout = timeout)
    }

    /// After a failed call, Redis is left alone for `min`, doubling on each
    /// failed probe up to `max`.
    ///
    /// Default: 1 s to 30 s.
    pub fn retry_backoff(self, min: Duration, max: Duration) -> Self {
        self.configure(|c| {
            c.backoff = Backoff {
                min,
                max: max.max(min),
            }
        })
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.inner.config.prefix
    }

    /// Whether the store is sharing (Redis answered the last call), rather
    /// than leaving callers to their local state.
    pub fn is_sharing(&self) -> bool {
        self.inner.link.is_up()
    }

    /// Calls made to Redis by this store and its clones, for monitoring.
    pub fn redis_calls(&self) -> u64 {
        self.inner.link.calls()
    }

    /// The namespaced name of a key: `{prefix}:{name}`.
    #[doc(hidden)]
    pub fn key(&self, name: &str) -> String {
        format!("{}:{}", self.inner.config.prefix, name)
    }

    /// A handle on the same connection with its own local state, whose
    /// `notify` is called when something about a key lands. A gate holds
    /// one; `notify` should hold the gate weakly.
    #[doc(hidden)]
    pub fn with_notify(&self, notify: Notify) -> RedisStore {
        let i = &self.inner;
        RedisStore::build(
            i.link.clone(),
            i.calls.clone(),
            i.config.clone(),
            i.runtime.clone(),
            Some(notify),
        )
    }

    /// May `cost` units of `constraint` of `key` go at `now`, at `pace`?
    /// Never waits and never does I/O: a batch to fetch is fetched in the
    /// background. `key` is namespaced ([`key`](Self::key)).
    #[doc(hidden)]
    pub fn reserve(
        &self,
        key: &str,
        constraint: &str,
        cost: u64,
        pace: Pace,
        now: Instant,
    ) -> Reservation {
        if !pace.is_valid() {
            return Reservation::Local;
        }
        let health = self.inner.link.health(now);
        if health == Health::Down {
            return self.local_share(key, constraint, cost, pace, now);
        }
        let stale = self.stale();
        let (answer, refill) = {
            let mut table = self.inner.lock();
            let Some(ks) = entry(&mut table, key, now) else {
                return Reservation::Local;
            };
            let hold = ks.hold.filter(|h| *h > now);
            let share = ks.share();
            let lease = ks.lease(constraint);
            if lease
                .refilling
                .is_some_and(|since| now.saturating_duration_since(since) > stale)
            {
                lease.refilling = None;
            }
            let take = match hold {
                Some(h) => Take::At(h),
                None => lease.take(cost, now, &pace),
            };
            let batch = lease.batch(&pace, cost);
            let low = matches!(take, Take::Short(_)) || lease.remaining() <= batch / 2;
            let refill = lease.refilling.is_none() && hold.is_none() && low;
            if refill {
                lease.refilling = Some(now);
            }
            let answer = match (health, take) {
                (Health::Up, Take::Go) => Reservation::Go,
                (Health::Up, Take::At(t)) => Reservation::At(t),
                (Health::Up, Take::Short(_)) => {
                    let since = lease.refilling.unwrap_or(now);
                    Reservation::Pending(crate::rate_limit::time::after(since, stale))
                }
                // Probing Redis: this process's share, paced here.
                _ => match share.and_then(|s| lease.take_local(cost, now, &pace, s)) {
                    Some(t) => Reservation::At(t),
                    None => Reservation::Local,
                },
            };
            (answer, refill.then_some(batch))
        };
        match refill {
            Some(n) => self.spawn(
                key,
                Job::Refill {
                    constraint: constraint.to_owned(),
                    pace,
                    n,
                },
            ),
            // A probe must go, or the link would never be tried again.
            None if health == Health::Probe => self.spawn(key, Job::Peek),
            None => {}
        }
        answer
    }

    /// While Redis does not answer: unless this process's share of the
    /// fleet's answers is yet unknown, it keeps to that share of `pace`
    /// (what the others keep to of theirs), paced here, rather than each
    /// process taking the whole pace.
    fn local_share(
        &self,
        key: &str,
        constraint: &str,
        cost: u64,
        pace: Pace,
        now: Instant,
    ) -> Reservation {
        let mut table = self.inner.lock();
        let Some(ks) = entry(&mut table, key, now) else {
            return Reservation::Local;
        };
        let Some(share) = ks.share() else {
            return Reservation::Local;
        };
        match ks.lease(constraint).take_local(cost, now, &pace, share) {
            Some(t) => Reservation::At(t),
            None => Reservation::Local,
        }
    }

    /// The hold on `key` known to this process, if it lasts past `now`.
    /// While Redis is up, reads it back from Redis every 50 ms (in the
    /// background).
    #[doc(hidden)]
    pub fn hold(&self, key: &str, now: Instant) -> Option<Instant> {
        let (hold, stale) = {
            let mut table = self.inner.lock();
            let ks = entry(&mut table, key, now)?;
            let stale = !ks.syncing
                && ks
                    .synced
                    .is_none_or(|t| now.saturating_duration_since(t) >= SYNC_EVERY);
            (ks.hold.filter(|h| *h > now), stale)
        };
        if stale && self.inner.link.health(now) != Health::Down {
            if let Some(ks) = self.inner.lock().get_mut(key) {
                ks.syncing = true;
            }
            self.spawn(key, Job::Peek);
        }
        hold
    }

    /// The fleet's rate for `key` at `now`, as last read, climbed since
    /// (see `Curve`) — but only while Redis answers: without it no
    /// process's throttle can cut the rate, so it stops climbing where it
    /// was when Redis last answered for `key`.
    #[doc(hidden)]
    pub fn rate(&self, key: &str, now: Instant) -> Option<f64> {
        let up = self.inner.link.is_up();
        let table = self.inner.lock();
        let ks = table.get(key)?;
        let (curve, _) = ks.rate.filter(|(_, until)| *until > now)?;
        let climbed_to = match ks.synced {
            Some(synced) if !up => synced.min(now),
            _ => now,
        };
        Some(curve.at(climbed_to))
    }

    /// The fleet's rate for `key`, if one stands at `now`.
    pub(super) fn curve(&self, key: &str, now: Instant) -> Option<Curve> {
        let table = self.inner.lock();
        let (curve, until) = table.get(key)?.rate?;
        (until > now).then_some(curve)
    }

    /// Holds `key` in every process until `until` (unless held longer).
    #[doc(hidden)]
    pub fn publish_hold(&self, key: &str, until: Instant) {
        let now = Instant::now();
        {
            let mut table = self.inner.lock();
            if let Some(ks) = entry(&mut table, key, now) {
                ks.hold = ks.hold.max(Some(until));
            }
        }
        if until > now && self.inner.link.health(now) != Health::Down {
            self.spawn(key, Job::Hold(until - now));
        }
    }

    /// Offers `rate`, set by a measure of `measure` (its `W_max`), as the
    /// shared rate of `key`, to climb from now on as the learner's does
    /// (CUBIC, time constant `tau` seconds): it wins if it is below what
    /// the current one has climbed to, or that one has expired.
    #[doc(hidden)]
    pub fn publish_rate(&self, key: &str, offer: Offer) {
        if !offer.is_valid() {
            return;
        }
        let now = Instant::now();
        {
            let mut table = self.inner.lock();
            if let Some(ks) = entry(&mut table, key, now) {
                if offer.replaces(ks.rate, now) {
                    ks.rate = Some((offer.curve(now), now + RATE_TTL));
                }
            }
        }
        if self.inner.link.health(now) != Health::Down {
            self.spawn(key, Job::Rate(offer));
        }
    }

    /// Counts a response the server accepted for `key` (added in Redis with
    /// the next call).
    #[doc(hidden)]
    pub fn count_accepted(&self, key: &str) {
        self.count(key, false);
    }

    /// Counts a response the server accepted for `key` and writes the
    /// count to Redis at once, reading the fleet's back. For a key whose
    /// gate measures the server's rate from the fleet's count right after
    /// a throttle (see `Constraints::counts_promptly`): read every 50 ms,
    /// the count lags by up to 100 ms, as long as the stretches measured
    /// then. A call already on its way writes nothing more: what is counted
    /// meanwhile goes with the next. Within 10 ms of the last call the
    /// write waits until 10 ms after it, so a key makes at most 100 calls a
    /// second.
    #[doc(hidden)]
    pub fn count_accepted_promptly(&self, key: &str) {
        self.count(key, true);
    }

    /// Counts an accepted response; `promptly`, writes it at once (see
    /// `count_accepted_promptly`).
    fn count(&self, key: &str, promptly: bool) {
        let now = Instant::now();
        // Not `health`: its probe is the other calls' to make.
        let up = promptly && self.inner.link.is_up();
        let wait = {
            let mut table = self.inner.lock();
            let Some(ks) = entry(&mut table, key, now) else {
                return;
            };
            ks.unsent += 1;
            ks.own += 1;
            if !up || ks.syncing {
                // Written with the next call.
                return;
            }
            ks.syncing = true;
            // Within 10 ms of the last call, the next goes 10 ms after it,
            // with what is counted by then.
            ks.synced.map_or(Duration::ZERO, |t| {
                PROMPT_EVERY.saturating_sub(now.saturating_duration_since(t))
            })
        };
        self.inner.peek_after(key, wait);
    }

    /// The era of `key`'s fleet count (see `accepted`): two counts read in
    /// different eras cannot be subtracted — Redis went down or a call
    /// failed between them (the others' answers then reach this process
    /// late, or never), or the count vanished and began again. `None`
    /// while Redis is not answering: the count then holds only what this
    /// process accepted itself.
    #[doc(hidden)]
    pub fn count_era(&self, key: &str) -> Option<u32> {
        if !self.inner.link.is_up() {
            return None;
        }
        let downs = self.inner.link.downs();
        let table = self.inner.lock();
        let era = table.get(key).map_or(Some(0), KeyState::count_era)?;
        Some(era.wrapping_add(downs))
    }

    /// Responses the server accepted for `key`, all processes together,
    /// since this process first read the count (what processes counted
    /// before it started is not its to measure), as far as it knows: read
    /// back with every call, every 50 ms while the key is in use.
    #[doc(hidden)]
    pub fn accepted(&self, key: &str) -> u64 {
        let table = self.inner.lock();
        table.get(key).map_or(0, KeyState::fleet_accepted)
    }

    /// How long a refill may be in flight before it is presumed lost.
    fn stale(&self) -> Duration {
        CONNECT_TIMEOUT + self.inner.config.timeout + Duration::from_millis(10)
    }

    fn spawn(&self, key: &str, job: Job) {
        let inner = self.inner.clone();
        let key = key.to_owned();
        drop(self.inner.runtime.spawn(inner.run(key, job)));
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, KeyState>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads `key` back (writing what this process counted) `wait` from
    /// now.
    fn peek_after(self: &Arc<Self>, key: &str, wait: Duration) {
        let inner = self.clone();
        let key = key.to_owned();
        drop(self.runtime.spawn(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            inner.run(key, Job::Peek).await;
        }));
    }

    /// One background call: bounded by the connect timeout and the call
    /// timeout; its answer is recorded, and the gate told.
    async fn run(self: Arc<Self>, key: String, job: Job) {
        let pace_key = match &job {
            Job::Refill { constraint, .. } => format!("{key}:{constraint}"),
            _ => String::new(),
        };
        let hold_key = format!("{key}:hold");
        let rate_key = format!("{key}:rate");
        let accepted_key = format!("{key}:answers");
        let keys = Keys {
            pace: if pace_key.is_empty() {
                &rate_key
            } else {
                &pace_key
            },
            hold: &hold_key,
            rate: &rate_key,
            accepted: &accepted_key,
        };
        // Coming back after Redis did not answer: what this process counted
        // meanwhile lands at once, and the others are told so.
        let away = !self.link.is_up();
        let (accepted, rejoin) = self.lock().get_mut(&key).map_or((0, false), |ks| {
            (std::mem::take(&mut ks.unsent), away || ks.failing)
        });
        let op = match &job {
            Job::Refill { pace, n, .. } => Op::Reserve {
                n: *n,
                interval_us: pace.interval_us(),
                tau_us: pace.tau_us(),
            },
            Job::Hold(d) => Op::Hold {
                for_us: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            },
            Job::Rate(offer) => Op::Rate {
                offer: *offer,
                ttl_us: u64::try_from(RATE_TTL.as_micros()).unwrap_or(u64::MAX),
            },
            Job::Peek => Op::Peek,
        };
        let reply = self.call(&keys, op, accepted, rejoin).await;
        let now = Instant::now();
        let tell = {
            let mut table = self.lock();
            match table.get_mut(&key) {
                Some(ks) => {
                    if reply.is_err() {
                        // Not counted in Redis: counted with the next call.
                        ks.unsent += accepted;
                    }
                    ks.record(&job, reply.as_ref().ok(), accepted, now)
                }
                None => false,
            }
        };
        if tell {
            if let Some(notify) = &self.notify {
                notify(&key);
            }
        }
    }

    async fn call(
        &self,
        keys: &Keys<'_>,
        op: Op,
        accepted: u64,
        rejoin: bool,
    ) -> Result<Reply, String> {
        let link = &self.link;
        let result = async {
            let mut conn = match timeout(CONNECT_TIMEOUT, link.connection()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
            };
            link.count_call();
            let call = self.calls.call(&mut conn, keys, op, accepted, rejoin);
            match timeout(self.config.timeout, call).await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {:?}", self.config.timeout)),
            }
        }
        .await;
        match &result {
            Ok(_) => link.succeeded(self.config.backoff),
            Err(why) => link.failed(why, self.config.backoff).await,
        }
        result
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("RedisStore")
            .field("url", &i.link.url)
            .field("prefix", &i.config.prefix)
            .field("timeout", &i.config.timeout)
            .field("retry_backoff", &i.config.backoff)
            .field("sharing", &i.link.is_up())
            .finish_non_exhaustive()
    }
}
