//! Unit tests for the schedules (property and statistical tests live here too).
//!
//! Three kinds of test:
//! * properties (proptest) that every schedule is total — no panic, no
//!   overflow, never above its cap — for any retry up to `u32::MAX`, any
//!   `Duration` and hostile factors, and that the growing ones never shrink;
//! * statistical checks of the randomised schedules on a seeded generator;
//! * the source documents' own examples (seeds 000, 001, 002) and overflow
//!   regressions.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any `Duration`, with the edges (zero, one nanosecond, `Duration::MAX`)
/// drawn often and realistic millisecond values alongside huge ones.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::from_nanos(1)),
        (0u64..=3_600_000).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_nanos),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

/// Any retry number, with the overflow edges (63, 64, `u32::MAX`) drawn often.
fn any_retry() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..=100,
        60u32..=70,
        any::<u32>(),
        Just(u32::MAX),
        Just(u32::MAX - 1),
    ]
}

/// Growth factors and jitter bounds, hostile ones included.
fn any_factor() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::MAX),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(1.0),
        Just(1.0 + f64::EPSILON),
        -4.0f64..4.0,
        any::<f64>(),
    ]
}

fn any_jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::GRPC),
        Just(Jitter::Proportional {
            low: 0.5,
            high: 1.5
        }),
        (any_factor(), any_factor()).prop_map(|(low, high)| Jitter::Proportional { low, high }),
        any_duration().prop_map(Jitter::Additive),
    ]
}

// ---------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------

/// The `Schedule` contract at one point: no panic, the base delay and the
/// jittered delay both at most `max_delay()`.
fn check_capped<S: Schedule>(
    schedule: &S,
    retry: u32,
    prev: Duration,
    jitter: Jitter,
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut rng = BackoffRng::seeded(seed);
    let cap = schedule.max_delay();
    if let Some(d) = schedule.delay(retry, prev, &mut rng) {
        prop_assert!(d <= cap, "retry {retry}: delay {d:?} above cap {cap:?}");
        let jittered = jitter.apply(d, cap, &mut rng);
        prop_assert!(
            jittered <= cap,
            "retry {retry}: {jitter:?} gave {jittered:?} above cap {cap:?}"
        );
    }
    Ok(())
}

/// A deterministic schedule never shrinks: `delay(a) ≤ delay(a + 1)` and
/// `delay(min(a, b)) ≤ delay(max(a, b))`.
fn check_monotone<S: Schedule>(
    schedule: &S,
    a: u32,
    b: u32,
    prev: Duration,
) -> Result<(), TestCaseError> {
    let mut rng = BackoffRng::seeded(0);
    let mut at = |retry: u32| schedule.delay(retry, prev, &mut rng);
    let (lo, hi) = (a.min(b), a.max(b));
    prop_assert!(
        at(lo) <= at(hi),
        "delay({lo}) = {:?} > delay({hi}) = {:?}",
        at(lo),
        at(hi)
    );
    if let Some(next) = a.checked_add(1) {
        prop_assert!(
            at(a) <= at(next),
            "delay({a}) = {:?} > delay({next}) = {:?}",
            at(a),
            at(next)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn constant_never_exceeds_cap_for_any_input(
        delay in any_duration(), retry in any_retry(), prev in any_duration(),
        jitter in any_jitter(), seed in any::<u64>(),
    ) {
        let s = Constant::new(delay);
        check_capped(&s, retry, prev, jitter, seed)?;
        prop_assert_eq!(s.delay(retry, prev, &mut BackoffRng::seeded(seed)), Some(delay));
    }

    #[test]
    fn linear_never_exceeds_cap_for_any_retry(
        step in any_duration(), initial in any_duration(), cap in any_duration(),
        retry in any_retry(), prev in any_duration(), jitter in any_jitter(), seed in any::<u64>(),
    ) {
        check_capped(&Linear::new(step, cap), retry, prev, jitter, seed)?;
        check_capped(&Linear::new(step, cap).initial(initial), retry, prev, jitter, seed)?;
    }

    #[test]
    fn linear_is_monotone_in_retry(
        step in any_duration(), initial in any_duration(), cap in any_duration(),
        a in any_retry(), b in any_retry(), prev in any_duration(),
    ) {
        check_monotone(&Linear::new(step, cap), a, b, prev)?;
        check_monotone(&Linear::new(step, cap).initial(initial), a, b, prev)?;
    }

    #[test]
    fn exponential_never_exceeds_cap_for_any_retry(
        base in any_duration(), cap in any_duration(), factor in any_factor(),
        retry in any_retry(), prev in any_duration(), jitter in any_jitter(), seed in any::<u64>(),
    ) {
        check_capped(&Exponential::new(base, cap), retry, prev, jitter, seed)?;
        check_capped(&Exponential::new(base, cap).factor(factor), retry, prev, jitter, seed)?;
    }

    #[test]
    fn exponential_is_monotone_in_retry(
        base in any_duration(), cap in any_duration(), factor in any_factor(),
        a in any_retry(), b in any_retry(), prev in any_duration(),
    ) {
        check_monotone(&Exponential::new(base, cap), a, b, prev)?;
        check_monotone(&Exponential::new(base, cap).factor(factor), a, b, prev)?;
    }

    #[test]
    fn fibonacci_never_exceeds_cap_for_any_retry(
        base in any_duration(), cap in any_duration(),
        retry in any_retry(), prev in any_duration(), jitter in any_jitter(), seed in any::<u64>(),
    ) {
        check_capped(&Fibonacci::new(base, cap), retry, prev, jitter, seed)?;
    }

    #[test]
    fn fibonacci_is_monotone_in_retry(
        base in any_duration(), cap in any_duration(),
        a in any_retry(), b in any_retry(), prev in any_duration(),
    ) {
        check_monotone(&Fibonacci::new(base, cap), a, b, prev)?;
    }

    #[test]
    fn celery_never_exceeds_maximum_with_or_without_full_jitter(
        factor in prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()],
        maximum in prop_oneof![Just(0u64), Just(600), Just(u64::MAX), any::<u64>()],
        full_jitter in any::<bool>(),
        retry in any_retry(), prev in any_duration(), jitter in any_jitter(), seed in any::<u64>(),
    ) {
        let s = Celery::new(factor, maximum).full_jitter(full_jitter);
        check_capped(&s, retry, prev, jitter, seed)?;
        let d = s.delay(retry, prev, &mut BackoffRng::seeded(seed)).expect("Celery never gives up");
        prop_assert_eq!(d.subsec_nanos(), 0, "Celery counts whole seconds");
    }

    #[test]
    fn celery_without_jitter_is_monotone_in_retry(
        factor in prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()],
        maximum in prop_oneof![Just(0u64), Just(600), Just(u64::MAX), any::<u64>()],
        a in any_retry(), b in any_retry(), prev in any_duration(),
    ) {
        check_monotone(&Celery::new(factor, maximum), a, b, prev)?;
    }

    #[test]
    fn decorrelated_stays_between_base_and_three_times_prev(
        base in any_duration(), cap in any_duration(),
        retry in any_retry(), prev in any_duration(), jitter in any_jitter(), seed in any::<u64>(),
    ) {
        let s = Decorrelated::new(base, cap);
        check_capped(&s, retry, prev, jitter, seed)?;
        let d = s.delay(retry, prev, &mut BackoffRng::seeded(seed)).expect("never gives up");
        // Before the first retry prev is zero: the draw is from [base, 3·base].
        let low = base.min(cap);
        let high = prev.max(low).checked_mul(3).unwrap_or(Duration::MAX).min(cap);
        prop_assert!(low <= d && d <= high, "{d:?} outside [{low:?}, {high:?}]");
    }

    #[test]
    fn ethernet_never_exceeds_cap_for_any_slot_or_limits(
        slot in any_duration(), max_exponent in prop_oneof![0u32..=16, Just(63), any::<u32>()],
        attempt_limit in prop_oneof![0u32..=20, any::<u32>()],
        retry in any_retry(), prev in any_duration(), jitter in any_jitter(), seed in any::<u64>(),
    ) {
        let s = Ethernet::new(slot).max_exponent(max_exponent).attempt_limit(attempt_limit);
        check_capped(&s, retry, prev, jitter, seed)?;
        check_capped(&Ethernet::new(slot), retry, prev, jitter, seed)?;
        let given_up = s.delay(retry, prev, &mut BackoffRng::seeded(seed)).is_none();
        prop_assert_eq!(given_up, retry.saturating_add(1) >= attempt_limit);
    }

    /// Jitter stays inside `bounds` of the (capped) delay it randomises and
    /// never above the cap. `apply` jitters the delay after capping it, so the
    /// bounds are those of `delay.min(cap)`; schedules hand it capped delays.
    #[test]
    fn jitter_stays_within_its_bounds_and_the_cap(
        jitter in any_jitter(), delay in any_duration(), cap in any_duration(), seed in any::<u64>(),
    ) {
        let mut rng = BackoffRng::seeded(seed);
        let (low, high) = jitter.bounds(delay.min(cap));
        prop_assert!(low <= high, "{jitter:?}: bounds {low:?} > {high:?}");
        for _ in 0..16 {
            let d = jitter.apply(delay, cap, &mut rng);
            prop_assert!(d <= cap, "{jitter:?}: {d:?} above cap {cap:?}");
            prop_assert!(
                low.min(cap) <= d && d <= high.min(cap),
                "{jitter:?}: {d:?} outside [{:?}, {:?}]", low.min(cap), high.min(cap)
            );
        }
    }

    #[test]
    fn max_retries_gives_up_exactly_at_the_limit(
        limit in 0u32..64, base in any_duration(), cap in any_duration(), retry in any_retry(),
    ) {
        let s = Exponential::new(base, cap).max_retries(limit);
        prop_assert_eq!(s.clone().delays().count(), limit as usize);
        prop_assert_eq!(s.delay(retry, Duration::ZERO, &mut BackoffRng::seeded(0)).is_none(), retry >= limit);
        prop_assert_eq!(s.max_delay(), cap);
    }

    #[test]
    fn same_seed_gives_same_jittered_delays(seed in any::<u64>(), jitter in any_jitter()) {
        let run = || -> Vec<Duration> {
            Decorrelated::new(Duration::from_millis(10), secs(30))
                .delays()
                .jitter(jitter)
                .seed(seed)
                .take(20)
                .collect()
        };
        prop_assert_eq!(run(), run());
    }
}

// ---------------------------------------------------------------------------
// Statistics on a seeded generator
// ---------------------------------------------------------------------------

const DRAWS: u32 = 100_000;

/// Mean number of slots Ethernet waits after collision `c` (retry `c − 1`),
/// with a 1 ns slot so that nanoseconds count slots.
fn ethernet_mean_slots(collision: u32, seed: u64) -> (f64, u128) {
    let s = Ethernet::new(Duration::from_nanos(1));
    let mut rng = BackoffRng::seeded(seed);
    let (mut sum, mut max) = (0u128, 0u128);
    for _ in 0..DRAWS {
        let slots = s
            .delay(collision - 1, Duration::ZERO, &mut rng)
            .expect("below the attempt limit")
            .as_nanos();
        sum += slots;
        max = max.max(slots);
    }
    (sum as f64 / f64::from(DRAWS), max)
}

fn assert_within_2pct(actual: f64, expected: f64) {
    let err = (actual - expected).abs() / expected;
    assert!(
        err < 0.02,
        "mean {actual} vs expected {expected} ({:.2} %)",
        err * 100.0
    );
}

#[test]
fn ethernet_mean_slots_after_three_collisions_is_three_and_a_half() {
    // Ethernet (IEEE 802.3) binary exponential backoff: E(c) = (2^c − 1) / 2 slots; E(3) = 3.5.
    let (mean, max) = ethernet_mean_slots(3, 3);
    assert_within_2pct(mean, 3.5);
    assert_eq!(max, 7, "slots after 3 collisions are 0..=7");
}

#[test]
fn ethernet_mean_slots_after_ten_collisions_is_511_and_a_half() {
    let (mean, max) = ethernet_mean_slots(10, 10);
    assert_within_2pct(mean, 511.5);
    assert_eq!(max, 1023);
}

#[test]
fn ethernet_exponent_is_truncated_at_ten_collisions() {
    for collision in [11, 15] {
        let (mean, max) = ethernet_mean_slots(collision, u64::from(collision));
        assert_within_2pct(mean, 511.5);
        assert_eq!(max, 1023, "collision {collision}");
    }
}

#[test]
fn ethernet_gives_up_at_the_sixteenth_collision() {
    let s = Ethernet::new(Duration::from_micros(1));
    let mut rng = BackoffRng::seeded(16);
    assert!(s.delay(14, Duration::ZERO, &mut rng).is_some());
    assert_eq!(s.delay(15, Duration::ZERO, &mut rng), None);
    assert_eq!(s.delay(u32::MAX, Duration::ZERO, &mut rng), None);
    assert_eq!(s.max_delay(), Duration::from_micros(1023));
}

#[test]
fn decorrelated_draws_stay_between_base_and_three_times_prev() {
    let (base, cap) = (Duration::from_millis(100), secs(10));
    let s = Decorrelated::new(base, cap);
    let mut rng = BackoffRng::seeded(2015);
    let mut prev = Duration::ZERO;
    let (mut near_base, mut near_cap) = (0u32, 0u32);
    for retry in 0..DRAWS {
        let d = s.delay(retry, prev, &mut rng).expect("never gives up");
        let high = (prev.max(base) * 3).min(cap);
        assert!(
            base <= d && d <= high,
            "retry {retry}: {d:?} outside [{base:?}, {high:?}]"
        );
        near_base += u32::from(d < base * 2);
        near_cap += u32::from(d > cap * 9 / 10);
        prev = d;
    }
    // Decorrelated jitter wanders over the whole range rather than sticking.
    assert!(near_base > DRAWS / 100, "only {near_base} draws near base");
    assert!(near_cap > DRAWS / 100, "only {near_cap} draws near the cap");
}

// ---------------------------------------------------------------------------
// The sources' own examples: the Python AI-API retry loop, the AI-API retry
// article's client, Ethernet 802.3, Celery, APUE
// ---------------------------------------------------------------------------

#[test]
fn python_ai_api_loop_waits_two_to_the_n_plus_up_to_one_second() {
    // The Python AI-API retry loop: wait_time = 2 ** attempt + random.uniform(0, 1).
    let schedule = Exponential::new(SEC, secs(1 << 40));
    for seed in 0..200 {
        let waits: Vec<_> = schedule
            .delays()
            .jitter(Jitter::Additive(SEC))
            .seed(seed)
            .take(20)
            .collect();
        for (n, d) in waits.into_iter().enumerate() {
            let pow = secs(1 << n);
            assert!(pow <= d && d <= pow + SEC, "attempt {n}: {d:?}");
        }
    }
}

#[test]
fn ai_api_article_exponential_backoff_stays_in_jittered_range() {
    // The AI-API retry article's client: delay = base * 2**attempt * (0.5 + random()), at most max_delay,
    // with base 1 s and max 60 s. The crate jitters the capped delay (so that
    // clients spread out at the cap), which lowers the floor from 0.5 · 2^n
    // to 0.5 · min(2^n, 60) once 2^n passes the cap.
    let cap = secs(60);
    let half_to_one_and_a_half = Jitter::Proportional {
        low: 0.5,
        high: 1.5,
    };
    for seed in 0..500 {
        let waits = Exponential::new(SEC, cap)
            .delays()
            .jitter(half_to_one_and_a_half)
            .seed(seed)
            .take(10);
        for (n, d) in waits.enumerate() {
            let grown = secs(1 << n);
            let low = grown.min(cap) / 2;
            let high = (grown * 3 / 2).min(cap);
            assert!(
                low <= d && d <= high,
                "attempt {n}: {d:?} outside [{low:?}, {high:?}]"
            );
        }
    }
}

#[test]
fn ai_api_article_linear_scenarios_match() {
    // The AI-API retry article's client: delay = step * attempt, attempt from 0, at most max_delay.
    // "断网重连" (1 s, 10 s), "Redis 连接" (0.5 s, 5 s), "数据库主从切换" (2 s, 30 s).
    let reconnect: Vec<_> = Linear::new(SEC, secs(10))
        .initial(Duration::ZERO)
        .delays()
        .take(13)
        .map(|d| d.as_secs())
        .collect();
    assert_eq!(reconnect, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10]);

    let redis: Vec<_> = Linear::new(Duration::from_millis(500), secs(5))
        .initial(Duration::ZERO)
        .delays()
        .take(13)
        .map(|d| d.as_millis())
        .collect();
    assert_eq!(
        redis,
        [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5000, 5000]
    );

    let failover: Vec<_> = Linear::new(secs(2), secs(30))
        .initial(Duration::ZERO)
        .delays()
        .take(18)
        .map(|d| d.as_secs())
        .collect();
    assert_eq!(
        failover,
        [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 30, 30]
    );
}

#[test]
fn celery_factor_one_maximum_600_matches_exactly() {
    // Celery's get_exponential_backoff_interval: min(maximum, factor * 2 ** retries), full_jitter=False.
    let s = Celery::new(1, 600);
    let countdowns: Vec<_> = s.delays().take(14).map(|d| d.as_secs()).collect();
    assert_eq!(
        countdowns,
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600, 600]
    );
    let mut rng = BackoffRng::seeded(0);
    for retry in [63, 64, 1000, u32::MAX] {
        assert_eq!(s.delay(retry, Duration::ZERO, &mut rng), Some(secs(600)));
    }
}

#[test]
fn celery_full_jitter_draws_whole_seconds_up_to_countdown() {
    // Celery, full_jitter=True: countdown = random.randrange(countdown + 1), i.e. 0..=countdown.
    let s = Celery::new(1, 600).full_jitter(true);
    let mut rng = BackoffRng::seeded(1);
    for retry in 0..16u32 {
        let countdown = (1u64 << retry).min(600);
        let mut seen = vec![false; countdown as usize + 1];
        for _ in 0..2_000 {
            let d = s
                .delay(retry, Duration::ZERO, &mut rng)
                .expect("never gives up");
            assert_eq!(
                d.subsec_nanos(),
                0,
                "retry {retry}: {d:?} is not whole seconds"
            );
            assert!(
                d.as_secs() <= countdown,
                "retry {retry}: {d:?} above {countdown} s"
            );
            seen[d.as_secs() as usize] = true;
        }
        if countdown <= 16 {
            assert!(
                seen.iter().all(|&s| s),
                "retry {retry}: not every value in 0..={countdown} drawn"
            );
        }
    }
}

#[test]
fn apue_connect_retry_sleeps_one_to_128_seconds_then_gives_up() {
    // APUE §16.4 connect_retry: sleep numsec, doubling, up to MAXSLEEP = 128.
    let mut delays = Exponential::new(SEC, secs(128)).max_retries(8).delays();
    let slept: Vec<_> = delays.by_ref().map(|d| d.as_secs()).collect();
    assert_eq!(slept, [1, 2, 4, 8, 16, 32, 64, 128]);
    assert_eq!(delays.next(), None, "the iterator stays finished");
}

// ---------------------------------------------------------------------------
// Overflow regressions (tryhard#24: `Duration * 2^n` panics after ~64 retries)
// ---------------------------------------------------------------------------

#[test]
fn exponential_at_retry_64_1000_and_u32_max_equals_cap() {
    let mut rng = BackoffRng::seeded(0);
    for base in [Duration::from_nanos(1), SEC, Duration::MAX] {
        for cap in [SEC, secs(60), Duration::MAX] {
            for factor in [2.0, 3.0, f64::MAX, f64::INFINITY] {
                let s = Exponential::new(base, cap).factor(factor);
                for retry in [64, 1000, u32::MAX] {
                    assert_eq!(
                        s.delay(retry, Duration::MAX, &mut rng),
                        Some(cap),
                        "base {base:?}, cap {cap:?}, factor {factor}, retry {retry}"
                    );
                }
            }
        }
    }
}

#[test]
fn duration_max_base_saturates_at_the_cap() {
    let mut rng = BackoffRng::seeded(0);
    let m = Duration::MAX;
    for retry in [0, 1, 2, 64, u32::MAX] {
        assert_eq!(
            Exponential::new(m, secs(60)).delay(retry, m, &mut rng),
            Some(secs(60))
        );
        assert_eq!(Exponential::new(m, m).delay(retry, m, &mut rng), Some(m));
        assert_eq!(
            Exponential::new(m, m)
                .factor(f64::MAX)
                .delay(retry, m, &mut rng),
            Some(m)
        );
        assert_eq!(Linear::new(m, m).delay(retry, m, &mut rng), Some(m));
        assert_eq!(
            Linear::new(m, secs(5)).delay(retry, m, &mut rng),
            Some(secs(5))
        );
        assert_eq!(Fibonacci::new(m, m).delay(retry, m, &mut rng), Some(m));
        assert_eq!(
            Fibonacci::new(m, secs(10)).delay(retry, m, &mut rng),
            Some(secs(10))
        );
        assert_eq!(Decorrelated::new(m, m).delay(retry, m, &mut rng), Some(m));
        assert_eq!(Constant::new(m).delay(retry, m, &mut rng), Some(m));
        assert_eq!(
            Celery::new(u64::MAX, u64::MAX).delay(retry, m, &mut rng),
            Some(secs(u64::MAX))
        );
    }
    let ethernet = Ethernet::new(m).max_exponent(63).attempt_limit(u32::MAX);
    assert_eq!(ethernet.max_delay(), m);
    assert!(ethernet.delay(u32::MAX - 2, m, &mut rng).is_some());
}

#[test]
fn zero_base_stays_zero_for_every_retry() {
    let mut rng = BackoffRng::seeded(0);
    let z = Duration::ZERO;
    for retry in [0, 1, 64, 93, 1000, u32::MAX] {
        assert_eq!(
            Exponential::new(z, secs(60)).delay(retry, z, &mut rng),
            Some(z)
        );
        assert_eq!(
            Exponential::new(z, secs(60))
                .factor(f64::INFINITY)
                .delay(retry, z, &mut rng),
            Some(z)
        );
        assert_eq!(
            Fibonacci::new(z, secs(60)).delay(retry, z, &mut rng),
            Some(z)
        );
        assert_eq!(Linear::new(z, secs(60)).delay(retry, z, &mut rng), Some(z));
        assert_eq!(Celery::new(0, 600).delay(retry, z, &mut rng), Some(z));
    }
}

#[test]
fn exponential_with_factor_one_never_drops_below_base() {
    // Regression: a factor of 1 (or NaN / negative, which clamp to 1) went
    // through f64, which cannot hold 10^9 s and 1 ns at once, so retry 1
    // waited 1 ns less than retry 0.
    let base = Duration::new(1_000_000_000, 1);
    let mut rng = BackoffRng::seeded(0);
    for factor in [1.0, f64::NAN, -2.0, 1.0 + f64::EPSILON] {
        let s = Exponential::new(base, Duration::MAX).factor(factor);
        for retry in [0, 1, 2, 1000, u32::MAX] {
            let d = s
                .delay(retry, Duration::ZERO, &mut rng)
                .expect("never gives up");
            assert!(
                d >= base,
                "factor {factor}, retry {retry}: {d:?} below base {base:?}"
            );
        }
    }
}

#[test]
fn fibonacci_saturates_past_the_largest_u64_term() {
    let mut rng = BackoffRng::seeded(0);
    let s = Fibonacci::new(Duration::from_nanos(1), Duration::MAX);
    let mut prev = Duration::ZERO;
    for retry in 80..=100 {
        let d = s.delay(retry, prev, &mut rng).expect("never gives up");
        assert!(d >= prev, "retry {retry}: {d:?} < {prev:?}");
        prev = d;
    }
    assert_eq!(s.delay(u32::MAX, prev, &mut rng), Some(Duration::MAX));
}

#[test]
fn constant_delay_at_u32_max_is_the_constant() {
    let mut rng = BackoffRng::seeded(0);
    let s = Constant::new(secs(2));
    assert_eq!(s.delay(u32::MAX, Duration::MAX, &mut rng), Some(secs(2)));
    assert_eq!(
        s.delay(u32::MAX - 1, Duration::ZERO, &mut rng),
        Some(secs(2))
    );
}

#[test]
fn delays_iterator_ends_after_retry_u32_max_instead_of_wrapping() {
    // Start the iterator two retries before the end of `u32` rather than
    // stepping four billion times to get there.
    let delays = Delays {
        schedule: Constant::new(secs(2)),
        jitter: Jitter::Full,
        rng: BackoffRng::seeded(0),
        retry: u32::MAX - 1,
        prev: Duration::ZERO,
        done: false,
    };
    let waits: Vec<_> = delays.collect();
    assert_eq!(
        waits.len(),
        2,
        "retries u32::MAX − 1 and u32::MAX, then the end"
    );
    assert!(waits.iter().all(|d| *d <= secs(2)));
}
