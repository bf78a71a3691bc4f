//! A deterministic "never panics" sweep over pseudo-random input.

use super::*;

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
