//! Behaviour of `CircuitBreakerLayer` against a mock upstream with an
//! outage, on tokio's paused clock: deterministic, and no real time.
//! Figures are printed (`--nocapture`) for the README and the changelog.

#[path = "support/outage.rs"]
mod outage;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use outage::{get, pound, send, Answer, Client, Upstream};
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_backoff::circuit::{Cause, CircuitState, StateChange};
use tower_backoff::{BackoffRetryLayer, CircuitBreakerLayer, CircuitOpen};

const URI: &str = "http://api.example.com/v1/x";
const SECOND: Duration = Duration::from_secs(1);
const LATENCY: Duration = Duration::from_millis(10);

/// State changes seen by the hook, with when they happened.
type Changes = Arc<Mutex<Vec<(Instant, StateChange)>>>;

/// `layer`, seeded, with a hook recording every change.
fn recorded(layer: CircuitBreakerLayer) -> (CircuitBreakerLayer, Changes) {
    let changes = Changes::default();
    let log = changes.clone();
    // Seeded: the jittered breaks, and so the figures printed, are the same
    // on every run.
    let layer = layer
        .seed(1)
        .on_state_change(move |c| log.lock().unwrap().push((Instant::now(), *c)));
    (layer, changes)
}

fn first(changes: &Changes, to: CircuitState) -> Option<(Instant, StateChange)> {
    changes
        .lock()
        .unwrap()
        .iter()
        .find(|(_, c)| c.to == to)
        .copied()
}

/// The break in effect at `at`: the latest change to open before it.
fn break_at(changes: &Changes, at: Instant) -> Duration {
    changes
        .lock()
        .unwrap()
        .iter()
        .rev()
        .filter(|(t, c)| *t <= at && c.to == CircuitState::Open)
        .find_map(|(_, c)| c.break_duration)
        .unwrap_or_default()
}

fn is_local(a: &Answer) -> bool {
    a.open.is_some()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn a_10s_outage_opens_the_breaker_and_spares_the_upstream() {
    let (down, up, run) = (SECOND, 11 * SECOND, 20 * SECOND);
    let every = Duration::from_millis(50);

    // Without a breaker: the upstream sees every call.
    let bare = Upstream::new(down, up, LATENCY);
    pound(bare.client(), URI, 20, every, run).await;

    let upstream = Upstream::new(down, up, LATENCY);
    let (layer, changes) = recorded(CircuitBreakerLayer::new());
    let answers = pound(
        layer.layer(upstream.client()).boxed_clone(),
        URI,
        20,
        every,
        run,
    )
    .await;

    let (opened, change) = first(&changes, CircuitState::Open).expect("the breaker opens");
    assert_eq!(change.break_duration, Some(5 * SECOND));
    let outage_end = upstream.recovers_at();
    // The same stretch of the outage, measured from the start of each run.
    let since_open = opened - upstream.t0;
    let with = upstream.calls_between(opened, outage_end);
    let without = bare.calls_between(bare.t0 + since_open, bare.recovers_at());
    let share = with as f64 / without as f64;
    eprintln!(
        "10 s outage: opened {:.3} s into it; upstream calls from then to recovery: \
         {with} with the breaker, {without} without ({:.2} %)",
        secs(opened - (upstream.t0 + down)),
        100.0 * share
    );
    assert!(share <= 0.01, "{with} vs {without}");

    // Every local answer: 503, CircuitOpen, Retry-After within the break.
    let local: Vec<_> = answers.iter().filter(|a| is_local(a)).collect();
    assert!(local.len() > 1_000);
    for a in &local {
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.done, a.sent, "answered at once");
        let limit = break_at(&changes, a.sent) + SECOND;
        assert!(a.retry_after.unwrap() <= limit.as_secs(), "{a:?}");
    }
    let first_break_limit = local
        .iter()
        .filter(|a| a.sent < opened + 5 * SECOND)
        .map(|a| a.retry_after.unwrap())
        .max();
    assert_eq!(first_break_limit, Some(5));

    // Recovery: the first success comes within the break then in effect
    // (it re-opened during the outage) plus a second.
    let first_ok = answers
        .iter()
        .find(|a| a.sent >= outage_end && a.status == StatusCode::OK)
        .expect("recovers");
    let reopened = break_at(&changes, outage_end);
    let wait = first_ok.done - outage_end;
    eprintln!(
        "10 s outage: break in effect at recovery {:.2} s; first success {:.2} s after recovery",
        secs(reopened),
        secs(wait)
    );
    assert!(wait <= reopened + SECOND);
    assert_served_after(&answers, first_ok.done);
    assert!(changes
        .lock()
        .unwrap()
        .iter()
        .any(|(_, c)| c.cause == Cause::ProbeSucceeded));
}

/// At least 95 % of the answers sent in the 5 s after `from` came from the
/// upstream.
fn assert_served_after(answers: &[Answer], from: Instant) {
    let after: Vec<_> = answers
        .iter()
        .filter(|a| a.sent >= from && a.sent < from + 5 * SECOND)
        .collect();
    let served = after.iter().filter(|a| !is_local(a)).count();
    let share = served as f64 / after.len() as f64;
    eprintln!(
        "5 s after the first success: {served} of {} answers from the upstream ({:.1} %)",
        after.len(),
        100.0 * share
    );
    assert!(share >= 0.95);
}

#[tokio::test(start_paused = true)]
async fn first_success_within_break_plus_a_second_after_recovery() {
    // A 2 s outage: the service is back before the first break (5 s) ends.
    let upstream = Upstream::new(SECOND, 3 * SECOND, LATENCY);
    let (layer, changes) = recorded(CircuitBreakerLayer::new());
    let every = Duration::from_millis(50);
    let answers = pound(
        layer.layer(upstream.client()).boxed_clone(),
        URI,
        20,
        every,
        15 * SECOND,
    )
    .await;
    assert!(first(&changes, CircuitState::Open).is_some());
    let recovered = upstream.recovers_at();
    let first_ok = answers
        .iter()
        .find(|a| a.sent >= recovered && a.status == StatusCode::OK)
        .expect("recovers");
    let wait = first_ok.done - recovered;
    eprintln!(
        "2 s outage: first success {:.2} s after recovery",
        secs(wait)
    );
    assert!(wait <= 5 * SECOND + SECOND);
    assert_served_after(&answers, first_ok.done);
}

#[tokio::test(start_paused = true)]
async fn keys_are_independent() {
    let svc = tower::service_fn(|req: Request<String>| async move {
        let mut res = Response::new(String::new());
        if req.uri().host() == Some("down.example.com") {
            *res.status_mut() = StatusCode::BAD_GATEWAY;
        }
        Ok::<_, std::convert::Infallible>(res)
    });
    let layer = CircuitBreakerLayer::new();
    let client: Client = BoxCloneService::new(layer.layer(svc));
    for _ in 0..25 {
        send(&client, "http://down.example.com/").await;
    }
    assert!(send(&client, "http://down.example.com/")
        .await
        .open
        .is_some());
    for _ in 0..50 {
        let a = send(&client, "http://up.example.com/").await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let stats = layer.stats();
    assert_eq!(stats.keys.len(), 2);
    assert_eq!(stats.count(CircuitState::Open), 1);
    assert_eq!(stats.count(CircuitState::Closed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_429s_never_opens_it() {
    let upstream = Upstream::new(Duration::ZERO, 3_600 * SECOND, LATENCY).failing_with(429);
    let layer = CircuitBreakerLayer::new().minimum_throughput(2);
    let client = layer.layer(upstream.client()).boxed_clone();
    let answers = pound(client, URI, 20, Duration::from_millis(50), 5 * SECOND).await;
    assert!(answers.len() > 1_000);
    assert!(answers.iter().all(|a| a.status == 429 && a.open.is_none()));
    assert_eq!(upstream.seen().len(), answers.len());
    let stats = layer.stats();
    assert_eq!(stats.count(CircuitState::Closed), 1);
    assert_eq!((stats.keys[0].calls, stats.keys[0].failures), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_at_most_5_probes_run_when_50_arrive_together() {
    // Down for the first second; each call takes 200 ms.
    let upstream = Upstream::new(Duration::ZERO, SECOND, Duration::from_millis(200));
    let layer = CircuitBreakerLayer::new();
    let client = layer.layer(upstream.client()).boxed_clone();
    let trip: Vec<_> = (0..20).map(|_| send(&client, URI)).collect();
    futures::future::join_all(trip).await;
    assert_eq!(layer.stats().count(CircuitState::Open), 1);

    tokio::time::sleep(5 * SECOND).await;
    let before = upstream.seen().len();
    let burst: Vec<_> = (0..50).map(|_| send(&client, URI)).collect();
    let answers = futures::future::join_all(burst).await;
    let probes = upstream.seen().len() - before;
    let local: Vec<_> = answers.iter().filter(|a| is_local(a)).collect();
    eprintln!(
        "half-open burst of 50: {probes} probes reached the upstream, {} answered locally",
        local.len()
    );
    assert_eq!(probes, 5);
    assert_eq!(local.len(), 45);
    assert!(local.iter().all(|a| a.retry_after == Some(1)));
    let waits: Vec<_> = local.iter().map(|a| a.open.unwrap().retry_after).collect();
    assert!(waits.iter().all(|w| *w == Duration::from_millis(500)));
    assert!(answers
        .iter()
        .filter(|a| !is_local(a))
        .all(|a| a.status == 200));
    assert_eq!(layer.stats().count(CircuitState::Closed), 1);
}

#[tokio::test(start_paused = true)]
async fn under_retry_every_request_after_the_breaker_saw_the_outage_ends_200() {
    // A 3 s outage; the breaker breaks for 1 s, the retry layer waits for
    // it. A 1 s window, so that a second of successes before the outage
    // does not outweigh the failures for long (retries slow the callers).
    let upstream = Upstream::new(SECOND, 4 * SECOND, LATENCY);
    let (breaker, changes) = recorded(
        CircuitBreakerLayer::new()
            .sampling_duration(SECOND)
            .break_duration(SECOND),
    );
    let client: Client = BoxCloneService::new(
        ServiceBuilder::new()
            .layer(
                BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
                    .seed(1),
            )
            .layer(breaker)
            .service(upstream.client()),
    );
    let answers = pound(client, URI, 20, Duration::from_millis(50), 10 * SECOND).await;
    let (opened, _) = first(&changes, CircuitState::Open).expect("opens");
    let after: Vec<_> = answers.iter().filter(|a| a.sent >= opened).collect();
    let failed: Vec<_> = after.iter().filter(|a| a.status != 200).collect();
    let during = upstream.calls_between(opened, upstream.recovers_at());
    let before = upstream.calls_between(upstream.t0 + SECOND, opened);
    let early_failures = answers.iter().filter(|a| a.status != 200).count();
    eprintln!(
        "3 s outage under retry: {} requests started after the breaker opened, {} failed; \
         upstream calls during the outage: {before} before it opened, {during} after; \
         {early_failures} requests failed in all",
        after.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert!(during <= 40, "{during}");
}

#[tokio::test(start_paused = true)]
async fn a_post_is_retried_after_a_local_503() {
    let upstream = Upstream::new(Duration::ZERO, SECOND, LATENCY);
    let breaker = CircuitBreakerLayer::new()
        .minimum_throughput(2)
        .break_duration(SECOND);
    let inner = breaker.layer(upstream.client());
    for _ in 0..2 {
        inner.clone().oneshot(get(URI)).await.unwrap();
    }
    assert_eq!(breaker.stats().count(CircuitState::Open), 1);
    let retrying =
        BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
            .layer(inner);
    let post = Request::post(URI).body(String::new()).unwrap();
    let res = retrying.oneshot(post).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(upstream.seen().len(), 3, "sent once, after the break");
}

#[tokio::test(start_paused = true)]
async fn open_as_error_returns_circuit_open_for_any_response_type() {
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let svc = tower::service_fn(|_req: Request<()>| async {
        Err::<u32, BoxError>("connection reset".into())
    });
    let layer = CircuitBreakerLayer::new()
        .minimum_throughput(3)
        .classifier(|res: Result<&u32, &BoxError>| match res {
            Ok(_) => tower_backoff::circuit::CallOutcome::Success,
            Err(_) => tower_backoff::circuit::CallOutcome::Failure,
        })
        .open_as_error();
    let svc = layer.layer(svc);
    for _ in 0..3 {
        let err = svc.clone().oneshot(Request::new(())).await.unwrap_err();
        assert!(err.downcast_ref::<CircuitOpen>().is_none());
    }
    let err = svc.clone().oneshot(Request::new(())).await.unwrap_err();
    let open = err.downcast_ref::<CircuitOpen>().expect("answered locally");
    assert_eq!(open.retry_after, 5 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn hook_and_stats_follow_every_state_change() {
    let upstream = Upstream::new(Duration::ZERO, SECOND, LATENCY);
    let (layer, changes) = recorded(CircuitBreakerLayer::new().minimum_throughput(4));
    let client = layer.layer(upstream.client()).boxed_clone();
    for _ in 0..4 {
        send(&client, URI).await;
    }
    let stats = layer.stats();
    assert_eq!(stats.keys[0].state, CircuitState::Open);
    assert_eq!(stats.keys[0].opened, 1);
    assert!(stats.keys[0].retry_after.is_some());
    assert_eq!(send(&client, URI).await.retry_after, Some(5));
    assert_eq!(layer.stats().rejected, 1);
    tokio::time::sleep(5 * SECOND).await;
    assert_eq!(layer.stats().keys[0].state, CircuitState::HalfOpen);
    assert_eq!(send(&client, URI).await.status, 200);
    let seen: Vec<_> = changes
        .lock()
        .unwrap()
        .iter()
        .map(|(_, c)| (c.from, c.to))
        .collect();
    use CircuitState::*;
    assert_eq!(seen, [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]);
}

#[tokio::test(start_paused = true)]
async fn keys_are_bounded() {
    let upstream = Upstream::new(Duration::ZERO, Duration::ZERO, LATENCY);
    let layer = CircuitBreakerLayer::new().max_keys(16);
    let client = layer.layer(upstream.client()).boxed_clone();
    for i in 0..100 {
        send(&client, &format!("http://host{i}.example.com/")).await;
    }
    assert!(layer.stats().keys.len() <= 16);
}

#[tokio::test(start_paused = true)]
async fn eviction_forgets_quiet_keys_before_an_open_one() {
    let svc = tower::service_fn(|req: Request<String>| async move {
        let mut res = Response::new(String::new());
        if req.uri().host() == Some("down.example.com") {
            *res.status_mut() = StatusCode::BAD_GATEWAY;
        }
        Ok::<_, std::convert::Infallible>(res)
    });
    let layer = CircuitBreakerLayer::new().minimum_throughput(2).max_keys(8);
    let client: Client = BoxCloneService::new(layer.layer(svc));
    for _ in 0..2 {
        send(&client, "http://down.example.com/").await;
    }
    for i in 0..50 {
        send(&client, &format!("http://host{i}.example.com/")).await;
    }
    assert!(layer.stats().keys.len() <= 8);
    assert!(send(&client, "http://down.example.com/")
        .await
        .open
        .is_some());
}

#[test]
fn response_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let upstream = tower::service_fn(|_req: Request<String>| async {
        Ok::<_, std::convert::Infallible>(Response::new(String::new()))
    });
    let mut svc = CircuitBreakerLayer::new().layer(upstream);
    let fut = tower::Service::call(&mut svc, get(URI));
    assert_send(&fut);
}

#[tokio::test(start_paused = true)]
async fn under_retry_an_open_as_error_breaker_is_waited_for_too() {
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let upstream = Upstream::new(Duration::ZERO, SECOND, LATENCY);
    let inner = upstream.client().map_err(BoxError::from);
    let breaker = CircuitBreakerLayer::new()
        .minimum_throughput(2)
        .break_duration(2 * SECOND)
        .open_as_error();
    let svc = breaker.layer(inner);
    for _ in 0..2 {
        svc.clone().oneshot(get(URI)).await.unwrap();
    }
    let started = Instant::now();
    let retrying =
        BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
            .layer(svc);
    let res = retrying.oneshot(get(URI)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The error carried the breaker's wait: the retry came when it ended.
    assert!(Instant::now() - started >= 2 * SECOND);
    assert_eq!(upstream.seen().len(), 3);
}
