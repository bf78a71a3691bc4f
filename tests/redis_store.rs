//! The Redis store against a real `redis-server` (started on a free loopback
//! port; see `support/redis.rs`). Real time: Redis is real. Every loop is
//! bounded.

#[path = "support/redis.rs"]
mod redis_server;
mod support;

use std::sync::Arc;
use std::time::Duration;

use redis_server::RedisServer;
use support::logs::Logs;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tower_backoff::rate_limit::{Offer, Pace, RedisStore, Reservation};

const PACE: Pace = Pace {
    rate: 200.0,
    burst: 20.0,
};

/// A store handle as one process's gate holds it: its own connection, its
/// own local state, woken through `notify`.
struct Process {
    store: RedisStore,
    woken: Arc<tokio::sync::Notify>,
}

async fn process(url: &str, prefix: &str) -> Process {
    let store = RedisStore::connect(url)
        .await
        .expect("connects")
        .prefix(prefix)
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200));
    Process::new(&store)
}

impl Process {
    fn new(store: &RedisStore) -> Self {
        let woken = Arc::new(tokio::sync::Notify::new());
        let w = woken.clone();
        let store = store.with_notify(Arc::new(move |_key: &str| w.notify_one()));
        Process { store, woken }
    }

    /// Reads `key` back from Redis (adding what this process counted), and
    /// waits for the answer to land; bounded.
    async fn read_back(&self, key: &str) {
        // A read-back goes at most every 50 ms while the key is in use.
        sleep(Duration::from_millis(60)).await;
        let _ = self.store.hold(key, Instant::now());
        sleep(Duration::from_millis(40)).await;
    }

    /// Asks until the store says `Go` or `Local`, waiting as it says (bounded
    /// by `within`); the answer and when it came.
    async fn one(&self, key: &str, pace: Pace, within: Duration) -> Option<(Reservation, Instant)> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let now = Instant::now();
            match self.store.reserve(key, "limit", 1, pace, now) {
                r @ (Reservation::Go | Reservation::Local) => return Some((r, now)),
                Reservation::At(t) => sleep_until(t.min(deadline)).await,
                Reservation::Pending(by) => {
                    let _ = timeout(by.min(deadline) - now, self.woken.notified()).await;
                }
            }
        }
        None
    }
}

#[tokio::test]
async fn four_processes_together_never_exceed_the_shared_pace() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let mut procs = Vec::new();
    for _ in 0..4 {
        procs.push(Arc::new(process(&url, "fleet").await));
    }
    let key = procs[0].store.key("api");
    let run = Duration::from_millis(1000);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in &procs {
        let (p, key) = (p.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut gone = Vec::new();
            while start.elapsed() < run {
                match p.one(&key, PACE, run.saturating_sub(start.elapsed())).await {
                    Some((Reservation::Go, at)) => gone.push(at),
                    Some((other, _)) => panic!("Redis is up, yet the store said {other:?}"),
                    None => break,
                }
            }
            gone
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(timeout(run * 3, t).await.expect("ends").expect("no panic"));
    }
    all.sort();
    let secs = run.as_secs_f64();
    let cap = PACE.rate * secs + PACE.burst;
    // Slack: units are dated from each reply's arrival, so a few of one
    // batch may straddle the end of the run.
    assert!(
        all.len() as f64 <= cap + 5.0,
        "{} went, cap {cap}",
        all.len()
    );
    assert!(
        all.len() as f64 >= 0.8 * PACE.rate * secs,
        "only {} went",
        all.len()
    );
    // And in every 250 ms window, no more than the rate plus the burst.
    let w = Duration::from_millis(250);
    for (i, &t) in all.iter().enumerate() {
        let n = all[i..].iter().take_while(|&&u| u < t + w).count();
        assert!(
            n as f64 <= PACE.rate * 0.25 + PACE.burst + 5.0,
            "{n} in 250 ms"
        );
    }
    let calls: u64 = procs.iter().map(|p| p.store.redis_calls()).sum();
    let per_request = calls as f64 / all.len() as f64;
    assert!(
        per_request < 0.35,
        "{calls} Redis calls for {} units",
        all.len()
    );
    // Every process got a share.
    eprintln!(
        "{} units, {calls} Redis calls ({per_request:.3}/unit)",
        all.len()
    );
}

#[tokio::test]
async fn redis_down_means_local_within_the_timeout_and_sharing_resumes_after_restart() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let mut procs = Vec::new();
    for _ in 0..4 {
        procs.push(process(&url, "fault").await);
    }
    let key = procs[0].store.key("api");
    for p in &procs {
        let (r, _) = p
            .one(&key, PACE, Duration::from_secs(1))
            .await
            .expect("answers");
        assert_eq!(r, Reservation::Go);
    }
    server.kill();
    let killed = Instant::now();
    // Each process keeps asking; within the per-call timeout (50 ms) plus
    // scheduling, all answer Local, and none ever blocks.
    for p in &procs {
        let mut local_at = None;
        while killed.elapsed() < Duration::from_secs(1) {
            let asked = Instant::now();
            let r = p.one(&key, PACE, Duration::from_millis(200)).await;
            assert!(
                asked.elapsed() < Duration::from_millis(250),
                "a wait went unbounded"
            );
            if let Some((Reservation::Local, at)) = r {
                local_at = Some(at);
                break;
            }
        }
        let at = local_at.expect("Local after Redis died");
        assert!(
            at - killed < Duration::from_millis(300),
            "Local only after {:?}",
            at - killed
        );
        assert!(!p.store.is_sharing());
    }
    server.restart();
    // After the back-off (50 ms, doubling to 200 ms), a probe finds Redis and
    // the processes share again.
    for p in &procs {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            assert!(Instant::now() < deadline, "sharing did not resume");
            if let Some((Reservation::Go, _)) = p.one(&key, PACE, Duration::from_millis(100)).await
            {
                if p.store.is_sharing() {
                    break;
                }
            }
            sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_hold_published_by_one_process_holds_all_and_measures_of_one_throttle_are_averaged() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let (a, b) = (process(&url, "hold").await, process(&url, "hold").await);
    let key = a.store.key("api");
    let until = Instant::now() + Duration::from_millis(400);
    a.store.publish_hold(&key, until);
    let set = Instant::now();
    a.store.publish_rate(&key, Offer::measure(5.0, 5.0, 4.5));
    b.store.publish_rate(&key, Offer::measure(8.0, 8.0, 4.5));
    // B learns the hold by reading it back (in the background).
    let deadline = Instant::now() + Duration::from_secs(1);
    let seen = loop {
        if let Some(h) = b.store.hold(&key, Instant::now()) {
            break h;
        }
        assert!(Instant::now() < deadline, "the hold never reached B");
        sleep(Duration::from_millis(10)).await;
    };
    assert!(seen >= until - Duration::from_millis(30) && seen <= until + Duration::from_millis(30));
    assert!(
        matches!(b.store.reserve(&key, "limit", 1, PACE, Instant::now()), Reservation::At(t) if t == seen)
    );
    b.read_back(&key).await;
    // Two processes' measures of one throttle (offered within 250 ms of
    // each other): their mean stands (read at an instant before it was
    // set: its base, not what it has climbed to since).
    let rate = b.store.rate(&key, set).unwrap();
    assert!((rate - 6.5).abs() < 0.01, "{rate}");
}

/// The fleet's rate is not a number fixed for 30 s: every process reads
/// the same record (the rate a measure set, the measure, and when) and
/// climbs from it as a learner climbs after a measure, so a fleet paced at
/// one low measure probes upward together instead of staying pinned there.
/// A later offer (another throttle) wins only below what the standing rate
/// has climbed to.
#[tokio::test]
async fn the_fleets_rate_climbs_from_the_lowest_measure_every_process_alike() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let (a, b) = (process(&url, "climb").await, process(&url, "climb").await);
    let key = a.store.key("api");
    // The record's rate at an instant before it was set is its base: what
    // the offer set, whatever time the read-backs took.
    let base = |p: &Process, at: Instant| p.store.rate(&key, at).unwrap();
    let near = |x: f64, y: f64| (x - y).abs() < 0.1;
    let set = Instant::now();
    a.store
        .publish_rate(&key, Offer::measure(100.0, 103.0, 4.5));
    a.read_back(&key).await;
    sleep(Duration::from_millis(200)).await;
    // Not below what the standing rate has climbed to: ignored.
    b.store
        .publish_rate(&key, Offer::measure(104.0, 107.0, 4.5));
    b.read_back(&key).await;
    for p in [&a, &b] {
        assert!(near(base(p, set), 100.0), "{}", base(p, set));
        // Back at the measure in 1.4 s, then faster and faster: ten seconds
        // on, CUBIC (τ 4.5 s) is at 8 × the measure.
        let later = base(p, set + Duration::from_secs(10));
        assert!(later > 600.0 && later < 1100.0, "{later}");
    }
    // A lower measure (a throttle when the climb went past the server's
    // rate) sets the rate again, from now.
    sleep(Duration::from_millis(200)).await;
    let set = Instant::now();
    b.store.publish_rate(&key, Offer::measure(90.0, 93.0, 4.5));
    a.read_back(&key).await;
    assert!(near(base(&a, set), 90.0), "{}", base(&a, set));
    // A throttle that measured nothing right after (a request in flight
    // when the rate was set) is no news: its cut is ignored…
    a.store.publish_rate(&key, Offer::cut(90.0));
    b.read_back(&key).await;
    assert!(near(base(&b, set), 90.0), "{}", base(&b, set));
    // …but one after that throttle's episode says the rate is still too
    // high: the fleet's rate is cut by 30 %.
    sleep(Duration::from_millis(150)).await;
    let cut = Instant::now();
    a.store.publish_rate(&key, Offer::cut(90.0));
    b.read_back(&key).await;
    assert!(near(base(&b, cut), 63.0), "{}", base(&b, cut));
}

/// While Redis does not answer, no process's throttle can cut the fleet's
/// rate, so it stops climbing where it was when Redis last answered: each
/// process keeps to its share of that, not of a rate climbing unchecked.
#[tokio::test]
async fn the_fleets_rate_stops_climbing_while_redis_is_down() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let a = process(&url, "frozen").await;
    let key = a.store.key("api");
    a.store
        .publish_rate(&key, Offer::measure(100.0, 103.0, 4.5));
    a.read_back(&key).await;
    let later = |p: &Process| p.store.rate(&key, Instant::now() + Duration::from_secs(10));
    assert!(later(&a).unwrap() > 600.0, "climbs while Redis answers");
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.store.is_sharing() {
        assert!(Instant::now() < deadline, "Redis down never noticed");
        let _ = a.store.hold(&key, Instant::now());
        sleep(Duration::from_millis(20)).await;
    }
    let frozen = later(&a).unwrap();
    assert!((100.0..104.0).contains(&frozen), "{frozen}");
}

#[tokio::test]
async fn prefixes_keep_two_applications_apart() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let slow = Pace {
        rate: 10.0,
        burst: 2.0,
    };
    let (a, a2, b) = (
        process(&url, "app-a").await,
        process(&url, "app-a").await,
        process(&url, "app-b").await,
    );
    assert_ne!(a.store.key("api"), b.store.key("api"));
    // App A spends its burst…
    for _ in 0..2 {
        let r = a
            .one(&a.store.key("api"), slow, Duration::from_secs(1))
            .await;
        assert_eq!(r.map(|r| r.0), Some(Reservation::Go));
    }
    // …so another process of app A must wait its turn…
    let t = Instant::now();
    a2.one(&a2.store.key("api"), slow, Duration::from_secs(2))
        .await
        .expect("goes");
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "A's second process did not wait"
    );
    // …while app B, on the same name, goes at once.
    let t = Instant::now();
    let r = b
        .one(&b.store.key("api"), slow, Duration::from_secs(1))
        .await;
    assert_eq!(r.map(|r| r.0), Some(Reservation::Go));
    assert!(
        t.elapsed() < Duration::from_millis(50),
        "app B waited for app A"
    );
}

#[tokio::test]
async fn a_password_url_works_and_the_password_is_never_shown() {
    let Some(mut server) = RedisServer::start_with_password("s3cret-pw") else {
        return;
    };
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let store = RedisStore::connect(&server.url())
        .await
        .expect("password accepted");
    let shown = format!("{store:?}");
    assert!(
        shown.contains(":***@127.0.0.1") && !shown.contains("s3cret-pw"),
        "{shown}"
    );
    let wrong = server.url().replace("s3cret-pw", "wrong-pw");
    let err = RedisStore::connect(&wrong)
        .await
        .expect_err("bad password refused");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("wrong-pw") && text.contains("***"), "{text}");
    }
    // A failure is logged once, without the password.
    let p = Process::new(&store);
    let key = p.store.key("api");
    p.one(&key, PACE, Duration::from_secs(1))
        .await
        .expect("goes");
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(1);
    while p.store.is_sharing() && Instant::now() < deadline {
        let _ = p.store.reserve(&key, "limit", 1, PACE, Instant::now());
        sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..20 {
        let _ = p.store.reserve(&key, "limit", 1, PACE, Instant::now());
    }
    let text = logs.text();
    assert_eq!(text.matches("Redis unavailable").count(), 1, "{text}");
    assert!(
        text.contains("127.0.0.1") && !text.contains("s3cret-pw"),
        "{text}"
    );
}

#[tokio::test]
async fn a_process_counts_what_the_fleet_accepted_since_it_started_not_before() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    // A replica that ran before (or before a restart) left its count in
    // Redis: 500 accepted answers.
    let earlier = process(&url, "origin").await;
    let key = earlier.store.key("api");
    for _ in 0..500 {
        earlier.store.count_accepted(&key);
    }
    earlier.read_back(&key).await;
    // A new replica starts: its first read-back finds 500 it did not see.
    let later = process(&url, "origin").await;
    for _ in 0..3 {
        later.store.count_accepted(&key);
    }
    later.read_back(&key).await;
    assert_eq!(
        later.store.accepted(&key),
        3,
        "what earlier processes counted is not the new one's to measure"
    );
    // From then on it counts the fleet's answers, the others' included.
    for _ in 0..7 {
        earlier.store.count_accepted(&key);
    }
    earlier.read_back(&key).await;
    later.read_back(&key).await;
    assert_eq!(later.store.accepted(&key), 10);
}

#[tokio::test]
async fn the_fleet_count_goes_on_across_a_redis_restart_in_a_new_era() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let a = process(&url, "restart").await;
    let b = process(&url, "restart").await;
    let key = a.store.key("api");
    for _ in 0..5 {
        a.store.count_accepted(&key);
    }
    a.read_back(&key).await;
    for _ in 0..3 {
        b.store.count_accepted(&key);
    }
    b.read_back(&key).await;
    a.read_back(&key).await;
    assert_eq!(a.store.accepted(&key), 8);
    let before = a.store.count_era(&key).expect("Redis answers");
    // Redis restarts without its data: the count is gone.
    server.restart();
    for p in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            assert!(Instant::now() < deadline, "sharing did not resume");
            p.read_back(&key).await;
            if p.store.is_sharing() && p.store.count_era(&key).is_some() {
                break;
            }
        }
    }
    // Counting begins again in Redis; each process's count goes on from
    // where it was, in an era that the one before cannot be subtracted from.
    for _ in 0..4 {
        b.store.count_accepted(&key);
    }
    b.read_back(&key).await;
    a.read_back(&key).await;
    assert_eq!(a.store.accepted(&key), 12, "the others' new answers count");
    // The second process began after the first's 5: 3 before, 4 after.
    assert_eq!(b.store.accepted(&key), 7);
    let after = a.store.count_era(&key).expect("Redis answers");
    assert_ne!(after, before, "a count across the restart is no measure");
}

#[tokio::test]
async fn with_redis_down_each_process_keeps_to_its_share_of_the_pace() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let a = process(&url, "share").await;
    let b = process(&url, "share").await;
    let key = a.store.key("api");
    // For a little over a second (the shortest stretch a share is measured
    // over), the first process gets three answers for every one the
    // second gets.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1200) {
        for _ in 0..3 {
            a.store.count_accepted(&key);
        }
        b.store.count_accepted(&key);
        b.read_back(&key).await;
        a.read_back(&key).await;
    }
    server.kill();
    let pace = Pace {
        rate: 100.0,
        burst: 1.0,
    };
    // Each finds Redis gone, then keeps to its share: 75/s and 25/s
    // (the others' counts reach each process a little late, so roughly).
    for (p, share) in [(&a, 0.75), (&b, 0.25)] {
        let deadline = Instant::now() + Duration::from_secs(1);
        while p.store.is_sharing() {
            assert!(Instant::now() < deadline, "Redis still answers");
            let _ = p.one(&key, pace, Duration::from_millis(100)).await;
        }
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut t = t0;
        for _ in 0..20 {
            loop {
                match p.store.reserve(&key, "limit", 1, pace, t) {
                    Reservation::At(at) => {
                        assert!(at > t, "a time to come");
                        t = at;
                    }
                    Reservation::Local => break,
                    other => panic!("with Redis down: {other:?}"),
                }
            }
        }
        let rate = 19.0 / (t - t0).as_secs_f64();
        eprintln!("share {share}: {rate:.1}/s of 100/s");
        assert!(
            (rate / 100.0 - share).abs() < 0.1,
            "{rate:.1}/s: a share of {share} of 100/s"
        );
    }
}

/// A gate measuring the server's rate right after a throttle writes each
/// accepted answer at once: another process reads it back with its next
/// call, rather than after the writer's own next sync. Plain counts wait
/// for that sync. However many answers come, the prompt writes go at most
/// one per 10 ms; those counted while a write was on its way go with the
/// next call.
#[tokio::test]
async fn a_prompt_count_reaches_the_fleet_at_once_and_its_calls_stay_bounded() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let a = process(&url, "prompt").await;
    let b = process(&url, "prompt").await;
    let key = a.store.key("api");
    a.read_back(&key).await;
    b.read_back(&key).await;
    for _ in 0..5 {
        a.store.count_accepted(&key);
    }
    b.read_back(&key).await;
    assert_eq!(
        b.store.accepted(&key),
        0,
        "a plain count waits for its writer's next sync"
    );
    a.store.count_accepted_promptly(&key);
    b.read_back(&key).await;
    assert_eq!(
        b.store.accepted(&key),
        6,
        "a prompt count is written at once, with what was counted before it"
    );

    let calls = a.store.redis_calls();
    let start = Instant::now();
    for _ in 0..50 {
        for _ in 0..40 {
            a.store.count_accepted_promptly(&key);
        }
        sleep(Duration::from_millis(2)).await;
    }
    // The last write goes within 10 ms of the one before it.
    sleep(Duration::from_millis(60)).await;
    let elapsed = start.elapsed().as_millis() as u64;
    let made = a.store.redis_calls() - calls;
    assert!(
        (2..=elapsed / 10 + 2).contains(&made),
        "{made} calls to write 2,000 answers in {elapsed} ms"
    );
    let written = a.store.redis_calls();
    a.read_back(&key).await;
    assert!(a.store.redis_calls() > written);
    b.read_back(&key).await;
    assert_eq!(b.store.accepted(&key), 2_006, "every answer is written");
}
