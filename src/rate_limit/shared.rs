//! A key's constraints shared with other processes through a [`RedisStore`]
//! (feature `redis`): the bridge between [`Constraints`](super::constraints)
//! and the store.
//!
//! Local constraints still bind as without a store; on top, once they let a
//! request go, every pace that binds it is reserved in Redis: each
//! configured [`Limit`] (named after its amount, period and burst, so that
//! processes configured alike share it) and the request pace the gate
//! derived (a stated quota's rate, or the learned rate: the lowest any
//! process published recently, climbing since). While Redis is unavailable, the store answers
//! "local" and the local constraints alone decide.

use std::fmt;

use tokio::time::Instant;

use super::learner::Curve;
use super::limit::Limit;
use super::meter::Fleet;
use super::model::{Admit, Need};
use super::store::{Offer, Pace, RedisStore, Reservation};
use crate::headers::Unit;

/// Pace this far under a stated quota's rate: a little headroom in the
/// server's bucket absorbs the jitter between processes' releases.
const QUOTA_MARGIN: f64 = 0.98;

/// One key's link to the store.
#[derive(Clone)]
pub(super) struct Shared {
    store: RedisStore,
    /// `{prefix}:{key hex}`.
    name: String,
    limits: Vec<SharedLimit>,
}

#[derive(Clone)]
struct SharedLimit {
    id: String,
    pace: Pace,
    unit: Unit,
}

impl Shared {
    pub(super) fn new(store: &RedisStore, key: u64, limits: &[Limit]) -> Self {
        let limits = limits
            .iter()
            .filter_map(|l| {
                let (rate, size) = (l.rate()?, l.size());
                Some(SharedLimit {
                    id: format!(
                        "limit:{}:{}/{}ms:{}",
                        if l.unit().counts_tokens() {
                            "tokens"
                        } else {
                            "requests"
                        },
                        l.amount(),
                        l.per().as_millis(),
                        size
                    ),
                    pace: Pace { rate, burst: size },
                    unit: l.unit(),
                })
            })
            .collect();
        Shared {
            store: store.clone(),
            name: store.key(&format!("{key:016x}")),
            limits,
        }
    }

    /// A hold some process published, if it lasts past `now`.
    pub(super) fn hold(&self, now: Instant) -> Option<Instant> {
        self.store.hold(&self.name, now)
    }

    pub(super) fn publish_hold(&self, until: Instant) {
        self.store.publish_hold(&self.name, until);
    }

    /// The fleet's rate now: as measured recently, climbed since while
    /// Redis answered (see [`RedisStore::rate`]).
    pub(super) fn rate(&self, now: Instant) -> Option<f64> {
        self.store.rate(&self.name, now)
    }

    /// The fleet's rate, as a curve to climb with.
    pub(super) fn curve(&self, now: Instant) -> Option<Curve> {
        self.store.curve(&self.name, now)
    }

    /// Offers `rate`, set by a measure of `measure` and climbing with time
    /// constant `tau` seconds, as the fleet's.
    pub(super) fn publish_rate(&self, rate: f64, measure: f64, tau: f64) {
        self.store
            .publish_rate(&self.name, Offer::measure(rate, measure, tau));
    }

    /// A throttle measured nothing (it came too soon after the last) while
    /// the fleet's rate stands: offers that rate cut by β (as AWS's and
    /// CUBIC's multiplicative decrease), climbing back as after a measure.
    /// The store takes it only once the standing rate is older than one
    /// throttle's episode: the stragglers of the throttle that set it (in
    /// flight then, or released before every process had read it) are no
    /// news; repeated throttles after it are.
    pub(super) fn offer_cut(&self, now: Instant) {
        if let Some(rate) = self.rate(now) {
            self.store.publish_rate(&self.name, Offer::cut(rate));
        }
    }

    /// An accepted answer, counted for the fleet: `promptly`, written to
    /// Redis at once (see `RedisStore::count_accepted_promptly`).
    pub(super) fn count_accepted(&self, promptly: bool) {
        if promptly {
            self.store.count_accepted_promptly(&self.name);
        } else {
            self.store.count_accepted(&self.name);
        }
    }

    /// Responses the server accepted from all processes, as far as known,
    /// while Redis answers (see `Fleet`).
    pub(super) fn accepted(&self) -> Option<Fleet> {
        let era = self.store.count_era(&self.name)?;
        Some(Fleet {
            count: self.store.accepted(&self.name),
            era,
        })
    }

    /// The request pace for a quota's rate: no burst, since the fleet
    /// cannot know how much of the server's burst is left, and a throttle
    /// holds every process (releases at the rate, as after a hold).
    pub(super) fn quota_pace(rate: f64) -> Pace {
        Pace {
            rate: rate * QUOTA_MARGIN,
            burst: 1.0,
        }
    }

    /// Reserves what `need` takes from every shared pace that binds it;
    /// `pace` is the request pace derived locally, if any. The first pace
    /// that is not ready decides (units already reserved from the others
    /// are spent: an early reservation wastes a little, never overshoots).
    pub(super) fn admit(&self, now: Instant, need: &Need, pace: Option<Pace>) -> Admit {
        let limits = self.limits.iter().map(|l| {
            let units = need.units(l.unit).ceil().max(0.0) as u64;
            (l.id.as_str(), l.pace, units)
        });
        for (id, pace, units) in limits.chain(pace.map(|p| ("pace", p, 1))) {
            if units == 0 {
                continue;
            }
            match self.store.reserve(&self.name, id, units, pace, now) {
                Reservation::Go | Reservation::Local => {}
                Reservation::At(t) | Reservation::Pending(t) => return Admit::At(t),
            }
        }
        Admit::Now
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
