//! A tonic `Channel` with `BackoffRetryLayer` and `RateLimitAwareLayer`:
//! gRPC UNAVAILABLE and RESOURCE_EXHAUSTED (trailers-only) are retried after
//! the server's `grpc-retry-pushback-ms`, which the gate also holds to.
//!
//! `cargo run --example tonic_client` starts a gRPC health server on loopback
//! that pushes back twice; `cargo run --example tonic_client -- http://host:port`
//! checks your own server's health service instead.

#[path = "demo_upstream/mod.rs"]
mod demo_upstream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic::body::Body;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::service::InterceptorLayer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::ServiceBuilder;
use tower_backoff::body::BufferedBody;
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

#[tokio::main]
async fn main() -> Result<(), demo_upstream::BoxError> {
    let demo = async { Ok(format!("http://{}", demo_server().await?)) };
    let url = demo_upstream::target_or(demo).await?;
    let channel = Channel::from_shared(url)?.connect().await?;

    // tonic request bodies are streams: `.buffered(cap)` holds unary requests
    // (up to 64 KiB here) in memory so they can be replayed; the buffered
    // body is wrapped back into `tonic::body::Body` for the `Channel`.
    let channel = ServiceBuilder::new()
        .layer(
            BackoffRetryLayer::exponential(Duration::from_millis(50), Duration::from_secs(5))
                .on_retry(demo_upstream::print_retry)
                .buffered(64 * 1024),
        )
        .layer(RateLimitAwareLayer::new())
        .map_request(|req: http::Request<BufferedBody<Body>>| req.map(Body::new))
        .service(channel);

    let mut health = HealthClient::new(channel);
    let res = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    println!("health: {:?}", res.into_inner().status());
    Ok(())
}

/// A health server whose first two calls get a trailers-only error with
/// `grpc-retry-pushback-ms: 150` (UNAVAILABLE, then RESOURCE_EXHAUSTED).
async fn demo_server() -> std::io::Result<SocketAddr> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicUsize::new(0));
    let push_back = move |req: tonic::Request<()>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        println!("  server: call #{}", n + 1);
        let code = match n {
            0 => Code::Unavailable,
            1 => Code::ResourceExhausted,
            _ => return Ok(req),
        };
        let mut md = MetadataMap::new();
        md.insert("grpc-retry-pushback-ms", MetadataValue::from_static("150"));
        Err(Status::with_metadata(code, "busy, come back later", md))
    };
    tokio::spawn(async move {
        let served = Server::builder()
            .layer(InterceptorLayer::new(push_back))
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await;
        if let Err(e) = served {
            eprintln!("demo server: {e}");
        }
    });
    Ok(addr)
}
