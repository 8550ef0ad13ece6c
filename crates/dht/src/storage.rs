//! Durable storage on redb, with group commit.
//!
//! Each node keeps two tables: `data` (partition ‖ key → encoded [`SiblingSet`]) and
//! `hints` (target node ‖ partition ‖ key → the set to hand to that node when it is back).
//! Keys are prefixed with their partition number (big-endian), so one partition is one
//! contiguous range — what `SCAN`, counting and (later) streaming a partition need.
//!
//! # Why a single writer thread with group commit
//!
//! redb commits with `fsync` (`Durability::Immediate`), and a node must not acknowledge a
//! write before it is on disk: a SIGKILL right after the reply would lose it. One fsync
//! per write would cap a node at a few hundred writes per second, so every write is sent
//! to one writer thread, which takes everything queued (up to [`MAX_BATCH`] jobs), applies
//! it in one transaction, commits once and only then completes all of them. Under load
//! many writes share one fsync; alone, a write pays one. The single writer also makes every
//! read-modify-write on a key (merge a replica's version, `INCR`) atomic without a lock.
//!
//! A coordinator does not wait for its own commit before replicating:
//! [`Store::mutate`] hands back the new set as soon as the job has been *applied* in the
//! open transaction, together with a [`Committed`] to await, so the local fsync and the
//! replicas' fsyncs run in parallel (one fsync of latency per write instead of two). The
//! coordinator still answers only after W owners — its own commit counted only once it
//! resolves — have the write on disk.
//!
//! With [`Fsync::EverySecond`] (an explicit node option) the writer commits with redb's
//! `Durability::None` and makes a durable commit at most a second later; what that loses
//! is spelled out on [`Fsync`].
//!
//! # Dots are never reused
//!
//! Sending a version before it is committed means a node can crash with one of its dots on
//! another replica but not on its own disk; and the [`MAX_SIBLINGS`](crate::MAX_SIBLINGS)
//! bound can drop a node's newest sibling of a key. Either way the key's stored context
//! no longer shows the dot, and a counter derived from it alone would hand the same dot to
//! a different write — which every replica holding the old one then treats as already seen
//! (the write is hidden). So the writer also keeps a node-wide floor: every dot it issues
//! is above every dot it issued before, and each time the store opens it durably bumps an
//! *incarnation* number and starts the floor at `incarnation << 32`, above anything a
//! previous run could have sent.
//!
//! Reads use redb's MVCC read transactions on the caller's thread: they see only
//! committed data and never wait for the writer.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

use crate::error::DhtError;
use crate::memory_disk::MemoryDisk;
use crate::version::{Sibling, SiblingSet};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const HINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hints");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const INCARNATION: &str = "incarnation";

/// Most jobs applied in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Jobs queued for the writer before callers wait (backpressure).
const QUEUE: usize = 4096;

type Finish = Box<dyn FnOnce(Result<(), Arc<DhtError>>) + Send>;
type Job = Box<dyn FnOnce(&mut Tables<'_>) -> Result<Finish, DhtError> + Send>;

struct Tables<'t> {
    data: redb::Table<'t, &'static [u8], &'static [u8]>,
    hints: redb::Table<'t, &'static [u8], &'static [u8]>,
    siblings_dropped: u64,
    /// The smallest dot counter this node may issue next (see the module docs).
    next_dot: u64,
}

/// Resolves when the transaction that applied a job has committed (or failed).
#[derive(Debug)]
pub(crate) struct Committed(oneshot::Receiver<Result<(), Arc<DhtError>>>);

impl Committed {
    /// Waits for the commit.
    pub(crate) async fn wait(self) -> Result<(), DhtError> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DhtError::Storage(e.to_string().into())),
            Err(_) => Err(DhtError::StorageClosed),
        }
    }
}

/// A hint waiting for its target node.
#[derive(Debug, Clone)]
pub(crate) struct Hint {
    pub(crate) hint_key: Vec<u8>,
    pub(crate) target: String,
    pub(crate) key: Vec<u8>,
    pub(crate) set_bytes: Vec<u8>,
}

/// Counters kept by the store.
#[derive(Debug, Default)]
pub(crate) struct StoreCounters {
    pub(crate) commits: AtomicU64,
    pub(crate) jobs: AtomicU64,
    pub(crate) siblings_dropped: AtomicU64,
}

/// The node's durable store.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    db: Arc<Database>,
    jobs: Jobs,
    pub(crate) counters: Arc<StoreCounters>,
    /// The writer thread; taken by [`Store::take_writer`] so shutdown can join it.
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

/// Where jobs go: the writer thread, or (on a [`MemoryDisk`]) the writer task.
#[derive(Debug, Clone)]
enum Jobs {
    Thread(mpsc::SyncSender<Job>),
    Task(tokio::sync::mpsc::Sender<Job>),
}

/// Creates the tables and durably bumps the incarnation; returns the run's first dot
/// counter (see the module docs).
fn start_run(db: &Database) -> Result<u64, DhtError> {
    let tx = db.begin_write()?;
    tx.open_table(DATA)?;
    tx.open_table(HINTS)?;
    let incarnation = {
        let mut meta = tx.open_table(META)?;
        let previous = meta
            .get(INCARNATION)?
            .map_or(0, |v| v.value().saturating_add(1));
        meta.insert(INCARNATION, previous)?;
        previous
    };
    tx.commit()?;
    Ok(incarnation.saturating_mul(1 << 32).max(1))
}

/// The storage key: partition (big-endian u16) ‖ user key.
pub(crate) fn storage_key(partition: u16, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + key.len());
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn hint_key(target: &str, skey: &[u8]) -> Vec<u8> {
    let t = target.as_bytes();
    let mut k = Vec::with_capacity(2 + t.len() + skey.len());
    k.extend_from_slice(&u16::try_from(t.len()).unwrap_or(u16::MAX).to_be_bytes());
    k.extend_from_slice(t);
    k.extend_from_slice(skey);
    k
}

fn split_hint_key(k: &[u8]) -> Option<(String, Vec<u8>)> {
    let n = usize::from(u16::from_be_bytes([*k.first()?, *k.get(1)?]));
    let target = String::from_utf8(k.get(2..2 + n)?.to_vec()).ok()?;
    let skey = k.get(2 + n..)?.to_vec();
    if skey.len() < 2 {
        return None;
    }
    Some((target, skey))
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    #[cfg(test)]
    pub(crate) fn open(dir: &Path) -> Result<Self, DhtError> {
        Self::open_with(dir, Fsync::Always)
    }

    /// Opens (or creates) the store in `dir`; `fsync` decides when commits reach the disk.
    pub(crate) fn open_with(dir: &Path, fsync: Fsync) -> Result<Self, DhtError> {
        std::fs::create_dir_all(dir).map_err(DhtError::Io)?;
        let db = Arc::new(Database::create(dir.join("keel-dht.redb"))?);
        let first_dot = start_run(&db)?;
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let counters = Arc::new(StoreCounters::default());
        let writer_db = Arc::clone(&db);
        let writer_counters = Arc::clone(&counters);
        let handle = std::thread::Builder::new()
            .name("keel-dht-writer".into())
            .spawn(move || writer(&writer_db, &rx, &writer_counters, first_dot, fsync))
            .map_err(DhtError::Io)?;
        Ok(Self {
            db,
            jobs: Jobs::Thread(jobs),
            counters,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
        })
    }

    /// Opens the store on a [`MemoryDisk`], with the writer as a task on the current tokio
    /// runtime instead of a thread: the simulator then orders every storage step with the
    /// rest of the node (a thread would finish its commits at real-time moments and make
    /// runs irreproducible). Batching and commit semantics are those of the thread.
    pub(crate) fn open_memory(disk: &MemoryDisk) -> Result<Self, DhtError> {
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(16 << 20)
                .create_with_backend(disk.open())?,
        );
        let mut next_dot = start_run(&db)?;
        let (jobs, mut rx) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        let counters = Arc::new(StoreCounters::default());
        let writer_db = Arc::clone(&db);
        let writer_counters = Arc::clone(&counters);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                // Always durable: a crash of the simulation loses only unacknowledged work.
                commit_batch(&writer_db, batch, &writer_counters, &mut next_dot, true);
            }
        });
        Ok(Self {
            db,
            jobs: Jobs::Task(jobs),
            counters,
            writer: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    /// The writer thread's handle (once). It ends, dropping its database handle, when the
    /// last `Store` clone is gone.
    pub(crate) fn take_writer(&self) -> Option<std::thread::JoinHandle<()>> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    async fn submit<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Tables<'_>) -> Result<R, DhtError> + Send + 'static,
    ) -> Result<R, DhtError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |tables| {
            let out = job(tables)?;
            Ok(Box::new(move |committed: Result<(), Arc<DhtError>>| {
                let _ = tx.send(committed.map(|()| out));
            }) as Finish)
        });
        self.enqueue(job).await?;
        match rx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(DhtError::Storage(e.to_string().into())),
            Err(_) => Err(DhtError::StorageClosed),
        }
    }

    /// Like [`Store::submit`], but hands back the job's result as soon as it has been
    /// applied in the writer's open transaction, with a [`Committed`] for its commit.
    async fn submit_early<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Tables<'_>) -> Result<R, DhtError> + Send + 'static,
    ) -> Result<(R, Committed), DhtError> {
        let (applied_tx, applied_rx) = oneshot::channel();
        let (committed_tx, committed_rx) = oneshot::channel();
        let job: Job = Box::new(move |tables| match job(tables) {
            Ok(out) => {
                let _ = applied_tx.send(Ok(out));
                Ok(Box::new(move |committed: Result<(), Arc<DhtError>>| {
                    let _ = committed_tx.send(committed);
                }) as Finish)
            }
            Err(e) => {
                let _ = applied_tx.send(Err(e.to_string()));
                Err(e)
            }
        });
        self.enqueue(job).await?;
        match applied_rx.await {
            Ok(Ok(r)) => Ok((r, Committed(committed_rx))),
            Ok(Err(e)) => Err(DhtError::Storage(e.into())),
            Err(_) => Err(DhtError::StorageClosed),
        }
    }

    async fn enqueue(&self, job: Job) -> Result<(), DhtError> {
        let jobs = match &self.jobs {
            Jobs::Thread(jobs) => jobs.clone(),
            Jobs::Task(jobs) => {
                return jobs.send(job).await.map_err(|_| DhtError::StorageClosed);
            }
        };
        // A full queue blocks the sender: do that off the async workers.
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .map_err(|_| DhtError::StorageClosed)?
                    .map_err(|_| DhtError::StorageClosed)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(DhtError::StorageClosed),
        }
        Ok(())
    }

    /// The stored set for a key (empty when absent).
    pub(crate) fn get(&self, partition: u16, key: &[u8]) -> Result<SiblingSet, DhtError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DATA)?;
        match table.get(storage_key(partition, key).as_slice())? {
            Some(v) => Ok(SiblingSet::decode(v.value())?),
            None => Ok(SiblingSet::new()),
        }
    }

    /// The stored sets of many keys, read in one read transaction (`DHT.R.MGET`).
    pub(crate) fn get_many(
        &self,
        keys: impl IntoIterator<Item = (u16, impl AsRef<[u8]>)>,
    ) -> Result<Vec<SiblingSet>, DhtError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DATA)?;
        let mut skey = Vec::new();
        keys.into_iter()
            .map(|(partition, key)| {
                skey.clear();
                skey.extend_from_slice(&partition.to_be_bytes());
                skey.extend_from_slice(key.as_ref());
                match table.get(skey.as_slice())? {
                    Some(v) => Ok(SiblingSet::decode(v.value())?),
                    None => Ok(SiblingSet::new()),
                }
            })
            .collect()
    }

    /// Merges many `(partition, key, set)` as one storage job — one transaction, one
    /// commit — and returns once all of them are durable (`DHT.R.MPUT`).
    pub(crate) async fn merge_many(
        &self,
        items: Vec<(u16, Vec<u8>, SiblingSet)>,
    ) -> Result<(), DhtError> {
        self.submit(move |t| {
            for (partition, key, set) in items {
                let skey = storage_key(partition, &key);
                merge_into(t, &skey, &set)?;
            }
            Ok(())
        })
        .await
    }

    /// Merges `set` into the stored set, durably. Returns the stored set afterwards.
    pub(crate) async fn merge(
        &self,
        partition: u16,
        key: &[u8],
        set: SiblingSet,
    ) -> Result<SiblingSet, DhtError> {
        let skey = storage_key(partition, key);
        self.submit(move |t| merge_into(t, &skey, &set)).await
    }

    /// Atomically reads the stored set, lets `f` decide on a new version, stores it.
    /// `f` gets the set and the smallest dot counter it may issue (the node-wide floor,
    /// see the module docs). Returns, once applied (not yet committed), the stored set
    /// afterwards, `f`'s result and the commit to wait for before acknowledging.
    pub(crate) async fn mutate<R: Send + 'static>(
        &self,
        partition: u16,
        key: &[u8],
        f: impl FnOnce(&SiblingSet, u64) -> (Option<Sibling>, R) + Send + 'static,
    ) -> Result<(SiblingSet, R, Committed), DhtError> {
        let skey = storage_key(partition, key);
        let ((set, out), committed) = self
            .submit_early(move |t| {
                let mut current = read(&t.data, &skey)?;
                let (new, out) = f(&current, t.next_dot);
                if let Some(new) = new {
                    t.next_dot = t.next_dot.max(new.dot.1.saturating_add(1));
                    let (changed, dropped) = current.insert(new);
                    t.siblings_dropped += dropped as u64;
                    if changed {
                        t.data
                            .insert(skey.as_slice(), current.encode().as_slice())?;
                    }
                }
                Ok((current, out))
            })
            .await?;
        Ok((set, out, committed))
    }

    /// Stores (merges) a hint for `target`, durably.
    pub(crate) async fn put_hint(
        &self,
        target: &str,
        partition: u16,
        key: &[u8],
        set: SiblingSet,
    ) -> Result<(), DhtError> {
        let hkey = hint_key(target, &storage_key(partition, key));
        self.submit(move |t| {
            let mut current = read(&t.hints, &hkey)?;
            current.merge(&set);
            t.hints
                .insert(hkey.as_slice(), current.encode().as_slice())?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` pending hints.
    pub(crate) fn hints(&self, limit: usize) -> Result<Vec<Hint>, DhtError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(HINTS)?;
        let mut out = Vec::new();
        for entry in table.iter()?.take(limit) {
            let (k, v) = entry?;
            let Some((target, skey)) = split_hint_key(k.value()) else {
                continue;
            };
            out.push(Hint {
                hint_key: k.value().to_vec(),
                target,
                key: skey,
                set_bytes: v.value().to_vec(),
            });
        }
        Ok(out)
    }

    /// Number of pending hints.
    pub(crate) fn hint_count(&self) -> Result<u64, DhtError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(HINTS)?.len()?)
    }

    /// Deletes a delivered hint unless it changed since it was read.
    pub(crate) async fn delete_hint_if(&self, hint: Hint) -> Result<(), DhtError> {
        self.submit(move |t| {
            let same = t
                .hints
                .get(hint.hint_key.as_slice())?
                .is_some_and(|v| v.value() == hint.set_bytes.as_slice());
            if same {
                t.hints.remove(hint.hint_key.as_slice())?;
            }
            Ok(())
        })
        .await
    }

    /// Calls `f(key, encoded set)` for every stored key of a partition, in key order.
    pub(crate) fn for_each_in_partition(
        &self,
        partition: u16,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DhtError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DATA)?;
        let start = partition.to_be_bytes();
        let range = match partition.checked_add(1) {
            Some(next) => table.range(start.as_slice()..next.to_be_bytes().as_slice())?,
            None => table.range(start.as_slice()..)?,
        };
        for entry in range {
            let (k, v) = entry?;
            f(&k.value()[2..], v.value());
        }
        Ok(())
    }

    /// Keys of one partition whose current value is live at `now_ms`.
    pub(crate) fn live_keys(&self, partition: u16, now_ms: u64) -> Result<Vec<Vec<u8>>, DhtError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DATA)?;
        let start = partition.to_be_bytes();
        let mut out = Vec::new();
        let range = match partition.checked_add(1) {
            Some(next) => table.range(start.as_slice()..next.to_be_bytes().as_slice())?,
            None => table.range(start.as_slice()..)?,
        };
        for entry in range {
            let (k, v) = entry?;
            if SiblingSet::decode(v.value())?.current(now_ms).is_some() {
                out.push(k.value()[2..].to_vec());
            }
        }
        Ok(out)
    }

    /// Number of stored keys (live, expired or tombstones), O(1).
    pub(crate) fn key_count(&self) -> Result<u64, DhtError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(DATA)?.len()?)
    }

    /// True when partition `p` holds at least one key here.
    pub(crate) fn partition_has_keys(&self, partition: u16) -> Result<bool, DhtError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DATA)?;
        let start = partition.to_be_bytes();
        let mut range = match partition.checked_add(1) {
            Some(next) => table.range(start.as_slice()..next.to_be_bytes().as_slice())?,
            None => table.range(start.as_slice()..)?,
        };
        Ok(range.next().transpose()?.is_some())
    }

    /// Deletes each `(key, hash)` of a partition whose stored encoded set still hashes to
    /// `hash` ([`set_hash`]), durably; a key written since the hash was taken stays.
    /// Returns how many were deleted.
    pub(crate) async fn remove_if_unchanged(
        &self,
        partition: u16,
        keys: Vec<(Vec<u8>, u64)>,
    ) -> Result<usize, DhtError> {
        self.submit(move |t| {
            let mut removed = 0;
            for (key, hash) in keys {
                let skey = storage_key(partition, &key);
                let same = t
                    .data
                    .get(skey.as_slice())?
                    .is_some_and(|v| set_hash(v.value()) == hash);
                if same {
                    t.data.remove(skey.as_slice())?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }

    /// For each `(key, hash)` of a partition: whether the stored encoded set hashes to
    /// `hash` (a missing key never matches).
    pub(crate) fn holds_unchanged(
        &self,
        partition: u16,
        keys: &[(Vec<u8>, u64)],
    ) -> Result<Vec<bool>, DhtError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DATA)?;
        keys.iter()
            .map(|(key, hash)| {
                Ok(table
                    .get(storage_key(partition, key).as_slice())?
                    .is_some_and(|v| set_hash(v.value()) == *hash))
            })
            .collect()
    }

    /// Deletes every key and hint.
    pub(crate) async fn flush(&self) -> Result<(), DhtError> {
        self.submit(|t| {
            t.data.retain(|_, _| false)?;
            t.hints.retain(|_, _| false)?;
            Ok(())
        })
        .await
    }
}

/// The hash that names one stored (encoded, canonical) set in GC and hand-off checks.
pub(crate) fn set_hash(encoded: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(encoded)
}

/// Merges `set` into the stored set of `skey` in the open transaction; returns the
/// stored set afterwards.
fn merge_into(t: &mut Tables<'_>, skey: &[u8], set: &SiblingSet) -> Result<SiblingSet, DhtError> {
    let mut current = read(&t.data, skey)?;
    let mut changed = false;
    for s in set.siblings() {
        let (c, dropped) = current.insert(s.clone());
        changed |= c;
        t.siblings_dropped += dropped as u64;
    }
    if changed {
        t.data.insert(skey, current.encode().as_slice())?;
    }
    Ok(current)
}

fn read(
    table: &redb::Table<'_, &'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<SiblingSet, DhtError> {
    match table.get(key)? {
        Some(v) => Ok(SiblingSet::decode(v.value())?),
        None => Ok(SiblingSet::new()),
    }
}

/// When the writer's commits reach the disk.
///
/// # What [`Fsync::EverySecond`] loses
/// Its commits are visible at once (reads, replication, the reply) but live only in the
/// process's memory until the next durable commit, which the writer makes at most
/// [`SYNC_INTERVAL`] after the first non-durable one (sooner when a batch starts after
/// the interval; at once on a clean shutdown). A node killed (`kill -9`, a crash, power
/// loss) comes back without up to the last second of writes it acknowledged — redb
/// rolls back to the last durable commit. With W ≥ 2 such a write survives while any
/// other replica that acknowledged it survives, so the cluster loses it only when every
/// node holding it dies within that second. Redis's `appendfsync everysec` loses up to
/// a second on an OS crash or power loss but nothing on a process kill; this loses it on
/// both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Every commit is fsynced before the writes in it are acknowledged (default): a node
    /// comes back after `kill -9` with everything it acknowledged.
    #[default]
    Always,
    /// Commits are fsynced at most once per second (see above for what that loses).
    EverySecond,
}

/// Longest a non-durable commit waits for its fsync under [`Fsync::EverySecond`].
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Commits an empty transaction durably (making earlier non-durable commits durable).
fn sync(db: &Database) -> Result<(), DhtError> {
    let tx = db.begin_write()?;
    tx.commit()?;
    Ok(())
}

fn writer(
    db: &Database,
    rx: &mpsc::Receiver<Job>,
    counters: &StoreCounters,
    first_dot: u64,
    fsync: Fsync,
) {
    // Survives failed transactions on purpose: a dot handed out once is never reused.
    let mut next_dot = first_dot;
    // Under `EverySecond`: when the last durable commit was made, and whether any commit
    // since is not durable yet. (Real time: this paces the disk, it is no TTL or window.)
    let mut synced_at = std::time::Instant::now();
    let mut unsynced = false;
    loop {
        let first = if unsynced {
            let wait = SYNC_INTERVAL.saturating_sub(synced_at.elapsed());
            match rx.recv_timeout(wait) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if sync(db).is_ok() {
                        unsynced = false;
                        synced_at = std::time::Instant::now();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = sync(db);
                    return;
                }
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let durable = fsync == Fsync::Always || synced_at.elapsed() >= SYNC_INTERVAL;
        if commit_batch(db, batch, counters, &mut next_dot, durable) {
            if durable {
                unsynced = false;
                synced_at = std::time::Instant::now();
            } else {
                unsynced = true;
            }
        }
    }
}

/// Applies a batch of jobs in one transaction, commits once (with an fsync when
/// `durable`), then completes them all. Returns whether the commit succeeded.
fn commit_batch(
    db: &Database,
    batch: Vec<Job>,
    counters: &StoreCounters,
    next_dot: &mut u64,
    durable: bool,
) -> bool {
    let n = batch.len() as u64;
    let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
    let result = (|| -> Result<(), DhtError> {
        let mut tx = db.begin_write()?;
        if !durable {
            tx.set_durability(redb::Durability::None)
                .map_err(|e| DhtError::Storage(e.to_string().into()))?;
        }
        {
            let mut tables = Tables {
                data: tx.open_table(DATA)?,
                hints: tx.open_table(HINTS)?,
                siblings_dropped: 0,
                next_dot: *next_dot,
            };
            for job in batch {
                match job(&mut tables) {
                    Ok(f) => finishes.push(f),
                    // A corrupt record fails only its own job (its caller sees the
                    // writer drop its reply); a storage error fails the transaction,
                    // and with it every job in the batch.
                    Err(DhtError::Corrupt(_)) => {}
                    Err(e) => {
                        *next_dot = tables.next_dot;
                        return Err(e);
                    }
                }
            }
            counters
                .siblings_dropped
                .fetch_add(tables.siblings_dropped, Ordering::Relaxed);
            *next_dot = tables.next_dot;
        }
        tx.commit()?;
        Ok(())
    })();
    counters.commits.fetch_add(1, Ordering::Relaxed);
    counters.jobs.fetch_add(n, Ordering::Relaxed);
    let ok = result.is_ok();
    match result {
        Ok(()) => finishes.into_iter().for_each(|f| f(Ok(()))),
        Err(e) => {
            let e = Arc::new(e);
            finishes.into_iter().for_each(|f| f(Err(Arc::clone(&e))));
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{MAX_SIBLINGS, VersionVector};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// A blind write coordinated by `node`, as the coordinator makes it.
    fn blind(
        node: &'static str,
        value: &'static str,
        t: u64,
    ) -> impl FnOnce(&SiblingSet, u64) -> (Option<Sibling>, ()) + Send + 'static {
        move |set, floor| {
            let s = Sibling::new_write_with_floor(
                node,
                floor,
                &set.context(),
                set,
                Some(value.into()),
                None,
                t,
            );
            (Some(s), ())
        }
    }

    async fn write(
        store: &Store,
        key: &[u8],
        f: impl FnOnce(&SiblingSet, u64) -> (Option<Sibling>, ()) + Send + 'static,
    ) -> SiblingSet {
        let (set, (), committed) = store.mutate(0, key, f).await.unwrap();
        committed.wait().await.unwrap();
        set
    }

    fn close(store: Store) {
        let writer = store.take_writer().unwrap();
        drop(store);
        writer.join().unwrap();
    }

    /// The sibling cap used to drop a node's only dot for a key; the node's next write then
    /// reused that dot, and every replica still holding the dropped version took the new
    /// write for one it had already seen: an acknowledged write, hidden for good.
    #[test]
    fn a_write_after_the_sibling_cap_dropped_its_nodes_last_dot_is_not_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        runtime().block_on(async {
            let first = write(&store, b"k", blind("a", "v1", 1)).await;
            // MAX_SIBLINGS newer writes through other coordinators, concurrent with v1.
            for i in 0..MAX_SIBLINGS {
                let mut s = SiblingSet::new();
                let node = format!("b{i}");
                s.insert(Sibling::new_write(
                    &node,
                    &VersionVector::new(),
                    &SiblingSet::new(),
                    Some(node.clone().into_bytes()),
                    None,
                    100 + i as u64,
                ));
                store.merge(0, b"k", s).await.unwrap();
            }
            let capped = store.get(0, b"k").unwrap();
            assert_eq!(capped.siblings().len(), MAX_SIBLINGS);
            assert!(
                capped.siblings().iter().all(|s| s.dot.0 != "a"),
                "v1 dropped"
            );
            assert_eq!(store.counters.siblings_dropped.load(Ordering::Relaxed), 1);

            let after = write(&store, b"k", blind("a", "v2", 200)).await;
            let v2 = after.current(0).unwrap().clone();
            assert_eq!(v2.value.as_deref(), Some(&b"v2"[..]));
            // A replica that missed the 16 writes still holds v1.
            let mut replica = first.clone();
            replica.merge(&after);
            assert_eq!(replica.current(0), Some(&v2), "v2 hidden by v1's dot");
            store.merge(0, b"k", first).await.unwrap();
            assert_eq!(store.get(0, b"k").unwrap().current(0), Some(&v2));
        });
        close(store);
    }

    /// `Fsync::EverySecond` acknowledges before the fsync, but a clean close makes every
    /// commit durable: reopening finds all of them.
    #[test]
    fn a_relaxed_store_closed_cleanly_keeps_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), Fsync::EverySecond).unwrap();
        runtime().block_on(async {
            for i in 0..100u32 {
                write(&store, &i.to_be_bytes(), blind("a", "v", 1)).await;
            }
        });
        close(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.key_count().unwrap(), 100);
        close(store);
    }

    /// Conditional removal deletes only keys whose set is unchanged since it was hashed.
    #[test]
    fn remove_if_unchanged_keeps_keys_written_since_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        runtime().block_on(async {
            write(&store, b"a", blind("n", "1", 1)).await;
            write(&store, b"b", blind("n", "1", 1)).await;
            let hashes: Vec<(Vec<u8>, u64)> = [b"a", b"b"]
                .iter()
                .map(|k| (k.to_vec(), set_hash(&store.get(0, *k).unwrap().encode())))
                .collect();
            assert_eq!(store.holds_unchanged(0, &hashes).unwrap(), [true, true]);
            write(&store, b"b", blind("n", "2", 2)).await;
            assert_eq!(store.holds_unchanged(0, &hashes).unwrap(), [true, false]);
            assert_eq!(store.remove_if_unchanged(0, hashes).await.unwrap(), 1);
            assert!(store.get(0, b"a").unwrap().is_empty());
            assert!(!store.get(0, b"b").unwrap().is_empty());
            assert!(store.partition_has_keys(0).unwrap());
            assert!(!store.partition_has_keys(1).unwrap());
        });
        close(store);
    }

    /// A coordinator sends a version before its own commit; if it crashes in between, the
    /// dot lives on a replica only. The next run must not hand that dot out again.
    #[test]
    fn dots_issued_after_a_restart_are_above_every_dot_of_the_previous_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut last = 0;
        for _ in 0..3 {
            let store = Store::open(dir.path()).unwrap();
            runtime().block_on(async {
                for key in [&b"x"[..], b"y"] {
                    let set = write(&store, key, blind("a", "v", 1)).await;
                    let dot = set.siblings()[0].dot.1;
                    assert!(dot > last, "dot {dot} reused (last {last})");
                    last = dot;
                }
            });
            // The next run sees a fresh key: only the floor keeps its dot new.
            runtime().block_on(store.flush()).unwrap();
            close(store);
        }
    }
}
