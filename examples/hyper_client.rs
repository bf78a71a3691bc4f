//! hyper-util's legacy client with `BackoffRetryLayer` and
//! `RateLimitAwareLayer`.
//!
//! `cargo run --example hyper_client` calls a demo upstream on loopback that
//! answers 429 twice; `cargo run --example hyper_client -- http://host/path`
//! calls your own.

#[path = "demo_upstream/mod.rs"]
mod demo_upstream;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

#[tokio::main]
async fn main() -> Result<(), demo_upstream::BoxError> {
    let url = demo_upstream::target_or(demo_upstream::demo_url("/v1/orders")).await?;

    // The stack: retry (with buffering, so streaming bodies up to 64 KiB can
    // be replayed), the rate-limit gate inside it (every attempt waits for
    // its permit and teaches it), then the plain hyper-util client.
    let client = ServiceBuilder::new()
        .layer(
            BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
                .on_retry(demo_upstream::print_retry)
                .buffered(64 * 1024),
        )
        .layer(RateLimitAwareLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http());

    // `Full` is already replayable; any `Unpin` body (e.g. a proxied
    // `hyper::body::Incoming`) works the same through `.buffered`.
    let req = http::Request::post(&url)
        .header("idempotency-key", "order-42")
        .body(Full::new(Bytes::from_static(b"{\"item\":42}")))?;
    let res = client.oneshot(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    println!("{status}: {}", String::from_utf8_lossy(&body));
    Ok(())
}
