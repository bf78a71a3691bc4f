//! `RateLimitAwareLayer` stacked under `BackoffRetryLayer` with defaults, as
//! the crate docs' quick start composes them (retry outside, the gate inside):
//! every attempt passes through the gate, and every request of the batch
//! succeeds.

#[path = "support/rl_server.rs"]
mod rl_server;

use std::time::Duration;

use futures::stream::StreamExt;
use rl_server::{get, MockServer, Mode};
use tokio::time::Instant;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

/// The quick start's stack: retry with defaults over the gate, around
/// `server`.
fn retry_over_gate(
    server: &MockServer,
) -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(
            Duration::from_millis(100),
            Duration::from_secs(10),
        ))
        .layer(RateLimitAwareLayer::new())
        .service(server.service())
}

async fn stacked(mode: Mode) {
    let server = MockServer::new(mode, 100.0, 10.0);
    let client = retry_over_gate(&server);
    let start = Instant::now();
    let ok = futures::stream::iter(0..1_000)
        .map(|_| client.clone().oneshot(get("api.example.com")))
        .buffer_unordered(50)
        .filter(|res| std::future::ready(res.as_ref().unwrap().status().is_success()))
        .count()
        .await;
    let c = server.counts();
    eprintln!(
        "stacked, {mode:?}: {ok}/1000 succeeded, {} calls, {} server 429s ({:.2} %), makespan {:.2?}",
        c.calls,
        c.throttled,
        100.0 * c.throttled as f64 / c.calls as f64,
        start.elapsed()
    );
    assert_eq!(ok, 1_000);
}

#[tokio::test(start_paused = true)]
async fn all_succeed_under_backoff_retry_with_ratelimit_headers() {
    stacked(Mode::RateLimit).await;
}

#[tokio::test(start_paused = true)]
async fn all_succeed_under_backoff_retry_with_retry_after_only() {
    stacked(Mode::RetryAfter).await;
}

/// A whole-second `Retry-After` from a token bucket of 100/s is an upper
/// bound the gate probes; the refused requests' retries need not sleep it
/// out. The gate marks each refusal with its own wait (`GateRetryAfter`),
/// the retry layer waits that, and the retry queues in the gate: every
/// request of a burst far over the bucket is done well within the second
/// the server named, with few calls wasted.
#[tokio::test(start_paused = true)]
async fn retries_of_a_short_hint_wait_in_the_gate_not_the_whole_second() {
    let server = MockServer::new(Mode::RetryAfter, 100.0, 10.0);
    let client = retry_over_gate(&server);
    let start = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(0..40)
        .map(|_| {
            let client = client.clone();
            async move {
                let res = client.oneshot(get("api.example.com")).await.unwrap();
                assert!(res.status().is_success(), "{}", res.status());
                start.elapsed()
            }
        })
        .buffer_unordered(40)
        .collect()
        .await;
    let c = server.counts();
    let last = latencies.iter().max().copied().unwrap_or_default();
    assert!(c.throttled > 0, "the burst met the bucket: {c:?}");
    assert!(c.throttled <= 20, "{c:?}");
    // 40 requests at 100/s after a burst of 10: 0.3 s of the server's rate,
    // plus the probe's pause and the retry schedule's jitter (up to 100 ms);
    // a retry that slept out `Retry-After: 1` would end past 1 s.
    assert!(
        last < Duration::from_millis(600),
        "the last ended at {last:?}"
    );
}

/// The mark itself: a refusal with `Retry-After: 1` on a key whose rate the
/// gate learns carries `GateRetryAfter`, shorter than the hint; the
/// classifier takes it as the wait. The same refusal through a gate with no
/// learned rate yet, or with a hint the gate holds for, carries none.
#[tokio::test(start_paused = true)]
async fn a_probed_refusal_is_marked_with_the_gates_own_wait() {
    use tower_backoff::classify::{Classify, HttpClassifier};
    use tower_backoff::GateRetryAfter;

    let server = MockServer::new(Mode::RetryAfter, 100.0, 10.0);
    let gate = RateLimitAwareLayer::new().layer(server.service());
    // A burst of 20 at once: 10 accepted, the rest refused with a hint of
    // one second, which the gate probes.
    let answers: Vec<_> = futures::stream::iter(0..20)
        .map(|_| gate.clone().oneshot(get("api.example.com")))
        .buffer_unordered(20)
        .collect()
        .await;
    let refused: Vec<_> = answers
        .into_iter()
        .map(Result::unwrap)
        .filter(|r| r.status() == 429)
        .collect();
    assert!(!refused.is_empty());
    let marked: Vec<_> = refused
        .iter()
        .filter_map(|r| r.extensions().get::<GateRetryAfter>())
        .collect();
    assert!(!marked.is_empty(), "no refusal marked");
    for m in &marked {
        assert!(m.retry_after < Duration::from_secs(1), "{m:?}");
    }
    let res = refused
        .iter()
        .find(|r| r.extensions().get::<GateRetryAfter>().is_some())
        .unwrap();
    let req = get("api.example.com");
    let decision = HttpClassifier.classify(&req, Ok::<_, &std::convert::Infallible>(res));
    assert_eq!(
        decision.retry_after(),
        Some(
            res.extensions()
                .get::<GateRetryAfter>()
                .unwrap()
                .retry_after
        )
    );
}

/// A long hint is the server's to keep: the gate holds the key for it (here
/// only as long as `max_hold`, 2 s) and does not vouch for a shorter wait,
/// so the retry layer waits the server's 5 s (or gives up, past its cap).
#[tokio::test(start_paused = true)]
async fn a_long_hint_is_not_marked_even_when_the_gate_holds_less() {
    use tower_backoff::GateRetryAfter;

    let refusal = rl_server::response(429, &[("retry-after", "5")]);
    let inner = tower::service_fn(move |_req: http::Request<String>| {
        let answer = refusal.clone();
        async move { Ok::<_, std::convert::Infallible>(answer) }
    });
    let gate = RateLimitAwareLayer::new()
        .max_hold(Duration::from_secs(2))
        .layer(inner);
    let res = gate.oneshot(get("api.example.com")).await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.extensions().get::<GateRetryAfter>(), None);
}
