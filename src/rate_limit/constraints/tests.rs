use std::time::Duration;

use super::*;
use crate::headers::stable_hash;
use crate::rate_limit::limit::Limit;

const KNOBS: Knobs = Knobs {
    slow_start: true,
    max_hold: Duration::from_secs(300),
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

use crate::rate_limit::response::read_pairs as outcome;

#[cfg(feature = "redis")]
#[path = "../../../tests/support/redis.rs"]
mod redis_server;

fn bare(throttled: bool, hold: Option<u64>) -> Outcome {
    Outcome {
        throttled,
        accepted: !throttled,
        hold: hold.map(secs),
        limits: None,
    }
}

fn need() -> Need {
    Need::default()
}

fn grant(now: Instant, seq: u64) -> Grant {
    Grant::at(now, seq)
}

/// Releases one request at `now` and feeds its `outcome` back.
fn round(c: &mut Constraints, now: Instant, seq: u64, o: &Outcome) -> Option<Limited> {
    c.on_grant(now, &need());
    c.on_response(
        now,
        o,
        grant(now, seq),
        Uncounted::default(),
        seq + 1,
        KNOBS,
    )
    .0
}

fn admit(c: &mut Constraints, now: Instant, n: &Need) -> Admit {
    c.check(now, 0, n, KNOBS).admit
}

#[test]
fn a_throttle_with_a_hint_holds_the_key_capped_at_max_hold() {
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    assert_eq!(admit(&mut c, now, &need()), Admit::Now);
    let r = round(&mut c, now, 1, &bare(true, Some(100_000)));
    assert_eq!(r, Some(Limited::Held(secs(300))));
    assert_eq!(admit(&mut c, now, &need()), Admit::At(now + secs(300)));
    assert_eq!(c.hold_until(), Some(now + secs(300)));
    assert!(c.is_limited(now));
}

#[test]
fn remaining_zero_holds_until_reset_then_probes_afresh() {
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    let o = outcome(
        200,
        &[("ratelimit-remaining", "0"), ("ratelimit-reset", "7")],
    );
    assert_eq!(round(&mut c, now, 1, &o), Some(Limited::Exhausted(secs(7))));
    assert_eq!(admit(&mut c, now, &need()), Admit::At(now + secs(7)));
    let one = Uncounted {
        requests: 1,
        tokens: 0,
    };
    assert_eq!(c.estimate(now, one, &need()), now + secs(7));
    // After the reset, a fresh probe (slow start) goes, alone.
    let later = now + secs(7);
    assert_eq!(admit(&mut c, later, &need()), Admit::Now);
    assert!(matches!(
        c.check(later, 1, &need(), KNOBS).admit,
        Admit::At(_)
    ));
}

#[test]
fn throttles_of_one_episode_are_learned_from_once() {
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    c.on_grant(now, &need());
    c.on_grant(now, &need());
    let t1 = now + Duration::from_millis(100);
    let u = Uncounted::default();
    c.on_response(t1, &bare(false, None), grant(now, 1), u, 3, KNOBS);
    let first = c.on_response(t1, &bare(true, None), grant(now, 2), u, 3, KNOBS);
    assert_eq!(first.0, Some(Limited::Throttled));
    // A second in-flight request of the same episode teaches nothing new.
    let again = c.on_response(t1, &bare(true, None), grant(now, 2), u, 3, KNOBS);
    assert_eq!(again.0, None);
}

#[test]
fn a_hint_holds_without_wiping_a_long_quota_that_states_room() {
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    // GitHub: an hourly quota with plenty left…
    let quota = [
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4900"),
        ("x-ratelimit-reset", "3600"),
    ];
    round(&mut c, now, 1, &outcome(200, &quota));
    // …and a short-term limiter's 429 with a 1 s hint.
    let mut throttle = quota.to_vec();
    throttle.push(("retry-after", "1"));
    round(&mut c, now, 2, &outcome(429, &throttle));
    assert_eq!(admit(&mut c, now, &need()), Admit::At(now + secs(1)));
    // After the hint, the hour's quota still has room: requests go.
    let later = now + secs(1);
    assert_eq!(admit(&mut c, later, &need()), Admit::Now);
}

#[test]
fn configured_limits_bind_from_the_first_request_without_slow_start() {
    let now = Instant::now();
    let limits = [Limit::requests(100, secs(1)).burst(10)];
    let mut c = Constraints::new(now, KNOBS, &limits);
    for i in 0..10 {
        assert_eq!(
            c.check(now, i, &need(), KNOBS).admit,
            Admit::Now,
            "burst {i}"
        );
        c.on_grant(now, &need());
    }
    assert_eq!(
        c.check(now, 10, &need(), KNOBS).admit,
        Admit::At(now + Duration::from_micros(10_001))
    );
}

#[test]
fn a_tokens_limit_counts_the_cost_and_a_requests_limit_counts_one() {
    let now = Instant::now();
    let limits = [
        Limit::requests(1_000, secs(1)),
        Limit::tokens(1_000, secs(1)),
    ];
    let mut c = Constraints::new(now, KNOBS, &limits);
    let big = Need {
        cost: 600,
        ..need()
    };
    assert_eq!(admit(&mut c, now, &big), Admit::Now);
    c.on_grant(now, &big);
    // 400 tokens left: the next 600 waits 200 ms; a free request goes.
    assert_eq!(
        admit(&mut c, now, &big),
        Admit::At(now + Duration::from_micros(200_001))
    );
    assert_eq!(admit(&mut c, now, &need()), Admit::Now);
}

#[test]
fn the_tightest_of_several_stated_policies_binds() {
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    let o = outcome(
        200,
        &[
            ("ratelimit-policy", r#""burst";q=10;w=1, "long";q=60;w=30"#),
            ("ratelimit", r#""burst";r=5;t=1, "long";r=0;t=20"#),
        ],
    );
    round(&mut c, now, 1, &o);
    // The long window is out until its reset, whatever the short one says.
    assert_eq!(admit(&mut c, now, &need()), Admit::At(now + secs(20)));
}

#[test]
fn a_quota_contradicted_by_throttles_loses_trust_until_it_says_it_is_out() {
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    let liar = [
        ("ratelimit-policy", r#""p";q=1000;w=1"#),
        ("ratelimit", r#""p";r=900;t=1"#),
    ];
    round(&mut c, now, 1, &outcome(200, &liar));
    let mut lost = false;
    for seq in 2..6 {
        lost |= round(&mut c, now, seq, &outcome(429, &liar)) == Some(Limited::Distrusted);
    }
    assert!(lost, "three contradictions make the quota lose trust");
    assert!(
        !c.quota_paces(),
        "its rate no longer stands in for learning"
    );
    // Saying it is out agrees with a throttle: trusted again.
    let out = [
        ("ratelimit-policy", r#""p";q=1000;w=1"#),
        ("ratelimit", r#""p";r=0;t=1"#),
    ];
    round(&mut c, now, 7, &outcome(429, &out));
    assert!(c.quota_paces());
}

#[test]
fn a_resources_limits_and_holds_bind_only_its_own_requests() {
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    let search = Need {
        resource: Some(stable_hash(&[b"search"])),
        ..need()
    };
    let core = Need {
        resource: Some(stable_hash(&[b"core"])),
        ..need()
    };
    let o = outcome(
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "40"),
            ("x-ratelimit-resource", "search"),
            ("retry-after", "40"),
        ],
    );
    c.on_grant(now, &search);
    let g = Grant {
        need: search,
        ..grant(now, 1)
    };
    let (_, named) = c.on_response(now, &o, g, Uncounted::default(), 2, KNOBS);
    assert_eq!(named, search.resource);
    let v = c.check(now, 0, &search, KNOBS);
    assert_eq!(v.admit, Admit::At(now + secs(40)));
    assert!(v.scoped, "only search is blocked");
    assert_eq!(admit(&mut c, now, &core), Admit::Now);
    // A request of no known resource is bound by the host's limits alone.
    assert_eq!(admit(&mut c, now, &need()), Admit::Now);
}

#[test]
fn statements_only_lower_what_a_quota_said_not_what_another_said() {
    // RateLimit of the draft read apart from OpenAI's tokens.
    let now = Instant::now();
    let mut c = Constraints::new(now, KNOBS, &[]);
    let o = outcome(
        200,
        &[
            ("x-ratelimit-limit-requests", "200"),
            ("x-ratelimit-remaining-requests", "199"),
            ("x-ratelimit-reset-requests", "5ms"),
            ("x-ratelimit-limit-tokens", "2000"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-tokens", "95ms"),
        ],
    );
    round(&mut c, now, 1, &o);
    let cost = Need {
        cost: 300,
        ..need()
    };
    // 200 tokens short at 20,000/s: 10 ms.
    assert_eq!(
        admit(&mut c, now, &cost),
        Admit::At(now + Duration::from_millis(10))
    );
    assert_eq!(admit(&mut c, now, &need()), Admit::Now);
}

/// A fresh key accepts 10 requests released at `now`, then a throttle at
/// +10 ms says `Retry-After: hint` seconds.
fn burst_then_hint(now: Instant, hint: u64) -> (Constraints, Instant, Option<Limited>) {
    burst_then_hint_on(Constraints::new(now, KNOBS, &[]), now, hint)
}

/// [`burst_then_hint`] on the given constraints.
fn burst_then_hint_on(
    mut c: Constraints,
    now: Instant,
    hint: u64,
) -> (Constraints, Instant, Option<Limited>) {
    let u = Uncounted::default();
    for _ in 1..=11 {
        c.on_grant(now, &need());
    }
    let t1 = now + Duration::from_millis(10);
    for seq in 1..=10 {
        c.on_response(t1, &bare(false, None), grant(now, seq), u, 12, KNOBS);
    }
    let r = c.on_response(t1, &bare(true, Some(hint)), grant(now, 11), u, 12, KNOBS);
    (c, t1, r.0)
}

fn burst_then_short_hint(now: Instant) -> (Constraints, Instant) {
    let (c, t1, limited) = burst_then_hint(now, 1);
    assert_eq!(limited, Some(Limited::Throttled), "probed, not held");
    (c, t1)
}

#[test]
fn a_short_hint_is_probed_and_an_accepted_probe_frees_the_key() {
    let now = Instant::now();
    let (mut c, t1) = burst_then_short_hint(now);
    // One interval of the cautious guess (10 per 1.01 s), at most a tenth
    // of the hint: 100 ms, not the second.
    let probe_at = t1 + Duration::from_millis(100);
    assert_eq!(admit(&mut c, t1, &need()), Admit::At(probe_at));
    assert!(!c.is_limited(t1));
    assert_eq!(admit(&mut c, probe_at, &need()), Admit::Now);
    c.on_grant(probe_at, &need());
    // The others wait for the probe's answer (at most until the hint ends).
    assert_eq!(admit(&mut c, probe_at, &need()), Admit::At(t1 + secs(1)));
    let back = probe_at + Duration::from_millis(5);
    let u = Uncounted::default();
    c.on_response(back, &bare(false, None), grant(probe_at, 12), u, 13, KNOBS);
    match admit(&mut c, back, &need()) {
        Admit::Now => {}
        Admit::At(t) => assert!(t < t1 + Duration::from_millis(300), "{t:?}"),
        Admit::OnResponse => panic!("waits on a response"),
    }
}

/// The probe sent at `probe_at` (release 12) is refused 5 ms later with
/// `Retry-After: 1`: that instant, and what the key became.
fn refuse_probe(c: &mut Constraints, probe_at: Instant) -> (Instant, Option<Limited>) {
    let back = probe_at + Duration::from_millis(5);
    let o = bare(true, Some(1));
    let u = Uncounted::default();
    let r = c.on_response(back, &o, grant(probe_at, 12), u, 13, KNOBS);
    (back, r.0)
}

#[test]
fn a_refused_probe_holds_the_key_until_the_hint_ends() {
    let now = Instant::now();
    let (mut c, t1) = burst_then_short_hint(now);
    let probe_at = t1 + Duration::from_millis(100);
    assert_eq!(admit(&mut c, probe_at, &need()), Admit::Now);
    c.on_grant(probe_at, &need());
    let (back, r) = refuse_probe(&mut c, probe_at);
    assert!(matches!(r, Some(Limited::Held(_))), "{r:?}");
    // Held as any hint holds: for the probe's own hint.
    assert_eq!(admit(&mut c, back, &need()), Admit::At(back + secs(1)));
    assert!(c.is_limited(back));
}

#[test]
fn a_long_hint_is_held_for_whole_even_on_a_learned_key() {
    let now = Instant::now();
    let (mut c, t1, limited) = burst_then_hint(now, 60);
    assert_eq!(limited, Some(Limited::Held(secs(60))));
    assert_eq!(admit(&mut c, t1, &need()), Admit::At(t1 + secs(60)));
}

#[cfg(feature = "redis")]
mod store;
