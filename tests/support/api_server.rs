//! A realistic, reusable rate-limited API server for the gate's tests, on
//! tokio's (paused) clock.
//!
//! One server holds several limiters at once. Each is a token bucket (rate,
//! burst) or a fixed window (`q` per `w`, aligned to the server's start), a
//! "claim" (a limit it states but never enforces, for lying servers), counts
//! requests (1 each) or tokens (the request's `x-cost` header), and may be
//! scoped to a resource (the server maps paths to resources by prefix; the
//! default resource is `core`). A call is accepted when every limiter that
//! applies to it has room, and then spends from all of them.
//!
//! Every reply states the limits in one header style (IETF, OpenAI, GitHub,
//! X or none) and carries a `Date` on the server's wall clock:
//! `SystemTime` at creation + tokio time elapsed + skew, so that without skew
//! the client (which reads `SystemTime::now()`, barely moving while tokio's
//! paused clock jumps) and the server agree through `Date`.
//!
//! A refused call is answered with the refusing limiter's status (429 or
//! 403) and hint (`retry-after` seconds rounded up, `retry-after-ms`, an
//! HTTP-date, a literal value, or none). A bucket may carry a *penalty*
//! (GitHub's secondary limits): once it refuses, every call is refused for
//! the penalty's length.
//!
//! Accepted calls take the service latency (default 20 ms) before the reply;
//! refused ones are answered at once. Every call is recorded: time,
//! accepted, status, method, path, request id, cost.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use tokio::time::Instant;

/// What a limiter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Requests,
    Tokens,
}

/// The header family every reply states its limits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `RateLimit-Policy: "name";q=..;w=..` + `RateLimit: "name";r=..;t=..`,
    /// every stated limiter as one item of each field.
    Ietf,
    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; reset is the
    /// time until the limiter is full again, as a Go duration.
    OpenAi,
    /// `x-ratelimit-limit/-remaining/-reset` (epoch seconds)/`-used`/
    /// `-resource`, for the tightest stated limiter of the request's resource.
    GitHub,
    /// `x-rate-limit-limit/-remaining/-reset` (epoch seconds).
    X,
    /// Nothing but the refusal's hint.
    None,
}

/// The wait hint on a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// `retry-after` in whole seconds, rounded up (at least 1).
    RetryAfterSecs,
    /// `retry-after-ms`, rounded up.
    RetryAfterMs,
    /// `retry-after` as an HTTP-date on the server's wall clock.
    RetryAfterDate,
    /// `retry-after` with this exact value.
    Literal(String),
    /// No hint.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Refilled continuously at `rate` per second, at most `burst`.
    Bucket { rate: f64, burst: f64 },
    /// `q` per `w`, windows aligned to the server's start.
    Window { q: u64, w: Duration },
    /// Stated as `q` per `w` with all of it left, never enforced.
    Claim { q: u64, w: Duration },
}

/// One limiter of the server. Build with [`Limiter::bucket`],
/// [`Limiter::window`] or [`Limiter::claim`].
#[derive(Debug, Clone)]
pub struct Limiter {
    pub name: String,
    pub kind: Kind,
    pub unit: Unit,
    /// Binds only requests of this resource; `None`: every request.
    pub scope: Option<String>,
    /// Whether replies state it.
    pub stated: bool,
    /// Status and hint of its refusals.
    pub status: u16,
    pub hint: Hint,
    /// Once it refuses, every call is refused this long.
    pub penalty: Option<Duration>,
    /// Spent before the first call (e.g. an hourly quota already in use).
    pub used: u64,
    /// A bucket states its policy as its rate over whole seconds (`q` =
    /// rate × `w`) and its reset as the time to its next token, rounded up
    /// (draft-ietf-httpapi-ratelimit-headers-10, as the examples' loopback
    /// server does), rather than its burst and the time until it is full.
    pub next_token: bool,
}

impl Limiter {
    fn new(name: &str, kind: Kind) -> Self {
        Limiter {
            name: name.to_owned(),
            kind,
            unit: Unit::Requests,
            scope: None,
            stated: true,
            status: 429,
            hint: Hint::None,
            penalty: None,
            used: 0,
            next_token: false,
        }
    }
    pub fn bucket(name: &str, rate: f64, burst: f64) -> Self {
        Self::new(name, Kind::Bucket { rate, burst })
    }
    pub fn window(name: &str, q: u64, w: Duration) -> Self {
        Self::new(name, Kind::Window { q, w })
    }
    pub fn claim(name: &str, q: u64, w: Duration) -> Self {
        Self::new(name, Kind::Claim { q, w })
    }
    pub fn tokens(mut self) -> Self {
        self.unit = Unit::Tokens;
        self
    }
    pub fn scope(mut self, resource: &str) -> Self {
        self.scope = Some(resource.to_owned());
        self
    }
    /// Enforced but never stated (a secondary, short-term limiter).
    pub fn hidden(mut self) -> Self {
        self.stated = false;
        self
    }
    pub fn refuse(mut self, status: u16, hint: Hint) -> Self {
        self.status = status;
        self.hint = hint;
        self
    }
    pub fn penalty(mut self, d: Duration) -> Self {
        self.penalty = Some(d);
        self
    }
    pub fn used(mut self, used: u64) -> Self {
        self.used = used;
        self
    }
    /// See [`Limiter::next_token`].
    pub fn states_next_token(mut self) -> Self {
        self.next_token = true;
        self
    }
}

#[path = "../../examples/common/bucket.rs"]
mod bucket;

use bucket::TokenBucket;

#[derive(Debug)]
struct LimiterState {
    spec: Limiter,
    /// The bucket of a `Kind::Bucket`.
    bucket: Option<TokenBucket>,
    /// Window: spent in `window`.
    level: f64,
    window: u64,
    closed_until: Option<Instant>,
}

/// One call as the server saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Since the server was made.
    pub at: Duration,
    pub accepted: bool,
    pub status: u16,
    pub method: http::Method,
    pub path: String,
    pub id: Option<String>,
    pub cost: u64,
    /// The server was in a penalty (see [`Limiter::penalty`]) at arrival.
    pub in_penalty: bool,
    /// This call started a penalty.
    pub started_penalty: bool,
}

#[derive(Debug)]
struct State {
    limiters: Vec<LimiterState>,
    calls: Vec<Call>,
}

#[derive(Debug)]
struct Config {
    style: Style,
    latency: Duration,
    /// Seconds added to the server's wall clock.
    skew: i64,
    /// (path prefix, resource); others are `core`.
    resources: Vec<(String, String)>,
    born: Instant,
    born_wall: SystemTime,
}

/// Counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub accepted: u64,
    pub throttled: u64,
}

/// The server; `service()` makes a cloneable `tower::Service`. Clones share
/// the limiters and the record.
#[derive(Debug, Clone)]
pub struct ApiServer {
    state: Arc<Mutex<State>>,
    config: Arc<Config>,
}

/// Builds an [`ApiServer`].
#[derive(Debug)]
pub struct ApiServerBuilder {
    limiters: Vec<Limiter>,
    style: Style,
    latency: Duration,
    skew: i64,
    resources: Vec<(String, String)>,
}

impl ApiServerBuilder {
    pub fn limiter(mut self, l: Limiter) -> Self {
        self.limiters.push(l);
        self
    }
    pub fn style(mut self, s: Style) -> Self {
        self.style = s;
        self
    }
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }
    /// The server's clock runs `secs` ahead (negative: behind).
    pub fn skew(mut self, secs: i64) -> Self {
        self.skew = secs;
        self
    }
    /// Requests whose path starts with `prefix` belong to `resource`.
    pub fn resource(mut self, prefix: &str, resource: &str) -> Self {
        self.resources
            .push((prefix.to_owned(), resource.to_owned()));
        self
    }
    pub fn build(self) -> ApiServer {
        let now = Instant::now();
        let limiters = self
            .limiters
            .into_iter()
            .map(|spec| {
                let bucket = match spec.kind {
                    Kind::Bucket { rate, burst } => {
                        Some(TokenBucket::new(rate, burst).with_tokens(burst - spec.used as f64))
                    }
                    _ => None,
                };
                LimiterState {
                    bucket,
                    level: spec.used as f64,
                    spec,
                    window: 0,
                    closed_until: None,
                }
            })
            .collect();
        ApiServer {
            state: Arc::new(Mutex::new(State {
                limiters,
                calls: Vec::new(),
            })),
            config: Arc::new(Config {
                style: self.style,
                latency: self.latency,
                skew: self.skew,
                resources: self.resources,
                born: now,
                // Whole seconds, so that runs are deterministic (the
                // `Date` and epoch resets do not depend on when the test
                // started within a second): the server's clock is up to
                // 1 s behind the client's, a realistic small skew.
                born_wall: UNIX_EPOCH + Duration::from_secs(epoch_secs(SystemTime::now())),
            }),
        }
    }
}

/// What one limiter says about a call, for the headers.
struct Statement {
    name: String,
    unit: Unit,
    scope: Option<String>,
    /// Limit as stated (q, or the bucket's burst).
    limit: u64,
    remaining: u64,
    /// Window of the IETF policy.
    window: Duration,
    /// Until `remaining` is back to `limit` (bucket) or the window resets.
    reset: Duration,
}

impl ApiServer {
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder {
            limiters: Vec::new(),
            style: Style::None,
            latency: Duration::from_millis(20),
            skew: 0,
            resources: Vec::new(),
        }
    }

    /// The server's wall clock now.
    pub fn wall(&self) -> SystemTime {
        let c = &self.config;
        let t = c.born_wall + c.born.elapsed();
        if c.skew >= 0 {
            t + Duration::from_secs(c.skew as u64)
        } else {
            t - Duration::from_secs(c.skew.unsigned_abs())
        }
    }

    pub fn counts(&self) -> Counts {
        let s = self.state.lock().unwrap();
        let accepted = s.calls.iter().filter(|c| c.accepted).count() as u64;
        Counts {
            calls: s.calls.len() as u64,
            accepted,
            throttled: s.calls.len() as u64 - accepted,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// (accepted, refused) per `step` since the server's start.
    pub fn timeline(&self, step: Duration) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for c in self.state.lock().unwrap().calls.iter() {
            let i = (c.at.as_secs_f64() / step.as_secs_f64()) as usize;
            if out.len() <= i {
                out.resize(i + 1, (0, 0));
            }
            if c.accepted {
                out[i].0 += 1;
            } else {
                out[i].1 += 1;
            }
        }
        out
    }

    /// The timeline as `ok/refused` per step, for logs.
    pub fn timeline_str(&self, step: Duration) -> String {
        self.timeline(step)
            .iter()
            .map(|(a, r)| format!("{a}/{r}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn resource_of(&self, path: &str) -> String {
        self.config
            .resources
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| "core".to_owned())
    }

    /// Decides one call: status, headers.
    fn decide(
        &self,
        method: http::Method,
        path: String,
        id: Option<String>,
        cost: u64,
    ) -> (bool, StatusCode, HeaderMap) {
        let now = Instant::now();
        let resource = self.resource_of(&path);
        let mut s = self.state.lock().unwrap();
        let born = self.config.born;
        let applies = |l: &LimiterState| {
            l.spec
                .scope
                .as_deref()
                .is_none_or(|r| r == resource.as_str())
        };
        // Bring every limiter up to now.
        for l in s.limiters.iter_mut() {
            match l.spec.kind {
                Kind::Bucket { .. } => {
                    if let Some(b) = l.bucket.as_mut() {
                        l.level = b.level(now);
                    }
                }
                Kind::Window { w, .. } => {
                    let index = (now.saturating_duration_since(born).as_secs_f64()
                        / w.as_secs_f64()) as u64;
                    if index != l.window {
                        l.window = index;
                        l.level = 0.0;
                    }
                }
                Kind::Claim { .. } => {}
            }
        }
        let amount = |l: &LimiterState| match l.spec.unit {
            Unit::Requests => 1.0,
            Unit::Tokens => cost as f64,
        };
        // The first limiter that refuses, and the wait it would hint.
        let mut refusal: Option<(usize, Duration, bool)> = None;
        for (i, l) in s.limiters.iter().enumerate() {
            if !applies(l) {
                continue;
            }
            let need = amount(l);
            if let Some(until) = l.closed_until.filter(|&u| now < u) {
                refusal = Some((i, until - now, true));
                break;
            }
            match l.spec.kind {
                // A hair of tolerance: the client's arithmetic in f64 and
                // the server's need not round alike.
                Kind::Bucket { .. } if l.level < need - 1e-6 => {
                    let wait = l.bucket.as_ref().map_or(Duration::ZERO, |b| b.until(need));
                    refusal = Some((i, wait, false));
                    break;
                }
                Kind::Window { q, w } if l.level + need > q as f64 => {
                    let end = born + w * (l.window as u32 + 1);
                    refusal = Some((i, end - now, false));
                    break;
                }
                _ => {}
            }
        }
        let in_penalty = refusal.is_some_and(|r| r.2);
        let mut started_penalty = false;
        let accepted = refusal.is_none();
        if accepted {
            for l in s.limiters.iter_mut() {
                if !applies(l) {
                    continue;
                }
                let need = amount(l);
                match l.spec.kind {
                    Kind::Bucket { .. } => {
                        if let Some(b) = l.bucket.as_mut() {
                            b.take(now, need);
                            l.level = b.level(now);
                        }
                    }
                    Kind::Window { .. } => l.level += need,
                    Kind::Claim { .. } => {}
                }
            }
        } else if let Some((i, _, false)) = refusal {
            if let Some(p) = s.limiters[i].spec.penalty {
                s.limiters[i].closed_until = Some(now + p);
                refusal = Some((i, p, true));
                started_penalty = true;
            }
        }
        // What the stated limiters say now.
        let statements: Vec<Statement> = s
            .limiters
            .iter()
            .filter(|l| l.spec.stated && applies(l))
            .map(|l| {
                let (limit, remaining, window, reset) = match l.spec.kind {
                    Kind::Bucket { rate, burst } if l.spec.next_token => {
                        let w = (burst / rate).ceil().max(1.0);
                        (
                            (rate * w).round() as u64,
                            l.level.max(0.0).floor() as u64,
                            Duration::from_secs_f64(w),
                            l.bucket
                                .as_ref()
                                .map_or(Duration::ZERO, TokenBucket::until_next_token),
                        )
                    }
                    Kind::Bucket { rate, burst } => (
                        burst as u64,
                        l.level.max(0.0).floor() as u64,
                        Duration::from_secs_f64(burst / rate),
                        l.bucket
                            .as_ref()
                            .map_or(Duration::ZERO, TokenBucket::until_full),
                    ),
                    Kind::Window { q, w } => {
                        let end = born + w * (l.window as u32 + 1);
                        (
                            q,
                            (q as f64 - l.level).max(0.0) as u64,
                            w,
                            end.saturating_duration_since(now),
                        )
                    }
                    Kind::Claim { q, w } => (q, q, w, w),
                };
                Statement {
                    name: l.spec.name.clone(),
                    unit: l.spec.unit,
                    scope: l.spec.scope.clone(),
                    limit,
                    remaining,
                    window,
                    reset,
                }
            })
            .collect();
        let mut h = HeaderMap::new();
        let wall = self.wall();
        h.insert("date", hv(&httpdate::fmt_http_date(wall)));
        self.state_headers(&mut h, &statements, wall, &resource);
        let status = match refusal {
            None => StatusCode::OK,
            Some((i, wait, _)) => {
                let spec = &s.limiters[i].spec;
                match &spec.hint {
                    Hint::RetryAfterSecs => {
                        let secs = (wait.as_secs_f64().ceil() as u64).max(1);
                        h.insert("retry-after", hv(&secs.to_string()));
                    }
                    Hint::RetryAfterMs => {
                        let ms = (wait.as_secs_f64() * 1000.0).ceil() as u64;
                        h.insert("retry-after-ms", hv(&ms.max(1).to_string()));
                    }
                    Hint::RetryAfterDate => {
                        // Whole seconds, rounded up: an HTTP-date has no
                        // fraction.
                        let at = epoch_secs(wall + wait) + 1;
                        let date = UNIX_EPOCH + Duration::from_secs(at);
                        h.insert("retry-after", hv(&httpdate::fmt_http_date(date)));
                    }
                    Hint::Literal(v) => {
                        h.insert("retry-after", hv(v));
                    }
                    Hint::None => {}
                }
                StatusCode::from_u16(spec.status).unwrap()
            }
        };
        let at = now.saturating_duration_since(born);
        s.calls.push(Call {
            at,
            accepted,
            status: status.as_u16(),
            method,
            path,
            id,
            cost,
            in_penalty,
            started_penalty,
        });
        (accepted, status, h)
    }

    fn state_headers(&self, h: &mut HeaderMap, st: &[Statement], wall: SystemTime, res: &str) {
        match self.config.style {
            Style::None => {}
            Style::Ietf => {
                if st.is_empty() {
                    return;
                }
                let policy = st
                    .iter()
                    .map(|s| {
                        let qu = if s.unit == Unit::Tokens {
                            ";qu=\"tokens\""
                        } else {
                            ""
                        };
                        format!(
                            "\"{}\";q={};w={}{qu}",
                            s.name,
                            s.limit,
                            s.window.as_secs_f64().ceil().max(1.0) as u64
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let limit = st
                    .iter()
                    .map(|s| {
                        format!(
                            "\"{}\";r={};t={}",
                            s.name,
                            s.remaining,
                            s.reset.as_secs_f64().ceil() as u64
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                h.insert("ratelimit-policy", hv(&policy));
                h.insert("ratelimit", hv(&limit));
            }
            Style::OpenAi => {
                for s in st {
                    let u = match s.unit {
                        Unit::Requests => "requests",
                        Unit::Tokens => "tokens",
                    };
                    h.insert(name(&format!("x-ratelimit-limit-{u}")), num(s.limit));
                    h.insert(
                        name(&format!("x-ratelimit-remaining-{u}")),
                        num(s.remaining),
                    );
                    h.insert(
                        name(&format!("x-ratelimit-reset-{u}")),
                        hv(&go_duration(s.reset)),
                    );
                }
            }
            Style::GitHub | Style::X => {
                // The tightest stated limiter (least remaining) binding the
                // request.
                let Some(s) = st.iter().min_by_key(|s| s.remaining) else {
                    return;
                };
                let reset = epoch_secs(wall + s.reset) + u64::from(s.reset.subsec_nanos() > 0);
                let prefix = if self.config.style == Style::X {
                    "x-rate-limit"
                } else {
                    "x-ratelimit"
                };
                h.insert(name(&format!("{prefix}-limit")), num(s.limit));
                h.insert(name(&format!("{prefix}-remaining")), num(s.remaining));
                h.insert(name(&format!("{prefix}-reset")), num(reset));
                if self.config.style == Style::GitHub {
                    h.insert("x-ratelimit-used", num(s.limit - s.remaining));
                    let resource = s.scope.as_deref().unwrap_or(res);
                    h.insert("x-ratelimit-resource", hv(resource));
                }
            }
        }
    }

    /// A cloneable service answering like this server. The cost of a
    /// request is its `x-cost` header (0 if absent); its id, `x-request-id`.
    pub fn service<B: Send + 'static>(
        &self,
    ) -> impl tower::Service<
        Request<B>,
        Response = Response<String>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<String>, Infallible>> + Send,
    > + Clone
           + Send
           + 'static {
        let server = self.clone();
        tower::service_fn(move |req: Request<B>| {
            let server = server.clone();
            let cost = req
                .headers()
                .get("x-cost")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| Some(v.to_str().ok()?.to_owned()));
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            async move {
                let (accepted, status, headers) = server.decide(method, path, id, cost);
                if accepted {
                    tokio::time::sleep(server.config.latency).await;
                }
                let mut res = Response::new(String::new());
                *res.status_mut() = status;
                *res.headers_mut() = headers;
                Ok(res)
            }
        })
    }
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

fn num(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

fn name(s: &str) -> HeaderName {
    HeaderName::from_bytes(s.as_bytes()).unwrap()
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A Go-style duration as OpenAI writes it: `120ms`, `0.05s`-like values
/// under a second as whole milliseconds (rounded up), `1.5s`, `6m0s`.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let ms = (d.as_secs_f64() * 1000.0).ceil() as u64;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mins = ms / 60_000;
    let rest = (ms % 60_000) as f64 / 1000.0;
    let secs = format!("{rest:.3}");
    let secs = secs.trim_end_matches('0').trim_end_matches('.');
    if mins > 0 {
        format!("{mins}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// A small deterministic generator.
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// How one request ended, as its caller saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Index of the request.
    pub index: usize,
    /// When the caller issued it and when it ended, since the driver began.
    pub issued: Duration,
    pub ended: Duration,
    /// Final status (the service's errors count as 0).
    pub status: u16,
    /// Answered by the gate itself (`LocalRateLimited`).
    pub local: bool,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn latency(&self) -> Duration {
        self.ended - self.issued
    }
}

async fn one<S>(svc: S, req: Request<String>, index: usize, t0: Instant) -> Outcome
where
    S: tower::Service<Request<String>, Response = Response<String>>,
    S::Error: std::fmt::Debug,
{
    use tower::ServiceExt;
    let issued = t0.elapsed();
    let (status, local) = match svc.oneshot(req).await {
        Ok(res) => (
            res.status().as_u16(),
            res.extensions()
                .get::<tower_backoff::LocalRateLimited>()
                .is_some(),
        ),
        Err(_) => (0, false),
    };
    Outcome {
        index,
        issued,
        ended: t0.elapsed(),
        status,
        local,
    }
}

/// Sends `n` requests made by `make(i)`, `concurrency` at a time (closed
/// loop: a request is made when a slot frees).
pub async fn drive<S, F>(svc: S, n: usize, concurrency: usize, make: F) -> Vec<Outcome>
where
    S: tower::Service<Request<String>, Response = Response<String>> + Clone,
    S::Error: std::fmt::Debug,
    F: Fn(usize) -> Request<String>,
{
    use futures::stream::StreamExt;
    let t0 = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let svc = svc.clone();
            let req = make(i);
            async move { one(svc, req, i, t0).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// `workers` callers each sending one request after another (made by
/// `make(i)`, `i` counting over all callers) until `until` has passed.
pub async fn workers<S, F>(svc: S, workers: usize, until: Duration, make: F) -> Vec<Outcome>
where
    S: tower::Service<Request<String>, Response = Response<String>> + Clone,
    S::Error: std::fmt::Debug,
    F: Fn(usize) -> Request<String>,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    let runs = (0..workers).map(|_| {
        let svc = svc.clone();
        let (next, make) = (&next, &make);
        async move {
            let mut out = Vec::new();
            // Bounded: at most 100,000 requests per caller.
            for _ in 0..100_000 {
                if t0.elapsed() >= until {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                out.push(one(svc.clone(), make(i), i, t0).await);
            }
            out
        }
    });
    futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Open loop: `n` requests arriving at `rate` per second, each its own task,
/// whatever happens to the earlier ones.
pub async fn open_loop<S, F>(svc: S, n: usize, rate: f64, make: F) -> Vec<Outcome>
where
    S: tower::Service<Request<String>, Response = Response<String>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    F: Fn(usize) -> Request<String>,
{
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(i as f64 / rate)).await;
        tasks.push(tokio::spawn(one(svc.clone(), make(i), i, t0)));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// A request for `https://{host}{path}` with the given method.
pub fn request(method: http::Method, host: &str, path: &str) -> Request<String> {
    Request::builder()
        .method(method)
        .uri(format!("https://{host}{path}"))
        .body(String::new())
        .unwrap()
}

/// A GET for `https://api.example.com{path}`.
pub fn get(path: &str) -> Request<String> {
    request(http::Method::GET, "api.example.com", path)
}

/// A GET costing `cost` tokens: `x-cost` for the server, `RequestCost` for
/// the gate.
pub fn get_costing(path: &str, cost: u64) -> Request<String> {
    let mut req = get(path);
    req.headers_mut().insert("x-cost", HeaderValue::from(cost));
    req.extensions_mut()
        .insert(tower_backoff::RequestCost(cost));
    req
}

/// Percentage.
pub fn pct(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

/// The last end time of a batch.
pub fn makespan(out: &[Outcome]) -> Duration {
    out.iter().map(|o| o.ended).max().unwrap_or_default()
}
