//! The hyper-util legacy client stack end to end on loopback:
//! `ServiceBuilder` + `BackoffRetryLayer::buffered(cap)` + `Client` sending a
//! streaming (`Incoming`-like, unknown length) request body.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use support::{reply, serve_recorded, Received, Reply};
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::body::BufferedBody;
use tower_backoff::retry::RetryEvent;
use tower_backoff::{BackoffRetryLayer, LocalRateLimited, RateLimitAwareLayer};

/// A request body of unknown length, streamed in chunks, as a proxy gets
/// from `hyper::body::Incoming`.
type Streaming = BoxBody<Bytes, std::io::Error>;

/// What the client sends after `.buffered(cap)`.
type Upstream = Client<HttpConnector, BufferedBody<Streaming>>;

fn streaming(body: &[u8], chunk: usize) -> Streaming {
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = body
        .chunks(chunk.max(1))
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    BoxBody::new(StreamBody::new(futures::stream::iter(frames)))
}

const CAP: usize = 16;

/// Sends one request through retry + buffering + hyper-util to a scripted
/// loopback server; returns the status, what the server received and the
/// retries the layer announced.
async fn send(
    script: Vec<Reply>,
    method: Method,
    headers: &[(&'static str, &'static str)],
    body: &[u8],
) -> (u16, Vec<Received>, Vec<RetryEvent>) {
    let (addr, log) = serve_recorded(script).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let hook = events.clone();
    let layer = BackoffRetryLayer::exponential(Duration::from_millis(2), Duration::from_millis(50))
        .on_retry(move |e| hook.lock().unwrap().push(*e));
    let client: Upstream = Client::builder(TokioExecutor::new()).build_http();
    let svc = ServiceBuilder::new()
        .layer(layer.buffered(CAP))
        .service(client);
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}/orders"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = svc.oneshot(req.body(streaming(body, 5)).unwrap()).await;
    let res = res.expect("the server answers every attempt");
    let status = res.status().as_u16();
    // Read the reply so the connection goes back to the pool cleanly.
    let _ = res.into_body().collect().await;
    let received = log.lock().unwrap().clone();
    let events = events.lock().unwrap().clone();
    (status, received, events)
}

#[tokio::test]
async fn retries_429_then_returns_200_with_the_same_streamed_body() {
    let script = vec![
        reply(429),
        reply(429).header("retry-after", "0"),
        reply(200),
    ];
    let (status, received, events) = send(script, Method::GET, &[], b"q=1").await;
    assert_eq!(status, 200);
    assert_eq!(received.len(), 3);
    assert!(received
        .iter()
        .all(|r| r.body == "q=1" && r.method == "GET"));
    assert_eq!(events.iter().map(|e| e.attempt).collect::<Vec<_>>(), [2, 3]);
}

#[tokio::test]
async fn non_retryable_status_is_returned_after_one_call() {
    for code in [400, 404, 422] {
        let (status, received, events) =
            send(vec![reply(code), reply(200)], Method::GET, &[], b"").await;
        assert_eq!((status, received.len()), (code, 1), "{code}");
        assert!(events.is_empty());
    }
}

#[tokio::test]
async fn post_without_idempotency_key_is_not_duplicated_on_500() {
    let (status, received, _) = send(
        vec![reply(500), reply(200)],
        Method::POST,
        &[],
        b"{\"n\":1}",
    )
    .await;
    assert_eq!((status, received.len()), (500, 1));
}

#[tokio::test]
async fn post_with_idempotency_key_is_retried_on_500() {
    let key = [("idempotency-key", "order-7")];
    let (status, received, _) = send(vec![reply(500), reply(200)], Method::POST, &key, b"{}").await;
    assert_eq!((status, received.len()), (200, 2));
    assert!(received
        .iter()
        .all(|r| r.headers["idempotency-key"] == "order-7"));
}

#[tokio::test]
async fn post_is_retried_on_429() {
    let (status, received, _) = send(vec![reply(429), reply(200)], Method::POST, &[], b"{}").await;
    assert_eq!((status, received.len()), (200, 2));
}

#[tokio::test]
async fn streamed_body_over_the_cap_is_sent_once_whole_and_not_retried() {
    let big: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    // PUT is idempotent and 503 retryable: only the cap prevents the retry.
    let (status, received, events) =
        send(vec![reply(503), reply(200)], Method::PUT, &[], &big).await;
    assert_eq!(status, 503, "over the cap: the first answer is final");
    assert_eq!(received.len(), 1, "sent exactly once");
    assert_eq!(received[0].body, big, "not truncated");
    assert!(events.is_empty());
}

/// A bare hyper proxy: the body it forwards is the server's own
/// `hyper::body::Incoming`, buffered under the cap.
async fn hyper_proxy(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    type Proxied = Client<HttpConnector, BufferedBody<hyper::body::Incoming>>;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client: Proxied = Client::builder(TokioExecutor::new()).build_http();
    let retrying = ServiceBuilder::new()
        .layer(
            BackoffRetryLayer::exponential(Duration::from_millis(2), Duration::from_millis(50))
                .buffered(CAP),
        )
        .service(client);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let retrying = retrying.clone();
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (mut parts, body) = req.into_parts();
                let path = parts.uri.path().to_string();
                parts.uri = format!("http://{upstream}{path}").parse().unwrap();
                parts.headers.remove(http::header::HOST);
                retrying.clone().oneshot(Request::from_parts(parts, body))
            });
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    addr
}

/// PUTs `body` through the proxy to an upstream answering 503, then 200.
async fn through_proxy(body: Vec<u8>) -> (u16, Vec<Received>) {
    let (upstream, log) = serve_recorded(vec![reply(503), reply(200)]).await;
    let proxy = hyper_proxy(upstream).await;
    let req = Request::put(format!("http://{proxy}/items/1"))
        .body(http_body_util::Full::new(Bytes::from(body)))
        .unwrap();
    let res = support::http_client().request(req).await.unwrap();
    let received = log.lock().unwrap().clone();
    (res.status().as_u16(), received)
}

#[tokio::test]
async fn proxied_incoming_body_is_replayed_under_the_cap_and_sent_once_over_it() {
    let (status, received) = through_proxy(b"tiny".to_vec()).await;
    assert_eq!((status, received.len()), (200, 2), "replayed after the 503");
    assert!(received.iter().all(|r| r.body == "tiny"));

    let big = vec![b'x'; 1024];
    let (status, received) = through_proxy(big.clone()).await;
    assert_eq!(
        (status, received.len()),
        (503, 1),
        "over the cap: sent once"
    );
    assert_eq!(received[0].body, big, "not truncated");
}

/// Retry, the rate-limit gate inside it, and hyper-util. The gate needs a
/// response body with `Default` (for its local 429); hyper's `Incoming` has
/// none, so the client's responses are boxed first.
#[tokio::test]
async fn gate_inside_the_retry_answers_locally_while_the_server_asks_for_too_long() {
    let (addr, log) =
        serve_recorded(vec![reply(429).header("retry-after", "3600"), reply(200)]).await;
    let client: Upstream = Client::builder(TokioExecutor::new()).build_http();
    let svc = ServiceBuilder::new()
        .layer(
            BackoffRetryLayer::exponential(Duration::from_millis(2), Duration::from_millis(50))
                .buffered(CAP),
        )
        // A local 429 needs a response body with `Default`: box hyper's `Incoming`.
        .layer(RateLimitAwareLayer::new().max_wait(Duration::from_secs(60)))
        .map_response(|res: http::Response<hyper::body::Incoming>| res.map(BoxBody::new))
        .service(client);
    let get = || {
        Request::get(format!("http://{addr}/"))
            .body(streaming(b"", 1))
            .unwrap()
    };
    let first = svc.clone().oneshot(get()).await.unwrap();
    assert_eq!(
        first.status(),
        429,
        "the server's, returned: 3600 s is past the cap"
    );
    assert!(first.extensions().get::<LocalRateLimited>().is_none());
    let second = svc.oneshot(get()).await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.extensions().get::<LocalRateLimited>().is_some());
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the second never reached the server"
    );
}
