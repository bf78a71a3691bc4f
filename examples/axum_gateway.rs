//! An axum gateway whose route forwards to an upstream through a hyper-util
//! client wrapped in `BackoffRetryLayer` and `RateLimitAwareLayer`: the upstream's 429s are absorbed by
//! the gateway and its callers only see the final answer.
//!
//! `cargo run --example axum_gateway` starts a demo upstream that answers 429
//! twice, the gateway in front of it, and calls the gateway once;
//! `cargo run --example axum_gateway -- 127.0.0.1:8080` forwards to your own
//! upstream (host:port) instead.

#[path = "demo_upstream/mod.rs"]
mod demo_upstream;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tower::retry::Retry;
use tower::util::MapResponse;
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::body::{BufferBody, BufferedBody};
use tower_backoff::{BackoffRetryLayer, RateLimitAware, RateLimitAwareLayer};

/// The upstream client: body buffering (so axum's streaming bodies can be
/// replayed), retry, the rate-limit gate, then hyper-util with its responses
/// turned into axum bodies (the gate builds its local 429 with `Default`,
/// which hyper's `Incoming` lacks).
type Upstream = BufferBody<
    Retry<
        BackoffRetryLayer,
        RateLimitAware<MapResponse<Client<HttpConnector, BufferedBody<Body>>, ToAxum>>,
    >,
>;

type ToAxum = fn(http::Response<Incoming>) -> Response;

fn to_axum(res: http::Response<Incoming>) -> Response {
    res.map(Body::new)
}

#[derive(Clone)]
struct Gateway {
    upstream: Upstream,
    /// `host:port` of the upstream.
    authority: String,
}

/// Forwards the request; a client error (connection refused after all
/// retries, …) becomes a 502, so the route's error type is `Infallible`
/// as axum requires.
async fn forward(State(gw): State<Gateway>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("http://{}{path}", gw.authority).parse() {
        Ok(uri) => uri,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    parts.headers.remove(http::header::HOST);
    match gw.upstream.oneshot(Request::from_parts(parts, body)).await {
        Ok(res) => res,
        Err(err) => (StatusCode::BAD_GATEWAY, format!("upstream failed: {err}")).into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), demo_upstream::BoxError> {
    let demo = async { Ok(demo_upstream::flaky_upstream(2).await?.to_string()) };
    let authority = demo_upstream::target_or(demo).await?;

    let upstream = ServiceBuilder::new()
        .layer(
            BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(5))
                .on_retry(demo_upstream::print_retry)
                .buffered(256 * 1024),
        )
        .layer(RateLimitAwareLayer::new())
        .map_response(to_axum as ToAxum)
        .service(Client::builder(TokioExecutor::new()).build_http());
    let app = Router::new()
        .route("/{*path}", any(forward))
        .with_state(Gateway {
            upstream,
            authority,
        });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("gateway on http://{gateway}");

    // A caller of the gateway.
    let caller = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("http://{gateway}/api/orders"))
        .body(Full::new(Bytes::from_static(b"{\"item\":42}")))?;
    let res = caller.request(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    println!("caller got {status}: {}", String::from_utf8_lossy(&body));
    Ok(())
}
