//! The RateLimit families and `hints`.

use super::*;

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
            "X-RateLimit and OpenAI both count: the tighter binds",
            &[
                ("x-ratelimit-remaining-requests", b"5"),
                ("x-ratelimit-remaining", b"9"),
            ],
            rl(None, Some(5), None, None),
        ),
        (
            "OpenAI and Anthropic both count: the tighter binds",
            &[
                ("anthropic-ratelimit-requests-remaining", b"5"),
                ("x-ratelimit-remaining-requests", b"9"),
            ],
            rl(None, Some(5), None, None),
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
    let h = hints(&headers, now());
    assert_eq!(h.retry_after, Some(secs(3)));
    assert_eq!(h.pushback, Some(Pushback::After(ms(250))));
    assert_eq!(h.rate_limit, rl(None, Some(0), Some(secs(10)), None));
    assert_eq!(h.limits.len(), 1);
    assert!(h.shows_rate_limit());
    assert_eq!(hints(&HeaderMap::new(), now()), Hints::default());
}

fn all(headers: Headers) -> Vec<Stated> {
    stated(&map(headers), now()).iter().copied().collect()
}

#[test]
fn every_ietf_policy_is_a_limit_matched_by_name() {
    let got = all(&[
        (
            "ratelimit-policy",
            b"\"day\";q=1000;w=86400, \"burst\";q=10;w=1, \"bytes\";q=9;w=1;qu=\"content-bytes\"",
        ),
        (
            "ratelimit",
            b"\"burst\";r=9;t=1, \"day\";r=500;t=3600, \"bytes\";r=1;t=1",
        ),
    ]);
    assert_eq!(got.len(), 2, "content-bytes is left out: {got:?}");
    assert_eq!(
        got[0].quota,
        rl(Some(10), Some(9), Some(secs(1)), Some(secs(1))).unwrap()
    );
    assert_eq!(
        got[1].quota,
        rl(Some(1000), Some(500), Some(secs(3600)), Some(secs(86400))).unwrap()
    );
    assert!(got
        .iter()
        .all(|s| s.unit == Unit::Requests && s.refill == Refill::Window));
    assert_ne!(got[0].id, got[1].id);
    // The same policy in another response has the same id.
    let again = all(&[("ratelimit", b"\"day\";r=1;t=5")]);
    assert_eq!(again[0].id, got[1].id);
}

#[test]
fn vendor_families_state_requests_and_tokens_apart() {
    let openai = all(&[
        ("x-ratelimit-limit-requests", b"200"),
        ("x-ratelimit-remaining-requests", b"150"),
        ("x-ratelimit-reset-requests", b"250ms"),
        ("x-ratelimit-limit-tokens", b"2000"),
        ("x-ratelimit-remaining-tokens", b"1000"),
        ("x-ratelimit-reset-tokens", b"50ms"),
    ]);
    assert_eq!(openai.len(), 2);
    assert_eq!(
        (openai[0].unit, openai[1].unit),
        (Unit::Requests, Unit::Tokens)
    );
    assert!(openai.iter().all(|s| s.refill == Refill::Continuous));
    assert_eq!(openai[1].quota.reset, Some(ms(50)));

    let anthropic = all(&[
        ("anthropic-ratelimit-requests-remaining", b"5"),
        ("anthropic-ratelimit-tokens-remaining", b"500"),
        ("anthropic-ratelimit-input-tokens-remaining", b"400"),
        ("anthropic-ratelimit-output-tokens-remaining", b"100"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            b"2026-11-18T11:06:50Z",
        ),
    ]);
    let units: Vec<_> = anthropic.iter().map(|s| s.unit).collect();
    assert_eq!(
        units,
        [
            Unit::Requests,
            Unit::Tokens,
            Unit::InputTokens,
            Unit::OutputTokens
        ]
    );
    assert_eq!(anthropic[3].quota.reset, Some(secs(10)));
}

#[test]
fn github_resource_and_x_headers() {
    let core = all(&[
        ("x-ratelimit-limit", b"5000"),
        ("x-ratelimit-remaining", b"4999"),
        ("x-ratelimit-reset", b"1795003600"),
        ("x-ratelimit-resource", b"core"),
    ]);
    let search = all(&[
        ("x-ratelimit-remaining", b"0"),
        ("x-ratelimit-reset", b"1795000040"),
        ("x-ratelimit-resource", b"Search"),
    ]);
    assert_eq!(core[0].quota.reset, Some(secs(3600)));
    assert_eq!(search[0].resource, Some(stable_hash(&[b"search"])));
    assert_ne!(core[0].resource, search[0].resource);
    assert_ne!(core[0].id, search[0].id);

    let x = all(&[
        ("x-rate-limit-limit", b"50"),
        ("x-rate-limit-remaining", b"7"),
        ("x-rate-limit-reset", b"1795000060"),
    ]);
    assert_eq!(
        x[0].quota,
        rl(Some(50), Some(7), Some(secs(60)), None).unwrap()
    );
}

#[test]
fn absolute_times_are_read_against_the_servers_date() {
    // The server's clock is 30 s ahead of ours.
    let headers = map(&[
        ("date", b"Wed, 18 Nov 2026 11:07:10 GMT"),
        ("x-ratelimit-remaining", b"0"),
        ("x-ratelimit-reset", b"1795000040"),
        ("retry-after", b"Wed, 18 Nov 2026 11:07:20 GMT"),
    ]);
    let h = hints(&headers, now());
    assert_eq!(h.rate_limit.unwrap().reset, Some(secs(10)));
    assert_eq!(h.retry_after, Some(secs(10)));
    assert_eq!(retry_after(&headers, now()), Some(secs(10)));
    // A malformed Date is ignored: the local clock is the reference.
    let headers = map(&[("date", b"yesterday"), ("x-ratelimit-reset", b"1795000040")]);
    assert_eq!(rate_limit(&headers, now()).unwrap().reset, Some(secs(40)));
    // A Date alone is no hint.
    assert_eq!(
        hints(&map(&[("date", b"Wed, 18 Nov 2026 11:07:10 GMT")]), now()),
        Hints::default()
    );
}

#[test]
fn at_most_max_stated_limits_are_kept() {
    let mut policy = String::new();
    let mut limit = String::new();
    for i in 0..(MAX_STATED + 4) {
        policy.push_str(&format!("\"p{i}\";q=10;w=1, "));
        limit.push_str(&format!("\"p{i}\";r=5;t=1, "));
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "ratelimit-policy",
        policy.trim_end_matches(", ").parse().unwrap(),
    );
    headers.insert("ratelimit", limit.trim_end_matches(", ").parse().unwrap());
    assert_eq!(stated(&headers, now()).len(), MAX_STATED);
}
