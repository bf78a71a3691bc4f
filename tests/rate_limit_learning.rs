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
    hammer_service(server.service(), workers, until).await;
}

/// `workers` callers through one gate over `server`, as [`hammer`].
async fn hammer_service<S>(server: S, workers: usize, until: Duration)
where
    S: tower::Service<http::Request<String>, Response = http::Response<String>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Send,
{
    let svc = RateLimitAwareLayer::new().layer(server);
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
    // A probe above the learned rate that overshoots costs one refused call
    // and a pause of a few intervals, not the whole-second hold the hint
    // names, so the rate may climb back as fast as after a bare 429.
    follows(Mode::RetryAfter, 10).await;
}

/// A server that says only `429, Retry-After: 1` (a token bucket of 100/s,
/// burst 10, rounding its 10 ms wait up to a second): after the first
/// episode the key is paced at its rate, every 100 ms, never stopped for the
/// second the hint names; at most 1 % of calls are refused.
#[tokio::test(start_paused = true)]
async fn a_whole_second_hint_from_a_fast_bucket_is_probed_not_waited_out() {
    let server = MockServer::new(Mode::RetryAfter, 100.0, 10.0)
        .with_latency(Duration::from_millis(1), Duration::from_micros(500));
    hammer(&server, 50, Duration::from_secs(12)).await;
    let tenths = server.timeline(Duration::from_millis(100));
    eprintln!("per 100 ms: {tenths:?}");
    let idle = tenths.iter().skip(10).take(110).filter(|s| s.0 < 5).count();
    assert_eq!(idle, 0, "a tenth of a second with under half the rate");
    let (a, _) = window(&server, 2, 12);
    assert!(a >= 95.0, "{a:.1}/s of 100 from 2 s on");
    let c = server.counts();
    let wasted = c.throttled as f64 / c.calls as f64;
    assert!(wasted <= 0.01, "{:.2} % refused", wasted * 100.0);
}

/// A penalty box: after 20 calls in a second, every call is refused with
/// `Retry-After: 1` until the second is over — the hint is meant. The probe
/// that tests it is refused, and the key is held for the rest of the hint:
/// few calls reach the box while it is shut.
#[tokio::test(start_paused = true)]
async fn a_meant_short_hint_costs_one_probe_then_holds() {
    use std::sync::{Arc, Mutex};
    #[derive(Default)]
    struct Box_ {
        window: u64,
        in_window: u32,
        shut: u32,
        shut_windows: u32,
        calls: u32,
    }
    let state = Arc::new(Mutex::new(Box_::default()));
    let born = Instant::now();
    let st = state.clone();
    let server = tower::service_fn(move |_req: http::Request<String>| {
        let st = st.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let refused = {
                let mut s = st.lock().unwrap();
                s.calls += 1;
                let w = born.elapsed().as_secs();
                if w != s.window {
                    s.window = w;
                    s.in_window = 0;
                }
                s.in_window += 1;
                if s.in_window == 21 {
                    s.shut_windows += 1;
                }
                if s.in_window > 20 {
                    s.shut += 1;
                }
                s.in_window > 20
            };
            tokio::time::sleep(Duration::from_millis(2)).await;
            let mut res = http::Response::new(String::new());
            if refused {
                *res.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                res.headers_mut()
                    .insert("retry-after", http::HeaderValue::from_static("1"));
            }
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    hammer_service(server, 20, Duration::from_secs(20)).await;
    let s = state.lock().unwrap();
    eprintln!(
        "{} calls, {} refused in {} shut windows",
        s.calls, s.shut, s.shut_windows
    );
    assert!(
        s.shut <= 5 * s.shut_windows.max(1),
        "{} calls refused in {} shut windows",
        s.shut,
        s.shut_windows
    );
}

#[tokio::test(start_paused = true)]
async fn the_learned_rate_follows_a_server_whose_rate_changes_bare() {
    follows(Mode::Bare, 10).await;
}
