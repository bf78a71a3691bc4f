//! The breaker end to end on loopback, on the real clock: a hyper server on
//! `127.0.0.1:0` is stopped (connections refused, open connections closed)
//! and restarted on the same port while callers keep sending through
//! retry → breaker → hyper-util's client. The breaker opens and closes
//! again, and every request ends with a 200.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::circuit::CircuitState;
use tower_backoff::{BackoffRetryLayer, CircuitBreakerLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Transport = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, BoxError>;

/// A hyper server that can be stopped and started again on its port.
struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    hits: Arc<AtomicU64>,
}

impl Server {
    async fn start(addr: SocketAddr, hits: Arc<AtomicU64>) -> Server {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept(listener, stopped, hits.clone()));
        Server {
            addr,
            stop,
            accept,
            hits,
        }
    }

    /// Closes the listener and every open connection.
    async fn stop(self) -> (SocketAddr, Arc<AtomicU64>) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        (self.addr, self.hits)
    }
}

async fn accept(listener: TcpListener, mut stopped: watch::Receiver<bool>, hits: Arc<AtomicU64>) {
    loop {
        let stream = tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let hits = hits.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                hits.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            // Stopping drops the connection: the socket closes under the client.
            tokio::select! {
                _ = stopped.changed() => {}
                _ = conn => {}
            }
        });
    }
}

/// hyper-util's pooled client, answers read in full.
fn transport() -> Transport {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    BoxCloneService::new(client.map_err(BoxError::from).and_then(
        |res: Response<hyper::body::Incoming>| async move {
            let (parts, body) = res.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(Response::from_parts(parts, Full::new(bytes)))
        },
    ))
}

#[tokio::test]
async fn a_server_stopped_and_restarted_on_its_port_opens_then_closes_the_breaker() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), Arc::default()).await;
    let uri = format!("http://{}/", server.addr);
    let changes = Arc::new(Mutex::new(Vec::new()));
    let log = changes.clone();
    let breaker = CircuitBreakerLayer::new()
        .minimum_throughput(5)
        .sampling_duration(Duration::from_secs(1))
        .break_duration(Duration::from_millis(200))
        .on_state_change(move |c| log.lock().unwrap().push(c.to));
    let client = ServiceBuilder::new()
        // A steady 20 attempts a second per caller while the server is
        // down, so that failures soon outweigh the window's successes; the
        // breaker's waits (up to 10 × 200 ms) are honoured.
        .layer(
            BackoffRetryLayer::constant(Duration::from_millis(50))
                .max_attempts(100)
                .max_retry_after(Duration::from_secs(2)),
        )
        .layer(breaker.clone())
        .service(transport());
    let client = BoxCloneService::new(client);

    // Ten callers, one GET each every 100 ms, for 3 s.
    let end = tokio::time::Instant::now() + Duration::from_millis(3_000);
    let workers: Vec<_> = (0..10)
        .map(|_| {
            let (client, uri) = (client.clone(), uri.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while tokio::time::Instant::now() < end {
                    let req = Request::get(uri.as_str()).body(Full::default()).unwrap();
                    let status = client.clone().oneshot(req).await.map(|r| r.status());
                    statuses.push(status.map_err(|e| e.to_string()));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                statuses
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (addr, hits) = server.stop().await;
    let hits_at_stop = hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let opened_while_down = breaker.stats().keys[0].opened;
    let server = Server::start(addr, hits).await;

    let mut statuses = Vec::new();
    for w in workers {
        statuses.extend(w.await.unwrap());
    }
    let hits = server.stop().await.1.load(Ordering::SeqCst);
    let failed: Vec<_> = statuses
        .iter()
        .filter(|s| !matches!(s, Ok(s) if *s == 200))
        .collect();
    let seen = changes.lock().unwrap().clone();
    eprintln!(
        "loopback: {} requests, {} not 200; server hits {hits_at_stop} before the stop, {hits} in all; \
         opened {opened_while_down} time(s) while down; changes {seen:?}",
        statuses.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert!(opened_while_down >= 1);
    assert!(seen.contains(&CircuitState::Open));
    assert_eq!(seen.last(), Some(&CircuitState::Closed));
    assert_eq!(breaker.stats().keys[0].state, CircuitState::Closed);
}
