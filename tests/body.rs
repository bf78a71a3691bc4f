//! `BufferBodyLayer` / `BackoffRetryLayer::buffered`: streaming bodies become
//! replayable under the cap, and pass through once, whole, above it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::body::BufferedBody;
use tower_backoff::{BackoffRetryLayer, BufferBodyLayer};

type Streaming = BoxBody<Bytes, std::io::Error>;

/// A streaming body of unknown length made of `chunks`.
fn streaming(chunks: &[&'static str]) -> Streaming {
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
        .collect();
    BoxBody::new(StreamBody::new(futures::stream::iter(frames)))
}

type BodyLog = Arc<Mutex<Vec<Result<Bytes, String>>>>;

/// An upstream that answers 503 to the first `fail` calls and records every
/// body it received (or the body error).
fn upstream(
    fail: usize,
) -> (
    impl tower::Service<
            Request<BufferedBody<Streaming>>,
            Response = Response<()>,
            Error = Infallible,
            Future = impl Send,
        > + Clone,
    BodyLog,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let svc = tower::service_fn(move |req: Request<BufferedBody<Streaming>>| {
        let seen = seen.clone();
        async move {
            let body = req.into_body().collect().await;
            let mut log = seen.lock().unwrap();
            log.push(body.map(|b| b.to_bytes()).map_err(|e| e.to_string()));
            let status = if log.len() <= fail { 503 } else { 200 };
            Ok::<_, Infallible>(Response::builder().status(status).body(()).unwrap())
        }
    });
    (svc, log)
}

fn retry() -> BackoffRetryLayer {
    BackoffRetryLayer::exponential(Duration::from_millis(10), Duration::from_secs(1))
}

#[tokio::test(start_paused = true)]
async fn streaming_body_under_the_cap_is_replayed_whole() {
    let (svc, log) = upstream(2);
    let svc = ServiceBuilder::new()
        .layer(retry().buffered(1024))
        .service(svc);
    let res = svc
        .oneshot(Request::new(streaming(&["hel", "lo ", "world"])))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|b| b.as_deref() == Ok(&b"hello world"[..])));
}

#[tokio::test(start_paused = true)]
async fn body_over_the_cap_is_sent_once_and_not_truncated() {
    let (svc, log) = upstream(1);
    let svc = ServiceBuilder::new()
        .layer(BufferBodyLayer::new(8))
        .layer(retry())
        .service(svc);
    let res = svc
        .oneshot(Request::new(streaming(&["0123", "4567", "89ab", "cdef"])))
        .await
        .unwrap();
    assert_eq!(res.status(), 503, "not retried");
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].as_deref(), Ok(&b"0123456789abcdef"[..]));
}

#[tokio::test(start_paused = true)]
async fn body_known_to_exceed_the_cap_is_not_read_ahead() {
    let big = Bytes::from(vec![7u8; 4096]);
    let body: Streaming = http_body_util::Full::new(big.clone())
        .map_err(|never| match never {})
        .boxed();
    let (svc, log) = upstream(1);
    let svc = ServiceBuilder::new()
        .layer(retry().buffered(1024))
        .service(svc);
    let res = svc.oneshot(Request::new(body)).await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(log.lock().unwrap().as_slice(), [Ok(big)]);
}

#[tokio::test(start_paused = true)]
async fn body_error_while_buffering_reaches_the_upstream_once() {
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
        Ok(Frame::data(Bytes::from_static(b"abc"))),
        Err(std::io::Error::other("client went away")),
    ];
    let body: Streaming = BoxBody::new(StreamBody::new(futures::stream::iter(frames)));
    let (svc, log) = upstream(1);
    let svc = ServiceBuilder::new()
        .layer(retry().buffered(1024))
        .service(svc);
    let res = svc.oneshot(Request::new(body)).await.unwrap();
    assert_eq!(res.status(), 503);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0], Err("client went away".to_string()));
}

#[tokio::test(start_paused = true)]
async fn empty_and_trailer_bodies_are_replayable() {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
        Ok(Frame::data(Bytes::from_static(b"x"))),
        Ok(Frame::trailers(trailers)),
    ];
    let body: Streaming = BoxBody::new(StreamBody::new(futures::stream::iter(frames)));
    let (svc, log) = upstream(1);
    let svc = ServiceBuilder::new()
        .layer(retry().buffered(16))
        .service(svc);
    assert_eq!(
        svc.clone()
            .oneshot(Request::new(body))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(log.lock().unwrap().len(), 2);
    let res = svc.oneshot(Request::new(streaming(&[]))).await.unwrap();
    assert_eq!(res.status(), 200);
}
