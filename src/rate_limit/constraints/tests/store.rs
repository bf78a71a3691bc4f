//! The key's constraints shared through a real `redis-server` (skipped
//! without one): what the store changes in probing, holds and learning.

use std::time::Duration;

use super::*;

/// Runs `test` on a key shared through a real `redis-server` (skipped
/// without one), right after a burst and a throttle with `Retry-After: 1`
/// that the key probes: `test` gets the key and the throttle's instant.
fn probing_on_a_store(test: impl FnOnce(Constraints, Instant)) {
    let Some((server, rt)) = redis_and_runtime() else {
        return;
    };
    rt.block_on(async {
        let store = crate::RedisStore::connect(&server.url())
            .await
            .expect("connects");
        let now = Instant::now();
        let mut c = Constraints::new(now, KNOBS, &[]);
        c.share(crate::rate_limit::shared::Shared::new(&store, 7, &[]));
        let (c, t1, limited) = burst_then_hint_on(c, now, 1);
        assert_eq!(limited, Some(Limited::Throttled), "probed, not held");
        test(c, t1);
    });
}

/// With a store, a refused probe proves nothing: another process may have
/// taken the slot the pause left. The key probes again after a short
/// back-off (growing while refusals repeat) instead of holding every
/// process for the rest of the hint; the hint still ends the probing.
#[test]
fn with_a_store_a_refused_probe_probes_again_instead_of_holding_the_fleet() {
    probing_on_a_store(|mut c, t1| {
        let u = Uncounted::default();
        let hint_end = t1 + secs(1);
        // Three probes in a row refused: each time the key probes again,
        // later and later, and never holds for the hint.
        let mut at = match admit(&mut c, t1, &need()) {
            Admit::At(at) => at,
            other => panic!("the probe waits its pause: {other:?}"),
        };
        let mut gaps = Vec::new();
        for seq in 12..15 {
            assert_eq!(admit(&mut c, at, &need()), Admit::Now, "the probe goes");
            c.on_grant(at, &need());
            let back = at + Duration::from_millis(5);
            let r = c.on_response(
                back,
                &bare(true, Some(1)),
                grant(at, seq),
                u,
                seq + 1,
                KNOBS,
            );
            assert_eq!(r.0, None, "a refused probe does not hold the key");
            assert!(!c.is_limited(back));
            let next = match admit(&mut c, back, &need()) {
                Admit::At(next) => next,
                other => panic!("the next probe waits: {other:?}"),
            };
            assert!(next < hint_end, "probes again within the hint: {next:?}");
            gaps.push(next.saturating_duration_since(back));
            at = next;
        }
        // Never sooner than the back-off, which doubles with each refusal
        // (a rate-paced pause may be longer).
        for (k, gap) in gaps.iter().enumerate() {
            let floor = PROBE_BACKOFF * 2u32.pow(k as u32);
            assert!(*gap >= floor, "probe {k} after {gap:?}, floor {floor:?}");
        }
    });
}

/// With a store, a hold another process published restarts this
/// process's period (one spanning the idle hold would measure the rate far
/// too low), while its probe out is still answered as a probe: refused with
/// a short hint, it holds no one for the hint. Its own hold, read back a
/// little later than it ends here, restarts nothing.
#[test]
fn with_a_store_another_process_hold_restarts_the_period_and_keeps_the_probe() {
    probing_on_a_store(|mut c, t1| {
        let probe_at = match admit(&mut c, t1, &need()) {
            Admit::At(at) => at,
            other => panic!("the probe waits its pause: {other:?}"),
        };
        assert_eq!(admit(&mut c, probe_at, &need()), Admit::Now);
        c.on_grant(probe_at, &need());
        assert!(c.meter.has_begun());
        let foreign = probe_at + Duration::from_millis(300);
        c.adopt_hold(foreign);
        assert!(!c.meter.has_begun(), "the period starts after the hold");
        let (back, r) = refuse_probe(&mut c, probe_at);
        assert_eq!(r, None, "the probe's refusal holds no one");
        assert_eq!(admit(&mut c, back, &need()), Admit::At(foreign));
        // After the hold, a new period; this process's own hold comes back
        // from the store a few milliseconds late: the same hold.
        assert_eq!(admit(&mut c, foreign, &need()), Admit::Now);
        c.on_grant(foreign, &need());
        c.adopt_hold(foreign + Duration::from_millis(3));
        assert!(
            c.meter.has_begun(),
            "its own hold read back restarts nothing"
        );
        c.adopt_hold(foreign + Duration::from_millis(500));
        assert!(!c.meter.has_begun(), "a later hold is another's");
    });
}

/// A rate learned while Redis was down was learned from this process's own
/// answers: its share of the server's rate, not the fleet's. When Redis
/// answers again it is neither offered to the other processes nor reserved
/// in Redis as the fleet's pace (there, one process's share would pace them
/// all), and the fleet's count is of a new era.
#[test]
fn a_rate_learned_while_redis_was_down_is_not_offered_as_the_fleets() {
    let Some((mut server, rt)) = redis_and_runtime() else {
        return;
    };
    rt.block_on(async {
        let store = crate::RedisStore::connect(&server.url())
            .await
            .expect("connects")
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(50));
        let shared = crate::rate_limit::shared::Shared::new(&store, 7, &[]);
        let era = shared.accepted().expect("Redis answers").era;
        server.kill();
        // The store finds Redis gone at its next call (bounded: 50 ms).
        until(
            || !store.is_sharing(),
            || {
                let _ = shared.hold(Instant::now());
            },
        )
        .await;
        assert_eq!(
            shared.accepted(),
            None,
            "no fleet count while Redis is down"
        );

        // The key learns alone: a burst, a short hint probed, then 40
        // accepted in 0.4 s from the empty bucket to the next throttle.
        let now = Instant::now();
        let mut c = Constraints::new(now, KNOBS, &[]);
        c.share(shared.clone());
        let (mut c, t1, _) = burst_then_hint_on(c, now, 1);
        let u = Uncounted::default();
        let mut at = t1 + Duration::from_millis(100);
        for seq in 12..52 {
            c.on_grant(at, &need());
            let back = at + Duration::from_millis(5);
            c.on_response(back, &bare(false, None), grant(at, seq), u, seq + 1, KNOBS);
            at += Duration::from_millis(10);
        }
        c.on_grant(at, &need());
        let back = at + Duration::from_millis(5);
        c.on_response(back, &bare(true, Some(1)), grant(at, 52), u, 53, KNOBS);
        let learner = c.learner.as_ref().expect("learned");
        assert!(learner.is_fitted(), "a full measure: {learner:?}");
        assert!(!learner.is_fleet_rate(), "of this process's answers alone");

        server.restart();
        until(
            || store.is_sharing() && shared.accepted().is_some(),
            || {
                let _ = shared.hold(Instant::now());
            },
        )
        .await;
        let later = Instant::now();
        assert_ne!(shared.accepted().map(|f| f.era), Some(era), "a new era");
        assert_eq!(shared.rate(later), None, "nothing offered to the others");
        assert!(
            c.shared_pace(later, &shared).is_none(),
            "this process's share is paced here, not reserved for the fleet"
        );
    });
}

/// A real `redis-server` on a free loopback port and a runtime to use it
/// on; `None` (the test skipped) without one.
fn redis_and_runtime() -> Option<(redis_server::RedisServer, tokio::runtime::Runtime)> {
    let Some(server) = redis_server::RedisServer::start() else {
        eprintln!("redis-server not found: skipped");
        return None;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Some((server, rt))
}

/// Calls `poke` every 20 ms until `done` holds (at most 3 s).
async fn until(done: impl Fn() -> bool, poke: impl Fn()) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !done() {
        assert!(Instant::now() < deadline, "not within 3 s");
        poke();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
