//! The connection to Redis and its health: one multiplexed connection shared
//! by every call, dropped on any failure and made again after a back-off.
//!
//! While the link is down, the store answers "use your local state" without
//! touching the network; when the back-off has passed, the next call that
//! would have gone to Redis goes as a probe (the caller still gets the local
//! answer), and its success brings sharing back. Each transition is logged
//! once: `warn` when Redis becomes unavailable, `info` when it is back.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisResult};
use tokio::time::{timeout, Instant};

use super::error::{ErrorKind, Redacted, RedisStoreError};

/// Whether a call may go to Redis now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    /// Sharing: calls go, callers may wait for them.
    Up,
    /// Down, and the back-off has passed: one call may go as a probe, but
    /// callers use their local state meanwhile.
    Probe,
    /// Down: nothing goes.
    Down,
}

pub(super) struct Link {
    client: Client,
    pub(super) url: Redacted,
    connect_timeout: Duration,
    /// The connection, `None` after a failure. An async mutex: a reconnect
    /// holds it across its `.await`, never the gate's threads (only spawned
    /// calls take it).
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    state: Mutex<State>,
    calls: AtomicU64,
    /// Times Redis became unavailable.
    downs: AtomicU32,
}

struct State {
    up: bool,
    probing: bool,
    retry_at: Instant,
    backoff: Duration,
}

/// Back-off before trying Redis again after a failure: doubling from `min`
/// to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Backoff {
    pub(super) min: Duration,
    pub(super) max: Duration,
}

impl Link {
    /// Parses `url`, connects and checks the server answers `PING`, all within
    /// `connect_timeout`.
    pub(super) async fn connect(
        url: &str,
        connect_timeout: Duration,
        backoff: Backoff,
    ) -> Result<Link, RedisStoreError> {
        let shown = Redacted::new(url);
        let client = Client::open(url)
            .map_err(|e| RedisStoreError::new(ErrorKind::InvalidUrl, &shown, e))?;
        let link = Link {
            client,
            url: shown,
            connect_timeout,
            conn: tokio::sync::Mutex::new(None),
            state: Mutex::new(State {
                up: true,
                probing: false,
                retry_at: Instant::now(),
                backoff: backoff.min,
            }),
            calls: AtomicU64::new(0),
            downs: AtomicU32::new(0),
        };
        let ping = async {
            let mut conn = link.connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match timeout(connect_timeout, ping).await {
            Ok(Ok(_)) => Ok(link),
            Ok(Err(e)) => Err(RedisStoreError::new(ErrorKind::Unavailable, &link.url, e)),
            Err(_) => Err(RedisStoreError::new(
                ErrorKind::Unavailable,
                &link.url,
                format_args!("no answer to PING within {connect_timeout:?}"),
            )),
        }
    }

    /// The shared connection, made if there is none.
    pub(super) async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.connect_timeout));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Whether a call may go now; a `Probe` answer is given once per
    /// back-off period.
    pub(super) fn health(&self, now: Instant) -> Health {
        let mut s = self.lock();
        if s.up {
            Health::Up
        } else if !s.probing && now >= s.retry_at {
            s.probing = true;
            Health::Probe
        } else {
            Health::Down
        }
    }

    /// Whether the last call succeeded.
    pub(super) fn is_up(&self) -> bool {
        self.lock().up
    }

    /// Counts a call sent to Redis.
    pub(super) fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls sent to Redis so far.
    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Times Redis became unavailable since the store connected.
    pub(super) fn downs(&self) -> u32 {
        self.downs.load(Ordering::Relaxed)
    }

    /// A call succeeded.
    pub(super) fn succeeded(&self, backoff: Backoff) {
        let mut s = self.lock();
        s.probing = false;
        s.backoff = backoff.min;
        if !s.up {
            s.up = true;
            drop(s);
            tracing::info!(redis = ?self.url, "rate limit store: Redis is back; sharing again");
        }
    }

    /// A call failed or timed out: the connection is dropped, and Redis is
    /// left alone for the back-off.
    pub(super) async fn failed(&self, why: &str, backoff: Backoff) {
        *self.conn.lock().await = None;
        let mut s = self.lock();
        // Only the first failure of an episode, or a failed probe, moves the
        // back-off: the other calls in flight fail with it.
        let wait = if s.up {
            backoff.min
        } else if s.probing {
            s.backoff
        } else {
            return;
        };
        s.probing = false;
        s.retry_at = Instant::now() + wait;
        s.backoff = (wait * 2).clamp(backoff.min, backoff.max);
        if s.up {
            s.up = false;
            self.downs.fetch_add(1, Ordering::Relaxed);
            drop(s);
            tracing::warn!(
                redis = ?self.url,
                error = %self.url.scrub(why),
                retry_in = ?wait,
                "rate limit store: Redis unavailable; gating on local state"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
