//! Every limit a response states, each kept apart: the IETF policies by
//! name, the requests and tokens families of the LLM vendors, GitHub's and
//! X's quotas with the resource they belong to.

use std::time::SystemTime;

use http::HeaderMap;

use super::number::trim;
use super::ratelimit::{self, finish, reset_from_uint, separate, window_from_item, Names};
use super::sf::{self, Item};
use super::{first_valid, RateLimit, Seen};

/// Most limits kept from one response; further ones are ignored (no server
/// states more than a handful, and a hostile one cannot make the gate
/// allocate).
pub const MAX_STATED: usize = 8;

/// What a stated limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// Requests: each request takes one.
    Requests,
    /// Tokens (OpenAI's and Anthropic's `tokens`): a request takes its
    /// [`RequestCost`](crate::RequestCost).
    Tokens,
    /// Anthropic's input tokens; counted like [`Unit::Tokens`], since a
    /// request's cost bounds its input.
    InputTokens,
    /// Anthropic's output tokens; counted like [`Unit::Tokens`].
    OutputTokens,
}

impl Unit {
    /// Whether requests take their token cost, not one, from this limit.
    pub fn counts_tokens(self) -> bool {
        !matches!(self, Unit::Requests)
    }
}

/// What `reset` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refill {
    /// The end of the current window, when the quota comes back (the IETF
    /// drafts, `X-RateLimit-*`): nothing is known to come back before it.
    Window,
    /// The time until the limit is back to its full `limit`, refilling
    /// continuously (OpenAI, Anthropic): its rate is
    /// `(limit − remaining) ÷ reset`, whatever window the limit is named for.
    Continuous,
}

/// One limit a response stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stated {
    /// Identifies the same limit across responses: a stable hash of its
    /// header family, policy name and unit.
    pub id: u64,
    /// What the limit counts.
    pub unit: Unit,
    /// How the quota comes back.
    pub refill: Refill,
    /// The resource the limit belongs to (GitHub's `x-ratelimit-resource`:
    /// `core`, `search`, …), as a stable hash of its lowercase name; `None`
    /// for a limit of the whole host.
    pub resource: Option<u64>,
    /// The numbers.
    pub quota: RateLimit,
}

/// The limits one response stated, in header order, at most
/// [`MAX_STATED`]. Made by [`stated`](super::stated) and
/// [`hints`](super::hints); no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits {
    items: [Option<Stated>; MAX_STATED],
    len: usize,
}

impl RateLimits {
    /// The limits, in the order they were read.
    pub fn iter(&self) -> impl Iterator<Item = &Stated> + '_ {
        self.items[..self.len].iter().flatten()
    }

    /// How many limits were stated.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no limit was stated.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `s` unless full or a limit with the same id is already there
    /// (a repeated policy counts by its first statement).
    fn push(&mut self, s: Stated) {
        if self.len < MAX_STATED && !self.iter().any(|o| o.id == s.id) {
            self.items[self.len] = Some(s);
            self.len += 1;
        }
    }

    /// The limit that binds first, as one [`RateLimit`]: of the exhausted
    /// ones (`remaining` 0), the one that resets last; else requests before
    /// tokens, then the smallest `remaining`, then the latest reset.
    pub fn binding(&self) -> Option<RateLimit> {
        self.iter()
            .min_by_key(|s| {
                let q = &s.quota;
                let exhausted = q.remaining == Some(0);
                (
                    !exhausted,
                    std::cmp::Reverse(q.reset.filter(|_| exhausted)),
                    s.unit.counts_tokens(),
                    q.remaining,
                    std::cmp::Reverse(q.reset),
                )
            })
            .map(|s| s.quota)
    }
}

/// A stable 64-bit hash (FNV-1a) over ASCII-lowercased bytes: the same in
/// every process, so ids and resources can be shared.
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b.to_ascii_lowercase());
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator, so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A family of separate `limit`/`remaining`/`reset` fields with its unit.
struct Family {
    tag: &'static [u8],
    names: Names,
    unit: Unit,
}

const X_TWITTER: Names = Names {
    limit: "x-rate-limit-limit",
    remaining: "x-rate-limit-remaining",
    resets: &["x-rate-limit-reset"],
};

const OPENAI: [Family; 2] = [
    Family {
        tag: b"openai-requests",
        names: Names {
            limit: "x-ratelimit-limit-requests",
            remaining: "x-ratelimit-remaining-requests",
            resets: &["x-ratelimit-reset-requests"],
        },
        unit: Unit::Requests,
    },
    Family {
        tag: b"openai-tokens",
        names: Names {
            limit: "x-ratelimit-limit-tokens",
            remaining: "x-ratelimit-remaining-tokens",
            resets: &["x-ratelimit-reset-tokens"],
        },
        unit: Unit::Tokens,
    },
];

const ANTHROPIC: [Family; 4] = [
    Family {
        tag: b"anthropic-requests",
        names: Names {
            limit: "anthropic-ratelimit-requests-limit",
            remaining: "anthropic-ratelimit-requests-remaining",
            resets: &["anthropic-ratelimit-requests-reset"],
        },
        unit: Unit::Requests,
    },
    Family {
        tag: b"anthropic-tokens",
        names: Names {
            limit: "anthropic-ratelimit-tokens-limit",
            remaining: "anthropic-ratelimit-tokens-remaining",
            resets: &["anthropic-ratelimit-tokens-reset"],
        },
        unit: Unit::Tokens,
    },
    Family {
        tag: b"anthropic-input-tokens",
        names: Names {
            limit: "anthropic-ratelimit-input-tokens-limit",
            remaining: "anthropic-ratelimit-input-tokens-remaining",
            resets: &["anthropic-ratelimit-input-tokens-reset"],
        },
        unit: Unit::InputTokens,
    },
    Family {
        tag: b"anthropic-output-tokens",
        names: Names {
            limit: "anthropic-ratelimit-output-tokens-limit",
            remaining: "anthropic-ratelimit-output-tokens-remaining",
            resets: &["anthropic-ratelimit-output-tokens-reset"],
        },
        unit: Unit::OutputTokens,
    },
];

/// Every limit stated; `now` is the reference for absolute resets.
pub(super) fn from_headers(headers: &HeaderMap, now: SystemTime, seen: Seen) -> RateLimits {
    let mut out = RateLimits::default();
    if seen.has(Seen::IETF) {
        structured(headers, now, &mut out);
        if out.is_empty() {
            let older = ratelimit::dictionary(headers, now)
                .or_else(|| separate(headers, now, &ratelimit::SEPARATE));
            push_window(&mut out, b"ietf", None, older);
        }
    }
    if seen.has(Seen::X_RATELIMIT) {
        let resource = first_valid(headers, "x-ratelimit-resource", |v| {
            let v = trim(v);
            (!v.is_empty()).then(|| stable_hash(&[v]))
        });
        let x = separate(headers, now, &ratelimit::X_RATELIMIT);
        push_window(&mut out, b"x-ratelimit", resource, x);
        for f in &OPENAI {
            push_family(&mut out, headers, now, f);
        }
    }
    if seen.has(Seen::X_RATE_LIMIT) {
        push_window(
            &mut out,
            b"x-rate-limit",
            None,
            separate(headers, now, &X_TWITTER),
        );
    }
    if seen.has(Seen::ANTHROPIC) {
        for f in &ANTHROPIC {
            push_family(&mut out, headers, now, f);
        }
    }
    out
}

fn push_window(out: &mut RateLimits, tag: &[u8], resource: Option<u64>, q: Option<RateLimit>) {
    if let Some(quota) = q {
        let res = resource.map(u64::to_le_bytes);
        out.push(Stated {
            id: stable_hash(&[tag, res.as_ref().map_or(&[][..], |r| &r[..])]),
            unit: Unit::Requests,
            refill: Refill::Window,
            resource,
            quota,
        });
    }
}

fn push_family(out: &mut RateLimits, headers: &HeaderMap, now: SystemTime, f: &Family) {
    if let Some(quota) = separate(headers, now, &f.names) {
        out.push(Stated {
            id: stable_hash(&[f.tag]),
            unit: f.unit,
            refill: Refill::Continuous,
            resource: None,
            quota,
        });
    }
}

/// The current draft: each `RateLimit` item with `r` is a limit, matched to
/// the `RateLimit-Policy` item of the same name for `q`, `w` and the quota
/// unit `qu` (default `"requests"`; units this crate cannot count, such as
/// `"content-bytes"`, are left out).
fn structured(headers: &HeaderMap, now: SystemTime, out: &mut RateLimits) {
    for line in headers.get_all("ratelimit") {
        let Some(members) = sf::list(line.as_bytes()) else {
            continue;
        };
        for member in members {
            let Some(Item::Uint(remaining)) = member.param(b"r") else {
                continue;
            };
            let reset = match member.param(b"t") {
                Some(Item::Uint(t)) => reset_from_uint(t, now),
                _ => None,
            };
            let name = match member.value {
                Item::Name(n) => Some(n),
                _ => None,
            };
            let policy = name.and_then(|name| {
                first_valid(headers, "ratelimit-policy", |value| {
                    sf::list(value)?.find(|m| m.value == Item::Name(name))
                })
            });
            let unit = match policy.and_then(|p| p.param(b"qu")) {
                None => Unit::Requests,
                Some(Item::Name(u)) if u.eq_ignore_ascii_case(b"requests") => Unit::Requests,
                Some(_) => continue,
            };
            let limit = match policy.and_then(|p| p.param(b"q")) {
                Some(Item::Uint(q)) => Some(q),
                _ => None,
            };
            let window = policy.and_then(|p| window_from_item(p.param(b"w")));
            let Some(quota) = finish(RateLimit {
                limit,
                remaining: Some(remaining),
                reset,
                window,
            }) else {
                continue;
            };
            out.push(Stated {
                id: stable_hash(&[b"ietf", name.unwrap_or_default()]),
                unit,
                refill: Refill::Window,
                resource: None,
                quota,
            });
        }
    }
}
