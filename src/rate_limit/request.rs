//! What the gate reads off a request besides its key: what it needs (token
//! cost, resource, route) and its deadline.

use std::sync::Arc;

use http::request::Parts;
use http::Request;
use tokio::time::Instant;

use super::model::Need;
use crate::headers::stable_hash;
use crate::key::{KeyCache, KeyFn, KeyHasher};
use crate::{Deadline, RequestCost};

type CostFn = dyn Fn(&Parts) -> u64 + Send + Sync;
type ScopeFn = dyn Fn(&Parts) -> Option<u64> + Send + Sync;

/// Everything the gate reads off a request: its key, what it needs (cost,
/// resource, route) and its deadline.
#[derive(Clone, Default)]
pub(crate) struct RequestFns {
    pub(crate) key: KeyFn,
    pub(crate) cost: Option<Arc<CostFn>>,
    pub(crate) scope: Option<Arc<ScopeFn>>,
}

/// What [`RequestFns::read`] found.
pub(crate) struct Read<B> {
    pub(crate) need: Need,
    pub(crate) deadline: Option<Instant>,
    pub(crate) req: Request<B>,
}

impl RequestFns {
    /// Wraps a user cost function.
    pub(crate) fn set_cost<F>(&mut self, f: F)
    where
        F: Fn(&Parts) -> u64 + Send + Sync + 'static,
    {
        self.cost = Some(Arc::new(f));
    }

    /// Wraps a user scope function: its names are matched, ASCII case
    /// folded, against the resources servers name.
    pub(crate) fn set_scope<F, S>(&mut self, f: F)
    where
        F: Fn(&Parts) -> Option<S> + Send + Sync + 'static,
        S: AsRef<str>,
    {
        self.scope = Some(Arc::new(move |parts| {
            f(parts).map(|s| stable_hash(&[s.as_ref().as_bytes()]))
        }));
    }

    /// The key of `req` (the default one remembered in `cache`). The
    /// request is taken and given back: a custom key function sees `Parts`.
    pub(crate) fn key<B>(
        &self,
        req: Request<B>,
        hasher: &KeyHasher,
        cache: &mut KeyCache,
    ) -> (u64, Request<B>) {
        self.key.key_cached(req, hasher, cache)
    }

    /// Reads what `req` needs and its deadline (its key is read by
    /// [`RequestFns::key`]). Without user functions nothing is moved or
    /// allocated.
    pub(crate) fn read<B>(&self, req: Request<B>) -> Read<B> {
        let ext = req.extensions();
        let deadline = ext.get::<Deadline>().map(|d| d.0);
        let given_cost = ext.get::<RequestCost>().map(|c| c.0);
        let route = if self.scope.is_none() {
            route_of(&req)
        } else {
            0
        };
        if self.cost.is_none() && self.scope.is_none() {
            let need = Need {
                cost: given_cost.unwrap_or(0),
                resource: None,
                route,
            };
            return Read {
                need,
                deadline,
                req,
            };
        }
        let (parts, body) = req.into_parts();
        let cost = given_cost
            .or_else(|| self.cost.as_ref().map(|f| f(&parts)))
            .unwrap_or(0);
        let resource = self.scope.as_ref().and_then(|f| f(&parts));
        Read {
            need: Need {
                cost,
                resource,
                route,
            },
            deadline,
            req: Request::from_parts(parts, body),
        }
    }
}

/// Method and first path segment, hashed (never 0, which means "none"):
/// `GET /search/code` and `GET /search/issues` share a route.
fn route_of<B>(req: &Request<B>) -> u64 {
    let path = req.uri().path().trim_start_matches('/');
    let first = path.split('/').next().unwrap_or_default();
    stable_hash(&[req.method().as_str().as_bytes(), first.as_bytes()]).max(1)
}
