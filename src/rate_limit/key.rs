//! Which requests share a limit: the key a request is gated under.
//!
//! Keys are `u64` hashes so that the gate's map stores no strings and the
//! default key costs no allocation per request. Two names whose hashes
//! collide (chance about 2⁻⁶⁴ per pair) would share one state — harmless: they
//! would only be paced together.

use std::fmt;
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};
use std::sync::Arc;

use http::request::Parts;
use http::Request;
use tokio::time::Instant;

use super::model::Need;
use crate::headers::stable_hash;
use crate::{Deadline, RequestCost};

/// How a request's key is computed.
#[derive(Clone, Default)]
pub(crate) enum KeyFn {
    /// The request URI's authority, else the `Host` header, else `""`.
    #[default]
    Authority,
    /// A user function over the request head, hashed with the gate's hasher.
    Custom(Arc<CustomKey>),
}

type CustomKey = dyn Fn(&Parts, &KeyHasher) -> u64 + Send + Sync;
type CostFn = dyn Fn(&Parts) -> u64 + Send + Sync;
type ScopeFn = dyn Fn(&Parts) -> Option<u64> + Send + Sync;

/// How keys are hashed: seeded per process by default, so that collisions
/// cannot be planned; with a shared store, the same in every process
/// (FNV-1a), so that all processes name a key alike.
#[derive(Clone, Debug)]
pub(crate) enum KeyHasher {
    Seeded(RandomState),
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Fixed,
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::Seeded(RandomState::new())
    }
}

/// The hasher [`KeyHasher`] builds.
pub(crate) enum KeyHash {
    Seeded(DefaultHasher),
    Fnv(u64),
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl BuildHasher for KeyHasher {
    type Hasher = KeyHash;

    fn build_hasher(&self) -> KeyHash {
        match self {
            KeyHasher::Seeded(s) => KeyHash::Seeded(s.build_hasher()),
            KeyHasher::Fixed => KeyHash::Fnv(FNV_OFFSET),
        }
    }
}

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        match self {
            KeyHash::Seeded(h) => h.finish(),
            KeyHash::Fnv(h) => *h,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        match self {
            KeyHash::Seeded(h) => h.write(bytes),
            KeyHash::Fnv(h) => {
                for &b in bytes {
                    *h = (*h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                }
            }
        }
    }
}

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
    pub(crate) key: u64,
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

    /// Reads `req`. Without user functions nothing is moved or allocated.
    pub(crate) fn read<B>(&self, req: Request<B>, hasher: &KeyHasher) -> Read<B> {
        let ext = req.extensions();
        let deadline = ext.get::<Deadline>().map(|d| d.0);
        let given_cost = ext.get::<RequestCost>().map(|c| c.0);
        let route = if self.scope.is_none() {
            route_of(&req)
        } else {
            0
        };
        if self.cost.is_none() && self.scope.is_none() {
            let (key, req) = self.key.key(req, hasher);
            let need = Need {
                cost: given_cost.unwrap_or(0),
                resource: None,
                route,
            };
            return Read {
                key,
                need,
                deadline,
                req,
            };
        }
        let (parts, body) = req.into_parts();
        let key = self.key.key_parts(&parts, hasher);
        let cost = given_cost
            .or_else(|| self.cost.as_ref().map(|f| f(&parts)))
            .unwrap_or(0);
        let resource = self.scope.as_ref().and_then(|f| f(&parts));
        Read {
            key,
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

impl KeyFn {
    /// Wraps a user key function.
    pub(crate) fn custom<F, K>(f: F) -> Self
    where
        F: Fn(&Parts) -> K + Send + Sync + 'static,
        K: Hash,
    {
        KeyFn::Custom(Arc::new(move |parts, hasher| hasher.hash_one(f(parts))))
    }

    /// The key of `req`. The request is taken and given back because a custom
    /// function sees `Parts`, which only `into_parts` can lend (a move, no copy).
    pub(crate) fn key<B>(&self, req: Request<B>, hasher: &KeyHasher) -> (u64, Request<B>) {
        match self {
            KeyFn::Authority => (authority_key(&req, hasher), req),
            KeyFn::Custom(f) => {
                let (parts, body) = req.into_parts();
                let key = f(&parts, hasher);
                (key, Request::from_parts(parts, body))
            }
        }
    }

    /// The key of a request already taken apart.
    fn key_parts(&self, parts: &Parts, hasher: &KeyHasher) -> u64 {
        match self {
            KeyFn::Authority => {
                hasher.hash_one(CaseFolded(authority_of(&parts.uri, &parts.headers)))
            }
            KeyFn::Custom(f) => f(parts, hasher),
        }
    }
}

impl fmt::Debug for KeyFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFn::Authority => f.write_str("Authority"),
            KeyFn::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The default key: URI authority (absolute-form requests, as hyper's client
/// sends), else the `Host` header (origin-form, as axum or tonic requests
/// carry), else the empty name. Hosts are case-insensitive (RFC 3986 §3.2.2),
/// so ASCII case is folded while hashing.
fn authority_key<B>(req: &Request<B>, hasher: &KeyHasher) -> u64 {
    hasher.hash_one(CaseFolded(authority_of(req.uri(), req.headers())))
}

fn authority_of<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> &'a [u8] {
    match uri.authority() {
        Some(authority) => authority.as_str().as_bytes(),
        None => headers
            .get(http::header::HOST)
            .map(|v| v.as_bytes())
            .unwrap_or_default(),
    }
}

/// Bytes hashed as if ASCII-lowercased, without allocating a lowered copy.
struct CaseFolded<'a>(&'a [u8]);

impl Hash for CaseFolded<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(buf.len()) {
            let out = &mut buf[..chunk.len()];
            out.copy_from_slice(chunk);
            out.make_ascii_lowercase();
            state.write(out);
        }
        // Length suffix, as `str`'s Hash does, so "ab"+"c" ≠ "a"+"bc" in
        // composite keys.
        state.write_usize(self.0.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(req: Request<()>, key_fn: &KeyFn, hasher: &KeyHasher) -> u64 {
        key_fn.key(req, hasher).0
    }

    #[test]
    fn default_key_is_authority_then_host_then_empty() {
        let hasher = KeyHasher::default();
        let k = KeyFn::Authority;
        let abs = Request::get("https://API.example.com/v1/x")
            .body(())
            .unwrap();
        let host = Request::get("/v1/y")
            .header("host", "api.example.com")
            .body(())
            .unwrap();
        let other = Request::get("https://other.example.com/").body(()).unwrap();
        let none = Request::get("/").body(()).unwrap();
        let none2 = Request::get("/z").body(()).unwrap();
        assert_eq!(key_of(abs, &k, &hasher), key_of(host, &k, &hasher));
        assert_ne!(
            key_of(other, &k, &hasher),
            key_of(
                Request::get("https://api.example.com").body(()).unwrap(),
                &k,
                &hasher
            )
        );
        assert_eq!(key_of(none, &k, &hasher), key_of(none2, &k, &hasher));
    }

    #[test]
    fn custom_key_sees_the_request_head() {
        let hasher = KeyHasher::default();
        let k = KeyFn::custom(|parts: &Parts| parts.uri.path().to_owned());
        let a = Request::get("https://x/a").body(()).unwrap();
        let a2 = Request::get("https://y/a").body(()).unwrap();
        let b = Request::get("https://x/b").body(()).unwrap();
        assert_eq!(key_of(a, &k, &hasher), key_of(a2, &k, &hasher));
        assert_ne!(
            key_of(Request::get("https://x/a").body(()).unwrap(), &k, &hasher),
            key_of(b, &k, &hasher)
        );
    }

    #[test]
    fn the_fixed_hasher_names_a_key_alike_in_every_process() {
        // FNV-1a of "a": the same in every process and every run.
        let mut h = KeyHasher::Fixed.build_hasher();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let req = || Request::get("https://API.example.com/").body(()).unwrap();
        let a = key_of(req(), &KeyFn::Authority, &KeyHasher::Fixed);
        let b = key_of(req(), &KeyFn::Authority, &KeyHasher::Fixed);
        assert_eq!(a, b);
    }

    #[test]
    fn long_names_fold_case_across_chunks() {
        let hasher = RandomState::new();
        let long = "a".repeat(100);
        let h1 = hasher.hash_one(CaseFolded(long.as_bytes()));
        let h2 = hasher.hash_one(CaseFolded(long.to_ascii_uppercase().as_bytes()));
        assert_eq!(h1, h2);
    }
}
