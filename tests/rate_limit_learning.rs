//! The learned rate on servers that say only "429" (with `Retry-After`, or
//! bare): it follows the server's rate when it changes, and it backs off a
//! server that accepts nothing. Behaviour on tokio's paused clock, never
//! speed.

#[path = "support/rl_server.rs"]
mod rl_server;

use std::time::Duration;

use rl_server::{get, MockServer, Mode};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_backoff::RateLimitAwareLayer;

/// `workers` callers, each sending one request after another through one
/// gate until `until` (answers are ignored: the server's log tells).
async fn hammer(server: &MockServer, workers: usize, until: Duration) {
    let svc = RateLimitAwareLayer::new().layer(server.service());
    let end = Instant::now() + until;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let _ = svc.clone().oneshot(get("api.example.com")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Calls per second from second `from` to second `to`: (accepted, throttled).
fn window(server: &MockServer, from: usize, to: usize) -> (f64, f64) {
    let tl = server.timeline(Duration::from_secs(1));
    let (mut a, mut t) = (0u32, 0u32);
    for s in tl.iter().take(to).skip(from) {
        a += s.0;
        t += s.1;
    }
    let secs = (to - from) as f64;
    (f64::from(a) / secs, f64::from(t) / secs)
}

async fn accepts_nothing(server: MockServer) -> f64 {
    server.close_for(Duration::from_secs(3_600));
    hammer(&server, 50, Duration::from_secs(15)).await;
    let (a, t) = window(&server, 5, 15);
    assert_eq!(a, 0.0);
    eprintln!(
        "calls per second from 5 s on: {t:.1}; per second: {:?}",
        server.timeline(Duration::from_secs(1))
    );
    t
}

#[tokio::test(start_paused = true)]
async fn probes_of_a_server_that_accepts_nothing_back_off_whatever_the_round_trip() {
    for rtt_ms in [1, 20] {
        let each_way = Duration::from_micros(rtt_ms * 500);
        let zero_hint = MockServer::new(Mode::RetryAfter, 100.0, 10.0)
            .with_latency(each_way, Duration::from_micros(1))
            .with_zero_retry_after();
        let rate = accepts_nothing(zero_hint).await;
        assert!(
            rate <= 20.0,
            "Retry-After: 0, {rtt_ms} ms: {rate:.1} calls/s"
        );
        let bare = MockServer::new(Mode::Bare, 100.0, 10.0)
            .with_latency(each_way, Duration::from_micros(1));
        let rate = accepts_nothing(bare).await;
        assert!(rate <= 20.0, "bare 429, {rtt_ms} ms: {rate:.1} calls/s");
    }
}

/// 100/s for 30 s, 20/s for 30 s, 100/s for 40 s. From 10 s after the
/// drop, the accepted rate is at least 80 % of 20/s, with at most 10 % of
/// calls wasted. After the rise, the accepted rate is back to at least 80 %
/// of 100/s within `rise` seconds (for a whole second), and from 10 s after
/// it at most 10 % of calls are wasted.
async fn follows(mode: Mode, rise: usize) {
    let server = MockServer::new(mode, 100.0, 10.0)
        .with_latency(Duration::from_millis(10), Duration::from_millis(2));
    let s = server.clone();
    let changes = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        s.set_rate(20.0);
        tokio::time::sleep(Duration::from_secs(30)).await;
        s.set_rate(100.0);
    });
    hammer(&server, 50, Duration::from_secs(100)).await;
    changes.await.unwrap();
    let tl = server.timeline(Duration::from_secs(1));
    eprintln!("{mode:?} per second: {tl:?}");
    let (a, t) = window(&server, 40, 60);
    let wasted = t / (a + t);
    eprintln!(
        "{mode:?} 40–60 s: {a:.1}/s accepted, {:.1} % wasted",
        wasted * 100.0
    );
    assert!(a >= 16.0, "{mode:?} after the drop: {a:.1}/s of 20");
    assert!(
        wasted <= 0.10,
        "{mode:?} after the drop: {:.1} % wasted",
        wasted * 100.0
    );
    let back = tl
        .iter()
        .enumerate()
        .skip(60)
        .find(|(_, s)| s.0 >= 80)
        .map(|(i, _)| i - 60);
    let (a, t) = window(&server, 70, 100);
    let wasted = t / (a + t);
    eprintln!(
        "{mode:?} after the rise: ≥ 80/s after {back:?} s; 70–100 s: {a:.1}/s, {:.1} % wasted",
        wasted * 100.0
    );
    assert!(
        back.is_some_and(|b| b <= rise),
        "{mode:?}: back after {back:?} s"
    );
    assert!(
        wasted <= 0.10,
        "{mode:?} after the rise: {:.1} % wasted",
        wasted * 100.0
    );
}

#[tokio::test(start_paused = true)]
async fn the_learned_rate_follows_a_server_whose_rate_changes_retry_after() {
    // Back up within 30 s, not 10: every probe above a fitted rate that
    // overshoots costs a `Retry-After` hold, so the rate climbs back slowly
    // (a cubic of the time since the last throttle).
    follows(Mode::RetryAfter, 30).await;
}

#[tokio::test(start_paused = true)]
async fn the_learned_rate_follows_a_server_whose_rate_changes_bare() {
    follows(Mode::Bare, 10).await;
}
