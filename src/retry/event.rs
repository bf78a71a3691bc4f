//! What the retry policy reports: a retry about to happen, or why it stopped.

use std::time::Duration;

use crate::classify::Reason;

/// A retry about to be scheduled, as passed to
/// [`BackoffRetryLayer::on_retry`](crate::BackoffRetryLayer::on_retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryEvent {
    /// The attempt about to be sent (2 for the first retry).
    pub attempt: u32,
    /// How long the policy waits before sending it.
    pub delay: Duration,
    /// Why the previous attempt failed.
    pub reason: Option<Reason>,
    /// The server's requested wait, if it gave one and it was honoured.
    pub retry_after: Option<Duration>,
}

/// Why the policy stopped retrying a failed request and returned its last
/// response or error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUp {
    /// `max_attempts` attempts were made.
    Attempts,
    /// The next attempt would start after `max_elapsed`.
    Elapsed,
    /// The retry budget refused.
    Budget,
    /// The server asked to wait longer than the layer's cap.
    RetryAfterTooLong,
    /// The request is not idempotent and the failure does not prove it was
    /// not processed.
    NotIdempotent,
    /// The schedule itself gave up (e.g. `max_retries`, Ethernet's 16th collision).
    ScheduleExhausted,
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GiveUp::Attempts => "max attempts reached",
            GiveUp::Elapsed => "next attempt would start after max_elapsed",
            GiveUp::Budget => "retry budget exhausted",
            GiveUp::RetryAfterTooLong => "server asked to wait longer than the cap",
            GiveUp::NotIdempotent => "request is not idempotent and may have been processed",
            GiveUp::ScheduleExhausted => "schedule gave up",
        })
    }
}
