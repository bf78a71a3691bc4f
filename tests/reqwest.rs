//! reqwest-middleware 0.5 with `BackoffMiddleware` (feature
//! `reqwest-middleware`), and `reqwest::Client` as a tower service under
//! `BackoffRetryLayer`, against a loopback hyper server.
#![cfg(feature = "reqwest-middleware")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Extensions;
use http_body::Frame;
use http_body_util::StreamBody;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::{reply, serve_recorded, Received, Reply};
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::budget::GrpcThrottle;
use tower_backoff::reqwest::{BackoffMiddleware, RateLimitMiddleware};
use tower_backoff::retry::RetryEvent;
use tower_backoff::{Attempt, BackoffRetryLayer, LocalRateLimited, RateLimitAwareLayer};

type Events = Arc<Mutex<Vec<RetryEvent>>>;

fn layer(events: &Events) -> BackoffRetryLayer {
    let events = events.clone();
    BackoffRetryLayer::exponential(Duration::from_millis(2), Duration::from_millis(50))
        .on_retry(move |e| events.lock().unwrap().push(*e))
}

fn client(layer: BackoffRetryLayer) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(BackoffMiddleware::new(layer))
        .build()
}

struct Run {
    status: u16,
    attempts: u32,
    received: Vec<Received>,
    events: Vec<RetryEvent>,
}

/// Sends `req(client, url)` through the middleware to a scripted server.
async fn run<F>(script: Vec<Reply>, make: F) -> Run
where
    F: FnOnce(&ClientWithMiddleware, String) -> reqwest::Request,
{
    let (addr, log) = serve_recorded(script).await;
    let events = Events::default();
    let client = client(layer(&events));
    let req = make(&client, format!("http://{addr}/v1/things"));
    let mut ext = Extensions::new();
    let res = client.execute_with_extensions(req, &mut ext).await.unwrap();
    let status = res.status().as_u16();
    let _ = res.bytes().await;
    let received = log.lock().unwrap().clone();
    let events = events.lock().unwrap().clone();
    Run {
        status,
        attempts: Attempt::of(&ext),
        received,
        events,
    }
}

#[tokio::test]
async fn retries_429_then_returns_200() {
    let script = vec![
        reply(429).header("retry-after", "0"),
        reply(429),
        reply(200),
    ];
    let r = run(script, |c, url| c.get(url).build().unwrap()).await;
    assert_eq!((r.status, r.received.len()), (200, 3));
    assert_eq!(r.attempts, 3, "the attempt number is in the extensions");
    assert_eq!(r.events.len(), 2);
}

#[tokio::test]
async fn non_retryable_status_is_returned_after_one_call() {
    for code in [400, 401, 404, 422] {
        let r = run(vec![reply(code), reply(200)], |c, url| {
            c.get(url).build().unwrap()
        })
        .await;
        assert_eq!((r.status, r.received.len()), (code, 1), "{code}");
    }
}

#[tokio::test]
async fn post_without_idempotency_key_is_not_duplicated_on_500() {
    let r = run(vec![reply(500), reply(200)], |c, url| {
        c.post(url).body("{\"n\":1}").build().unwrap()
    })
    .await;
    assert_eq!((r.status, r.received.len()), (500, 1));
    assert!(r.events.is_empty());
}

#[tokio::test]
async fn post_with_idempotency_key_is_replayed_whole_on_500() {
    let r = run(vec![reply(500), reply(200)], |c, url| {
        c.post(url)
            .header("idempotency-key", "k-1")
            .body("{\"n\":1}")
            .build()
            .unwrap()
    })
    .await;
    assert_eq!((r.status, r.received.len()), (200, 2));
    assert!(r.received.iter().all(|x| x.body == "{\"n\":1}"));
}

#[tokio::test]
async fn streaming_body_is_sent_once_whole_and_not_retried() {
    let big: Vec<u8> = (0..1024u32).map(|i| (i % 241) as u8).collect();
    let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> = big
        .chunks(100)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let body = reqwest::Body::wrap(StreamBody::new(futures::stream::iter(chunks)));
    // PUT is idempotent and 503 retryable: only the unclonable body prevents it.
    let r = run(vec![reply(503), reply(200)], |c, url| {
        c.put(url).body(body).build().unwrap()
    })
    .await;
    assert_eq!((r.status, r.received.len()), (503, 1));
    assert_eq!(r.received[0].body, big, "not truncated");
    assert!(r.events.is_empty());
}

#[tokio::test]
async fn uses_the_layers_retry_after_rules() {
    // Within the cap: the wait is at least the server's.
    let script = vec![reply(503).header("retry-after-ms", "20"), reply(200)];
    let r = run(script, |c, url| c.post(url).body("x").build().unwrap()).await;
    assert_eq!(
        (r.status, r.received.len()),
        (200, 2),
        "503 + hint: not processed"
    );
    assert_eq!(r.events[0].retry_after, Some(Duration::from_millis(20)));
    assert!(r.events[0].delay >= Duration::from_millis(20));
    // Beyond the cap (50 ms): the server's answer comes back at once.
    let script = vec![reply(429).header("retry-after", "3600"), reply(200)];
    let r = run(script, |c, url| c.get(url).build().unwrap()).await;
    assert_eq!((r.status, r.received.len()), (429, 1));
}

#[tokio::test]
async fn clones_share_the_layers_budget() {
    let (addr, log) = serve_recorded(vec![reply(503)]).await;
    // Four tokens: failures spend one each, retries stop at half.
    let layer =
        BackoffRetryLayer::constant(Duration::from_millis(1)).budget(GrpcThrottle::new(4, 0.1));
    let a = client(layer.clone());
    let b = client(layer);
    let url = format!("http://{addr}/");
    for c in [&a, &a, &b, &b] {
        assert_eq!(c.get(&url).send().await.unwrap().status(), 503);
    }
    // Retries are allowed only while tokens > 2: the first request fails
    // twice (4 → 3, retry; 3 → 2, stop), then every request, through either
    // clone, is sent once.
    assert_eq!(log.lock().unwrap().len(), 2 + 1 + 1 + 1);
}

#[tokio::test]
async fn refused_connection_makes_a_post_safe_to_retry() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let events = Events::default();
    let client = client(layer(&events).max_attempts(3));
    let err = client
        .post(format!("http://{dead}/"))
        .body("x")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(events.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn reqwest_client_works_as_a_tower_service_under_the_layer() {
    let (addr, log) = serve_recorded(vec![reply(429), reply(200)]).await;
    let events = Events::default();
    let svc = ServiceBuilder::new()
        .layer(layer(&events))
        .service(reqwest::Client::new());
    let req = reqwest::Request::new(
        http::Method::POST,
        format!("http://{addr}/").parse().unwrap(),
    );
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(log.lock().unwrap().len(), 2);
}

// ---- RateLimitMiddleware: the gate of RateLimitAwareLayer ----

fn gated<R>(layer: BackoffRetryLayer, gate: RateLimitAwareLayer<R>) -> ClientWithMiddleware
where
    RateLimitMiddleware<R>: reqwest_middleware::Middleware,
{
    ClientBuilder::new(reqwest::Client::new())
        .with(BackoffMiddleware::new(layer))
        .with(RateLimitMiddleware::new(gate))
        .build()
}

#[tokio::test]
async fn gate_answers_locally_while_the_server_asks_for_too_long() {
    let (addr, log) =
        serve_recorded(vec![reply(429).header("retry-after", "3600"), reply(200)]).await;
    let events = Events::default();
    let gate = RateLimitAwareLayer::new().max_wait(Duration::from_secs(60));
    let client = gated(layer(&events), gate);
    let url = format!("http://{addr}/v1/things");

    // The server's 429 asks for more than the retry cap: returned as is.
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 429);
    assert!(first.extensions().get::<LocalRateLimited>().is_none());
    assert_eq!(first.url().as_str(), url, "the server's own response");

    // The gate learnt the hold and answers the next call itself.
    let second = client.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.extensions().get::<LocalRateLimited>().is_some());
    assert!(second.headers().contains_key("retry-after"));
    assert_eq!(log.lock().unwrap().len(), 1, "never reached the server");
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn gate_holds_the_next_request_until_the_servers_retry_after() {
    let script = vec![reply(429).header("retry-after-ms", "80"), reply(200)];
    let (addr, log) = serve_recorded(script).await;
    // No retries: the gate alone makes the second request wait.
    let events = Events::default();
    let client = gated(layer(&events).max_attempts(1), RateLimitAwareLayer::new());
    let url = format!("http://{addr}/");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 429);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[1].at - log[0].at >= Duration::from_millis(80));
}
