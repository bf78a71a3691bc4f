//! The types every kind of constraint shares: what a constraint answers, a
//! release as the gate recorded it, and the layer's knobs. The constraint
//! kinds (`quota`, `limit`, `learner`, `slow_start`) import from here and
//! never from each other or from `constraints`, which combines them.

use std::time::Duration;

use tokio::time::Instant;

use crate::headers::Unit;

/// May a request go?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    Now,
    /// Not before this instant (a new response may change it).
    At(Instant),
    /// Not before a response brings news: nothing known comes back by itself.
    OnResponse,
}

impl Admit {
    /// Both must allow: the later instant binds; a wait on a response binds
    /// only when no instant does (at the instant, the gate asks again).
    pub(super) fn and(self, other: Admit) -> Admit {
        match (self, other) {
            (Admit::Now, x) | (x, Admit::Now) => x,
            (Admit::At(a), Admit::At(b)) => Admit::At(a.max(b)),
            (Admit::At(a), Admit::OnResponse) | (Admit::OnResponse, Admit::At(a)) => Admit::At(a),
            (Admit::OnResponse, Admit::OnResponse) => Admit::OnResponse,
        }
    }

    /// `At(t)` with `t` already past counts as `Now`.
    pub(super) fn at(self, now: Instant) -> Admit {
        match self {
            Admit::At(t) if t <= now => Admit::Now,
            other => other,
        }
    }
}

/// What a request takes from the limits: one request, and its token cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Need {
    /// Tokens ([`RequestCost`](crate::RequestCost)), 0 if unknown.
    pub(crate) cost: u64,
    /// The resource the request belongs to, if known (GitHub's `core`,
    /// `search`, … as stable hashes): limits stated for another resource
    /// do not bind it.
    pub(crate) resource: Option<u64>,
    /// Method and first path segment, hashed: how responses teach which
    /// resource a request belongs to.
    pub(crate) route: u64,
}

impl Need {
    /// Units taken from a limit counting `unit`.
    pub(super) fn units(&self, unit: Unit) -> f64 {
        if unit.counts_tokens() {
            self.cost as f64
        } else {
            1.0
        }
    }
}

/// Why a key just became limited, for `tracing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limited {
    /// Held for this long by a server hint.
    Held(Duration),
    /// `remaining` reached zero; the window resets after this long.
    Exhausted(Duration),
    /// Throttled without a hint: the learned rate was lowered.
    Throttled,
    /// A stated quota was contradicted by throttles once too often: it no
    /// longer binds, and the rate is learned instead.
    Distrusted,
}

/// A release, as the gate recorded it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    pub(super) released_at: Instant,
    pub(super) seq: u64,
    /// Quota statements received before the release: requests released
    /// with the same knowledge form one batch.
    pub(super) generation: u64,
    pub(super) need: Need,
}

#[cfg(test)]
impl Grant {
    /// Release number `seq` of a default request at `at`, for tests.
    pub(super) fn at(at: Instant, seq: u64) -> Grant {
        Grant {
            released_at: at,
            seq,
            generation: 0,
            need: Need::default(),
        }
    }
}

/// Requests in flight that a response may not have counted yet.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Uncounted {
    pub(super) requests: u32,
    pub(super) tokens: u64,
}

impl Uncounted {
    pub(super) fn units(&self, unit: Unit) -> f64 {
        if unit.counts_tokens() {
            self.tokens as f64
        } else {
            f64::from(self.requests)
        }
    }
}

/// Knobs of the layer that the per-key logic needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Knobs {
    pub(super) slow_start: bool,
    pub(super) max_hold: Duration,
}
