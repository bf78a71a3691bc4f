use super::*;
use crate::rate_limit::model::Need;

/// A grant whose batch is its sequence number (one request per batch).
fn g(now: Instant, seq: u64) -> Grant {
    Grant {
        released_at: now,
        seq,
        generation: seq,
        need: Need::default(),
    }
}

fn statement_limit(remaining: u64, reset: u64, limit: u64) -> Statement {
    Statement {
        remaining,
        reset: Duration::from_secs(reset),
        limit: Some(limit),
        window: None,
        min_rate: MIN_RATE,
        continuous: false,
        short: reset <= 1,
    }
}

fn statement(remaining: u64, reset: u64, policy: Option<(u64, u64)>) -> Statement {
    Statement {
        remaining,
        reset: Duration::from_secs(reset),
        limit: policy.map(|p| p.0),
        window: policy.map(|p| Duration::from_secs(p.1)),
        min_rate: MIN_RATE,
        continuous: false,
        short: reset <= 1,
    }
}

/// The policy of a token bucket of 200/s, burst 20, stating its rate and the
/// time to its next token rounded up (`q=200;w=1`).
const BUCKET_200: Option<(u64, u64)> = Some((200, 1));

/// That bucket's quota, out at `now` (`r=0;t=1`), and when its probe of the
/// short reset may go (3 intervals later).
fn spent_bucket(now: Instant) -> (Quota, Instant) {
    let q = Quota::new(&statement(0, 1, BUCKET_200), now, g(now, 1), 0.0, 2);
    (q, now + Duration::from_millis(15))
}

#[test]
fn remaining_zero_waits_for_the_reset_then_spreads_the_window() {
    let now = Instant::now();
    let q = Quota::new(&statement(0, 30, Some((60, 60))), now, g(now, 1), 0.0, 2);
    // The new window's first request goes at the reset…
    assert_eq!(
        q.check(now, 0, 1.0),
        Admit::At(now + Duration::from_secs(30))
    );
    // …and the rest are spread: the tenth 9 s later, not at the reset.
    let t = q.time_for(now, 10.0).unwrap();
    assert_eq!(t, now + Duration::from_secs(39));
}

#[test]
fn in_flight_requests_count_against_remaining() {
    let now = Instant::now();
    let mut q = Quota::new(&statement(3, 10, None), now, g(now, 1), 2.0, 4);
    assert_eq!(q.check(now, 0, 1.0), Admit::Now);
    q.on_grant(now, 1.0);
    assert!(q.is_exhausted(now));
    assert_eq!(
        q.check(now, 0, 1.0),
        Admit::At(now + Duration::from_secs(10))
    );
    assert!(q.is_stale(now + Duration::from_secs(10)));
}

#[test]
fn a_known_limit_comes_back_at_the_reset_less_what_was_committed() {
    let now = Instant::now();
    let q = Quota::new(&statement_limit(0, 10, 60), now, g(now, 1), 5.0, 2);
    assert_eq!(
        q.check(now, 0, 1.0),
        Admit::At(now + Duration::from_secs(10))
    );
    let reset = now + Duration::from_secs(10);
    assert!(!q.is_stale(reset));
    assert!((q.available(reset) - 55.0).abs() < 1e-9);
    let mut q = q;
    q.on_grant(reset, 1.0);
    assert!((q.available(reset) - 54.0).abs() < 1e-9);
    // Releases before the reset are taken from what it brings back.
    let mut q = Quota::new(&statement_limit(3, 10, 60), now, g(now, 1), 0.0, 2);
    q.on_grant(now, 1.0);
    q.on_grant(now, 1.0);
    assert!((q.available(reset) - 58.0).abs() < 1e-9);
}

#[test]
fn a_stale_reply_only_lowers_the_count() {
    let now = Instant::now();
    let mut q = Quota::new(&statement(5, 10, None), now, g(now, 10), 0.0, 11);
    q.update(
        &statement(9, 10, None),
        now,
        g(now, 3),
        (0.0, 11),
        Reply::Accepted,
    );
    assert!((q.available(now) - 5.0).abs() < 1e-9);
    q.update(
        &statement(2, 10, None),
        now,
        g(now, 4),
        (0.0, 11),
        Reply::Accepted,
    );
    assert!((q.available(now) - 2.0).abs() < 1e-9);
}

#[test]
fn a_batch_counts_from_its_smallest_remaining_as_replies_arrive() {
    let now = Instant::now();
    let batch = |seq| Grant {
        released_at: now,
        seq,
        generation: 1,
        need: Need::default(),
    };
    let first = Grant {
        released_at: now,
        seq: 1,
        generation: 0,
        need: Need::default(),
    };
    let mut q = Quota::new(&statement(9, 1, None), now, first, 0.0, 2);
    // Nine released together; the last released is processed first.
    q.update(
        &statement(5, 1, None),
        now,
        batch(10),
        (8.0, 11),
        Reply::Accepted,
    );
    assert!((q.available(now) - -3.0).abs() < 1e-9);
    q.update(
        &statement(8, 1, None),
        now,
        batch(3),
        (7.0, 11),
        Reply::Accepted,
    );
    q.update(
        &statement(1, 1, None),
        now,
        batch(7),
        (6.0, 11),
        Reply::Accepted,
    );
    for (i, seq) in [2, 4, 5, 6, 8, 9].into_iter().enumerate() {
        q.update(
            &statement(10 - seq, 1, None),
            now,
            batch(seq),
            ((5 - i) as f64, 11),
            Reply::Accepted,
        );
    }
    // All replies in: the server has the batch's smallest `remaining`.
    assert!((q.available(now) - 1.0).abs() < 1e-9);
}

#[test]
fn a_continuous_quota_paces_at_its_rate_until_a_throttle() {
    let now = Instant::now();
    let later = now + Duration::from_millis(20);
    let mut q = Quota::new(&statement(1, 1, Some((100, 1))), now, g(now, 1), 0.0, 2);
    q.update(
        &statement(2, 1, Some((100, 1))),
        later,
        g(later, 2),
        (0.0, 3),
        Reply::Accepted,
    );
    assert!(q.is_continuous());
    q.update(
        &statement(0, 1, Some((100, 1))),
        later,
        g(later, 3),
        (0.0, 4),
        Reply::Accepted,
    );
    // Next token in 10 ms at 100/s, not at the 1 s reset.
    assert_eq!(
        q.check(later, 0, 1.0),
        Admit::At(later + Duration::from_millis(10))
    );
    q.on_throttle(later, later);
    assert!(!q.is_continuous());
    // Windowed again, out until a reset of 1 s: one probe goes 3 intervals
    // later (see `reset_probe`), the rest wait for the reset.
    let probe = later + Duration::from_millis(30);
    assert_eq!(q.check(later, 0, 1.0), Admit::At(probe));
    q.on_grant(probe, 1.0);
    // The new window's first unit went to the probe: the next, one interval
    // after the reset.
    let next = later + Duration::from_millis(1010);
    assert_eq!(q.check(probe, 1, 1.0), Admit::At(next));
    // Refused: no other probe in this window.
    let answer = probe + Duration::from_millis(20);
    q.on_throttle(answer, probe);
    assert_eq!(q.check(answer, 0, 1.0), Admit::At(next));
}

#[test]
fn an_accepted_probe_of_a_short_reset_means_continuous() {
    // A token bucket of 200/s, burst 20, stating its rate and the time to
    // its next token, rounded up: `r=0;t=1` each time its burst is spent.
    let now = Instant::now();
    let (mut q, probe) = spent_bucket(now);
    assert_eq!(q.check(now, 0, 1.0), Admit::At(probe));
    // A probe is one request: two wait for the window (the second one
    // interval after the reset).
    let next = now + Duration::from_millis(1005);
    assert_eq!(q.time_for(now, 2.0), Some(next));
    q.on_grant(probe, 1.0);
    assert_eq!(q.check(probe, 1, 1.0), Admit::At(next));
    // Accepted, with 2 units back: the reset was an upper bound.
    let answer = probe + Duration::from_millis(20);
    q.update(
        &statement(2, 1, BUCKET_200),
        answer,
        g(probe, 2),
        (0.0, 3),
        Reply::Accepted,
    );
    assert!(q.is_continuous());
    assert_eq!(q.check(answer, 0, 2.0), Admit::Now);
    q.on_grant(answer, 2.0);
    assert_eq!(
        q.check(answer, 0, 1.0),
        Admit::At(answer + Duration::from_millis(5))
    );
}

#[test]
fn a_long_reset_or_one_without_a_rate_is_not_probed() {
    let now = Instant::now();
    let q = Quota::new(&statement(0, 2, Some((200, 1))), now, g(now, 1), 0.0, 2);
    assert_eq!(
        q.check(now, 0, 1.0),
        Admit::At(now + Duration::from_secs(2))
    );
    // A limit without a window: no rate to pause by.
    let q = Quota::new(&statement_limit(0, 1, 200), now, g(now, 1), 0.0, 2);
    assert!(q.limit_known && q.rate.is_none());
    assert_eq!(
        q.check(now, 0, 1.0),
        Admit::At(now + Duration::from_secs(1))
    );
}

#[test]
fn an_accepted_probe_stating_nothing_left_still_means_continuous() {
    // The probe took the one unit that came back: `r=0` again, but accepted.
    let now = Instant::now();
    let (mut q, probe) = spent_bucket(now);
    q.on_grant(probe, 1.0);
    let answer = probe + Duration::from_millis(20);
    q.update(
        &statement(0, 1, BUCKET_200),
        answer,
        g(probe, 2),
        (0.0, 3),
        Reply::Accepted,
    );
    assert!(q.is_continuous());
    assert_eq!(
        q.check(answer, 0, 1.0),
        Admit::At(answer + Duration::from_millis(5))
    );
    // A 503 with the same headers is no verdict: still a window.
    let mut q = Quota::new(&statement(0, 1, BUCKET_200), now, g(now, 1), 0.0, 2);
    q.on_grant(probe, 1.0);
    q.update(
        &statement(0, 1, BUCKET_200),
        answer,
        g(probe, 2),
        (0.0, 3),
        Reply::Neither,
    );
    assert!(!q.is_continuous());
}

#[test]
fn refusals_in_a_row_defer_the_probe_past_the_next_window() {
    let ms = Duration::from_millis;
    let t0 = Instant::now();
    let (mut q, _) = spent_bucket(t0);
    // Each window: a probe 15 ms after its first statement, refused (a 429
    // stating `r=0`) 20 ms later.
    let refuse = |q: &mut Quota, at: Instant, seq: u64| {
        assert_eq!(q.check(at, 0, 1.0), Admit::At(at + ms(15)));
        q.on_grant(at + ms(15), 1.0);
        let answer = at + ms(35);
        q.update(
            &statement(0, 1, BUCKET_200),
            answer,
            g(at + ms(15), seq),
            (0.0, seq + 1),
            Reply::Throttled,
        );
        answer
    };
    let first = refuse(&mut q, t0, 2);
    // The next window opens at the reset: its first statement (others took
    // its units) allows the next probe, 1 s after the refusal at the earliest.
    let t1 = t0 + ms(1040);
    q.update(
        &statement(0, 1, BUCKET_200),
        t1,
        g(t1, 4),
        (0.0, 5),
        Reply::Accepted,
    );
    assert!(first + Duration::from_secs(1) <= t1 + ms(15));
    let second = refuse(&mut q, t1, 5);
    // Refused twice: not before 2 s after the second refusal, which is
    // later than the next window's own pause would allow.
    let t2 = t1 + ms(1040);
    q.update(
        &statement(0, 1, BUCKET_200),
        t2,
        g(t2, 7),
        (0.0, 8),
        Reply::Accepted,
    );
    assert_eq!(
        q.check(t2, 0, 1.0),
        Admit::At(second + Duration::from_secs(2))
    );
}

#[test]
fn a_later_request_stating_more_remaining_means_continuous() {
    let now = Instant::now();
    let later = now + Duration::from_millis(20);
    // Statement r=1 from request 1, received when request 3 is next.
    let mut q = Quota::new(&statement(1, 1, Some((100, 1))), now, g(now, 1), 0.0, 3);
    // Request 2 was released before the statement arrived: the server may
    // have counted it first.
    q.update(
        &statement(2, 1, Some((100, 1))),
        later,
        g(now, 2),
        (0.0, 4),
        Reply::Accepted,
    );
    assert!(!q.continuous);
    q.update(
        &statement(2, 1, Some((100, 1))),
        later,
        g(later, 3),
        (0.0, 4),
        Reply::Accepted,
    );
    assert!(q.continuous);
}

#[test]
fn a_reply_that_overtook_cannot_raise_a_windows_count() {
    let now = Instant::now();
    let t = now + Duration::from_millis(5);
    let mut q = Quota::new(&statement(25, 2, Some((200, 2))), now, g(now, 1), 3.0, 2);
    // A later batch's request was processed before the first: r=32.
    q.update(
        &statement(32, 2, Some((200, 2))),
        t,
        g(t, 2),
        (2.0, 3),
        Reply::Accepted,
    );
    assert!((q.available(t) - 23.0).abs() < 1e-9);
}

#[test]
fn a_window_reset_seen_early_is_not_a_refill() {
    let now = Instant::now();
    let later = now + Duration::from_millis(300);
    // 200 per 2 s; `t` rounded up hides that the window ends at once.
    let mut q = Quota::new(&statement(0, 1, Some((200, 2))), now, g(now, 1), 0.0, 2);
    q.update(
        &statement(199, 2, Some((200, 2))),
        later,
        g(later, 2),
        (0.0, 3),
        Reply::Accepted,
    );
    assert!(!q.is_continuous());
}

#[test]
fn a_fixed_window_never_looks_continuous() {
    let now = Instant::now();
    let mut q = Quota::new(&statement(5, 60, Some((5, 60))), now, g(now, 1), 0.0, 2);
    for seq in 2..7 {
        let t = now + Duration::from_millis(seq * 10);
        q.on_grant(t, 1.0);
        q.update(
            &statement(6 - seq, 60, Some((5, 60))),
            t,
            g(t, seq),
            (0.0, seq + 1),
            Reply::Accepted,
        );
    }
    assert!(!q.continuous);
    assert!(matches!(
        q.check(now + Duration::from_secs(1), 0, 1.0),
        Admit::At(_)
    ));
}

#[test]
fn huge_values_do_not_overflow() {
    let now = Instant::now();
    let s = Statement {
        remaining: u64::MAX,
        reset: Duration::MAX,
        limit: Some(u64::MAX),
        window: Some(Duration::from_nanos(1)),
        min_rate: MIN_RATE,
        continuous: false,
        short: false,
    };
    let mut q = Quota::new(&s, now, g(now, 1), f64::from(u32::MAX), 2);
    let _ = q.check(now, 0, 1.0);
    let _ = q.time_for(now, 1e300);
    q.on_grant(now, 1.0);
    q.update(
        &s,
        now,
        g(now, 2),
        (f64::from(u32::MAX), 3),
        Reply::Accepted,
    );
}

#[test]
fn a_window_once_seen_full_is_not_probed() {
    // 10 per second, seen with 9 left: a window, whose `r=0;t=1` is meant.
    let policy = Some((10, 1));
    let now = Instant::now();
    let mut q = Quota::new(&statement(9, 1, policy), now, g(now, 1), 0.0, 2);
    let later = now + Duration::from_millis(50);
    q.update(
        &statement(0, 1, policy),
        later,
        g(later, 2),
        (0.0, 3),
        Reply::Accepted,
    );
    assert_eq!(
        q.check(later, 0, 1.0),
        Admit::At(now + Duration::from_secs(1))
    );
}

#[test]
fn a_probe_taken_back_before_it_went_lets_another_go() {
    let now = Instant::now();
    let (mut q, probe) = spent_bucket(now);
    q.on_grant(probe, 1.0);
    assert_ne!(q.check(probe, 1, 1.0), Admit::Now);
    // Cancelled after its release, never sent: another probe may go, a
    // pause after the last release (not at the reset).
    q.on_ungrant(1.0);
    assert_eq!(
        q.check(probe, 0, 1.0),
        Admit::At(probe + Duration::from_millis(15))
    );
}
