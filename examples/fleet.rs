//! # The fleet: many processes, one limit, shared through Redis
//!
//! ```text
//! cargo run --release --features redis --example fleet
//! cargo run --release --features redis --example fleet -- --processes 8 --requests 200
//! ```
//!
//! Starts `redis-server` (from `PATH`) and the showdown's token-bucket hyper
//! server on loopback, in-process. Then, for each way the server announces
//! its limit — IETF `RateLimit`/`RateLimit-Policy` headers (plus
//! `Retry-After` on 429), and `Retry-After` only — and for each mode, it
//! starts N child processes (this example again, with `--child`), each
//! sending a batch at concurrency 50 through `BackoffRetryLayer` over
//! `RateLimitAwareLayer` against the one server:
//!
//! * `uncoordinated`: each process has its own gate, as replicas do today;
//! * `redis`: the gates share what they know through a `RedisStore`.
//!
//! It prints a row per mode: requests, success, calls the server saw,
//! wasted (429s ÷ calls), the share of the limit used (accepted per second ÷
//! the server's rate), makespan ÷ ideal (requests ÷ rate), and Redis calls
//! per request; then whether the goals are met: the `redis` row uses at
//! least 95 % of the limit, with at most 1 % 429s with headers and at most
//! 3 % with `Retry-After` only.
//!
//! Flags: `--processes N` (4), `--requests N` per process (300),
//! `--concurrency N` per process (50), `--rate R` (200/s), `--burst B` (20),
//! `--only uncoordinated|redis`, `--redis-outage START,END` (seconds after
//! the children start: Redis is killed at START and started again, empty,
//! at END, in the `redis` mode: the fault the gates must ride out, and the
//! restart they must share again after). A child that has not finished within a
//! minute plus 20 × the ideal makespan is killed; both servers stop at the
//! end.

#[allow(dead_code)]
mod common;
#[path = "../tests/support/redis.rs"]
mod redis_server;

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::batch::{self, Plan, Progress};
use common::contenders::over_gate;
use common::limiter::{Limiter, Limits, Mode};
use common::{loopback, say};
use redis_server::RedisServer;
use tokio::process::Command;
use tower_backoff::{RateLimitAwareLayer, RedisStore};

/// A child that has not finished within this, plus 20 × the ideal
/// makespan, is killed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
struct Flags {
    processes: usize,
    requests: usize,
    concurrency: usize,
    rate: f64,
    burst: u32,
    /// Run only this mode (`uncoordinated` or `redis`).
    only: Option<String>,
    /// Kill Redis this long after the children start, and start it again
    /// (empty) this long after (seconds).
    outage: Option<(f64, f64)>,
}

type SharedRedis = Arc<std::sync::Mutex<RedisServer>>;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().is_some_and(|a| a == "--child") {
        child(&args[1..]).await
    } else {
        match parse(&args) {
            Ok(flags) => parent(flags).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Flags, String> {
    let mut flags = Flags {
        processes: 4,
        requests: 300,
        concurrency: 50,
        rate: 200.0,
        burst: 20,
        only: None,
        outage: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {value}: not a valid number");
        match flag.as_str() {
            "--processes" => flags.processes = value.parse().map_err(|_| bad())?,
            "--requests" => flags.requests = value.parse().map_err(|_| bad())?,
            "--concurrency" => flags.concurrency = value.parse().map_err(|_| bad())?,
            "--rate" => flags.rate = value.parse().map_err(|_| bad())?,
            "--burst" => flags.burst = value.parse().map_err(|_| bad())?,
            "--only" if value == "redis" || value == "uncoordinated" => {
                flags.only = Some(value.clone());
            }
            "--redis-outage" => {
                let (a, b) = value.split_once(',').ok_or_else(bad)?;
                let (a, b): (f64, f64) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if !(a.is_finite() && b.is_finite() && 0.0 <= a && a < b && b <= 3600.0) {
                    return Err(format!(
                        "{flag} {value}: needs START,END with 0 ≤ START < END"
                    ));
                }
                flags.outage = Some((a, b));
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let ok = (1..=64).contains(&flags.processes)
        && (1..=100_000).contains(&flags.requests)
        && (1..=1_000).contains(&flags.concurrency)
        && flags.rate.is_finite()
        && (1.0..=100_000.0).contains(&flags.rate)
        && flags.burst >= 1;
    ok.then_some(flags)
        .ok_or_else(|| "a flag is out of range".to_owned())
}

/// What one child reports.
#[derive(Debug, Default, Clone, Copy)]
struct Report {
    ok: u64,
    start_ms: u64,
    end_ms: u64,
    redis_calls: u64,
}

/// One table row.
struct Row {
    mode: &'static str,
    requests: u64,
    success: f64,
    calls: u64,
    wasted: f64,
    share: f64,
    vs_ideal: f64,
    redis_per_request: f64,
}

async fn parent(flags: Flags) -> Result<(), String> {
    let redis = RedisServer::start().ok_or("redis-server is not on PATH")?;
    let url = redis.url();
    let redis: SharedRedis = Arc::new(std::sync::Mutex::new(redis));
    let date = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    say(&format!(
        "fleet: {} processes × {} requests at concurrency {}, one server {}/s burst {} (unix time {date})",
        flags.processes, flags.requests, flags.concurrency, flags.rate, flags.burst
    ))
    .map_err(|e| e.to_string())?;
    if let Some((a, b)) = flags.outage {
        say(&format!(
            "redis mode: Redis killed at {a} s and started again, empty, at {b} s"
        ))
        .map_err(|e| e.to_string())?;
    }
    let mut failures = Vec::new();
    for (mode, label, max_wasted) in [
        (Mode::RateLimit, "RateLimit headers", 1.0),
        (Mode::RetryAfter, "Retry-After only", 3.0),
    ] {
        say(&format!("\nwith {label}:\n{}", header())).map_err(|e| e.to_string())?;
        for coord in ["uncoordinated", "redis"] {
            if flags.only.as_ref().is_some_and(|o| o != coord) {
                continue;
            }
            let row = run(&flags, mode, coord, &url, &redis).await?;
            say(&line(&row)).map_err(|e| e.to_string())?;
            if coord == "redis" && (row.share < 95.0 || row.wasted > max_wasted) {
                failures.push(format!(
                    "{label}: redis uses {:.1} % of the limit with {:.1} % 429s (goal ≥ 95 %, ≤ {max_wasted} %)",
                    row.share, row.wasted
                ));
            }
        }
    }
    drop(redis);
    if failures.is_empty() {
        say("\ngoals met: redis uses ≥ 95 % of the limit, ≤ 1 % 429s with RateLimit headers, ≤ 3 % with Retry-After only")
            .map_err(|e| e.to_string())
    } else {
        say(&format!("\ngoals not met:\n  {}", failures.join("\n  "))).map_err(|e| e.to_string())
    }
}

/// Kills `redis` `start` seconds from now and starts it again, empty, at
/// `end`.
async fn outage(redis: SharedRedis, (start, end): (f64, f64)) {
    let at = |s: f64| tokio::time::Instant::now() + Duration::from_secs_f64(s);
    let (kill_at, restart_at) = (at(start), at(end));
    for (when, kill) in [(kill_at, true), (restart_at, false)] {
        tokio::time::sleep_until(when).await;
        let redis = redis.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut r = redis.lock().unwrap_or_else(|e| e.into_inner());
            if kill {
                r.kill();
            } else {
                r.restart();
            }
        })
        .await;
    }
}

/// One mode against a fresh server: N children, their reports summed.
async fn run(
    flags: &Flags,
    mode: Mode,
    coord: &'static str,
    redis: &str,
    server: &SharedRedis,
) -> Result<Row, String> {
    let limiter = Arc::new(Limiter::new(Limits {
        rate: flags.rate,
        burst: flags.burst,
        mode,
        outage: None,
    }));
    let (uri, stop) = loopback::serve(limiter.clone()).map_err(|e| e.to_string())?;
    let prefix = format!("fleet-{}-{mode}-{coord}", std::process::id());
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for _ in 0..flags.processes {
        let child = Command::new(&exe)
            .args(["--child", &uri.to_string(), coord, redis, &prefix])
            .args([flags.requests.to_string(), flags.concurrency.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting a child: {e}"))?;
        children.push(child);
    }
    let fault = flags
        .outage
        .filter(|_| coord == "redis")
        .map(|o| tokio::spawn(outage(server.clone(), o)));
    let ideal = (flags.processes * flags.requests) as f64 / flags.rate;
    let deadline =
        tokio::time::Instant::now() + CHILD_TIMEOUT + Duration::from_secs_f64(20.0 * ideal);
    let mut reports = Vec::new();
    for child in children {
        let out = tokio::time::timeout_at(deadline, child.wait_with_output())
            .await
            .map_err(|_| "a child did not finish in time".to_owned())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        reports.push(read_report(&text).ok_or_else(|| format!("a child said {text:?}"))?);
    }
    drop(stop);
    if let Some(fault) = fault {
        // Redis is back (empty) before the next run, whenever this one ended.
        let _ = fault.await;
    }
    let counts = limiter.counts();
    let requests = (flags.processes * flags.requests) as u64;
    let ok: u64 = reports.iter().map(|r| r.ok).sum();
    let start = reports.iter().map(|r| r.start_ms).min().unwrap_or(0);
    let end = reports.iter().map(|r| r.end_ms).max().unwrap_or(0);
    let makespan = (end.saturating_sub(start) as f64 / 1000.0).max(1e-3);
    let accepted = counts.sent - counts.wasted;
    Ok(Row {
        mode: coord,
        requests,
        success: 100.0 * ok as f64 / requests as f64,
        calls: counts.sent,
        wasted: 100.0 * counts.wasted as f64 / counts.sent.max(1) as f64,
        share: 100.0 * accepted as f64 / makespan / flags.rate,
        vs_ideal: makespan / ideal,
        redis_per_request: reports.iter().map(|r| r.redis_calls).sum::<u64>() as f64
            / requests as f64,
    })
}

fn header() -> String {
    format!(
        "{:<14} {:>8} {:>8} {:>7} {:>7} {:>15} {:>16} {:>20}",
        "mode",
        "requests",
        "success",
        "calls",
        "wasted",
        "share of limit",
        "makespan ÷ ideal",
        "Redis calls/request"
    )
}

fn line(r: &Row) -> String {
    format!(
        "{:<14} {:>8} {:>7.1}% {:>7} {:>6.1}% {:>14.1}% {:>15.2}× {:>20.3}",
        r.mode, r.requests, r.success, r.calls, r.wasted, r.share, r.vs_ideal, r.redis_per_request
    )
}

fn read_report(text: &str) -> Option<Report> {
    let mut r = Report::default();
    for field in text.split_whitespace() {
        let (name, value) = field.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        match name {
            "ok" => r.ok = value,
            "start_ms" => r.start_ms = value,
            "end_ms" => r.end_ms = value,
            "redis_calls" => r.redis_calls = value,
            _ => return None,
        }
    }
    Some(r)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `--child URI MODE REDIS PREFIX REQUESTS CONCURRENCY`: one process of the
/// fleet; prints its report on stdout.
async fn child(args: &[String]) -> Result<(), String> {
    let [uri, coord, redis, prefix, requests, concurrency] = args else {
        return Err("--child needs 6 arguments".to_owned());
    };
    let uri = uri.parse().map_err(|e| format!("{uri}: {e}"))?;
    let number = |s: &str| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
    let plan = Plan {
        uri,
        requests: number(requests)?,
        concurrency: number(concurrency)?,
    };
    let mut gate = RateLimitAwareLayer::new();
    let mut store = None;
    if coord == "redis" {
        let s = RedisStore::connect(redis)
            .await
            .map_err(|e| e.to_string())?
            .prefix(prefix);
        gate = gate.store(s.clone());
        store = Some(s);
    }
    let service = over_gate(loopback::client(), gate, u64::from(std::process::id()));
    let start_ms = unix_ms();
    let progress = Progress::new("", plan.requests);
    let done = batch::run(service, &plan, &progress).await;
    let end_ms = unix_ms();
    let ok = done.outcomes.iter().filter(|o| o.ok).count();
    let redis_calls = store.map_or(0, |s| s.redis_calls());
    say(&format!(
        "ok={ok} start_ms={start_ms} end_ms={end_ms} redis_calls={redis_calls}"
    ))
    .map_err(|e| e.to_string())
}
