//! The token-bucket server on `127.0.0.1:0` over hyper, and hyper-util's
//! client for it: what the showdown and the fleet send their batches over.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::util::BoxCloneService;
use tower::ServiceExt;

use super::contenders::{BoxError, Transport};
use super::limiter::Limiter;

/// Pause before accepting again after a failed `accept`.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);

/// A server for `limiter` on `127.0.0.1:0`, and its address. Dropping the
/// returned sender stops accepting; open connections end with their clients.
pub fn serve(limiter: Arc<Limiter>) -> io::Result<(Uri, oneshot::Sender<()>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let listener = TcpListener::from_std(listener)?;
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(accept(listener, limiter, stopped));
    Ok((uri(addr)?, stop))
}

/// Accepts connections until `stopped` fires or its sender is dropped.
async fn accept(listener: TcpListener, limiter: Arc<Limiter>, mut stopped: oneshot::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: let connections finish.
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let limiter = limiter.clone();
        let service = hyper::service::service_fn(move |_request| {
            let limiter = limiter.clone();
            async move { Ok::<_, Infallible>(limiter.serve().await) }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// hyper-util's pooled client, reading each answer's body to the end so the
/// connection goes back to the pool.
pub fn client() -> Transport {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let service = client.map_err(BoxError::from).and_then(
        |response: http::Response<hyper::body::Incoming>| async move {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(http::Response::from_parts(parts, Full::new(bytes)))
        },
    );
    BoxCloneService::new(service)
}

fn uri(addr: SocketAddr) -> io::Result<Uri> {
    format!("http://{addr}/").parse().map_err(io::Error::other)
}
