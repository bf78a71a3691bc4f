//! The table, its entries' pump, sweep and eviction, on a paused clock.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use super::*;
use crate::rate_limit::permit::{acquire, Acquire, Permit, Waiting};

fn config() -> Config {
    Config {
        max_wait: Duration::MAX,
        refuses: false,
        max_hold: Duration::from_secs(300),
        slow_start: false,
        max_keys: 16,
        limits: Arc::from(vec![Limit::requests(10, Duration::from_secs(1)).burst(1)]),
        #[cfg(feature = "redis")]
        store: None,
    }
}

fn gate(config: Config) -> Arc<Gate> {
    Gate::new(config)
}

fn go(a: Acquire) -> Permit {
    match a {
        Acquire::Go(p) => p,
        _ => panic!("expected Go"),
    }
}

fn wait(a: Acquire) -> Waiting {
    match a {
        Acquire::Wait(w, _) => w,
        _ => panic!("expected Wait"),
    }
}

fn poll(w: &mut Waiting) -> Poll<Result<Permit, Duration>> {
    w.poll(&mut Context::from_waker(Waker::noop()))
}

fn ok() -> Outcome {
    Outcome::read(StatusCode::OK, &HeaderMap::new())
}

#[tokio::test(start_paused = true)]
async fn the_pump_releases_waiters_in_order_at_the_limits_pace() {
    let g = gate(config());
    let first = go(acquire(&g, 1, Need::default(), None));
    let mut a = wait(acquire(&g, 1, Need::default(), None));
    let mut b = wait(acquire(&g, 1, Need::default(), None));
    assert!(poll(&mut a).is_pending());
    assert!(poll(&mut b).is_pending());
    first.finish(Some(&ok()));
    assert_eq!(g.stats().waiting, 2);
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(matches!(poll(&mut b), Poll::Pending), "b is behind a");
    assert!(matches!(poll(&mut a), Poll::Ready(Ok(_))));
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(matches!(poll(&mut b), Poll::Ready(Ok(_))));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_never_polled_holds_no_place() {
    let g = gate(config());
    let _first = go(acquire(&g, 1, Need::default(), None));
    // Created and never polled.
    let _idle: Vec<Waiting> = (0..100)
        .map(|_| wait(acquire(&g, 1, Need::default(), None)))
        .collect();
    let mut polled = wait(acquire(&g, 1, Need::default(), None));
    assert!(poll(&mut polled).is_pending());
    tokio::time::advance(Duration::from_millis(100)).await;
    let Poll::Ready(Ok(_permit)) = poll(&mut polled) else {
        panic!("the polled request goes");
    };
    assert_eq!(g.stats().in_flight, 2, "the idle ones were granted nothing");
}

#[tokio::test(start_paused = true)]
async fn no_request_waits_longer_than_max_hold_or_its_deadline() {
    let mut c = config();
    c.max_hold = Duration::from_secs(60);
    c.limits = Arc::from(vec![Limit::requests(1, Duration::from_secs(3600))]);
    let g = gate(c);
    let _first = go(acquire(&g, 1, Need::default(), None));
    let start = Instant::now();
    let mut held = wait(acquire(&g, 1, Need::default(), None));
    let soon = start + Duration::from_secs(5);
    let mut urgent = wait(acquire(&g, 1, Need::default(), Some(soon)));
    assert!(poll(&mut held).is_pending());
    assert!(poll(&mut urgent).is_pending());
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(
        matches!(poll(&mut urgent), Poll::Ready(Ok(_))),
        "released at its deadline"
    );
    assert!(poll(&mut held).is_pending());
    tokio::time::advance(Duration::from_secs(55)).await;
    assert!(
        matches!(poll(&mut held), Poll::Ready(Ok(_))),
        "released at max_hold"
    );
    // A deadline already past: the request goes at once.
    let _late = go(acquire(&g, 1, Need::default(), Some(start)));
}

#[tokio::test(start_paused = true)]
async fn with_max_wait_a_request_past_its_bound_is_refused() {
    let mut c = config();
    c.refuses = true;
    c.max_wait = Duration::from_secs(10);
    c.limits = Arc::from(vec![Limit::requests(1, Duration::from_secs(3600))]);
    let g = gate(c);
    let _first = go(acquire(&g, 1, Need::default(), None));
    assert!(matches!(
        acquire(&g, 1, Need::default(), None),
        Acquire::Refuse(w) if w > Duration::from_secs(3000)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_hold_sweeps_out_waiters_that_can_no_longer_make_max_wait() {
    let mut c = config();
    c.refuses = true;
    c.max_wait = Duration::from_secs(10);
    let g = gate(c);
    let first = go(acquire(&g, 1, Need::default(), None));
    let mut w = wait(acquire(&g, 1, Need::default(), None));
    assert!(poll(&mut w).is_pending());
    let mut h = HeaderMap::new();
    h.insert("retry-after", "60".parse().unwrap());
    first.finish(Some(&Outcome::read(StatusCode::TOO_MANY_REQUESTS, &h)));
    assert!(matches!(poll(&mut w), Poll::Ready(Err(d)) if d == Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_granted_waiter_gives_its_release_back() {
    let g = gate(config());
    let first = go(acquire(&g, 1, Need::default(), None));
    let mut w = wait(acquire(&g, 1, Need::default(), None));
    assert!(poll(&mut w).is_pending());
    drop(first);
    tokio::time::advance(Duration::from_millis(100)).await;
    // Granted by the pump of an unrelated event, then dropped unseen.
    let _other = acquire(&g, 2, Need::default(), None);
    drop(w);
    assert_eq!(g.stats().in_flight, 1, "only key 2's request");
    let _again = go(acquire(&g, 1, Need::default(), None));
}

#[tokio::test(start_paused = true)]
async fn eviction_keeps_keys_in_use_and_drops_idle_ones_first() {
    let g = gate(config());
    let busy = go(acquire(&g, 0, Need::default(), None));
    for key in 1..100 {
        drop(go(acquire(&g, key, Need::default(), None)));
    }
    let stats = g.stats();
    assert!(stats.keys <= 16, "{stats:?}");
    assert_eq!(stats.in_flight, 1);
    // The busy key survived: its in-flight request is still counted.
    busy.finish(Some(&ok()));
    assert_eq!(g.stats().in_flight, 0);
}

fn throttle(retry_after: Option<&str>) -> Outcome {
    let mut headers = HeaderMap::new();
    if let Some(secs) = retry_after {
        headers.insert("retry-after", secs.parse().unwrap());
    }
    Outcome::read(StatusCode::TOO_MANY_REQUESTS, &headers)
}

/// A gate that knows nothing of any key: no limits, no slow start.
fn open_config() -> Config {
    Config {
        limits: Arc::from(Vec::new()),
        ..config()
    }
}

fn fast_go(g: &Arc<Gate>, key: u64) -> crate::rate_limit::permit::FastPermit {
    crate::rate_limit::permit::fast(g, key).expect("the key's lane is open")
}

#[tokio::test(start_paused = true)]
async fn a_key_about_which_nothing_is_known_goes_by_its_lane_until_a_throttle_closes_it() {
    let g = gate(open_config());
    assert!(
        crate::rate_limit::permit::fast(&g, 1).is_none(),
        "unknown yet"
    );
    // The first release begins the key's period: from then on its lane is open.
    go(acquire(&g, 1, Need::default(), None)).finish(Some(&ok()));
    for _ in 0..10 {
        fast_go(&g, 1).finish(&ok());
    }
    assert_eq!(g.stats().in_flight, 0);
    fast_go(&g, 1).finish(&throttle(Some("2")));
    assert!(crate::rate_limit::permit::fast(&g, 1).is_none(), "held");
    assert_eq!(g.stats().limited_keys, 1);
    let mut held = wait(acquire(&g, 1, Need::default(), None));
    assert!(poll(&mut held).is_pending());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(poll(&mut held), Poll::Ready(Ok(_))));
    // Another key is not concerned.
    go(acquire(&g, 2, Need::default(), None)).finish(Some(&ok()));
    assert!(crate::rate_limit::permit::fast(&g, 2).is_some());
}

#[tokio::test(start_paused = true)]
async fn answers_counted_on_the_lane_teach_the_learner_as_any_other() {
    let g = gate(open_config());
    go(acquire(&g, 1, Need::default(), None)).finish(Some(&ok()));
    // 100 accepted a second for a second, through the lane.
    for _ in 0..100 {
        tokio::time::advance(Duration::from_millis(10)).await;
        fast_go(&g, 1).finish(&ok());
    }
    // A bare 429: the learner's first guess is half the rate accepted
    // (50/s), not half of the one release the table saw (0.5/s).
    fast_go(&g, 1).finish(&throttle(None));
    let mut waits = Vec::new();
    for _ in 0..3 {
        match acquire(&g, 1, Need::default(), None) {
            Acquire::Go(p) => {
                waits.push(Duration::ZERO);
                p.finish(Some(&ok()));
            }
            Acquire::Wait(mut w, _) => {
                let start = Instant::now();
                let p = loop {
                    if let Poll::Ready(Ok(p)) = poll(&mut w) {
                        break p;
                    }
                    assert!(start.elapsed() < Duration::from_secs(10), "never released");
                    tokio::time::advance(Duration::from_millis(1)).await;
                };
                waits.push(start.elapsed());
                p.finish(Some(&ok()));
            }
            Acquire::Refuse(d) => panic!("refused for {d:?}"),
        }
    }
    assert!(
        waits.iter().all(|d| *d <= Duration::from_millis(50)),
        "paced at the learned rate: {waits:?}"
    );
    assert!(waits.iter().any(|d| !d.is_zero()), "paced: {waits:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_gate_frees_its_lanes_and_a_late_answer_goes_nowhere() {
    let g = gate(open_config());
    go(acquire(&g, 1, Need::default(), None)).finish(Some(&ok()));
    let in_flight = fast_go(&g, 1);
    let (salt, at) = (g.lanes.salt(), g.lanes.at());
    assert!(Gate::by_salt(salt).is_some());
    drop(g);
    assert!(Gate::by_salt(salt).is_none(), "left the registry");
    assert!(at.try_release(1).is_none(), "its lane is free");
    // The answer has no gate to teach: it is dropped, without a panic.
    in_flight.finish(&throttle(Some("2")));
}
