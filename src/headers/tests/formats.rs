//! Value formats: Go durations, RFC 3339, structured fields.

use super::*;

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
