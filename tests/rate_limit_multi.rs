//! Issue 11's acceptance tests: every limit a server has, at once —
//! configured limits, token cost, several IETF policies, GitHub's hourly
//! quota beside a short-term limiter. Paused clock, deterministic; figures
//! are printed (`--nocapture`) and checked against the thresholds.

#[path = "support/api_server.rs"]
mod api_server;

use std::time::Duration;

use api_server::{
    drive, get, get_costing, makespan, pct, workers, ApiServer, Hint, Limiter, Outcome, Style,
    XorShift,
};
use tower::ServiceBuilder;
use tower_backoff::rate_limit::Limit;
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

fn retry() -> BackoffRetryLayer {
    BackoffRetryLayer::exponential(Duration::from_millis(100), Duration::from_secs(10))
        .max_attempts(5)
        .seed(7)
}

const SEC: Duration = Duration::from_secs(1);

/// `server` behind the retry layer over a default gate, as a user stacks
/// them.
fn gated(
    server: &ApiServer,
) -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = std::convert::Infallible,
> + Clone {
    ServiceBuilder::new()
        .layer(retry())
        .layer(RateLimitAwareLayer::new())
        .service(server.service())
}

/// What a batch came to, printed with the server's timeline: requests that
/// succeeded, the share of calls wasted (%), and the makespan ÷ `ideal` (s).
fn summary(label: &str, out: &[Outcome], server: &ApiServer, ideal: f64) -> (usize, f64, f64) {
    let c = server.counts();
    let ok = out.iter().filter(|o| o.ok()).count();
    let span = makespan(out);
    let ratio = span.as_secs_f64() / ideal;
    let wasted = pct(c.throttled, c.calls);
    eprintln!(
        "({label}) {ok}/{} ok, {} calls, {} 429s = {wasted:.2} % wasted, makespan {span:.2?} = {ratio:.3}× ideal ({ideal:.2} s)\n  per s ok/429: {}",
        out.len(),
        c.calls,
        c.throttled,
        server.timeline_str(SEC)
    );
    (ok, wasted, ratio)
}

/// (a) Bucket 100/s, burst 10, 20 ms service, bare 429s; the limit
/// configured on the layer; 1,000 requests at concurrency 50 under retry.
#[tokio::test(start_paused = true)]
async fn a_configured_limit_against_a_bare_429_server() {
    let server = ApiServer::builder()
        .limiter(Limiter::bucket("requests", 100.0, 10.0))
        .style(Style::None)
        .build();
    let gate = RateLimitAwareLayer::new().limit(Limit::requests(100, SEC).burst(10));
    let client = ServiceBuilder::new()
        .layer(retry())
        .layer(gate)
        .service(server.service());
    let n = 1_000;
    let out = drive(client, n, 50, |_| get("/v1/x")).await;
    // Ideal: N ÷ rate (10 s); (N − burst) ÷ rate would be 9.9 s.
    let (ok, wasted, ratio) = summary("a", &out, &server, n as f64 / 100.0);
    assert_eq!(ok, n, "every request succeeds");
    assert!(wasted <= 0.5, "wasted {wasted:.2} % > 0.5 %");
    assert!(ratio <= 1.05, "makespan {ratio:.3}× ideal > 1.05×");
}

/// Costs 100–1,000, deterministic.
fn costs(n: usize) -> Vec<u64> {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    (0..n).map(|_| rng.range(100, 1_000)).collect()
}

async fn requests_and_tokens(headers: bool) {
    let mut b = ApiServer::builder()
        .limiter(Limiter::bucket("requests", 200.0, 20.0))
        .limiter(Limiter::bucket("tokens", 20_000.0, 2_000.0).tokens());
    let mut gate = RateLimitAwareLayer::new();
    let label;
    if headers {
        b = ApiServer::builder()
            .limiter(Limiter::bucket("requests", 200.0, 20.0).refuse(429, Hint::RetryAfterMs))
            .limiter(
                Limiter::bucket("tokens", 20_000.0, 2_000.0)
                    .tokens()
                    .refuse(429, Hint::RetryAfterMs),
            )
            .style(Style::OpenAi);
        label = "OpenAI headers, no configured limits";
    } else {
        gate = gate
            .limit(Limit::requests(200, SEC).burst(20))
            .limit(Limit::tokens(20_000, SEC).burst(2_000));
        label = "no headers, both limits configured";
    }
    let server = b.build();
    let client = ServiceBuilder::new()
        .layer(retry())
        .layer(gate)
        .service(server.service());
    let n = 600;
    let costs = costs(n);
    let total: u64 = costs.iter().sum();
    let out = drive(client, n, 50, |i| {
        get_costing("/v1/chat/completions", costs[i])
    })
    .await;
    let c = server.counts();
    let ok = out.iter().filter(|o| o.ok()).count();
    let span = makespan(&out);
    let ideal = (n as f64 / 200.0).max(total as f64 / 20_000.0);
    let ratio = span.as_secs_f64() / ideal;
    let wasted = pct(c.throttled, c.calls);
    eprintln!(
        "(b) {label}: {ok}/{n} ok, Σcost {total}, {} calls, {} 429s = {wasted:.2} % wasted, makespan {span:.2?} = {ratio:.3}× ideal ({ideal:.2} s)\n  per s ok/429: {}",
        c.calls,
        c.throttled,
        server.timeline_str(SEC)
    );
    let refused: Vec<String> = server
        .calls()
        .iter()
        .filter(|c| !c.accepted)
        .map(|c| format!("{:.3?} cost {}", c.at, c.cost))
        .collect();
    eprintln!("  refused calls: {refused:?}");
    assert_eq!(ok, n, "every request succeeds");
    let bound = if headers { 2.0 } else { 1.0 };
    assert!(wasted <= bound, "wasted {wasted:.2} % > {bound} %");
    assert!(ratio <= 1.10, "makespan {ratio:.3}× ideal > 1.10×");
}

/// (b) 200 requests/s and 20,000 tokens/s, both stated OpenAI-style on every
/// reply, `retry-after-ms` on 429; costs in `RequestCost`.
#[tokio::test(start_paused = true)]
async fn b_requests_and_tokens_stated_openai_style() {
    requests_and_tokens(true).await;
}

/// (b') The same server stating nothing; both limits configured.
#[tokio::test(start_paused = true)]
async fn b_requests_and_tokens_configured_no_headers() {
    requests_and_tokens(false).await;
}

/// The fastest makespan two aligned fixed windows allow for `n` calls
/// (`q1` per `w1` s, `q2` per `w2` s, `w2` a multiple of `w1`), plus the
/// service latency: the time of the last call's window start + latency.
fn fastest_two_windows(n: u64, (q1, w1): (u64, u64), (q2, w2): (u64, u64), lat: f64) -> f64 {
    let (mut sent, mut t, mut long_used, mut long_index) = (0, 0u64, 0, 0);
    let mut last = 0;
    for _ in 0..100_000 {
        if sent >= n {
            break;
        }
        if t / w2 != long_index {
            long_index = t / w2;
            long_used = 0;
        }
        let k = q1.min(q2 - long_used).min(n - sent);
        if k > 0 {
            sent += k;
            long_used += k;
            last = t;
        }
        t += w1;
    }
    last as f64 + lat
}

/// (c) Two IETF policies stated together: 10 per 1 s and 60 per 30 s.
#[tokio::test(start_paused = true)]
async fn c_two_ietf_policies_both_respected() {
    let server = ApiServer::builder()
        .limiter(Limiter::window("burst", 10, SEC).refuse(429, Hint::RetryAfterSecs))
        .limiter(Limiter::window("long", 60, 30 * SEC).refuse(429, Hint::RetryAfterSecs))
        .style(Style::Ietf)
        .build();
    let client = gated(&server);
    let n = 120;
    let out = drive(client, n, 20, |_| get("/v1/x")).await;
    let c = server.counts();
    let ok = out.iter().filter(|o| o.ok()).count();
    let span = makespan(&out);
    let ideal = fastest_two_windows(n as u64, (10, 1), (60, 30), 0.020);
    let ratio = span.as_secs_f64() / ideal;
    let wasted = pct(c.throttled, c.calls);
    // Both windows respected: the server enforces them, so count from its
    // record what it accepted per window.
    let calls = server.calls();
    let per = |w: f64| {
        let mut m = std::collections::BTreeMap::new();
        for call in calls.iter().filter(|c| c.accepted) {
            *m.entry((call.at.as_secs_f64() / w) as u64).or_insert(0u32) += 1;
        }
        m.values().copied().max().unwrap_or(0)
    };
    let (max1, max30) = (per(1.0), per(30.0));
    eprintln!(
        "(c) {ok}/{n} ok, {} calls, {} 429s = {wasted:.2} % wasted, makespan {span:.2?} = {ratio:.3}× fastest ({ideal:.2} s); max accepted per 1 s window {max1}, per 30 s window {max30}\n  per s ok/429: {}",
        c.calls,
        c.throttled,
        server.timeline_str(SEC)
    );
    let failed: Vec<_> = out.iter().filter(|o| !o.ok()).map(|o| o.status).collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(max1 <= 10 && max30 <= 60);
    assert!(wasted <= 2.0, "wasted {wasted:.2} % > 2 %");
    assert!(ratio <= 1.2, "makespan {ratio:.3}× fastest > 1.2×");
}

/// (d) GitHub: an hourly quota with plenty left (5,000, 4,900 left, reset
/// in an hour) stated on every reply, and a short-term limiter (50/s)
/// answering `429 retry-after: 1`; 50 workers for 30 s.
#[tokio::test(start_paused = true)]
async fn d_github_hourly_quota_beside_a_short_term_limiter() {
    let server = ApiServer::builder()
        .limiter(
            Limiter::window("core", 5_000, 3_600 * SEC)
                .used(100)
                .refuse(403, Hint::None),
        )
        .limiter(
            Limiter::bucket("secondary", 50.0, 50.0)
                .hidden()
                .refuse(429, Hint::Literal("1".into())),
        )
        .style(Style::GitHub)
        .build();
    let client = gated(&server);
    let run = 30 * SEC;
    let out = workers(client, 50, run, |_| get("/repos/o/r/issues")).await;
    let c = server.counts();
    let ok = out.iter().filter(|o| o.ok()).count();
    let failed = out.len() - ok;
    let rate = ok as f64 / run.as_secs_f64();
    let max_wait = out.iter().map(|o| o.latency()).max().unwrap_or_default();
    let tl = server.timeline(SEC);
    let steady_min = tl.iter().take(30).skip(2).map(|s| s.0).min().unwrap_or(0);
    eprintln!(
        "(d) {} requests, {ok} ok ({rate:.1}/s over 30 s; min {steady_min}/s over s 2..30), {failed} failed, {} calls, {} 429s = {:.2} % wasted, longest request {max_wait:.2?}\n  per s ok/429: {}",
        out.len(),
        c.calls,
        c.throttled,
        pct(c.throttled, c.calls),
        server.timeline_str(SEC)
    );
    assert!(rate >= 35.0, "{rate:.1} successes/s < 35");
    assert!(max_wait <= 10 * SEC, "a request took {max_wait:.2?} > 10 s");
}

/// (e) A token bucket, 200/s burst 20, stating its rate as its policy
/// (`q=200;w=1`) and, as its reset, the time to its next token rounded up:
/// `r=0;t=1` each time its burst is spent, though a token comes every 5 ms.
/// Read as a window, that held the key a second each time: 20 requests a
/// second. A probe of the short reset finds the refill; the gate then paces
/// at the policy's rate. 1,200 requests at concurrency 200 under retry; a
/// nearby server (2 ms), so the burst is spent before a token comes back.
#[tokio::test(start_paused = true)]
async fn e_a_bucket_stating_its_next_token_is_paced_at_its_rate() {
    let server = ApiServer::builder()
        .limiter(
            Limiter::bucket("default", 200.0, 20.0)
                .states_next_token()
                .refuse(429, Hint::RetryAfterSecs),
        )
        .style(Style::Ietf)
        .latency(Duration::from_millis(2))
        .build();
    let client = gated(&server);
    let n = 1_200;
    let out = drive(client, n, 200, |_| get("/v1/x")).await;
    // Ideal: the burst at once, the rest at the rate, plus one reply.
    let ideal = (n as f64 - 20.0) / 200.0 + 0.002;
    let (ok, wasted, ratio) = summary("e", &out, &server, ideal);
    assert_eq!(ok, n, "every request succeeds");
    assert!(wasted <= 1.0, "wasted {wasted:.2} % > 1 %");
    assert!(ratio <= 1.1, "makespan {ratio:.3}× ideal > 1.1×");
}
