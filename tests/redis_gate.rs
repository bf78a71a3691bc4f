//! Gates in separate "processes" (each with its own store connection and
//! local state) sharing one limit through a real `redis-server`. Real time;
//! every run is bounded.

#[path = "support/redis.rs"]
mod redis_server;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use redis_server::RedisServer;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};
use tower::{Service, ServiceExt};
use tower_backoff::rate_limit::Limit;
use tower_backoff::{RateLimitAwareLayer, RedisStore};

const LIMIT_RATE: u64 = 100;
const LIMIT_BURST: u64 = 10;

/// Times at which the (shared) server saw a call.
type Seen = Arc<Mutex<Vec<Instant>>>;

type Client = tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>;

/// One process's client: its own store connection, its own gate, the
/// configured limit, in front of a server that answers `status`.
async fn process(
    url: &str,
    seen: &Seen,
    status: u16,
    retry_after: Option<&'static str>,
) -> (Client, RedisStore) {
    let limit = Limit::requests(LIMIT_RATE, Duration::from_secs(1)).burst(LIMIT_BURST);
    gate(url, seen, Some(limit), move |_| (status, retry_after)).await
}

/// One process's client, with `limit` configured or none, in front of a
/// server whose answer to its `n`-th call (from 0) is `reply(n)`: a status
/// and a `Retry-After`.
async fn gate(
    url: &str,
    seen: &Seen,
    limit: Option<Limit>,
    reply: impl Fn(usize) -> (u16, Option<&'static str>) + Clone + Send + 'static,
) -> (Client, RedisStore) {
    let store = RedisStore::connect(url)
        .await
        .expect("connects")
        .prefix("gate-test")
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200));
    let seen = seen.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = tower::service_fn(move |_req: Request<String>| {
        seen.lock().unwrap().push(Instant::now());
        let (status, retry_after) = reply(calls.fetch_add(1, Ordering::Relaxed));
        let mut res = Response::builder().status(status);
        if let Some(ra) = retry_after {
            res = res.header("retry-after", ra);
        }
        std::future::ready(Ok::<_, Infallible>(res.body(String::new()).unwrap()))
    });
    let mut layer = RateLimitAwareLayer::new().store(store.clone());
    if let Some(limit) = limit {
        layer = layer.limit(limit);
    }
    let client = tower::ServiceBuilder::new().layer(layer).service(server);
    (tower::util::BoxCloneService::new(client), store)
}

fn req() -> Request<String> {
    Request::get("http://api.example.com/v1/x")
        .body(String::new())
        .unwrap()
}

/// One request through `client`: its answer's status.
async fn status_of(client: &mut Client) -> StatusCode {
    let res = client.ready().await.unwrap().call(req()).await;
    res.unwrap().status()
}

/// Sends `n` requests at concurrency 10; returns how many were answered.
fn send(set: &mut JoinSet<usize>, client: &Client, n: usize) {
    for _ in 0..10 {
        let client = client.clone();
        set.spawn(async move {
            let mut answered = 0;
            for _ in 0..n / 10 {
                let res = client.clone().oneshot(req()).await;
                answered += usize::from(res.is_ok());
            }
            answered
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_gates_keep_one_configured_limit_together() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let seen = Seen::default();
    let mut set = JoinSet::new();
    let mut stores = Vec::new();
    for _ in 0..4 {
        let (client, store) = process(&server.url(), &seen, 200, None).await;
        send(&mut set, &client, 60);
        stores.push(store);
    }
    let start = Instant::now();
    let mut answered = 0;
    while let Some(n) = timeout(Duration::from_secs(10), set.join_next())
        .await
        .expect("every request ends")
    {
        answered += n.unwrap();
    }
    assert_eq!(answered, 240);
    let elapsed = start.elapsed().as_secs_f64();
    // Alone, each gate would let 100/s + 10 go: 240 in well under a second.
    // Together they keep to one limit: 240 take about (240 − 10) / 100 s.
    assert!(
        elapsed >= 2.0,
        "240 requests in {elapsed:.2} s: the limit was not shared"
    );
    let seen = seen.lock().unwrap();
    for (i, &t) in seen.iter().enumerate() {
        let in_a_second = seen[i..]
            .iter()
            .take_while(|&&u| u < t + Duration::from_secs(1))
            .count();
        assert!(
            in_a_second as u64 <= LIMIT_RATE + LIMIT_BURST + 5,
            "{in_a_second} calls in 1 s"
        );
    }
    let calls: u64 = stores.iter().map(RedisStore::redis_calls).sum();
    eprintln!("{calls} Redis calls for 240 requests");
    assert!(calls < 240, "{calls} Redis calls for 240 requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_requests_go_on_locally_and_sharing_resumes_after_restart() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let seen = Seen::default();
    let mut set = JoinSet::new();
    let mut procs = Vec::new();
    for _ in 0..4 {
        let (client, store) = process(&server.url(), &seen, 200, None).await;
        send(&mut set, &client, 100);
        procs.push((client, store));
    }
    sleep(Duration::from_millis(300)).await;
    server.kill();
    let killed = Instant::now();
    let mut answered = 0;
    while let Some(n) = timeout(Duration::from_secs(10), set.join_next())
        .await
        .expect("every request ends")
    {
        answered += n.unwrap();
    }
    // None lost; after the kill each gate keeps its own limit, so the rest
    // go at up to four times the shared rate.
    assert_eq!(answered, 400);
    assert!(
        killed.elapsed() < Duration::from_secs(4),
        "{:?} after the kill",
        killed.elapsed()
    );
    assert!(procs.iter().all(|(_, s)| !s.is_sharing()));

    server.restart();
    // After its back-off (50 ms, doubling to 200 ms), each gate's store
    // probes Redis again and shares.
    for (client, store) in &procs {
        let deadline = Instant::now() + Duration::from_secs(3);
        while !store.is_sharing() {
            assert!(Instant::now() < deadline, "sharing did not resume");
            client.clone().oneshot(req()).await.unwrap();
            sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_one_gate_sees_holds_the_others() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let seen = Seen::default();
    let (throttled, _a) = process(&server.url(), &seen, 429, Some("30")).await;
    let (other, _b) = process(&server.url(), &seen, 200, None).await;
    let mut other = other;
    assert_eq!(status_of(&mut other).await, 200);
    let res = throttled.oneshot(req()).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The other process learns the hold within its sync period and waits.
    sleep(Duration::from_millis(400)).await;
    let t = Instant::now();
    let waited = timeout(
        Duration::from_millis(500),
        other.ready().await.unwrap().call(req()),
    )
    .await;
    assert!(
        waited.is_err(),
        "the other gate let a request through a shared hold"
    );
    assert!(t.elapsed() >= Duration::from_millis(500));
}

/// A process whose first call is refused with a short `Retry-After` while
/// another process's calls are accepted learned nothing of the fleet's
/// rate: it saw none of what the server accepted (the other took the
/// burst, and the shared count reaches it late). It must not hold every
/// process for the hint, nor itself for all of it: it probes again after
/// a short back-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_refusal_with_a_short_hint_holds_no_other_process() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let seen = Seen::default();
    let (mut other, _a) = gate(&server.url(), &seen, None, |_| (200, None)).await;
    let (mut late, _b) = gate(&server.url(), &seen, None, |n| match n {
        0 => (429, Some("1")),
        _ => (200, None),
    })
    .await;
    assert_eq!(status_of(&mut other).await, 200);
    let refused = late.ready().await.unwrap().call(req()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // The other process reads holds back from the store every 50 ms while
    // it sends: it calls every 60 ms for 600 ms, so that a hold for the
    // hint, had one been published, reaches it and holds a call well past
    // the bound (half the hint).
    let bound = Duration::from_millis(500);
    for _ in 0..10 {
        sleep(Duration::from_millis(60)).await;
        let call = other.ready().await.unwrap().call(req());
        let res = timeout(bound, call).await;
        let res = res.expect("the other process was held for the hint");
        assert_eq!(res.unwrap().status(), 200);
    }
    let again = timeout(bound, late.ready().await.unwrap().call(req())).await;
    let again = again.expect("the refused process waited out the hint");
    assert_eq!(again.unwrap().status(), 200);
}
