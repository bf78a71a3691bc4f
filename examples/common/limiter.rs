//! The rate-limited server's logic: a token bucket that answers every call
//! with 200 or 429 and counts what it saw.
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
}

impl Mode {
    /// The flag value naming each mode, for `--mode`.
    pub const NAMES: &'static str = "retry-after | ratelimit | none";

    /// Parses a `--mode` value.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "retry-after" => Some(Mode::RetryAfter),
            "ratelimit" => Some(Mode::RateLimit),
            "none" => Some(Mode::None),
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
}

/// What the bucket decided for one call.
enum Verdict {
    /// Served; `remaining` whole tokens are left.
    Allowed {
        remaining: u64,
        next_token: Duration,
    },
    /// Refused; a token will be there after `wait`.
    Refused { wait: Duration },
}

struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// A token bucket with call counters, shared by every connection.
pub struct Limiter {
    limits: Limits,
    bucket: Mutex<Bucket>,
    sent: AtomicU64,
    wasted: AtomicU64,
}

impl Limiter {
    /// A limiter whose bucket starts full.
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(limits.burst),
                refilled_at: Instant::now(),
            }),
            sent: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
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
        CallCounts {
            sent: self.sent.load(Ordering::Relaxed),
            wasted: self.wasted.load(Ordering::Relaxed),
        }
    }

    fn admit(&self) -> Verdict {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let rate = self.limits.rate;
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.tokens =
            (bucket.tokens + elapsed.as_secs_f64() * rate).min(f64::from(self.limits.burst));
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Verdict::Allowed {
                remaining: bucket.tokens as u64,
                next_token: secs_until_one_token(bucket.tokens, rate),
            }
        } else {
            self.wasted.fetch_add(1, Ordering::Relaxed);
            Verdict::Refused {
                wait: secs_until_one_token(bucket.tokens, rate),
            }
        }
    }

    fn respond(&self, verdict: Verdict) -> Response<Full<Bytes>> {
        let (status, body): (_, &'static [u8]) = match verdict {
            Verdict::Allowed { .. } => (StatusCode::OK, b"ok\n"),
            Verdict::Refused { .. } => (StatusCode::TOO_MANY_REQUESTS, b"slow down\n"),
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

/// `"default";r=<remaining>;t=<whole seconds until a token>`.
fn ratelimit_header(remaining: u64, reset: Duration) -> HeaderValue {
    let reset = if remaining > 0 {
        0
    } else {
        whole_secs_up(reset.as_secs_f64())
    };
    text(&format!("\"default\";r={remaining};t={reset}"))
}

fn secs_until_one_token(tokens: f64, rate: f64) -> Duration {
    Duration::from_secs_f64(((1.0 - tokens) / rate).max(0.0))
}

fn whole_secs_up(secs: f64) -> u64 {
    secs.ceil() as u64
}

fn text(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
