//! Cost of one backoff delay: `Schedule::delay` followed by `Jitter::apply`,
//! for every schedule with no jitter, full jitter and the AI-API retry article's ×U(0.5, 1.5).
//!
//! Each iteration computes one delay; retries cycle through 0..32 so that the
//! growing schedules are measured both below and at their cap.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tower_backoff::schedule::{
    Celery, Constant, Decorrelated, Ethernet, Exponential, Fibonacci, Linear, Schedule,
};
use tower_backoff::{BackoffRng, Jitter};

const RETRIES: u32 = 32;

fn jitters() -> [(&'static str, Jitter); 3] {
    [
        ("none", Jitter::None),
        ("full", Jitter::Full),
        (
            "proportional_0.5_1.5",
            Jitter::Proportional {
                low: 0.5,
                high: 1.5,
            },
        ),
    ]
}

fn bench_schedule<S: Schedule>(c: &mut Criterion, name: &str, schedule: S) {
    let mut group = c.benchmark_group(format!("delay/{name}"));
    let cap = schedule.max_delay();
    for (jitter_name, jitter) in jitters() {
        group.bench_with_input(
            BenchmarkId::from_parameter(jitter_name),
            &jitter,
            |b, jitter| {
                let mut rng = BackoffRng::seeded(7);
                let mut retry = 0u32;
                let mut prev = Duration::ZERO;
                b.iter(|| {
                    let base = schedule
                        .delay(black_box(retry), prev, &mut rng)
                        .unwrap_or(Duration::ZERO);
                    let d = jitter.apply(base, cap, &mut rng);
                    prev = base;
                    retry = (retry + 1) % RETRIES;
                    black_box(d)
                });
            },
        );
    }
    group.finish();
}

fn schedules(c: &mut Criterion) {
    let ms = Duration::from_millis;
    let cap = Duration::from_secs(60);
    bench_schedule(c, "constant", Constant::new(ms(500)));
    bench_schedule(c, "linear", Linear::new(ms(500), cap));
    bench_schedule(c, "exponential", Exponential::new(ms(100), cap));
    bench_schedule(
        c,
        "exponential_x1.5",
        Exponential::new(ms(100), cap).factor(1.5),
    );
    bench_schedule(c, "fibonacci", Fibonacci::new(ms(100), cap));
    bench_schedule(c, "decorrelated", Decorrelated::new(ms(100), cap));
    // 802.3 gives up at the 16th collision; lift the limit so every iteration draws.
    bench_schedule(
        c,
        "ethernet",
        Ethernet::new(Duration::from_nanos(51_200)).attempt_limit(u32::MAX),
    );
    bench_schedule(c, "celery", Celery::new(1, 600));
    bench_schedule(
        c,
        "celery_full_jitter",
        Celery::new(1, 600).full_jitter(true),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = schedules
}
criterion_main!(benches);
