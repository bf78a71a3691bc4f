//! Arbitrary retry numbers, durations and factors through every schedule and
//! jitter: no panic, and never a delay above the cap.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tower_backoff::schedule::{
    Celery, Constant, Decorrelated, Ethernet, Exponential, Fibonacci, Linear,
};
use tower_backoff::{BackoffRng, Jitter, Schedule};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(b)
    }
    fn duration(&mut self) -> Duration {
        let secs = self.u64();
        let nanos = (self.u64() % 1_000_000_000) as u32;
        Duration::new(secs, nanos)
    }
    fn f64(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }
}

fn check<S: Schedule>(s: S, retry: u32, prev: Duration, jitter: Jitter, rng: &mut BackoffRng) {
    let cap = s.max_delay();
    if let Some(d) = s.delay(retry, prev, rng) {
        assert!(d <= cap, "schedule above its cap");
        assert!(jitter.apply(d, cap, rng) <= cap, "jitter above the cap");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut i = Input(data);
    let retry = i.u64() as u32;
    let (a, b, prev) = (i.duration(), i.duration(), i.duration());
    let (f, low, high) = (i.f64(), i.f64(), i.f64());
    let small = i.u64();
    let mut rng = BackoffRng::seeded(i.u64());
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Proportional { low, high },
        Jitter::Additive(b),
    ] {
        check(Constant::new(a), retry, prev, jitter, &mut rng);
        check(Linear::new(a, b).initial(prev), retry, prev, jitter, &mut rng);
        check(Exponential::new(a, b).factor(f), retry, prev, jitter, &mut rng);
        check(Fibonacci::new(a, b), retry, prev, jitter, &mut rng);
        check(Decorrelated::new(a, b), retry, prev, jitter, &mut rng);
        let eth = Ethernet::new(a)
            .max_exponent((small & 0xff) as u32)
            .attempt_limit((small >> 8) as u32);
        check(eth, retry, prev, jitter, &mut rng);
        let celery = Celery::new(a.as_secs(), b.as_secs()).full_jitter(small & 1 == 1);
        check(celery, retry, prev, jitter, &mut rng);
        check(Exponential::new(a, b).max_retries(small as u32), retry, prev, jitter, &mut rng);
    }
});
