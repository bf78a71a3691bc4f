//! Table-driven tests for the header parsers, on a fixed clock, plus a
//! deterministic "never panics" sweep over pseudo-random input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

/// 2026-11-18T11:06:40Z; never the real clock.
const NOW_SECS: u64 = 1_795_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Headers = &'static [(&'static str, &'static [u8])];

fn map(pairs: Headers) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    headers
}

fn rl(
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<Duration>,
    window: Option<Duration>,
) -> Option<RateLimit> {
    Some(RateLimit {
        limit,
        remaining,
        reset,
        window,
    })
}

// ---------------------------------------------------------------- Retry-After

#[test]
fn retry_after_table() {
    let cases: &[(&str, Headers, Option<Duration>)] = &[
        ("no headers", &[], None),
        (
            "unrelated headers",
            &[("content-type", b"text/plain")],
            None,
        ),
        ("delta seconds", &[("retry-after", b"120")], Some(secs(120))),
        ("zero", &[("retry-after", b"0")], Some(Duration::ZERO)),
        (
            "name is case-insensitive",
            &[("Retry-After", b"7")],
            Some(secs(7)),
        ),
        (
            "whitespace trimmed",
            &[("retry-after", b"  30\t")],
            Some(secs(30)),
        ),
        (
            "decimal seconds",
            &[("retry-after", b"1.5")],
            Some(ms(1500)),
        ),
        (
            "leading-dot decimal",
            &[("retry-after", b".5")],
            Some(ms(500)),
        ),
        ("negative ignored", &[("retry-after", b"-1")], None),
        ("plus sign ignored", &[("retry-after", b"+5")], None),
        ("exponent ignored", &[("retry-after", b"1e10")], None),
        (
            "u64 overflow ignored",
            &[("retry-after", b"99999999999999999999")],
            None,
        ),
        (
            "27 hours kept",
            &[("retry-after", b"99999")],
            Some(secs(99_999)),
        ),
        (
            "exactly MAX_HINT kept",
            &[("retry-after", b"31536000")],
            Some(MAX_HINT),
        ),
        (
            "above MAX_HINT ignored",
            &[("retry-after", b"31536001")],
            None,
        ),
        ("empty ignored", &[("retry-after", b"")], None),
        ("blank ignored", &[("retry-after", b"   ")], None),
        ("word ignored", &[("retry-after", b"soon")], None),
        ("unit ignored", &[("retry-after", b"5 s")], None),
        ("two dots ignored", &[("retry-after", b"1.2.3")], None),
        ("non-UTF-8 ignored", &[("retry-after", b"\xff\xfe")], None),
        (
            "IMF-fixdate in the future",
            &[("retry-after", b"Wed, 18 Nov 2026 11:07:40 GMT")],
            Some(secs(60)),
        ),
        (
            "RFC 850 date",
            &[("retry-after", b"Wednesday, 18-Nov-26 11:07:40 GMT")],
            Some(secs(60)),
        ),
        (
            "asctime date",
            &[("retry-after", b"Wed Nov 18 11:07:40 2026")],
            Some(secs(60)),
        ),
        (
            "date 27 h ahead kept",
            &[("retry-after", b"Thu, 19 Nov 2026 14:06:40 GMT")],
            Some(secs(97_200)),
        ),
        (
            "date now is zero",
            &[("retry-after", b"Wed, 18 Nov 2026 11:06:40 GMT")],
            Some(Duration::ZERO),
        ),
        (
            "past date is zero",
            &[("retry-after", b"Sun, 06 Nov 1994 08:49:37 GMT")],
            Some(Duration::ZERO),
        ),
        (
            "year 1970 is zero",
            &[("retry-after", b"Thu, 01 Jan 1970 00:00:00 GMT")],
            Some(Duration::ZERO),
        ),
        (
            "year 9999 above MAX_HINT",
            &[("retry-after", b"Fri, 31 Dec 9999 23:59:59 GMT")],
            None,
        ),
        (
            "February 31 ignored",
            &[("retry-after", b"Tue, 31 Feb 2026 11:07:40 GMT")],
            None,
        ),
        (
            "wrong weekday ignored",
            &[("retry-after", b"Mon, 18 Nov 2026 11:07:40 GMT")],
            None,
        ),
        (
            "retry-after-ms",
            &[("retry-after-ms", b"1500")],
            Some(ms(1500)),
        ),
        (
            "retry-after-ms decimal",
            &[("retry-after-ms", b"250.5")],
            Some(Duration::from_micros(250_500)),
        ),
        (
            "retry-after-ms beats Retry-After",
            &[("retry-after", b"2"), ("retry-after-ms", b"1500")],
            Some(ms(1500)),
        ),
        (
            "x-ms-retry-after-ms beats Retry-After",
            &[("retry-after", b"5"), ("x-ms-retry-after-ms", b"2000")],
            Some(ms(2000)),
        ),
        (
            "retry-after-ms beats x-ms-retry-after-ms",
            &[("x-ms-retry-after-ms", b"2000"), ("retry-after-ms", b"100")],
            Some(ms(100)),
        ),
        (
            "bad retry-after-ms falls through",
            &[("retry-after-ms", b"abc"), ("retry-after", b"7")],
            Some(secs(7)),
        ),
        (
            "negative retry-after-ms falls through",
            &[("retry-after-ms", b"-100"), ("x-ms-retry-after-ms", b"300")],
            Some(ms(300)),
        ),
        (
            "huge retry-after-ms falls through",
            &[("retry-after-ms", b"99999999999999"), ("retry-after", b"3")],
            Some(secs(3)),
        ),
        (
            "duplicates: first valid wins",
            &[
                ("retry-after", b"abc"),
                ("retry-after", b"10"),
                ("retry-after", b"20"),
            ],
            Some(secs(10)),
        ),
        (
            "duplicates conflicting: first wins",
            &[("retry-after", b"20"), ("retry-after", b"10")],
            Some(secs(20)),
        ),
    ];
    for (name, headers, want) in cases {
        assert_eq!(retry_after(&map(headers), now()), *want, "{name}");
        assert_eq!(
            hints(&map(headers), now()).retry_after,
            *want,
            "{name} (hints)"
        );
    }
}

// ---------------------------------------------------------------- gRPC pushback

#[test]
fn grpc_pushback_table() {
    use Pushback::{After, DoNotRetry};
    let cases: &[(&str, Headers, Option<Pushback>)] = &[
        ("absent", &[], None),
        ("absent among others", &[("grpc-status", b"14")], None),
        (
            "milliseconds",
            &[("grpc-retry-pushback-ms", b"100")],
            Some(After(ms(100))),
        ),
        (
            "zero",
            &[("grpc-retry-pushback-ms", b"0")],
            Some(After(Duration::ZERO)),
        ),
        (
            "whitespace trimmed",
            &[("grpc-retry-pushback-ms", b" 100 ")],
            Some(After(ms(100))),
        ),
        (
            "negative: do not retry",
            &[("grpc-retry-pushback-ms", b"-5")],
            Some(DoNotRetry),
        ),
        (
            "malformed: do not retry",
            &[("grpc-retry-pushback-ms", b"abc")],
            Some(DoNotRetry),
        ),
        (
            "empty: do not retry",
            &[("grpc-retry-pushback-ms", b"")],
            Some(DoNotRetry),
        ),
        (
            "decimal: do not retry",
            &[("grpc-retry-pushback-ms", b"1.5")],
            Some(DoNotRetry),
        ),
        (
            "overflow: do not retry",
            &[("grpc-retry-pushback-ms", b"99999999999999999999")],
            Some(DoNotRetry),
        ),
        (
            "above MAX_HINT: do not retry",
            &[("grpc-retry-pushback-ms", b"40000000000")],
            Some(DoNotRetry),
        ),
        (
            "non-UTF-8: do not retry",
            &[("grpc-retry-pushback-ms", b"\xff\xfe")],
            Some(DoNotRetry),
        ),
        (
            "agreeing duplicates",
            &[
                ("grpc-retry-pushback-ms", b"100"),
                ("grpc-retry-pushback-ms", b"100"),
            ],
            Some(After(ms(100))),
        ),
        (
            "conflicting duplicates",
            &[
                ("grpc-retry-pushback-ms", b"100"),
                ("grpc-retry-pushback-ms", b"200"),
            ],
            Some(DoNotRetry),
        ),
        (
            "valid then malformed",
            &[
                ("grpc-retry-pushback-ms", b"100"),
                ("grpc-retry-pushback-ms", b"x"),
            ],
            Some(DoNotRetry),
        ),
    ];
    for (name, headers, want) in cases {
        assert_eq!(grpc_pushback(&map(headers)), *want, "{name}");
        assert_eq!(
            hints(&map(headers), now()).pushback,
            *want,
            "{name} (hints)"
        );
    }
}

// ---------------------------------------------------------------- RateLimit

#[test]
fn rate_limit_table() {
    let cases: &[(&str, Headers, Option<RateLimit>)] = &[
        ("no headers", &[], None),
        (
            "unrelated headers",
            &[("server", b"x"), ("x-request-id", b"1")],
            None,
        ),
        // a. Current IETF draft (structured fields).
        (
            "draft: policy and limit",
            &[
                ("ratelimit-policy", br#""default";q=100;w=60"#),
                ("ratelimit", br#""default";r=10;t=30"#),
            ],
            rl(Some(100), Some(10), Some(secs(30)), Some(secs(60))),
        ),
        (
            "draft: token names (draft-08)",
            &[
                ("RateLimit-Policy", b"default;q=100;w=60"),
                ("RateLimit", b"default;r=10;t=30"),
            ],
            rl(Some(100), Some(10), Some(secs(30)), Some(secs(60))),
        ),
        (
            "draft: without policy",
            &[("ratelimit", br#""default";r=0;t=5"#)],
            rl(None, Some(0), Some(secs(5)), None),
        ),
        (
            "draft: most restrictive item and its policy",
            &[
                (
                    "ratelimit-policy",
                    br#""burst";q=100;w=60, "daily";q=1000;w=86400"#,
                ),
                ("ratelimit", br#""burst";r=50;t=5, "daily";r=3;t=3600"#),
            ],
            rl(Some(1000), Some(3), Some(secs(3600)), Some(secs(86_400))),
        ),
        (
            "draft: items across field lines",
            &[
                ("ratelimit-policy", br#""burst";q=100;w=60"#),
                ("ratelimit-policy", br#""daily";q=1000;w=86400"#),
                ("ratelimit", br#""daily";r=30;t=3600"#),
                ("ratelimit", br#""burst";r=2;t=5"#),
            ],
            rl(Some(100), Some(2), Some(secs(5)), Some(secs(60))),
        ),
        (
            "draft: equal r, longer t wins",
            &[("ratelimit", br#""a";r=0;t=5, "b";r=0;t=50"#)],
            rl(None, Some(0), Some(secs(50)), None),
        ),
        (
            "draft: r > q clamped to q",
            &[
                ("ratelimit-policy", br#""default";q=100;w=60"#),
                ("ratelimit", br#""default";r=150;t=30"#),
            ],
            rl(Some(100), Some(100), Some(secs(30)), Some(secs(60))),
        ),
        (
            "draft: negative t ignored",
            &[("ratelimit", br#""default";r=10;t=-5"#)],
            rl(None, Some(10), None, None),
        ),
        (
            "draft: decimal t ignored",
            &[("ratelimit", br#""default";r=10;t=1.5"#)],
            rl(None, Some(10), None, None),
        ),
        (
            "draft: t above MAX_HINT ignored",
            &[("ratelimit", br#""default";r=10;t=40000000"#)],
            rl(None, Some(10), None, None),
        ),
        (
            "draft: t as epoch time",
            &[("ratelimit", br#""default";r=0;t=1795000100"#)],
            rl(None, Some(0), Some(secs(100)), None),
        ),
        (
            "draft: items without r ignored",
            &[("ratelimit", br#""a";t=5, "b";r=2;t=9"#)],
            rl(None, Some(2), Some(secs(9)), None),
        ),
        (
            "draft: negative r ignored",
            &[("ratelimit", br#""default";r=-1;t=5"#)],
            None,
        ),
        (
            "draft: policy of another name not used",
            &[
                ("ratelimit-policy", br#""other";q=100;w=60"#),
                ("ratelimit", br#""default";r=10;t=30"#),
            ],
            rl(None, Some(10), Some(secs(30)), None),
        ),
        (
            "draft: zero window ignored",
            &[
                ("ratelimit-policy", br#""default";q=100;w=0"#),
                ("ratelimit", br#""default";r=10;t=30"#),
            ],
            rl(Some(100), Some(10), Some(secs(30)), None),
        ),
        (
            "draft: unknown parameters skipped",
            &[
                (
                    "ratelimit-policy",
                    br#""default";q=100;qu="requests";w=60;pk=:cHJvamVjdDEyMw==:"#,
                ),
                (
                    "ratelimit",
                    br#""default";r=10;t=30;pk=:cHJvamVjdDEyMw==:;x=?1"#,
                ),
            ],
            rl(Some(100), Some(10), Some(secs(30)), Some(secs(60))),
        ),
        (
            "draft: malformed line skipped",
            &[
                ("ratelimit", br#""a";r=1;t="#),
                ("ratelimit", br#""b";r=5;t=10"#),
            ],
            rl(None, Some(5), Some(secs(10)), None),
        ),
        (
            "draft: unterminated string ignored",
            &[("ratelimit", br#""default;r=1"#)],
            None,
        ),
        (
            "draft: trailing comma ignored",
            &[("ratelimit", br#""default";r=1,"#)],
            None,
        ),
        (
            "draft: non-UTF-8 ignored",
            &[("ratelimit", b"\"d\xff\";r=1")],
            None,
        ),
        // b. draft-07 dictionary.
        (
            "draft-07 dictionary",
            &[("ratelimit", b"limit=100, remaining=10, reset=30")],
            rl(Some(100), Some(10), Some(secs(30)), None),
        ),
        (
            "draft-07 dictionary with policy window",
            &[
                ("ratelimit", b"limit=100, remaining=10, reset=30"),
                ("ratelimit-policy", b"100;w=60"),
            ],
            rl(Some(100), Some(10), Some(secs(30)), Some(secs(60))),
        ),
        (
            "draft-07 remaining > limit clamped",
            &[("ratelimit", b"limit=10, remaining=50, reset=1")],
            rl(Some(10), Some(10), Some(secs(1)), None),
        ),
        (
            "draft-07 negative reset ignored",
            &[("ratelimit", b"limit=10, remaining=5, reset=-1")],
            rl(Some(10), Some(5), None, None),
        ),
        // c. Separate fields (drafts 00–06).
        (
            "separate fields",
            &[
                ("ratelimit-limit", b"100, 100;w=60"),
                ("ratelimit-remaining", b"10"),
                ("ratelimit-reset", b"30"),
            ],
            rl(Some(100), Some(10), Some(secs(30)), Some(secs(60))),
        ),
        (
            "separate fields: plain limit",
            &[
                ("RateLimit-Limit", b"100"),
                ("RateLimit-Remaining", b"0"),
                ("RateLimit-Reset", b"7"),
            ],
            rl(Some(100), Some(0), Some(secs(7)), None),
        ),
        (
            "separate fields: limit alone says nothing",
            &[("ratelimit-limit", b"100")],
            None,
        ),
        (
            "separate fields: negative remaining ignored",
            &[("ratelimit-remaining", b"-3"), ("ratelimit-reset", b"4")],
            rl(None, None, Some(secs(4)), None),
        ),
        (
            "separate fields: duplicates, first valid wins",
            &[
                ("ratelimit-remaining", b"x"),
                ("ratelimit-remaining", b"3"),
                ("ratelimit-remaining", b"9"),
            ],
            rl(None, Some(3), None, None),
        ),
        // d. X-RateLimit-*.
        (
            "x-ratelimit: GitHub epoch reset",
            &[
                ("x-ratelimit-limit", b"5000"),
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"1795000300"),
            ],
            rl(Some(5000), Some(0), Some(secs(300)), None),
        ),
        (
            "x-ratelimit: delta reset",
            &[
                ("X-RateLimit-Limit", b"60"),
                ("X-RateLimit-Remaining", b"59"),
                ("X-RateLimit-Reset", b"60"),
            ],
            rl(Some(60), Some(59), Some(secs(60)), None),
        ),
        (
            "x-ratelimit: past epoch is zero",
            &[
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"1700000000"),
            ],
            rl(None, Some(0), Some(Duration::ZERO), None),
        ),
        (
            "x-ratelimit: 10^9 is a delta, above MAX_HINT",
            &[
                ("x-ratelimit-remaining", b"1"),
                ("x-ratelimit-reset", b"1000000000"),
            ],
            rl(None, Some(1), None, None),
        ),
        (
            "x-ratelimit: just above 10^9 is an epoch",
            &[
                ("x-ratelimit-remaining", b"1"),
                ("x-ratelimit-reset", b"1000000001"),
            ],
            rl(None, Some(1), Some(Duration::ZERO), None),
        ),
        (
            "x-ratelimit: decimal epoch (Discord)",
            &[
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"1795000001.250"),
            ],
            rl(None, Some(0), Some(ms(1250)), None),
        ),
        (
            "x-ratelimit: reset-after beats reset",
            &[
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"1795000300"),
                ("x-ratelimit-reset-after", b"1.5"),
            ],
            rl(None, Some(0), Some(ms(1500)), None),
        ),
        (
            "x-ratelimit: Go duration reset",
            &[
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"6m0s"),
            ],
            rl(None, Some(0), Some(secs(360)), None),
        ),
        (
            "x-ratelimit: garbage reset ignored",
            &[
                ("x-ratelimit-remaining", b"4"),
                ("x-ratelimit-reset", b"5x"),
            ],
            rl(None, Some(4), None, None),
        ),
        (
            "x-ratelimit: remaining > limit clamped",
            &[
                ("x-ratelimit-limit", b"10"),
                ("x-ratelimit-remaining", b"11"),
            ],
            rl(Some(10), Some(10), None, None),
        ),
        (
            "x-ratelimit: non-UTF-8 ignored",
            &[("x-ratelimit-remaining", b"\xff\xfe")],
            None,
        ),
        // e. OpenAI.
        (
            "openai: requests",
            &[
                ("x-ratelimit-limit-requests", b"60"),
                ("x-ratelimit-remaining-requests", b"59"),
                ("x-ratelimit-reset-requests", b"1s"),
            ],
            rl(Some(60), Some(59), Some(secs(1)), None),
        ),
        (
            "openai: tokens only",
            &[
                ("x-ratelimit-limit-tokens", b"150000"),
                ("x-ratelimit-remaining-tokens", b"149984"),
                ("x-ratelimit-reset-tokens", b"6m0s"),
            ],
            rl(Some(150_000), Some(149_984), Some(secs(360)), None),
        ),
        (
            "openai: requests when neither is exhausted",
            &[
                ("x-ratelimit-remaining-requests", b"5"),
                ("x-ratelimit-reset-requests", b"20ms"),
                ("x-ratelimit-remaining-tokens", b"100"),
                ("x-ratelimit-reset-tokens", b"1m"),
            ],
            rl(None, Some(5), Some(ms(20)), None),
        ),
        (
            "openai: exhausted tokens bind",
            &[
                ("x-ratelimit-remaining-requests", b"5"),
                ("x-ratelimit-reset-requests", b"20ms"),
                ("x-ratelimit-remaining-tokens", b"0"),
                ("x-ratelimit-reset-tokens", b"1m2.5s"),
            ],
            rl(None, Some(0), Some(ms(62_500)), None),
        ),
        (
            "openai: both exhausted, longer reset wins (tokens)",
            &[
                ("x-ratelimit-remaining-requests", b"0"),
                ("x-ratelimit-reset-requests", b"1s"),
                ("x-ratelimit-remaining-tokens", b"0"),
                ("x-ratelimit-reset-tokens", b"2s"),
            ],
            rl(None, Some(0), Some(secs(2)), None),
        ),
        (
            "openai: both exhausted, longer reset wins (requests)",
            &[
                ("x-ratelimit-remaining-requests", b"0"),
                ("x-ratelimit-reset-requests", b"1h2m3s"),
                ("x-ratelimit-remaining-tokens", b"0"),
                ("x-ratelimit-reset-tokens", b"2s"),
            ],
            rl(None, Some(0), Some(secs(3723)), None),
        ),
        // f. Anthropic.
        (
            "anthropic: RFC 3339 reset",
            &[
                ("anthropic-ratelimit-requests-limit", b"50"),
                ("anthropic-ratelimit-requests-remaining", b"0"),
                (
                    "anthropic-ratelimit-requests-reset",
                    b"2026-11-18T11:07:40Z",
                ),
            ],
            rl(Some(50), Some(0), Some(secs(60)), None),
        ),
        (
            "anthropic: fractional seconds and offset",
            &[
                ("anthropic-ratelimit-requests-remaining", b"3"),
                (
                    "anthropic-ratelimit-requests-reset",
                    b"2026-11-18T12:07:40.5+01:00",
                ),
            ],
            rl(None, Some(3), Some(ms(60_500)), None),
        ),
        (
            "anthropic: past reset is zero",
            &[
                ("anthropic-ratelimit-requests-remaining", b"3"),
                (
                    "anthropic-ratelimit-requests-reset",
                    b"2026-11-18T11:00:00Z",
                ),
            ],
            rl(None, Some(3), Some(Duration::ZERO), None),
        ),
        (
            "anthropic: month 13 ignored",
            &[
                ("anthropic-ratelimit-requests-remaining", b"3"),
                (
                    "anthropic-ratelimit-requests-reset",
                    b"2026-13-18T11:07:40Z",
                ),
            ],
            rl(None, Some(3), None, None),
        ),
        (
            "anthropic: exhausted tokens bind",
            &[
                ("anthropic-ratelimit-requests-remaining", b"40"),
                (
                    "anthropic-ratelimit-requests-reset",
                    b"2026-11-18T11:06:41Z",
                ),
                ("anthropic-ratelimit-tokens-limit", b"80000"),
                ("anthropic-ratelimit-tokens-remaining", b"0"),
                ("anthropic-ratelimit-tokens-reset", b"2026-11-18T11:07:40Z"),
            ],
            rl(Some(80_000), Some(0), Some(secs(60)), None),
        ),
        // Precedence between families.
        (
            "IETF draft beats X-RateLimit",
            &[
                ("x-ratelimit-remaining", b"99"),
                ("ratelimit", br#""default";r=1;t=2"#),
            ],
            rl(None, Some(1), Some(secs(2)), None),
        ),
        (
            "structured beats separate fields",
            &[
                ("ratelimit-remaining", b"99"),
                ("ratelimit", br#""default";r=1;t=2"#),
            ],
            rl(None, Some(1), Some(secs(2)), None),
        ),
        (
            "empty IETF family falls through to X-RateLimit",
            &[("ratelimit-limit", b"100"), ("x-ratelimit-remaining", b"7")],
            rl(None, Some(7), None, None),
        ),
        (
            "X-RateLimit beats OpenAI",
            &[
                ("x-ratelimit-remaining-requests", b"5"),
                ("x-ratelimit-remaining", b"9"),
            ],
            rl(None, Some(9), None, None),
        ),
        (
            "OpenAI beats Anthropic",
            &[
                ("anthropic-ratelimit-requests-remaining", b"5"),
                ("x-ratelimit-remaining-requests", b"9"),
            ],
            rl(None, Some(9), None, None),
        ),
    ];
    for (name, headers, want) in cases {
        assert_eq!(rate_limit(&map(headers), now()), *want, "{name}");
        assert_eq!(
            hints(&map(headers), now()).rate_limit,
            *want,
            "{name} (hints)"
        );
    }
}

#[test]
fn hints_reads_every_kind_at_once() {
    let headers = map(&[
        ("retry-after", b"3"),
        ("grpc-retry-pushback-ms", b"250"),
        ("x-ratelimit-remaining", b"0"),
        ("x-ratelimit-reset", b"10"),
    ]);
    assert_eq!(
        hints(&headers, now()),
        Hints {
            retry_after: Some(secs(3)),
            pushback: Some(Pushback::After(ms(250))),
            rate_limit: rl(None, Some(0), Some(secs(10)), None),
        }
    );
    assert_eq!(hints(&HeaderMap::new(), now()), Hints::default());
}

// ---------------------------------------------------------------- Go durations

#[test]
fn go_duration_table() {
    let cases: &[(&str, Option<Duration>)] = &[
        ("6m0s", Some(secs(360))),
        ("1.5s", Some(ms(1500))),
        ("20ms", Some(ms(20))),
        ("1h2m3s", Some(secs(3723))),
        ("2h45m", Some(secs(9900))),
        ("1m30.5s", Some(ms(90_500))),
        ("0s", Some(Duration::ZERO)),
        ("0", Some(Duration::ZERO)),
        ("500us", Some(Duration::from_micros(500))),
        ("500µs", Some(Duration::from_micros(500))),
        ("500μs", Some(Duration::from_micros(500))),
        ("10ns", Some(Duration::from_nanos(10))),
        ("1.000000001s", Some(Duration::new(1, 1))),
        (".5s", Some(ms(500))),
        ("1.s", Some(secs(1))),
        ("1ms1ms", Some(ms(2))),
        (" 1s ", Some(secs(1))),
        ("18446744073709551615h", Some(Duration::MAX)),
        ("", None),
        (" ", None),
        ("5x", None),
        ("5", None),
        ("1s2", None),
        ("-1s", None),
        ("+1s", None),
        ("1.2.3s", None),
        ("s", None),
        (".s", None),
        ("1 s", None),
        ("1µ", None),
        ("1S", None),
        ("99999999999999999999s", None),
    ];
    for (input, want) in cases {
        assert_eq!(parse_duration_str(input), *want, "{input:?}");
    }
}

// ---------------------------------------------------------------- RFC 3339

#[test]
fn rfc3339_table() {
    let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
    let cases: &[(&str, Option<SystemTime>)] = &[
        ("1970-01-01T00:00:00Z", Some(UNIX_EPOCH)),
        ("2026-11-18T11:06:40Z", at(NOW_SECS)),
        ("2026-11-18t11:06:40z", at(NOW_SECS)),
        ("2026-11-18 11:06:40Z", at(NOW_SECS)),
        ("2026-11-18T12:06:40+01:00", at(NOW_SECS)),
        ("2026-11-18T05:36:40-05:30", at(NOW_SECS)),
        (
            "2026-11-18T11:06:40.5Z",
            Some(UNIX_EPOCH + Duration::new(NOW_SECS, 500_000_000)),
        ),
        (
            "2026-11-18T11:06:40.123456789123Z",
            Some(UNIX_EPOCH + Duration::new(NOW_SECS, 123_456_789)),
        ),
        ("2000-03-01T00:00:00Z", at(951_868_800)),
        ("2024-02-29T12:00:00Z", at(1_709_208_000)),
        ("2000-02-29T00:00:00Z", at(951_782_400)),
        ("1998-12-31T23:59:60Z", at(915_148_800)),
        ("9999-12-31T23:59:59Z", at(253_402_300_799)),
        (
            "0000-01-01T00:00:00Z",
            UNIX_EPOCH.checked_sub(Duration::from_secs(62_167_219_200)),
        ),
        ("2023-02-29T00:00:00Z", None),
        ("1900-02-29T00:00:00Z", None),
        ("2026-13-01T00:00:00Z", None),
        ("2026-00-01T00:00:00Z", None),
        ("2026-01-32T00:00:00Z", None),
        ("2026-04-31T00:00:00Z", None),
        ("2026-01-00T00:00:00Z", None),
        ("2026-01-01T24:00:00Z", None),
        ("2026-01-01T25:00:00Z", None),
        ("2026-01-01T00:60:00Z", None),
        ("2026-01-01T00:00:61Z", None),
        ("2026-01-01T00:00:00+24:00", None),
        ("2026-01-01T00:00:00+01:60", None),
        ("2026-01-01T00:00:00+0100", None),
        ("2026-01-01T00:00:00", None),
        ("2026-01-01T00:00:00.Z", None),
        ("2026-01-01T00:00:00ZZ", None),
        ("2026-1-01T00:00:00Z", None),
        ("2026-01-01X00:00:00Z", None),
        ("+026-01-01T00:00:00Z", None),
        ("", None),
    ];
    for (input, want) in cases {
        assert_eq!(parse_rfc3339(input), *want, "{input:?}");
    }
}

// ---------------------------------------------------------------- structured fields

#[test]
fn structured_field_parser() {
    let valid: &[&[u8]] = &[
        b"",
        b"  a ,  b  ",
        br#""x\"y";r=1, tok/en:1;a;b=?0, 12.5, -3, :aGk=:, @1700000000"#,
        b"a;  b=1",
    ];
    for field in valid {
        assert!(
            sf::list(field).is_some(),
            "{:?}",
            String::from_utf8_lossy(field)
        );
    }
    let invalid: &[&[u8]] = &[
        b"a,",
        b",a",
        b"a b",
        b"\"a",
        b"\"a\\q\"",
        b"a;B=1",
        b"a;b=",
        b"(a b)",
        b"?2",
        b":abc",
        b"1.",
        b"-",
        b"a;;b",
    ];
    for field in invalid {
        assert!(
            sf::list(field).is_none(),
            "{:?}",
            String::from_utf8_lossy(field)
        );
    }
    let member = sf::list(br#""x";r=1;r=2;t=3"#).unwrap().next().unwrap();
    assert_eq!(member.value, sf::Item::Name(b"x"));
    assert_eq!(
        member.param(b"r"),
        Some(sf::Item::Uint(2)),
        "last parameter wins"
    );
    assert_eq!(member.param(b"q"), None);
    let keys: Vec<_> = sf::dictionary(b"limit=1, flag, reset=3")
        .unwrap()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, [&b"limit"[..], b"flag", b"reset"]);
}

// ---------------------------------------------------------------- totality

/// A deterministic linear congruential generator (Knuth's MMIX constants),
/// so the sweep is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

use super::HEADER_NAMES as NAMES;

/// Starts that lead the generator deep into each grammar.
const PREFIXES: &[&[u8]] = &[
    b"",
    b"1",
    b"99999999999999999",
    br#""default";r="#,
    br#""default";q=100;w="#,
    b"limit=",
    b"100, 100;w=",
    b"2026-11-18T11:06:",
    b"9999-12-31T23:59:",
    b"Wed, 18 Nov 2026 ",
    b"Fri, 31 Dec 9999 23:59:",
    b"1h",
    b"1795000000",
];

const ALPHABET: &[u8] = b"0123456789.,;=\"-+: TtZzhmsnu\xc2\xb5qrwa()?*@\\\t\xff";

fn random_bytes(rng: &mut Lcg) -> Vec<u8> {
    let mut out = PREFIXES[rng.below(PREFIXES.len())].to_vec();
    for _ in 0..rng.below(24) {
        let byte = if rng.below(5) == 0 {
            rng.next() as u8
        } else {
            ALPHABET[rng.below(ALPHABET.len())]
        };
        out.push(byte);
    }
    out
}

#[test]
fn parsers_never_panic_on_arbitrary_bytes() {
    let mut rng = Lcg(0x5eed);
    let nows = [
        UNIX_EPOCH,
        now(),
        UNIX_EPOCH + Duration::from_secs(1 << 40),
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(1 << 40))
            .unwrap_or(UNIX_EPOCH),
    ];
    for i in 0..5_000 {
        let bytes = random_bytes(&mut rng);
        let text = String::from_utf8_lossy(&bytes);
        let now = nows[i % nows.len()];

        let _ = parse_duration_str(&text);
        let _ = parse_rfc3339(&text);
        let _ = parse_retry_after_value(&bytes, now);
        let _ = ratelimit::parse_reset(&bytes, now);
        for parsed in [sf::list(&bytes), sf::dictionary(&bytes)]
            .into_iter()
            .flatten()
        {
            for member in parsed {
                let _ = (member.param(b"r"), member.param(b"t"), member.param(b"w"));
            }
        }

        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        let name = NAMES[i % NAMES.len()];
        headers.append(name, value.clone());
        // A second, unrelated value under another name, so families mix.
        headers.append(NAMES[rng.below(NAMES.len())], value);
        let _ = hints(&headers, now);
        if let Some(wait) = retry_after(&headers, now) {
            assert!(wait <= MAX_HINT, "{name}: {text:?}");
        }
        if let Some(Pushback::After(wait)) = grpc_pushback(&headers) {
            assert!(wait <= MAX_HINT, "{name}: {text:?}");
        }
        if let Some(found) = rate_limit(&headers, now) {
            assert!(
                found.reset.is_none_or(|r| r <= MAX_HINT),
                "{name}: {text:?}"
            );
            assert!(found.remaining.is_some() || found.reset.is_some());
            if let (Some(limit), Some(remaining)) = (found.limit, found.remaining) {
                assert!(remaining <= limit);
            }
        }
    }
}
