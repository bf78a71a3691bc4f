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
//! * seed 001's four strategies — constant 1 s, linear step 2 s, exponential
//!   base 1 s, exponential × U(0.5, 1.5) — with its `max_attempts = 5`,
//!   `max_delay = 60 s`, retry statuses 429/500/502/503/504 and its
//!   `Retry-After` rule (see `common/seed001.rs` for the loop it mirrors and
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
//! * `--quick` — a run of a few seconds that still prints every row (CI).

mod common;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use common::cli::{self, Defaults, Shape};
use common::contenders::{BoxError, Transport};
use common::limiter::Limiter;
use common::Target;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::util::BoxCloneService;
use tower::ServiceExt;

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

/// Pause before accepting again after a failed `accept`.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);

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
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let listener = TcpListener::from_std(listener)?;
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(accept(listener, limiter, stopped));
    Ok(Target {
        transport: client(),
        uri: uri(addr)?,
        guard: stop,
    })
}

/// Accepts connections until `stopped` fires or its sender is dropped.
async fn accept(listener: TcpListener, limiter: Arc<Limiter>, mut stopped: oneshot::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: let connections finish.
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let limiter = limiter.clone();
        let service = hyper::service::service_fn(move |_request| {
            let limiter = limiter.clone();
            async move { Ok::<_, Infallible>(limiter.serve().await) }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// hyper-util's pooled client, reading each answer's body to the end so the
/// connection goes back to the pool.
fn client() -> Transport {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let service = client.map_err(BoxError::from).and_then(
        |response: http::Response<hyper::body::Incoming>| async move {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(http::Response::from_parts(parts, Full::new(bytes)))
        },
    );
    BoxCloneService::new(service)
}

fn uri(addr: SocketAddr) -> io::Result<Uri> {
    format!("http://{addr}/").parse().map_err(io::Error::other)
}
