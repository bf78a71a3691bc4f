//! What a throttle teaches a key: a hold for its wait hint (or a probe that
//! cuts a short one short, see `short_hint`), a back-off of the probes of a
//! server that accepts nothing, and a new learned rate.

use tokio::time::Instant;

use super::{Constraints, PROBE_BACKOFF};
use crate::rate_limit::learner::Learner;
use crate::rate_limit::meter::Start;
use crate::rate_limit::model::{Grant, Knobs, Limited, Need};
use crate::rate_limit::response::Outcome;
use crate::rate_limit::short_hint::{Answer, Probe, SHORT_HINT};
use crate::rate_limit::slow_start::SlowStart;
use crate::rate_limit::time::{after, doubling};

/// With a store, how long after a throttle (the fleet's or this
/// process's), or after slow start begins, a key's accepted answers are
/// counted in Redis at once (seconds): the stretches measured then are
/// short (slow start, a probe's ramp, the periods of one episode), and a
/// count read back every 50 ms skews them by as much as it lags.
#[cfg(feature = "redis")]
const PROMPT_FOR: f64 = 1.0;

impl Constraints {
    /// With a store: whether an accepted answer is written to Redis at
    /// once. Only a key whose rate is learned from throttles measures the
    /// fleet's count, and only stretches shortly after a throttle (or the
    /// start of slow start) are short enough for its lag to matter.
    /// Farther from a throttle the count goes with the next sync, as it
    /// always does for a key paced by a stated quota or a configured limit
    /// that the server never refused.
    #[cfg(feature = "redis")]
    pub(super) fn counts_promptly(&self, now: Instant) -> bool {
        if self.quota_paces() {
            return false;
        }
        let recent = |t: Instant| crate::rate_limit::time::secs_between(t, now) < PROMPT_FOR;
        // Slow start (a fresh key's, or after a hold) ends at a throttle
        // that measures the server's burst; so does any later throttle.
        let measuring = match self.slow_start {
            Some(_) => self.meter.last_event(),
            None => self.meter.last_throttle(),
        };
        measuring.is_some_and(recent)
            || self
                .shared
                .as_ref()
                .and_then(|s| s.curve(now))
                .is_some_and(|c| recent(c.since))
    }

    /// A throttle for `grant` (of `need`, scoped to `resource` if the
    /// response named one). Returns why the key became limited, if it did.
    pub(super) fn on_throttled(
        &mut self,
        now: Instant,
        outcome: &Outcome,
        grant: Grant,
        need: &Need,
        resource: Option<u64>,
        knobs: Knobs,
    ) -> Option<Limited> {
        let hint = outcome
            .hold
            .map(|d| d.min(knobs.max_hold))
            .filter(|d| !d.is_zero());
        if let Some(Answer::Meant(until)) = self.probe.map(|p| p.answer(grant, true)) {
            #[cfg(feature = "redis")]
            if self.shared.is_some() {
                return self.reprobe(now, until, knobs);
            }
            // The probe was refused too: the hint was meant. Hold until it
            // ends, and learn afresh after it, as after any hold.
            self.probe = None;
            self.soft_episode = false;
            self.meter.restart();
            let until = until.max(hint.map_or(now, |h| after(now, h)));
            if !self.hold(None, until) {
                return None;
            }
            #[cfg(feature = "redis")]
            if let Some(shared) = &self.shared {
                shared.publish_hold(until);
            }
            return Some(Limited::Held(until.saturating_duration_since(now)));
        }
        let closes = self.meter.covers(grant);
        // A throttle that an exhausted quota explains says nothing new of
        // the rate; any other teaches it.
        let explained = self.quotas.explains(now, need);
        let learns = !explained && !self.quota_paces() && closes;
        // Nothing accepted since the last throttle: back off the probes.
        // With a store, not before the first throttle: the others may have
        // taken the burst, and their count reaches this process late.
        let fleet = self.fleet_accepted();
        let first_of_fleet = fleet.is_some() && !self.meter.has_throttled();
        let backoff = if closes && !explained && !first_of_fleet && self.meter.accepted(fleet) == 0
        {
            self.futile = self.futile.saturating_add(1);
            Some(doubling(PROBE_BACKOFF, self.futile, knobs.max_hold))
        } else {
            None
        };
        let short = hint.filter(|h| *h <= SHORT_HINT && resource.is_none());
        // A short hint may be probed when the throttle teaches the rate.
        let probed = short.filter(|_| learns && backoff.is_none());
        let mut limited = None;
        if learns {
            let next = match (probed, hint) {
                (Some(_), _) => Start::Empty,
                (None, Some(_)) => Start::Full,
                (None, None) => Start::Unknown,
            };
            let burst = self.learner.as_ref().and_then(Learner::burst);
            let mut period = self.meter.close(now, next, fleet, burst);
            period.hint = probed.map(|h| h.as_secs_f64());
            let learner = self.learner.get_or_insert_with(|| Learner::new(now));
            learner.on_throttle(now, period);
            // Only a measured rate is the fleet's: a guess would be taken
            // by every process as the lowest. A throttle too soon after the
            // last to measure anything, while the fleet's rate stands, says
            // that rate is too high: the fleet cuts it (see `offer_cut`).
            #[cfg(feature = "redis")]
            if let (Some((rate, measure, tau)), Some(shared)) = (learner.curve(), &self.shared) {
                if learner.is_fleet_rate() && (learner.is_measured_now() || probed.is_none()) {
                    shared.publish_rate(rate, measure, tau);
                } else if learner.is_fitted() && !learner.is_measured_now() {
                    shared.offer_cut(now);
                }
            }
            if !learner.is_measured() && knobs.slow_start && self.slow_start_applies() {
                self.slow_start = Some(SlowStart::new(now));
            }
            limited = Some(Limited::Throttled);
        }
        let rate = self.learner.as_ref().and_then(|l| l.rate(now));
        #[cfg(feature = "redis")]
        if let (Some(h), None, true) = (probed, rate, self.shared.is_some()) {
            // With a store, a first period in which this process saw nothing
            // accepted proves nothing: the other processes took the burst.
            // Probe after a back-off, as after a refused probe, rather than
            // hold every process for the hint.
            self.soft_episode = true;
            return self.reprobe(now, after(now, h), knobs).or(limited);
        }
        if let (Some(h), Some(rate)) = (probed, rate) {
            let fitted = self.learner.as_ref().is_some_and(Learner::is_fitted);
            self.probe = Some(Probe::new(now, h, rate, fitted));
            self.soft_episode = true;
            return limited;
        }
        if learns {
            // Held (or not) for this episode: so are its other throttles.
            self.soft_episode = false;
            self.probe = None;
            if probed.is_some() {
                self.meter.restart();
            }
        } else if short.is_some() && self.soft_episode {
            // A request already in flight when the episode's throttle was
            // probed: its hint is the same upper bound.
            return limited;
        }
        if let Some(hold) = hint.max(backoff) {
            let until = after(now, hold);
            if self.hold(resource, until) {
                limited = Some(Limited::Held(hold));
                #[cfg(feature = "redis")]
                if let (None, Some(shared)) = (resource, &self.shared) {
                    shared.publish_hold(until);
                }
            }
        }
        limited
    }

    /// With a store, a refused probe proves nothing: other processes send
    /// too, and one of them may have taken the slot the pause left. The
    /// key probes again after the pause (backed off while refusals repeat),
    /// and its hint ends the probing as before. Holding every process for
    /// the hint instead would idle the fleet for a second per refused probe.
    #[cfg(feature = "redis")]
    fn reprobe(&mut self, now: Instant, hint_end: Instant, knobs: Knobs) -> Option<Limited> {
        self.futile = self.futile.saturating_add(1);
        let backoff = doubling(PROBE_BACKOFF, self.futile, knobs.max_hold);
        let learner = self.learner.as_ref();
        let hint = hint_end.saturating_duration_since(now);
        let probe = match learner.and_then(|l| l.rate(now)) {
            Some(rate) => {
                let fitted = learner.is_some_and(Learner::is_fitted);
                Probe::new(now, hint, rate, fitted).not_before(after(now, backoff))
            }
            // No rate to pause for: the back-off alone.
            None => Probe::after_pause(now, hint, backoff),
        };
        self.probe = Some(probe);
        None
    }
}
