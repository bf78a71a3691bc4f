//! Retry-After and its millisecond forms.

use super::*;

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
            "u64 overflow is longer than any cap",
            &[("retry-after", b"99999999999999999999")],
            Some(MAX_HINT),
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
            "above MAX_HINT is MAX_HINT",
            &[("retry-after", b"31536001")],
            Some(MAX_HINT),
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
            "year 9999 is MAX_HINT",
            &[("retry-after", b"Fri, 31 Dec 9999 23:59:59 GMT")],
            Some(MAX_HINT),
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
            "huge retry-after-ms is longer than any cap",
            &[("retry-after-ms", b"99999999999999"), ("retry-after", b"3")],
            Some(MAX_HINT),
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
