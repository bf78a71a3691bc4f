//! The handles a request holds: a place in a key's queue ([`Waiting`]) and,
//! once released, a [`Permit`]. Dropping either gives back what it holds.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::time::{Instant, Sleep};

use super::lane::{FastGrant, LaneRef};
use super::model::{Grant, Need};
use super::response::Outcome;
use super::table::{Admission, Finish, Gate, TicketPoll};

/// The answer to a new request.
pub(crate) enum Acquire {
    /// Go now.
    Go(Permit),
    /// Wait in line (at most about this long).
    Wait(Waiting, Duration),
    /// The wait would exceed `max_wait` or the request's deadline.
    Refuse(Duration),
}

/// A release through `key`'s lane, if it is open: no lock, and no
/// reference to the gate taken (see [`super::lane`]).
#[inline]
pub(crate) fn fast(gate: &Gate, key: u64) -> Option<FastPermit> {
    let at = gate.lanes.at();
    let grant = at.try_release(key)?;
    Some(FastPermit { at, grant })
}

/// A release through an open lane, which the table does not track in
/// flight: dropping it gives nothing back, since nothing was taken. It
/// holds its lane, not its gate: an answer with news looks the gate up.
pub(crate) struct FastPermit {
    at: LaneRef,
    grant: FastGrant,
}

impl FastPermit {
    /// The inner service answered with `status` and `headers`: a plain
    /// answer is one increment; anything else goes to the table. Returns
    /// the gate's own wait for a retry (see [`Permit::finish`]).
    #[inline]
    pub(crate) fn finish_response(
        self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        if Outcome::is_plain(status, headers) && self.at.count_accepted(&self.grant) {
            return None;
        }
        self.finish_news(status, headers)
    }

    #[cold]
    fn finish_news(self, status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
        self.finish(&Outcome::read(status, headers))
    }

    /// The answer, read, goes to the table, if the gate is still there.
    pub(crate) fn finish(self, outcome: &Outcome) -> Option<Duration> {
        Gate::by_salt(self.at.salt)?.complete_fast(self.grant, outcome)
    }
}

impl fmt::Debug for FastPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastPermit")
            .field("key", &format_args!("{:016x}", self.grant.key))
            .finish()
    }
}

/// Admission of a new request for `key`.
pub(crate) fn acquire(
    gate: &Arc<Gate>,
    key: u64,
    need: Need,
    deadline: Option<Instant>,
) -> Acquire {
    match gate.admit(key, need, deadline) {
        Admission::Go(grant) => Acquire::Go(Permit::new(gate.clone(), key, grant)),
        Admission::Wait(ticket, wait) => Acquire::Wait(
            Waiting::new(gate.clone(), key, ticket, need, deadline),
            wait,
        ),
        Admission::Refuse(wait) => Acquire::Refuse(wait),
    }
}

/// A granted release. Dropping it without [`Permit::finish`] gives back
/// what it holds: everything if the request was never sent, the in-flight
/// slot otherwise.
pub(crate) struct Permit {
    gate: Arc<Gate>,
    key: u64,
    grant: Grant,
    sent: bool,
    done: bool,
}

impl Permit {
    fn new(gate: Arc<Gate>, key: u64, grant: Grant) -> Self {
        Permit {
            gate,
            key,
            grant,
            sent: false,
            done: false,
        }
    }

    /// The request has been handed to the inner service.
    #[inline]
    pub(crate) fn mark_sent(&mut self) {
        self.sent = true;
    }

    /// The inner service answered with `status` and `headers`.
    pub(crate) fn finish_response(
        self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        self.finish(Some(&Outcome::read(status, headers)))
    }

    /// The inner service answered (or failed, with `None`). For a throttle
    /// whose short hint the gate reads as an upper bound, returns when a
    /// retry could go by the gate's reading of the key, if sooner than the
    /// hint: the response carries it as
    /// [`GateRetryAfter`](super::GateRetryAfter).
    pub(crate) fn finish(mut self, outcome: Option<&Outcome>) -> Option<Duration> {
        self.done = true;
        let finish = match outcome {
            Some(outcome) => Finish::Answered(outcome),
            None => Finish::Failed,
        };
        self.gate.complete(self.key, self.grant, finish)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            let grant = self.grant;
            let finish = if self.sent {
                Finish::Failed
            } else {
                Finish::Unsent
            };
            self.gate.complete(self.key, grant, finish);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("key", &format_args!("{:016x}", self.key))
            .field("sent", &self.sent)
            .finish()
    }
}

/// A place in a key's queue. Dropping it leaves the queue (cancel-safety).
pub(crate) struct Waiting {
    gate: Arc<Gate>,
    key: u64,
    ticket: u64,
    need: Need,
    deadline: Option<Instant>,
    since: Instant,
    /// The keeper's timer; boxed so the future stays `Unpin`-agnostic, and
    /// reused across re-arms.
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl Waiting {
    fn new(gate: Arc<Gate>, key: u64, ticket: u64, need: Need, deadline: Option<Instant>) -> Self {
        Waiting {
            gate,
            key,
            ticket,
            need,
            deadline,
            since: Instant::now(),
            sleep: None,
            done: false,
        }
    }

    /// Ready with a permit, or with the wait that made the gate refuse.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Permit, Duration>> {
        // Bounded: each turn either returns or found its timer already due,
        // which a granted or re-armed keeper cannot be twice in a row.
        for _ in 0..8 {
            match self.gate.poll_ticket(self.key, self.ticket, cx.waker()) {
                TicketPoll::Granted(grant) => {
                    self.done = true;
                    let permit = Permit::new(self.gate.clone(), self.key, grant);
                    tracing::debug!(
                        key = %format_args!("{:016x}", self.key),
                        waited = ?self.since.elapsed(),
                        "rate limit: request released"
                    );
                    return Poll::Ready(Ok(permit));
                }
                TicketPoll::Refused(wait) => {
                    self.done = true;
                    return Poll::Ready(Err(wait));
                }
                TicketPoll::Lost => match acquire(&self.gate, self.key, self.need, self.deadline) {
                    Acquire::Go(permit) => {
                        self.done = true;
                        return Poll::Ready(Ok(permit));
                    }
                    Acquire::Refuse(wait) => {
                        self.done = true;
                        return Poll::Ready(Err(wait));
                    }
                    Acquire::Wait(mut again, _) => {
                        // Take over the new place in line.
                        self.ticket = again.ticket;
                        again.done = true;
                    }
                },
                TicketPoll::Pending(None) => return Poll::Pending,
                TicketPoll::Pending(Some(at)) => {
                    let sleep = match &mut self.sleep {
                        Some(sleep) => {
                            if sleep.deadline() != at {
                                sleep.as_mut().reset(at);
                            }
                            sleep
                        }
                        None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
                    };
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.gate.cancel(self.key, self.ticket);
        }
    }
}

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting")
            .field("key", &format_args!("{:016x}", self.key))
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}
