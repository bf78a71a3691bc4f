//! What the server's RateLimit headers say, turned into an estimate of how
//! many requests it will still take, and when it takes more.
//!
//! The estimate is a count of units: requests, or tokens for a tokens
//! limit. Each release takes its units (1, or its cost). A response
//! stating `remaining = r` resets it, counting against `r` the requests in
//! flight that the server may not have counted yet: those released after
//! the one that carried `r`, or shortly before (latency varies). Counting
//! one twice only makes the gate wait a little early, never late. Replies
//! come back in any order, so which `r` is the latest depends on the
//! limiter:
//!
//! * windowed: `remaining` only falls until the reset, so the lowest `r` of
//!   the window is the latest; as replies arrive, fewer requests are left to
//!   count against it;
//! * continuous: `remaining` also rises, so the latest is the lowest `r` among
//!   the replies to requests released together (with the same statements
//!   known, see [`Grant::generation`]); a reply from an earlier batch is
//!   stale and can only lower the count.
//!
//! When the tokens come back depends on the kind of limiter, which the
//! headers do not say:
//!
//! * **Windowed** (the draft's reading, and the default): nothing comes back
//!   until the announced reset. At the reset the new window's first
//!   request goes, and the rest follow at the policy's rate `q / w`,
//!   spreading the window instead of bursting into it (the rate is never
//!   taken below one release per `max_hold`). Without a policy rate but with a `limit` (GitHub's, OpenAI's
//!   and Anthropic's headers), the reset brings back the `limit` less every
//!   request released since the statement: a fixed window has at least that
//!   then, and so does a bucket whose reset means "full again" (OpenAI,
//!   Anthropic), which each later request delays. Without either, the
//!   estimate expires at the reset and the key is probed afresh.
//! * **Continuous** (token bucket, GCRA, sliding window): tokens refill at
//!   `q / w` all the time, up to the largest `remaining` ever seen. The gate
//!   switches to this reading only on evidence: before the reset it stated,
//!   the server stated a larger `remaining` for a later request, by no more
//!   than its rate could have refilled — which a windowed limiter never
//!   does. A throttle switches back. Families that say they refill
//!   continuously (OpenAI, Anthropic: the reset is the time until the limit
//!   is full again) are read so from the start, at the rate
//!   `(limit − remaining) ÷ reset`, up to `limit`.
//! * A windowed quota out of units before a reset of a second or less (an
//!   upper bound, in whole seconds) that was never seen even half full is
//!   asked: one probe, a few intervals of its rate later. Accepted, the
//!   quota reads as continuous (see `reset_probe`).

use std::time::Duration;

use tokio::time::Instant;

use super::model::{Admit, Grant};
use super::time::{after, after_secs, before, secs_between};
use crate::duration::from_secs_f64;
use crate::headers::{RateLimit, Refill, Stated};
pub(super) use reset_probe::Reply;
use reset_probe::{ResetProbe, PAUSE_INTERVALS, SHORT_RESET};

/// The reset assumed when a response states `remaining` but neither a reset
/// nor a window: short, so that a stale count is soon probed again.
const DEFAULT_RESET: Duration = Duration::from_secs(1);

/// Rates outside this range are treated as these bounds (per second); a
/// statement's own floor is one release per `max_hold`.
const MIN_RATE: f64 = 1e-3;
const MAX_RATE: f64 = 1e7;

/// A token count this close to 1 is 1 (float rounding in refills).
const EPS: f64 = 1e-9;

#[derive(Debug, Clone)]
pub(super) struct Quota {
    /// Refill rate in requests per second (`q / w`), if the policy is known
    /// or, once refill is proven, as inferred from the reset.
    rate: Option<f64>,
    /// The latest [`Statement::inferred_rate`].
    inferred: Option<f64>,
    /// Most tokens a fresh window can hold (`q`, or the largest `remaining`).
    limit: f64,
    /// Whether `limit` was stated rather than guessed.
    limit_known: bool,
    /// Largest `remaining` seen, plus one: the bucket size of a continuous
    /// limiter.
    burst: f64,
    tokens: f64,
    /// When `tokens` was last set.
    at: Instant,
    /// The reset most recently announced.
    reset: Instant,
    continuous: bool,
    /// The family says it refills continuously: read so from the start, and
    /// a throttle does not switch back.
    declared: bool,
    /// Smallest `remaining` stated since the last reset (windowed reading).
    floor: f64,
    /// The `remaining` that `tokens` was last set from: `stated − tokens` is
    /// what was committed since.
    stated: f64,
    /// The batch (see [`Grant::generation`]) whose statements set `tokens`,
    /// and its smallest `remaining` (continuous reading).
    batch: u64,
    batch_remaining: f64,
    evidence: Evidence,
    /// The last statement's reset was short (see `reset_probe`).
    short: bool,
    probe: ResetProbe,
}

/// Evidence that the server refills continuously, measured against the
/// tightest recent statement `remaining = r`, received at `at`. Before its
/// reset, a windowed limiter cannot state a larger `remaining` for a request
/// released after that statement (each request takes a unit); a refilling
/// one states up to `rate × elapsed` more. A larger rise than that is a
/// window reset seen early (resets are rounded to whole seconds), not
/// evidence.
#[derive(Debug, Clone)]
struct Evidence {
    remaining: f64,
    at: Instant,
    /// Counting stops here: the announced reset, less its rounding.
    until: Instant,
    /// Only requests released after the statement count.
    from_seq: u64,
}

/// A windowed quota whose largest `remaining` never reached this share of
/// its limit may be a bucket with a smaller burst: its short resets are
/// probed (see `reset_probe`).
const NEVER_FULL: f64 = 0.5;

/// Latency differences between requests, in seconds, allowed for when
/// bounding a refill (the server's clock is not the client's).
const JITTER: f64 = 0.05;

/// What one response said, as the gate uses it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Statement {
    pub(super) remaining: u64,
    pub(super) reset: Duration,
    pub(super) limit: Option<u64>,
    pub(super) window: Option<Duration>,
    /// Slowest rate a header may impose: one release per `max_hold`.
    pub(super) min_rate: f64,
    /// The family says the reset is "full again", refilling continuously.
    pub(super) continuous: bool,
    /// The reset as stated (before `max_hold` capped it) is a second or
    /// less: whole seconds, so an upper bound (see `reset_probe`).
    pub(super) short: bool,
}

impl Statement {
    /// A usable statement needs `remaining`; the reset falls back to the
    /// window, then to a short default. Every duration is capped at `max_hold`.
    pub(super) fn from_headers(rl: &RateLimit, max_hold: Duration) -> Option<Statement> {
        let remaining = rl.remaining?;
        let reset = rl.reset.or(rl.window).unwrap_or(DEFAULT_RESET);
        Some(Statement {
            remaining,
            short: reset <= SHORT_RESET,
            reset: reset.min(max_hold),
            limit: rl.limit,
            window: rl.window.filter(|w| !w.is_zero()),
            min_rate: (1.0 / max_hold.as_secs_f64()).max(MIN_RATE),
            continuous: false,
        })
    }

    /// One limit of a response, as the headers module read it.
    pub(super) fn from_stated(s: &Stated, max_hold: Duration) -> Option<Statement> {
        let mut st = Statement::from_headers(&s.quota, max_hold)?;
        st.continuous = s.refill == Refill::Continuous;
        Some(st)
    }

    fn rate(&self) -> Option<f64> {
        let (limit, window) = (self.limit?, self.window?);
        if limit == 0 {
            return None;
        }
        Some((limit as f64 / window.as_secs_f64()).clamp(self.min_rate, MAX_RATE))
    }

    /// The refill rate if the reset means "full again" (OpenAI's and
    /// Anthropic's headers say so): the missing units over the time to
    /// refill them. Used only once the server is seen to refill.
    fn inferred_rate(&self) -> Option<f64> {
        let limit = self.limit?;
        let missing = limit.checked_sub(self.remaining).filter(|&m| m > 0)?;
        let secs = self.reset.as_secs_f64();
        (secs > 0.0).then(|| (missing as f64 / secs).clamp(self.min_rate, MAX_RATE))
    }
}

impl Quota {
    /// A first statement. `others` are the requests in flight that it may
    /// not count; `next_seq` is the sequence the next release gets.
    pub(super) fn new(
        s: &Statement,
        now: Instant,
        grant: Grant,
        others: f64,
        next_seq: u64,
    ) -> Self {
        let remaining = s.remaining as f64;
        let reset = after(now, s.reset);
        let mut quota = Quota {
            rate: s.rate(),
            inferred: s.inferred_rate(),
            limit: s.limit.map_or(remaining, |l| l as f64).max(1.0),
            limit_known: s.limit.is_some(),
            burst: remaining + 1.0,
            tokens: remaining - others,
            at: now,
            reset,
            continuous: false,
            declared: s.continuous,
            floor: remaining,
            stated: remaining,
            batch: grant.generation,
            batch_remaining: remaining,
            evidence: Evidence::new(remaining, now, s.reset, next_seq),
            short: s.short,
            probe: ResetProbe::new(),
        };
        if quota.declared {
            quota.refills_continuously(now);
        }
        quota
    }

    /// A later statement, and what became of the request it answered.
    pub(super) fn update(
        &mut self,
        s: &Statement,
        now: Instant,
        grant: Grant,
        (others, next_seq): (f64, u64),
        reply: Reply,
    ) {
        let remaining = s.remaining as f64;
        let last = self.at;
        let probed = self.probe.answer(now, grant.released_at, reply);
        self.short = s.short;
        if let Some(rate) = s.rate() {
            self.rate = Some(rate);
        } else if let Some(inferred) = s.inferred_rate() {
            self.inferred = Some(inferred);
            if self.continuous && s.window.is_none() {
                self.rate = Some(inferred);
            }
        }
        if let Some(limit) = s.limit {
            self.limit = (limit as f64).max(1.0);
            self.limit_known = true;
        }
        self.burst = self
            .burst
            .max(remaining + 1.0)
            .min(self.limit.max(remaining + 1.0));
        let reset = after(now, s.reset);

        // The newest batch's lowest `remaining`; `None` for a reply from an
        // older batch, which may have been overtaken.
        let latest = if grant.generation > self.batch {
            self.batch = grant.generation;
            self.batch_remaining = remaining;
            Some(remaining)
        } else if grant.generation == self.batch {
            self.batch_remaining = self.batch_remaining.min(remaining);
            Some(self.batch_remaining)
        } else {
            None
        };

        if self.continuous {
            self.tokens = match latest {
                Some(r) => r - others,
                None => self.available(now).min(remaining - others),
            };
            self.reset = reset;
        } else {
            match latest {
                Some(r) if now >= self.reset => {
                    // A new window: resets are rounded up, so it has surely
                    // begun.
                    self.floor = r;
                    self.reset = reset;
                    self.probe.forget();
                }
                _ => {
                    // Same window (or a stale reply): `remaining` only falls,
                    // and every statement's reset is the window's end rounded
                    // up, so the earliest is the closest.
                    self.floor = self.floor.min(remaining);
                    self.reset = self.reset.min(reset);
                }
            }
            self.stated = self.floor;
            self.tokens = self.floor - others;
        }
        self.at = now;
        let (valid, tighter, more, refilled) = {
            let e = &self.evidence;
            let valid = now < e.until;
            let rate = self.rate.or(self.inferred).unwrap_or(0.0);
            let refill = rate * (secs_between(e.at, now) + JITTER) + 1.0;
            let rise = remaining - e.remaining;
            (
                valid,
                rise < 0.0,
                grant.seq >= e.from_seq && rise > 0.0 && rise <= refill,
                // An accepted probe of a short reset: units came back early
                // (no more than its pause and its round trip could bring:
                // more is a window's reset seen early).
                probed && rise <= rate * (secs_between(last, now) + JITTER) + PAUSE_INTERVALS + 1.0,
            )
        };
        if (valid && more) || refilled || self.declared {
            let was = self.continuous;
            self.refills_continuously(now);
            if refilled && !was && self.continuous {
                // The probe's statement is the newest count.
                self.tokens = remaining - others;
            }
        }
        if !valid || tighter {
            self.evidence = Evidence::new(remaining, now, s.reset, next_seq);
        }
    }

    fn refills_continuously(&mut self, now: Instant) {
        if self.continuous {
            return;
        }
        self.rate = self.rate.or(self.inferred);
        if self.rate.is_none() {
            return;
        }
        self.tokens = self.available(now);
        self.at = now;
        self.continuous = true;
        // Refilling: a probe still out has nothing left to tell.
        self.probe.forget();
    }

    /// The server throttled a request while this quota read as refilling
    /// continuously on evidence alone: that reading was wrong, or the bucket
    /// is shared with others; start over as windowed. Returns whether the
    /// reading changed (a windowed or declared quota keeps its count: the
    /// throttle may come from another limiter).
    pub(super) fn on_throttle(&mut self, now: Instant, released_at: Instant) -> bool {
        self.probe.answer(now, released_at, Reply::Throttled);
        if !self.continuous || self.declared {
            return false;
        }
        self.tokens = self.available(now).min(0.0);
        self.floor = self.floor.min(0.0);
        self.at = now;
        self.continuous = false;
        true
    }

    pub(super) fn on_grant(&mut self, now: Instant, units: f64) {
        let available = self.available(now);
        if available < units - EPS && self.probe_at(now).is_some_and(|p| p <= now) {
            self.probe.sent(now);
        }
        self.tokens = available - units;
        self.at = now;
    }

    /// A granted release was never sent: its units come back.
    pub(super) fn on_ungrant(&mut self, units: f64) {
        self.tokens += units;
        // While the quota is out only its probe goes, so a release taken
        // back while one is out is most likely the probe (at worst, one more
        // probe goes).
        self.probe.forget();
    }

    /// Windowed without a rate or a limit: nothing is known past the reset.
    pub(super) fn is_stale(&self, now: Instant) -> bool {
        self.rate.is_none() && !self.limit_known && now >= self.reset
    }

    pub(super) fn is_continuous(&self) -> bool {
        self.continuous
    }

    pub(super) fn has_rate(&self) -> bool {
        self.rate.is_some()
    }

    /// The rate it refills at, if known: what a fleet sharing it may
    /// reserve at.
    #[cfg(feature = "redis")]
    pub(super) fn rate(&self) -> Option<f64> {
        self.rate
    }

    pub(super) fn is_exhausted(&self, now: Instant) -> bool {
        self.available(now) < 1.0 - EPS
    }

    /// Past a rate-less reset with too few tokens, only a new statement can
    /// tell: wait for a reply, or with none in flight, let one go to ask.
    pub(super) fn check(&self, now: Instant, in_flight: u32, need: f64) -> Admit {
        match self.time_for(now, need) {
            Some(t) if t <= now => Admit::Now,
            Some(t) => Admit::At(t),
            None if in_flight == 0 => Admit::Now,
            None => Admit::OnResponse,
        }
    }

    /// When `need` tokens will be there if nothing else is learned; `None`
    /// if that cannot be foreseen.
    pub(super) fn time_for(&self, now: Instant, need: f64) -> Option<Instant> {
        let available = self.available(now);
        if available >= need - EPS {
            return Some(now);
        }
        if need - available <= 1.0 + EPS {
            if let Some(p) = self.probe_at(now) {
                return Some(p.max(now));
            }
        }
        let Some(rate) = self.rate else {
            // What comes back comes at the reset; past it, only news helps.
            return (now < self.reset).then_some(self.reset);
        };
        // Nothing comes back before a windowed reset.
        let from = if self.continuous || self.at >= self.reset {
            now
        } else {
            now.max(self.reset)
        };
        let have = self.available(from);
        if have >= need - EPS {
            return Some(from);
        }
        // Beyond the bucket's size, the wait for the last token.
        let short = need - have.min(self.cap());
        Some(after_secs(from, short / rate))
    }

    /// When a probe of a short reset may go, if one may: windowed and out
    /// of units before a reset of a second or less, at a known rate, and
    /// never seen with even half its quota left (a window seen full is a
    /// window; one that never is may be a bucket of a smaller burst).
    fn probe_at(&self, now: Instant) -> Option<Instant> {
        if self.continuous || !self.short || now >= self.reset {
            return None;
        }
        if !self.limit_known || self.burst > self.limit * NEVER_FULL {
            return None;
        }
        self.probe.at(self.at, self.rate?, self.reset)
    }

    fn cap(&self) -> f64 {
        if self.declared && self.limit_known {
            self.limit
        } else if self.continuous {
            self.burst
        } else {
            self.limit
        }
    }

    fn available(&self, now: Instant) -> f64 {
        let Some(rate) = self.rate else {
            if self.limit_known && self.at < self.reset && now >= self.reset {
                // The limit, less what was committed since the statement.
                return (self.limit - self.stated + self.tokens).min(self.limit);
            }
            return self.tokens;
        };
        let from = if self.continuous || self.at >= self.reset {
            self.at
        } else if now < self.reset {
            return self.tokens;
        } else {
            // A new window lets its first request go at the reset, and
            // spreads the rest at the rate.
            before(self.reset, from_secs_f64(1.0 / rate))
        };
        if now <= from || self.tokens >= self.cap() {
            return self.tokens;
        }
        (self.tokens + rate * secs_between(from, now)).min(self.cap())
    }
}

impl Evidence {
    fn new(remaining: f64, now: Instant, reset: Duration, from_seq: u64) -> Self {
        // Resets are stated in whole seconds, rounded either way: stop
        // counting up to a second (at most half the reset) early.
        let slack = (reset / 2).min(Duration::from_secs(1));
        Evidence {
            remaining,
            at: now,
            until: after(now, reset - slack),
            from_seq,
        }
    }
}

mod reset_probe;
#[cfg(test)]
mod tests;
