//! # The showdown: retry stacks against a real rate-limited HTTP server
//!
//! ```text
//! cargo run --release --example showdown
//! cargo run --release --example showdown -- --mode retry-after
//! cargo run --release --example showdown -- --mode outage
//! cargo run --release --example showdown -- --quick
//! ```
//!
//! Starts a hyper server on `127.0.0.1:0`, in-process, that enforces a token
//! bucket (rate per second, burst) and answers calls over the limit with 429
//! in one of three modes: `retry-after` (`Retry-After` in whole seconds,
//! rounded up), `ratelimit` (IETF `RateLimit-Policy` and `RateLimit` on every
//! response, plus `Retry-After` on 429) or `none` (a bare 429); `outage` is
//! `retry-after` plus a stretch (from 15 % of the ideal makespan, for 45 % of
//! it and at least 1 s) during which every call is answered with a bare 503,
//! and adds two columns: calls the server saw while down, and the time from
//! its recovery to the first call it served. Then it sends
//! the same batch through each contender, each over its own hyper-util client
//! and against a fresh server:
//!
//! * no retry;
//! * the AI-API retry article's four strategies — constant 1 s, linear step 2 s, exponential
//!   base 1 s, exponential × U(0.5, 1.5) — with its `max_attempts = 5`,
//!   `max_delay = 60 s`, retry statuses 429/500/502/503/504 and its
//!   `Retry-After` rule (see `common/article.rs` for the loop it mirrors and
//!   how its seconds are scaled to the server);
//! * tower's `ExponentialBackoff` (100 ms to 10 s) with a `TpsBudget`, as a
//!   user would assemble it today;
//! * `BackoffRetryLayer` with full jitter, with decorrelated jitter,
//!   stacked on `RateLimitAwareLayer`, on `CircuitBreakerLayer` (1 s window,
//!   1 s first break), and on both (retry → breaker → gate).
//!
//! It prints one row per contender: success %, calls the server saw, wasted
//! calls (answered 429/5xx ÷ calls), mean / P50 / P99 latency as the caller
//! saw it (retries included), makespan, and makespan ÷ ideal, where ideal =
//! requests ÷ rate. A progress bar runs on stderr when it is a terminal. Last,
//! it writes a bar chart of wasted calls and makespan as SVG and prints its
//! path.
//!
//! Flags (`--help` prints them with their defaults):
//!
//! * `--requests N`, `--concurrency N` — batch size and width (2,000 and 50);
//! * `--rate R`, `--burst B` — the server's token bucket (300/s, 300);
//! * `--mode retry-after|ratelimit|none|outage` — how 429s are announced,
//!   and whether the server goes down for a while;
//! * `--seed S` — seed for every random draw;
//! * `--svg PATH` — the chart (default `target/showdown.svg`);
//! * `--only IDS` — comma-separated contender ids;
//! * `--preset retry-after-100|retry-after-50` — the two `Retry-After`-only
//!   settings the gate is judged by (1,000 requests; 100/s, burst 10,
//!   concurrency 50; or 50/s, burst 5, concurrency 100);
//! * `--quick` — a run of a few seconds that still prints every row (CI).

mod common;

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use common::cli::{self, Defaults, Shape};
use common::limiter::Limiter;
use common::{loopback, Target};
use tokio::sync::oneshot;

const DEFAULTS: Defaults = Defaults {
    program: "showdown",
    full: Shape {
        requests: 2_000,
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
    svg: "target/showdown.svg",
};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match cli::from_env(&DEFAULTS) {
        Ok(config) => config,
        Err(code) => return code,
    };
    common::exit_code(common::run_all(&config, serve).await.map(drop))
}

/// A fresh server on `127.0.0.1:0` and a fresh client for it. Dropping the
/// returned guard stops accepting; open connections end with the client.
fn serve(limiter: Arc<Limiter>) -> io::Result<Target<oneshot::Sender<()>>> {
    let (uri, guard) = loopback::serve(limiter)?;
    Ok(Target {
        transport: loopback::client(),
        uri,
        guard,
    })
}
