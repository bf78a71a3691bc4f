//! Happy-path cost of `CircuitBreakerLayer`: a request answered 200 at once,
//! through no middleware and through a closed breaker (one key, every call
//! a success: one admission per request). Also the cost of an open
//! breaker's local answer, heap allocations per request with a counting
//! global allocator, and (for scale) the gate on the same harness.
//!
//! Run: `cargo bench --bench breaker`.

use std::convert::Infallible;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Response, StatusCode};
use tower::{Layer, Service};
use tower_backoff::circuit::{CallOutcome, CircuitState};
use tower_backoff::{CircuitBreakerLayer, RateLimitAwareLayer};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/happy_path.rs"]
mod happy_path;

use happy_path::{
    allocations_per_request, bench_call, call, criterion_config, request, sender, time_per_request,
    Ok200, Req,
};

/// Runs for the fastest-run figures.
const RUNS: usize = 200;

/// A breaker that counts every call as a failure, opened by one call: its
/// services answer every later request locally.
fn open_breaker() -> impl Service<Req, Response = Response<()>, Error = Infallible> {
    let layer = CircuitBreakerLayer::new()
        .minimum_throughput(1)
        .break_duration(Duration::from_secs(3_600))
        .classifier(|_: Result<&Response<()>, &std::convert::Infallible>| CallOutcome::Failure);
    let mut svc = layer.layer(Ok200);
    let _ = call(&mut svc, request());
    assert_eq!(layer.stats().count(CircuitState::Open), 1);
    svc
}

fn breaker(c: &mut Criterion) {
    let mut bare = Ok200;
    let layer = CircuitBreakerLayer::new();
    let mut closed = layer.layer(Ok200);
    let mut open = open_breaker();
    assert_eq!(
        call(&mut open, request()).unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    println!(
        "allocations per request: none {:.2}, breaker closed {:.2}, breaker open {:.2}",
        allocations_per_request(&mut bare),
        allocations_per_request(&mut closed),
        allocations_per_request(&mut open),
    );
    assert_eq!(layer.stats().count(CircuitState::Closed), 1);
    // For scale, the gate on the same harness (one key, no limit known).
    let (mut s_bare, mut s_closed, mut s_open, mut s_gate) = (
        sender(bare),
        sender(layer.layer(Ok200)),
        sender(open_breaker()),
        sender(RateLimitAwareLayer::new().slow_start(false).layer(Ok200)),
    );
    let ns = time_per_request(
        &mut [&mut s_bare, &mut s_closed, &mut s_open, &mut s_gate],
        RUNS,
    )
    .fastest;
    println!(
        "fastest of {RUNS} runs, ns per request: none {:.1}, breaker closed {:.1} (+{:.1} ns), \
         breaker open {:.1}, gate {:.1} (+{:.1} ns)",
        ns[0],
        ns[1],
        ns[1] - ns[0],
        ns[2],
        ns[3],
        ns[3] - ns[0]
    );

    let mut group = c.benchmark_group("breaker");
    bench_call(&mut group, "no_middleware", &mut bare);
    bench_call(&mut group, "closed", &mut closed);
    bench_call(&mut group, "open_local_503", &mut open);
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = breaker
}
criterion_main!(benches);
