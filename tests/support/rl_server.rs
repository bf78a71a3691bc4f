//! A rate-limited mock server for the gate's tests: a token bucket on
//! tokio's (paused) clock behind a `tower::service_fn`, with a small
//! per-call latency, answering over-limit calls with 429 and the headers of
//! one of several modes. Clones share the bucket and the counters.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use tokio::time::Instant;

/// Which headers the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// IETF `RateLimit-Policy` + `RateLimit` on every response, and
    /// `Retry-After` on 429s.
    RateLimit,
    /// As `RateLimit`, but `t` is 0 while `remaining > 0`, else the whole
    /// seconds until the next token (as the showdown's server says it).
    RateLimitNextToken,
    /// `Retry-After` (whole seconds) on 429s, nothing else.
    RetryAfter,
    /// A bare 429, no headers.
    Bare,
    /// gRPC trailers-only `RESOURCE_EXHAUSTED` with `grpc-retry-pushback-ms`.
    Grpc,
    /// OpenAI's `x-ratelimit-{limit,remaining,reset}-requests` on every
    /// response (reset: time until the bucket is full again, as `"1.5s"`),
    /// a bare 429 when over.
    OpenAi,
    /// A fixed window of `q` calls per `w` seconds (not a token bucket),
    /// with IETF `RateLimit-Policy` + `RateLimit` on every response and
    /// `Retry-After` on 429s.
    FixedWindow { q: u64, w: u64 },
}

#[path = "../../examples/common/bucket.rs"]
mod bucket;

use bucket::TokenBucket;

#[derive(Debug)]
struct Bucket {
    bucket: TokenBucket,
    seed: u64,
    /// Each way: `base` plus up to `spread`.
    base: Duration,
    spread: Duration,
    calls: u64,
    throttled: u64,
    /// Until this instant every call is throttled (for hold tests).
    closed_until: Option<Instant>,
    /// Fixed-window mode: the current window's index and calls in it.
    window: (u64, u64),
    /// Every decision: (time since creation, accepted).
    log: Vec<(Duration, bool)>,
    born: Instant,
    zero_hint: bool,
}

impl Bucket {
    /// A latency of `base` plus up to `spread`, pseudo-random but
    /// deterministic.
    fn latency(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let spread = self.spread.as_micros().max(1) as u64;
        self.base + Duration::from_micros(self.seed % spread)
    }
}

/// The server's shared state. `service()` makes a cloneable service.
#[derive(Debug, Clone)]
pub struct MockServer {
    bucket: Arc<Mutex<Bucket>>,
    mode: Mode,
}

/// Calls seen and calls throttled so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub throttled: u64,
}

impl MockServer {
    /// A token bucket of `rate` per second holding at most `burst`, full.
    pub fn new(mode: Mode, rate: f64, burst: f64) -> Self {
        MockServer {
            bucket: Arc::new(Mutex::new(Bucket {
                bucket: TokenBucket::new(rate, burst),
                seed: 0x9E37_79B9_7F4A_7C15,
                base: Duration::from_millis(4),
                spread: Duration::from_millis(4),
                calls: 0,
                throttled: 0,
                closed_until: None,
                window: (0, 0),
                log: Vec::new(),
                born: Instant::now(),
                zero_hint: false,
            })),
            mode,
        }
    }

    /// Each-way latency of `base` plus up to `spread` (default 4 + 4 ms).
    pub fn with_latency(self, base: Duration, spread: Duration) -> Self {
        {
            let mut b = self.bucket.lock().unwrap();
            b.base = base;
            b.spread = spread;
        }
        self
    }

    pub fn counts(&self) -> Counts {
        let b = self.bucket.lock().unwrap();
        Counts {
            calls: b.calls,
            throttled: b.throttled,
        }
    }

    /// Calls per `bucket` of time: (accepted, throttled), for diagnostics.
    pub fn timeline(&self, bucket: Duration) -> Vec<(u32, u32)> {
        let b = self.bucket.lock().unwrap();
        let mut out: Vec<(u32, u32)> = Vec::new();
        for &(t, ok) in &b.log {
            let i = (t.as_secs_f64() / bucket.as_secs_f64()) as usize;
            if out.len() <= i {
                out.resize(i + 1, (0, 0));
            }
            if ok {
                out[i].0 += 1;
            } else {
                out[i].1 += 1;
            }
        }
        out
    }

    /// Throttle every call for the next `d`.
    pub fn close_for(&self, d: Duration) {
        self.bucket.lock().unwrap().closed_until = Some(Instant::now() + d);
    }

    /// From now on, refill at `rate` per second.
    pub fn set_rate(&self, rate: f64) {
        let mut b = self.bucket.lock().unwrap();
        b.bucket.set_rate(Instant::now(), rate);
    }

    /// Every `Retry-After` says 0 (a server that asks for no wait at all).
    pub fn with_zero_retry_after(self) -> Self {
        self.bucket.lock().unwrap().zero_hint = true;
        self
    }

    /// Decides one call at the server: `(status, headers)`.
    fn decide(&self) -> (StatusCode, HeaderMap) {
        if let Mode::FixedWindow { q, w } = self.mode {
            return self.decide_window(q, w);
        }
        let now = Instant::now();
        let mut b = self.bucket.lock().unwrap();
        b.calls += 1;
        let closed = b.closed_until.is_some_and(|t| now < t);
        let ok = !closed && b.bucket.take(now, 1.0);
        let tokens = b.bucket.level(now);
        let (rate, burst) = (b.bucket.rate(), b.bucket.burst());
        if !ok {
            b.throttled += 1;
        }
        let t = now.saturating_duration_since(b.born);
        b.log.push((t, ok));
        let mut h = HeaderMap::new();
        let wait = if closed {
            b.closed_until
                .unwrap()
                .saturating_duration_since(now)
                .as_secs_f64()
        } else {
            b.bucket.until(1.0).as_secs_f64()
        };
        let retry_after_secs = if b.zero_hint {
            0
        } else {
            (wait.ceil() as u64).max(1)
        };
        match self.mode {
            Mode::RateLimit | Mode::RateLimitNextToken => {
                let q = rate.round() as u64;
                let r = if closed {
                    0
                } else {
                    tokens.floor().max(0.0) as u64
                };
                let t = if self.mode == Mode::RateLimit {
                    // Seconds until the bucket is full again, rounded up.
                    ((burst - tokens) / rate).ceil().max(wait.ceil()) as u64
                } else if r > 0 {
                    0
                } else {
                    wait.ceil() as u64
                };
                h.insert("ratelimit-policy", hv(&format!("\"default\";q={q};w=1")));
                h.insert("ratelimit", hv(&format!("\"default\";r={r};t={t}")));
                if !ok {
                    h.insert("retry-after", hv(&retry_after_secs.to_string()));
                }
            }
            Mode::RetryAfter => {
                if !ok {
                    h.insert("retry-after", hv(&retry_after_secs.to_string()));
                }
            }
            Mode::OpenAi => {
                let full = (burst - tokens).max(0.0) / rate;
                h.insert(
                    "x-ratelimit-limit-requests",
                    hv(&(burst as u64).to_string()),
                );
                h.insert(
                    "x-ratelimit-remaining-requests",
                    hv(&(tokens.floor().max(0.0) as u64).to_string()),
                );
                h.insert("x-ratelimit-reset-requests", hv(&format!("{:.3}s", full)));
            }
            Mode::Bare | Mode::FixedWindow { .. } => {}
            Mode::Grpc => {
                h.insert("content-type", hv("application/grpc"));
                if !ok {
                    h.insert("grpc-status", hv("8"));
                    let ms = (wait * 1000.0).ceil() as u64;
                    h.insert("grpc-retry-pushback-ms", hv(&ms.max(1).to_string()));
                }
            }
        }
        let status = if ok || self.mode == Mode::Grpc {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        (status, h)
    }

    /// Fixed windows starting when the server was made.
    fn decide_window(&self, q: u64, w: u64) -> (StatusCode, HeaderMap) {
        let now = Instant::now();
        let mut b = self.bucket.lock().unwrap();
        b.calls += 1;
        let since = now.saturating_duration_since(b.born).as_secs_f64();
        let index = (since / w as f64) as u64;
        if b.window.0 != index {
            b.window = (index, 0);
        }
        let ok = b.window.1 < q;
        if ok {
            b.window.1 += 1;
        } else {
            b.throttled += 1;
        }
        let t = now.saturating_duration_since(b.born);
        b.log.push((t, ok));
        let r = q - b.window.1;
        let reset = ((index + 1) as f64 * w as f64 - since).ceil() as u64;
        let mut h = HeaderMap::new();
        h.insert("ratelimit-policy", hv(&format!("\"default\";q={q};w={w}")));
        h.insert("ratelimit", hv(&format!("\"default\";r={r};t={reset}")));
        if !ok {
            h.insert("retry-after", hv(&reset.max(1).to_string()));
        }
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        (status, h)
    }

    /// A service answering like this server, after a request and a response
    /// latency (4–8 ms each by default).
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
        tower::service_fn(move |_req: Request<B>| {
            let server = server.clone();
            async move {
                let up = server.bucket.lock().unwrap().latency();
                tokio::time::sleep(up).await;
                let (status, headers) = server.decide();
                let down = server.bucket.lock().unwrap().latency();
                tokio::time::sleep(down).await;
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

/// A response with the given status and headers, for scripted servers.
pub fn response(status: u16, headers: &[(&str, &str)]) -> Response<String> {
    let mut res = Response::new(String::new());
    *res.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        res.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            // from_bytes: non-ASCII (obs-text) values are allowed, as hostile
            // servers send them.
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    res
}

/// A response with one header whose value is raw bytes (not UTF-8).
pub fn response_raw(status: u16, name: &str, value: &[u8]) -> Response<String> {
    let mut res = response(status, &[]);
    res.headers_mut().append(
        HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_bytes(value).unwrap(),
    );
    res
}

/// A GET for `authority`.
pub fn get(authority: &str) -> Request<String> {
    Request::get(format!("https://{authority}/v1/x"))
        .body(String::new())
        .unwrap()
}

/// What a batch of requests saw.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Requests that finally got a 2xx.
    pub succeeded: u64,
    /// Local 429s (the gate's own) seen along the way.
    pub local_429: u64,
    /// Virtual time from the first call to the last answer.
    pub makespan: Duration,
}

/// Sends `n` requests for `authority`, `concurrency` at a time, each retried
/// until it succeeds: at once after a server throttle (the gate holds it),
/// after `Retry-After` after a local 429.
pub async fn run_batch<S>(svc: S, n: usize, concurrency: usize, authority: &str) -> Batch
where
    S: tower::Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    use futures::stream::StreamExt;
    use tower::ServiceExt;

    let start = Instant::now();
    let results: Vec<(bool, u64)> = futures::stream::iter(0..n)
        .map(|_| {
            let svc = svc.clone();
            let authority = authority.to_owned();
            async move {
                let mut local = 0;
                for _ in 0..1_000 {
                    let res = svc.clone().oneshot(get(&authority)).await.unwrap();
                    if res.status().is_success() && res.headers().get("grpc-status").is_none() {
                        return (true, local);
                    }
                    if res
                        .extensions()
                        .get::<tower_backoff::LocalRateLimited>()
                        .is_some()
                    {
                        local += 1;
                        let secs: u64 = res.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                    }
                }
                (false, local)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Batch {
        succeeded: results.iter().filter(|r| r.0).count() as u64,
        local_429: results.iter().map(|r| r.1).sum(),
        makespan: start.elapsed(),
    }
}
