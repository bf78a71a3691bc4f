//! reqwest-middleware with `BackoffMiddleware` and `RateLimitMiddleware`: the
//! same retry policy as `BackoffRetryLayer` (schedule, jitter, budget,
//! Retry-After, idempotency) and the same gate as `RateLimitAwareLayer`.
//!
//! `cargo run --example reqwest_client --features reqwest-middleware` calls a
//! demo upstream on loopback that answers 429 twice; add `-- http://host/path`
//! to call your own.

#[path = "demo_upstream/mod.rs"]
mod demo_upstream;

use std::time::Duration;

use http::Extensions;
use reqwest_middleware::ClientBuilder;
use tower_backoff::budget::GrpcThrottle;
use tower_backoff::reqwest::{BackoffMiddleware, RateLimitMiddleware};
use tower_backoff::{Attempt, BackoffRetryLayer, RateLimitAwareLayer};

#[tokio::main]
async fn main() -> Result<(), demo_upstream::BoxError> {
    let url = demo_upstream::target_or(demo_upstream::demo_url("/v1/orders")).await?;

    let retry = BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
        .budget(GrpcThrottle::new(100, 0.1))
        .on_retry(demo_upstream::print_retry);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(BackoffMiddleware::new(retry))
        // After the retry middleware: every attempt passes the gate.
        .with(RateLimitMiddleware::new(RateLimitAwareLayer::new()))
        .build();

    // A POST with an Idempotency-Key may be replayed on any retryable failure;
    // without one, only on failures that prove it was not processed (429, …).
    let req = client
        .post(&url)
        .header("idempotency-key", "order-42")
        .body("{\"item\":42}")
        .build()?;
    let mut extensions = Extensions::new();
    let res = client.execute_with_extensions(req, &mut extensions).await?;
    println!(
        "{} after {} attempt(s): {}",
        res.status(),
        Attempt::of(&extensions),
        res.text().await?
    );
    Ok(())
}
