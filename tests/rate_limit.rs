//! Behaviour of `RateLimitAwareLayer` against mock servers, on tokio's paused
//! clock: everything here is deterministic and takes no real time.

#[path = "support/rl_server.rs"]
mod rl_server;
mod support;

use support::{reply, reply_with};

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use rl_server::{get, response, run_batch, MockServer, Mode};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_backoff::{LocalRateLimited, RateLimitAwareLayer};

/// Time a call takes, and its response.
async fn timed<S>(svc: &mut S, req: Request<String>) -> (Duration, Response<String>)
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    let start = Instant::now();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    (start.elapsed(), res)
}

/// Accepted/throttled calls per second, for the log.
fn per_second(server: &MockServer) -> String {
    server
        .timeline(Duration::from_secs(1))
        .iter()
        .map(|(ok, no)| format!("{ok}/{no}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn pct(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

/// Sends `n` requests, 50 at a time, through a fresh gate to `server`, and
/// prints what the server saw: calls, 429s, makespan, and the per-second
/// timeline.
async fn through_gate(
    server: &MockServer,
    n: usize,
    authority: &str,
    label: &str,
) -> (rl_server::Batch, rl_server::Counts) {
    let svc = RateLimitAwareLayer::new().layer(server.service());
    let batch = run_batch(svc, n, 50, authority).await;
    let c = server.counts();
    eprintln!(
        "{label}: {} calls, {} server 429s ({:.2} %), makespan {:.2?}",
        c.calls,
        c.throttled,
        pct(c.throttled, c.calls),
        batch.makespan
    );
    eprintln!("  accepted/throttled per second: {}", per_second(server));
    (batch, c)
}

#[tokio::test(start_paused = true)]
async fn ratelimit_headers_keep_server_429s_under_half_a_percent() {
    let server = MockServer::new(Mode::RateLimit, 100.0, 10.0);
    let (batch, c) = through_gate(&server, 1_000, "api.example.com", "ratelimit mode").await;
    assert_eq!(batch.succeeded, 1_000);
    assert_eq!(batch.local_429, 0);
    assert!(pct(c.throttled, c.calls) <= 0.5, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn ratelimit_headers_with_reset_zero_while_remaining_keep_429s_rare() {
    // `t=0` while tokens remain: every reply looks like a fresh window, and
    // replies that overtook others must not raise the count.
    let server = MockServer::new(Mode::RateLimitNextToken, 100.0, 10.0);
    let (batch, c) = through_gate(
        &server,
        1_000,
        "api.example.com",
        "ratelimit (t=0 while remaining) mode",
    )
    .await;
    assert_eq!(batch.succeeded, 1_000);
    assert!(pct(c.throttled, c.calls) <= 0.5, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_only_keeps_server_429s_under_three_percent() {
    let server = MockServer::new(Mode::RetryAfter, 100.0, 10.0);
    let (batch, c) = through_gate(&server, 1_000, "api.example.com", "retry-after mode").await;
    assert_eq!(batch.succeeded, 1_000);
    assert_eq!(batch.local_429, 0);
    assert!(pct(c.throttled, c.calls) <= 3.0, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fixed_window_is_used_up_then_waited_out_never_mistaken_for_a_bucket() {
    // 200 calls per 2 s window: 1,000 calls need 5 windows, 8 s at best.
    let server = MockServer::new(Mode::FixedWindow { q: 200, w: 2 }, 0.0, 0.0);
    let (batch, c) = through_gate(&server, 1_000, "window.example.com", "fixed window mode").await;
    assert_eq!(batch.succeeded, 1_000);
    assert!(pct(c.throttled, c.calls) <= 0.5, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn openai_style_headers_pace_slow_llm_calls() {
    // 600 requests a minute with a limit of 100 (a token bucket whose reset
    // says "full again in …"), calls taking 1–1.5 s each way: the gate sees
    // each statement a second or more after the server made it.
    let server = MockServer::new(Mode::OpenAi, 10.0, 100.0)
        .with_latency(Duration::from_secs(1), Duration::from_millis(500));
    let (batch, c) = through_gate(
        &server,
        1_000,
        "api.openai.example",
        "openai mode (slow calls)",
    )
    .await;
    assert_eq!(batch.succeeded, 1_000);
    assert!(pct(c.throttled, c.calls) <= 1.0, "{c:?}");
    assert!(batch.makespan < Duration::from_secs(120), "{batch:?}");
}

#[tokio::test(start_paused = true)]
async fn grpc_resource_exhausted_with_pushback_paces_like_429() {
    let server = MockServer::new(Mode::Grpc, 100.0, 10.0);
    let (batch, c) = through_gate(&server, 500, "grpc.example.com", "grpc mode").await;
    assert_eq!(batch.succeeded, 500);
    assert!(pct(c.throttled, c.calls) <= 5.0, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn bare_429s_still_slow_the_key_down() {
    let server = MockServer::new(Mode::Bare, 100.0, 10.0);
    let (batch, c) = through_gate(&server, 500, "bare.example.com", "bare 429 mode").await;
    assert_eq!(batch.succeeded, 500);
    // Without any hint a client must overshoot to find the limit; it must
    // still not flood (an unpaced client would see most calls refused).
    assert!(pct(c.throttled, c.calls) <= 25.0, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn max_wait_answers_locally_at_once_without_calling_the_server() {
    let (upstream, seen) =
        support::scripted::<String>(vec![reply_with(429, &[("retry-after", "120")]), reply(200)]);
    let mut svc = RateLimitAwareLayer::new()
        .max_wait(Duration::from_secs(30))
        .layer(upstream.clone());

    let (_, first) = timed(&mut svc, get("api.example.com")).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(first.extensions().get::<LocalRateLimited>().is_none());
    assert_eq!(support::calls(&seen) as u64, 1);

    let (took, second) = timed(&mut svc, get("api.example.com")).await;
    assert_eq!(took, Duration::ZERO, "answered at once");
    assert_eq!(support::calls(&seen) as u64, 1, "the server was not called");
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "120");
    let local = second.extensions().get::<LocalRateLimited>().unwrap();
    assert_eq!(local.wait, Duration::from_secs(120));

    // Other keys are not held.
    let (took, other) = timed(&mut svc, get("other.example.com")).await;
    assert_eq!(took, Duration::ZERO);
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn local_retry_after_is_whole_seconds_rounded_up() {
    let (upstream, _) = support::scripted::<String>(vec![
        reply_with(429, &[("retry-after-ms", "2500")]),
        reply(200),
    ]);
    let mut svc = RateLimitAwareLayer::new()
        .max_wait(Duration::from_secs(1))
        .layer(upstream.clone());
    let _ = timed(&mut svc, get("a")).await;
    tokio::time::advance(Duration::from_millis(100)).await;
    let (_, res) = timed(&mut svc, get("a")).await;
    assert_eq!(res.headers()["retry-after"], "3");
    let local = res.extensions().get::<LocalRateLimited>().unwrap();
    assert_eq!(local.wait, Duration::from_millis(2400));
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_the_key_then_releases_waiters() {
    let (upstream, seen) =
        support::scripted::<String>(vec![reply_with(429, &[("retry-after", "5")]), reply(200)]);
    let mut svc = RateLimitAwareLayer::new().layer(upstream.clone());
    let _ = timed(&mut svc, get("a")).await;
    let (took, res) = timed(&mut svc, get("a")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        took,
        Duration::from_secs(5),
        "held exactly until Retry-After"
    );
    assert_eq!(support::calls(&seen) as u64, 2);
}

#[tokio::test(start_paused = true)]
async fn remaining_zero_holds_until_the_reset() {
    let (upstream, _) = support::scripted::<String>(vec![
        reply_with(
            200,
            &[
                ("x-ratelimit-limit", "60"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "7"),
            ],
        ),
        reply(200),
    ]);
    let layer = RateLimitAwareLayer::new();
    let mut svc = layer.layer(upstream.clone());
    let _ = timed(&mut svc, get("gh")).await;
    assert_eq!(layer.stats().limited_keys, 1);
    let (took, res) = timed(&mut svc, get("gh")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(took, Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn grpc_pushback_holds_the_key() {
    let (upstream, _) = support::scripted::<String>(vec![
        reply_with(
            200,
            &[
                ("content-type", "application/grpc"),
                ("grpc-status", "8"),
                ("grpc-retry-pushback-ms", "1500"),
            ],
        ),
        reply(200),
    ]);
    let mut svc = RateLimitAwareLayer::new().layer(upstream.clone());
    let _ = timed(&mut svc, get("grpc")).await;
    let (took, _) = timed(&mut svc, get("grpc")).await;
    assert_eq!(took, Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_state() {
    let (upstream, seen) =
        support::scripted::<String>(vec![reply_with(429, &[("retry-after", "5")]), reply(200)]);
    let layer = RateLimitAwareLayer::new();
    let mut a = layer.layer(upstream.clone());
    let mut b = a.clone();
    let mut c = layer.clone().layer(upstream.clone());

    let (_, first) = timed(&mut a, get("shared")).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);

    // The 429 seen through `a` holds `b` (a clone) and `c` (another service
    // of the same layer).
    let (took_b, res_b) = timed(&mut b, get("shared")).await;
    assert_eq!(res_b.status(), StatusCode::OK);
    assert_eq!(took_b, Duration::from_secs(5));
    assert_eq!(support::calls(&seen) as u64, 2);

    let (upstream2, _) =
        support::scripted::<String>(vec![reply_with(429, &[("retry-after", "3")]), reply(200)]);
    let mut d = layer.layer(upstream2.clone());
    let _ = timed(&mut d, get("other")).await;
    let (took_c, _) = timed(&mut c, get("other")).await;
    assert_eq!(took_c, Duration::from_secs(3));
}

/// First attempts of 50 concurrent requests against a server whose burst is
/// 5: how many did the server refuse?
async fn cold_wave(slow_start: bool) -> u64 {
    let server = MockServer::new(Mode::RetryAfter, 100.0, 5.0);
    let svc = RateLimitAwareLayer::new()
        .slow_start(slow_start)
        .layer(server.service());
    let calls = (0..50).map(|_| svc.clone().oneshot(get("cold.example.com")));
    let results = futures::future::join_all(calls).await;
    assert_eq!(results.len(), 50);
    server.counts().throttled
}

#[tokio::test(start_paused = true)]
async fn slow_start_spares_a_server_whose_burst_is_small() {
    let with = cold_wave(true).await;
    let without = cold_wave(false).await;
    eprintln!(
        "cold start, 50 concurrent, burst 5: {with} server 429s with slow start, {without} without"
    );
    assert!(with <= 10, "slow start let a wave through: {with}");
    assert!(
        without >= 35,
        "expected a wave without slow start: {without}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_waiters_give_back_what_they_reserved() {
    let server = MockServer::new(Mode::RetryAfter, 100.0, 10.0);
    server.close_for(Duration::from_secs(5));
    let layer = RateLimitAwareLayer::new();
    let svc = layer.layer(server.service());
    let first = svc.clone().oneshot(get("c")).await.unwrap();
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);

    // 1,000 requests held, then all dropped.
    let held = (0..1_000)
        .map(|_| tokio::time::timeout(Duration::from_millis(100), svc.clone().oneshot(get("c"))));
    let results = futures::future::join_all(held).await;
    assert!(results.iter().all(Result::is_err), "all were still held");
    let stats = layer.stats();
    assert_eq!((stats.waiting, stats.in_flight), (0, 0), "{stats:?}");
    assert_eq!(server.counts().calls, 1);

    // After the hold, a batch runs as on a fresh gate.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = run_batch(svc, 200, 20, "c").await;
    let fresh_server = MockServer::new(Mode::RetryAfter, 100.0, 10.0);
    let fresh = run_batch(
        RateLimitAwareLayer::new().layer(fresh_server.service()),
        200,
        20,
        "c",
    )
    .await;
    eprintln!(
        "after 1,000 dropped waiters: {:?}; fresh gate: {:?}",
        after.makespan, fresh.makespan
    );
    assert_eq!(after.succeeded, 200);
    assert_eq!(after.local_429, 0);
    assert!(
        after.makespan.as_secs_f64() <= fresh.makespan.as_secs_f64() * 1.25 + 0.1,
        "slower after cancellations: {after:?} vs {fresh:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_in_flight_requests_free_their_slots() {
    let slow = tower::service_fn(|_req: Request<String>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(response(200, &[]))
    });
    let layer = RateLimitAwareLayer::new();
    let svc = layer.layer(slow);
    let calls = (0..100)
        .map(|_| tokio::time::timeout(Duration::from_secs(2), svc.clone().oneshot(get("slow"))));
    let _ = futures::future::join_all(calls).await;
    let stats = layer.stats();
    assert_eq!((stats.waiting, stats.in_flight), (0, 0), "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn hostile_headers_never_panic_nor_hold_beyond_max_hold() {
    let max_hold = Duration::from_secs(10);
    let cases: &[(u16, &[(&str, &str)])] = &[
        (429, &[("retry-after", "-1")]),
        (429, &[("retry-after", "1e10")]),
        (429, &[("retry-after", "99999999999999999999")]),
        (429, &[("retry-after", "")]),
        (429, &[("retry-after", "ä½ å¥½")]),
        (429, &[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")]),
        (429, &[("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")]),
        (429, &[("retry-after", "86400")]),
        (429, &[("retry-after", "5"), ("retry-after", "3")]),
        (429, &[("retry-after-ms", "18446744073709551615")]),
        (429, &[("x-ms-retry-after-ms", "-5")]),
        (503, &[("retry-after", "100000")]),
        (
            200,
            &[("grpc-status", "8"), ("grpc-retry-pushback-ms", "-5")],
        ),
        (
            200,
            &[("grpc-status", "8"), ("grpc-retry-pushback-ms", "abc")],
        ),
        (
            200,
            &[
                ("grpc-status", "8"),
                ("grpc-retry-pushback-ms", "99999999999999"),
            ],
        ),
        (
            200,
            &[
                ("grpc-status", "14"),
                ("grpc-retry-pushback-ms", "999999999"),
            ],
        ),
        (
            200,
            &[
                ("ratelimit-policy", r#""default";q=10;w=1"#),
                ("ratelimit", r#""default";r=1000;t=1"#),
            ],
        ),
        (200, &[("ratelimit", r#""default";r=0;t=-5"#)]),
        (200, &[("ratelimit", r#""default";r=0;t=99999999999"#)]),
        (
            200,
            &[
                ("ratelimit-policy", r#""default";q=100;w=0"#),
                ("ratelimit", r#""default";r=0;t=1"#),
            ],
        ),
        (200, &[("ratelimit", ";;;=,\"\\")]),
        (200, &[("ratelimit", "limit=-1, remaining=-1, reset=-1")]),
        (
            200,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "99999999999999999999"),
            ],
        ),
        (
            200,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "4102444800"),
            ],
        ),
        (
            200,
            &[("x-ratelimit-remaining", "-1"), ("x-ratelimit-reset", "-1")],
        ),
        (
            200,
            &[
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "999999h"),
            ],
        ),
        (
            200,
            &[
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"),
            ],
        ),
        (429, &[("retry-after", "1.5e3")]),
        (
            200,
            &[
                ("ratelimit-policy", r#""default";q=1;w=31536000"#),
                ("ratelimit", r#""default";r=0;t=5"#),
            ],
        ),
        (
            429,
            &[
                (
                    "ratelimit-policy",
                    r#""default";q=18446744073709551615;w=1"#,
                ),
                (
                    "ratelimit",
                    r#""default";r=18446744073709551615;t=18446744073709551615"#,
                ),
            ],
        ),
    ];
    assert!(cases.len() >= 20);
    let mut replies: Vec<_> = cases.iter().map(|(s, h)| reply_with(*s, h)).collect();
    replies.push(reply(429).raw_header("retry-after", b"\xff\xfe\x80"));
    replies.push(reply(200).raw_header("ratelimit", b"\"d\";r=0;t=\xff"));
    for (i, first) in replies.into_iter().enumerate() {
        let (upstream, _) = support::scripted::<String>(vec![first, reply(200)]);
        let layer = RateLimitAwareLayer::new().max_hold(max_hold);
        let mut svc = layer.layer(upstream);
        let _ = timed(&mut svc, get("hostile")).await;
        let (took, res) = timed(&mut svc, get("hostile")).await;
        assert_eq!(res.status(), StatusCode::OK, "case {i}");
        assert!(took <= max_hold, "case {i}: held {took:?} > max_hold");
        // Nor does any later wait (a one-per-year policy paces at one per
        // max_hold, no slower).
        for _ in 0..3 {
            let (took, _) = timed(&mut svc, get("hostile")).await;
            assert!(took <= max_hold, "case {i}: held {took:?} later");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_hundred_thousand_keys_stay_within_max_keys() {
    let layer = RateLimitAwareLayer::new().max_keys(1_000);
    let mut svc = layer.layer(tower::service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(response(200, &[]))
    }));
    let mut most = 0;
    for i in 0..100_000 {
        let req = Request::get(format!("https://k{i}.example/"))
            .body(String::new())
            .unwrap();
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        if i % 997 == 0 {
            most = most.max(layer.stats().keys);
        }
    }
    most = most.max(layer.stats().keys);
    assert!(most <= 1_000, "{most} keys");
    assert!(most >= 800, "evicts in batches, not everything: {most}");
}

#[tokio::test(start_paused = true)]
async fn custom_key_fn_groups_requests() {
    let (upstream, _) =
        support::scripted::<String>(vec![reply_with(429, &[("retry-after", "4")]), reply(200)]);
    let mut svc = RateLimitAwareLayer::new()
        .key_fn(|parts: &http::request::Parts| {
            parts.headers.get("x-tenant").map(|v| v.as_bytes().to_vec())
        })
        .layer(upstream.clone());
    let tenant = |t: &str, host: &str| {
        Request::get(format!("https://{host}/"))
            .header("x-tenant", t)
            .body(String::new())
            .unwrap()
    };
    let _ = timed(&mut svc, tenant("a", "one.example")).await;
    // Same tenant, other host: held. Other tenant, same host: not held.
    let (took, _) = timed(&mut svc, tenant("", "one.example")).await;
    assert_eq!(took, Duration::ZERO);
    let (took, _) = timed(&mut svc, tenant("a", "two.example")).await;
    assert_eq!(took, Duration::from_secs(4));
}

/// Polls `fut` once, without waiting.
async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx).ready())
    })
    .await
}

trait PollReady<T> {
    fn ready(self) -> Option<T>;
}

impl<T> PollReady<T> for std::task::Poll<T> {
    fn ready(self) -> Option<T> {
        match self {
            std::task::Poll::Ready(t) => Some(t),
            std::task::Poll::Pending => None,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_granted_but_unsent_release_is_given_back() {
    let (upstream, seen) =
        support::scripted::<String>(vec![reply_with(429, &[("retry-after", "2")]), reply(200)]);
    let layer = RateLimitAwareLayer::new();
    let svc = layer.layer(upstream.clone());
    let _ = svc.clone().oneshot(get("k")).await.unwrap();

    // Two waiters behind the hold; after it, slow start lets one go.
    let mut a = Box::pin(svc.clone().oneshot(get("k")));
    let mut b = Box::pin(svc.clone().oneshot(get("k")));
    assert!(poll_once(&mut a).await.is_none());
    assert!(poll_once(&mut b).await.is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Polling `b` releases `a` (the head), which is then dropped unsent.
    assert!(poll_once(&mut b).await.is_none());
    assert_eq!(layer.stats().in_flight, 1);
    drop(a);
    let res = b.await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        support::calls(&seen) as u64,
        2,
        "`a` never reached the server"
    );
    let stats = layer.stats();
    assert_eq!((stats.waiting, stats.in_flight), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_longer_hold_refuses_waiters_that_can_no_longer_make_max_wait() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let server = tower::service_fn(move |req: Request<String>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok::<_, Infallible>(match req.uri().path() {
                "/fast" => response(429, &[("retry-after", "5")]),
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    response(429, &[("retry-after", "100")])
                }
                _ => response(200, &[]),
            })
        }
    });
    let svc = RateLimitAwareLayer::new()
        .slow_start(false)
        .max_wait(Duration::from_secs(30))
        .layer(server);
    let req = |path: &str| {
        Request::get(format!("https://k{path}"))
            .body(String::new())
            .unwrap()
    };
    let start = Instant::now();
    let slow = tokio::spawn(svc.clone().oneshot(req("/slow")));
    tokio::task::yield_now().await;
    let _ = svc.clone().oneshot(req("/fast")).await.unwrap();
    // Held for 5 s: within max_wait, so this one waits…
    let waiter = tokio::spawn(svc.clone().oneshot(req("/")));
    let _ = slow.await.unwrap().unwrap();
    // …until the slow reply holds the key for 100 s: refused at once.
    let res = waiter.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    let local = res.extensions().get::<LocalRateLimited>().unwrap();
    assert_eq!(local.wait, Duration::from_secs(100));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
