//! Happy-path cost of the layers: a request answered 200 at once, through no
//! middleware, through bare `tower::retry::Retry` with a trivial cloning
//! policy (and, for reference, with one that holds an `Arc`, as any
//! configured policy does), and through `BackoffRetryLayer`. Also counts heap allocations per
//! request with a counting global allocator. `RateLimitAwareLayer` alone and
//! under the retry layer are measured the same way (one key, no limit known).
//!
//! Run: `cargo bench --bench layers`.

use std::convert::Infallible;
use std::future::Ready;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::Response;
use tower::retry::{Policy, Retry};
use tower::Layer;
use tower::ServiceBuilder;
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/happy_path.rs"]
mod happy_path;

use happy_path::{
    allocations_per_request, bench_call, criterion_config, sender, time_per_request, Ok200, Req,
};

/// Runs for the fastest-run and side-by-side figures.
const RUNS: usize = 200;

/// What a user writes for tower's retry today: clone the request, never
/// retry. `CloneOnly(())` holds nothing; `CloneOnly(Arc<_>)` holds its
/// settings behind an `Arc`, as any configured policy does (tower clones
/// the policy for every request): the reference point for what a shared
/// configuration costs on its own.
#[derive(Clone, Copy)]
struct CloneOnly<T>(#[allow(dead_code)] T);

impl<T: Clone> Policy<Req, Response<()>, Infallible> for CloneOnly<T> {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _: &mut Req,
        _: &mut Result<Response<()>, Infallible>,
    ) -> Option<Ready<()>> {
        None
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

fn backoff_layer() -> BackoffRetryLayer {
    BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
}

fn happy_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("happy_path");
    let mut bare = Ok200;
    let mut tower_retry = Retry::new(CloneOnly(()), Ok200);
    let mut backoff = backoff_layer().layer(Ok200);
    let mut gate = RateLimitAwareLayer::new().layer(Ok200);
    let mut both = ServiceBuilder::new()
        .layer(backoff_layer())
        .layer(RateLimitAwareLayer::new())
        .service(Ok200);

    println!(
        "allocations per request: none {:.2}, tower Retry {:.2}, BackoffRetryLayer {:.2}, RateLimitAwareLayer {:.2}, both {:.2}",
        allocations_per_request(&mut bare),
        allocations_per_request(&mut tower_retry),
        allocations_per_request(&mut backoff),
        allocations_per_request(&mut gate),
        allocations_per_request(&mut both),
    );

    // Many interleaved runs: the fastest of each, and the median ratio of
    // runs side by side (the figure least moved by a busy machine).
    let t = time_per_request(
        &mut [
            &mut sender(Ok200),
            &mut sender(Retry::new(CloneOnly(()), Ok200)),
            &mut sender(backoff_layer().layer(Ok200)),
            &mut sender(Retry::new(CloneOnly(std::sync::Arc::new(1u64)), Ok200)),
            &mut sender(RateLimitAwareLayer::new().layer(Ok200)),
            &mut sender(
                ServiceBuilder::new()
                    .layer(backoff_layer())
                    .layer(RateLimitAwareLayer::new())
                    .service(Ok200),
            ),
        ],
        RUNS,
    );
    let ns = &t.fastest;
    println!(
        "fastest of {RUNS} runs, ns per request: none {:.0}, tower Retry {:.0}, BackoffRetryLayer {:.0} \
         ({:.2}× Retry), tower Retry with an Arc in its policy {:.0} ({:.2}× Retry), \
         RateLimitAwareLayer {:.0} (+{:.0} ns), both {:.0} ({:.2}× Retry)",
        ns[0],
        ns[1],
        ns[2],
        ns[2] / ns[1],
        ns[3],
        ns[3] / ns[1],
        ns[4],
        ns[4] - ns[0],
        ns[5],
        ns[5] / ns[1]
    );
    println!(
        "median of {RUNS} side-by-side ratios: BackoffRetryLayer {:.3}× Retry, \
         tower Retry with an Arc in its policy {:.3}× Retry, both {:.3}× Retry, \
         RateLimitAwareLayer {:.3}× none",
        t.median_ratio(2, 1),
        t.median_ratio(3, 1),
        t.median_ratio(5, 1),
        t.median_ratio(4, 0),
    );

    bench_call(&mut group, "no_middleware", &mut bare);
    bench_call(&mut group, "tower_retry_clone_only", &mut tower_retry);
    bench_call(&mut group, "backoff_retry_layer", &mut backoff);
    bench_call(&mut group, "rate_limit_aware_layer", &mut gate);
    bench_call(&mut group, "backoff_and_rate_limit_aware", &mut both);
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = happy_path
}
criterion_main!(benches);
