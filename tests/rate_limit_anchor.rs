//! The gate next to the anchor it must beat, the AWS SDKs' adaptive mode,
//! on the same mock servers and batch (1,000 requests, 50 at a time, server
//! 100/s with a burst of 10, every request retried until it succeeds).
//! Prints both; asserts that the gate wastes fewer calls and finishes sooner.

#[path = "support/rl_aws.rs"]
mod rl_aws;
#[path = "support/rl_server.rs"]
mod rl_server;

use rl_server::{run_batch, MockServer, Mode};
use tower::Layer;
use tower_backoff::RateLimitAwareLayer;

async fn compare(mode: Mode) {
    let gate_server = MockServer::new(mode, 100.0, 10.0);
    let gate = run_batch(
        RateLimitAwareLayer::new().layer(gate_server.service()),
        1_000,
        50,
        "api.example.com",
    )
    .await;
    let aws_server = MockServer::new(mode, 100.0, 10.0);
    let aws = run_batch(
        rl_aws::Adaptive::new(aws_server.service()),
        1_000,
        50,
        "api.example.com",
    )
    .await;
    let (g, a) = (gate_server.counts(), aws_server.counts());
    eprintln!(
        "{mode:?}: gate {} calls, {} 429s, {:.2?} | AWS adaptive {} calls, {} 429s, {:.2?}",
        g.calls, g.throttled, gate.makespan, a.calls, a.throttled, aws.makespan
    );
    assert_eq!((gate.succeeded, aws.succeeded), (1_000, 1_000));
    assert!(g.throttled < a.throttled, "{g:?} vs {a:?}");
    assert!(gate.makespan < aws.makespan, "{gate:?} vs {aws:?}");
}

#[tokio::test(start_paused = true)]
async fn gate_beats_aws_adaptive_with_ratelimit_headers() {
    compare(Mode::RateLimit).await;
}

#[tokio::test(start_paused = true)]
async fn gate_beats_aws_adaptive_with_retry_after_only() {
    compare(Mode::RetryAfter).await;
}
