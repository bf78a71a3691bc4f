// A tonic `Channel` under the retry layer without `.buffered(..)`: tonic's
// `Body` is a stream and cannot be replayed, so the stack does not compile.
use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use tower::ServiceBuilder;
use tower_backoff::BackoffRetryLayer;

async fn check(channel: Channel) {
    let channel = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(
            Duration::from_millis(50),
            Duration::from_secs(5),
        ))
        .service(channel);
    let mut client = HealthClient::new(channel);
    let _ = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
}

fn main() {
    let _ = check;
}
