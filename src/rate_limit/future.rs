//! The response future of [`RateLimitAware`](super::RateLimitAware):
//! wait for a permit → drive the inner service → learn from its response.
//!
//! A request admitted at once is the common case, so the future holds only
//! the inner future and its permit; what a held request needs until it is
//! released (the waiting place, a clone of the service, the request) is
//! boxed, so that the happy path moves a small future around.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::permit::{FastPermit, Permit, Waiting};
use super::refusal::Refusal;
use super::GateRetryAfter;

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
        state: State<S, B, S::Future>,
        refusal: PhantomData<fn() -> R>,
    }
}

/// A request not sent yet: its place in line (then its permit), the service
/// to call once released, and the request.
struct Held<S, B> {
    wait: Option<Waiting>,
    permit: Option<Permit>,
    svc: S,
    req: Request<B>,
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateProjReplace]
    enum State<S, B, F> {
        Held { held: Box<Held<S, B>> },
        Fast { #[pin] fut: F, permit: Option<FastPermit> },
        Calling { #[pin] fut: F, permit: Option<Permit> },
        Refused { wait: Duration, held: Option<Box<Held<S, B>>> },
        Done,
    }
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    /// Granted at once (or, for a gate that never refuses, sent without a
    /// permit): the request was already handed to the service.
    #[inline]
    pub(super) fn calling(fut: S::Future, permit: Option<Permit>) -> Self {
        Self::with(State::Calling { fut, permit })
    }

    /// Released through an open lane: the request was already handed to
    /// the service.
    #[inline]
    pub(super) fn fast(fut: S::Future, permit: FastPermit) -> Self {
        Self::with(State::Fast {
            fut,
            permit: Some(permit),
        })
    }

    /// Held: `svc` is called once the gate releases the request.
    pub(super) fn waiting(wait: Waiting, svc: S, req: Request<B>) -> Self {
        let held = Box::new(Held {
            wait: Some(wait),
            permit: None,
            svc,
            req,
        });
        Self::with(State::Held { held })
    }

    /// Refused at once: the answer is a local 429.
    pub(super) fn refused(wait: Duration) -> Self {
        Self::with(State::Refused { wait, held: None })
    }

    #[inline]
    fn with(state: State<S, B, S::Future>) -> Self {
        ResponseFuture {
            state,
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
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Fast { fut, permit } => {
                    let mut result = ready!(fut.poll(cx));
                    if let (Ok(res), Some(permit)) = (&mut result, permit.take()) {
                        if let Some(wait) = permit.finish_response(res.status(), res.headers()) {
                            vouch(res, wait);
                        }
                    }
                    // An error teaches a lane nothing: nothing was taken.
                    state.set(State::Done);
                    return Poll::Ready(result);
                }
                StateProj::Calling { fut, permit } => {
                    let mut result = ready!(fut.poll(cx));
                    if let Some(permit) = permit.take() {
                        match &mut result {
                            Ok(res) => {
                                if let Some(wait) =
                                    permit.finish_response(res.status(), res.headers())
                                {
                                    vouch(res, wait);
                                }
                            }
                            Err(_) => {
                                permit.finish(None);
                            }
                        }
                    }
                    state.set(State::Done);
                    return Poll::Ready(result);
                }
                StateProj::Held { held } => {
                    if let Some(wait) = held.wait.as_mut() {
                        match ready!(wait.poll(cx)) {
                            Ok(permit) => {
                                held.wait = None;
                                held.permit = Some(permit);
                            }
                            Err(wait) => {
                                held.wait = None;
                                let held = take_held(&mut state);
                                state.set(State::Refused { wait, held });
                                continue;
                            }
                        }
                    }
                    if let Err(e) = ready!(held.svc.poll_ready(cx)) {
                        // Never sent: the permit's drop gives the release back.
                        state.set(State::Done);
                        return Poll::Ready(Err(e));
                    }
                    let Some(held) = take_held(&mut state) else {
                        continue;
                    };
                    let Held {
                        mut svc,
                        req,
                        mut permit,
                        ..
                    } = *held;
                    let fut = svc.call(req);
                    if let Some(permit) = permit.as_mut() {
                        permit.mark_sent();
                    }
                    state.set(State::Calling { fut, permit });
                }
                StateProj::Refused { wait, held } => {
                    let Some(res) = R::local_response(*wait) else {
                        // A gate that never refuses sends the request anyway
                        // (unreachable with `max_wait` at its maximum).
                        match held.take() {
                            Some(held) => state.set(State::Held { held }),
                            None => state.set(State::Done),
                        }
                        continue;
                    };
                    state.set(State::Done);
                    return Poll::Ready(Ok(res));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// A throttle whose hint the gate reads as an upper bound: the response
/// says when the gate expects a retry could go.
#[cold]
fn vouch<Rb>(res: &mut Response<Rb>, wait: Duration) {
    res.extensions_mut()
        .insert(GateRetryAfter { retry_after: wait });
}

/// Takes the held request out of `state` (leaving it `Done`).
fn take_held<S, B, F>(state: &mut Pin<&mut State<S, B, F>>) -> Option<Box<Held<S, B>>> {
    match state.as_mut().project_replace(State::Done) {
        StateProjReplace::Held { held } => Some(held),
        _ => None,
    }
}

impl<S, B, R> fmt::Debug for ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Held { held } if held.wait.is_some() => "Waiting",
            State::Held { .. } => "Readying",
            State::Fast { .. } | State::Calling { .. } => "Calling",
            State::Refused { .. } => "Refused",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
