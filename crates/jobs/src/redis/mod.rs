//! [`RedisStore`]: the job store on a Redis server (`redis` feature), shared by any
//! number of worker and producer processes.
//!
//! # Functions: one round trip, atomic
//!
//! Every [`Store`] call is **one `FCALL`** of a function in the keel-jobs Redis 7 function
//! library (`src/redis/lua/`, loaded once by [`build`](RedisStoreBuilder::build), reloaded
//! if the server lost it — see `functions.rs`): Redis runs a function atomically, so
//! "check the unique key and insert", "reap expired leases, promote due jobs, check the
//! global limits and lease a batch", "check the fencing token and ack" are each a single
//! indivisible step, however many processes share the server. The functions share
//! `common.lua` (key helpers, insert, bury, batch progress, lease expiry); the entry
//! points are `enqueue.lua` (enqueue and `enqueue_many`: all jobs in one call),
//! `fetch.lua` (up to `limit` leases in one call), `complete.lua` (a group of acks),
//! `settle.lua` (heartbeat, fail/retry, release), `reap.lua`, `admin.lua` (cancel, delete,
//! dead-letter retry/delete, pause/resume, cron ticks, batches, global limits) and
//! `read.lua` (get, counts, list, failures by error, batch status). Functions take the key
//! prefix and the caller's clock reading as arguments and derive every key from them (so
//! they need one Redis node, not a cluster).
//!
//! # Group acks
//!
//! Concurrent [`complete`](Store::complete) calls of one store share a call
//! (`crate::ack_group`, with `ack.rs` the Redis side):
//! acks that arrive while one `FCALL` is in flight go together in the next, up to 1 000,
//! and the lease set, counters and id indexes are updated once per group. Each ack still
//! gets its own answer (a stale token in a group fails only that ack). With the worker
//! pool's batched fetch, a job costs a share of three calls (enqueue batch, fetch batch,
//! ack group) instead of one call per ack. [`JobsStats::commits`] counts the groups.
//!
//! # Key layout (prefix `P`, default `keel:jobs:`)
//!
//! | key | type | what |
//! |---|---|---|
//! | `P ids`, `P tokens` | string (`INCR`) | job/batch ids; fencing tokens (monotonic: `INCRBY` per fetch) |
//! | `P j:<id>` | hash | the job: queue, kind, payload (JSON, never parsed by Lua), priority, attempt, max attempts, run_at, status, token, deadline, … |
//! | `P e:<id>` | list | its error history (JSON entries, the latest 32) |
//! | `P r:<queue>` | zset | due jobs: score `-priority`, member `run_at‖id` zero-padded — so `ZRANGE 0 n-1` is priority desc, then FIFO |
//! | `P s:<queue>` | zset | delayed and retrying jobs not yet due, by run_at (promoted at fetch) |
//! | `P lease` | zset | leased jobs by deadline (the reaper reads its front) |
//! | `P c:<queue>` | hash | counters: running, dead, done, retrying split by ready/scheduled |
//! | `P uniq` | hash | unique key → job id, while the job is unfinished |
//! | `P all`, `P qa:<queue>` | zset | every job id (score = id): paginated `list` |
//! | `P d:<queue>`, `P ok:<queue>` | zset | dead / kept-succeeded ids (score = id) |
//! | `P dg:<queue>` + `P dg:<queue>:<sha1>` | hash + zset | dead jobs grouped by last error (kind + message): `dead_by_error` reads one `ZCARD` per group, fast with 200 000 dead jobs |
//! | `P b:<id>` | hash | an open batch: counts and callbacks |
//! | `P paused`, `P queues` | set | paused queues; queues that hold jobs |
//! | `P cron` | hash | schedule → last enqueued tick (once per tick across processes) |
//! | `P lim:<queue>`, `P gcra:<queue>` | hash, string | global concurrency / rate limit, and the GCRA state |
//! | `P w:<queue>` | list | wake-up tokens idle workers `BLPOP` (capped at 64, expires) |
//!
//! # Time
//!
//! Timestamps come from the store's injected [`Clock`] (wall-clock ms), passed to each
//! function — so tests drive leases and delays with a [`MockClock`](crate::MockClock), and
//! processes sharing a server must have synchronised clocks (NTP): a clock that is ahead
//! reaps leases early (at-least-once still holds; fencing rejects the late ack).
//!
//! # Durability
//!
//! A call returns once Redis ran its function. Whether that survives a crash of the
//! *server* is Redis's persistence setting: run it with `appendonly yes` and
//! `appendfsync always` for "nothing acknowledged is lost" (each write is fsynced before
//! the reply; the Redis tests in this crate run that way), or `appendfsync everysec` to
//! trade up to a second of acknowledged jobs for throughput. With persistence off, a
//! Redis restart loses every job.
//!
//! # Compatibility
//!
//! Redis ≥ 7.0 (developed against 7.0.15): functions (`FUNCTION LOAD`, `FCALL`, 7.0) and
//! otherwise long-standing commands (`ZADD`, `ZRANGEBYSCORE`, `ZRANGE` by rank, `HSET`
//! with several fields, `BLPOP` with a fractional timeout) — no 7.4 hash-field expiry.
//! No `EVALSHA` fallback: every server the crate supports has functions.
//!
//! # Global limits
//!
//! [`RedisStore::set_queue_limits`] stores a per-queue concurrency and rate limit *in
//! Redis*; `fetch.lua` applies them atomically for every process: it leases at most
//! `concurrency − running` jobs, and at most what a GCRA (the `keel-ratelimit` algorithm,
//! state = one theoretical-arrival-time string) allows at the fetch's clock reading,
//! advancing it by the jobs actually leased.

mod ack;
mod decode;
mod functions;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Client, Value};
use keel_ratelimit::Quota;
use parking_lot::Mutex;

use crate::ack_group::{AckAnswer, AckGroup};
use crate::batch::{Batch, BatchCallbacks, BatchId, BatchStatus};
use crate::clock::{Clock, SystemClock};
use crate::job::{JobRecord, JobState, MAX_ERROR_LEN, MAX_NAME_LEN, NewJob};
use crate::metrics::StoreMetrics;
use crate::store::{
    CancelOutcome, Enqueued, FailOutcome, Failure, FailureGroup, Lease, ListFilter, QueueCounts,
    Store,
};
use crate::{BuildError, FencingToken, InvalidJob, JobId, JobsError, JobsStats, Timestamp};
use ack::RedisAcks;
use decode::{array, bad_reply, int, split_events, text};
use functions::{Function, Library};

/// Most jobs one fetch leases (bounds the function's run time; the pool asks again).
pub const MAX_FETCH: usize = 10_000;

/// Dead jobs one `retry_all_dead` / `delete_all_dead` call handles before the next
/// (each chunk is atomic; the whole call is not, so Redis is never blocked for long).
const DEAD_CHUNK: usize = 1_000;

/// Cross-process limits of one queue, enforced inside the fetch function for every process
/// sharing the server (see [`RedisStore::set_queue_limits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalLimits {
    /// At most this many jobs of the queue running at once, over all processes.
    pub concurrency: Option<u32>,
    /// At most `burst + rate·t` jobs of the queue started over any time `t`.
    pub rate: Option<Quota>,
}

/// The Redis job store. Cheap to share (`Arc`); every call is one `FCALL` round trip
/// (concurrent acks share one).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use keel_jobs::{NewJob, RedisStore, Store};
/// let store = RedisStore::builder().url("redis://127.0.0.1:6379/").prefix("myapp:jobs:").build().await?;
/// let id = store.enqueue(NewJob::new("emails", "send", serde_json::json!({"to": "a@b.c"}))).await?.id;
/// let leases = store.fetch("emails", 10, std::time::Duration::from_secs(30)).await?;
/// assert_eq!(leases[0].job.id, id);
/// store.complete(id, leases[0].token).await?;
/// # Ok(()) }
/// ```
pub struct RedisStore {
    prefix: String,
    keep_completed: bool,
    clock: Arc<dyn Clock>,
    metrics: Arc<StoreMetrics>,
    succeeded_total: Arc<AtomicU64>,
    acks: Arc<AckGroup<RedisAcks>>,
    client: Client,
    conn: ConnectionManager,
    waiters: Mutex<Vec<MultiplexedConnection>>,
    timeout: Duration,
    functions: Arc<Library>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("keep_completed", &self.keep_completed)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A builder; [`url`](RedisStoreBuilder::url) or [`client`](RedisStoreBuilder::client)
    /// is required.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder {
            server: None,
            prefix: "keel:jobs:".to_owned(),
            clock: None,
            keep_completed: false,
            timeout: Duration::from_secs(5),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stores `limits` for `queue` in Redis: every process's fetches obey them from the
    /// next fetch on. `GlobalLimits::default()` removes them.
    ///
    /// # Errors
    ///
    /// [`JobsError::InvalidArgument`] for a zero concurrency or a rate finer than 1 µs per
    /// job; [`JobsError::Invalid`] for a bad queue name; [`JobsError::Storage`] when Redis
    /// fails.
    pub async fn set_queue_limits(
        &self,
        queue: &str,
        limits: GlobalLimits,
    ) -> Result<(), JobsError> {
        check_queue(queue)?;
        let concurrency = match limits.concurrency {
            Some(0) => return Err(JobsError::InvalidArgument("concurrency must be at least 1")),
            Some(n) => n.to_string(),
            None => String::new(),
        };
        let (interval, tolerance) = match limits.rate {
            Some(quota) => {
                let interval = quota.window().as_micros() / u128::from(quota.limit());
                if interval == 0 {
                    return Err(JobsError::InvalidArgument(
                        "rate limit is finer than one job per microsecond",
                    ));
                }
                let tolerance = interval * u128::from(quota.burst());
                (interval.to_string(), tolerance.to_string())
            }
            None => (String::new(), String::new()),
        };
        self.call(
            Function::Admin,
            &[
                "limits",
                queue,
                concurrency.as_str(),
                interval.as_str(),
                tolerance.as_str(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn call<A: ::redis::ToRedisArgs>(
        &self,
        function: Function,
        args: &[A],
    ) -> Result<Value, JobsError> {
        self.call_at(function, self.clock.now(), args).await
    }

    /// Runs `function` with the common arguments (prefix, now, keep) then `args`; records
    /// the events it reports.
    async fn call_at<A: ::redis::ToRedisArgs>(
        &self,
        function: Function,
        now: Timestamp,
        args: &[A],
    ) -> Result<Value, JobsError> {
        let mut cmd = self.functions.command(function);
        cmd.arg(&self.prefix)
            .arg(now.0)
            .arg(if self.keep_completed { "1" } else { "0" });
        for a in args {
            cmd.arg(a);
        }
        let mut conn = self.conn.clone();
        let reply = self
            .functions
            .call(&mut conn, &cmd)
            .await
            .map_err(|e| JobsError::Storage(Box::new(e)))?;
        let (events, _) = split_events(&reply)?;
        self.metrics.record(&events);
        Ok(reply)
    }

    async fn settle(
        &self,
        id: JobId,
        token: FencingToken,
        op: &str,
        extra: &[String],
    ) -> Result<Vec<Value>, JobsError> {
        let mut args = vec![op.to_owned(), id.0.to_string(), token.0.to_string()];
        args.extend_from_slice(extra);
        let reply = self.call(Function::Settle, &args).await?;
        let (_, rest) = split_events(&reply)?;
        match rest.first().map(int).transpose()? {
            Some(0) => Ok(rest[1..].to_vec()),
            Some(1) => Err(JobsError::StaleLease { id, token }),
            Some(2) => Err(JobsError::LeaseExpired { id, token }),
            _ => Err(bad_reply("settle code")),
        }
    }

    async fn enqueue_jobs(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, JobsError> {
        let now = self.clock.now();
        let mut args = Vec::with_capacity(jobs.len() * 10);
        for job in jobs {
            let run_at = job.validate(now)?;
            args.extend(decode::job_args(job, run_at, None)?);
        }
        let reply = self.call_at(Function::Enqueue, now, &args).await?;
        let (_, rest) = split_events(&reply)?;
        rest.chunks(2)
            .map(|pair| match pair {
                [id, created] => Ok(Enqueued {
                    id: JobId(int(id)?),
                    created: int(created)? == 1,
                }),
                _ => Err(bad_reply("enqueue result")),
            })
            .collect()
    }

    async fn chunked_dead(&self, op: &str, queue: &str) -> Result<usize, JobsError> {
        check_queue(queue)?;
        let chunk = DEAD_CHUNK.to_string();
        let mut total = 0;
        let mut after = "0".to_owned();
        loop {
            let args: Vec<&str> = if op == "retry_all_dead" {
                vec![op, queue, after.as_str(), chunk.as_str()]
            } else {
                vec![op, queue, chunk.as_str()]
            };
            let reply = self.call(Function::Admin, &args).await?;
            let (_, rest) = split_events(&reply)?;
            total += usize::try_from(int(rest.first().ok_or_else(|| bad_reply("count"))?)?)
                .unwrap_or(usize::MAX);
            let more = int(rest.last().ok_or_else(|| bad_reply("more"))?)? == 1;
            if op == "retry_all_dead" {
                after = int(&rest[1])?.to_string();
            }
            if !more {
                return Ok(total);
            }
        }
    }

    async fn waiter(&self) -> Result<MultiplexedConnection, ::redis::RedisError> {
        if let Some(conn) = self.waiters.lock().pop() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

fn check_queue(queue: &str) -> Result<(), JobsError> {
    if queue.is_empty() {
        return Err(InvalidJob::EmptyQueue.into());
    }
    if queue.len() > MAX_NAME_LEN {
        return Err(InvalidJob::NameTooLong("queue name").into());
    }
    Ok(())
}

fn duration_ms(d: Duration, what: &'static str) -> Result<u64, JobsError> {
    if d.is_zero() {
        return Err(JobsError::InvalidArgument(what));
    }
    u64::try_from(d.as_millis())
        .ok()
        .filter(|&ms| ms < decode::MAX_EXACT_MS)
        .ok_or(JobsError::InvalidArgument("lease is too long"))
}

fn check_deadline(now: Timestamp, ms: u64) -> Result<(), JobsError> {
    match now.0.checked_add(ms) {
        Some(t) if t < decode::MAX_EXACT_MS => Ok(()),
        _ => Err(JobsError::InvalidArgument("lease is too long")),
    }
}

/// Builds a [`RedisStore`].
#[derive(Debug)]
#[must_use]
pub struct RedisStoreBuilder {
    server: Option<Server>,
    prefix: String,
    clock: Option<Arc<dyn Clock>>,
    keep_completed: bool,
    timeout: Duration,
}

#[derive(Debug)]
enum Server {
    Url(String),
    Client(Client),
}

impl RedisStoreBuilder {
    /// The server as a `redis://` URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.server = Some(Server::Url(url.into()));
        self
    }

    /// The server as a configured `redis::Client` (TLS, credentials, …).
    pub fn client(mut self, client: Client) -> Self {
        self.server = Some(Server::Client(client));
        self
    }

    /// Key prefix (default `keel:jobs:`): stores with different prefixes share a server
    /// without seeing each other's jobs.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The clock for run_at, leases and timestamps.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Keep succeeded jobs (state `Succeeded`) instead of deleting them on ack.
    pub fn keep_completed(mut self, keep: bool) -> Self {
        self.keep_completed = keep;
        self
    }

    /// Connect and response timeout of each call (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects and loads the function library.
    ///
    /// # Errors
    ///
    /// [`BuildError::Missing`] without a server; [`BuildError::ZeroDuration`] for a zero
    /// timeout; [`BuildError::Open`] when the URL is bad or the server does not answer
    /// within the timeout.
    pub async fn build(self) -> Result<RedisStore, BuildError> {
        if self.timeout.is_zero() {
            return Err(BuildError::ZeroDuration("redis timeout"));
        }
        let open = |e: Box<dyn std::error::Error + Send + Sync>| BuildError::Open(e);
        let client = match self.server.ok_or(BuildError::Missing("redis url"))? {
            Server::Url(url) => Client::open(url.as_str()).map_err(|e| open(e.into()))?,
            Server::Client(client) => client,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connecting = ConnectionManager::new_with_config(client.clone(), config);
        let mut conn = match tokio::time::timeout(self.timeout, connecting).await {
            Ok(connected) => connected.map_err(|e| open(e.into()))?,
            Err(_) => return Err(open("connecting to redis timed out".into())),
        };
        let total: Option<u64> = ::redis::cmd("GET")
            .arg(format!("{}succ", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|e| open(e.into()))?;
        let functions = Arc::new(Library::new());
        let _: Value = functions
            .load()
            .query_async(&mut conn)
            .await
            .map_err(|e| open(e.into()))?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let metrics = Arc::new(StoreMetrics::new("redis"));
        let succeeded_total = Arc::new(AtomicU64::new(total.unwrap_or(0)));
        let acks = Arc::new(AckGroup::new(RedisAcks {
            conn: conn.clone(),
            functions: Arc::clone(&functions),
            prefix: self.prefix.clone(),
            keep_completed: self.keep_completed,
            clock: Arc::clone(&clock),
            metrics: Arc::clone(&metrics),
            succeeded_total: Arc::clone(&succeeded_total),
        }));
        Ok(RedisStore {
            prefix: self.prefix,
            keep_completed: self.keep_completed,
            clock,
            metrics,
            succeeded_total,
            acks,
            client,
            conn,
            waiters: Mutex::new(Vec::new()),
            timeout: self.timeout,
            functions,
        })
    }
}

fn records(v: &Value) -> Result<Vec<JobRecord>, JobsError> {
    array(v)?
        .iter()
        .map(|r| decode::record(r)?.ok_or_else(|| bad_reply("missing record")))
        .collect()
}

fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Scheduled => "Scheduled",
        JobState::Available => "Available",
        JobState::Running => "Running",
        JobState::Retrying => "Retrying",
        JobState::Dead => "Dead",
        JobState::Succeeded => "Succeeded",
    }
}

fn truncate(message: &str) -> String {
    let mut cut = message.len().min(MAX_ERROR_LEN);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message[..cut].to_owned()
}

impl Store for RedisStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, JobsError> {
        let mut out = self.enqueue_jobs(std::slice::from_ref(&job)).await?;
        out.pop().ok_or_else(|| bad_reply("enqueue result"))
    }

    async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, JobsError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.enqueue_jobs(&jobs).await
    }

    async fn fetch(
        &self,
        queue: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Lease>, JobsError> {
        if limit == 0 {
            return Err(JobsError::InvalidArgument("fetch limit must be at least 1"));
        }
        let lease_ms = duration_ms(lease, "lease must be longer than zero")?;
        let now = self.clock.now();
        check_deadline(now, lease_ms)?;
        let limit = limit.min(MAX_FETCH).to_string();
        let lease_arg = lease_ms.to_string();
        let reply = self
            .call_at(
                Function::Fetch,
                now,
                &[queue, limit.as_str(), lease_arg.as_str()],
            )
            .await?;
        let (_, rest) = split_events(&reply)?;
        records(rest.first().ok_or_else(|| bad_reply("fetch result"))?)?
            .into_iter()
            .map(|job| match job.status {
                crate::Status::Running {
                    token, deadline, ..
                } => Ok(Lease {
                    job,
                    token,
                    deadline,
                }),
                _ => Err(bad_reply("a leased job is not running")),
            })
            .collect()
    }

    async fn heartbeat(
        &self,
        id: JobId,
        token: FencingToken,
        extend: Duration,
    ) -> Result<Timestamp, JobsError> {
        let ms = duration_ms(extend, "lease must be longer than zero")?;
        check_deadline(self.clock.now(), ms)?;
        let rest = self
            .settle(id, token, "heartbeat", &[ms.to_string()])
            .await?;
        Ok(Timestamp(int(rest
            .first()
            .ok_or_else(|| bad_reply("deadline"))?)?))
    }

    async fn complete(&self, id: JobId, token: FencingToken) -> Result<(), JobsError> {
        match self.acks.complete(id, token).await? {
            AckAnswer::Done => Ok(()),
            AckAnswer::Expired => Err(JobsError::LeaseExpired { id, token }),
            // `complete.lua` settles every ack; it never answers Miss.
            AckAnswer::Stale | AckAnswer::Miss => Err(JobsError::StaleLease { id, token }),
        }
    }

    async fn fail(
        &self,
        id: JobId,
        token: FencingToken,
        failure: Failure,
    ) -> Result<FailOutcome, JobsError> {
        let retry_at = match failure.retry_at {
            Some(at) => at.0.min(decode::MAX_EXACT_MS - 1).to_string(),
            None => String::new(),
        };
        let extra = [
            decode::kind_name(failure.kind).to_owned(),
            truncate(&failure.message),
            retry_at,
        ];
        let rest = self.settle(id, token, "fail", &extra).await?;
        match rest.first() {
            Some(Value::Nil) | None => Ok(FailOutcome::Dead),
            Some(at) => Ok(FailOutcome::Retrying {
                at: Timestamp(int(at)?),
            }),
        }
    }

    async fn release(&self, id: JobId, token: FencingToken) -> Result<(), JobsError> {
        self.settle(id, token, "release", &[]).await?;
        Ok(())
    }

    async fn reap_expired(&self) -> Result<usize, JobsError> {
        let reply = self.call::<&str>(Function::Reap, &[]).await?;
        let (_, rest) = split_events(&reply)?;
        let n = int(rest.first().ok_or_else(|| bad_reply("reaped"))?)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn cancel(&self, id: JobId) -> Result<CancelOutcome, JobsError> {
        let reply = self
            .call(Function::Admin, &["cancel", &id.0.to_string()])
            .await?;
        let (_, rest) = split_events(&reply)?;
        Ok(
            match text(rest.first().ok_or_else(|| bad_reply("cancel"))?)? {
                "cancelled" => CancelOutcome::Cancelled,
                "running" => CancelOutcome::Running,
                "finished" => CancelOutcome::Finished,
                _ => CancelOutcome::NotFound,
            },
        )
    }

    async fn retry_dead(&self, id: JobId) -> Result<(), JobsError> {
        let reply = self
            .call(Function::Admin, &["retry_dead", &id.0.to_string()])
            .await?;
        let (_, rest) = split_events(&reply)?;
        match text(rest.first().ok_or_else(|| bad_reply("retry"))?)? {
            "ok" => Ok(()),
            "missing" => Err(JobsError::NotFound(id)),
            "notdead" => Err(JobsError::NotDead(id)),
            _ => Err(JobsError::InvalidArgument(
                "another unfinished job holds this unique key",
            )),
        }
    }

    async fn retry_all_dead(&self, queue: &str) -> Result<usize, JobsError> {
        self.chunked_dead("retry_all_dead", queue).await
    }

    async fn delete_all_dead(&self, queue: &str) -> Result<usize, JobsError> {
        self.chunked_dead("delete_all_dead", queue).await
    }

    async fn dead_by_error(&self, queue: Option<&str>) -> Result<Vec<FailureGroup>, JobsError> {
        let reply = self
            .call(
                Function::Read,
                &["dead_by_error", queue.unwrap_or_default()],
            )
            .await?;
        let (_, rest) = split_events(&reply)?;
        let mut groups: BTreeMap<String, FailureGroup> = BTreeMap::new();
        for g in array(rest.first().ok_or_else(|| bad_reply("groups"))?)? {
            let g = array(g)?;
            if g.len() < 4 {
                return Err(bad_reply("failure group"));
            }
            let label = text(&g[0])?;
            let (kind, message) = label
                .split_once('\n')
                .ok_or_else(|| bad_reply("failure group label"))?;
            let count = int(&g[1])?;
            let latest = Timestamp(
                text(&g[2])?
                    .parse::<f64>()
                    .map_err(|_| bad_reply("group score"))? as u64,
            );
            let example = g[3..]
                .iter()
                .map(int)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .max()
                .map(JobId)
                .ok_or_else(|| bad_reply("group example"))?;
            let entry = groups
                .entry(label.to_owned())
                .or_insert_with(|| FailureGroup {
                    kind: decode::kind_from_name(kind).unwrap_or(crate::FailureKind::Error),
                    message: message.to_owned(),
                    count: 0,
                    latest,
                    example,
                });
            entry.count += count;
            if (latest, example) > (entry.latest, entry.example) {
                entry.latest = latest;
                entry.example = example;
            }
        }
        let mut out: Vec<FailureGroup> = groups.into_values().collect();
        out.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.message.cmp(&b.message))
        });
        Ok(out)
    }

    async fn delete(&self, id: JobId) -> Result<(), JobsError> {
        let reply = self
            .call(Function::Admin, &["delete", &id.0.to_string()])
            .await?;
        let (_, rest) = split_events(&reply)?;
        match text(rest.first().ok_or_else(|| bad_reply("delete"))?)? {
            "ok" => Ok(()),
            "running" => Err(JobsError::Running(id)),
            _ => Err(JobsError::NotFound(id)),
        }
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, JobsError> {
        let reply = self
            .call(Function::Read, &["get", &id.0.to_string()])
            .await?;
        let (_, rest) = split_events(&reply)?;
        decode::record(rest.first().ok_or_else(|| bad_reply("get"))?)
    }

    async fn counts(&self) -> Result<BTreeMap<String, QueueCounts>, JobsError> {
        let reply = self.call(Function::Read, &["counts"]).await?;
        let (_, rest) = split_events(&reply)?;
        let mut out = BTreeMap::new();
        for q in array(rest.first().ok_or_else(|| bad_reply("counts"))?)? {
            let q = array(q)?;
            if q.len() != 8 {
                return Err(bad_reply("queue counts"));
            }
            let n = |i: usize| int(&q[i]);
            out.insert(
                text(&q[0])?.to_owned(),
                QueueCounts {
                    scheduled: n(1)?,
                    available: n(2)?,
                    running: n(3)?,
                    retrying: n(4)?,
                    dead: n(5)?,
                    succeeded: n(6)?,
                    paused: n(7)? == 1,
                },
            );
        }
        Ok(out)
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<JobRecord>, JobsError> {
        let after = filter.after.map_or(0, |id| id.0).to_string();
        let limit = filter.limit.clamp(1, 10_000).to_string();
        let args = [
            "list",
            filter.queue.as_deref().unwrap_or_default(),
            filter.state.map(state_name).unwrap_or_default(),
            filter.kind.as_deref().unwrap_or_default(),
            after.as_str(),
            limit.as_str(),
        ];
        let reply = self.call(Function::Read, &args).await?;
        let (_, rest) = split_events(&reply)?;
        records(rest.first().ok_or_else(|| bad_reply("list"))?)
    }

    async fn pause(&self, queue: &str) -> Result<(), JobsError> {
        check_queue(queue)?;
        self.call(Function::Admin, &["pause", queue]).await?;
        Ok(())
    }

    async fn resume(&self, queue: &str) -> Result<(), JobsError> {
        check_queue(queue)?;
        self.call(Function::Admin, &["resume", queue]).await?;
        Ok(())
    }

    async fn enqueue_periodic(
        &self,
        schedule: &str,
        tick: Timestamp,
        job: NewJob,
    ) -> Result<Option<Enqueued>, JobsError> {
        if schedule.is_empty() || schedule.len() > MAX_NAME_LEN {
            return Err(JobsError::InvalidArgument(
                "schedule name must be 1 to 256 bytes",
            ));
        }
        let now = self.clock.now();
        let run_at = job.validate(now)?;
        let mut args = vec![
            "periodic".to_owned(),
            schedule.to_owned(),
            tick.0.min(decode::MAX_EXACT_MS - 1).to_string(),
        ];
        args.extend(decode::job_args(&job, run_at, None)?);
        let reply = self.call_at(Function::Admin, now, &args).await?;
        let (_, rest) = split_events(&reply)?;
        match rest {
            [Value::Nil] => Ok(None),
            [id, created] => Ok(Some(Enqueued {
                id: JobId(int(id)?),
                created: int(created)? == 1,
            })),
            _ => Err(bad_reply("periodic result")),
        }
    }

    async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
        callbacks: BatchCallbacks,
    ) -> Result<Batch, JobsError> {
        if jobs.is_empty() {
            return Err(JobsError::InvalidArgument("a batch needs at least one job"));
        }
        if jobs.iter().any(|j| j.unique_key.is_some()) {
            return Err(JobsError::InvalidArgument(
                "batch members cannot have unique keys",
            ));
        }
        let now = self.clock.now();
        for callback in [&callbacks.on_success, &callbacks.on_failure]
            .into_iter()
            .flatten()
        {
            if callback.run_at.is_some() {
                return Err(JobsError::InvalidArgument(
                    "a batch callback takes a delay, not a fixed run_at",
                ));
            }
            callback.validate(now)?;
        }
        let mut args = vec![
            "batch".to_owned(),
            serde_json::to_string(&callbacks).map_err(|e| InvalidJob::Serialize(e.to_string()))?,
            decode::callback_spec(&callbacks.on_success)?,
            decode::callback_spec(&callbacks.on_failure)?,
        ];
        for job in &jobs {
            let run_at = job.validate(now)?;
            args.extend(decode::job_args(job, run_at, None)?);
        }
        let reply = self.call_at(Function::Admin, now, &args).await?;
        let (_, rest) = split_events(&reply)?;
        let (id, members) = rest.split_first().ok_or_else(|| bad_reply("batch"))?;
        Ok(Batch {
            id: BatchId(int(id)?),
            jobs: members
                .iter()
                .map(|v| int(v).map(JobId))
                .collect::<Result<_, _>>()?,
        })
    }

    async fn batch(&self, id: BatchId) -> Result<Option<BatchStatus>, JobsError> {
        let reply = self
            .call(Function::Read, &["batch", &id.0.to_string()])
            .await?;
        let (_, rest) = split_events(&reply)?;
        decode::batch(id, rest.first().ok_or_else(|| bad_reply("batch"))?)
    }

    async fn wait_for_work(&self, queue: &str, max_wait: Duration) {
        if max_wait < Duration::from_millis(1) {
            return;
        }
        let key = format!("{}w:{queue}", self.prefix);
        let blocked = async {
            let mut conn = self.waiter().await?;
            let _: Option<(String, String)> = ::redis::cmd("BLPOP")
                .arg(&key)
                .arg(max_wait.as_secs_f64())
                .query_async(&mut conn)
                .await?;
            self.waiters.lock().push(conn);
            Ok::<(), ::redis::RedisError>(())
        };
        match tokio::time::timeout(max_wait + self.timeout, blocked).await {
            Ok(Ok(())) => {}
            // Redis is down or slow: wait the full interval so idle workers back off
            // instead of spinning on errors.
            _ => tokio::time::sleep(max_wait).await,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn stats(&self) -> JobsStats {
        self.metrics
            .snapshot(self.succeeded_total.load(Ordering::Relaxed))
    }
}
