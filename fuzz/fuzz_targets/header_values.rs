//! Arbitrary bytes through each single-value parser.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tower_backoff::headers::{self, MAX_HINT};

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    if let Some(d) = headers::parse_retry_after_value(data, now) {
        assert!(d <= MAX_HINT);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = headers::parse_duration_str(s);
        let _ = headers::parse_rfc3339(s);
    }
});
