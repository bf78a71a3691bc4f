//! Which requests share a state: the key a request is gated (rate limit) or
//! counted (circuit breaker) under. Shared by both layers.
//!
//! Keys are `u64` hashes so that the layers' maps store no strings and the
//! default key costs no allocation per request. Two names whose hashes
//! collide (chance about 2⁻⁶⁴ per pair) would share one state — harmless: they
//! would only be paced, or broken, together.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash, Hasher, RandomState};
use std::sync::Arc;

use http::request::Parts;
use http::Request;

/// How a request's key is computed.
#[derive(Clone, Default)]
pub(crate) enum KeyFn {
    /// The request URI's authority, else the `Host` header, else `""`.
    #[default]
    Authority,
    /// A user function over the request head, hashed with the layer's hasher.
    Custom(Arc<CustomKey>),
}

type CustomKey = dyn Fn(&Parts, &KeyHasher) -> u64 + Send + Sync;

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

impl KeyFn {
    /// Wraps a user key function.
    pub(crate) fn custom<F, K>(f: F) -> Self
    where
        F: Fn(&Parts) -> K + Send + Sync + 'static,
        K: Hash,
    {
        KeyFn::Custom(Arc::new(move |parts, hasher| hasher.hash_one(f(parts))))
    }

    /// [`KeyFn::key`], with the default key remembered in `cache` between
    /// calls.
    #[inline]
    pub(crate) fn key_cached<B>(
        &self,
        req: Request<B>,
        hasher: &KeyHasher,
        cache: &mut KeyCache,
    ) -> (u64, Request<B>) {
        match self {
            KeyFn::Authority => (cache.authority_key(&req, hasher), req),
            KeyFn::Custom(_) => self.key(req, hasher),
        }
    }

    /// The default key of `req` (remembered in `cache`), read in place;
    /// `None` for a custom key function, which needs the request's `Parts`
    /// ([`KeyFn::key`]).
    #[inline]
    pub(crate) fn key_in_place<B>(
        &self,
        req: &Request<B>,
        hasher: &KeyHasher,
        cache: &mut KeyCache,
    ) -> Option<u64> {
        match self {
            KeyFn::Authority => Some(cache.authority_key(req, hasher)),
            KeyFn::Custom(_) => None,
        }
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
}

/// A map from keys to per-key state. Keys are already uniform hashes, so
/// the map does not hash them again.
pub(crate) type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

/// Passes a `u64` key through as its own hash.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
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

#[inline]
fn authority_of<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> &'a [u8] {
    match uri.authority() {
        Some(authority) => authority.as_str().as_bytes(),
        None => headers
            .get(http::header::HOST)
            .map(|v| v.as_bytes())
            .unwrap_or_default(),
    }
}

/// Longest authority [`KeyCache`] remembers.
const CACHED_NAME: usize = 62;

/// The last default key a service computed, so that a run of requests to
/// one host (the common case) costs a short comparison instead of a keyed
/// hash each. Held by each service (no sharing, no lock); valid for the one
/// hasher that service uses.
#[derive(Clone, Copy)]
pub(crate) struct KeyCache {
    name: [u8; CACHED_NAME],
    /// `None` until a key is remembered.
    len: Option<u8>,
    hash: u64,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            name: [0; CACHED_NAME],
            len: None,
            hash: 0,
        }
    }
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

impl KeyCache {
    /// [`authority_key`], from the cache when the name is byte for byte the
    /// last one seen (a plain comparison: a name in other case is hashed
    /// again, to the same key).
    #[inline]
    fn authority_key<B>(&mut self, req: &Request<B>, hasher: &KeyHasher) -> u64 {
        let name = authority_of(req.uri(), req.headers());
        if self.len.map(usize::from) == Some(name.len())
            && self.name.get(..name.len()) == Some(name)
        {
            return self.hash;
        }
        let hash = hasher.hash_one(CaseFolded(name));
        if let Ok(len) = u8::try_from(name.len()) {
            if let Some(slot) = self.name.get_mut(..name.len()) {
                slot.copy_from_slice(name);
                self.len = Some(len);
                self.hash = hash;
            }
        }
        hash
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
    fn the_cache_gives_the_hash_the_key_would() {
        let hasher = KeyHasher::default();
        let mut cache = KeyCache::default();
        let long = format!("https://{}.example.com/", "x".repeat(80));
        for uri in [
            "https://API.example.com/a",
            "https://api.example.com/b",
            "https://other.example.com/",
            long.as_str(),
            long.as_str(),
            "/no-authority",
            "https://api.example.com/c",
        ] {
            let req = || Request::get(uri).body(()).unwrap();
            let (cached, _) = KeyFn::Authority.key_cached(req(), &hasher, &mut cache);
            assert_eq!(cached, key_of(req(), &KeyFn::Authority, &hasher), "{uri}");
        }
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
