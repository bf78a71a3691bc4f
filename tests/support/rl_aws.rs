//! The anchor to beat: the AWS SDKs' adaptive retry mode's client-side rate
//! limiter (a CUBIC-style token bucket: β 0.7, C 0.4, minimum 0.5 req/s,
//! measured-rate smoothing 0.8, never above twice the measured rate), as the
//! SDKs specify it, wrapped around a service for comparison in tests. It
//! reads no headers: a 429 is a throttle, anything else a success.

#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use tokio::time::Instant;

const BETA: f64 = 0.7;
const SCALE_CONSTANT: f64 = 0.4;
const MIN_FILL_RATE: f64 = 0.5;
const MIN_CAPACITY: f64 = 1.0;
const SMOOTH: f64 = 0.8;

#[derive(Debug)]
struct Limiter {
    born: Instant,
    fill_rate: f64,
    max_capacity: f64,
    current_capacity: f64,
    last_timestamp: Option<f64>,
    enabled: bool,
    measured_tx_rate: f64,
    last_tx_rate_bucket: f64,
    request_count: u64,
    last_max_rate: f64,
    last_throttle_time: f64,
    time_window: f64,
}

impl Limiter {
    fn now(&self) -> f64 {
        self.born.elapsed().as_secs_f64()
    }

    fn refill(&mut self) {
        let t = self.now();
        if let Some(last) = self.last_timestamp {
            let fill = (t - last) * self.fill_rate;
            self.current_capacity = self.max_capacity.min(self.current_capacity + fill);
        }
        self.last_timestamp = Some(t);
    }

    /// Takes a token if there is one; otherwise how long until there may be.
    /// Waiters re-check at least every 50 ms, as the SDKs' bucket wakes its
    /// sleepers when the rate changes.
    fn try_acquire(&mut self) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        self.refill();
        if self.current_capacity >= 1.0 {
            self.current_capacity -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.current_capacity) / self.fill_rate;
        Err(Duration::from_secs_f64(wait.clamp(0.001, 0.05)))
    }

    fn update_measured_rate(&mut self) {
        let t = self.now();
        let bucket = (t * 2.0).floor() / 2.0;
        self.request_count += 1;
        if bucket > self.last_tx_rate_bucket {
            let current = self.request_count as f64 / (bucket - self.last_tx_rate_bucket);
            self.measured_tx_rate = current * SMOOTH + self.measured_tx_rate * (1.0 - SMOOTH);
            self.request_count = 0;
            self.last_tx_rate_bucket = bucket;
        }
    }

    fn update_sending_rate(&mut self, throttled: bool) {
        self.update_measured_rate();
        let calculated = if throttled {
            let rate_to_use = if self.enabled {
                self.measured_tx_rate.min(self.fill_rate)
            } else {
                self.measured_tx_rate
            };
            self.last_max_rate = rate_to_use;
            self.time_window = (self.last_max_rate * (1.0 - BETA) / SCALE_CONSTANT).cbrt();
            self.last_throttle_time = self.now();
            self.enabled = true;
            rate_to_use * BETA
        } else {
            self.time_window = (self.last_max_rate * (1.0 - BETA) / SCALE_CONSTANT).cbrt();
            let dt = self.now() - self.last_throttle_time;
            SCALE_CONSTANT * (dt - self.time_window).powi(3) + self.last_max_rate
        };
        let new_rate = calculated.min(2.0 * self.measured_tx_rate);
        self.refill();
        self.fill_rate = new_rate.max(MIN_FILL_RATE);
        self.max_capacity = new_rate.max(MIN_CAPACITY);
        self.current_capacity = self.current_capacity.min(self.max_capacity);
    }
}

/// `inner` behind the AWS adaptive-mode limiter; clones share it.
#[derive(Clone)]
pub struct Adaptive<S> {
    inner: S,
    limiter: Arc<Mutex<Limiter>>,
}

impl<S> Adaptive<S> {
    pub fn new(inner: S) -> Self {
        Adaptive {
            inner,
            limiter: Arc::new(Mutex::new(Limiter {
                born: Instant::now(),
                fill_rate: 0.0,
                max_capacity: 0.0,
                current_capacity: 0.0,
                last_timestamp: None,
                enabled: false,
                measured_tx_rate: 0.0,
                last_tx_rate_bucket: 0.0,
                request_count: 0,
                last_max_rate: 0.0,
                last_throttle_time: 0.0,
                time_window: 0.0,
            })),
        }
    }
}

impl<S> tower::Service<Request<String>> for Adaptive<S>
where
    S: tower::Service<Request<String>, Response = Response<String>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<String>) -> Self::Future {
        use tower::ServiceExt;
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        Box::pin(async move {
            loop {
                let attempt = limiter.lock().unwrap().try_acquire();
                match attempt {
                    Ok(()) => break,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            }
            let res = inner.oneshot(req).await?;
            let throttled = res.status() == StatusCode::TOO_MANY_REQUESTS;
            limiter.lock().unwrap().update_sending_rate(throttled);
            Ok(res)
        })
    }
}
