//! The rate-limited server's logic: a token bucket that answers every call
//! with 200 or 429 and counts what it saw; in `outage` mode it is also down
//! (every call answered 503) for a stretch, then recovers.
//!
//! The showdown puts it behind a hyper server, the simulation behind a
//! `tower::service_fn`; both read the clock through `tokio::time`, so the
//! same bucket runs on the wall clock and on tokio's paused clock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;

/// Time the server takes to answer a call, over and above the bucket.
pub const SERVER_LATENCY: Duration = Duration::from_millis(2);

/// How the server says "too many requests".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 429 with `Retry-After` in whole seconds, rounded up (RFC 9110 §10.2.3).
    RetryAfter,
    /// IETF `RateLimit-Policy` and `RateLimit` on every response
    /// (draft-ietf-httpapi-ratelimit-headers), plus `Retry-After` on 429.
    RateLimit,
    /// A bare 429: the client learns nothing.
    None,
    /// 429 as in `RetryAfter`, and an outage: for a stretch every call is
    /// answered `503 Service Unavailable` without `Retry-After`.
    Outage,
}

impl Mode {
    /// The flag value naming each mode, for `--mode`.
    pub const NAMES: &'static str = "retry-after | ratelimit | none | outage";

    /// Parses a `--mode` value.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "retry-after" => Some(Mode::RetryAfter),
            "ratelimit" => Some(Mode::RateLimit),
            "none" => Some(Mode::None),
            "outage" => Some(Mode::Outage),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::RetryAfter => "retry-after",
            Mode::RateLimit => "ratelimit",
            Mode::None => "none",
            Mode::Outage => "outage",
        })
    }
}

/// The limit the server enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Tokens added per second: the sustained rate the server allows.
    pub rate: f64,
    /// Bucket size: how many calls may arrive at once after a quiet spell.
    pub burst: u32,
    /// How 429s are announced.
    pub mode: Mode,
    /// When the server is down, from its start (`Mode::Outage`).
    pub outage: Option<Outage>,
}

/// A stretch during which the server answers every call with 503.
#[derive(Clone, Copy, Debug)]
pub struct Outage {
    /// From the server's start to the first failed call.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
}

impl Limits {
    /// Time the bucket takes to refill from empty, in whole seconds (at
    /// least 1): the `w` of `RateLimit-Policy`.
    fn window_secs(&self) -> u64 {
        whole_secs_up(f64::from(self.burst) / self.rate).max(1)
    }
}

/// Calls seen by the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallCounts {
    /// Every call that reached the server.
    pub sent: u64,
    /// Calls answered 429 or 5xx: work the client could have saved.
    pub wasted: u64,
    /// In `outage` mode: what happened around the outage.
    pub outage: Option<OutageCounts>,
}

/// Calls during the outage, and how soon after it a call succeeded.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutageCounts {
    /// Calls that reached the server while it was down.
    pub calls: u64,
    /// From the end of the outage to the first call served 200.
    pub first_ok: Option<Duration>,
}

/// What the bucket decided for one call.
enum Verdict {
    /// Served; `remaining` whole tokens are left, and one more comes after
    /// `next_token` (zero when the bucket is full).
    Allowed {
        remaining: u64,
        next_token: Duration,
    },
    /// Refused; a token will be there after `wait`.
    Refused { wait: Duration },
    /// The server is down.
    Down,
}

struct Bucket {
    tokens: f64,
    refilled_at: Instant,
    /// When the first call after the outage was served.
    first_ok: Option<Instant>,
}

/// A token bucket with call counters, shared by every connection.
pub struct Limiter {
    limits: Limits,
    bucket: Mutex<Bucket>,
    started: Instant,
    sent: AtomicU64,
    wasted: AtomicU64,
    during_outage: AtomicU64,
}

impl Limiter {
    /// A limiter whose bucket starts full.
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(limits.burst),
                refilled_at: Instant::now(),
                first_ok: None,
            }),
            started: Instant::now(),
            sent: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            during_outage: AtomicU64::new(0),
        }
    }

    /// Answers one call: the bucket decides at arrival, the answer leaves
    /// [`SERVER_LATENCY`] later.
    pub async fn serve(&self) -> Response<Full<Bytes>> {
        let verdict = self.admit();
        tokio::time::sleep(SERVER_LATENCY).await;
        self.respond(verdict)
    }

    /// What the server has counted so far.
    pub fn counts(&self) -> CallCounts {
        let first_ok = self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first_ok;
        CallCounts {
            sent: self.sent.load(Ordering::Relaxed),
            wasted: self.wasted.load(Ordering::Relaxed),
            outage: self.limits.outage.map(|_| OutageCounts {
                calls: self.during_outage.load(Ordering::Relaxed),
                first_ok: first_ok.zip(self.recovered_at()).map(|(ok, up)| ok - up),
            }),
        }
    }

    /// When the outage ends, if there is one.
    fn recovered_at(&self) -> Option<Instant> {
        let o = self.limits.outage?;
        Some(self.started + o.start + o.length)
    }

    /// Whether the server is down at `now`.
    fn is_down(&self, now: Instant) -> bool {
        self.limits.outage.is_some_and(|o| {
            let since = now.saturating_duration_since(self.started);
            since >= o.start && since < o.start + o.length
        })
    }

    fn admit(&self) -> Verdict {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if self.is_down(now) {
            self.during_outage.fetch_add(1, Ordering::Relaxed);
            self.wasted.fetch_add(1, Ordering::Relaxed);
            return Verdict::Down;
        }
        let (rate, burst) = (self.limits.rate, f64::from(self.limits.burst));
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * rate).min(burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            if bucket.first_ok.is_none() && self.recovered_at().is_some_and(|up| now >= up) {
                bucket.first_ok = Some(now);
            }
            Verdict::Allowed {
                remaining: bucket.tokens as u64,
                next_token: until_next_token(bucket.tokens, burst, rate),
            }
        } else {
            self.wasted.fetch_add(1, Ordering::Relaxed);
            Verdict::Refused {
                wait: until_next_token(bucket.tokens, burst, rate),
            }
        }
    }

    fn respond(&self, verdict: Verdict) -> Response<Full<Bytes>> {
        let (status, body): (_, &'static [u8]) = match verdict {
            Verdict::Allowed { .. } => (StatusCode::OK, b"ok\n"),
            Verdict::Refused { .. } => (StatusCode::TOO_MANY_REQUESTS, b"slow down\n"),
            Verdict::Down => (StatusCode::SERVICE_UNAVAILABLE, b"down\n"),
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Verdict::Refused { wait } = verdict {
            if self.limits.mode != Mode::None {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(whole_secs_up(wait.as_secs_f64()).max(1)),
                );
            }
        }
        if self.limits.mode == Mode::RateLimit {
            let (remaining, reset) = match verdict {
                Verdict::Allowed {
                    remaining,
                    next_token,
                } => (remaining, next_token),
                Verdict::Refused { wait } => (0, wait),
                Verdict::Down => (0, Duration::ZERO),
            };
            headers.insert("ratelimit-policy", self.policy_header());
            headers.insert("ratelimit", ratelimit_header(remaining, reset));
        }
        response
    }

    /// `"default";q=<quota>;w=<window>`. The quota per window is rate × w,
    /// which is the burst whenever the burst is a whole number of seconds of
    /// rate (as in the defaults), so the advertised pace is always the true one.
    fn policy_header(&self) -> HeaderValue {
        let window = self.limits.window_secs();
        let quota = (self.limits.rate * window as f64).round() as u64;
        text(&format!("\"default\";q={quota};w={window}"))
    }
}

/// `"default";r=<remaining>;t=<next>`: `t` is the whole seconds, rounded
/// up, "until additional quota … is made available" (draft-ietf-httpapi-
/// ratelimit-headers-10; earlier drafts said "until the quota resets", which
/// a token bucket never does all at once).
fn ratelimit_header(remaining: u64, next: Duration) -> HeaderValue {
    let next = whole_secs_up(next.as_secs_f64());
    text(&format!("\"default\";r={remaining};t={next}"))
}

/// Time until the bucket holds one more whole token than now; zero when it
/// is full.
fn until_next_token(tokens: f64, burst: f64, rate: f64) -> Duration {
    if tokens >= burst {
        return Duration::ZERO;
    }
    let missing = tokens.floor() + 1.0 - tokens;
    Duration::from_secs_f64((missing / rate).max(0.0))
}

fn whole_secs_up(secs: f64) -> u64 {
    secs.ceil() as u64
}

fn text(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
