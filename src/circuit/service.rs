//! [`CircuitBreaker`], the service the layer wraps around a client.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tower_service::Service;

use super::breaker::{Admission, Breaker};
use super::cell::Cell;
use super::events::BreakerStats;
use super::future::ResponseFuture;
use super::open::{Local503, OpenAnswer};
use super::outcome::{ClassifyCall, ServerErrors};
use crate::key::{KeyCache, KeyFn};

/// Stops calling a service that is failing; made by
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// Clones share the layer's state: failures seen through one open the
/// breaker for all.
///
/// `poll_ready` is the inner service's. A request refused by an open
/// breaker never reaches the inner service; the readiness `poll_ready`
/// reserved stays for the next call.
///
/// `C` classifies calls ([`ServerErrors`] by default); `O` answers refused
/// requests ([`Local503`] by default, or [`OpenError`](super::OpenError)).
pub struct CircuitBreaker<S, C = ServerErrors, O = Local503> {
    inner: S,
    breaker: Arc<Breaker<C>>,
    key: KeyFn,
    cache: KeyCache,
    /// The cell of the last key called: a run of calls to one key never
    /// looks it up in the shared map.
    cell: Option<Arc<Cell<C>>>,
    open: PhantomData<fn() -> O>,
}

impl<S, C, O> CircuitBreaker<S, C, O> {
    pub(super) fn from_parts(inner: S, breaker: Arc<Breaker<C>>, key: KeyFn) -> Self {
        CircuitBreaker {
            inner,
            breaker,
            key,
            cache: KeyCache::default(),
            cell: None,
            open: PhantomData,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// A snapshot of the shared state; see [`BreakerStats`].
    pub fn stats(&self) -> BreakerStats {
        self.breaker.stats()
    }
}

impl<S: Clone, C, O> Clone for CircuitBreaker<S, C, O> {
    fn clone(&self) -> Self {
        CircuitBreaker {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            key: self.key.clone(),
            cache: self.cache,
            cell: self.cell.clone(),
            open: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C, O> fmt::Debug for CircuitBreaker<S, C, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field("key", &self.key)
            .finish()
    }
}

impl<S, B, C, O> Service<Request<B>> for CircuitBreaker<S, C, O>
where
    S: Service<Request<B>>,
    C: ClassifyCall<S::Response, S::Error>,
    O: OpenAnswer<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C, O>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (key, req) = self
            .key
            .key_cached(req, &self.breaker.hasher, &mut self.cache);
        let cell = match &self.cell {
            Some(cell) if cell.key == key && cell.is_live() => cell,
            _ => self.cell.insert(self.breaker.cell(key)),
        };
        match self.breaker.admit(cell) {
            Admission::Go(call) => ResponseFuture::calling(self.inner.call(req), call),
            Admission::Reject(open) => {
                tracing::debug!(
                    authority = ?req.uri().authority(),
                    retry_after = ?open.retry_after,
                    "circuit breaker: open, answering locally"
                );
                ResponseFuture::open(open)
            }
        }
    }
}
