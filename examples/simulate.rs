//! # Simulation: the showdown at the AI-API retry article's scale, on virtual time
//!
//! ```text
//! cargo run --release --example simulate
//! cargo run --release --example simulate -- --mode retry-after --requests 2000
//! ```
//!
//! The same contenders as `examples/showdown.rs` (no retry; the AI-API retry article's four
//! strategies; tower's `ExponentialBackoff` with a `TpsBudget`; the crate's
//! layers) send 10,000 requests to the same token-bucket server logic — here a
//! `tower::service_fn` called directly, with no sockets — on tokio's paused
//! clock. Minutes of backoff take milliseconds of real time, and a run is
//! reproducible from its `--seed`.
//!
//! It prints the showdown's table (success %, calls the server saw, wasted
//! calls = answered 429/5xx ÷ calls, mean / P50 / P99 latency, makespan and
//! makespan ÷ ideal, where ideal = requests ÷ rate) and, after it, the table
//! the AI-API retry article published. The article's figures were measured against a real AI API
//! (its limit: "the first 100 requests of each minute get 429") and its
//! "wasted" column counts tokens, not calls, so the two tables tell the same
//! story in different units rather than line up number for number.
//!
//! Flags (`--help` prints them with their defaults):
//!
//! * `--requests N`, `--concurrency N` — batch size and width (10,000 and 50);
//! * `--rate R`, `--burst B` — the server's token bucket (300/s, 300);
//! * `--mode retry-after|ratelimit|none|outage` — how 429s are announced,
//!   and whether the server goes down for a while;
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
use common::report::{human, Row};
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

/// The AI-API retry article's published benchmark, keyed by the contender that mirrors
/// each strategy: success, mean latency, wasted ("Token 浪费率"), P99.
const ARTICLE_TABLE: [(&str, [&str; 4]); 5] = [
    ("none", ["72.3%", "230 ms", "0%", "1,200 ms"]),
    ("article-constant", ["89.1%", "580 ms", "12.4%", "3,400 ms"]),
    ("article-linear", ["94.7%", "890 ms", "8.2%", "4,200 ms"]),
    ("article-exp", ["97.8%", "1,150 ms", "4.1%", "5,800 ms"]),
    (
        "article-exp-jitter",
        ["99.2%", "980 ms", "3.8%", "4,100 ms"],
    ),
];

fn main() -> ExitCode {
    let config = match cli::from_env(&DEFAULTS) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let started = std::time::Instant::now();
    let result = runtime
        .and_then(|runtime| runtime.block_on(common::run_all(&config, serve)))
        .and_then(|rows| {
            common::say(&format!(
                "(simulated on tokio's paused clock in {:.1} s of real time)\n",
                started.elapsed().as_secs_f64()
            ))?;
            beside_the_article(&rows)
        });
    common::exit_code(result)
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

/// The article's strategies as simulated here, beside the figures it published.
fn beside_the_article(rows: &[Row]) -> io::Result<()> {
    common::say(
        "The AI-API retry article's strategies: simulated here | as published by the article (10,000 requests \
         against a real AI API whose limit answered \"the first 100 requests of each minute\" \
         with 429; its \"wasted\" is \"Token 浪费率\", \
         wasted tokens, not calls)\n",
    )?;
    let columns = ["success", "wasted", "mean", "P99"];
    common::say(&format!(
        "{:<28} {:>8} {:>8} {:>9} {:>9} | {:>8} {:>8} {:>9} {:>9}",
        "",
        columns[0],
        columns[1],
        columns[2],
        columns[3],
        columns[0],
        columns[1],
        columns[2],
        columns[3]
    ))?;
    for (id, [success, mean, wasted, p99]) in ARTICLE_TABLE {
        let Some(row) = rows.iter().find(|row| row.id == id) else {
            continue;
        };
        common::say(&format!(
            "{:<28} {:>7.1}% {:>7.1}% {:>9} {:>9} | {success:>8} {wasted:>8} {mean:>9} {p99:>9}",
            row.label,
            row.success,
            row.wasted,
            human(row.mean),
            human(row.p99),
        ))?;
    }
    Ok(())
}
