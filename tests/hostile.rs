//! Hostile responses through the whole stack (`BackoffRetryLayer` over
//! `RateLimitAwareLayer`), on tokio's paused clock: no panic, exactly one
//! outcome per request, and no wait beyond the caps.

mod support;

use std::time::Duration;

use http::Request;
use support::{reply, scripted, Reply};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use tower_backoff::{BackoffRetryLayer, RateLimitAwareLayer};

/// The retry layer's cap per wait and the gate's cap per hold.
const RETRY_CAP: Duration = Duration::from_secs(10);
const MAX_HOLD: Duration = Duration::from_secs(30);

fn cases() -> Vec<(&'static str, Reply)> {
    let h = |status: u16, name: &'static str, value: &str| reply(status).header(name, value);
    vec![
        ("retry-after -1", h(429, "retry-after", "-1")),
        ("retry-after 1e10", h(429, "retry-after", "1e10")),
        (
            "retry-after u64 overflow",
            h(429, "retry-after", "99999999999999999999"),
        ),
        (
            "retry-after 2^64",
            h(503, "retry-after", "18446744073709551616"),
        ),
        (
            "retry-after year 9999",
            h(429, "retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ),
        (
            "retry-after year 1970",
            h(429, "retry-after", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ),
        ("retry-after empty", h(503, "retry-after", "")),
        ("retry-after spaces", h(429, "retry-after", "   ")),
        ("retry-after NaN", h(429, "retry-after", "NaN")),
        ("retry-after inf", h(429, "retry-after", "inf")),
        ("retry-after hex", h(429, "retry-after", "0x10")),
        ("retry-after list", h(429, "retry-after", "5, 7")),
        (
            "retry-after non-ASCII",
            reply(429).raw_header("retry-after", b"\xff\xfe12"),
        ),
        (
            "retry-after duplicated, conflicting",
            h(429, "retry-after", "1").header("retry-after", "99999"),
        ),
        ("retry-after-ms negative", h(429, "retry-after-ms", "-250")),
        (
            "retry-after-ms huge",
            h(429, "retry-after-ms", "99999999999999999999"),
        ),
        (
            "x-ms-retry-after-ms garbage",
            h(503, "x-ms-retry-after-ms", "soon"),
        ),
        (
            "ratelimit r > q",
            h(200, "ratelimit-policy", "\"default\";q=10;w=1")
                .header("ratelimit", "\"default\";r=100;t=1"),
        ),
        (
            "ratelimit negative t",
            h(429, "ratelimit", "\"default\";r=0;t=-5"),
        ),
        (
            "ratelimit huge t",
            h(429, "ratelimit", "\"default\";r=0;t=99999999999"),
        ),
        (
            "ratelimit zero window",
            h(200, "ratelimit-policy", "\"default\";q=10;w=0")
                .header("ratelimit", "\"default\";r=0;t=0"),
        ),
        ("ratelimit garbage", h(200, "ratelimit", ";;;===\"\"")),
        (
            "draft-07 negative remaining",
            h(200, "ratelimit", "limit=100, remaining=-1, reset=5"),
        ),
        (
            "x-ratelimit remaining -1",
            h(200, "x-ratelimit-remaining", "-1").header("x-ratelimit-reset", "99999999999999"),
        ),
        (
            "x-ratelimit far-future epoch",
            h(200, "x-ratelimit-remaining", "0").header("x-ratelimit-reset", "9999999999"),
        ),
        (
            "x-ratelimit contradictory pair",
            h(200, "x-ratelimit-remaining", "0").header("x-ratelimit-remaining", "500"),
        ),
        (
            "openai bad duration",
            h(429, "x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", "6m0s5x"),
        ),
        (
            "openai negative duration",
            h(200, "x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", "-1s"),
        ),
        (
            "openai huge duration",
            h(200, "x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", "99999999h"),
        ),
        (
            "anthropic year 9999",
            h(429, "anthropic-ratelimit-requests-remaining", "0")
                .header("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"),
        ),
        (
            "anthropic invalid date",
            h(200, "anthropic-ratelimit-requests-remaining", "0")
                .header("anthropic-ratelimit-requests-reset", "2026-13-40T25:61:61Z"),
        ),
        (
            "grpc pushback -5",
            h(200, "grpc-status", "8").header("grpc-retry-pushback-ms", "-5"),
        ),
        (
            "grpc pushback abc",
            h(200, "grpc-status", "14").header("grpc-retry-pushback-ms", "abc"),
        ),
        (
            "grpc pushback overflow",
            h(200, "grpc-status", "8").header("grpc-retry-pushback-ms", "99999999999999999999"),
        ),
        ("grpc status garbage", h(200, "grpc-status", "fourteen")),
    ]
}

#[tokio::test(start_paused = true)]
async fn hostile_responses_never_panic_or_wait_past_the_caps() {
    let cases = cases();
    assert!(cases.len() >= 30);
    for (name, hostile) in cases {
        let (svc, seen) = scripted(vec![hostile, reply(200)]);
        let stack = ServiceBuilder::new()
            .layer(BackoffRetryLayer::exponential(
                Duration::from_millis(100),
                RETRY_CAP,
            ))
            .layer(
                RateLimitAwareLayer::new()
                    .max_hold(MAX_HOLD)
                    .max_wait(MAX_HOLD),
            )
            .service(svc);
        let start = Instant::now();
        // The hostile reply, then the server is healthy again.
        let first = stack.clone().oneshot(Request::new(String::new())).await;
        let res = first.unwrap_or_else(|never| match never {});
        let status = res.status().as_u16();
        let after_first = Instant::now() - start;
        // A second request to the same key is not held beyond the caps either.
        let second = stack.oneshot(Request::new(String::new())).await.unwrap();
        let total = Instant::now() - start;
        let calls = support::calls(&seen);
        eprintln!(
            "{name:40} -> {status} after {after_first:?}, then {} ({total:?} total), {calls} calls",
            second.status().as_u16()
        );
        assert!(calls <= 6, "{name}: {calls} calls");
        // Five attempts at most, each wait ≤ the retry cap and each hold ≤ the gate's.
        let bound = (RETRY_CAP + MAX_HOLD) * 5;
        assert!(total <= bound, "{name}: waited {total:?}");
        assert!(
            second.status() == 200
                || second
                    .extensions()
                    .get::<tower_backoff::LocalRateLimited>()
                    .is_some(),
            "{name}: second request got {}",
            second.status()
        );
    }
}
