use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, Request};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::buffered::{to_bytes_frame, BufferedBody};

pin_project! {
    /// The future of [`BufferBody`](super::BufferBody): reads the body (up to
    /// the cap), then calls the inner service.
    pub struct BufferFuture<S, B>
    where
        S: Service<Request<BufferedBody<B>>>,
        B: Body,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<BufferedBody<B>>>,
        B: Body,
    {
        Reading { read: Option<Reading<S, B>> },
        Calling { #[pin] future: S::Future },
    }
}

struct Reading<S, B> {
    service: S,
    parts: Parts,
    body: B,
    chunks: VecDeque<Bytes>,
    len: usize,
    max_bytes: usize,
}

impl<S, B> BufferFuture<S, B>
where
    S: Service<Request<BufferedBody<B>>>,
    B: Body,
{
    pub(super) fn new(service: S, req: Request<B>, max_bytes: usize) -> Self {
        let (parts, body) = req.into_parts();
        BufferFuture {
            state: State::Reading {
                read: Some(Reading {
                    service,
                    parts,
                    body,
                    chunks: VecDeque::new(),
                    len: 0,
                    max_bytes,
                }),
            },
        }
    }
}

impl<S, B> std::fmt::Debug for BufferFuture<S, B>
where
    S: Service<Request<BufferedBody<B>>>,
    B: Body,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("BufferFuture");
        match &self.state {
            State::Reading { read: Some(r) } => d
                .field("state", &"reading the body")
                .field("read_bytes", &r.len)
                .field("max_bytes", &r.max_bytes),
            State::Reading { read: None } => d.field("state", &"taken"),
            State::Calling { .. } => d.field("state", &"calling the inner service"),
        };
        d.finish()
    }
}

/// What reading one frame decided.
enum Step<E> {
    More,
    /// Complete, with these trailers: replayable.
    Complete(Option<HeaderMap>),
    /// Over the cap: sent once, as it is.
    PassThrough,
    Failed(E),
}

impl<S, B> Reading<S, B>
where
    B: Body + Unpin,
{
    /// Reads one frame and decides, once it can, what the body becomes.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step<B::Error>> {
        if self.body.size_hint().lower() > self.max_bytes as u64 {
            // Known to be too large: do not read any of it.
            return Poll::Ready(Step::PassThrough);
        }
        let step = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            None => Step::Complete(None),
            Some(Err(e)) => Step::Failed(e),
            Some(Ok(frame)) => match to_bytes_frame(frame).into_data() {
                Ok(data) => {
                    self.len = self.len.saturating_add(data.len());
                    self.chunks.push_back(data);
                    if self.len > self.max_bytes {
                        Step::PassThrough
                    } else {
                        Step::More
                    }
                }
                // Trailers end a body (http-body's contract).
                Err(frame) => Step::Complete(frame.into_trailers().ok()),
            },
        };
        Poll::Ready(step)
    }

    fn into_request(mut self, step: Step<B::Error>) -> (S, Request<BufferedBody<B>>) {
        let body = match step {
            Step::Complete(trailers) => BufferedBody::full(self.concat(), trailers),
            Step::PassThrough => {
                let read: VecDeque<Frame<Bytes>> = self.chunks.drain(..).map(Frame::data).collect();
                BufferedBody::passthrough(read, Some(self.body))
            }
            Step::Failed(e) => BufferedBody::failed(e),
            Step::More => BufferedBody::passthrough(VecDeque::new(), Some(self.body)),
        };
        (self.service, Request::from_parts(self.parts, body))
    }

    fn concat(&mut self) -> Bytes {
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop_front().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(self.len);
                for chunk in self.chunks.drain(..) {
                    all.extend_from_slice(&chunk);
                }
                all.freeze()
            }
        }
    }
}

impl<S, B> Future for BufferFuture<S, B>
where
    S: Service<Request<BufferedBody<B>>>,
    B: Body + Unpin,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Reading { read } => {
                    // `read` is emptied only right before the state moves to
                    // `Calling`; it can be seen empty only if the inner
                    // service's `call` panicked and the future is polled again.
                    const TAKEN: &str =
                        "BufferFuture polled again after the inner service's call panicked";
                    let step = match read.as_mut() {
                        Some(reading) => ready!(reading.poll_step(cx)),
                        None => unreachable!("{TAKEN}"),
                    };
                    if matches!(step, Step::More) {
                        continue;
                    }
                    let (mut service, req) = match read.take() {
                        Some(reading) => reading.into_request(step),
                        None => unreachable!("{TAKEN}"),
                    };
                    if !req.body().is_buffered() {
                        tracing::debug!(
                            target: "tower_backoff::body",
                            "request body over the buffer cap or failed while read: sent once, not replayable"
                        );
                    }
                    let future = service.call(req);
                    self.as_mut().project().state.set(State::Calling { future });
                }
                StateProj::Calling { future } => return future.poll(cx),
            }
        }
    }
}
