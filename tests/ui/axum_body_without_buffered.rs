// An axum gateway's upstream client without `.buffered(..)`: axum's `Body`
// is a stream and cannot be replayed, so the stack does not compile.
use std::time::Duration;

use axum::body::Body;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::BackoffRetryLayer;

async fn forward(req: http::Request<Body>) {
    let upstream = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(
            Duration::from_millis(100),
            Duration::from_secs(5),
        ))
        .service(Client::builder(TokioExecutor::new()).build_http::<Body>());
    let _ = upstream.oneshot(req).await;
}

fn main() {
    let _ = forward;
}
