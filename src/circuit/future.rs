//! The response future of [`CircuitBreaker`](super::CircuitBreaker): the
//! inner call, counted when it ends, or the open breaker's local answer.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::breaker::Call;
use super::open::{CircuitOpen, OpenAnswer};
use super::outcome::ClassifyCall;

pin_project! {
    /// Response future of [`CircuitBreaker`](super::CircuitBreaker).
    ///
    /// Dropping it while the inner call is in flight counts the call as
    /// nothing and frees its place (a half-open probe's included).
    pub struct ResponseFuture<F, C, O> {
        #[pin]
        kind: Kind<F>,
        call: Option<Call<C>>,
        open: PhantomData<fn() -> O>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Calling { #[pin] fut: F },
        Open { open: CircuitOpen },
    }
}

impl<F, C, O> ResponseFuture<F, C, O> {
    /// Admitted: `fut` is the inner service's call.
    pub(super) fn calling(fut: F, call: Call<C>) -> Self {
        ResponseFuture {
            kind: Kind::Calling { fut },
            call: Some(call),
            open: PhantomData,
        }
    }

    /// Refused: the answer is local.
    pub(super) fn open(open: CircuitOpen) -> Self {
        ResponseFuture {
            kind: Kind::Open { open },
            call: None,
            open: PhantomData,
        }
    }
}

impl<F, C, O, Res, E> Future for ResponseFuture<F, C, O>
where
    F: Future<Output = Result<Res, E>>,
    C: ClassifyCall<Res, E>,
    O: OpenAnswer<Res, E>,
{
    type Output = Result<Res, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Calling { fut } => {
                let result = ready!(fut.poll(cx));
                if let Some(call) = this.call.take() {
                    call.finish(result.as_ref());
                }
                Poll::Ready(result)
            }
            KindProj::Open { open } => Poll::Ready(O::answer(*open)),
        }
    }
}

impl<F, C, O> fmt::Debug for ResponseFuture<F, C, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Calling { .. } => "Calling",
            Kind::Open { .. } => "Open",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
