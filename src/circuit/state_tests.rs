use super::*;

const MS: Duration = Duration::from_millis(1);

fn settings() -> Settings {
    Settings {
        failure_ratio: 0.5,
        minimum_throughput: 4,
        sampling_duration: Duration::from_secs(10),
        break_duration: Duration::from_secs(5),
        max_break_duration: Duration::from_secs(50),
        half_open_probes: 2,
        slow_call: None,
    }
}

struct Harness {
    s: Settings,
    c: Circuit,
    w: Window,
    rng: BackoffRng,
    t0: Instant,
}

impl Harness {
    fn new(s: Settings) -> Self {
        let t0 = Instant::now();
        Harness {
            s,
            c: Circuit::new(),
            w: Window::new(s.sampling_duration, t0),
            rng: BackoffRng::seeded(1),
            t0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + MS * ms as u32
    }

    fn admit(&mut self, ms: u64) -> (Admit, Option<Transition>) {
        let now = self.at(ms);
        self.c.admit(&self.s, now, &mut self.rng, &self.w)
    }

    fn ticket(&mut self, ms: u64) -> Ticket {
        match self.admit(ms).0 {
            Admit::Go(t) => t,
            Admit::Reject(d) => panic!("rejected at {ms} ms ({d:?})"),
        }
    }

    fn finish(&mut self, t: Ticket, outcome: CallOutcome, ms: u64) -> Option<Transition> {
        let now = self.at(ms);
        self.c
            .finish(&self.s, t, Some(outcome), Some(now), &mut self.rng, &self.w)
    }

    /// One call admitted and finished at `ms`.
    fn call(&mut self, outcome: CallOutcome, ms: u64) -> Option<Transition> {
        let t = self.ticket(ms);
        self.finish(t, outcome, ms)
    }

    /// Failures at `ms` until the breaker opens (four, with nothing else
    /// in the window).
    fn trip(&mut self, ms: u64) {
        for _ in 0..4 {
            if let Some(t) = self.call(CallOutcome::Failure, ms) {
                assert_eq!(t.to, CircuitState::Open);
                return;
            }
        }
        panic!("four failures did not open it");
    }
}

#[test]
fn opens_at_the_ratio_once_the_minimum_throughput_is_seen() {
    let mut h = Harness::new(settings());
    assert_eq!(h.call(CallOutcome::Failure, 0), None);
    assert_eq!(h.call(CallOutcome::Success, 1), None);
    assert_eq!(h.call(CallOutcome::Failure, 2), None);
    let t = h.call(CallOutcome::Success, 3);
    assert_eq!(t, None, "a success never opens it");
    let t = h.call(CallOutcome::Failure, 4).expect("3 of 5 failed");
    assert_eq!(t.from, CircuitState::Closed);
    assert_eq!(
        t.cause,
        Cause::FailureRatio {
            calls: 5,
            failures: 3
        }
    );
    assert_eq!(t.break_duration, Some(Duration::from_secs(5)));
    assert!(matches!(h.admit(5).0, Admit::Reject(d) if d == Duration::from_millis(4_999)));
}

#[test]
fn ignored_outcomes_are_not_counted() {
    let mut h = Harness::new(settings());
    for ms in 0..100 {
        assert_eq!(h.call(CallOutcome::Ignored, ms), None);
    }
    assert_eq!(h.w.totals(h.at(100)), (0, 0));
    assert_eq!(h.c.state_at(Some(h.at(100))), CircuitState::Closed);
}

#[test]
fn half_open_admits_a_few_probes_and_a_success_closes() {
    let mut h = Harness::new(settings());
    h.trip(0);
    let (first, t) = h.admit(5_000);
    assert_eq!(t.map(|t| t.to), Some(CircuitState::HalfOpen));
    let Admit::Go(p1) = first else { panic!() };
    let p2 = h.ticket(5_000);
    assert!(matches!(h.admit(5_000).0, Admit::Reject(d) if d == Duration::from_millis(500)));
    let t = h.finish(p1, CallOutcome::Success, 5_010);
    assert_eq!(
        t.map(|t| (t.to, t.cause)),
        Some((CircuitState::Closed, Cause::ProbeSucceeded))
    );
    // The other probe's late answer counts for nothing.
    assert_eq!(h.finish(p2, CallOutcome::Failure, 5_020), None);
    assert_eq!(h.w.totals(h.at(5_020)), (0, 0));
}

#[test]
fn a_failed_probe_reopens_for_a_longer_jittered_capped_break() {
    let mut h = Harness::new(settings());
    h.trip(0);
    let mut at = 5_000;
    let mut lengths = Vec::new();
    for _ in 0..8 {
        let p = h.ticket(at);
        let t = h.finish(p, CallOutcome::Failure, at).expect("re-opens");
        assert_eq!(t.cause, Cause::ProbeFailed);
        let d = t.break_duration.unwrap();
        lengths.push(d);
        at += d.as_millis() as u64 + 1;
    }
    assert!(lengths[0] >= Duration::from_secs(8) && lengths[0] <= Duration::from_secs(12));
    assert!(lengths[1] >= Duration::from_secs(16) && lengths[1] <= Duration::from_secs(24));
    assert!(lengths.iter().all(|d| *d <= Duration::from_secs(50)));
    assert!(lengths[7] >= Duration::from_secs(40));
    assert_eq!(h.c.opened, 9);
}

#[test]
fn an_ignored_or_dropped_probe_frees_its_place() {
    let mut h = Harness::new(settings());
    h.trip(0);
    let p1 = h.ticket(5_000);
    let p2 = h.ticket(5_000);
    assert!(matches!(h.admit(5_001).0, Admit::Reject(_)));
    assert_eq!(h.finish(p1, CallOutcome::Ignored, 5_002), None);
    let now = h.at(5_003);
    assert_eq!(
        h.c.finish(&h.s, p2, None, Some(now), &mut h.rng, &h.w),
        None
    );
    let _p3 = h.ticket(5_004);
    let _p4 = h.ticket(5_004);
    assert_eq!(h.c.state_at(None), CircuitState::HalfOpen);
}

#[test]
fn hung_probes_reopen_the_breaker_after_the_sampling_duration() {
    let mut h = Harness::new(settings());
    h.trip(0);
    let _p1 = h.ticket(5_000);
    let _p2 = h.ticket(5_000);
    assert!(matches!(h.admit(15_000).0, Admit::Reject(d) if d == probe_wait(&h.s)));
    let (admit, t) = h.admit(15_001);
    assert_eq!(
        t.map(|t| (t.to, t.cause)),
        Some((CircuitState::Open, Cause::ProbesUnanswered))
    );
    assert!(matches!(admit, Admit::Reject(d) if d >= Duration::from_secs(5)));
}

#[test]
fn probes_ending_without_a_verdict_are_progress_not_a_hang() {
    let mut h = Harness::new(settings());
    h.trip(0);
    let _p1 = h.ticket(5_000);
    let p2 = h.ticket(5_000);
    let p3 = {
        assert_eq!(h.finish(p2, CallOutcome::Ignored, 12_000), None);
        h.ticket(12_000)
    };
    // 10 s after the half-open start, but only 3 s after the last probe.
    assert!(matches!(
        h.admit(15_001),
        (Admit::Reject(d), None) if d == probe_wait(&h.s)
    ));
    assert_eq!(
        h.finish(p3, CallOutcome::Success, 15_002).map(|t| t.to),
        Some(CircuitState::Closed)
    );
}

#[test]
fn calls_admitted_before_the_breaker_opened_do_not_count_after() {
    let mut h = Harness::new(settings());
    let late = h.ticket(0);
    h.trip(1);
    assert_eq!(h.finish(late, CallOutcome::Failure, 2), None);
    let probe = h.ticket(5_001);
    assert!(h.finish(probe, CallOutcome::Success, 5_002).is_some());
}

#[test]
fn slow_calls_count_as_failures_when_the_rule_is_on() {
    let mut h = Harness::new(Settings {
        slow_call: Some(Duration::from_secs(1)),
        ..settings()
    });
    for i in 0..3 {
        let t = h.ticket(i);
        assert!(t.matters(&h.s, Some(CallOutcome::Success), Some(h.at(i + 1_000))));
        assert_eq!(h.finish(t, CallOutcome::Success, i + 1_000), None);
    }
    let quick = h.ticket(3);
    assert!(!quick.matters(&h.s, Some(CallOutcome::Success), Some(h.at(4))));
    let t = h.ticket(3);
    let opened = h
        .finish(t, CallOutcome::Success, 1_003)
        .expect("4 slow calls");
    assert_eq!(opened.to, CircuitState::Open);
}

#[test]
fn the_window_forgets_old_failures() {
    let mut h = Harness::new(settings());
    for ms in [0, 1, 2] {
        h.call(CallOutcome::Failure, ms);
    }
    // Twelve seconds later the three failures have aged out.
    assert_eq!(h.call(CallOutcome::Failure, 12_000), None);
    assert_eq!(h.c.state_at(None), CircuitState::Closed);
}
