//! [`RateLimitAware`], the service the layer wraps around a client.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::permit::{acquire, fast, Acquire};
use super::refusal::{Refusal, WaitForPermit};
use super::request::RequestFns;
use super::table::Gate;
use super::{GateStats, RateLimitAwareLayer};
use crate::key::KeyCache;

/// Holds or paces requests to a rate-limited service; made by
/// [`RateLimitAwareLayer`].
///
/// Clones share the layer's state: a throttle seen through one holds the
/// requests of all.
///
/// # Readiness
///
/// `poll_ready` is the inner service's. A request the gate admits at once is
/// passed straight to the inner service that `poll_ready` made ready: no
/// clone, no second readiness check. A held request takes a clone of the
/// inner service and drives it to readiness only once released, so a long
/// hold never pins inner capacity such as a `ConcurrencyLimit` permit; the
/// readiness already reserved on the original stays for the next call.
///
/// `R` says what happens to a request that would wait longer than
/// `max_wait`: [`WaitForPermit`] (the default) or
/// [`Local429`](super::Local429).
pub struct RateLimitAware<S, R = WaitForPermit> {
    inner: S,
    /// The gate and how requests are read, behind one pointer: tower's
    /// retry clones the service for every request.
    shared: Arc<Shared>,
    /// The last default key computed: a run of requests to one host costs
    /// a comparison, not a hash.
    cache: KeyCache,
    refusal: PhantomData<fn() -> R>,
}

/// What every clone of a service shares. Aligned to a cache line, as
/// the gate is: tower's retry clones the service for each request.
#[repr(align(64))]
struct Shared {
    gate: Arc<Gate>,
    fns: RequestFns,
}

impl<S> RateLimitAware<S> {
    /// Wraps `inner` with a default [`RateLimitAwareLayer`] (its own state).
    pub fn new(inner: S) -> Self {
        RateLimitAwareLayer::new().wrap(inner)
    }

    /// A default [`RateLimitAwareLayer`].
    pub fn layer() -> RateLimitAwareLayer {
        RateLimitAwareLayer::new()
    }
}

impl<S, R> RateLimitAware<S, R> {
    pub(super) fn from_parts(inner: S, gate: Arc<Gate>, fns: RequestFns) -> Self {
        RateLimitAware {
            inner,
            shared: Arc::new(Shared { gate, fns }),
            cache: KeyCache::default(),
            refusal: PhantomData,
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

    /// A snapshot of the shared state; see [`GateStats`].
    pub fn stats(&self) -> GateStats {
        self.shared.gate.stats()
    }
}

impl<S: Clone, R> Clone for RateLimitAware<S, R> {
    fn clone(&self) -> Self {
        RateLimitAware {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            cache: self.cache,
            refusal: PhantomData,
        }
    }
}

impl<S: fmt::Debug, R> fmt::Debug for RateLimitAware<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitAware")
            .field("inner", &self.inner)
            .field("gate", &self.shared.gate)
            .field("key", &self.shared.fns.key)
            .finish()
    }
}

impl<S, B, Rb, R> Service<Request<B>> for RateLimitAware<S, R>
where
    S: Service<Request<B>, Response = Response<Rb>> + Clone,
    R: Refusal<Rb>,
{
    type Response = Response<Rb>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Shared { gate, fns } = &*self.shared;
        // The default key is read in place: the request is not moved around
        // on its way to the inner service.
        let key = match fns.key.key_in_place(&req, &gate.hasher, &mut self.cache) {
            Some(key) => key,
            None => {
                let (key, taken) = fns.key(req, &gate.hasher, &mut self.cache);
                req = taken;
                key
            }
        };
        // A key about which nothing is known: no lock, nothing to read.
        if let Some(permit) = fast(gate, key) {
            return ResponseFuture::fast(self.inner.call(req), permit);
        }
        let read = fns.read(req);
        let req = read.req;
        match acquire(gate, key, read.need, read.deadline) {
            Acquire::Go(mut permit) => {
                let fut = self.inner.call(req);
                permit.mark_sent();
                ResponseFuture::calling(fut, Some(permit))
            }
            Acquire::Wait(waiting, wait) => {
                tracing::debug!(
                    authority = ?req.uri().authority(),
                    ?wait,
                    "rate limit: request held"
                );
                ResponseFuture::waiting(waiting, self.inner.clone(), req)
            }
            // Unreachable without `max_wait`; never lose the request.
            Acquire::Refuse(_) if !R::REFUSES => {
                ResponseFuture::calling(self.inner.call(req), None)
            }
            Acquire::Refuse(wait) => {
                tracing::info!(
                    authority = ?req.uri().authority(),
                    ?wait,
                    max_wait = ?gate.config.max_wait,
                    "rate limit: wait exceeds max_wait, answering 429 locally"
                );
                ResponseFuture::refused(wait)
            }
        }
    }
}
