//! Behaviour of `BackoffRetryLayer` against scripted mock services (paused
//! clock) and against a real hyper server on loopback.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use support::{calls, reply, scripted, serve_script, Reply};
use tokio::time::Instant;
use tower::retry::budget::TpsBudget;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_backoff::budget::{GrpcThrottle, RetryQuota};
use tower_backoff::retry::{GiveUp, RetryEvent};
use tower_backoff::{BackoffRetryLayer, Idempotency, Jitter, ReplayBody};

fn fast() -> BackoffRetryLayer {
    BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(60)).seed(1)
}

fn get() -> Request<String> {
    Request::new(String::new())
}

fn post() -> Request<String> {
    Request::builder()
        .method(Method::POST)
        .body("payload".to_string())
        .unwrap()
}

/// How long the layer waited between the first attempt and the second.
fn first_wait(seen: &Arc<Mutex<support::Seen>>) -> Duration {
    let at = support::times(seen);
    at[1] - at[0]
}

async fn run(
    layer: BackoffRetryLayer,
    script: Vec<Reply>,
    req: Request<String>,
) -> (u16, usize, Arc<Mutex<support::Seen>>) {
    let (svc, seen) = scripted(script);
    let mut svc = ServiceBuilder::new().layer(layer).service(svc);
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    let n = calls(&seen);
    (res.status().as_u16(), n, seen)
}

#[tokio::test(start_paused = true)]
async fn retries_429_twice_then_returns_200() {
    let (status, n, seen) = run(fast(), vec![reply(429), reply(429), reply(200)], get()).await;
    assert_eq!((status, n), (200, 3));
    // The inner service sees the attempt number (attempt 1 has no extension).
    assert_eq!(seen.lock().unwrap().attempts, [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn never_retries_400() {
    for code in [400, 401, 403, 404, 422] {
        let (status, n, _) = run(fast(), vec![reply(code), reply(200)], get()).await;
        assert_eq!((status, n), (code, 1), "{code}");
    }
}

#[tokio::test(start_paused = true)]
async fn stops_after_max_attempts_and_returns_last_response() {
    let (status, n, _) = run(fast().max_attempts(3), vec![reply(503)], get()).await;
    assert_eq!((status, n), (503, 3));
    let (status, n, _) = run(fast(), vec![reply(500)], get()).await;
    assert_eq!((status, n), (500, 5), "default is 5 attempts");
}

#[tokio::test(start_paused = true)]
async fn never_retries_post_without_idempotency_key_on_500() {
    let (status, n, _) = run(fast(), vec![reply(500), reply(200)], post()).await;
    assert_eq!((status, n), (500, 1));
}

#[tokio::test(start_paused = true)]
async fn retries_post_on_429() {
    let (status, n, _) = run(fast(), vec![reply(429), reply(200)], post()).await;
    assert_eq!((status, n), (200, 2));
}

#[tokio::test(start_paused = true)]
async fn retries_post_on_503_with_retry_after_only() {
    let script = vec![reply(503).header("retry-after", "1"), reply(200)];
    let (status, n, _) = run(fast(), script, post()).await;
    assert_eq!((status, n), (200, 2));
    let (status, n, _) = run(fast(), vec![reply(503), reply(200)], post()).await;
    assert_eq!((status, n), (503, 1));
}

#[tokio::test(start_paused = true)]
async fn retries_rate_limited_403_even_for_a_post() {
    // GitHub's secondary limit: 403 with Retry-After. Not processed, so even
    // a POST without an Idempotency-Key is sent again, after the wait.
    let script = vec![reply(403).header("retry-after", "3"), reply(200)];
    let (status, n, seen) = run(fast(), script, post()).await;
    assert_eq!((status, n), (200, 2));
    let waited = first_wait(&seen);
    assert!(waited >= Duration::from_secs(3), "{waited:?}");

    // GitHub's primary limit: remaining 0 and the reset as a Unix time.
    let reset = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 10;
    let script = vec![
        reply(403)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", reset.to_string()),
        reply(200),
    ];
    let (status, n, seen) = run(fast(), script, get()).await;
    assert_eq!((status, n), (200, 2));
    let waited = first_wait(&seen);
    assert!(waited >= Duration::from_secs(8), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn never_retries_a_plain_403() {
    for req in [get(), post()] {
        let script = vec![reply(403).header("x-ratelimit-remaining", "41"), reply(200)];
        let (status, n, _) = run(fast(), script, req).await;
        assert_eq!((status, n), (403, 1));
    }
}

#[tokio::test(start_paused = true)]
async fn retries_post_with_idempotency_key_on_500() {
    let mut req = post();
    req.headers_mut()
        .insert("idempotency-key", "a1b2".parse().unwrap());
    let (status, n, _) = run(fast(), vec![reply(500), reply(200)], req).await;
    assert_eq!((status, n), (200, 2));
}

#[tokio::test(start_paused = true)]
async fn idempotency_switches_are_explicit() {
    let all = fast().idempotency(Idempotency::AllIdempotent);
    let (_, n, _) = run(all, vec![reply(500), reply(200)], post()).await;
    assert_eq!(n, 2);
    let none = fast().idempotency(Idempotency::NoneIdempotent);
    let (_, n, _) = run(none.clone(), vec![reply(500), reply(200)], get()).await;
    assert_eq!(n, 1, "GET not retried on 500 when nothing is idempotent");
    let (_, n, _) = run(none, vec![reply(429), reply(200)], get()).await;
    assert_eq!(n, 2, "429 proves the request was not processed");
}

#[tokio::test(start_paused = true)]
async fn waits_for_retry_after_seconds() {
    let script = vec![reply(429).header("retry-after", "7"), reply(200)];
    let (status, n, seen) = run(fast(), script, get()).await;
    assert_eq!((status, n), (200, 2));
    let waited = first_wait(&seen);
    assert!(waited >= Duration::from_secs(7), "{waited:?}");
    // Spread above the hint by at most half of it (full jitter).
    assert!(waited <= Duration::from_millis(10_500), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_released_by_the_same_retry_after_are_spread() {
    // 100 requests get `429 Retry-After: 1` at the same instant. Their
    // retries must not all arrive together: none before the second, none
    // past the cap, and spread over hundreds of milliseconds.
    let cap = Duration::from_secs(3);
    let start = Instant::now();
    let retried_at = Arc::new(Mutex::new(Vec::new()));
    let log = retried_at.clone();
    let svc = tower::service_fn(move |req: Request<String>| {
        let first = tower_backoff::Attempt::of(req.extensions()) == 1;
        if !first {
            log.lock().unwrap().push(Instant::now() - start);
        }
        let res = if first {
            Response::builder()
                .status(429)
                .header("retry-after", "1")
                .body(())
        } else {
            Response::builder().body(())
        };
        async move { Ok::<_, std::convert::Infallible>(res.unwrap()) }
    });
    let client = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(Duration::from_millis(100), cap).seed(3))
        .service(svc);
    let all = (0..100).map(|_| client.clone().oneshot(get()));
    for res in futures::future::join_all(all).await {
        assert_eq!(res.unwrap().status(), 200);
    }

    let mut at = retried_at.lock().unwrap().clone();
    at.sort();
    assert_eq!(at.len(), 100);
    assert!(at[0] >= Duration::from_secs(1), "early: {:?}", at[0]);
    assert!(at[99] <= cap, "past the cap: {:?}", at[99]);
    assert!(at[99] - at[0] >= Duration::from_millis(300), "{at:?}");
    // No 10 ms slot holds more than a handful of them.
    let crowd = at
        .iter()
        .map(|t| {
            at.iter()
                .filter(|u| **u >= *t && **u < *t + Duration::from_millis(10))
                .count()
        })
        .max()
        .unwrap();
    assert!(crowd <= 10, "{crowd} retries within 10 ms");
}

#[tokio::test(start_paused = true)]
async fn waits_for_retry_after_http_date() {
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(12));
    let script = vec![reply(503).header("retry-after", when), reply(200)];
    let (status, _, seen) = run(fast(), script, get()).await;
    assert_eq!(status, 200);
    // HTTP-dates have whole-second precision (a hint of 11–12 s), and the
    // wait is spread above the hint by at most half of it.
    let waited = first_wait(&seen);
    assert!(
        waited >= Duration::from_secs(10) && waited <= Duration::from_secs(18),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn waits_for_retry_after_ms() {
    let script = vec![reply(429).header("retry-after-ms", "1500"), reply(200)];
    let (_, _, seen) = run(fast().jitter(Jitter::None), script, get()).await;
    assert!(first_wait(&seen) >= Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_once_when_retry_after_exceeds_the_cap() {
    let start = Instant::now();
    let script = vec![reply(429).header("retry-after", "99999"), reply(200)];
    let (status, n, _) = run(fast(), script, get()).await;
    assert_eq!((status, n), (429, 1));
    assert_eq!(Instant::now(), start, "no time passed");
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_once_on_an_absurd_retry_after() {
    // Over three thousand years: longer than any cap, so the server's answer
    // is returned at once instead of being retried at once.
    let start = Instant::now();
    let script = vec![reply(429).header("retry-after", "99999999999"), reply(200)];
    let (status, n, _) = run(fast(), script, get()).await;
    assert_eq!((status, n), (429, 1));
    assert_eq!(Instant::now(), start, "no time passed");
}

#[tokio::test(start_paused = true)]
async fn ignores_retry_after_when_told_to() {
    let script = vec![reply(429).header("retry-after", "99999"), reply(200)];
    let layer = fast().honor_retry_after(false);
    let (status, n, seen) = run(layer, script, get()).await;
    assert_eq!((status, n), (200, 2));
    assert!(first_wait(&seen) <= Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn hostile_retry_after_values_never_wait_past_the_cap() {
    for value in [
        "-1",
        "1e10",
        "99999999999999999999",
        "",
        "abc",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
    ] {
        let start = Instant::now();
        let script = vec![reply(503).header("retry-after", value), reply(200)];
        let layer =
            BackoffRetryLayer::exponential(Duration::from_millis(10), Duration::from_secs(1));
        let (status, n, _) = run(layer, script, get()).await;
        assert!(n <= 2, "{value}");
        assert!(status == 200 || status == 503, "{value}");
        assert!(
            Instant::now() - start <= Duration::from_secs(1),
            "{value}: waited past the cap"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_after_max_elapsed() {
    let layer = BackoffRetryLayer::constant(Duration::from_secs(4))
        .jitter(Jitter::None)
        .max_attempts(100)
        .max_elapsed(Duration::from_secs(10));
    let start = Instant::now();
    let (status, n, seen) = run(layer, vec![reply(503)], get()).await;
    assert_eq!(status, 503);
    assert_eq!(
        n, 3,
        "attempts at 0 s, 4 s, 8 s; 12 s would pass the deadline"
    );
    assert!(seen
        .lock()
        .unwrap()
        .at
        .iter()
        .all(|t| *t - start <= Duration::from_secs(10)));
    assert!(
        Instant::now() - start <= Duration::from_secs(10),
        "no sleep past the deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn grpc_trailers_only_unavailable_is_retried() {
    let unavailable = reply(200)
        .header("content-type", "application/grpc")
        .header("grpc-status", "14");
    let (status, n, _) = run(fast(), vec![unavailable, reply(200)], post()).await;
    assert_eq!((status, n), (200, 2));
    let invalid = reply(200).header("grpc-status", "3");
    let (_, n, _) = run(fast(), vec![invalid, reply(200)], post()).await;
    assert_eq!(n, 1, "INVALID_ARGUMENT is not retried");
}

#[tokio::test(start_paused = true)]
async fn grpc_pushback_sets_the_delay_or_stops() {
    let exhausted = reply(200)
        .header("grpc-status", "8")
        .header("grpc-retry-pushback-ms", "3000");
    let (_, n, seen) = run(fast(), vec![exhausted, reply(200)], post()).await;
    assert_eq!(n, 2);
    assert!(first_wait(&seen) >= Duration::from_secs(3));
    let stop = reply(200)
        .header("grpc-status", "14")
        .header("grpc-retry-pushback-ms", "-1");
    let (_, n, _) = run(fast(), vec![stop, reply(200)], post()).await;
    assert_eq!(n, 1, "negative pushback means do not retry (gRPC A6)");
}

/// Sends `requests` requests sequentially to an always-failing service
/// through `layer`, and returns the total number of calls made.
async fn outage(layer: BackoffRetryLayer, requests: usize) -> usize {
    let (svc, seen) = scripted(vec![reply(503)]);
    let svc = ServiceBuilder::new().layer(layer).service(svc);
    for _ in 0..requests {
        let res = svc.clone().oneshot(get()).await.unwrap();
        assert_eq!(res.status(), 503);
    }
    calls(&seen)
}

#[tokio::test(start_paused = true)]
async fn grpc_throttle_bounds_calls_during_a_full_outage() {
    let n = outage(fast().budget(GrpcThrottle::new(10, 0.1)), 1000).await;
    assert!(n as f64 <= 1.1 * 1000.0, "{n} calls for 1000 requests");
    assert!(n > 1000, "some retries happen before the throttle closes");
}

#[tokio::test(start_paused = true)]
async fn tps_budget_bounds_calls_during_a_full_outage() {
    let budget = TpsBudget::new(Duration::from_secs(10), 1, 0.05);
    let n = outage(fast().budget(budget), 1000).await;
    assert!(n as f64 <= 1.1 * 1000.0, "{n} calls for 1000 requests");
}

#[tokio::test(start_paused = true)]
async fn retry_quota_bounds_calls_during_a_full_outage() {
    let n = outage(fast().budget(RetryQuota::new()), 1000).await;
    // 500 tokens at 5 per retry: at most 100 retries.
    assert!(n <= 1100, "{n}");
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_budget() {
    let layer = fast().budget(GrpcThrottle::new(4, 0.1));
    let a = outage(layer.clone(), 10).await;
    let b = outage(layer, 10).await;
    assert!(a > 10, "first clone retried while tokens lasted");
    assert_eq!(b, 10, "second clone found the shared throttle closed");
}

#[tokio::test(start_paused = true)]
async fn on_retry_hook_sees_every_retry() {
    let events = Arc::new(Mutex::new(Vec::<RetryEvent>::new()));
    let log = events.clone();
    let layer = fast().on_retry(move |e| log.lock().unwrap().push(*e));
    let script = vec![
        reply(429).header("retry-after", "2"),
        reply(502),
        reply(200),
    ];
    run(layer, script, get()).await;
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].attempt, 2);
    assert!(events[0].delay >= Duration::from_secs(2));
    assert_eq!(events[0].retry_after, Some(Duration::from_secs(2)));
    assert_eq!(events[1].attempt, 3);
}

#[tokio::test(start_paused = true)]
async fn seeded_layers_repeat_their_delays() {
    async fn delays(seed: u64) -> Vec<Duration> {
        let layer = fast().seed(seed).max_attempts(6);
        let (_, _, seen) = run(layer, vec![reply(503)], get()).await;
        let at = seen.lock().unwrap().at.clone();
        at.windows(2).map(|w| w[1] - w[0]).collect()
    }
    assert_eq!(delays(5).await, delays(5).await);
    assert_ne!(delays(5).await, delays(6).await);
}

#[derive(Default)]
struct OneShotBody;

impl ReplayBody for OneShotBody {
    fn try_clone_body(&self) -> Option<Self> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn non_replayable_body_is_sent_once() {
    let (svc, seen) = scripted(vec![reply(503), reply(200)]);
    let svc = ServiceBuilder::new().layer(fast()).service(svc);
    let res = svc.oneshot(Request::new(OneShotBody)).await.unwrap();
    assert_eq!((res.status().as_u16(), calls(&seen)), (503, 1));
}

#[tokio::test(start_paused = true)]
async fn works_as_a_plain_tower_retry_policy() {
    let (svc, seen) = scripted(vec![reply(429), reply(200)]);
    let svc = ServiceBuilder::new()
        .layer(tower::retry::RetryLayer::new(fast()))
        .service(svc);
    let res = svc.oneshot(get()).await.unwrap();
    assert_eq!((res.status().as_u16(), calls(&seen)), (200, 2));
}

#[tokio::test(start_paused = true)]
async fn connection_refused_makes_a_post_safe_to_retry() {
    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    let svc = tower::service_fn(move |_req: Request<String>| {
        let n = t.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                1 => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
                _ => Ok(Response::new(())),
            }
        }
    });
    let svc = ServiceBuilder::new().layer(fast()).service(svc);
    let err = svc.oneshot(post()).await.unwrap_err();
    // Refused → retried; reset (may have been processed) → returned.
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}

#[test]
fn give_up_reasons_say_what_happened() {
    assert_eq!(GiveUp::Budget.to_string(), "retry budget exhausted");
}

#[tokio::test(start_paused = true)]
async fn on_give_up_hook_hears_why_the_retries_stopped() {
    let heard = Arc::new(Mutex::new(Vec::<GiveUp>::new()));
    let log = heard.clone();
    let layer = fast()
        .max_attempts(2)
        .on_give_up(move |why| log.lock().unwrap().push(why));

    // A Retry-After above the cap: the 429 is returned at once.
    let script = vec![reply(429).header("retry-after", "99999"), reply(200)];
    assert_eq!(run(layer.clone(), script, get()).await.1, 1);
    // Attempts used up.
    assert_eq!(run(layer.clone(), vec![reply(503)], get()).await.1, 2);
    // A POST that may have been processed.
    assert_eq!(run(layer.clone(), vec![reply(500)], post()).await.1, 1);
    // Not give-ups: a success, and a failure that is never retried.
    run(layer.clone(), vec![reply(200)], get()).await;
    run(layer, vec![reply(404)], get()).await;

    assert_eq!(
        *heard.lock().unwrap(),
        [
            GiveUp::RetryAfterTooLong,
            GiveUp::Attempts,
            GiveUp::NotIdempotent
        ]
    );
}

#[test]
fn nonsense_settings_are_warned_about_once() {
    use tower::Layer as _;

    let logs = support::logs::Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let svc = tower::service_fn(|_req: Request<String>| async {
        Ok::<_, std::convert::Infallible>(Response::new(()))
    });
    let build = |layer: &BackoffRetryLayer| drop(layer.layer(svc));

    // Base and cap swapped: one warning, however many services are built.
    let swapped =
        BackoffRetryLayer::exponential(Duration::from_secs(2), Duration::from_millis(100));
    build(&swapped);
    build(&swapped);
    build(&swapped.clone());
    {
        let w = logs.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("above the cap"), "{}", w[0]);
    }

    // Zero durations.
    build(&BackoffRetryLayer::constant(Duration::ZERO));
    build(&fast().max_elapsed(Duration::ZERO));
    build(&fast().max_retry_after(Duration::ZERO));
    // Proportional bounds given the wrong way round.
    build(&fast().jitter(Jitter::Proportional {
        low: 1.5,
        high: 0.5,
    }));
    {
        let w = logs.warnings();
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[1].contains("delay is zero"), "{}", w[1]);
        assert!(w[2].contains("max_elapsed is zero"), "{}", w[2]);
        assert!(w[3].contains("max_retry_after is zero"), "{}", w[3]);
        assert!(w[4].contains("Proportional"), "{}", w[4]);
    }

    // Sensible settings: silence.
    build(&fast());
    build(&BackoffRetryLayer::constant(Duration::from_secs(1)));
    build(&BackoffRetryLayer::decorrelated(
        Duration::from_millis(10),
        Duration::from_secs(1),
    ));
    assert_eq!(logs.warnings().len(), 5);
}

// ---- real hyper server on loopback, hyper-util legacy client ----

fn hyper_req(method: Method, addr: std::net::SocketAddr) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("http://{addr}/"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

async fn over_loopback(script: Vec<Reply>, method: Method) -> (u16, usize) {
    let (addr, log) = serve_script(script).await;
    let layer = BackoffRetryLayer::exponential(Duration::from_millis(5), Duration::from_millis(50));
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(support::http_client());
    let res = client.oneshot(hyper_req(method, addr)).await.unwrap();
    let n = log.lock().unwrap().len();
    (res.status().as_u16(), n)
}

#[tokio::test]
async fn loopback_retries_429_then_succeeds() {
    assert_eq!(
        over_loopback(vec![reply(429), reply(429), reply(200)], Method::GET).await,
        (200, 3)
    );
}

#[tokio::test]
async fn loopback_400_is_sent_once() {
    assert_eq!(
        over_loopback(vec![reply(400), reply(200)], Method::GET).await,
        (400, 1)
    );
}

#[tokio::test]
async fn loopback_post_with_500_reaches_the_server_once() {
    assert_eq!(
        over_loopback(vec![reply(500), reply(200)], Method::POST).await,
        (500, 1)
    );
}

#[tokio::test]
async fn loopback_post_with_429_is_retried() {
    assert_eq!(
        over_loopback(vec![reply(429), reply(200)], Method::POST).await,
        (200, 2)
    );
}

#[tokio::test]
async fn loopback_connection_refused_post_is_retried_until_attempts_run_out() {
    // Bind then drop a listener: the port refuses connections.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let events = Arc::new(AtomicU32::new(0));
    let e = events.clone();
    let layer = BackoffRetryLayer::constant(Duration::from_millis(1))
        .max_attempts(3)
        .on_retry(move |_| {
            e.fetch_add(1, Ordering::SeqCst);
        });
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(support::http_client());
    let err = client
        .oneshot(hyper_req(Method::POST, addr))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(
        events.load(Ordering::SeqCst),
        2,
        "a refused POST was not processed: retried"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_requests_while_backing_off_gives_the_quota_back() {
    let quota = RetryQuota::new().capacity(50);
    let layer = BackoffRetryLayer::constant(Duration::from_secs(10))
        .jitter(Jitter::None)
        .budget(quota.clone());
    let (svc, seen) = scripted(vec![reply(503)]);
    let svc = ServiceBuilder::new().layer(layer.clone()).service(svc);
    for _ in 0..2000 {
        // Fails at once, takes 5 tokens for the retry, then is dropped while waiting.
        let cancelled =
            tokio::time::timeout(Duration::from_millis(5), svc.clone().oneshot(get())).await;
        assert!(cancelled.is_err());
    }
    assert_eq!(calls(&seen), 2000, "no retry was sent");
    assert_eq!(quota.available(), 50, "every cancelled retry was refunded");

    // A normal batch afterwards is neither refused nor slowed.
    let (svc, seen) = scripted(vec![reply(503), reply(200)]);
    let svc = ServiceBuilder::new().layer(layer).service(svc);
    let start = Instant::now();
    let res = svc.oneshot(get()).await.unwrap();
    assert_eq!((res.status().as_u16(), calls(&seen)), (200, 2));
    assert_eq!(Instant::now() - start, Duration::from_secs(10));
}
