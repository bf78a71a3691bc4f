//! The response future of [`RateLimitAware`](super::RateLimitAware):
//! wait for a permit → drive the inner service → learn from its response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use std::marker::PhantomData;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::permit::{Permit, Waiting};
use super::refusal::Refusal;

pin_project! {
    /// Response future of [`RateLimitAware`](super::RateLimitAware).
    ///
    /// Dropping it at any point is safe: a place in the queue is given up, a
    /// granted release that was not sent is given back whole, and a request
    /// in flight frees its slot.
    pub struct ResponseFuture<S, B, R>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future>,
        svc: Option<S>,
        req: Option<Request<B>>,
        permit: Option<Permit>,
        refusal: PhantomData<fn() -> R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Waiting { wait: Waiting },
        Readying,
        Calling { #[pin] fut: F },
        Refused { wait: Duration },
        Done,
    }
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    /// Granted at once (or, for a gate that never refuses, sent without a
    /// permit): the request was already handed to the service.
    pub(super) fn calling(fut: S::Future, permit: Option<Permit>) -> Self {
        ResponseFuture {
            state: State::Calling { fut },
            svc: None,
            req: None,
            permit,
            refusal: PhantomData,
        }
    }

    /// Held: `svc` is called once the gate releases the request.
    pub(super) fn waiting(wait: Waiting, svc: S, req: Request<B>) -> Self {
        ResponseFuture {
            state: State::Waiting { wait },
            svc: Some(svc),
            req: Some(req),
            permit: None,
            refusal: PhantomData,
        }
    }

    /// Refused at once: the answer is a local 429.
    pub(super) fn refused(wait: Duration) -> Self {
        ResponseFuture {
            state: State::Refused { wait },
            svc: None,
            req: None,
            permit: None,
            refusal: PhantomData,
        }
    }
}

impl<S, B, Rb, R> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<B>, Response = Response<Rb>>,
    R: Refusal<Rb>,
{
    type Output = Result<Response<Rb>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Waiting { wait } => match ready!(wait.poll(cx)) {
                    Ok(permit) => {
                        *this.permit = Some(permit);
                        this.state.set(State::Readying);
                    }
                    Err(wait) => {
                        this.state.set(State::Refused { wait });
                    }
                },
                StateProj::Readying => {
                    let (Some(svc), Some(_)) = (this.svc.as_mut(), this.req.as_ref()) else {
                        this.state.set(State::Done);
                        continue;
                    };
                    if let Err(e) = ready!(svc.poll_ready(cx)) {
                        // Never sent: the permit's drop gives the release back.
                        this.permit.take();
                        this.state.set(State::Done);
                        return Poll::Ready(Err(e));
                    }
                    let (Some(mut svc), Some(req)) = (this.svc.take(), this.req.take()) else {
                        continue;
                    };
                    let fut = svc.call(req);
                    if let Some(permit) = this.permit.as_mut() {
                        permit.mark_sent();
                    }
                    this.state.set(State::Calling { fut });
                }
                StateProj::Calling { fut } => {
                    let result = ready!(fut.poll(cx));
                    if let Some(permit) = this.permit.take() {
                        match &result {
                            Ok(res) => permit.finish_response(res.status(), res.headers()),
                            Err(_) => permit.finish(None),
                        }
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(result);
                }
                StateProj::Refused { wait } => {
                    let Some(res) = R::local_response(*wait) else {
                        // A gate that never refuses sends the request anyway
                        // (unreachable with `max_wait` at its maximum).
                        this.state.set(State::Readying);
                        continue;
                    };
                    this.svc.take();
                    this.req.take();
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(res));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<S, B, R> fmt::Debug for ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting { .. } => "Waiting",
            State::Readying => "Readying",
            State::Calling { .. } => "Calling",
            State::Refused { .. } => "Refused",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
