//! Vendor RateLimit families: OpenAI (`x-ratelimit-*-requests`/`-tokens`,
//! Go-duration resets) and Anthropic (`anthropic-ratelimit-*`, RFC 3339
//! resets). Both state a requests quota and a tokens quota.

use std::time::SystemTime;

use http::HeaderMap;

use super::ratelimit::{separate, Names};
use super::RateLimit;

const OPENAI_REQUESTS: Names = Names {
    limit: "x-ratelimit-limit-requests",
    remaining: "x-ratelimit-remaining-requests",
    resets: &["x-ratelimit-reset-requests"],
};

const OPENAI_TOKENS: Names = Names {
    limit: "x-ratelimit-limit-tokens",
    remaining: "x-ratelimit-remaining-tokens",
    resets: &["x-ratelimit-reset-tokens"],
};

const ANTHROPIC_REQUESTS: Names = Names {
    limit: "anthropic-ratelimit-requests-limit",
    remaining: "anthropic-ratelimit-requests-remaining",
    resets: &["anthropic-ratelimit-requests-reset"],
};

const ANTHROPIC_TOKENS: Names = Names {
    limit: "anthropic-ratelimit-tokens-limit",
    remaining: "anthropic-ratelimit-tokens-remaining",
    resets: &["anthropic-ratelimit-tokens-reset"],
};

pub(super) fn openai(headers: &HeaderMap, now: SystemTime) -> Option<RateLimit> {
    choose(
        separate(headers, now, &OPENAI_REQUESTS),
        separate(headers, now, &OPENAI_TOKENS),
    )
}

pub(super) fn anthropic(headers: &HeaderMap, now: SystemTime) -> Option<RateLimit> {
    choose(
        separate(headers, now, &ANTHROPIC_REQUESTS),
        separate(headers, now, &ANTHROPIC_TOKENS),
    )
}

/// The quota that binds: requests, unless tokens is exhausted and requests
/// is not, or both are exhausted and tokens resets later.
fn choose(requests: Option<RateLimit>, tokens: Option<RateLimit>) -> Option<RateLimit> {
    let (Some(requests), Some(tokens)) = (requests, tokens) else {
        return requests.or(tokens);
    };
    let exhausted = |q: &RateLimit| q.remaining == Some(0);
    let use_tokens = exhausted(&tokens) && (!exhausted(&requests) || tokens.reset > requests.reset);
    Some(if use_tokens { tokens } else { requests })
}
