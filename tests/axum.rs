//! An axum 0.8 gateway whose route forwards to an upstream through a
//! hyper-util client wrapped in `BackoffRetryLayer::buffered(cap)`; a real
//! client calls the gateway over loopback.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use support::{reply, serve_recorded, Received, Reply};
use tower::retry::Retry;
use tower::util::MapResponse;
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::body::{BufferBody, BufferedBody};
use tower_backoff::rate_limit::Local429;
use tower_backoff::retry::RetryEvent;
use tower_backoff::{BackoffRetryLayer, RateLimitAware, RateLimitAwareLayer};

/// The gateway's upstream client: buffering, retry, the rate-limit gate,
/// hyper-util (its `Incoming` responses turned into axum bodies, which the
/// gate needs: its local 429 is built with `Default`).
type Upstream = BufferBody<
    Retry<
        BackoffRetryLayer,
        RateLimitAware<MapResponse<Client<HttpConnector, BufferedBody<Body>>, ToAxum>, Local429>,
    >,
>;

type ToAxum = fn(http::Response<hyper::body::Incoming>) -> Response;

fn to_axum(res: http::Response<hyper::body::Incoming>) -> Response {
    res.map(Body::new)
}

const CAP: usize = 256;

#[derive(Clone)]
struct Gateway {
    upstream: Upstream,
    authority: String,
}

fn upstream_client(events: Arc<Mutex<Vec<RetryEvent>>>) -> Upstream {
    let layer = BackoffRetryLayer::exponential(Duration::from_millis(2), Duration::from_millis(50))
        .on_retry(move |e| events.lock().unwrap().push(*e));
    ServiceBuilder::new()
        .layer(layer.buffered(CAP))
        .layer(RateLimitAwareLayer::new().max_wait(Duration::from_secs(60)))
        .map_response(to_axum as ToAxum)
        .service(Client::builder(TokioExecutor::new()).build_http())
}

/// Points a request received by the gateway at the upstream.
fn to_upstream(req: Request, authority: &str) -> Request {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{authority}{path}")
        .parse()
        .expect("a valid upstream URI");
    // The client sets `Host` from the URI.
    parts.headers.remove(http::header::HOST);
    Request::from_parts(parts, body)
}

/// The handler style: the client's error becomes a 502 here, so the route
/// has the `Infallible` error axum requires.
async fn forward(State(gw): State<Gateway>, req: Request) -> Response {
    let req = to_upstream(req, &gw.authority);
    match gw.upstream.oneshot(req).await {
        Ok(res) => res,
        Err(err) => (StatusCode::BAD_GATEWAY, format!("upstream failed: {err}")).into_response(),
    }
}

async fn serve_gateway(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Run {
    status: u16,
    upstream: Vec<Received>,
    retries: Vec<RetryEvent>,
}

/// Starts a scripted upstream and a gateway in front of it, sends one
/// request to the gateway with a plain hyper-util client.
async fn through_gateway(script: Vec<Reply>, method: Method, body: Vec<u8>) -> Run {
    let (upstream_addr, log) = serve_recorded(script).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let gw = Gateway {
        upstream: upstream_client(events.clone()),
        authority: upstream_addr.to_string(),
    };
    let app = Router::new().route("/{*path}", any(forward)).with_state(gw);
    let addr = serve_gateway(app).await;
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}/api/orders"))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = support::http_client().request(req).await.unwrap();
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await.unwrap();
    let upstream = log.lock().unwrap().clone();
    let retries = events.lock().unwrap().clone();
    Run {
        status,
        upstream,
        retries,
    }
}

#[tokio::test]
async fn gateway_absorbs_upstream_429s() {
    let script = vec![
        reply(429).header("retry-after", "0"),
        reply(429),
        reply(200),
    ];
    // A POST: 429 proves the upstream did not process it, so it is replayed,
    // body and all (an axum body buffered under the cap).
    let run = through_gateway(script, Method::POST, b"{\"item\":42}".to_vec()).await;
    assert_eq!(run.status, 200, "the caller never sees the 429s");
    assert_eq!(run.upstream.len(), 3);
    assert!(run
        .upstream
        .iter()
        .all(|r| r.body == "{\"item\":42}" && r.path == "/api/orders"));
    assert_eq!(run.retries.len(), 2);
}

#[tokio::test]
async fn gateway_returns_a_non_retryable_status_after_one_upstream_call() {
    let run = through_gateway(vec![reply(403), reply(200)], Method::GET, Vec::new()).await;
    assert_eq!((run.status, run.upstream.len()), (403, 1));
}

#[tokio::test]
async fn gateway_does_not_duplicate_a_post_on_500() {
    let run = through_gateway(vec![reply(500), reply(200)], Method::POST, b"{}".to_vec()).await;
    assert_eq!((run.status, run.upstream.len()), (500, 1));
    assert!(run.retries.is_empty());
}

#[tokio::test]
async fn gateway_sends_an_over_cap_body_once_whole() {
    let big: Vec<u8> = (0..1024u32).map(|i| (i % 253) as u8).collect();
    // PUT is idempotent and 503 retryable: only the cap prevents the retry.
    let run = through_gateway(vec![reply(503), reply(200)], Method::PUT, big.clone()).await;
    assert_eq!((run.status, run.upstream.len()), (503, 1));
    assert_eq!(run.upstream[0].body, big, "not truncated");
    assert!(run.retries.is_empty());
}

#[tokio::test]
async fn gateway_answers_502_when_the_upstream_is_unreachable() {
    // Bind then drop a listener: the port refuses connections.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let gw = Gateway {
        upstream: upstream_client(events.clone()),
        authority: dead.to_string(),
    };
    let app = Router::new().route("/{*path}", any(forward)).with_state(gw);
    let addr = serve_gateway(app).await;
    let req = http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/x"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let res = support::http_client().request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    // A refused connection proves the POST was not processed: retried until
    // the attempts (5 by default) ran out.
    assert_eq!(events.lock().unwrap().len(), 4);
}

/// The `route_service` style: `HandleErrorLayer` turns the client's error
/// into a response, and a `map_request` points requests at the upstream.
#[tokio::test]
async fn route_service_with_handle_error_layer_absorbs_429s() {
    let (upstream_addr, log) = serve_recorded(vec![reply(429), reply(200)]).await;
    let authority = upstream_addr.to_string();
    let upstream = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            |err: hyper_util::client::legacy::Error| async move {
                (StatusCode::BAD_GATEWAY, format!("upstream failed: {err}"))
            },
        ))
        .map_request(move |req: Request| to_upstream(req, &authority))
        .layer(
            BackoffRetryLayer::exponential(Duration::from_millis(2), Duration::from_millis(50))
                .buffered(CAP),
        )
        .service(Client::builder(TokioExecutor::new()).build_http());
    let app = Router::new().route_service("/{*path}", upstream);
    let addr = serve_gateway(app).await;
    let res = support::http_client()
        .get(format!("http://{addr}/v1/items").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn gateway_answers_429_itself_while_the_upstream_asks_for_too_long() {
    let (upstream_addr, log) =
        serve_recorded(vec![reply(429).header("retry-after", "3600"), reply(200)]).await;
    let gw = Gateway {
        upstream: upstream_client(Arc::default()),
        authority: upstream_addr.to_string(),
    };
    let app = Router::new().route("/{*path}", any(forward)).with_state(gw);
    let addr = serve_gateway(app).await;
    let caller = support::http_client();
    let url: http::Uri = format!("http://{addr}/api/x").parse().unwrap();
    let first = caller.get(url.clone()).await.unwrap();
    assert_eq!(
        first.status(),
        429,
        "3600 s is past the retry cap: passed on"
    );
    let second = caller.get(url).await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the gate kept it from the upstream"
    );
}
