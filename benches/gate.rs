//! Happy-path cost of `RateLimitAwareLayer`: a key with no limit known,
//! requests answered 200 at once, through the bare inner `service_fn` and
//! through the gate (slow start off, slow start on, two configured limits
//! — requests and tokens — far from binding, and with RateLimit headers on
//! every response, which the gate parses and tracks). Measured on
//! one task and on 8 concurrent tasks of a multi-thread runtime (all on one
//! key: the worst case for the shared lock). Also counts heap allocations
//! per request with a counting global allocator, and times the header
//! parser alone, which the gate runs on every response that has headers.
//!
//! Run: `cargo bench --bench gate`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Request, Response, Uri};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};
use tower_backoff::rate_limit::Limit;
use tower_backoff::RateLimitAwareLayer;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

const TASKS: u64 = 8;

/// An upstream answering 200 at once, with `headers` (cloned per response;
/// the service itself is cheap to clone, as real clients are).
fn upstream(
    headers: HeaderMap,
) -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<()>, Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    let headers = Arc::new(headers);
    tower::service_fn(move |_req: Request<()>| {
        let mut res = Response::new(());
        if !headers.is_empty() {
            *res.headers_mut() = HeaderMap::clone(&headers);
        }
        std::future::ready(Ok(res))
    })
}

fn ratelimit_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "ratelimit-policy",
        HeaderValue::from_static(r#""default";q=1000000000;w=1"#),
    );
    h.insert(
        "ratelimit",
        HeaderValue::from_static(r#""default";r=999999999;t=1"#),
    );
    h
}

/// `n` requests one after the other; returns the time they took.
async fn sequential<S>(mut svc: S, uri: Uri, n: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible>,
{
    let start = Instant::now();
    for _ in 0..n {
        let mut req = Request::new(());
        *req.uri_mut() = uri.clone();
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        std::hint::black_box(res);
    }
    start.elapsed()
}

/// `n` requests spread over [`TASKS`] concurrent tasks.
async fn concurrent<S>(svc: S, uri: Uri, n: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let start = Instant::now();
    let per_task = n.div_ceil(TASKS);
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| tokio::spawn(sequential(svc.clone(), uri.clone(), per_task)))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Per request, as criterion divides by `n`.
    start
        .elapsed()
        .mul_f64(n as f64 / (per_task * TASKS) as f64)
}

fn bench_variant<S>(c: &mut Criterion, name: &str, svc: S, single: &Runtime, multi: &Runtime)
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let uri: Uri = "https://api.example.com/v1/chat".parse().unwrap();
    let mut group = c.benchmark_group("gate");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function(format!("{name}/1 task"), |b| {
        b.iter_custom(|n| single.block_on(sequential(svc.clone(), uri.clone(), n)))
    });
    group.bench_function(format!("{name}/{TASKS} tasks"), |b| {
        b.iter_custom(|n| multi.block_on(concurrent(svc.clone(), uri.clone(), n)))
    });
    group.finish();

    const N: u64 = 10_000;
    let before = counting_alloc::allocations();
    single.block_on(sequential(svc, uri, N));
    let allocs = counting_alloc::allocations() - before;
    eprintln!(
        "{name}: {:.2} allocations per request",
        allocs as f64 / N as f64
    );
}

fn gate(c: &mut Criterion) {
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    bench_variant(c, "bare", upstream(HeaderMap::new()), &single, &multi);
    bench_variant(
        c,
        "gate, slow start off",
        RateLimitAwareLayer::new()
            .slow_start(false)
            .layer(upstream(HeaderMap::new())),
        &single,
        &multi,
    );
    bench_variant(
        c,
        "gate, slow start on",
        RateLimitAwareLayer::new().layer(upstream(HeaderMap::new())),
        &single,
        &multi,
    );
    bench_variant(
        c,
        "gate, two configured limits",
        RateLimitAwareLayer::new()
            .limit(Limit::requests(1_000_000_000, Duration::from_secs(1)))
            .limit(Limit::tokens(1_000_000_000_000, Duration::from_secs(1)))
            .layer(upstream(HeaderMap::new())),
        &single,
        &multi,
    );
    bench_variant(
        c,
        "bare, RateLimit headers",
        upstream(ratelimit_headers()),
        &single,
        &multi,
    );
    bench_variant(
        c,
        "gate, RateLimit headers",
        RateLimitAwareLayer::new().layer(upstream(ratelimit_headers())),
        &single,
        &multi,
    );
}

/// The share of the headers variant that is parsing (`headers::hints`, run
/// by the gate on every response), not gating.
fn parse(c: &mut Criterion) {
    let h = ratelimit_headers();
    c.benchmark_group("gate")
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .bench_function("headers::hints alone", |b| {
            b.iter(|| tower_backoff::headers::hints(std::hint::black_box(&h), SystemTime::now()))
        });
}

criterion_group!(benches, gate, parse);
criterion_main!(benches);
