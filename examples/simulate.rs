//! # Simulation: the showdown at seed 001's scale, on virtual time
//!
//! ```text
//! cargo run --release --example simulate
//! cargo run --release --example simulate -- --mode retry-after --requests 2000
//! ```
//!
//! The same contenders as `examples/showdown.rs` (no retry; seed 001's four
//! strategies; tower's `ExponentialBackoff` with a `TpsBudget`; the crate's
//! layers) send 10,000 requests to the same token-bucket server logic — here a
//! `tower::service_fn` called directly, with no sockets — on tokio's paused
//! clock. Minutes of backoff take milliseconds of real time, and a run is
//! reproducible from its `--seed`.
//!
//! It prints the showdown's table (success %, calls the server saw, wasted
//! calls = answered 429/5xx ÷ calls, mean / P50 / P99 latency, makespan and
//! makespan ÷ ideal, where ideal = requests ÷ rate) and, after it, the table
//! seed 001 published. Seed 001's figures were measured against a real AI API
//! (its limit: "the first 100 requests of each minute get 429") and its
//! "wasted" column counts tokens, not calls, so the two tables tell the same
//! story in different units rather than line up number for number.
//!
//! Flags (`--help` prints them with their defaults):
//!
//! * `--requests N`, `--concurrency N` — batch size and width (10,000 and 50);
//! * `--rate R`, `--burst B` — the server's token bucket;
//! * `--mode retry-after|ratelimit|none` — how 429s are announced;
//! * `--seed S` — seed for every random draw;
//! * `--svg PATH` — the chart (default `target/simulate.svg`);
//! * `--only IDS` — comma-separated contender ids;
//! * `--quick` — a tiny run.

mod common;

use std::convert::Infallible;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use common::cli::{self, Defaults, Shape};
use common::contenders::Transport;
use common::limiter::Limiter;
use common::Target;
use http::Uri;
use tower::util::BoxCloneService;
use tower::ServiceExt;

const DEFAULTS: Defaults = Defaults {
    program: "simulate",
    full: Shape {
        requests: 10_000,
        concurrency: 50,
        rate: 300.0,
        burst: 300,
    },
    quick: Shape {
        requests: 100,
        concurrency: 20,
        rate: 100.0,
        burst: 50,
    },
    svg: "target/simulate.svg",
};

/// Seed 001's published benchmark: strategy, success, mean latency,
/// wasted tokens, P99 latency.
const SEED_001: [(&str, &str, &str, &str, &str); 5] = [
    ("no retry", "72.3%", "230 ms", "0%", "1,200 ms"),
    ("constant 1s", "89.1%", "580 ms", "12.4%", "3,400 ms"),
    ("linear step 2s", "94.7%", "890 ms", "8.2%", "4,200 ms"),
    (
        "exponential base 1s",
        "97.8%",
        "1,150 ms",
        "4.1%",
        "5,800 ms",
    ),
    (
        "exponential + jitter",
        "99.2%",
        "980 ms",
        "3.8%",
        "4,100 ms",
    ),
];

fn main() -> ExitCode {
    let config = match cli::from_env(&DEFAULTS) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e),
    };
    let started = std::time::Instant::now();
    if let Err(e) = runtime.block_on(common::run_all(&config, serve)) {
        return fail(&e);
    }
    println!(
        "(simulated on tokio's paused clock in {:.1} s of real time)\n",
        started.elapsed().as_secs_f64()
    );
    print_seed_001();
    ExitCode::SUCCESS
}

/// The bucket as a service: no sockets, nothing to stop afterwards.
fn serve(limiter: Arc<Limiter>) -> io::Result<Target<()>> {
    let service = tower::service_fn(move |_request| {
        let limiter = limiter.clone();
        async move { Ok::<_, Infallible>(limiter.serve().await) }
    });
    let transport: Transport = BoxCloneService::new(service.map_err(|never| match never {}));
    Ok(Target {
        transport,
        uri: Uri::from_static("http://simulated.invalid/"),
        guard: (),
    })
}

fn print_seed_001() {
    println!("Seed 001's published table (10,000 requests against a real AI API; \"wasted\" is tokens):\n");
    println!(
        "{:<24} {:>8} {:>10} {:>8} {:>10}",
        "strategy", "success", "mean", "wasted", "P99"
    );
    for (strategy, success, mean, wasted, p99) in SEED_001 {
        println!("{strategy:<24} {success:>8} {mean:>10} {wasted:>8} {p99:>10}");
    }
}

fn fail(e: &io::Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
