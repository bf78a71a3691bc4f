//! Faults on real loopback sockets: a server that dies and comes back, one
//! that resets connections after reading the request, one that stalls.
//! Asserts outcomes and counts, never wall-clock speed.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::BackoffRetryLayer;

/// Request ids seen by the server, with how many times each arrived.
type Seen = Arc<Mutex<HashMap<String, u32>>>;

fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(1024).unwrap()
}

fn record(seen: &Seen, id: &str) {
    *seen.lock().unwrap().entry(id.to_string()).or_default() += 1;
}

/// A hyper server answering 200 to everything, counting request ids.
fn serve_ok(listener: TcpListener, seen: Seen) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            conns.spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let id = request_id(req.headers());
                        let _ = req.into_body().collect().await;
                        record(&seen, &id);
                        // Slow enough that a crash catches requests in flight.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
        // Dropping the JoinSet aborts every open connection: a real crash.
    })
}

fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string()
}

/// A raw TCP server that reads each request head, records its id, and resets
/// the connection without answering (`stall` = keep it open, silent).
fn serve_broken(listener: TcpListener, seen: Seen, stall: bool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).to_lowercase();
            let id = head
                .lines()
                .find_map(|l| l.strip_prefix("x-request-id:"))
                .map_or("?".to_string(), |v| v.trim().to_string());
            record(&seen, &id);
            if stall {
                open.push(stream);
            } else {
                // A zero linger makes the close a TCP RST; it does not block.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                let _ = stream.shutdown().await;
                drop(stream);
            }
        }
    })
}

fn req(method: Method, addr: SocketAddr, id: usize) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("http://{addr}/pay"))
        .header("x-request-id", id.to_string())
        .body(Full::new(Bytes::from_static(b"{\"amount\":1}")))
        .unwrap()
}

#[tokio::test]
async fn idempotent_requests_finish_once_a_killed_server_is_back() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let server = serve_ok(listener, seen.clone());

    let layer =
        BackoffRetryLayer::exponential(Duration::from_millis(20), Duration::from_millis(200))
            .max_attempts(50)
            .max_elapsed(Duration::from_secs(20));
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(support::http_client());

    let batch: Vec<_> = (0..40)
        .map(|id| tokio::spawn(client.clone().oneshot(req(Method::GET, addr, id))))
        .collect();
    // Kill the server once it holds requests in flight, then bring it back.
    for _ in 0..500 {
        if seen.lock().unwrap().len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = serve_ok(listen(addr), seen.clone());

    for (id, task) in batch.into_iter().enumerate() {
        let res = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("no request hangs")
            .unwrap()
            .unwrap_or_else(|e| panic!("request {id} failed: {e}"));
        assert_eq!(res.status(), 200);
    }
    let seen = seen.lock().unwrap();
    assert!((0..40).all(|id| seen.contains_key(&id.to_string())));
    assert!(
        seen.values().any(|&n| n > 1),
        "the crash caught requests in flight, which were retried"
    );
}

#[tokio::test]
async fn post_that_may_have_been_processed_is_never_sent_twice() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let _server = serve_broken(listener, seen.clone(), false);

    let layer = BackoffRetryLayer::constant(Duration::from_millis(5)).max_attempts(5);
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(support::http_client());
    for id in 0..20 {
        let out = client.clone().oneshot(req(Method::POST, addr, id)).await;
        assert!(out.is_err(), "the server never answers");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 20);
    assert!(
        seen.values().all(|&n| n == 1),
        "a POST was duplicated: {seen:?}"
    );
}

#[tokio::test]
async fn refused_post_is_sent_once_the_server_is_up() {
    // Reserve a port, then leave it closed: connections are refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let seen = Seen::default();
    let layer = BackoffRetryLayer::constant(Duration::from_millis(50)).max_attempts(40);
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(support::http_client());
    let pending = tokio::spawn(client.oneshot(req(Method::POST, addr, 7)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _server = serve_ok(listen(addr), seen.clone());
    let res = pending
        .await
        .unwrap()
        .expect("retried until the server came up");
    assert_eq!(res.status(), 200);
    assert_eq!(
        seen.lock().unwrap().get("7"),
        Some(&1),
        "processed exactly once"
    );
}

#[tokio::test]
async fn stalled_server_is_bounded_by_per_attempt_timeout_and_max_elapsed() {
    let listener = listen("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let _server = serve_broken(listener, seen.clone(), true);

    let layer = BackoffRetryLayer::constant(Duration::from_millis(50))
        .max_attempts(100)
        .max_elapsed(Duration::from_millis(1500));
    let client = ServiceBuilder::new()
        .layer(layer)
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
            200,
        )))
        .service(support::http_client());
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        client.oneshot(req(Method::GET, addr, 1)),
    )
    .await
    .expect("the request ends: no hang past the deadline");
    let err = out.expect_err("the server never answers");
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    let attempts = seen.lock().unwrap().get("1").copied().unwrap_or(0);
    // 200 ms per attempt + 50 ms between them within 1.5 s: at most 7 attempts.
    assert!((2..=7).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn garbage_rate_limit_headers_on_200_change_nothing() {
    let garbage = support::reply(200)
        .header("retry-after", "99999999999999999999")
        .header("ratelimit", "\"default\";r=-4;t=abc")
        .header("ratelimit-policy", "q=;w=0")
        .header("x-ratelimit-remaining", "-1")
        .header("x-ratelimit-reset", "1e99")
        .header("x-ratelimit-reset-requests", "6m0s5x")
        .raw_header("anthropic-ratelimit-requests-reset", b"\xff\xfe")
        .header("grpc-retry-pushback-ms", "-5");
    let (addr, log) = support::serve_script(vec![garbage]).await;
    let client = ServiceBuilder::new()
        .layer(BackoffRetryLayer::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ))
        .layer(tower_backoff::RateLimitAwareLayer::new())
        .service(support::http_client());
    let batch: Vec<_> = (0..50)
        .map(|id| tokio::spawn(client.clone().oneshot(req(Method::GET, addr, id))))
        .collect();
    for task in batch {
        let res = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("no request hangs")
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(log.lock().unwrap().len(), 50, "one call per request");
}
