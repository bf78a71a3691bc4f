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
use tower_backoff::BackoffRetryLayer;

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
