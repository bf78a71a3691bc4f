//! One key's breaker: closed → open → half-open → closed (or open again),
//! as a plain state machine over a clock reading passed in. No locks, no
//! tracing, no hooks: the key's cell ([`super::cell`]) does those. The
//! window it judges by is the cell's, recorded into without a lock.

use std::time::Duration;

use tokio::time::Instant;

use super::events::{Cause, CircuitState};
use super::outcome::CallOutcome;
use super::window::Window;
use crate::duration::{mul_f64, mul_pow2};
use crate::rng::BackoffRng;

/// A breaker's settings, fixed when the layer is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// In `[0, 1]`.
    pub(crate) failure_ratio: f64,
    /// At least 1.
    pub(crate) minimum_throughput: u32,
    pub(crate) sampling_duration: Duration,
    pub(crate) break_duration: Duration,
    /// At least `break_duration`.
    pub(crate) max_break_duration: Duration,
    /// At least 1.
    pub(crate) half_open_probes: u32,
    pub(crate) slow_call: Option<Duration>,
}

/// Re-opening draws the break from `nominal × U(LOW, HIGH)`, so breakers of
/// many clients that opened together do not probe in step.
const JITTER_LOW: f64 = 0.8;
const JITTER_HIGH: f64 = 1.2;

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probes: u32, since: Instant },
}

/// What a call was admitted as; handed back with its outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// The phase generation it was admitted in: outcomes of calls admitted
    /// in an earlier phase are not counted.
    generation: u64,
    probe: bool,
    /// When it was admitted: read only where it is needed (a probe, or the
    /// slow-call rule); a closed breaker's call skips the clock otherwise.
    started: Option<Instant>,
    /// Its bucket in the window (closed phase only).
    bucket: u64,
}

impl Ticket {
    /// A call admitted by a closed breaker of `generation` (at `started`,
    /// if the clock was read), counted in window bucket `bucket`.
    #[inline]
    pub(crate) fn closed(generation: u64, started: Option<Instant>, bucket: u64) -> Self {
        Ticket {
            generation,
            probe: false,
            started,
            bucket,
        }
    }

    #[inline]
    fn probe(self, probe: bool) -> Self {
        Ticket { probe, ..self }
    }

    /// Whether finishing it needs the clock: a slow-call rule to apply, a
    /// failure that may open the breaker (its break starts now, not when
    /// the call started), or a probe (the hung-probe rule counts from the
    /// last probe that ended).
    #[inline]
    pub(crate) fn needs_clock(&self, s: &Settings, outcome: Option<CallOutcome>) -> bool {
        self.probe || s.slow_call.is_some() || outcome == Some(CallOutcome::Failure)
    }

    /// Whether its outcome changes anything. A success of a call admitted
    /// while closed does not (it was counted on admission) unless the
    /// slow-call rule makes it a failure: the common case takes no lock.
    #[inline]
    pub(crate) fn matters(
        &self,
        s: &Settings,
        outcome: Option<CallOutcome>,
        now: Option<Instant>,
    ) -> bool {
        self.probe || self.judge(s, outcome, now) != Some(CallOutcome::Success)
    }

    /// The outcome, with the slow-call rule applied.
    #[inline]
    fn judge(
        &self,
        s: &Settings,
        outcome: Option<CallOutcome>,
        now: Option<Instant>,
    ) -> Option<CallOutcome> {
        match (outcome, s.slow_call, self.started) {
            (Some(CallOutcome::Success), Some(slow), Some(started))
                if now.unwrap_or(started).saturating_duration_since(started) >= slow =>
            {
                Some(CallOutcome::Failure)
            }
            (outcome, ..) => outcome,
        }
    }
}

/// The answer to a new call.
#[derive(Debug)]
pub(crate) enum Admit {
    Go(Ticket),
    /// Answer locally; the time until a probe may go.
    Reject(Duration),
}

/// A state change, reported to whoever holds the lock, to be announced
/// once it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: CircuitState,
    pub(crate) to: CircuitState,
    pub(crate) cause: Cause,
    pub(crate) break_duration: Option<Duration>,
}

/// One key's breaker (its window apart: see [`Window`]).
#[derive(Debug, Clone)]
pub(crate) struct Circuit {
    phase: Phase,
    /// Bumped on every phase change.
    generation: u64,
    /// Breaks since the breaker last closed: sets the next break's length.
    breaks: u32,
    /// Times opened, ever.
    pub(crate) opened: u64,
}

impl Circuit {
    pub(crate) fn new() -> Self {
        Circuit {
            phase: Phase::Closed,
            generation: 0,
            breaks: 0,
            opened: 0,
        }
    }

    /// What a lock-free admission needs to know: `generation + 1` while
    /// closed (a closed breaker admits every call, counted in the window),
    /// 0 otherwise.
    pub(crate) fn closed_token(&self) -> u64 {
        match self.phase {
            Phase::Closed => self.generation.saturating_add(1),
            _ => 0,
        }
    }

    /// Admission of a call at `now`. Moves an open breaker whose break is
    /// over to half-open, and a half-open one whose probes have all been
    /// out for longer than `sampling_duration` (counted from the start of
    /// the half-open phase, or from the end of the last probe that ended
    /// without a verdict) back to open: a hung probe must not keep the breaker
    /// half-open forever.
    pub(crate) fn admit(
        &mut self,
        s: &Settings,
        now: Instant,
        rng: &mut BackoffRng,
        window: &Window,
    ) -> (Admit, Option<Transition>) {
        let mut transition = None;
        match self.phase {
            Phase::Closed => return (self.go(now, false, window), None),
            Phase::Open { until } if now < until => {
                return (Admit::Reject(until - now), None);
            }
            Phase::Open { .. } => {
                transition = Some(self.enter(
                    Phase::HalfOpen {
                        probes: 0,
                        since: now,
                    },
                    Cause::BreakOver,
                    None,
                ));
            }
            Phase::HalfOpen { probes, since }
                if probes >= s.half_open_probes
                    && now.saturating_duration_since(since) > s.sampling_duration =>
            {
                let t = self.reopen(s, now, rng, Cause::ProbesUnanswered);
                return (Admit::Reject(t.break_duration.unwrap_or_default()), Some(t));
            }
            Phase::HalfOpen { .. } => {}
        }
        let Phase::HalfOpen { probes, .. } = &mut self.phase else {
            return (self.go(now, false, window), transition);
        };
        if *probes >= s.half_open_probes {
            return (Admit::Reject(probe_wait(s)), transition);
        }
        *probes += 1;
        (self.go(now, true, window), transition)
    }

    fn go(&self, now: Instant, probe: bool, window: &Window) -> Admit {
        let bucket = if probe { 0 } else { window.admit_at(now) };
        Admit::Go(Ticket::closed(self.generation, Some(now), bucket).probe(probe))
    }

    /// The outcome of an admitted call; `None` when it was dropped before
    /// it ended (counted as nothing). `now` is read by the caller only when
    /// the outcome can need it (see [`Ticket::needs_clock`]); a call whose
    /// outcome does not [matter](Ticket::matters) need not be finished.
    pub(crate) fn finish(
        &mut self,
        s: &Settings,
        ticket: Ticket,
        outcome: Option<CallOutcome>,
        now: Option<Instant>,
        rng: &mut BackoffRng,
        window: &Window,
    ) -> Option<Transition> {
        if ticket.generation != self.generation {
            return None;
        }
        // The clock was read for every outcome that needs it (see
        // `Ticket::needs_clock`); the fallback never runs.
        let ended = now.or(ticket.started).unwrap_or_else(Instant::now);
        let outcome = ticket.judge(s, outcome, now);
        match self.phase {
            Phase::Closed => {
                match outcome {
                    Some(CallOutcome::Success) => return None,
                    Some(CallOutcome::Failure) => window.fail(ticket.bucket, ended),
                    Some(CallOutcome::Ignored) | None => {
                        window.uncount(ticket.bucket);
                        return None;
                    }
                }
                let (calls, failures) = window.totals(ended);
                let tripped = calls >= s.minimum_throughput
                    && f64::from(failures) >= s.failure_ratio * f64::from(calls);
                tripped.then(|| {
                    let until = after(ended, s.break_duration);
                    self.breaks = 1;
                    self.opened += 1;
                    self.enter(
                        Phase::Open { until },
                        Cause::FailureRatio { calls, failures },
                        Some(s.break_duration),
                    )
                })
            }
            Phase::HalfOpen {
                ref mut probes,
                ref mut since,
            } if ticket.probe => match outcome {
                Some(CallOutcome::Success) => {
                    self.breaks = 0;
                    window.clear();
                    Some(self.enter(Phase::Closed, Cause::ProbeSucceeded, None))
                }
                Some(CallOutcome::Failure) => Some(self.reopen(s, ended, rng, Cause::ProbeFailed)),
                Some(CallOutcome::Ignored) | None => {
                    // A place for another probe; and progress, for the
                    // hung-probe rule: count from now.
                    *probes = probes.saturating_sub(1);
                    *since = (*since).max(ended);
                    None
                }
            },
            Phase::HalfOpen { .. } | Phase::Open { .. } => None,
        }
    }

    /// Opens again after a failed (or hung) probe, for a longer break: the
    /// base break doubled per break since the breaker last closed, capped,
    /// then jittered within the cap.
    fn reopen(
        &mut self,
        s: &Settings,
        now: Instant,
        rng: &mut BackoffRng,
        cause: Cause,
    ) -> Transition {
        let nominal = mul_pow2(s.break_duration, self.breaks).min(s.max_break_duration);
        let factor = JITTER_LOW + (JITTER_HIGH - JITTER_LOW) * rng.next_f64();
        let length = mul_f64(nominal, factor).clamp(s.break_duration, s.max_break_duration);
        self.breaks = self.breaks.saturating_add(1);
        self.opened += 1;
        self.enter(
            Phase::Open {
                until: after(now, length),
            },
            cause,
            Some(length),
        )
    }

    fn enter(&mut self, phase: Phase, cause: Cause, length: Option<Duration>) -> Transition {
        let from = self.state_at(None);
        self.phase = phase;
        self.generation += 1;
        Transition {
            from,
            to: self.state_at(None),
            cause,
            break_duration: length,
        }
    }

    /// The state as a caller would see it at `now` (an open breaker whose
    /// break is over shows as half-open); `None` reads it as stored.
    pub(crate) fn state_at(&self, now: Option<Instant>) -> CircuitState {
        match self.phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { until } if now.is_some_and(|n| n >= until) => CircuitState::HalfOpen,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Time until a probe may go, while open.
    pub(crate) fn retry_after(&self, now: Instant) -> Option<Duration> {
        match self.phase {
            Phase::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }

    /// Whether evicting it would lose nothing worth keeping.
    pub(crate) fn is_quiet(&self) -> bool {
        matches!(self.phase, Phase::Closed) && self.breaks == 0
    }
}

/// The wait suggested to a request refused while every probe place is
/// taken: a tenth of the break, time enough for a probe's answer to come
/// back, so that a retry does not spend its attempt before the verdict.
pub(crate) fn probe_wait(s: &Settings) -> Duration {
    s.break_duration / 10
}

/// `now + d`, saturating far in the future.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
