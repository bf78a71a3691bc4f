//! Load on loopback: 10,000 concurrent requests through `BackoffRetryLayer` +
//! `RateLimitAwareLayer` over a hyper-util client, to a hyper server that
//! enforces a token bucket. Every request ends with exactly one outcome,
//! counted on both sides, and the server never sees more calls than the
//! policy allows. Bounded in count and time; asserts invariants that hold
//! whatever the timing, and prints the success and 429 counts.

#[path = "../examples/common/bucket.rs"]
mod bucket;
mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

const REQUESTS: usize = 10_000;
const MAX_ATTEMPTS: u32 = 10;
const RATE: f64 = 4_000.0;
const BURST: f64 = 200.0;

#[derive(Default)]
struct ServerLog {
    calls: u64,
    throttled: u64,
    /// Calls per request id.
    per_id: Vec<u32>,
}

/// A hyper server with a token bucket of `RATE`/s and `BURST`, sending IETF
/// RateLimit headers and `Retry-After` on its 429s.
async fn start_server(log: Arc<Mutex<ServerLog>>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bucket = Arc::new(Mutex::new(bucket::TokenBucket::new(RATE, BURST)));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, bucket) = (log.clone(), bucket.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (log, bucket) = (log.clone(), bucket.clone());
                    async move {
                        let id: usize = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(usize::MAX);
                        let _ = req.into_body().collect().await;
                        let (ok, remaining, reset) = {
                            let mut b = bucket.lock().unwrap();
                            let now = tokio::time::Instant::now();
                            let ok = b.take(now, 1.0);
                            let remaining = b.level(now).max(0.0);
                            let reset = b.until(1.0).as_secs_f64().ceil() as u64;
                            (ok, remaining.floor() as u64, reset)
                        };
                        {
                            let mut l = log.lock().unwrap();
                            l.calls += 1;
                            l.throttled += u64::from(!ok);
                            if let Some(n) = l.per_id.get_mut(id) {
                                *n += 1;
                            }
                        }
                        let policy = format!("\"default\";q={};w=1", RATE as u64);
                        let state = format!("\"default\";r={remaining};t={reset}");
                        let mut res = Response::builder()
                            .header("ratelimit-policy", policy)
                            .header("ratelimit", state);
                        if !ok {
                            res = res.status(429).header("retry-after", "1");
                        }
                        Ok::<_, Infallible>(res.body(Full::new(Bytes::new())).unwrap())
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_each_end_exactly_once() {
    let log = Arc::new(Mutex::new(ServerLog {
        per_id: vec![0; REQUESTS],
        ..ServerLog::default()
    }));
    let addr = start_server(log.clone()).await;

    let client = ServiceBuilder::new()
        .layer(
            BackoffRetryLayer::exponential(Duration::from_millis(50), Duration::from_secs(2))
                .max_attempts(MAX_ATTEMPTS)
                .max_elapsed(Duration::from_secs(60)),
        )
        // One line, hyper's `Incoming` response body as it is.
        .layer(RateLimitAwareLayer::new())
        .service(support::http_client());

    let started = Instant::now();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|id| {
            let req = Request::builder()
                .uri(format!("http://{addr}/item/{id}"))
                .header("x-request-id", id.to_string())
                .body(Full::new(Bytes::new()))
                .unwrap();
            tokio::spawn(client.clone().oneshot(req))
        })
        .collect();

    let (mut ok, mut throttled, mut errors) = (0usize, 0usize, 0usize);
    for task in tasks {
        let outcome = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("no request hangs")
            .expect("no task panics");
        match outcome {
            Ok(res) if res.status() == 200 => ok += 1,
            Ok(_) => throttled += 1,
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed();
    let log = log.lock().unwrap();
    eprintln!(
        "{REQUESTS} requests: {ok} ok, {throttled} throttled, {errors} errors; server: {} calls, {} 429s; {:.1}s (ideal {:.1}s)",
        log.calls,
        log.throttled,
        elapsed.as_secs_f64(),
        REQUESTS as f64 / RATE,
    );
    // Exactly one outcome per request.
    assert_eq!(ok + throttled + errors, REQUESTS);
    // The server saw every request, none more than the policy allows.
    assert!(log.per_id.iter().all(|&n| (1..=MAX_ATTEMPTS).contains(&n)));
    assert!(log.calls <= REQUESTS as u64 * u64::from(MAX_ATTEMPTS));
    assert_eq!(
        log.calls,
        log.per_id.iter().map(|&n| u64::from(n)).sum::<u64>()
    );
    // How many succeeded and how many calls were wasted depends on timing
    // (real sockets, a shared machine): reported above, measured by the
    // showdown, not asserted here.
}
