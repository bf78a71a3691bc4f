//! A mock upstream that is down (answers 500, or fails with an error) for a
//! stretch of time, on tokio's clock, and workers that send it GETs at a
//! fixed pace: the harness of the circuit-breaker tests.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::ServiceExt;
use tower_backoff::CircuitOpen;

/// What every caller in these tests holds.
pub type Client = BoxCloneService<Request<String>, Response<String>, Infallible>;

/// One call the upstream saw.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub at: Instant,
    pub ok: bool,
}

/// An upstream that answers 500 between `down` and `up` (relative to its
/// creation), 200 otherwise, after `latency`; `status_when_down` can make
/// the failure another status (429, say).
#[derive(Clone)]
pub struct Upstream {
    pub t0: Instant,
    down: Duration,
    up: Duration,
    latency: Duration,
    status_when_down: StatusCode,
    seen: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<AtomicU32>,
    max_in_flight: Arc<AtomicU32>,
}

impl Upstream {
    pub fn new(down: Duration, up: Duration, latency: Duration) -> Self {
        Upstream {
            t0: Instant::now(),
            down,
            up,
            latency,
            status_when_down: StatusCode::INTERNAL_SERVER_ERROR,
            seen: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        }
    }

    pub fn failing_with(mut self, status: u16) -> Self {
        self.status_when_down = StatusCode::from_u16(status).unwrap();
        self
    }

    /// When the outage ends.
    pub fn recovers_at(&self) -> Instant {
        self.t0 + self.up
    }

    pub fn is_down(&self, at: Instant) -> bool {
        let since = at.saturating_duration_since(self.t0);
        since >= self.down && since < self.up
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Calls that arrived in `[from, to)`.
    pub fn calls_between(&self, from: Instant, to: Instant) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .count()
    }

    /// The most calls it ever had in flight at once.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn client(&self) -> Client {
        let this = self.clone();
        BoxCloneService::new(tower::service_fn(move |_req: Request<String>| {
            let this = this.clone();
            async move { Ok(this.answer().await) }
        }))
    }

    async fn answer(&self) -> Response<String> {
        let at = Instant::now();
        let down = self.is_down(at);
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        self.seen.lock().unwrap().push(Seen { at, ok: !down });
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut res = Response::new(String::new());
        if down {
            *res.status_mut() = self.status_when_down;
        }
        res
    }
}

/// One answer a worker got.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub sent: Instant,
    pub done: Instant,
    pub status: StatusCode,
    /// Set on the breaker's local answers.
    pub open: Option<CircuitOpen>,
    /// `Retry-After`, in seconds, if any.
    pub retry_after: Option<u64>,
}

/// `workers` callers, each sending a GET for `uri` every `every` through
/// `client` (the next one once the previous has answered and the tick has
/// come), until `until` after the start. Returns every answer.
pub async fn pound(
    client: Client,
    uri: &'static str,
    workers: usize,
    every: Duration,
    until: Duration,
) -> Vec<Answer> {
    let end = Instant::now() + until;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if Instant::now() >= end {
                        return answers;
                    }
                    answers.push(send(&client, uri).await);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|a| a.sent);
    all
}

/// One GET through `client` (a clone of it: the future holds no borrow,
/// so it can be spawned).
pub fn send(client: &Client, uri: &str) -> impl Future<Output = Answer> + Send + 'static {
    let (client, req) = (client.clone(), get(uri));
    async move { answer(client, req).await }
}

async fn answer(client: Client, req: Request<String>) -> Answer {
    let sent = Instant::now();
    let res = client.oneshot(req).await.unwrap();
    Answer {
        sent,
        done: Instant::now(),
        status: res.status(),
        open: res.extensions().get::<CircuitOpen>().copied(),
        retry_after: res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok()),
    }
}

pub fn get(uri: &str) -> Request<String> {
    Request::get(uri).body(String::new()).unwrap()
}
