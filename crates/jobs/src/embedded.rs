//! [`RedbStore`]: the embedded durable store — the engine's state in memory, every change
//! written to a [redb](https://docs.rs/redb) file by a **group committer** before the call
//! that made it returns.
//!
//! # Group commit
//!
//! A redb commit with `Durability::Immediate` ends in an fsync (≈ 4 ms on the development
//! machine), so one commit per enqueue caps a store at ≈ 250 jobs/s. Instead, callers
//! queue their changes and wait; one committer thread takes *everything* queued so far,
//! writes it in one transaction, commits (one fsync) and wakes every caller whose changes
//! were in it. While it fsyncs, the next batch gathers. Under load the batch grows until
//! the fsync is amortised over hundreds of changes; with one caller it costs exactly one
//! fsync, no timer. Within a batch only the last write of each job is stored (a job leased,
//! heartbeated and acked while the disk was busy costs one write).
//!
//! # Ownership and recovery
//!
//! redb's default `ExclusiveWriter` mode locks the file: one process owns the store (a
//! second open fails with [`BuildError::Open`]). Therefore, at open, every lease in the
//! file belonged to a process that no longer exists: all of them are given back at once
//! (attempt counted, `lease_recoveries` incremented, dead when out of attempts) instead of
//! waiting for their deadlines. This is what the kill -9 test exercises.
//!
//! # Failure
//!
//! If a commit fails (disk full, I/O error), memory is ahead of the disk; every waiting and
//! later call gets [`JobsError::CommitFailed`]. Reopen the store to continue from the disk.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use ::redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::engine::{Engine, store_via_engine};
use crate::job::JobRecord;
use crate::metrics::StoreMetrics;
use crate::state::{Change, Effects, Meta, State};
use crate::{BuildError, JobsError};

const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PAUSED: TableDefinition<&str, u8> = TableDefinition::new("paused_queues");
const CRON: TableDefinition<&str, u64> = TableDefinition::new("cron_ticks");
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The embedded durable job store (redb, group commit).
///
/// ```
/// use keel_jobs::{NewJob, RedbStore, Store};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("jobs.redb");
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
/// {
///     let store = RedbStore::builder().path(&path).build()?;
///     rt.block_on(store.enqueue(NewJob::new("default", "ping", serde_json::json!(1))))?;
/// } // dropped: the committer drains and stops
/// let reopened = RedbStore::builder().path(&path).build()?;
/// let counts = rt.block_on(reopened.counts())?;
/// assert_eq!(counts["default"].available, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedbStore {
    engine: Engine,
}

impl RedbStore {
    /// A builder; [`path`](RedbStoreBuilder::path) is required.
    pub fn builder() -> RedbStoreBuilder {
        RedbStoreBuilder::default()
    }
}

/// Builds a [`RedbStore`].
#[derive(Debug, Default)]
#[must_use]
pub struct RedbStoreBuilder {
    path: Option<PathBuf>,
    clock: Option<Arc<dyn Clock>>,
    keep_completed: bool,
}

impl RedbStoreBuilder {
    /// The database file (created when missing).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
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

    /// Opens (or creates) the store, loads every job, gives back the leases of the
    /// previous owner, and starts the committer thread.
    ///
    /// # Errors
    ///
    /// [`BuildError::Missing`] without a path; [`BuildError::Open`] when the file cannot
    /// be opened (another process owns it, corruption, I/O) or a record does not decode,
    /// is stored under a key other than its id, or holds an id or token at or above 2^63;
    /// [`BuildError::Spawn`] when the thread cannot start.
    pub fn build(self) -> Result<RedbStore, BuildError> {
        let path = self.path.ok_or(BuildError::Missing("path"))?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let open = |e: BoxError| BuildError::Open(e);
        let db = Database::create(&path).map_err(|e| open(e.into()))?;
        let loaded = load(&db).map_err(open)?;
        let metrics = Arc::new(StoreMetrics::new("redb"));
        let now = clock.now();
        let mut state = State::load(
            self.keep_completed,
            loaded.meta,
            loaded.records,
            loaded.paused,
            loaded.cron_ticks,
            loaded.batches,
            now,
        );
        let mut fx = Effects::default();
        state.reap_all(now, &mut fx);
        metrics.record(&fx.events);
        if !fx.changes.is_empty() {
            let n = write(&db, fx.changes, state.meta()).map_err(open)?;
            metrics.record_commit(n);
        }
        let committer = Committer::start(db, state.meta(), Arc::clone(&metrics))?;
        Ok(RedbStore {
            engine: Engine {
                state: Mutex::new(state),
                clock,
                metrics,
                notify: tokio::sync::Notify::new(),
                committer: Some(committer),
            },
        })
    }
}

store_via_engine!(RedbStore);

struct Loaded {
    meta: Meta,
    records: Vec<JobRecord>,
    paused: Vec<String>,
    cron_ticks: Vec<(String, crate::Timestamp)>,
    batches: Vec<crate::BatchStatus>,
}

fn load(db: &Database) -> Result<Loaded, BoxError> {
    // Create the tables on first open so the read below finds them.
    let txn = db.begin_write()?;
    {
        txn.open_table(JOBS)?;
        txn.open_table(META)?;
        txn.open_table(PAUSED)?;
        txn.open_table(CRON)?;
        txn.open_table(BATCHES)?;
    }
    txn.commit()?;
    let txn = db.begin_read()?;
    let meta_table = txn.open_table(META)?;
    let get =
        |key: &str| -> Result<u64, BoxError> { Ok(meta_table.get(key)?.map_or(0, |v| v.value())) };
    let meta = Meta {
        next_id: check_range("next id", get("next_id")?)?,
        next_token: check_range("next fencing token", get("next_token")?)?,
        succeeded_total: get("succeeded_total")?,
    };
    let jobs = txn.open_table(JOBS)?;
    let mut records = Vec::new();
    for entry in jobs.iter()? {
        let (key, value) = entry?;
        let record: JobRecord = serde_json::from_slice(value.value())
            .map_err(|e| format!("job {} does not decode: {e}", key.value()))?;
        if record.id.0 != key.value() {
            return Err(format!("job {} is stored under key {}", record.id.0, key.value()).into());
        }
        check_range("job id", record.id.0)?;
        if let Some(token) = record.token() {
            check_range("fencing token", token.0)?;
        }
        records.push(record);
    }
    let mut paused = Vec::new();
    for entry in txn.open_table(PAUSED)?.iter()? {
        paused.push(entry?.0.value().to_owned());
    }
    let mut cron_ticks = Vec::new();
    for entry in txn.open_table(CRON)?.iter()? {
        let (k, v) = entry?;
        cron_ticks.push((k.value().to_owned(), crate::Timestamp(v.value())));
    }
    let mut batches = Vec::new();
    for entry in txn.open_table(BATCHES)?.iter()? {
        let (key, value) = entry?;
        let batch: crate::BatchStatus = serde_json::from_slice(value.value())
            .map_err(|e| format!("batch {} does not decode: {e}", key.value()))?;
        if batch.id.0 != key.value() {
            return Err(format!("batch {} is stored under key {}", batch.id.0, key.value()).into());
        }
        check_range("batch id", batch.id.0)?;
        batches.push(batch);
    }
    Ok(Loaded {
        meta,
        records,
        paused,
        cron_ticks,
        batches,
    })
}

/// Ids and tokens at or above this are refused at open: `+ 1` on them could overflow,
/// and a live store needs 292 000 years at a million ids a second to get there.
const MAX_STORED_COUNTER: u64 = 1 << 63;

fn check_range(what: &str, value: u64) -> Result<u64, BoxError> {
    if value >= MAX_STORED_COUNTER {
        return Err(format!("stored {what} {value} is out of range").into());
    }
    Ok(value)
}

/// Writes one batch in one durable transaction; returns the number of job writes.
fn write(db: &Database, changes: Vec<Change>, meta: Meta) -> Result<u64, BoxError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let mut written = 0;
    {
        let mut jobs = txn.open_table(JOBS)?;
        // Last change per job wins; earlier ones in the batch are superseded.
        let mut seen = HashSet::with_capacity(changes.len());
        let mut paused = txn.open_table(PAUSED)?;
        let mut cron = txn.open_table(CRON)?;
        let mut batches = txn.open_table(BATCHES)?;
        for change in &changes {
            // Rare and tiny: applied in order, no merging.
            match change {
                Change::Paused(queue, true) => {
                    paused.insert(queue.as_str(), 1)?;
                }
                Change::Paused(queue, false) => {
                    paused.remove(queue.as_str())?;
                }
                Change::CronTick(schedule, tick) => {
                    cron.insert(schedule.as_str(), tick.0)?;
                }
                Change::Batch(batch) => {
                    let bytes = serde_json::to_vec(batch)?;
                    batches.insert(batch.id.0, bytes.as_slice())?;
                }
                Change::BatchDone(id) => {
                    batches.remove(id.0)?;
                }
                Change::Put(_) | Change::Delete(_) => {}
            }
        }
        for change in changes.iter().rev() {
            let id = match change {
                Change::Put(r) => r.id,
                Change::Delete(id) => *id,
                Change::Paused(..)
                | Change::CronTick(..)
                | Change::Batch(_)
                | Change::BatchDone(_) => {
                    continue;
                }
            };
            if !seen.insert(id) {
                continue;
            }
            match change {
                Change::Put(record) => {
                    let bytes = serde_json::to_vec(record)?;
                    jobs.insert(id.0, bytes.as_slice())?;
                }
                Change::Delete(_) => {
                    jobs.remove(id.0)?;
                }
                Change::Paused(..)
                | Change::CronTick(..)
                | Change::Batch(_)
                | Change::BatchDone(_) => {}
            }
            written += 1;
        }
        let mut m = txn.open_table(META)?;
        m.insert("next_id", meta.next_id)?;
        m.insert("next_token", meta.next_token)?;
        m.insert("succeeded_total", meta.succeeded_total)?;
    }
    txn.commit()?;
    Ok(written)
}

#[derive(Debug, Default)]
struct Pending {
    changes: Vec<Change>,
    meta: Meta,
    submitted: u64,
    closed: bool,
}

#[derive(Debug, Clone, Default)]
struct Durable {
    seq: u64,
    failed: Option<Arc<str>>,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// The group committer: a queue of changes, one thread, and a watch of the durable
/// sequence number.
#[derive(Debug)]
pub(crate) struct Committer {
    shared: Arc<Shared>,
    durable: watch::Receiver<Durable>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    fn start(db: Database, meta: Meta, metrics: Arc<StoreMetrics>) -> Result<Self, BuildError> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                meta,
                ..Pending::default()
            }),
            wake: Condvar::new(),
        });
        let (tx, rx) = watch::channel(Durable::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("keel-jobs-commit".into())
            .spawn(move || commit_loop(&db, &thread_shared, &tx, &metrics))
            .map_err(BuildError::Spawn)?;
        Ok(Self {
            shared,
            durable: rx,
            thread: Some(thread),
        })
    }

    /// Errors when an earlier commit failed or the committer stopped.
    pub(crate) fn check(&self) -> Result<(), JobsError> {
        if let Some(msg) = &self.durable.borrow().failed {
            return Err(JobsError::CommitFailed(msg.to_string()));
        }
        if self.shared.pending.lock().closed {
            return Err(JobsError::Closed);
        }
        Ok(())
    }

    /// Queues changes; returns the sequence number to wait for (the latest one when
    /// there is nothing new, so a caller never returns before what it observed is durable).
    pub(crate) fn submit(&self, changes: Vec<crate::state::Change>, meta: Meta) -> u64 {
        let mut p = self.shared.pending.lock();
        if !changes.is_empty() {
            p.changes.extend(changes);
            p.meta = meta;
            p.submitted += 1;
            self.shared.wake.notify_one();
        }
        p.submitted
    }

    /// Waits until everything up to `seq` is durable.
    pub(crate) async fn wait(&self, seq: u64) -> Result<(), JobsError> {
        let mut rx = self.durable.clone();
        let durable = rx
            .wait_for(|d| d.seq >= seq || d.failed.is_some())
            .await
            .map_err(|_| JobsError::Closed)?;
        if durable.seq >= seq {
            Ok(())
        } else {
            Err(JobsError::CommitFailed(
                durable.failed.as_deref().unwrap_or_default().to_owned(),
            ))
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.shared.pending.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn commit_loop(
    db: &Database,
    shared: &Shared,
    tx: &watch::Sender<Durable>,
    metrics: &StoreMetrics,
) {
    loop {
        let (changes, meta, seq) = {
            let mut p = shared.pending.lock();
            while p.changes.is_empty() && !p.closed {
                shared.wake.wait(&mut p);
            }
            if p.changes.is_empty() {
                return; // closed and drained
            }
            (std::mem::take(&mut p.changes), p.meta, p.submitted)
        };
        match write(db, changes, meta) {
            Ok(n) => {
                metrics.record_commit(n);
                tx.send_modify(|d| d.seq = seq);
            }
            Err(e) => {
                let msg: Arc<str> = e.to_string().into();
                shared.pending.lock().closed = true;
                tx.send_modify(|d| d.failed = Some(msg));
                return;
            }
        }
    }
}
