//! The one Lua script the store runs, and its typed calls.
//!
//! Everything happens on the server's clock (`TIME`), never the clients':
//! replies carry offsets from the server's "now" in microseconds, which the
//! caller dates from the moment the reply arrived (later than the server's
//! now by up to one round trip, so on the safe side).
//!
//! Pacing is GCRA (the generic cell rate algorithm of ATM networks, as in
//! redis-cell or Envoy's and Kong's Redis limiters): per pace key, the
//! *theoretical arrival time* `tat` of the next unit; a unit may go at
//! `tat − τ`, where `τ = (burst − 1) × T` and `T = 1 / rate`. Reserving a
//! batch of `n` moves `tat` by `n × T` at once, so all clients together never
//! exceed `rate × t + burst`, however their batches interleave.

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Script};

use super::offer::{Offer, EPISODE};

/// `KEYS[1]`: pace state (hash: `t` = tat µs, `n` = units granted so far);
/// `KEYS[2]`: hold (string: until µs); `KEYS[3]`: shared rate (hash: `b` =
/// the rate set by the measure, `w` = the measure, `s` = when, µs, `k` = τ,
/// seconds: the rate climbs from `b` as CUBIC does, see `Curve`; `n` = the
/// measures of one throttle averaged in it; `x` = expiry µs); `KEYS[4]`: responses accepted by the server, all
/// processes together (hash: `n` = the count, `e` = when it began, µs: a
/// count that vanished — Redis restarted, or the key expired — and began
/// again has a new `e`; `g` = how many times a process came back to it
/// after Redis did not answer it, each time adding what it counted
/// meanwhile). `ARGV[1]` is the mode, `ARGV[2]` the accepted responses to
/// add, `ARGV[3]` 1 if the caller comes back so. Every mode answers
/// `{granted, first, floor, hold, rate, rate_expiry, total, accepted, epoch,
/// rejoins, rate_age}` (offsets in µs from the server's now; `rate` the
/// string `"b w k"` or nil; `epoch` 0 while there is no count).
const LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function fmt(x) return string.format('%.0f', x) end
local function climbed(b, w, s, k)
  if not (b and w and s and k) or k <= 0 then return b end
  if w < b then w = b end
  local kk = k * ((1 - b / w) ^ (1 / 3))
  local t = (now - s) / 1000000
  if t < 0 then t = 0 end
  local x = (t - kk) / k
  local v = w * (1 + x * x * x)
  if v < b then v = b end
  return v
end
local mode = ARGV[1]
local add, rejoin = tonumber(ARGV[2]), tonumber(ARGV[3])
if add > 0 then
  redis.call('HINCRBY', KEYS[4], 'n', ARGV[2])
end
if rejoin > 0 then
  redis.call('HINCRBY', KEYS[4], 'g', 1)
end
if add > 0 or rejoin > 0 then
  redis.call('HSETNX', KEYS[4], 'e', fmt(now))
  redis.call('PEXPIRE', KEYS[4], 600000)
end
local c = redis.call('HMGET', KEYS[4], 'n', 'e', 'g')
local acc, epoch, rejoins = tonumber(c[1]) or 0, tonumber(c[2]) or 0, tonumber(c[3]) or 0
local hold = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local granted, first, floor, total = 0, 0, 0, 0
if mode == 'hold' then
  local till = now + tonumber(ARGV[4])
  if till > hold then
    hold = till
    redis.call('SET', KEYS[2], fmt(hold), 'PX', math.ceil((hold - now) / 1000) + 1000)
  end
elseif mode == 'rate' then
  local r, w = tonumber(ARGV[4]), tonumber(ARGV[6])
  local cur = redis.call('HMGET', KEYS[3], 'b', 'x', 'w', 's', 'k', 'n')
  local cb, cx, cw, cs = tonumber(cur[1]), tonumber(cur[2]), tonumber(cur[3]), tonumber(cur[4])
  local live = cb ~= nil and cx ~= nil and cx > now
  if live and cw and cs and now - cs < tonumber(ARGV[8]) then
    -- Another process's measure of the same throttle: the fleet's rate is
    -- their mean (each one's drain is read from a count seen late). A cut
    -- is the same throttle's straggler: ignored.
    if ARGV[9] ~= '1' then
      local n = tonumber(cur[6]) or 1
      redis.call('HSET', KEYS[3], 'b', string.format('%.6f', (cb * n + r) / (n + 1)),
        'w', string.format('%.6f', (cw * n + w) / (n + 1)), 'n', n + 1)
    end
  elseif not live or r < climbed(cb, cw, cs, tonumber(cur[5])) then
    redis.call('HSET', KEYS[3], 'b', ARGV[4], 'w', ARGV[6], 's', fmt(now), 'k', ARGV[7],
      'n', 1, 'x', fmt(now + tonumber(ARGV[5])))
    redis.call('PEXPIRE', KEYS[3], math.ceil(tonumber(ARGV[5]) / 1000) + 1000)
  end
elseif mode == 'reserve' then
  local n, T, tau = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local start = now
  if hold > start then start = hold end
  local st = redis.call('HMGET', KEYS[1], 't', 'n')
  local tat = tonumber(st[1]) or 0
  total = (tonumber(st[2]) or 0) + n
  if tat < start then tat = start end
  granted, first, floor = n, tat - tau - now, start - now
  tat = tat + n * T
  redis.call('HSET', KEYS[1], 't', fmt(tat), 'n', fmt(total))
  redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now) / 1000) + tonumber(ARGV[7]))
end
local rate, rexp, age = false, 0, 0
local cur = redis.call('HMGET', KEYS[3], 'b', 'x', 'w', 's', 'k')
if cur[1] and tonumber(cur[2]) and tonumber(cur[2]) > now then
  rate = cur[1] .. ' ' .. (cur[3] or cur[1]) .. ' ' .. (cur[5] or '0')
  rexp, age = tonumber(cur[2]) - now, now - (tonumber(cur[4]) or now)
end
return {granted, first, floor, hold - now, rate, rexp, total, acc, epoch, rejoins, age}
"#;

/// How long a pace key outlives its last reservation, in ms: long enough to
/// be past any burst (`tat` has caught up with now by then), short enough
/// that abandoned keys go.
const PACE_TTL_MS: u64 = 60_000;

/// The script, hashed once; `EVALSHA`, loading it on `NOSCRIPT` (a restarted
/// server has forgotten it).
pub(super) struct Calls {
    script: Script,
}

/// The Redis keys of one call: `{key}:{constraint}`, `{key}:hold`,
/// `{key}:rate`, `{key}:answers`.
pub(super) struct Keys<'a> {
    pub(super) pace: &'a str,
    pub(super) hold: &'a str,
    pub(super) rate: &'a str,
    pub(super) accepted: &'a str,
}

/// What the server said, offsets in µs from its now.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reply {
    /// Units reserved (0 unless reserving).
    pub(super) granted: u64,
    /// When unit `k` of the batch may go: `first + k × T`, but not before `floor`.
    pub(super) first: i64,
    pub(super) floor: i64,
    /// The key's hold ends this far from now (≤ 0: none).
    pub(super) hold: i64,
    /// The fleet's shared rate, if one stands.
    pub(super) rate: Option<SharedRate>,
    /// Units reserved by all clients since the key was created.
    pub(super) total: u64,
    /// Responses accepted, as counted by all clients.
    pub(super) accepted: u64,
    /// When that count began (server µs; 0: there is none yet).
    pub(super) epoch: i64,
    /// Times a process came back to the count after Redis did not answer
    /// it (adding, late, what it counted meanwhile).
    pub(super) rejoins: u64,
}

/// The fleet's rate as the server keeps it: set to `base` by a measure of
/// `w_max`, `age` µs ago, climbing since with time constant `tau` seconds
/// (see `Curve`; 0: unknown); it stands `ttl` µs more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SharedRate {
    pub(super) base: f64,
    pub(super) w_max: f64,
    pub(super) tau: f64,
    pub(super) age: i64,
    pub(super) ttl: i64,
}

type Raw = (
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

/// One call of the script.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Op {
    /// Reserve `n` units at `interval_us` per unit, with burst tolerance
    /// `tau_us`.
    Reserve {
        n: u64,
        interval_us: u64,
        tau_us: u64,
    },
    /// Hold the key for `for_us` from the server's now, unless it already is
    /// for longer.
    Hold { for_us: u64 },
    /// Offer a rate as the key's shared rate for `ttl_us` (see `Offer`): it
    /// wins if lower than the current one has climbed to, or that one has
    /// expired; within `EPISODE` of the current one's start, a measure is
    /// averaged in and a cut ignored.
    Rate { offer: Offer, ttl_us: u64 },
    /// Read the hold and the shared rate.
    Peek,
}

impl Calls {
    pub(super) fn new() -> Self {
        Calls {
            script: Script::new(LUA),
        }
    }

    pub(super) async fn call(
        &self,
        conn: &mut MultiplexedConnection,
        keys: &Keys<'_>,
        op: Op,
        accepted: u64,
        rejoin: bool,
    ) -> RedisResult<Reply> {
        let mut inv = self.script.key(keys.pace);
        inv.key(keys.hold).key(keys.rate).key(keys.accepted);
        match op {
            Op::Reserve {
                n,
                interval_us,
                tau_us,
            } => inv
                .arg("reserve")
                .arg(accepted)
                .arg(u8::from(rejoin))
                .arg(n)
                .arg(interval_us)
                .arg(tau_us)
                .arg(PACE_TTL_MS),
            Op::Hold { for_us } => inv
                .arg("hold")
                .arg(accepted)
                .arg(u8::from(rejoin))
                .arg(for_us),
            Op::Rate { offer, ttl_us } => inv
                .arg("rate")
                .arg(accepted)
                .arg(u8::from(rejoin))
                .arg(format!("{:.6}", offer.base))
                .arg(ttl_us)
                .arg(format!("{:.6}", offer.w_max.max(offer.base)))
                .arg(format!("{:.6}", offer.tau))
                .arg(u64::try_from(EPISODE.as_micros()).unwrap_or(u64::MAX))
                .arg(u8::from(offer.cut)),
            Op::Peek => inv.arg("peek").arg(accepted).arg(u8::from(rejoin)),
        };
        let raw: Raw = inv.invoke_async(conn).await?;
        Ok(Reply::from_raw(raw))
    }
}

impl Reply {
    fn from_raw(
        (
            granted,
            first,
            floor,
            hold,
            rate,
            rate_ttl,
            total,
            accepted,
            epoch,
            rejoins,
            rate_age,
        ): Raw,
    ) -> Self {
        let rate = rate.as_deref().and_then(|r| {
            let mut fields = r
                .split(' ')
                .map(|f| f.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0));
            let base = fields.next().flatten().filter(|b| *b > 0.0)?;
            let w_max = fields.next().flatten().map_or(base, |w| w.max(base));
            Some(SharedRate {
                base,
                w_max,
                tau: fields.next().flatten().unwrap_or(0.0),
                age: rate_age.max(0),
                ttl: rate_ttl,
            })
        });
        Reply {
            granted: u64::try_from(granted).unwrap_or(0),
            first,
            floor: floor.max(0),
            hold,
            rate,
            total: u64::try_from(total).unwrap_or(0),
            accepted: u64::try_from(accepted).unwrap_or(0),
            epoch,
            rejoins: u64::try_from(rejoins).unwrap_or(0),
        }
    }
}
