//! The RateLimit header families: the IETF drafts
//! (draft-ietf-httpapi-ratelimit-headers) and the de-facto `X-RateLimit-*`.
//! Each family's fields are read here; `stated.rs` gathers them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::duration_str;
use super::number::{leading_uint, seconds, trim, until, within_hint};
use super::rfc3339;
use super::sf::{self, Item};
use super::{first_valid, RateLimit};

/// A reset in seconds above this is a Unix time, not a delta: 10^9 s is
/// 2001-09-09, and no server asks for a 31-year wait (GitHub and Discord send
/// epoch seconds in `X-RateLimit-Reset`).
const EPOCH_THRESHOLD: Duration = Duration::from_secs(1_000_000_000);

/// Header names of one "limit / remaining / reset" family.
pub(super) struct Names {
    pub(super) limit: &'static str,
    pub(super) remaining: &'static str,
    /// Reset headers, most trusted first.
    pub(super) resets: &'static [&'static str],
}

/// draft-ietf-httpapi-ratelimit-headers-00…06.
pub(super) const SEPARATE: Names = Names {
    limit: "ratelimit-limit",
    remaining: "ratelimit-remaining",
    resets: &["ratelimit-reset"],
};

/// GitHub, Discord, and many others. Discord's `-reset-after` is an explicit
/// delta, so it beats `-reset`, which may be an epoch time.
pub(super) const X_RATELIMIT: Names = Names {
    limit: "x-ratelimit-limit",
    remaining: "x-ratelimit-remaining",
    resets: &["x-ratelimit-reset-after", "x-ratelimit-reset"],
};

/// Applies the shared rules to a family's fields: `remaining` is clamped to
/// `limit` (a server cannot have more left than its quota), and a family
/// that states neither `remaining` nor `reset` says nothing usable.
pub(super) fn finish(mut found: RateLimit) -> Option<RateLimit> {
    if let (Some(limit), Some(remaining)) = (found.limit, found.remaining) {
        found.remaining = Some(remaining.min(limit));
    }
    (found.remaining.is_some() || found.reset.is_some()).then_some(found)
}

/// A reset value in any form (see the module docs): seconds or epoch
/// seconds, a Go duration, or an RFC 3339 time. `None` if malformed or above
/// `MAX_HINT`.
pub(super) fn parse_reset(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = trim(value);
    let reset = if value.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        reset_from_secs(seconds(value)?, now)?
    } else if value.get(4) == Some(&b'-') {
        until(rfc3339::parse_bytes(value)?, now)
    } else {
        duration_str::parse_bytes(value)?
    };
    within_hint(reset)
}

/// Seconds as a delta, or as a Unix time above [`EPOCH_THRESHOLD`].
fn reset_from_secs(secs: Duration, now: SystemTime) -> Option<Duration> {
    if secs > EPOCH_THRESHOLD {
        Some(until(UNIX_EPOCH.checked_add(secs)?, now))
    } else {
        Some(secs)
    }
}

/// An integer reset from a structured field (`t=30`, `reset=30`).
pub(super) fn reset_from_uint(secs: u64, now: SystemTime) -> Option<Duration> {
    within_hint(reset_from_secs(Duration::from_secs(secs), now)?)
}

/// A window length in seconds; zero is meaningless (and would divide by
/// zero in a pacer), so it is ignored.
pub(super) fn window_from_item(item: Option<Item<'_>>) -> Option<Duration> {
    match item? {
        Item::Uint(secs) if secs > 0 => within_hint(Duration::from_secs(secs)),
        _ => None,
    }
}

/// The window of the quota policy `limit;w=…` in a list such as
/// `RateLimit-Limit: 100, 100;w=60` (drafts 00–06) or draft-07's
/// `RateLimit-Policy: 100;w=60`.
fn window_for(value: &[u8], limit: u64) -> Option<Duration> {
    sf::list(value)?
        .filter(|m| m.value == Item::Uint(limit))
        .find_map(|m| window_from_item(m.param(b"w")))
}

/// draft-07: `RateLimit: limit=100, remaining=10, reset=30`, with the window
/// in `RateLimit-Policy: 100;w=60`.
pub(super) fn dictionary(headers: &HeaderMap, now: SystemTime) -> Option<RateLimit> {
    let (mut limit, mut remaining, mut reset) = (None, None, None);
    for line in headers.get_all("ratelimit") {
        let Some(members) = sf::dictionary(line.as_bytes()) else {
            continue;
        };
        for member in members {
            let Item::Uint(n) = member.value else {
                continue;
            };
            // First valid value of each key, as for repeated headers.
            match member.key {
                b"limit" => limit = limit.or(Some(n)),
                b"remaining" => remaining = remaining.or(Some(n)),
                b"reset" => reset = reset.or_else(|| reset_from_uint(n, now)),
                _ => {}
            }
        }
    }
    let window = limit.and_then(|l| first_valid(headers, "ratelimit-policy", |v| window_for(v, l)));
    finish(RateLimit {
        limit,
        remaining,
        reset,
        window,
    })
}

/// A family of separate `limit`, `remaining` and `reset` headers.
pub(super) fn separate(headers: &HeaderMap, now: SystemTime, names: &Names) -> Option<RateLimit> {
    let remaining = first_valid(headers, names.remaining, leading_uint);
    let reset = names
        .resets
        .iter()
        .find_map(|name| first_valid(headers, name, |v| parse_reset(v, now)));
    if remaining.is_none() && reset.is_none() {
        return None;
    }
    let limit = first_valid(headers, names.limit, leading_uint);
    let window = limit.and_then(|l| first_valid(headers, names.limit, |v| window_for(v, l)));
    finish(RateLimit {
        limit,
        remaining,
        reset,
        window,
    })
}
