//! A tonic 0.14 client (`Channel` + `BackoffRetryLayer::buffered`) against a
//! real gRPC server on loopback: `tonic-health`'s service behind a test layer
//! that answers scripted calls with trailers-only errors and gRPC pushback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::body::Body;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::util::MapRequest;
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::body::{BufferBody, BufferedBody};
use tower_backoff::rate_limit::Local429;
use tower_backoff::retry::RetryEvent;
use tower_backoff::{BackoffRetryLayer, Idempotency, RateLimitAware, RateLimitAwareLayer};

/// How the test layer answers one call.
#[derive(Clone, Debug)]
enum Answer {
    /// Let the health service answer.
    Pass,
    /// A trailers-only gRPC error, with `grpc-retry-pushback-ms` if given.
    Grpc(Code, Option<&'static str>),
    /// A bare HTTP status, as a proxy in front of a gRPC server might send.
    Http(u16),
}

/// One call as the server saw it.
#[derive(Clone, Debug)]
struct Call {
    at: Instant,
    body: Bytes,
}

type Calls = Arc<Mutex<Vec<Call>>>;

/// A health server on 127.0.0.1:0 reporting "orders" as SERVING, behind a
/// layer answering the n-th call with `script[n]` (the last repeats).
async fn serve(script: Vec<Answer>) -> (SocketAddr, Calls) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("orders", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Calls::default();
    let log = calls.clone();
    let script = Arc::new(script);
    let scripted = tower::layer::layer_fn(move |routes: Routes| {
        let (log, script) = (log.clone(), script.clone());
        tower::service_fn(move |req: http::Request<Body>| {
            let (log, script, routes) = (log.clone(), script.clone(), routes.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(Call {
                        at: Instant::now(),
                        body: body.clone(),
                    });
                    log.len() - 1
                };
                match script[n.min(script.len() - 1)].clone() {
                    Answer::Pass => {
                        let req = http::Request::from_parts(parts, Body::new(Full::new(body)));
                        routes.oneshot(req).await
                    }
                    Answer::Grpc(code, pushback) => {
                        let mut md = MetadataMap::new();
                        if let Some(ms) = pushback {
                            md.insert("grpc-retry-pushback-ms", MetadataValue::from_static(ms));
                        }
                        Ok(Status::with_metadata(code, "scripted", md).into_http::<Body>())
                    }
                    Answer::Http(status) => Ok(http::Response::builder()
                        .status(status)
                        .body(Body::default())
                        .unwrap()),
                }
            }
        })
    });
    tokio::spawn(async move {
        let _reporter = reporter;
        Server::builder()
            .layer(scripted)
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
    });
    (addr, calls)
}

/// tonic's `Channel` sends `tonic::body::Body`; after buffering the body is a
/// `BufferedBody`, which `Body::new` wraps back.
fn unbuffer(req: http::Request<BufferedBody<Body>>) -> http::Request<Body> {
    req.map(Body::new)
}

type Unbuffer = fn(http::Request<BufferedBody<Body>>) -> http::Request<Body>;

/// Buffering, retry, the rate-limit gate, then the channel.
type RetryingChannel = BufferBody<
    tower::retry::Retry<BackoffRetryLayer, RateLimitAware<MapRequest<Channel, Unbuffer>, Local429>>,
>;

const CAP: usize = 64;

async fn client(addr: SocketAddr, layer: BackoffRetryLayer) -> HealthClient<RetryingChannel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(layer.buffered(CAP))
        .layer(RateLimitAwareLayer::new().max_wait(Duration::from_secs(60)))
        .map_request(unbuffer as Unbuffer)
        .service(channel);
    HealthClient::new(svc)
}

fn layer(events: &Arc<Mutex<Vec<RetryEvent>>>) -> BackoffRetryLayer {
    let events = events.clone();
    BackoffRetryLayer::exponential(Duration::from_millis(1), Duration::from_secs(1))
        .on_retry(move |e| events.lock().unwrap().push(*e))
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_string(),
    }
}

#[tokio::test]
async fn retries_unavailable_and_resource_exhausted_after_the_pushback() {
    let script = vec![
        Answer::Grpc(Code::Unavailable, Some("30")),
        Answer::Grpc(Code::ResourceExhausted, Some("40")),
        Answer::Pass,
    ];
    let (addr, calls) = serve(script).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut health = client(addr, layer(&events)).await;

    let res = health.check(check("orders")).await.unwrap();
    assert_eq!(res.into_inner().status(), ServingStatus::Serving);

    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 3);
    assert!(
        calls.iter().all(|c| c.body == calls[0].body),
        "replayed whole"
    );
    let events = events.lock().unwrap();
    let hints: Vec<_> = events.iter().map(|e| e.retry_after).collect();
    assert_eq!(
        hints,
        [
            Some(Duration::from_millis(30)),
            Some(Duration::from_millis(40))
        ]
    );
    assert!(events.iter().all(|e| Some(e.delay) >= e.retry_after));
    // Sleeps never end early, so the server saw the gaps the pushback asked for.
    assert!(calls[1].at - calls[0].at >= Duration::from_millis(30));
    assert!(calls[2].at - calls[1].at >= Duration::from_millis(40));
}

#[tokio::test]
async fn non_retryable_codes_reach_the_server_once() {
    // NOT_FOUND from the health service itself (unknown service name).
    let (addr, calls) = serve(vec![Answer::Pass]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let err = client(addr, layer(&events))
        .await
        .check(check("nobody"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(calls.lock().unwrap().len(), 1);

    // UNAVAILABLE with a negative pushback: the server says "do not retry" (gRPC A6).
    let stop = Answer::Grpc(Code::Unavailable, Some("-1"));
    let (addr, calls) = serve(vec![stop, Answer::Pass]).await;
    let err = client(addr, layer(&events))
        .await
        .check(check("orders"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_call_that_may_have_been_processed_is_not_duplicated() {
    // A 503 without a retry hint does not prove the call was not processed,
    // and gRPC calls are POSTs: sent once by default.
    let (addr, calls) = serve(vec![Answer::Http(503), Answer::Pass]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let err = client(addr, layer(&events))
        .await
        .check(check("orders"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "tonic maps HTTP 503");
    assert_eq!(calls.lock().unwrap().len(), 1);

    // Declaring the RPCs idempotent opts in.
    let (addr, calls) = serve(vec![Answer::Http(503), Answer::Pass]).await;
    let opt_in = layer(&events).idempotency(Idempotency::AllIdempotent);
    let res = client(addr, opt_in).await.check(check("orders")).await;
    assert_eq!(res.unwrap().into_inner().status(), ServingStatus::Serving);
    assert_eq!(calls.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_over_cap_request_is_sent_once_whole_and_not_retried() {
    let (addr, calls) = serve(vec![Answer::Grpc(Code::Unavailable, None), Answer::Pass]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let long_name = "o".repeat(1024);
    let err = client(addr, layer(&events))
        .await
        .check(check(&long_name))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "the first answer is final");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    // 5-byte gRPC frame header + field tag + 2-byte length + 1024 bytes.
    assert_eq!(calls[0].body.len(), 5 + 1 + 2 + 1024, "not truncated");
    assert!(calls[0].body.len() > CAP);
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_gate_answers_locally_while_the_server_pushes_back_for_too_long() {
    let hour = Answer::Grpc(Code::ResourceExhausted, Some("3600000"));
    let (addr, calls) = serve(vec![hour, Answer::Pass]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut health = client(addr, layer(&events)).await;
    let first = health.check(check("orders")).await.unwrap_err();
    assert_eq!(
        first.code(),
        Code::ResourceExhausted,
        "past the retry cap: returned"
    );
    // The gate's local 429 (gRPC maps HTTP 429 to UNAVAILABLE); the server
    // never sees the call.
    let second = health.check(check("orders")).await.unwrap_err();
    assert_eq!(second.code(), Code::Unavailable);
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert!(events.lock().unwrap().is_empty());
}
