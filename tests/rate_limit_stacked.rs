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
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

async fn stacked(mode: Mode) {
    let server = MockServer::new(mode, 100.0, 10.0);
    let client = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(
            Duration::from_millis(100),
            Duration::from_secs(10),
        ))
        .layer(RateLimitAwareLayer::new())
        .service(server.service());
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
