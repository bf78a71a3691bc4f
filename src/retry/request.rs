//! What the retry policy needs from a request: a way to replay it, whether it
//! is safe to send twice, and where to write the attempt number.

use bytes::Bytes;
use http::{Extensions, Method, Request};
use http_body_util::{Empty, Full};

/// The 1-based number of the attempt a request belongs to, in its extensions.
///
/// [`BackoffRetryLayer`](crate::BackoffRetryLayer) inserts it into every
/// retry (attempt 2 and on). tower's retry sends the caller's own request as
/// the first attempt, which the policy cannot touch, so attempt 1 carries no
/// extension: read it with [`Attempt::of`], which answers 1 then.
///
/// ```
/// use tower_backoff::Attempt;
/// let mut req = http::Request::new(());
/// assert_eq!(Attempt::of(req.extensions()), 1);
/// req.extensions_mut().insert(Attempt(3));
/// assert_eq!(Attempt::of(req.extensions()), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(pub u32);

impl Attempt {
    /// The attempt number recorded in `extensions`, or 1 when there is none.
    pub fn of(extensions: &Extensions) -> u32 {
        extensions.get::<Attempt>().map_or(1, |a| a.0)
    }
}

/// Which requests may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Idempotency {
    /// RFC 9110 §9.2.2: GET, HEAD, OPTIONS, PUT, DELETE and TRACE are
    /// idempotent, and so is any request carrying an `Idempotency-Key`
    /// header. Others (POST, PATCH, …) are retried only when the failure
    /// proves the server did not process them. The default.
    #[default]
    Auto,
    /// Treat every request as idempotent: retry by classification alone.
    AllIdempotent,
    /// Treat no request as idempotent: retry only failures that prove the
    /// server did not process the request (429, 503 with Retry-After, a
    /// refused connection).
    NoneIdempotent,
}

/// A request the retry policy can handle: it can be replayed (or says it
/// cannot), and it knows whether it is idempotent.
///
/// Implemented for `http::Request<B>` with any [`ReplayBody`]. Implement it
/// for your own request type to use the layer outside HTTP (with a custom
/// classifier, see [`BackoffRetryLayer::classify`](crate::BackoffRetryLayer::classify)).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be retried by BackoffRetryLayer",
    note = "for `http::Request<B>` the body type `B` must implement `tower_backoff::ReplayBody`; wrap streaming bodies with `BackoffRetryLayer::buffered(max_bytes)` or `BufferBodyLayer`",
    note = "for other request types implement `tower_backoff::RetryRequest`"
)]
pub trait RetryRequest: Sized {
    /// A copy to send as the next attempt, or `None` if this request cannot
    /// be replayed (then it is sent once and never retried).
    fn try_clone(&self) -> Option<Self>;

    /// Whether sending the request twice has the same effect as once.
    /// Default: `true`.
    fn is_idempotent(&self) -> bool {
        true
    }

    /// Record the attempt number (1-based) on the request. Default: nothing.
    fn set_attempt(&mut self, attempt: u32) {
        let _ = attempt;
    }

    /// Record when the request must be done (the retry layer's
    /// `max_elapsed`), so that layers inside it wait no longer. Default:
    /// nothing. For `http::Request`: the [`Deadline`](crate::Deadline)
    /// extension, unless it already holds an earlier one.
    fn set_deadline(&mut self, deadline: tokio::time::Instant) {
        let _ = deadline;
    }
}

/// A request body that may be copied for a replay.
///
/// Implemented for in-memory bodies (`Full`, `Empty`, `String`, `Vec<u8>`,
/// `Bytes`, `&'static str`, `()`) and for [`BufferedBody`](crate::body::BufferedBody).
/// Streaming bodies cannot be replayed: buffer them first
/// ([`BufferBodyLayer`](crate::BufferBodyLayer)).
///
/// ```
/// use tower_backoff::ReplayBody;
///
/// /// A body that is a handle to shared, immutable bytes.
/// #[derive(Clone)]
/// struct Shared(std::sync::Arc<[u8]>);
///
/// impl ReplayBody for Shared {
///     fn try_clone_body(&self) -> Option<Self> {
///         Some(self.clone())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "the request body `{Self}` cannot be replayed by BackoffRetryLayer",
    note = "buffer it with `BackoffRetryLayer::buffered(max_bytes)` or `BufferBodyLayer`, or implement `tower_backoff::ReplayBody` for it"
)]
pub trait ReplayBody: Sized {
    /// A copy of the body, or `None` when it cannot be replayed.
    fn try_clone_body(&self) -> Option<Self>;

    /// A copy of a whole request with this body, or `None` when the body
    /// cannot be replayed. The default copies the head around
    /// [`try_clone_body`](Self::try_clone_body); the crate's bodies that are
    /// `Clone` copy the request in one go, which is cheaper. There is no
    /// need to implement it.
    #[doc(hidden)]
    fn try_clone_request(req: &Request<Self>) -> Option<Request<Self>> {
        let body = req.body().try_clone_body()?;
        let mut copy = Request::new(body);
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

macro_rules! replay_by_clone {
    ($($ty:ty),* $(,)?) => {
        $(impl ReplayBody for $ty {
            fn try_clone_body(&self) -> Option<Self> {
                Some(self.clone())
            }

            #[inline]
            fn try_clone_request(req: &Request<Self>) -> Option<Request<Self>> {
                Some(req.clone())
            }
        })*
    };
}

replay_by_clone!((), String, Vec<u8>, Bytes, &'static str, Empty<Bytes>);

impl<D: Clone> ReplayBody for Full<D> {
    fn try_clone_body(&self) -> Option<Self> {
        Some(self.clone())
    }

    #[inline]
    fn try_clone_request(req: &Request<Self>) -> Option<Request<Self>> {
        Some(req.clone())
    }
}

impl<B: ReplayBody> RetryRequest for Request<B> {
    #[inline]
    fn try_clone(&self) -> Option<Self> {
        B::try_clone_request(self)
    }

    fn is_idempotent(&self) -> bool {
        is_idempotent_request(self.method(), self.headers())
    }

    fn set_attempt(&mut self, attempt: u32) {
        self.extensions_mut().insert(Attempt(attempt));
    }

    fn set_deadline(&mut self, deadline: tokio::time::Instant) {
        let earlier = self
            .extensions()
            .get::<crate::Deadline>()
            .is_some_and(|d| d.0 <= deadline);
        if !earlier {
            self.extensions_mut().insert(crate::Deadline(deadline));
        }
    }
}

/// RFC 9110 §9.2.2 idempotent methods, or any request with an `Idempotency-Key`
/// (shared by every request type the crate knows, so the rule lives once).
pub(crate) fn is_idempotent_request(method: &Method, headers: &http::HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    ) || headers.contains_key("idempotency-key")
}
