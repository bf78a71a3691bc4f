//! [`BufferBodyLayer`]: make request bodies replayable by buffering them, up
//! to a byte cap, before the retry layer sees them.
//!
//! Streaming bodies (`axum::body::Body`, `tonic::body::Body`,
//! `hyper::body::Incoming`) cannot be cloned, so without buffering a retry
//! layer must send them once. This layer reads the body into memory when it
//! fits under `max_bytes` and hands the retry layer a [`BufferedBody`] it can
//! replay. A body that is larger than the cap (by its size hint or once read)
//! is sent once, unchanged and complete: the bytes already read go first,
//! then the rest of the stream. Memory per in-flight request is bounded by
//! the cap. Bodies must be `Unpin` (axum's, tonic's and hyper's are).
//!
//! Put it *outside* the retry layer, or use
//! [`BackoffRetryLayer::buffered`](crate::BackoffRetryLayer::buffered), which
//! does both:
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_backoff::{body::BufferedBody, BackoffRetryLayer, BufferBodyLayer};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let mut first = true;
//! let upstream = service_fn(move |req: http::Request<BufferedBody<Full<Bytes>>>| {
//!     let status = if std::mem::take(&mut first) { 503 } else { 200 };
//!     async move {
//!         let body = req.into_body().collect().await.unwrap().to_bytes();
//!         assert_eq!(body, "hello");
//!         Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
//!     }
//! });
//! let svc = ServiceBuilder::new()
//!     .layer(BufferBodyLayer::new(64 * 1024))
//!     .layer(BackoffRetryLayer::exponential(Duration::from_millis(10), Duration::from_secs(1)))
//!     .service(upstream);
//! let res = svc.oneshot(http::Request::new(Full::new(Bytes::from("hello")))).await.unwrap();
//! assert_eq!(res.status(), 200);
//! # }
//! ```

mod buffered;
mod future;

use std::task::{Context, Poll};

use http::Request;
use http_body::Body;
use tower_service::Service;

pub use buffered::BufferedBody;
pub use future::BufferFuture;

/// Buffers request bodies up to `max_bytes` so they can be replayed.
#[derive(Debug, Clone, Copy)]
pub struct BufferBodyLayer {
    max_bytes: usize,
}

impl BufferBodyLayer {
    /// Buffer bodies of at most `max_bytes`; larger ones pass through once.
    pub fn new(max_bytes: usize) -> Self {
        BufferBodyLayer { max_bytes }
    }
}

impl<S> tower_layer::Layer<S> for BufferBodyLayer {
    type Service = BufferBody<S>;

    fn layer(&self, inner: S) -> BufferBody<S> {
        BufferBody {
            inner,
            max_bytes: self.max_bytes,
        }
    }
}

/// The service made by [`BufferBodyLayer`].
#[derive(Debug, Clone)]
pub struct BufferBody<S> {
    inner: S,
    max_bytes: usize,
}

impl<S, B> Service<Request<B>> for BufferBody<S>
where
    S: Service<Request<BufferedBody<B>>> + Clone,
    B: Body + Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BufferFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The service polled ready goes with this request; a fresh clone
        // stays behind for the next one (the usual tower pattern).
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        BufferFuture::new(ready, req, self.max_bytes)
    }
}
