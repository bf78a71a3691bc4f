//! What the stack examples (`hyper_client`, `axum_gateway`, `tonic_client`,
//! `reqwest_client`) share: where to send (the command line's target, or else
//! a demo server started on 127.0.0.1:0), a demo upstream that answers its
//! first `failures` requests with `429 Too Many Requests` and
//! `retry-after-ms: 200`, then `200 OK`, and a hook that prints each retry.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The error type of the examples' `main`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The target given as the first command-line argument, or else the one
/// `demo` starts (it runs only when no argument is given).
pub async fn target_or(
    demo: impl Future<Output = std::io::Result<String>>,
) -> std::io::Result<String> {
    match std::env::args().nth(1) {
        Some(target) => Ok(target),
        None => demo.await,
    }
}

/// The URL of `path` on a fresh [`flaky_upstream`] that fails twice.
pub async fn demo_url(path: &str) -> std::io::Result<String> {
    Ok(format!("http://{}{path}", flaky_upstream(2).await?))
}

/// Starts the demo upstream; it runs until the program exits.
pub async fn flaky_upstream(failures: usize) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let served = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let served = served.clone();
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let n = served.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let (parts, body) = req.into_parts();
                        let len = body.collect().await.map_or(0, |b| b.to_bytes().len());
                        println!(
                            "  upstream: #{} {} {} ({len} bytes)",
                            n + 1,
                            parts.method,
                            parts.uri
                        );
                        let res = if n < failures {
                            http::Response::builder()
                                .status(429)
                                .header("retry-after-ms", "200")
                                .body(Full::new(Bytes::from_static(b"slow down")))
                        } else {
                            http::Response::builder().body(Full::new(Bytes::from_static(b"ok")))
                        };
                        Ok::<_, Infallible>(res.expect("a valid response"))
                    }
                });
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Prints each retry the layer announces.
pub fn print_retry(event: &tower_backoff::retry::RetryEvent) {
    println!(
        "  retry: attempt {} in {:?} after {} (server asked for {:?})",
        event.attempt,
        event.delay,
        event.reason.map_or("?".to_string(), |r| r.to_string()),
        event.retry_after,
    );
}
