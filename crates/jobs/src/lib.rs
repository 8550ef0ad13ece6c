//! Background jobs that survive crashes: priorities, delays, unique jobs, retries with
//! backoff and full jitter, a dead-letter state with error history, leases with heartbeat
//! and fencing, a tokio worker pool, and an embedded durable store on redb with group
//! commit.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use keel_jobs::{HandlerError, Job, JobContext, JobOptions, JobState, Producer, RedbStore, Store, WorkerPool};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail { to: String }
//!
//! impl Job for SendEmail {
//!     const KIND: &'static str = "send_email";
//!     fn options() -> JobOptions {
//!         JobOptions { queue: "emails".into(), max_attempts: 3, ..JobOptions::default() }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! # rt.block_on(async {
//! // A durable store: every enqueue/ack is fsynced (in shared group commits) before it returns.
//! let store = Arc::new(RedbStore::builder().path(dir.path().join("jobs.redb")).build()?);
//! let producer = Producer::new(Arc::clone(&store));
//! producer.enqueue(&SendEmail { to: "ada@example.com".into() }).await?;
//! producer.enqueue_in(&SendEmail { to: "later@example.com".into() }, Duration::from_secs(3600)).await?;
//!
//! let pool = WorkerPool::builder(Arc::clone(&store))
//!     .queue("emails", 8)                                  // up to 8 at once
//!     .handler(|job: SendEmail, ctx: JobContext| async move {
//!         // At-least-once: ctx.id() is the idempotency key for side effects.
//!         println!("job {} attempt {}: mail {}", ctx.id(), ctx.attempt(), job.to);
//!         Ok::<(), HandlerError>(())
//!     })
//!     .build()?
//!     .start();
//! while store.stats().completed < 1 { tokio::time::sleep(Duration::from_millis(5)).await }
//! let report = pool.shutdown(Duration::from_secs(10)).await;  // graceful: finish or release
//! assert_eq!(report.stats.succeeded, 1);
//! let emails = store.counts().await?["emails"];
//! assert_eq!((emails.scheduled, emails.running), (1, 0));   // the delayed one waits
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | [`job`] | [`NewJob`], [`JobRecord`], [`Status`]/[`JobState`], [`Job`] (typed kinds) and [`JobOptions`], ids and [`FencingToken`]s, error history ([`AttemptError`], [`FailureKind`]) and the input limits |
//! | `store.rs` | the [`Store`] trait — the backend contract (enqueue, fetch-with-lease, heartbeat, complete, fail, release, reap, cancel, dead-letter ops, counts, list) and its values ([`Lease`], [`Failure`], [`QueueCounts`], [`ListFilter`], …) |
//! | `state.rs` | the queue engine shared by the in-process stores: records plus priority, schedule, lease and unique-key indexes; every operation O(log n); emits the changes to persist |
//! | `engine.rs` | that engine behind a mutex, with the clock, counters, the idle-worker wake-up and the commit wait |
//! | `memory.rs` | [`MemoryStore`]: no persistence (tests, or jobs that may be lost) |
//! | `embedded.rs` | [`RedbStore`]: the durable default — redb file, group committer thread, recovery of a dead owner's leases at open |
//! | `worker.rs` | [`WorkerPool`]: per-queue fetch loops with concurrency and rate limits ([`Quota`], `keel-ratelimit` GCRA), a supervised task per job (heartbeat, timeout, contained panics), retries, graceful shutdown; [`JobContext`], [`HandlerError`] |
//! | `producer.rs` | [`Producer`]: typed `enqueue`, `enqueue_in`, `enqueue_at`, `enqueue_many`, `cancel` |
//! | `periodic.rs` | [`Periodic`]: cron schedules (`croner`, UTC, optional seconds) that enqueue once per tick however many schedulers run |
//! | `batch.rs` | [`Batch`], [`BatchCallbacks`], [`BatchStatus`]: a group of jobs whose success/failure callback is enqueued exactly once |
//! | `backoff.rs` | [`Backoff`]: capped exponential backoff with full jitter |
//! | `clock.rs` | [`Clock`], [`SystemClock`], [`MockClock`], [`Timestamp`] (wall-clock ms: it outlives processes) |
//! | `metrics.rs` | [`JobsStats`] (store) and [`WorkerStats`] (pool) snapshots, and the `metrics` facade |
//! | [`error`] | [`BuildError`], [`InvalidJob`], [`JobsError`] |
//! | `ack_group.rs` | group acks for the Redis and Postgres stores: concurrent `complete` calls share one round trip, each keeps its own answer |
//! | `redis/` | `RedisStore` (`redis` feature): the store on a Redis server shared by many processes — one Redis 7 function library, one `FCALL` round trip per call (concurrent acks grouped into one), key layout, global concurrency and rate limits (`GlobalLimits`), `BLPOP` wake-up; see its module docs |
//! | `postgres/` | `PostgresStore` (`postgres` feature): schema + versioned migrations under an advisory lock (`schema.rs`), `SKIP LOCKED` batch fetch, sequence fencing tokens, `LISTEN/NOTIFY` wake-ups (`listen.rs`), transactional enqueue (`PostgresStore::enqueue_in`), global per-queue concurrency and rate limits (`QueueLimits`, `limits.rs`) — its module docs explain the schema and the fetch |
//! | `bin/keel-jobs-worker.rs` | a worker/producer *process* on the embedded store, Redis (`--redis URL`) or Postgres (`--postgres URL`), used by the kill -9 tests |
//!
//! Tests: `tests/conformance.rs` (one suite, run against every store), `tests/worker.rs`
//! (pool behaviour on tokio's paused clock), `tests/redb_store.rs` (reopen, recovery, group
//! commit), `tests/periodic.rs` (cron), `tests/model.rs` (random operation sequences on
//! the in-memory engine compared step by step with a linear-scan reference: fetch order,
//! fencing outcomes, counts by state), `tests/kill9.rs` (SIGKILLed worker and producer
//! processes; `KEEL_JOBS_KILL9_JOBS` sets the job count, 10 000 by default). Also
//! `examples/throughput.rs` (a quick jobs/s look), the tour part
//! (`crates/keel/src/tour/jobs.rs`) and `keel-bench jobs`.
//!
//! Metrics: stores count every event (`keel_jobs_events_total{store, event}`, group commits
//! in `keel_jobs_commits_total`); pools count outcomes (`keel_jobs_worker_events_total{event}`)
//! and record `keel_jobs_wait_seconds` (due → started) and `keel_jobs_run_seconds`. All are
//! fed per event through handles registered at construction: every event already costs a
//! lock (and usually an fsync), so a counter bump is noise. Depth by queue and state is
//! [`Store::counts`].
//!
//! # Study notes
//!
//! ## Requirements
//!
//! * Run work outside the request: enqueue now, run soon (or at a time), on a pool of
//!   workers with per-queue concurrency, higher priorities first.
//! * Never lose an acknowledged job — not on `kill -9`, not on a deploy, not when a worker
//!   hangs. Never run one forever: retries with backoff, then a dead-letter state that
//!   keeps the error history for a human.
//! * A worker that lost its job (crashed, paused, partitioned) must not be able to finish
//!   it anyway after someone else took it over (fencing).
//! * Unique jobs (one "send welcome email to user 7" however often it is enqueued), delayed
//!   jobs that never run early, cancellation.
//! * Bad input is a typed error: zero attempts, zero concurrency, an overflowing delay, a
//!   kind nobody handles (dead-lettered with a clear error, not retried forever), a payload
//!   that does not deserialize.
//!
//! ## Design
//!
//! * **Leases, not locks.** `fetch` marks a job `Running` with a deadline (`now + lease`)
//!   and counts the attempt. A heartbeat extends it while the handler runs. A worker that
//!   dies simply stops heartbeating; the next fetch (or `reap_expired`) finds the expired
//!   lease at the front of the `(deadline, id)` index and makes the job available again,
//!   recording a [`FailureKind::LeaseExpired`] entry and `lease_recoveries += 1`. A job
//!   that keeps killing its worker therefore runs out of attempts and is dead-lettered
//!   (quarantined) like any failing job.
//! * **Fencing tokens.** Every lease gets a token larger than every earlier one (a store-wide
//!   counter, persisted). `complete`/`fail`/`heartbeat`/`release` must present the job's
//!   current token *and* arrive before its deadline; anything else is
//!   [`JobsError::StaleLease`]/[`JobsError::LeaseExpired`], changes nothing and is counted
//!   (`stale_rejected`). So a worker that was paused past its lease cannot ack a job a
//!   second worker is running, and the second run wins. Handlers get the token
//!   ([`JobContext::token`]) to fence their own downstream writes the same way.
//! * **At-least-once.** A crash between a handler's side effect and its ack re-runs the job.
//!   No queue can avoid that without a transaction spanning the side effect; handlers make
//!   effects idempotent with [`JobContext::id`] as the key. The kill -9 test counts the
//!   duplicates and checks each is explained by a recovered lease.
//! * **Ordering.** Per queue, a `ready` index ordered by (priority desc, run_at, id) and a
//!   `scheduled` index ordered by (run_at, id); due jobs move from the second to the first
//!   at fetch. Strict priority: a steady stream of high-priority jobs **starves** lower ones —
//!   give such work its own queue (its own concurrency) rather than a lower priority.
//! * **Retries.** The pool computes `retry_at = now + uniform(0, min(max, base·2^(n−1)))`
//!   (full jitter, per-kind [`Backoff`], seeded RNG in tests); the store schedules it or
//!   dead-letters when attempts are used up. [`HandlerError::permanent`], unknown kinds and
//!   undecodable payloads skip the retries.
//! * **Embedded durability with group commit.** [`RedbStore`] keeps the engine in memory and
//!   writes every change through one committer thread: callers queue changes and wait;
//!   the committer writes all queued changes in one redb transaction, fsyncs once, and
//!   wakes them all. An enqueue returns only when durable, yet N concurrent callers share
//!   one ≈ 4 ms fsync. At open, leases left in the file are recovered at once — the file
//!   lock guarantees their owner is dead.
//! * **Cron once per tick.** A scheduler fires the latest due tick of each schedule through
//!   [`Store::enqueue_periodic`], which enqueues only if that tick (or a later one) was not
//!   recorded yet — check, record and enqueue in one atomic, persisted change. Any number
//!   of schedulers (and restarts) give one job per tick; missed ticks collapse into one.
//! * **Batches.** A member's final transition (ack / dead / cancel) and the callback's
//!   enqueue are one change in one commit, and fencing makes each member finish once: the
//!   callback is enqueued exactly once even with many workers finishing at the same time.
//! * **Limits.** Per-queue concurrency is a semaphore per fetch loop; a per-queue rate limit
//!   takes GCRA tokens (from `keel-ratelimit`) before each fetch, so starts never exceed
//!   `burst + rate·t`. Both hold per pool (per process); across processes they need a
//!   shared backend. Pausing a queue ([`Store::pause`]) is persisted and stops its fetches.
//! * **Shutdown.** Stop fetching; wait for running jobs up to a deadline; abort the rest and
//!   `release` their leases (available at once, attempt not counted) instead of letting
//!   them sit "running" until the lease expires — the "stuck after deploy" problem.
//!
//! ## Complexity (n = jobs in the store)
//!
//! | operation | in-process stores | embedded store I/O |
//! |---|---|---|
//! | `enqueue` | O(log n) | shares one fsync with concurrent calls |
//! | `enqueue_many(k)` | O(k log n) | one transaction, one fsync |
//! | `fetch(k)` | O((k + due + expired) · log n) | one transaction |
//! | `heartbeat` / `complete` / `fail` / `release` / `cancel` | O(log n) | shares an fsync |
//! | `counts` | O(queues + due) | none (memory) |
//! | `list(page)` | O(log n + scanned) | none (memory) |
//! | open (`RedbStore::build`) | O(n log n) to rebuild the indexes | reads the whole file |
//!
//! ## Trade-offs
//!
//! * **Everything in memory** (embedded store): reads never touch the disk and every
//!   operation is a few map updates, but RAM holds every unfinished and dead job (≈ a few
//!   hundred bytes each plus payload) and open reads the whole file. Fine for millions of
//!   jobs; a store for billions would index on disk.
//! * **One owner per file** (redb's file lock): workers scale with tasks in one process, not
//!   with processes. Several processes sharing a queue is what the Postgres and Redis
//!   backends are for (not built yet, see below).
//! * **Whole-record writes**: a heartbeat rewrites the job (payload included). Group commit
//!   and the last-write-wins merge within a batch keep that cheap; huge payloads belong in
//!   blob storage with a reference in the job.
//! * **Strict priorities** starve; separate queues isolate.
//! * **Completed jobs are deleted by default** (bounded memory);
//!   `keep_completed(true)` keeps them for inspection (the kill -9 test uses it).
//!
//! ## Measured (development machine, 2 cores shared with other builds — loaded)
//!
//! * `examples/throughput.rs --release`, 100 000 no-op jobs on `RedbStore`, load average
//!   5–6 on the 2 cores: enqueue in batches of 1 000 ≈ 50 000–80 000 jobs/s; enqueue +
//!   process ≈ 7 500 jobs/s with 64 concurrent jobs (≈ 57 changes per fsync) and
//!   ≈ 25 600 jobs/s with 512 (≈ 358 per fsync). Every lease and ack is durable before it
//!   returns; group commit is what turns ≈ 250 fsyncs/s into these figures.
//! * `keel-bench jobs --quick` (release, `--features apalis-peer`, 3 interleaved 2 s rounds,
//!   median; machine quiet, load average < 1; latency is enqueue → start with a 20 000-job
//!   backlog, so it is mostly queueing time):
//!
//!   | backend | Keel jobs/s | peer | peer jobs/s | ratio |
//!   |---|---|---|---|---|
//!   | redb (fsync per group commit) | 61.5k | redb, one commit per op | 2.1k | 29× |
//!   | redb vs SQLite (different engines) | 69.8k | apalis-sqlite (polls every 10 ms) | 8.5k | 8.2× |
//!   | Redis (persistence off) | 17.9k | apalis-redis | 2.6k | 6.9× |
//!   | Redis | 17.9k | hand-written list queue (no leases) | 50.0k | 0.36× |
//!   | Postgres (fsync off) | 13.1k | apalis-postgres (LISTEN/NOTIFY, `with_pubsub`) | 16.0k | **0.82×, below the 1.5× bar** |
//!
//!   An apalis worker with no poll strategy sleeps until its next heartbeat (30 s by
//!   default) once it finds its queue empty, so the first version of this bench measured
//!   that sleep (apalis-postgres and apalis-sqlite finished ~0 jobs per round on a quiet
//!   machine). The apalis-postgres round now uses `with_pubsub()` (LISTEN/NOTIFY, like
//!   `PostgresStore`) and apalis-sqlite `poll_with_interval(10 ms)`. apalis-redis had the
//!   same handicap (an empty fetch parks its worker until the heartbeat timer); it now
//!   polls every 10 ms too (its pubsub factory needs a RESP3 push connection).
//! * Postgres fetch, after profiling (`EXPLAIN ANALYZE`, statements per fetch): the lease
//!   `UPDATE … FROM picked` (a CTE) hashed the whole table for its join — 19.9 ms for a
//!   256-job fetch from a 20 000-job backlog, against 2.5 ms as `id = ANY(ARRAY(…))`; and a
//!   fetch was a transaction of 4–5 unprepared statements (BEGIN, reap, queue row, lease,
//!   rate update, COMMIT — two round trips each unprepared), now one prepared autocommitted
//!   statement with a guard (see `postgres/mod.rs`). Acks were already one `DELETE … USING
//!   unnest` per group, and enqueue one `INSERT … SELECT FROM unnest` + one `NOTIFY` per
//!   transaction. Schema v2 drops two index writes per job (NULL unique keys, the
//!   running-per-queue index). Server config is the same for both contenders (one testkit
//!   server: `fsync=off`, `full_page_writes=off`, `synchronous_commit` at its default, on).
//!   Quick runs on the loaded machine (load average 5–10 from other builds; indicative):
//!   before, 7.7k vs apalis-postgres 8.0k (0.95×); after, three runs: 7.4k vs 8.2k (0.89×),
//!   8.0k vs 6.7k (1.19×), 8.0k vs 7.1k (1.13×). A profile (`perf record -a`) shows the
//!   Postgres server dominating (37 % of all samples, the bench client ≈ 6 %), flat across
//!   heap/index inserts and WAL: the bar needs fewer writes per job, not fewer round trips.
//! * Idle enqueue → start (`keel-bench jobs --scenario idle`, one job at a time into an
//!   idle queue, 20 ms apart, same loaded machine): redb p50 1.08 ms / p99 12.5 ms (apalis-
//!   sqlite, 10 ms poll: 9.3 / 42 ms, few samples); Redis 0.65 / 2.7 ms (apalis-redis, 10 ms
//!   poll: 9.1 / 13.5 ms); Postgres with LISTEN/NOTIFY 1.5 / 14.4 ms (apalis-postgres
//!   pubsub: 1.8 / 13.6 ms). Redis in the same run: 10.4k jobs/s vs apalis-redis 1.8k
//!   (5.6×).
//! * A quiet quick run (nothing else on the machine, `--features apalis-peer`): redb 66.1k
//!   jobs/s (28.2× commit-per-op redb; 64.0k = 10.4× apalis-sqlite 6.2k); Redis 19.9k =
//!   8.1× apalis-redis 2.5k (0.31× the hand-written list queue); **Postgres 15.7k against
//!   apalis-postgres 15.8k = 0.99×** (13.1k = 0.82× before the fetch work). Idle enqueue →
//!   start p50 / p99: redb 0.98 / 1.51 ms (apalis-sqlite 9.40 / 9.98), Redis 0.49 / 0.86 ms
//!   (apalis-redis 9.10 / 10.33), Postgres 1.50 / 2.21 ms (apalis-postgres 1.29 / 4.38).
//! * kill -9: 10 000 jobs, 8 SIGKILLed worker processes: 0 lost; 17 duplicate runs, each
//!   explained by one of 74 recovered leases (one run; counts vary per run).
//!
//! ## Not built yet (issue 12 continues)
//!
//! A `PostgresStore` that beats apalis-postgres by the 1.5× bar (0.99× in a quiet quick run,
//! 0.89–1.19× in loaded ones, after the fetch work above; next: fewer index writes per job — the
//! `(state, id)` and `(queue, state, id)` list indexes take an entry on every insert and
//! lease and could be partial on finished states), and a full (non-quick) run of the jobs
//! bench on a quiet machine. (The Redis backend,
//! with cross-process concurrency and rate limits, is built: `redis/mod.rs`, tests
//! `tests/redis_store.rs` and `tests/redis_kill9.rs`, and the conformance suite. So is the
//! Postgres backend: `postgres/`, tests `tests/postgres_store.rs` — transactional enqueue,
//! concurrent migrations, NOTIFY wake-ups, global limits across stores, cron with 3
//! schedulers, the server stopped mid-run — `tests/postgres_kill9.rs`, and the conformance
//! suite; all against a private server from keel-testkit.)
//!
//! ## Interview questions
//!
//! * **How do you make sure a job is not lost when a worker crashes?** — The job is never
//!   removed on fetch: it is leased with a deadline and removed only on ack. A crashed
//!   worker's lease expires and the job becomes available again (attempt counted).
//! * **And how do you stop the crashed-but-not-dead worker from acking later?** — Fencing
//!   tokens: each lease gets a larger token; the store accepts an ack only with the current
//!   token before the deadline. The same token can fence downstream writes.
//! * **Exactly-once?** — Not across a side effect outside the store: delivery is
//!   at-least-once, and handlers are idempotent (job id as the idempotency key, upserts,
//!   a processed-ids table written in the same transaction as the effect).
//! * **Why jitter in backoff?** — Jobs that failed together (a dependency blip) would retry
//!   together and fail together again; full jitter spreads them uniformly over the window.
//! * **How do you make a durable queue fast when an fsync costs milliseconds?** — Group
//!   commit: batch all concurrent writes into one transaction and one fsync; each caller
//!   still returns only after its write is durable.
//! * **Poison jobs?** — Bounded attempts, then dead-letter with the error history; a job that
//!   kills its worker is recovered by lease expiry, which counts as an attempt, so it is
//!   quarantined too.
//! * **How do unique jobs work?** — A unique-key index held while the job is unfinished; the
//!   check and the insert happen under the same lock (one transaction in SQL, one Lua
//!   script in Redis), so 8 concurrent enqueuers create exactly one job.
//! * **Cron on many machines without double runs?** — Key the run by (schedule, tick time)
//!   and make "claim the tick and enqueue" one atomic operation in the shared store; every
//!   scheduler may try, one wins. Leader election works too but fails over slowly.
//! * **Batch callbacks exactly once?** — Count finished members in the same atomic change
//!   as each member's final state; the change that brings the count to zero enqueues the
//!   callback. A member cannot finish twice because a stale ack is fenced.
//! * **Graceful shutdown on deploy?** — Stop fetching, drain with a deadline, then release
//!   the leases of what is left so the new deployment picks them up at once.

#[cfg(any(feature = "redis", feature = "postgres"))]
mod ack_group;
mod backoff;
mod batch;
mod clock;
mod embedded;
mod engine;
pub mod error;
pub mod job;
mod memory;
mod metrics;
mod periodic;
#[cfg(feature = "postgres")]
pub mod postgres;
mod producer;
#[cfg(feature = "redis")]
mod redis;
mod state;
mod store;
mod worker;

pub use backoff::Backoff;
pub use batch::{Batch, BatchCallbacks, BatchId, BatchStatus};
pub use clock::{Clock, MockClock, SystemClock, Timestamp};
pub use embedded::{RedbStore, RedbStoreBuilder};
pub use error::{BuildError, InvalidJob, JobsError};
pub use job::{
    AttemptError, FailureKind, FencingToken, Job, JobId, JobOptions, JobRecord, JobState, NewJob,
    Status,
};
pub use keel_ratelimit::{Quota, quanta};
pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use metrics::{JobsStats, WorkerStats};
pub use periodic::{Periodic, PeriodicBuilder, PeriodicHandle};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder, QueueLimits};
pub use producer::Producer;
#[cfg(feature = "redis")]
pub use redis::{GlobalLimits, MAX_FETCH, RedisStore, RedisStoreBuilder};
pub use store::{
    CancelOutcome, Enqueued, FailOutcome, Failure, FailureGroup, Lease, ListFilter, QueueCounts,
    Store,
};
pub use worker::{
    HandlerError, JobContext, RunningPool, ShutdownReport, WorkerPool, WorkerPoolBuilder,
};
