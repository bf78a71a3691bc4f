//! What the happy-path benches share: an upstream that answers 200 at once,
//! a typical request, and a driver that calls a service without a runtime
//! (every future on the happy path completes on its first poll).
//!
//! The bench that includes it must also declare `mod counting_alloc`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::Service;

use super::counting_alloc;

/// The request type of the happy-path benches.
pub type Req = Request<Full<Bytes>>;

/// The upstream: answers 200 at once.
#[derive(Clone, Copy)]
pub struct Ok200;

impl Service<Req> for Ok200 {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Req) -> Self::Future {
        ready(Ok(Response::new(())))
    }
}

/// A small JSON POST-like request to an API, with an authorization header.
pub fn request() -> Req {
    Request::builder()
        .uri("http://api.example.com/v1/items")
        .header("authorization", "Bearer token")
        .body(Full::new(Bytes::from_static(b"{\"q\":1}")))
        .unwrap()
}

/// Drives a future that completes without waiting (all of these do).
pub fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("happy path must not wait"),
    }
}

/// One request through `svc`: readiness, then the call.
pub fn call<S: Service<Req>>(svc: &mut S, req: Req) -> Result<S::Response, S::Error> {
    run(std::future::poll_fn(|cx| svc.poll_ready(cx)))?;
    run(svc.call(req))
}

/// Nanoseconds per request through each of a set of services, run after
/// run (see [`time_per_request`]).
pub struct Timings {
    /// The fastest run of each service: on a busy machine, the figure least
    /// disturbed by other work.
    pub fastest: Vec<f64>,
    /// Each run's figures, one per service.
    runs: Vec<Vec<f64>>,
}

impl Timings {
    /// The median over runs of service `a`'s time ÷ service `b`'s in the
    /// same run: run next to each other, both see the same machine, so a
    /// slow spell of the machine cancels out of the ratio.
    pub fn median_ratio(&self, a: usize, b: usize) -> f64 {
        let mut ratios: Vec<f64> = self.runs.iter().map(|r| r[a] / r[b]).collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

/// Nanoseconds per request through each of `senders`: `runs` runs of 2,000
/// requests (built beforehand), the services taking turns run by run so
/// that all see the same machine. Each entry of `senders` sends one request
/// through its service (see [`sender`]).
pub fn time_per_request(senders: &mut [&mut dyn FnMut(Req)], runs: usize) -> Timings {
    const N: usize = 2_000;
    let mut t = Timings {
        fastest: vec![f64::INFINITY; senders.len()],
        runs: Vec::with_capacity(runs),
    };
    for _ in 0..runs {
        let mut run = Vec::with_capacity(senders.len());
        for (send, best) in senders.iter_mut().zip(&mut t.fastest) {
            let reqs: Vec<Req> = (0..N).map(|_| request()).collect();
            let start = std::time::Instant::now();
            for req in reqs {
                send(req);
            }
            let ns = start.elapsed().as_nanos() as f64 / N as f64;
            *best = best.min(ns);
            run.push(ns);
        }
        t.runs.push(run);
    }
    t
}

/// A closure sending one request through `svc`, for
/// [`time_per_request`].
pub fn sender<S: Service<Req>>(mut svc: S) -> impl FnMut(Req) {
    move |req| {
        let _ = std::hint::black_box(call(&mut svc, req));
    }
}

/// The happy-path benches' criterion settings: 3 s of measurement after
/// 0.5 s of warm-up per benchmark.
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_millis(500))
}

/// Adds a criterion benchmark `name` to `group`: one request (built
/// outside the timing) through `svc`.
pub fn bench_call<S: Service<Req>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    svc: &mut S,
) {
    group.bench_function(name, |b| {
        b.iter_batched(request, |r| call(svc, r), criterion::BatchSize::SmallInput)
    });
}

/// Heap allocations per request through `svc` (requests built beforehand).
pub fn allocations_per_request<S: Service<Req>>(svc: &mut S) -> f64 {
    const N: u64 = 10_000;
    let reqs: Vec<Req> = (0..N).map(|_| request()).collect();
    let before = counting_alloc::allocations();
    for req in reqs {
        let _ = call(svc, req);
    }
    (counting_alloc::allocations() - before) as f64 / N as f64
}
