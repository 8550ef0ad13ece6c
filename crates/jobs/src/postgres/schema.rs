//! The Postgres schema and its versioned migrations, applied by the library at build.
//!
//! Migrations run in one transaction that first takes a transaction-scoped advisory lock,
//! so any number of processes may start at once: one applies the missing versions, the
//! others wait on the lock and then find nothing to do. DDL is transactional in Postgres,
//! so a failed migration leaves nothing half-applied.

use tokio_postgres::Client;

/// `pg_advisory_xact_lock` key for migrations ("keeljobs" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b65_656c_6a6f_6273;

/// Every migration, in order; the index + 1 is its version. Never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    // v1: jobs, queues (pause + global limits), cron ticks, batches.
    r#"
CREATE SEQUENCE keel_jobs_id_seq;
CREATE SEQUENCE keel_jobs_token_seq;
CREATE SEQUENCE keel_jobs_succeeded_seq;

CREATE TABLE keel_jobs (
    id               bigint PRIMARY KEY DEFAULT nextval('keel_jobs_id_seq'),
    queue            text     NOT NULL,
    kind             text     NOT NULL,
    payload          jsonb    NOT NULL,
    priority         smallint NOT NULL,
    attempt          integer  NOT NULL DEFAULT 0,
    max_attempts     integer  NOT NULL,
    run_at           bigint   NOT NULL,
    enqueued_at      bigint   NOT NULL,
    timeout_ms       bigint,
    unique_key       text,
    tags             text[]   NOT NULL DEFAULT '{}',
    -- 0 pending, 1 running, 2 dead, 3 succeeded
    state            smallint NOT NULL DEFAULT 0,
    token            bigint,
    deadline         bigint,
    started_at       bigint,
    finished_at      bigint,
    errors           jsonb    NOT NULL DEFAULT '[]',
    -- errors is not empty: a pending job is "retrying"
    failed           boolean  NOT NULL DEFAULT false,
    lease_recoveries integer  NOT NULL DEFAULT 0,
    batch_id         bigint,
    last_error_kind    text,
    last_error_message text,
    last_error_at      bigint
);

-- The fetch order: priority desc, then FIFO (run_at, id), pending jobs only.
CREATE INDEX keel_jobs_fetch ON keel_jobs (queue, priority DESC, run_at, id) WHERE state = 0;
-- Expired leases from the front; running jobs per queue (global concurrency limit).
CREATE INDEX keel_jobs_leases ON keel_jobs (deadline) WHERE state = 1;
CREATE INDEX keel_jobs_running ON keel_jobs (queue) WHERE state = 1;
-- One unfinished job per unique key: the index *is* the uniqueness check.
CREATE UNIQUE INDEX keel_jobs_unique ON keel_jobs (unique_key) WHERE state < 2;
-- Dead jobs grouped by their last error, per queue (dashboard with 200k dead jobs).
CREATE INDEX keel_jobs_dead ON keel_jobs (queue, last_error_kind, last_error_message, last_error_at) WHERE state = 2;
-- Paginated lists by queue/state.
CREATE INDEX keel_jobs_queue_state ON keel_jobs (queue, state, id);
CREATE INDEX keel_jobs_state ON keel_jobs (state, id);

CREATE TABLE keel_jobs_queues (
    queue          text PRIMARY KEY,
    paused         boolean NOT NULL DEFAULT false,
    -- global concurrency limit: running leases of this queue across all processes
    max_running    integer,
    -- global rate limit (GCRA): `rate_limit` starts per `rate_window_ms`, burst `rate_burst`
    rate_limit     integer,
    rate_window_ms bigint,
    rate_burst     integer,
    -- GCRA theoretical arrival time, in microseconds of the store's clock
    rate_tat_us    bigint NOT NULL DEFAULT 0
);

CREATE TABLE keel_jobs_cron (
    schedule  text PRIMARY KEY,
    last_tick bigint NOT NULL
);

CREATE TABLE keel_jobs_batches (
    id         bigint PRIMARY KEY,
    total      bigint NOT NULL,
    pending    bigint NOT NULL,
    succeeded  bigint NOT NULL DEFAULT 0,
    failed     bigint NOT NULL DEFAULT 0,
    callbacks  jsonb  NOT NULL,
    created_at bigint NOT NULL
);
"#,
    // v2: fewer index writes per job. A lease (state 0 -> 1) cannot be a HOT update — state
    // is indexed — so it writes one entry into every index whose predicate the new row
    // meets. Jobs without a unique key no longer enter the unique index (NULLs never
    // conflict), and `keel_jobs_running (queue) WHERE state = 1` goes: the running-per-queue
    // count of a limited queue is served by `keel_jobs_queue_state (queue, state, id)`.
    r#"
DROP INDEX keel_jobs_unique;
CREATE UNIQUE INDEX keel_jobs_unique ON keel_jobs (unique_key)
    WHERE state < 2 AND unique_key IS NOT NULL;
DROP INDEX keel_jobs_running;
"#,
];

/// The latest schema version this library knows.
pub(crate) const LATEST: i32 = MIGRATIONS.len() as i32;

/// Applies every missing migration under the advisory lock; returns the version now in
/// place.
pub(crate) async fn migrate(client: &mut Client) -> Result<i32, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS keel_jobs_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current: i32 = txn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM keel_jobs_migrations",
            &[],
        )
        .await?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i32 + 1;
        if version <= current {
            continue;
        }
        txn.batch_execute(sql).await?;
        txn.execute(
            "INSERT INTO keel_jobs_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    txn.commit().await?;
    Ok(current.max(LATEST))
}
