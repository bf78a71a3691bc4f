//! gRPC pushback (A6).

use super::*;

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
