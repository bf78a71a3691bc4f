//! Sends one batch through one contender: `concurrency` workers share a
//! counter of requests still to send, so the batch ends when it runs out.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use super::contenders::Transport;

/// One request as its caller saw it.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// The final answer was a 2xx.
    pub ok: bool,
    /// From the first send to the final answer, retries and waits included.
    pub latency: Duration,
}

/// Every request of a batch, and how long the batch took.
#[derive(Debug)]
pub struct Batch {
    /// One per request sent, in completion order.
    pub outcomes: Vec<Outcome>,
    /// From the first send to the last answer.
    pub makespan: Duration,
}

/// What a batch sends and how wide.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where requests go.
    pub uri: Uri,
    /// Requests in the batch.
    pub requests: usize,
    /// Requests in flight at once (each holds its slot through its retries).
    pub concurrency: usize,
}

/// Sends the batch and waits for every answer.
pub async fn run(service: Transport, plan: &Plan, progress: &Arc<Progress>) -> Batch {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..plan.concurrency.clamp(1, plan.requests.max(1)) {
        workers.spawn(worker(
            service.clone(),
            plan.clone(),
            next.clone(),
            progress.clone(),
        ));
    }
    let mut outcomes = Vec::with_capacity(plan.requests);
    while let Some(joined) = workers.join_next().await {
        if let Ok(mut done) = joined {
            outcomes.append(&mut done);
        }
    }
    Batch {
        outcomes,
        makespan: start.elapsed(),
    }
}

async fn worker(
    service: Transport,
    plan: Plan,
    next: Arc<AtomicUsize>,
    progress: Arc<Progress>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while next.fetch_add(1, Ordering::Relaxed) < plan.requests {
        let started = Instant::now();
        let answer = service.clone().oneshot(get(&plan.uri)).await;
        outcomes.push(Outcome {
            ok: answer.is_ok_and(|response| response.status().is_success()),
            latency: started.elapsed(),
        });
        progress.tick();
    }
    outcomes
}

fn get(uri: &Uri) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = uri.clone();
    request
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal
/// and at most ten times a second (wall clock, also under the paused clock).
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
    last_drawn: Mutex<Option<std::time::Instant>>,
    visible: bool,
}

const BAR_WIDTH: usize = 30;
const REDRAW_EVERY: Duration = Duration::from_millis(100);

impl Progress {
    /// A bar for `total` requests of `label`.
    pub fn new(label: &str, total: usize) -> Arc<Progress> {
        Arc::new(Progress {
            label: label.to_owned(),
            total,
            done: AtomicUsize::new(0),
            last_drawn: Mutex::new(None),
            visible: std::io::stderr().is_terminal(),
        })
    }

    /// Counts one finished request.
    fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.visible {
            return;
        }
        let mut last = self.last_drawn.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= REDRAW_EVERY) || done == self.total {
            *last = Some(now);
            let filled = (done * BAR_WIDTH)
                .checked_div(self.total)
                .unwrap_or(BAR_WIDTH);
            let bar = format!(
                "{}{}",
                "#".repeat(filled),
                ".".repeat(BAR_WIDTH - filled.min(BAR_WIDTH))
            );
            eprint!("\r{:<36} [{bar}] {done}/{}", self.label, self.total);
        }
    }

    /// Erases the bar.
    pub fn clear(&self) {
        if self.visible {
            eprint!("\r{:width$}\r", "", width = 36 + BAR_WIDTH + 24);
        }
    }
}
