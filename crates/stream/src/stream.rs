//! [`Stream`]: the embedded broker — topics on disk, committed offsets, producer ids, the
//! group coordinator, lag.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::assignor::TopicPartition;
use crate::batch::{self, ProducerInfo, Record};
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::error::{BuildError, StreamError};
use crate::group::{GroupConfig, GroupCoordinator};
use crate::log::{AppendInfo, FetchedBatches, PartitionLog};
use crate::metrics::StreamStats;
use crate::offsets::{OFFSETS_DIR, OffsetStore};
use crate::topic::{CONFIG_FILE, Topic, TopicConfig, valid_topic_name};

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still in the log.
    Earliest,
    /// The log end (only new records).
    Latest,
    /// The first record with a timestamp at or after this (ms since the epoch); the log end
    /// if there is none.
    Timestamp(i64),
    /// Exactly this offset (checked against the log's range).
    At(i64),
}

/// Lag of one partition for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// Committed offset (next to consume), if any.
    pub committed: Option<i64>,
    /// Log end offset.
    pub log_end: i64,
    /// `log_end - committed` (or `log_end - log_start` when nothing is committed).
    pub lag: i64,
}

/// Lag of a group, per partition and in total, computed by the log itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupLag {
    /// One entry per subscribed or committed partition.
    pub partitions: Vec<PartitionLag>,
    /// Sum of the partition lags.
    pub total: i64,
}

const PRODUCER_ID_FILE: &str = "producer_id";

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    pub(crate) clock: SharedClock,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    offsets: OffsetStore,
    coordinator: GroupCoordinator,
    next_producer_id: Mutex<i64>,
    pub(crate) commits: std::sync::atomic::AtomicU64,
}

/// An embedded event log: topics with partitions on disk, consumer groups and offsets.
/// Cheap to clone (an `Arc`).
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) inner: Arc<Inner>,
}

/// Builder of [`Stream`].
#[derive(Debug)]
#[must_use]
pub struct StreamBuilder {
    dir: Option<PathBuf>,
    clock: Option<SharedClock>,
    group: GroupConfig,
    offsets_segment_bytes: u64,
}

impl StreamBuilder {
    /// The data directory (created if missing). Required.
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }
    /// The clock for timestamps, linger, retention and session timeouts.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }
    /// Consumer-group settings.
    pub fn group_config(mut self, config: GroupConfig) -> Self {
        self.group = config;
        self
    }
    /// Segment size of the internal offsets log (4 KiB..=1 GiB; default 16 MiB).
    pub fn offsets_segment_bytes(mut self, n: u64) -> Self {
        self.offsets_segment_bytes = n;
        self
    }

    /// Opens the directory, recovering every topic and the committed offsets.
    ///
    /// # Errors
    /// [`BuildError::MissingDir`]; [`BuildError::Invalid`]; [`BuildError::Open`] when a topic
    /// or the offsets log cannot be recovered (e.g. a corrupt sealed segment).
    pub fn build(self) -> Result<Stream, BuildError> {
        let dir = self.dir.ok_or(BuildError::MissingDir)?;
        if !(4096..=1 << 30).contains(&self.offsets_segment_bytes) {
            return Err(BuildError::Invalid {
                name: "offsets_segment_bytes",
                reason: "must be between 4 KiB and 1 GiB",
            });
        }
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        Stream::open(dir, clock, self.group, self.offsets_segment_bytes).map_err(BuildError::Open)
    }
}

impl Stream {
    /// Starts a builder.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = keel_stream::Stream::builder().dir(dir.path()).build().unwrap();
    /// assert!(stream.topics().is_empty());
    /// assert!(keel_stream::Stream::builder().build().is_err()); // no directory
    /// ```
    pub fn builder() -> StreamBuilder {
        StreamBuilder {
            dir: None,
            clock: None,
            group: GroupConfig::default(),
            offsets_segment_bytes: 16 << 20,
        }
    }

    fn open(
        dir: PathBuf,
        clock: SharedClock,
        group: GroupConfig,
        offsets_segment_bytes: u64,
    ) -> Result<Self, StreamError> {
        crate::log::create_dir_durable(&dir)?;
        let mut topics = HashMap::new();
        let mut max_pid = -1i64;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type()?.is_dir() || name == OFFSETS_DIR || !valid_topic_name(&name) {
                continue;
            }
            // No config: a `create_topic` or `delete_topic` cut short by a crash; the topic was
            // never acknowledged (or was being deleted). `create_topic` clears it.
            if !entry.path().join(CONFIG_FILE).exists() {
                continue;
            }
            let topic = Topic::open(&entry.path(), &name, &clock)?;
            for log in topic.logs() {
                max_pid = max_pid.max(log.max_producer_id().unwrap_or(-1));
            }
            topics.insert(name, Arc::new(topic));
        }
        let stored = std::fs::read_to_string(dir.join(PRODUCER_ID_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let next_pid = stored.unwrap_or(0).max(max_pid.saturating_add(1));
        let offsets = OffsetStore::open(&dir, clock.clone(), offsets_segment_bytes)?;
        Ok(Self {
            inner: Arc::new(Inner {
                coordinator: GroupCoordinator::new(group, clock.clone()),
                dir,
                clock,
                topics: RwLock::new(topics),
                offsets,
                next_producer_id: Mutex::new(next_pid),
                commits: Default::default(),
            }),
        })
    }

    /// Creates a topic.
    ///
    /// # Errors
    /// [`StreamError::InvalidTopicName`] (names starting with `__` are reserved);
    /// [`StreamError::TopicExists`]; [`StreamError::Io`].
    ///
    /// ```
    /// use keel_stream::{Stream, StreamError, TopicConfig};
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = Stream::builder().dir(dir.path()).build().unwrap();
    /// stream.create_topic("orders", TopicConfig::builder().partitions(4).build().unwrap()).unwrap();
    /// assert_eq!(stream.partition_count("orders").unwrap(), 4);
    /// assert!(matches!(stream.create_topic("orders", TopicConfig::default()), Err(StreamError::TopicExists(_))));
    /// ```
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<(), StreamError> {
        if !valid_topic_name(name) || name.starts_with("__") {
            return Err(StreamError::InvalidTopicName(name.to_string()));
        }
        let mut topics = self.inner.topics.write();
        if topics.contains_key(name) {
            return Err(StreamError::TopicExists(name.to_string()));
        }
        let dir = self.inner.dir.join(name);
        if dir.exists() {
            // Left by a crash inside `create_topic`/`delete_topic` (open skipped it): its old
            // partitions must not reappear in the new topic.
            std::fs::remove_dir_all(&dir)?;
        }
        let topic = Topic::create(&dir, name, config, &self.inner.clock)?;
        topics.insert(name.to_string(), Arc::new(topic));
        Ok(())
    }

    /// Deletes a topic and its files.
    ///
    /// # Errors
    /// [`StreamError::UnknownTopic`]; [`StreamError::Io`].
    pub fn delete_topic(&self, name: &str) -> Result<(), StreamError> {
        let topic = self
            .inner
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| StreamError::UnknownTopic(name.to_string()))?;
        drop(topic);
        let dir = self.inner.dir.join(name);
        // Config first: a crash part-way leaves a directory that open skips, never a topic
        // with some of its partitions gone.
        std::fs::remove_file(dir.join(CONFIG_FILE))?;
        crate::log::sync_dir(&dir)?;
        std::fs::remove_dir_all(&dir)?;
        crate::log::sync_dir(&self.inner.dir)?;
        Ok(())
    }

    /// Topic names, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.topics.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// The topic `name`.
    ///
    /// # Errors
    /// [`StreamError::UnknownTopic`].
    pub fn topic(&self, name: &str) -> Result<Arc<Topic>, StreamError> {
        self.inner
            .topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| StreamError::UnknownTopic(name.to_string()))
    }

    /// Partitions of `topic`.
    ///
    /// # Errors
    /// [`StreamError::UnknownTopic`].
    pub fn partition_count(&self, topic: &str) -> Result<u32, StreamError> {
        Ok(self.topic(topic)?.partition_count())
    }

    /// The log of one partition.
    ///
    /// # Errors
    /// [`StreamError::UnknownTopic`] / [`StreamError::UnknownPartition`].
    pub fn log(&self, topic: &str, partition: u32) -> Result<Arc<PartitionLog>, StreamError> {
        Ok(self.topic(topic)?.partition(partition)?.clone())
    }

    /// Appends records to one partition as one batch (no producer batching).
    ///
    /// # Errors
    /// See [`PartitionLog::append_batch`].
    ///
    /// ```
    /// use keel_stream::{Record, Stream, TopicConfig};
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = Stream::builder().dir(dir.path()).build().unwrap();
    /// stream.create_topic("t", TopicConfig::default()).unwrap();
    /// let at = stream.append("t", 0, &[Record::new("a"), Record::new("b")]).unwrap();
    /// assert_eq!((at.base_offset, at.last_offset), (0, 1));
    /// ```
    pub fn append(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<AppendInfo, StreamError> {
        let log = self.log(topic, partition)?;
        let raw = batch::encode_batch(records, self.inner.clock.now_ms(), None)?;
        log.append_batch(raw, false)
    }

    /// Appends an encoded batch as an idempotent producer would (`producer` fields set).
    ///
    /// # Errors
    /// See [`PartitionLog::append_batch`].
    pub fn append_idempotent(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record],
        producer: ProducerInfo,
        sync: bool,
    ) -> Result<AppendInfo, StreamError> {
        let log = self.log(topic, partition)?;
        let raw = batch::encode_batch(records, self.inner.clock.now_ms(), Some(producer))?;
        log.append_batch(raw, sync)
    }

    /// Reads batches from `offset` (see [`PartitionLog::read`]).
    ///
    /// # Errors
    /// [`StreamError::OffsetOutOfRange`], [`StreamError::UnknownTopic`], … .
    pub fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<FetchedBatches, StreamError> {
        self.log(topic, partition)?.read(offset, max_bytes)
    }

    /// Resolves an [`OffsetSpec`] to an offset (Kafka's `ListOffsets`).
    ///
    /// # Errors
    /// [`StreamError::OffsetOutOfRange`] for `At` outside the log; lookup errors.
    pub fn resolve_offset(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<i64, StreamError> {
        let log = self.log(topic, partition)?;
        match spec {
            OffsetSpec::Earliest => Ok(log.log_start_offset()),
            OffsetSpec::Latest => Ok(log.log_end_offset()),
            OffsetSpec::Timestamp(ts) => Ok(log
                .offset_for_timestamp(ts)?
                .unwrap_or_else(|| log.log_end_offset())),
            OffsetSpec::At(o) => {
                let (start, end) = (log.log_start_offset(), log.log_end_offset());
                if o < start || o > end {
                    return Err(StreamError::OffsetOutOfRange {
                        requested: o,
                        earliest: start,
                        latest: end,
                    });
                }
                Ok(o)
            }
        }
    }

    /// A new idempotent producer id (persisted, so ids never repeat after a restart).
    ///
    /// # Errors
    /// [`StreamError::Io`] when the id file cannot be written, or when the ids are exhausted
    /// (a client-supplied producer id of `i64::MAX` is in the log).
    pub fn init_producer_id(&self) -> Result<i64, StreamError> {
        let mut next = self.inner.next_producer_id.lock();
        let id = *next;
        let following = id
            .checked_add(1)
            .ok_or_else(|| std::io::Error::other("producer ids exhausted"))?;
        let tmp = self.inner.dir.join("producer_id.tmp");
        std::fs::write(&tmp, following.to_string())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, self.inner.dir.join(PRODUCER_ID_FILE))?;
        crate::log::sync_dir(&self.inner.dir)?;
        *next = following;
        Ok(id)
    }

    /// Commits `(topic, partition, next offset)` for `group`, durably (fsynced).
    ///
    /// # Errors
    /// [`StreamError::UnknownTopic`] / [`StreamError::UnknownPartition`] /
    /// [`StreamError::OffsetOutOfRange`] (above the log end) / [`StreamError::Io`].
    pub fn commit(&self, group: &str, offsets: &[(String, u32, i64)]) -> Result<(), StreamError> {
        for (t, p, o) in offsets {
            let log = self.log(t, *p)?;
            let end = log.log_end_offset();
            if *o < 0 || *o > end {
                return Err(StreamError::OffsetOutOfRange {
                    requested: *o,
                    earliest: 0,
                    latest: end,
                });
            }
        }
        self.inner
            .offsets
            .commit(group, offsets, self.inner.clock.now_ms())?;
        self.inner
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The committed offset of `group` on a partition.
    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<i64> {
        self.inner.offsets.committed(group, topic, partition)
    }

    /// Groups with committed offsets.
    pub fn committed_groups(&self) -> Vec<String> {
        self.inner.offsets.groups()
    }

    /// Deletes a group's committed offsets; returns how many.
    ///
    /// # Errors
    /// [`StreamError::Io`].
    pub fn delete_group_offsets(&self, group: &str) -> Result<usize, StreamError> {
        self.inner
            .offsets
            .delete_group(group, self.inner.clock.now_ms())
    }

    /// Lag of `group` on every partition it subscribes to or has committed on.
    ///
    /// ```
    /// use keel_stream::{Record, Stream, TopicConfig};
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = Stream::builder().dir(dir.path()).build().unwrap();
    /// stream.create_topic("t", TopicConfig::default()).unwrap();
    /// stream.append("t", 0, &[Record::new("a"), Record::new("b"), Record::new("c")]).unwrap();
    /// stream.commit("g", &[("t".into(), 0, 1)]).unwrap();
    /// assert_eq!(stream.lag("g").total, 2);
    /// ```
    pub fn lag(&self, group: &str) -> GroupLag {
        let mut parts: std::collections::BTreeMap<TopicPartition, Option<i64>> = Default::default();
        for (t, n) in self.inner.coordinator.subscription(group) {
            for p in 0..n {
                parts.insert(TopicPartition::new(t.clone(), p), None);
            }
        }
        for (t, p, o) in self.inner.offsets.group_offsets(group) {
            parts.insert(TopicPartition::new(t, p), Some(o));
        }
        let mut out = GroupLag::default();
        for (tp, committed) in parts {
            let Ok(log) = self.log(&tp.topic, tp.partition) else {
                continue;
            };
            let end = log.log_end_offset();
            let from = committed
                .unwrap_or_else(|| log.log_start_offset())
                .max(log.log_start_offset());
            let lag = (end - from).max(0);
            out.total += lag;
            out.partitions.push(PartitionLag {
                partition: tp,
                committed,
                log_end: end,
                lag,
            });
        }
        out
    }

    /// The group coordinator.
    pub fn coordinator(&self) -> &GroupCoordinator {
        &self.inner.coordinator
    }

    /// Runs retention on every partition; returns segments deleted.
    ///
    /// # Errors
    /// [`StreamError::Io`].
    pub fn enforce_retention(&self) -> Result<usize, StreamError> {
        let topics: Vec<Arc<Topic>> = self.inner.topics.read().values().cloned().collect();
        let mut n = 0;
        for t in topics {
            for log in t.logs() {
                n += log.enforce_retention()?;
            }
        }
        Ok(n)
    }

    /// Compacts every partition of every topic configured with `compact(true)`.
    ///
    /// # Errors
    /// See [`PartitionLog::compact`].
    pub fn compact(&self) -> Result<crate::CompactionStats, StreamError> {
        let topics: Vec<Arc<Topic>> = self.inner.topics.read().values().cloned().collect();
        let mut total = crate::CompactionStats::default();
        for t in topics.iter().filter(|t| t.config().is_compacted()) {
            for log in t.logs() {
                let s = log.compact()?;
                total.segments_rewritten += s.segments_rewritten;
                total.records_removed += s.records_removed;
                total.bytes_before += s.bytes_before;
                total.bytes_after += s.bytes_after;
            }
        }
        Ok(total)
    }

    /// fsyncs partitions whose `Durability::Interval` time has come (call it from a timer);
    /// returns how many synced.
    ///
    /// # Errors
    /// [`StreamError::Io`].
    pub fn flush_due(&self) -> Result<usize, StreamError> {
        let topics: Vec<Arc<Topic>> = self.inner.topics.read().values().cloned().collect();
        let mut n = 0;
        for t in topics {
            for log in t.logs() {
                n += usize::from(log.flush_if_due()?);
            }
        }
        Ok(n)
    }

    /// A snapshot of the counters (summed over partitions).
    pub fn stats(&self) -> StreamStats {
        use std::sync::atomic::Ordering::Relaxed;
        let mut s = StreamStats::default();
        let topics: Vec<Arc<Topic>> = self.inner.topics.read().values().cloned().collect();
        s.topics = topics.len() as u64;
        for t in &topics {
            for log in t.logs() {
                let c = &log.counters;
                s.partitions += 1;
                s.appended_batches += c.batches.load(Relaxed);
                s.appended_records += c.records.load(Relaxed);
                s.appended_bytes += c.bytes.load(Relaxed);
                s.fsyncs += c.fsyncs.load(Relaxed);
                s.duplicate_batches += c.duplicates.load(Relaxed);
                s.segments_rolled += c.rolls.load(Relaxed);
                s.segments_deleted += c.segments_deleted.load(Relaxed);
                s.recovered_truncated_bytes += c.recovered_truncated_bytes.load(Relaxed);
                s.log_bytes += log.size_bytes();
            }
        }
        s.offset_commits = self.inner.commits.load(Relaxed);
        let g = &self.inner.coordinator.counters;
        s.groups = self.inner.coordinator.groups().len() as u64;
        s.rebalances = g.rebalances.load(Relaxed);
        s.revocations = g.revocations.load(Relaxed);
        s.evictions = g.evictions.load(Relaxed);
        s.static_rejoins = g.static_rejoins.load(Relaxed);
        s.offsets_log_bytes = self.inner.offsets.log().size_bytes();
        s
    }

    /// The clock's time in ms.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }
}
