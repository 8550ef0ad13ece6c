//! A rate limiter shared by many processes through Redis (feature `redis`).
//!
//! # Design
//!
//! * **Atomicity.** Each decision is one Lua script (`src/lua/*.lua`), which Redis runs
//!   atomically: the read-modify-write that would race as `GET` … `SET` from two clients
//!   (check-then-set: both read 9 of 10, both write 10, 11 requests pass) cannot interleave.
//! * **One round trip.** On Redis ≥ 7 the code is a *function*: at build the limiter
//!   sends `FUNCTION LOAD REPLACE` of a library named `keel_rl_<sha1 of the code>` (one
//!   function of the same name), and each decision is one `FCALL`. The name carries the
//!   hash because GCRA's quota constants are written into its code: limiters with other
//!   quotas, or another Keel version, get their own library and never replace each
//!   other's; `REPLACE` of the same code is idempotent (many processes may build at once).
//!   Libraries are persisted and replicated with the data, but a restart without
//!   persistence, `FUNCTION FLUSH` or a failover to a replica that never got them loses
//!   them: the next `FCALL` answers `Function not found`, the limiter loads the library
//!   and sends the same `FCALL` again, within that call's deadline (no decision is lost or
//!   taken twice).
//! * **Fallback.** A server without functions (Redis < 7, `FUNCTION`/`FCALL` renamed or
//!   denied by ACL) answers `unknown command`/`NOPERM`; the limiter then sends `EVALSHA`
//!   of the same code as a script, for good (on `NOSCRIPT`: `SCRIPT LOAD`, send again).
//!   [`RedisLimiterBuilder::functions`]`(false)` picks `EVALSHA` from the start;
//!   [`RedisLimiter::server_call`] says which one a limiter uses.
//! * **Server time.** Scripts read `redis.call('TIME')`, so every client agrees on "now"
//!   however skewed their own clocks are. ([`TimeSource::Client`] exists to demonstrate
//!   what goes wrong without it.)
//! * **Bounded memory.** Keys are `{prefix}:{<key>}:<algorithm>` (the braces are a Redis
//!   Cluster hash tag, so a script's keys share a slot) and every write sets a `PEXPIRE`
//!   equal to the time after which the state is idle.
//! * **Outages.** Requests go through the `redis` crate's [`ConnectionManager`], which
//!   reconnects in the background after an I/O error. While Redis is unreachable each
//!   decision follows the [`FailurePolicy`] — allow (fail open), deny (fail closed) or
//!   return the error — and is counted; when Redis is back, decisions resume without
//!   recreating the limiter.
//! * **One deadline per call.** [`RedisLimiterBuilder::timeout`] bounds the whole call,
//!   end to end: waiting for a (re)connection, `EVALSHA`, a `NOSCRIPT` retry. Without it a
//!   call against a killed Redis waited for the manager's reconnect attempts inside the
//!   shared connection future (≈ 540 ms against a 250 ms timeout;
//!   `tests/redis_faults.rs`).
//! * **Silent peers.** A connection whose packets are dropped (a NAT or load balancer that
//!   forgot an idle flow) raises no I/O error, only timeouts, and the manager never
//!   reconnects on those. After [`RECONNECT_AFTER_TIMEOUTS`] timed-out calls in a row on
//!   one connection the limiter replaces it with a fresh manager (counted as
//!   `reconnects`); calls still in flight on the old one finish or time out on their own.
//! * **Server cost — why functions.** Redis runs scripts and functions on its one
//!   thread, so the server instructions per decision bound the decisions/s of everyone
//!   sharing it. Measured with callgrind (redis-server 7.0.15, 20 000 commands through
//!   `redis-cli --pipe`, per decision, networking and parsing included):
//!
//!   | per decision | instructions |
//!   |---|---|
//!   | GCRA as `EVALSHA`, quota in `ARGV`, table of four answered (before) | ≈ 62 700 |
//!   | GCRA as `EVALSHA`, quota constants in the code, one integer answered | ≈ 45 000 |
//!   | floor for `TIME` + `GET` + `SET PX` from a script | ≈ 45 300 |
//!   | **the same GCRA as a function, `FCALL` (the default)** | **≈ 34 300** |
//!   | trivial `EVALSHA` (`return {1,0,0,0}`) / trivial `FCALL` | ≈ 21 100 / 16 800 |
//!   | redis-cell `CL.THROTTLE` (native module) | ≈ 24 300 |
//!   | `MULTI` / `INCR` / `EXPIRE` / `EXEC` (fixed window) | ≈ 14 800 |
//!
//!   Inside the code `TIME` ≈ 7 300, a `SET … PX` ≈ 14 400, each `tonumber` of an argument
//!   ≈ 3 000 (libc `strtod`) — hence the baked-in constants and the `'1'` string match for
//!   a unit cost. `EVALSHA` pays for looking the script up by SHA-1 and setting up `KEYS`/
//!   `ARGV` globals in a fresh environment each call; `FCALL` finds the function by name
//!   and passes the tables as arguments: ≈ 10 700 instructions less for the same three
//!   calls. [`TimeSource::Client`] would save the `TIME` call but lets skewed clients
//!   disagree.
//! * **Local denials (GCRA).** A reply tells the client the key's TAT relative to the
//!   server's now; the limiter remembers `TAT` on its own monotonic clock, measured from
//!   *before* the call was sent, for keys the server denied or whose burst an allow just
//!   filled ([`RedisLimiterBuilder::local_denials`], a fixed table of 4096 keys by
//!   default). Until then a request for that key that cannot fit is denied locally: the
//!   decision the server would make (TAT only moves forward; other clients can only push
//!   it further, which makes the local `retry_after` at most the server's), with no round
//!   trip and no server work — and a denial writes nothing on the server, so nobody else
//!   can tell. Assumption: the local clock does not run faster than the server's over
//!   one burst window (see `deny_cache.rs`). In `keel-bench ratelimit` (Zipf keys, about
//!   17 % denied) it cut the CPU per decision from 5.4–6.3 to 5.1–5.9 µs on the server
//!   and from 4.4–5.5 to 3.9–4.6 µs in the client (quick runs on a loaded machine); a key
//!   under attack is denied almost entirely locally. A remembered denial is answered even
//!   while Redis is unreachable; the failure policy applies to the rest.
//!
//!   Where the round trip still costs more than the `INCR` + `EXPIRE` pattern: on the
//!   server (≈ 5.5 µs of CPU per decision against ≈ 2.5–3.5 µs; redis-cell ≈ 3.2–4.1 µs:
//!   a function call plus `TIME`, `GET` and `SET` against three native commands), not in
//!   the client (≈ 4–4.6 µs against ≈ 5–7 µs for the `MULTI`/`EXEC` pipeline).
//! * **Batching (GCRA).** The server cost above is mostly fixed per call: the function
//!   call (≈ 17 000 instructions for a trivial `FCALL`) and each `redis.call` from Lua
//!   (≈ 6 000–8 000: arguments converted, the command looked up and run, its reply
//!   built and parsed back into Lua). When many callers share one limiter (one
//!   connection), the decisions that queue while a call is in flight go in the *next*
//!   call together: one `FCALL <function>_batch` with up to
//!   [`RedisLimiterBuilder::batch`] keys (`src/lua/gcra_batch.lua`: one `TIME`, one
//!   `MGET`, then one `SET … PX` per key whose TAT moved — a key decided several times
//!   is written once, with the state and TTL the last sequential call would leave). This
//!   is the classic group-commit / auto-batching trade: no timer and no added wait (a
//!   decision that finds no call in flight goes at once, alone, as the single-key
//!   function), one call in flight per limiter instead of a pipeline of small ones.
//!   Each decision stays exact GCRA (a model test replays random bursts of concurrent
//!   callers against the in-process GCRA on a mock clock); a failed or timed-out batch
//!   fails every caller in it with the failure policy, each within its own deadline
//!   (`src/redis/batch.rs`). Measured with callgrind (redis-server 7.0.15, 20 000
//!   decisions through `redis-cli --pipe`, second pass over the same keys, per
//!   decision, networking and the server's expiry cycle included; the bench's quota,
//!   1 000/s with a burst of 100):
//!
//!   | per decision | uniform 10k keys | Zipf 1.0, 10k keys |
//!   |---|---|---|
//!   | GCRA, one `FCALL` per decision | ≈ 45 100 | ≈ 44 200 |
//!   | GCRA, batches of 8 / 32 / 64 | ≈ 32 500 / 28 500 / 27 300 | — / ≈ 24 500 / — |
//!   | `MULTI` / `INCR` / `EXPIRE` / `EXEC` | ≈ 16 300 | ≈ 16 400 |
//!   | redis-cell `CL.THROTTLE` (native GCRA module, 0.2.2) | ≈ 26 600 | ≈ 26 600 |
//!   | `PING` (networking floor) | ≈ 2 300 | |
//!
//!   (A first batch script with one `GET` per decision measured the same 27 800 at 64:
//!   the `SET`s dominate, hence one write per distinct key; Zipf batches repeat hot
//!   keys.) What stays is one `SET … PX` per key that moved: a native `INCR` + `EXPIRE`
//!   pair is still cheaper on the server than the Lua `SET`.
//!
//!   In `keel-bench ratelimit --scenario redis` (Zipf keys, 32 callers per connection;
//!   one full run on the shared 2-core machine at load average ≈ 5, so indicative), at
//!   1 / 2 connections: batched GCRA (mean batch ≈ 23 / 20) 141k / 155k decisions/s =
//!   1.61× / 1.80× the `INCR` + `EXPIRE` window and 1.54× / 1.39× redis-cell
//!   (`CL.THROTTLE`, 0.2.2); without the local denial memory 1.41× / 1.56× and
//!   1.34× / 1.20×; unbatched (`.batch(1)`) 1.03× / 0.97× and 0.98× / 0.75×. CPU per
//!   decision (`INFO cpu` / this process): batched 3.0 µs server + 1.9 µs client,
//!   unbatched 4.7 + 3.0, `INCR` + `EXPIRE` 2.2 + 5.8, redis-cell 3.1 + 4.5. The
//!   median wait fell with it (169 µs against 257 µs unbatched at 1 connection): a
//!   decision queued behind a call no longer waits for 31 single calls ahead of it.
//!
//!   Three *quiet* full runs (nothing else on the machine) tell a different story about
//!   the trade-off, and both are true: batched GCRA (the default) was 1.17 / 1.20 / 1.23×
//!   `INCR` + `EXPIRE` and 1.04 / 1.05 / 0.99× redis-cell at 1 connection, 1.14 / 1.23 /
//!   1.19× and 1.05 / 1.15 / 1.10× at 2; unbatched was *faster* there, 1.26 / 1.32 /
//!   1.33× and 1.12 / 1.15 / 1.06× at 1 connection (151k against 141k decisions/s, p50
//!   208 µs against 255 µs in the first run), while batching still cut CPU per decision
//!   (server 4.1 against 5.0 µs, client 2.8 against 3.8 µs). Batching pays when the
//!   client or the server is short of CPU and costs a few per cent when neither is;
//!   `.batch(1)` turns it off.
//! * **Client cost.** Each decision builds one command buffer, pre-sized, with the key
//!   formatted straight into it (no per-call `String`s), and runs under one timer: the
//!   connection manager has no response timeout of its own, the limiter's deadline
//!   covers the call (before, two timers per call).
//! * **Units.** Scripts work in microseconds (Lua numbers are doubles, exact to 2^53 µs ≈
//!   285 years); the sliding counter's weighted sum is a double too, so for limits ×
//!   windows beyond ~2^53 µs its estimate rounds. A test replays random traffic through
//!   every script with a client-side mock clock and compares each decision with the
//!   in-process algorithm (equal, with `retry_after` rounded up to the microsecond).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Cmd, ErrorKind, FromRedisValue, RedisWrite, Script, ToRedisArgs};
use parking_lot::RwLock;
use quanta::Clock;

use crate::deny_cache::DenyCache;

mod batch;
use crate::error::{BuildError, RedisLimitError};
use crate::{CheckError, Decision, LimiterMetrics, Quota, QuotaError, RatelimitStats};
use batch::{Batcher, DriverGuard, Failure, Pending};

const PREAMBLE: &str = include_str!("lua/preamble.lua");
const GCRA_BATCH: &str = include_str!("lua/gcra_batch.lua");

/// Timed-out calls in a row on one connection after which it is replaced: a connection
/// that only ever times out is most likely a silently dropped flow, which the connection
/// manager (reconnecting on I/O errors only) would keep forever.
pub const RECONNECT_AFTER_TIMEOUTS: u32 = 3;

/// The algorithm a [`RedisLimiter`] runs on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedisAlgorithm {
    /// Fixed window (a hash with the window start and count).
    FixedWindow,
    /// Exact sliding log (a sorted set of request ids scored by time).
    SlidingLog,
    /// Sliding counter (a hash with the window index and two counts).
    SlidingCounter,
    /// Token bucket (a hash with tokens and last refill time).
    TokenBucket,
    /// GCRA (one string: the theoretical arrival time).
    Gcra,
}

impl RedisAlgorithm {
    /// Every algorithm, for iteration.
    pub const ALL: [RedisAlgorithm; 5] = [
        Self::FixedWindow,
        Self::SlidingLog,
        Self::SlidingCounter,
        Self::TokenBucket,
        Self::Gcra,
    ];

    /// The name used in keys and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::FixedWindow => "fixed_window",
            Self::SlidingLog => "sliding_log",
            Self::SlidingCounter => "sliding_counter",
            Self::TokenBucket => "token_bucket",
            Self::Gcra => "gcra",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Self::FixedWindow => include_str!("lua/fixed_window.lua"),
            Self::SlidingLog => include_str!("lua/sliding_log.lua"),
            Self::SlidingCounter => include_str!("lua/sliding_counter.lua"),
            Self::TokenBucket => include_str!("lua/token_bucket.lua"),
            Self::Gcra => include_str!("lua/gcra.lua"),
        }
    }

    /// The Lua source sent to Redis: the shared preamble (server `TIME`) and the
    /// algorithm. GCRA's script is self-contained and a template: the limiter writes its
    /// quota's emission interval and tolerance over `INTERVAL_US` and `TOLERANCE_US`
    /// (see [`RedisLimiter::script_hash`]).
    pub fn script_source(self) -> String {
        match self {
            Self::Gcra => self.body().to_owned(),
            _ => format!("{PREAMBLE}\n{}", self.body()),
        }
    }

    /// The script a limiter with `params` runs.
    fn script_for(self, params: Params) -> String {
        match self {
            Self::Gcra => gcra_constants(&self.script_source(), params),
            _ => self.script_source(),
        }
    }
}

/// GCRA's code with the quota's constants written in.
fn gcra_constants(template: &str, params: Params) -> String {
    template
        .replace("INTERVAL_US", &params.first.to_string())
        .replace("TOLERANCE_US", &params.second.to_string())
}

/// What a decision is when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Allow the request: availability over protection (counted as `failed_open`).
    FailOpen,
    /// Deny the request, asking the client to retry after the given time (counted as
    /// `failed_closed`).
    FailClosed {
        /// The `retry_after` of the denial.
        retry_after: Duration,
    },
    /// Return [`RedisLimitError::Redis`] and let the caller decide.
    Error,
}

/// Where "now" comes from.
#[derive(Debug, Clone)]
pub enum TimeSource {
    /// The Redis server's `TIME` (the default, and the only correct choice for many clients).
    Server,
    /// The client's own clock, shifted by an offset: only to show what clock skew does.
    Client {
        /// The client's clock.
        clock: Clock,
        /// Added to the clock's reading (a skew).
        offset: Duration,
    },
}

/// Builder for [`RedisLimiter`]: `.quota(..)` and `.url(..)` (or `.client(..)`) are
/// required; everything else has a default.
#[must_use]
#[derive(Debug, Clone)]
pub struct RedisLimiterBuilder {
    algorithm: RedisAlgorithm,
    quota: Option<Quota>,
    server: Option<Server>,
    prefix: String,
    policy: FailurePolicy,
    time: TimeSource,
    name: Option<String>,
    timeout: Duration,
    functions: bool,
    local_denials: usize,
    batch: usize,
}

/// Default largest batch of the GCRA limiter: decisions sent in one `FCALL`
/// ([`RedisLimiterBuilder::batch`]).
pub const DEFAULT_BATCH: usize = 64;

/// Default size of the GCRA limiter's local denial memory (keys).
pub const DEFAULT_LOCAL_DENIALS: usize = 4096;

#[derive(Debug, Clone)]
enum Server {
    Url(String),
    Client(Client),
}

impl RedisLimiterBuilder {
    /// The algorithm the server runs (default: [`RedisAlgorithm::Gcra`]).
    pub fn algorithm(mut self, algorithm: RedisAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The quota (required).
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The server, as a `redis://` URL (this or [`client`](Self::client) is required).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.server = Some(Server::Url(url.into()));
        self
    }

    /// The server, as a configured `redis::Client` (TLS, credentials, …).
    pub fn client(mut self, client: Client) -> Self {
        self.server = Some(Server::Client(client));
        self
    }

    /// Key prefix (default `"keel:rl"`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Failure policy (default: fail open).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Time source (default: [`TimeSource::Server`]).
    pub fn time_source(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }

    /// Decide on this client-side clock instead of the server's `TIME`: shorthand for
    /// `time_source(TimeSource::Client { clock, offset: Duration::ZERO })`. For tests that
    /// drive time by hand (`quanta::Clock::mock()`); with many clients in production keep
    /// the server's time (the default), which every client agrees on.
    pub fn clock(self, clock: Clock) -> Self {
        self.time_source(TimeSource::Client {
            clock,
            offset: Duration::ZERO,
        })
    }

    /// Metrics label (default `redis_<algorithm>`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The deadline of one call, end to end (default 250 ms): connecting or reconnecting,
    /// the script and its reply; after it the [`FailurePolicy`] applies. Zero is a
    /// [`BuildError::ZeroTimeout`]; `Duration::MAX` means "wait as long as it takes".
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether to call a Redis 7 function (`FCALL`, the default: ≈ 10 000 fewer server
    /// instructions per decision than `EVALSHA`) when the server offers functions. `false`
    /// always sends `EVALSHA` (no library is installed: e.g. where `FUNCTION` is reserved
    /// for administrators, or to compare the two).
    pub fn functions(mut self, functions: bool) -> Self {
        self.functions = functions;
        self
    }

    /// How many keys the GCRA limiter remembers after the server denied them (default
    /// [`DEFAULT_LOCAL_DENIALS`], rounded up to a power of two; `0` turns it off). Until a
    /// remembered key's TAT comes, a request for it that cannot fit is denied locally —
    /// the same decision the server would make, with no round trip and no server work
    /// (see `deny_cache.rs` for why that is exact and what it assumes of the clocks).
    /// Memory is fixed: a direct-mapped table of that many slots. Other algorithms
    /// ignore it: their denials do not carry a state that only moves forward.
    pub fn local_denials(mut self, slots: usize) -> Self {
        self.local_denials = slots;
        self
    }

    /// The most GCRA decisions sent to the server in one call (default
    /// [`DEFAULT_BATCH`]; `0` or `1` turns batching off). While a call of this limiter is
    /// in flight, the decisions of other callers queue; the next call carries up to this
    /// many of them in one multi-key `FCALL`, which pays the server's function-call
    /// overhead and the reply once instead of once per decision. There is no timer: a
    /// decision that finds no call in flight is sent at once, so a lone caller sees the
    /// same single-key call as without batching. Each decision is still exact GCRA
    /// (several for one key are applied in order); see `redis/batch.rs`. Other
    /// algorithms ignore it. A batch's keys have different hash tags, so it needs a
    /// single server, not Redis Cluster (which this limiter does not connect to).
    pub fn batch(mut self, max: usize) -> Self {
        self.batch = max;
        self
    }

    /// Connects to the server (a [`ConnectionManager`], which reconnects in the
    /// background) and builds the limiter.
    ///
    /// # Errors
    /// [`BuildError::MissingQuota`] / [`BuildError::MissingRedis`] when a required setting
    /// is missing; [`BuildError::Quota`] when the quota is finer than a microsecond per
    /// request; [`BuildError::ZeroTimeout`]; [`BuildError::Redis`] when the URL is invalid or
    /// the first connection fails or takes longer than the timeout.
    pub async fn build(self) -> Result<RedisLimiter, BuildError> {
        let quota = self.quota.ok_or(BuildError::MissingQuota)?;
        let params = Params::new(self.algorithm, quota).map_err(BuildError::Quota)?;
        if self.timeout.is_zero() {
            return Err(BuildError::ZeroTimeout);
        }
        let client = match self.server.ok_or(BuildError::MissingRedis)? {
            Server::Url(url) => Client::open(url.as_str()).map_err(BuildError::Redis)?,
            Server::Client(client) => client,
        };
        // No response timeout in the manager: every call already runs under the limiter's
        // own deadline (one timer per call, not two).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(None)
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        // The first connection gets the same one deadline as a call (the manager would
        // otherwise retry with backoff for several timeouts).
        let connecting = ConnectionManager::new_with_config(client.clone(), config.clone());
        let mut connection = match tokio::time::timeout(self.timeout, connecting).await {
            Ok(connected) => connected.map_err(BuildError::Redis)?,
            Err(_elapsed) => {
                return Err(BuildError::Redis(
                    io::Error::new(io::ErrorKind::TimedOut, "connecting exceeded the timeout")
                        .into(),
                ));
            }
        };
        let source = self.algorithm.script_for(params);
        let script = Script::new(&source);
        let function = format!("keel_rl_{}", script.get_hash());
        let batching = self.algorithm == RedisAlgorithm::Gcra && self.batch > 1;
        let batch_source = batching.then(|| gcra_constants(GCRA_BATCH, params));
        let library = function_library(&function, &source, batch_source.as_deref());
        let batch_function = format!("{function}_batch");
        // Redis ≥ 7: install the function library now (idempotent: REPLACE of the same
        // code). A server without functions (Redis < 7, a renamed or forbidden command)
        // answers an error and the limiter uses EVALSHA instead.
        let use_functions = self.functions && {
            let load = function_load(&library);
            let loading = load.query_async::<()>(&mut connection);
            match tokio::time::timeout(self.timeout, loading).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) if is_server_refusal(&error) => false,
                Ok(Err(error)) => return Err(BuildError::Redis(error)),
                Err(_elapsed) => {
                    return Err(BuildError::Redis(
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            "FUNCTION LOAD exceeded the timeout",
                        )
                        .into(),
                    ));
                }
            }
        };
        let name = self
            .name
            .unwrap_or_else(|| format!("redis_{}", self.algorithm.name()));
        let deny_cache = match self.algorithm {
            RedisAlgorithm::Gcra => DenyCache::new(self.local_denials),
            _ => None,
        };
        // The denial memory measures time on the client's clock when decisions use it
        // (then it is exact), otherwise on a monotonic clock of its own.
        let local_clock = match &self.time {
            TimeSource::Client { clock, .. } => clock.clone(),
            TimeSource::Server => Clock::new(),
        };
        Ok(RedisLimiter {
            shared: Arc::new(Shared {
                algorithm: self.algorithm,
                quota,
                params,
                script,
                function,
                library,
                use_functions: AtomicBool::new(use_functions),
                prefix: self.prefix,
                policy: self.policy,
                time: self.time,
                metrics: LimiterMetrics::new(&name),
                client,
                manager_config: config,
                connection: RwLock::new(Connection {
                    generation: 0,
                    manager: connection,
                }),
                timeout: self.timeout,
                timeouts_in_a_row: AtomicU32::new(0),
                deny_cache,
                local_clock,
                local_denials: AtomicU64::new(0),
                batch_function,
                batch_script: batch_source.as_deref().map(Script::new),
                batcher: batching.then(|| Batcher::new(self.batch)),
                batch_calls: AtomicU64::new(0),
                batched_decisions: AtomicU64::new(0),
            }),
        })
    }
}

/// Script arguments, in microseconds, derived once from the quota.
#[derive(Debug, Clone, Copy)]
struct Params {
    first: u64,
    second: u64,
    capacity: u32,
}

impl Params {
    fn new(algorithm: RedisAlgorithm, quota: Quota) -> Result<Self, QuotaError> {
        let window_us = quota.window().as_micros() as u64;
        let interval_us = window_us / u64::from(quota.limit());
        if interval_us == 0 {
            return Err(QuotaError::RateTooHigh {
                limit: quota.limit(),
                window: quota.window(),
            });
        }
        Ok(match algorithm {
            RedisAlgorithm::Gcra => Self {
                first: interval_us,
                second: interval_us * u64::from(quota.burst()),
                capacity: quota.burst(),
            },
            RedisAlgorithm::TokenBucket => Self {
                first: interval_us,
                second: u64::from(quota.burst()),
                capacity: quota.burst(),
            },
            _ => Self {
                first: window_us,
                second: u64::from(quota.limit()),
                capacity: quota.limit(),
            },
        })
    }
}

struct Shared {
    algorithm: RedisAlgorithm,
    quota: Quota,
    params: Params,
    /// The script (EVALSHA path) …
    script: Script,
    /// … and the same code as a function: its name (`keel_rl_<script sha1>`, also the
    /// library's name, so limiters with other quotas or versions never clash) …
    function: String,
    /// … and the library source `FUNCTION LOAD` installs.
    library: String,
    /// FCALL while true; EVALSHA once the server refused functions.
    use_functions: AtomicBool,
    prefix: String,
    policy: FailurePolicy,
    time: TimeSource,
    metrics: LimiterMetrics,
    /// What a replacement connection is made from.
    client: Client,
    manager_config: ConnectionManagerConfig,
    connection: RwLock<Connection>,
    /// The deadline of one call, end to end.
    timeout: Duration,
    /// Timed-out calls in a row on the current connection.
    timeouts_in_a_row: AtomicU32,
    /// GCRA: keys the server denied and their TAT on `local_clock`.
    deny_cache: Option<DenyCache>,
    local_clock: Clock,
    /// Decisions answered from `deny_cache`.
    local_denials: AtomicU64,
    /// GCRA batches: the multi-key function (`<function>_batch`, in the same library) …
    batch_function: String,
    /// … the same code as a script (EVALSHA path) …
    batch_script: Option<Script>,
    /// … and the queue of waiting decisions (`None`: batching off).
    batcher: Option<Batcher>,
    /// Calls that carried more than one decision, and how many decisions they carried.
    batch_calls: AtomicU64,
    batched_decisions: AtomicU64,
}

/// A script's reply: GCRA answers one integer, the other scripts a table of four.
enum Reply {
    Gcra(i64),
    Table(Vec<i64>),
}

/// The current connection manager and which replacement it is.
struct Connection {
    generation: u64,
    manager: ConnectionManager,
}

impl Shared {
    /// Counts a timed-out call on connection `generation`; the call that makes it
    /// [`RECONNECT_AFTER_TIMEOUTS`] in a row replaces the connection.
    fn note_timeout(&self, generation: u64) {
        if self.connection.read().generation != generation {
            return; // a late timeout of a connection already replaced
        }
        if self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 != RECONNECT_AFTER_TIMEOUTS {
            return;
        }
        let mut connection = self.connection.write();
        if connection.generation != generation {
            return;
        }
        // Lazy: the first call on it connects, within that call's deadline.
        if let Ok(manager) = ConnectionManager::new_lazy_with_config(
            self.client.clone(),
            self.manager_config.clone(),
        ) {
            *connection = Connection {
                generation: generation + 1,
                manager,
            };
            self.metrics.record_reconnect();
        }
        self.timeouts_in_a_row.store(0, Ordering::Relaxed);
    }

    fn note_answer(&self) {
        // Read first: no shared write per decision while all is well.
        if self.timeouts_in_a_row.load(Ordering::Relaxed) != 0 {
            self.timeouts_in_a_row.store(0, Ordering::Relaxed);
        }
    }
}

/// A rate limiter whose state lives in Redis; clone it freely (clones share the
/// connection, the script and the counters).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use keel_ratelimit::Quota;
/// use keel_ratelimit::redis::{FailurePolicy, RedisAlgorithm, RedisLimiter};
///
/// let limiter = RedisLimiter::builder()
///     .algorithm(RedisAlgorithm::Gcra)
///     .quota(Quota::per_second(100)?)
///     .url("redis://127.0.0.1:6379/")
///     .prefix("myapp:rl")
///     .failure_policy(FailurePolicy::FailOpen)
///     .build()
///     .await?;
/// let decision = limiter.check("user:42").await?;
/// println!("allowed={} remaining={}", decision.allowed, decision.remaining);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLimiter {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("algorithm", &self.shared.algorithm)
            .field("quota", &self.shared.quota)
            .field("prefix", &self.shared.prefix)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A builder: `.quota(..)` and `.url(..)` (required), `.algorithm(..)`, `.prefix(..)`,
    /// `.failure_policy(..)`, `.timeout(..)`, `.clock(..)`/`.time_source(..)`, `.name(..)`,
    /// then `.build().await`.
    pub fn builder() -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            algorithm: RedisAlgorithm::Gcra,
            quota: None,
            server: None,
            prefix: "keel:rl".to_owned(),
            policy: FailurePolicy::FailOpen,
            time: TimeSource::Server,
            name: None,
            timeout: Duration::from_millis(250),
            functions: true,
            local_denials: DEFAULT_LOCAL_DENIALS,
            batch: DEFAULT_BATCH,
        }
    }

    /// The Redis key holding `key`'s state (the sliding log also uses `<this>:seq`).
    pub fn redis_key(&self, key: &str) -> String {
        format!(
            "{}:{{{key}}}:{}",
            self.shared.prefix,
            self.shared.algorithm.name()
        )
    }

    /// Decides one unit-cost request for `key`: one `FCALL` (or `EVALSHA`) round trip.
    ///
    /// # Errors
    /// [`RedisLimitError::Redis`] only under [`FailurePolicy::Error`];
    /// [`RedisLimitError::BadReply`] if the script's reply is malformed.
    pub async fn check(&self, key: &str) -> Result<Decision, RedisLimitError> {
        self.check_n(key, 1).await
    }

    /// Decides a request of `cost` units for `key`.
    ///
    /// # Errors
    /// [`RedisLimitError::Check`] when `cost` can never fit; otherwise as [`check`](Self::check).
    ///
    /// # Cancel safety
    /// Dropping the future may or may not have applied the decision on the server (the
    /// script is atomic, so it was applied entirely or not at all).
    pub async fn check_n(&self, key: &str, cost: u32) -> Result<Decision, RedisLimitError> {
        let shared = &*self.shared;
        let capacity = shared.params.capacity;
        if cost > capacity {
            return Err(CheckError::InsufficientCapacity { cost, capacity }.into());
        }
        let now_us = self.client_now_us();
        if let Some(denial) = self.local_denial(key, cost) {
            shared.local_denials.fetch_add(1, Ordering::Relaxed);
            shared.metrics.record(&denial);
            return Ok(denial);
        }
        if let Some(batcher) = &shared.batcher {
            return self.check_batched(batcher, key, cost).await;
        }
        // Read before the call goes out, so no later than the server's `TIME`: a TAT
        // remembered from the reply is never later than the real one.
        let sent_ns = self.local_now_ns();
        let (generation, mut connection) = {
            let current = shared.connection.read();
            (current.generation, current.manager.clone())
        };
        // One deadline for everything the call waits on, reconnects and re-loads included.
        let command = |functions| self.command(functions, key, cost, now_us);
        let call = async {
            if shared.algorithm == RedisAlgorithm::Gcra {
                let reply = self
                    .call::<i64>(&mut connection, &command, &shared.script)
                    .await?;
                Ok(Reply::Gcra(reply))
            } else {
                let reply = self
                    .call::<Vec<i64>>(&mut connection, &command, &shared.script)
                    .await?;
                Ok(Reply::Table(reply))
            }
        };
        let reply: Result<Reply, ::redis::RedisError> =
            match tokio::time::timeout(shared.timeout, call).await {
                Ok(reply) => reply,
                Err(_elapsed) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "rate-limit call exceeded its timeout",
                )
                .into()),
            };
        match &reply {
            Ok(_) => shared.note_answer(),
            Err(error) if error.is_timeout() => shared.note_timeout(generation),
            Err(_) => {}
        }
        let decision = match reply {
            Ok(Reply::Table(values)) => self.decision_from(&values)?,
            Ok(Reply::Gcra(reply)) => {
                self.remember(key, reply, sent_ns);
                self.gcra_decision(reply, cost)
            }
            Err(error) => self.on_failure(error)?,
        };
        shared.metrics.record(&decision);
        Ok(decision)
    }

    /// "Now" in microseconds when decisions use the client's clock (`None`: the server's).
    fn client_now_us(&self) -> Option<u64> {
        match &self.shared.time {
            TimeSource::Server => None,
            TimeSource::Client { clock, offset } => {
                let offset = u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX);
                let nanos = clock.delta_as_nanos(0, clock.raw()).saturating_add(offset);
                Some(nanos / 1_000)
            }
        }
    }

    /// A GCRA decision through the batcher: queue it, start the driver if no call is in
    /// flight, and wait (at most the timeout) for its integer.
    async fn check_batched(
        &self,
        batcher: &Batcher,
        key: &str,
        cost: u32,
    ) -> Result<Decision, RedisLimitError> {
        let shared = &*self.shared;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = Pending {
            key: key.to_owned(),
            cost,
            reply,
        };
        if batcher.push(pending) {
            let driver = self.clone();
            tokio::spawn(async move { driver.drive().await });
        }
        let outcome = match tokio::time::timeout(shared.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_dropped)) => Err(Failure::Redis(
                io::Error::other("the call carrying this decision was abandoned").into(),
            )),
            Err(_elapsed) => Err(Failure::Redis(
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "rate-limit call exceeded its timeout",
                )
                .into(),
            )),
        };
        let decision = match outcome {
            Ok(reply) => self.gcra_decision(reply, cost),
            Err(Failure::Redis(error)) => self.on_failure(error)?,
            Err(Failure::BadReply(reply)) => return Err(RedisLimitError::BadReply(reply)),
        };
        shared.metrics.record(&decision);
        Ok(decision)
    }

    /// The batcher's driver: sends what is queued, up to the largest batch per call, one
    /// call at a time, until the queue is empty.
    async fn drive(self) {
        let shared = &*self.shared;
        let Some(batcher) = shared.batcher.as_ref() else {
            return;
        };
        let guard = DriverGuard::new(batcher);
        let mut batch = Vec::with_capacity(batcher.max());
        while batcher.take(&mut batch) {
            // As in `check_n`: read before the call goes out, for the denial memory.
            let sent_ns = self.local_now_ns();
            let now_us = self.client_now_us();
            let (generation, mut connection) = {
                let current = shared.connection.read();
                (current.generation, current.manager.clone())
            };
            let call = async {
                if let [single] = batch.as_slice() {
                    let command =
                        |functions| self.command(functions, &single.key, single.cost, now_us);
                    let reply = self
                        .call::<i64>(&mut connection, &command, &shared.script)
                        .await?;
                    Ok(vec![reply])
                } else {
                    let command = |functions| self.batch_command(functions, &batch, now_us);
                    let script = shared.batch_script.as_ref().unwrap_or(&shared.script);
                    self.call::<Vec<i64>>(&mut connection, &command, script)
                        .await
                }
            };
            let reply: ::redis::RedisResult<Vec<i64>> =
                match tokio::time::timeout(shared.timeout, call).await {
                    Ok(reply) => reply,
                    Err(_elapsed) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "rate-limit call exceeded its timeout",
                    )
                    .into()),
                };
            match &reply {
                Ok(_) => shared.note_answer(),
                Err(error) if error.is_timeout() => shared.note_timeout(generation),
                Err(_) => {}
            }
            if batch.len() > 1 {
                shared.batch_calls.fetch_add(1, Ordering::Relaxed);
                shared
                    .batched_decisions
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            match reply {
                Ok(replies) if replies.len() == batch.len() => {
                    for (pending, reply) in batch.drain(..).zip(replies) {
                        self.remember(&pending.key, reply, sent_ns);
                        let _ = pending.reply.send(Ok(reply));
                    }
                }
                Ok(replies) => {
                    let failure = Failure::BadReply(format!("{replies:?}"));
                    for pending in batch.drain(..) {
                        let _ = pending.reply.send(Err(failure.clone()));
                    }
                }
                Err(error) => {
                    let failure = Failure::Redis(error);
                    for pending in batch.drain(..) {
                        let _ = pending.reply.send(Err(failure.clone()));
                    }
                }
            }
        }
        guard.finish();
    }

    /// `FCALL <function>_batch n key₁ … keyₙ now|'' cost₁ … costₙ` (or `EVALSHA`).
    fn batch_command(&self, functions: bool, batch: &[Pending], now_us: Option<u64>) -> Cmd {
        let shared = &*self.shared;
        let keys_len: usize = batch
            .iter()
            .map(|p| shared.prefix.len() + p.key.len() + 24)
            .sum();
        let mut cmd = Cmd::with_capacity(4 + 2 * batch.len(), 96 + keys_len + 4 * batch.len());
        match (functions, &shared.batch_script) {
            (false, Some(script)) => cmd.arg("EVALSHA").arg(script.get_hash()),
            _ => cmd.arg("FCALL").arg(shared.batch_function.as_str()),
        };
        cmd.arg(batch.len());
        for pending in batch {
            cmd.arg(StateKey {
                prefix: &shared.prefix,
                key: &pending.key,
                algorithm: shared.algorithm.name(),
                suffix: "",
            });
        }
        match now_us {
            Some(now) => cmd.arg(now),
            None => cmd.arg(""),
        };
        for pending in batch {
            cmd.arg(pending.cost);
        }
        cmd
    }

    /// The decision command: `FCALL <function>` or `EVALSHA <sha1>`, then the keys and
    /// the arguments, written straight into one pre-sized buffer (no per-call `String`s).
    fn command(&self, functions: bool, key: &str, cost: u32, now_us: Option<u64>) -> Cmd {
        let shared = &*self.shared;
        let sliding_log = shared.algorithm == RedisAlgorithm::SlidingLog;
        let key_len = shared.prefix.len() + key.len() + 24;
        let mut cmd = Cmd::with_capacity(10, 96 + shared.function.len() + 2 * key_len);
        if functions {
            cmd.arg("FCALL").arg(shared.function.as_str());
        } else {
            cmd.arg("EVALSHA").arg(shared.script.get_hash());
        }
        let state = StateKey {
            prefix: &shared.prefix,
            key,
            algorithm: shared.algorithm.name(),
            suffix: "",
        };
        if sliding_log {
            cmd.arg(2).arg(state).arg(StateKey {
                suffix: ":seq",
                ..state
            });
        } else {
            cmd.arg(1).arg(state);
        }
        if shared.algorithm != RedisAlgorithm::Gcra {
            // GCRA's quota constants are in its code; the other scripts read them here.
            cmd.arg(shared.params.first).arg(shared.params.second);
        }
        cmd.arg(cost);
        match now_us {
            Some(now) => cmd.arg(now),
            None => cmd.arg(""),
        };
        cmd
    }

    /// One decision on the server: one `FCALL` (or `EVALSHA`) round trip; a second only
    /// after the server lost the code (restart, `FUNCTION FLUSH`, `SCRIPT FLUSH`): load it
    /// and send the same command again. A server that refuses functions (`FCALL` unknown or
    /// forbidden) switches this limiter to `EVALSHA` for good.
    async fn call<T: FromRedisValue>(
        &self,
        connection: &mut ConnectionManager,
        command: &impl Fn(bool) -> Cmd,
        script: &Script,
    ) -> ::redis::RedisResult<T> {
        let shared = &*self.shared;
        if shared.use_functions.load(Ordering::Relaxed) {
            let fcall = command(true);
            match fcall.query_async::<T>(connection).await {
                Err(error) if is_function_missing(&error) => {
                    match function_load(&shared.library)
                        .query_async::<()>(connection)
                        .await
                    {
                        Ok(()) => return fcall.query_async(connection).await,
                        Err(error) if is_server_refusal(&error) => {}
                        Err(error) => return Err(error),
                    }
                }
                Err(error) if is_server_refusal(&error) => {}
                reply => return reply,
            }
            shared.use_functions.store(false, Ordering::Relaxed);
        }
        let evalsha = command(false);
        match evalsha.query_async::<T>(connection).await {
            Err(error) if error.kind() == ErrorKind::Server(::redis::ServerErrorKind::NoScript) => {
                script.load_async(connection).await?;
                evalsha.query_async(connection).await
            }
            reply => reply,
        }
    }

    /// How decisions reach the server: [`ServerCall::Fcall`] on Redis ≥ 7,
    /// [`ServerCall::Evalsha`] where functions are unavailable.
    pub fn server_call(&self) -> ServerCall {
        if self.shared.use_functions.load(Ordering::Relaxed) {
            ServerCall::Fcall
        } else {
            ServerCall::Evalsha
        }
    }

    /// The function (and library) name the limiter calls with `FCALL`:
    /// `keel_rl_<script sha1>`.
    pub fn function_name(&self) -> &str {
        &self.shared.function
    }

    fn local_now_ns(&self) -> u64 {
        let clock = &self.shared.local_clock;
        clock.delta_as_nanos(0, clock.raw())
    }

    /// A denial from the remembered TAT of `key`, when `cost` cannot fit under it.
    fn local_denial(&self, key: &str, cost: u32) -> Option<Decision> {
        let cache = self.shared.deny_cache.as_ref()?;
        let ahead_ns = cache.ahead(key, self.local_now_ns())?;
        // Whole microseconds, rounded down: never more ahead than the server's TAT.
        let current = ahead_ns / 1_000;
        let Params {
            first: interval,
            second: tolerance,
            ..
        } = self.shared.params;
        if current.saturating_add(u64::from(cost) * interval) <= tolerance {
            return None;
        }
        // Exactly the server's denial for a TAT `current` ahead (`gcra_decision`).
        let reply = -1 - i64::try_from(current).unwrap_or(i64::MAX - 1);
        Some(self.gcra_decision(reply, cost))
    }

    /// Remembers the TAT a GCRA reply reveals: after a denial, or an allow that filled
    /// the burst (the next unit request would be denied); after an allow with room left
    /// only if the key is already remembered, so a remembered TAT stays the latest one
    /// this client saw (and a local denial's `retry_after` the server's).
    fn remember(&self, key: &str, reply: i64, sent_ns: u64) {
        let Some(cache) = self.shared.deny_cache.as_ref() else {
            return;
        };
        let Params {
            first: interval,
            second: tolerance,
            ..
        } = self.shared.params;
        let (ahead_us, only_update) = if reply >= 0 {
            let backlog = reply.unsigned_abs();
            (backlog, backlog.saturating_add(interval) <= tolerance)
        } else {
            ((-1 - reply).unsigned_abs(), false)
        };
        let tat_ns = sent_ns.saturating_add(ahead_us.saturating_mul(1_000));
        cache.remember(key, tat_ns, only_update);
    }

    /// GCRA's one-integer reply: the backlog `b ≥ 0` (µs) when allowed; `-1 - c` when
    /// denied, `c` being how far TAT is ahead of now. The rest follows from the quota
    /// exactly as the in-process `Gcra` computes it.
    fn gcra_decision(&self, reply: i64, cost: u32) -> Decision {
        let Params {
            first: interval,
            second: tolerance,
            capacity: limit,
        } = self.shared.params;
        let us = |v: u64| v.saturating_mul(1_000);
        if reply >= 0 {
            let backlog = reply.unsigned_abs();
            let remaining = tolerance.saturating_sub(backlog) / interval;
            Decision::allow(limit, remaining, us(backlog))
        } else {
            let current = (-1 - reply).unsigned_abs();
            let backlog = current.saturating_add(u64::from(cost) * interval);
            let remaining = tolerance.saturating_sub(current) / interval;
            Decision::deny(
                limit,
                remaining,
                us(current),
                us(backlog.saturating_sub(tolerance)),
            )
        }
    }

    fn decision_from(&self, values: &[i64]) -> Result<Decision, RedisLimitError> {
        let &[allowed, remaining, reset_us, retry_us] = values else {
            return Err(RedisLimitError::BadReply(format!("{values:?}")));
        };
        let limit = self.shared.params.capacity;
        let us = |v: i64| u64::try_from(v).unwrap_or(0).saturating_mul(1_000);
        let remaining = u64::try_from(remaining).unwrap_or(0);
        Ok(if allowed == 1 {
            Decision::allow(limit, remaining, us(reset_us))
        } else {
            Decision::deny(limit, remaining, us(reset_us), us(retry_us))
        })
    }

    fn on_failure(&self, error: ::redis::RedisError) -> Result<Decision, RedisLimitError> {
        let shared = &*self.shared;
        let limit = shared.params.capacity;
        match shared.policy {
            FailurePolicy::FailOpen => {
                shared.metrics.record_backend_error(Some(true));
                Ok(Decision::allow(limit, 0, 0))
            }
            FailurePolicy::FailClosed { retry_after } => {
                shared.metrics.record_backend_error(Some(false));
                // `Duration::MAX` ("until further notice") saturates instead of wrapping.
                let retry = u64::try_from(retry_after.as_nanos()).unwrap_or(u64::MAX);
                Ok(Decision::deny(limit, 0, retry, retry))
            }
            FailurePolicy::Error => {
                shared.metrics.record_backend_error(None);
                Err(RedisLimitError::Redis(error))
            }
        }
    }

    /// The quota.
    pub fn quota(&self) -> Quota {
        self.shared.quota
    }

    /// The algorithm.
    pub fn algorithm(&self) -> RedisAlgorithm {
        self.shared.algorithm
    }

    /// A snapshot of the counters (decisions, backend errors, fail-open/closed).
    pub fn stats(&self) -> RatelimitStats {
        let mut stats = self.shared.metrics.snapshot();
        stats.local_denials = self.shared.local_denials.load(Ordering::Relaxed);
        stats
    }

    /// Keys the GCRA limiter can remember as denied (0: the memory is off or the
    /// algorithm is not GCRA); see [`RedisLimiterBuilder::local_denials`].
    pub fn local_denial_slots(&self) -> usize {
        self.shared.deny_cache.as_ref().map_or(0, DenyCache::slots)
    }

    /// Calls that carried more than one GCRA decision, and the decisions they carried
    /// (their mean batch size is the ratio); `(0, 0)` while every call carried one.
    pub fn batch_stats(&self) -> (u64, u64) {
        let shared = &*self.shared;
        (
            shared.batch_calls.load(Ordering::Relaxed),
            shared.batched_decisions.load(Ordering::Relaxed),
        )
    }

    /// The SHA-1 the limiter sends with `EVALSHA`.
    pub fn script_hash(&self) -> &str {
        self.shared.script.get_hash()
    }
}

/// How a [`RedisLimiter`] sends its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCall {
    /// `FCALL` of a Redis 7 function (the library is loaded with `FUNCTION LOAD REPLACE`).
    Fcall,
    /// `EVALSHA` of a cached script (Redis < 7, or functions refused by the server).
    Evalsha,
}

/// `{prefix}:{<key>}:<algorithm><suffix>`, formatted straight into the command's buffer.
#[derive(Clone, Copy)]
struct StateKey<'a> {
    prefix: &'a str,
    key: &'a str,
    algorithm: &'static str,
    suffix: &'static str,
}

impl ToRedisArgs for StateKey<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        out.write_arg_fmt(format_args!(
            "{}:{{{}}}:{}{}",
            self.prefix, self.key, self.algorithm, self.suffix
        ));
    }
}

/// The library that registers `source` (a script body reading `KEYS` and `ARGV`) as the
/// function `name`, and `batch` (GCRA's multi-key body) as `<name>_batch`; the library
/// has the same name.
fn function_library(name: &str, source: &str, batch: Option<&str>) -> String {
    let mut library = format!(
        "#!lua name={name}\nredis.register_function('{name}', function(KEYS, ARGV)\n{source}\nend)\n"
    );
    if let Some(batch) = batch {
        library.push_str(&format!(
            "redis.register_function('{name}_batch', function(KEYS, ARGV)\n{batch}\nend)\n"
        ));
    }
    library
}

fn function_load(library: &str) -> Cmd {
    let mut cmd = ::redis::cmd("FUNCTION");
    cmd.arg("LOAD").arg("REPLACE").arg(library);
    cmd
}

/// `ERR Function not found`: the server lost the library (a restart without persistence,
/// `FUNCTION FLUSH`, a failover to a replica that never had it).
fn is_function_missing(error: &::redis::RedisError) -> bool {
    error.kind() == ErrorKind::Server(::redis::ServerErrorKind::ResponseError)
        && error
            .detail()
            .is_some_and(|d| d.starts_with("Function not found"))
}

/// The server does not offer functions to us: an unknown command (Redis < 7, a renamed
/// command) or an ACL refusal.
fn is_server_refusal(error: &::redis::RedisError) -> bool {
    match error.kind() {
        ErrorKind::Server(::redis::ServerErrorKind::NoPerm) => true,
        ErrorKind::Server(::redis::ServerErrorKind::ResponseError) => error
            .detail()
            .is_some_and(|d| d.to_ascii_lowercase().starts_with("unknown command")),
        _ => false,
    }
}
