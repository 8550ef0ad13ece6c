//! The log of one partition: a list of segments, one writer, any number of readers.
//!
//! # Concurrency
//!
//! Appends are serialised by `writer` (a mutex that readers never take). The file write and the
//! fsync happen under `writer` only; the writer then takes `view`'s write lock for a few
//! instructions to publish the new size, index entry and log end. A reader takes `view`'s read
//! lock just long enough to binary-search the index and clone the segment's `Arc<File>`, then
//! reads with `pread` outside every lock — so a slow reader never holds up a writer, and a
//! reader only ever sees whole, published batches. Retention unlinks files that readers may
//! still hold open; on Unix their reads keep working.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::batch::{self, BatchHeader, StoredRecord, decode_batch, set_base_offset, split_batches};
use crate::clock::{SharedClock, millis};
use crate::error::StreamError;
use crate::producer_state::ProducerTable;
use crate::segment::{self, Segment, read_range};
use crate::topic::{Durability, TopicConfig};

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record of the batch.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// `true` when an idempotent producer's retry matched a batch already in the log: nothing
    /// was written and the offsets are the original ones.
    pub duplicate: bool,
    /// Whether the batch was fsynced before this call returned.
    pub synced: bool,
}

/// Batches read from a partition, exactly as stored (Kafka record batch v2, concatenated).
///
/// `bytes` can go into a Kafka `Fetch` response as it is. The first batch may start before
/// `requested_offset` (a batch is never split); [`records`](Self::records) skips those records.
#[derive(Debug, Clone)]
pub struct FetchedBatches {
    /// Whole batches, as on disk.
    pub bytes: Bytes,
    /// The offset asked for.
    pub requested_offset: i64,
    /// Log end offset when the read started (next offset to be written).
    pub high_watermark: i64,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// The segment file read (for error messages).
    pub(crate) path: PathBuf,
    /// Position of `bytes` in that file.
    pub(crate) position: u64,
}

impl FetchedBatches {
    /// Decodes the records at or after `requested_offset`, checking every batch's CRC.
    ///
    /// # Errors
    /// [`StreamError::CorruptSegment`] when a batch fails its CRC or does not parse;
    /// [`StreamError::Unsupported`] for a compressed batch.
    pub fn records(&self) -> Result<Vec<StoredRecord>, StreamError> {
        let mut out = Vec::new();
        let mut pos = self.position;
        for b in split_batches(&self.bytes) {
            let b = b.map_err(|e| self.corrupt(pos, e))?;
            let len = b.len() as u64;
            let recs = decode_batch(&b).map_err(|e| self.corrupt(pos, e))?;
            out.extend(
                recs.into_iter()
                    .filter(|r| r.offset >= self.requested_offset),
            );
            pos += len;
        }
        Ok(out)
    }

    fn corrupt(&self, position: u64, e: StreamError) -> StreamError {
        match e {
            StreamError::CorruptBatch(reason) => StreamError::CorruptSegment {
                path: self.path.clone(),
                position,
                reason,
            },
            other => other,
        }
    }

    /// The offset to fetch next: one past the last batch returned, or `requested_offset`.
    pub fn next_offset(&self) -> i64 {
        split_batches(&self.bytes)
            .filter_map(Result::ok)
            .last()
            .and_then(|b| BatchHeader::parse(&b).ok())
            .map_or(self.requested_offset, |h| h.last_offset() + 1)
    }

    /// `true` when nothing was read (the offset is at the log end).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What one [`PartitionLog::compact`] run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Sealed segments rewritten.
    pub segments_rewritten: u64,
    /// Records dropped (superseded values and expired tombstones).
    pub records_removed: u64,
    /// Bytes of the rewritten segments before.
    pub bytes_before: u64,
    /// Their bytes after.
    pub bytes_after: u64,
}

/// Counters of one partition log.
#[derive(Debug, Default)]
pub(crate) struct LogCounters {
    pub(crate) batches: AtomicU64,
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) rolls: AtomicU64,
    pub(crate) segments_deleted: AtomicU64,
    pub(crate) recovered_truncated_bytes: AtomicU64,
}

#[derive(Debug)]
struct View {
    segments: Vec<Segment>,
}

impl View {
    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }
    fn log_start(&self) -> i64 {
        self.segments[0].base_offset
    }
}

#[derive(Debug)]
struct Writer {
    producers: ProducerTable,
    last_sync_ms: i64,
    unsynced: bool,
    /// Clock reading of the last idle-producer expiry.
    last_expire_ms: i64,
}

/// An append-only, segmented, crash-recovering log of one partition.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: TopicConfig,
    clock: SharedClock,
    view: RwLock<View>,
    writer: Mutex<Writer>,
    pub(crate) counters: LogCounters,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`, recovering from a crash.
    ///
    /// Recovery walks every segment's batch headers to rebuild the indexes and the
    /// idempotent-producer table; the last segment is also checked batch by batch with the
    /// CRC. A torn or corrupt tail of the last segment is truncated (counted in
    /// `recovered_truncated_bytes`); damage in any earlier segment is an error, because those
    /// were fsynced before the roll and cannot be torn by a crash.
    ///
    /// # Errors
    /// [`StreamError::CorruptSegment`] for a damaged sealed segment; [`StreamError::Io`].
    pub fn open(dir: &Path, config: TopicConfig, clock: SharedClock) -> Result<Self, StreamError> {
        create_dir_durable(dir)?;
        let files = segment::list(dir)?;
        let mut producers = ProducerTable::default();
        let mut segments: Vec<Segment> = Vec::with_capacity(files.len().max(1));
        let counters = LogCounters::default();
        let last = files.len().saturating_sub(1);
        for (i, (base, path)) in files.into_iter().enumerate() {
            if let Some(prev) = segments.last()
                && prev.next_offset != base
            {
                return Err(StreamError::CorruptSegment {
                    path,
                    position: 0,
                    reason: "segment base offset does not follow the previous segment",
                });
            }
            let now = clock.now_ms();
            let (seg, problem) =
                Segment::open(path.clone(), base, i == last, |h| producers.record(h, now))?;
            if let Some(p) = problem {
                if i != last {
                    return Err(StreamError::CorruptSegment {
                        path,
                        position: p.position,
                        reason: p.reason,
                    });
                }
                let len = seg.file.metadata()?.len();
                seg.truncate_file(p.position)?;
                counters
                    .recovered_truncated_bytes
                    .store(len - p.position, Ordering::Relaxed);
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0)?);
            sync_dir(dir)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            clock: clock.clone(),
            view: RwLock::new(View { segments }),
            writer: Mutex::new(Writer {
                producers,
                last_sync_ms: clock.now_ms(),
                unsynced: false,
                last_expire_ms: clock.now_ms(),
            }),
            counters,
            config,
        })
    }

    /// Encodes `records` as one batch and appends it.
    ///
    /// # Errors
    /// See [`append_batch`](Self::append_batch).
    pub fn append(&self, records: &[crate::Record]) -> Result<AppendInfo, StreamError> {
        let raw = batch::encode_batch(records, self.clock.now_ms(), None)?;
        self.append_batch(raw, false)
    }

    /// Appends one encoded record batch (v2) — the path a Kafka `Produce` takes.
    ///
    /// The batch's CRC is verified, its base offset is set to the log end, and it is written
    /// as it is. With `force_sync` (acks = durable) the call returns only after an fsync,
    /// whatever the topic's durability policy.
    ///
    /// # Errors
    /// [`StreamError::RecordTooLarge`] above `max_batch_bytes`; [`StreamError::CorruptBatch`];
    /// [`StreamError::OutOfOrderSequence`] / [`StreamError::ProducerFenced`] for idempotent
    /// producers; [`StreamError::Io`].
    pub fn append_batch(
        &self,
        mut raw: Vec<u8>,
        force_sync: bool,
    ) -> Result<AppendInfo, StreamError> {
        if raw.len() > self.config.max_batch_bytes {
            return Err(StreamError::RecordTooLarge {
                size: raw.len(),
                max: self.config.max_batch_bytes,
            });
        }
        let mut h = batch::validate_batch(&raw)?;
        // The log end moves by `lastOffsetDelta + 1`: a header that claims more offsets than it
        // has records would open holes of up to 2^31 offsets and overflow the segment index.
        if h.record_count < 1 || i64::from(h.last_offset_delta) != i64::from(h.record_count) - 1 {
            return Err(StreamError::CorruptBatch(
                "last offset delta does not match the record count",
            ));
        }
        let mut w = self.writer.lock();
        if let Some((base, last)) = w.producers.check(&h)? {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(AppendInfo {
                base_offset: base,
                last_offset: last,
                duplicate: true,
                synced: false,
            });
        }
        let now = self.clock.now_ms();
        let (file, position, next) = {
            let v = self.view.read();
            let a = v.active();
            let age = a.first_append_ms.map_or(0, |t| now.saturating_sub(t));
            let full = a.size > 0 && a.size + raw.len() as u64 > self.config.segment_bytes;
            let old = a.size > 0 && age >= millis(self.config.segment_age);
            if full || old {
                drop(v);
                self.roll_locked(&mut w)?;
                let v = self.view.read();
                (
                    v.active().file.clone(),
                    v.active().size,
                    v.active().next_offset,
                )
            } else {
                (a.file.clone(), a.size, a.next_offset)
            }
        };
        set_base_offset(&mut raw, next);
        h.base_offset = next;
        file.write_all_at(&raw, position)?;
        w.unsynced = true;
        let sync = force_sync
            || match self.config.durability {
                Durability::EveryBatch => true,
                Durability::Interval(d) => now.saturating_sub(w.last_sync_ms) >= millis(d),
                Durability::Never => false,
            };
        if sync {
            file.sync_data()?;
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            w.last_sync_ms = now;
            w.unsynced = false;
        }
        self.view.write().active_mut().push(&h, position, Some(now));
        w.producers.record(&h, now);
        // Expire idle producers at most once per TTL (a roll also does): between rolls the
        // table would otherwise keep every producer id ever seen.
        let ttl = millis(self.config.producer_state_ttl);
        if now.saturating_sub(w.last_expire_ms) >= ttl {
            w.producers.expire(now.saturating_sub(ttl));
            w.last_expire_ms = now;
        }
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .records
            .fetch_add(h.record_count as u64, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(raw.len() as u64, Ordering::Relaxed);
        Ok(AppendInfo {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            duplicate: false,
            synced: sync,
        })
    }

    fn roll_locked(&self, w: &mut Writer) -> Result<(), StreamError> {
        let (old, next) = {
            let v = self.view.read();
            (v.active().file.clone(), v.active().next_offset)
        };
        if self.config.durability != Durability::Never {
            old.sync_data()?;
            w.unsynced = false;
        }
        let seg = Segment::create(&self.dir, next)?;
        if self.config.durability != Durability::Never {
            sync_dir(&self.dir)?;
        }
        self.view.write().segments.push(seg);
        self.counters.rolls.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now_ms();
        w.producers
            .expire(now.saturating_sub(millis(self.config.producer_state_ttl)));
        drop(self.enforce_retention_locked());
        Ok(())
    }

    /// Starts a new segment now (if the active one holds anything).
    ///
    /// # Errors
    /// [`StreamError::Io`].
    pub fn roll(&self) -> Result<(), StreamError> {
        let mut w = self.writer.lock();
        if self.view.read().active().size == 0 {
            return Ok(());
        }
        self.roll_locked(&mut w)
    }

    /// Deletes whole sealed segments beyond the retention size or older than the retention
    /// time (by their largest record timestamp). The active segment is never deleted.
    /// Returns the number of segments deleted.
    ///
    /// # Errors
    /// [`StreamError::Io`] when a file cannot be removed.
    pub fn enforce_retention(&self) -> Result<usize, StreamError> {
        let _w = self.writer.lock();
        self.enforce_retention_locked()
    }

    fn enforce_retention_locked(&self) -> Result<usize, StreamError> {
        let now = self.clock.now_ms();
        let removed: Vec<Segment> = {
            let mut v = self.view.write();
            let mut total: u64 = v.segments.iter().map(|s| s.size).sum();
            let mut n = 0;
            while n + 1 < v.segments.len() {
                let s = &v.segments[n];
                let too_old = self
                    .config
                    .retention
                    .is_some_and(|r| s.size > 0 && s.max_timestamp < now.saturating_sub(millis(r)));
                let too_big = self
                    .config
                    .retention_bytes
                    .is_some_and(|r| total - s.size >= r);
                if !(too_old || too_big) {
                    break;
                }
                total -= s.size;
                n += 1;
            }
            v.segments.drain(..n).collect()
        };
        for s in &removed {
            std::fs::remove_file(&s.path)?;
        }
        self.counters
            .segments_deleted
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        Ok(removed.len())
    }

    /// Compacts the sealed segments by key: keeps the latest record of every key (and every
    /// keyless record), drops tombstones older than `tombstone_retention`, and rewrites each
    /// segment whose content shrinks. The active segment is not touched.
    ///
    /// Offsets never change: a rewritten segment still covers the same offset range, its
    /// records keep their offsets (batches with sparse offset deltas, possibly empty), so
    /// positions, commits and the offset index stay valid. Each segment is written to a
    /// `.cleaned` file, fsynced and renamed over the original (atomic), so a crash leaves either
    /// the old or the new segment. Segments holding compressed or control batches are left as
    /// they are. Appends wait while compaction runs (it holds the writer lock); readers do not.
    /// Memory: one map entry per distinct key.
    ///
    /// # Errors
    /// [`StreamError::CorruptSegment`] / [`StreamError::Io`].
    pub fn compact(&self) -> Result<CompactionStats, StreamError> {
        let _w = self.writer.lock();
        let now = self.clock.now_ms();
        let tombstone_cutoff = now.saturating_sub(millis(self.config.tombstone_retention));
        let sealed: Vec<(usize, Arc<File>, PathBuf, i64, i64, u64)> = {
            let v = self.view.read();
            v.segments[..v.segments.len() - 1]
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        i,
                        s.file.clone(),
                        s.path.clone(),
                        s.base_offset,
                        s.next_offset,
                        s.size,
                    )
                })
                .collect()
        };
        let mut stats = CompactionStats::default();
        // Pass 1: the latest offset of every key, over the whole log.
        let mut latest: std::collections::HashMap<Bytes, i64> = std::collections::HashMap::new();
        let mut at = self.log_start_offset();
        loop {
            let f = self.read(at, 4 << 20)?;
            if f.is_empty() {
                break;
            }
            match f.records() {
                Ok(recs) => {
                    for r in recs {
                        if let Some(k) = r.key {
                            latest.insert(k, r.offset);
                        }
                    }
                }
                Err(StreamError::Unsupported(_)) => {}
                Err(e) => return Err(e),
            }
            at = f.next_offset();
        }
        // Pass 2: rewrite each sealed segment.
        for (i, file, path, base, next, size) in sealed {
            let raw = Bytes::from(read_range(&file, &path, 0, size)?);
            let mut kept = Vec::new();
            let mut total = 0usize;
            let mut skip = false;
            for b in split_batches(&raw) {
                let b = b?;
                let h = BatchHeader::parse(&b)?;
                if h.attributes != 0 {
                    skip = true;
                    break;
                }
                for r in decode_batch(&b).map_err(|e| match e {
                    StreamError::CorruptBatch(reason) => StreamError::CorruptSegment {
                        path: path.clone(),
                        position: 0,
                        reason,
                    },
                    e => e,
                })? {
                    total += 1;
                    let newest = r
                        .key
                        .as_ref()
                        .is_none_or(|k| latest.get(k) == Some(&r.offset));
                    let live_tombstone = r.value.is_some() || r.timestamp >= tombstone_cutoff;
                    if newest && live_tombstone {
                        kept.push(r);
                    }
                }
            }
            if skip || kept.len() == total {
                continue;
            }
            let kept_count = kept.len();
            let empty_ts = self
                .view
                .read()
                .segments
                .get(i)
                .map_or(now, |s| s.max_timestamp.max(0));
            let mut out = Vec::with_capacity(raw.len() / 2);
            let mut chunk: Vec<StoredRecord> = Vec::new();
            let mut chunk_bytes = 0usize;
            let mut chunk_base = base;
            let limit = self.config.max_batch_bytes / 2;
            for r in kept {
                let size = r.key.as_ref().map_or(0, Bytes::len)
                    + r.value.as_ref().map_or(0, Bytes::len)
                    + 32;
                if !chunk.is_empty() && chunk_bytes + size > limit {
                    let last = r.offset - 1;
                    out.extend_from_slice(&batch::encode_compacted(
                        chunk_base, last, &chunk, empty_ts,
                    )?);
                    chunk.clear();
                    chunk_bytes = 0;
                    chunk_base = r.offset;
                }
                chunk_bytes += size;
                chunk.push(r);
            }
            out.extend_from_slice(&batch::encode_compacted(
                chunk_base,
                next - 1,
                &chunk,
                empty_ts,
            )?);
            let tmp = path.with_extension("log.cleaned");
            std::fs::write(&tmp, &out)?;
            File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)?;
            let (mut seg, problem) = Segment::open(path.clone(), base, true, |_| {})?;
            if let Some(p) = problem {
                return Err(StreamError::CorruptSegment {
                    path,
                    position: p.position,
                    reason: p.reason,
                });
            }
            let mut v = self.view.write();
            if let Some(old) = v.segments.get(i).filter(|s| s.base_offset == base) {
                seg.first_append_ms = old.first_append_ms;
                v.segments[i] = seg;
            }
            stats.segments_rewritten += 1;
            stats.records_removed += (total - kept_count) as u64;
            stats.bytes_before += size;
            stats.bytes_after += out.len() as u64;
        }
        Ok(stats)
    }

    /// Deletes sealed segments that end at or before `offset` (all their records are below
    /// it). The offsets store uses this after writing a snapshot. Returns how many went.
    ///
    /// # Errors
    /// [`StreamError::Io`] when a file cannot be removed.
    pub fn delete_segments_before(&self, offset: i64) -> Result<usize, StreamError> {
        let _w = self.writer.lock();
        let removed: Vec<Segment> = {
            let mut v = self.view.write();
            let n = v.segments[..v.segments.len() - 1]
                .iter()
                .take_while(|s| s.next_offset <= offset)
                .count();
            v.segments.drain(..n).collect()
        };
        for s in &removed {
            std::fs::remove_file(&s.path)?;
        }
        self.counters
            .segments_deleted
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        Ok(removed.len())
    }

    /// Reads whole batches from the one holding `offset`, up to about `max_bytes` (at least
    /// one batch). Reading at the log end returns nothing.
    ///
    /// # Errors
    /// [`StreamError::OffsetOutOfRange`] below the log start or above the log end;
    /// [`StreamError::CorruptSegment`] when the file is shorter than its index.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<FetchedBatches, StreamError> {
        let (file, path, start, end, hw, ls) = {
            let v = self.view.read();
            let (ls, hw) = (v.log_start(), v.active().next_offset);
            if offset < ls || offset > hw {
                return Err(StreamError::OffsetOutOfRange {
                    requested: offset,
                    earliest: ls,
                    latest: hw,
                });
            }
            let si = v.segments.partition_point(|s| s.base_offset <= offset) - 1;
            let seg = &v.segments[si];
            match seg
                .batch_for_offset(offset)
                .filter(|_| offset < seg.next_offset)
            {
                None => {
                    let path = seg.path.clone();
                    return Ok(FetchedBatches {
                        bytes: Bytes::new(),
                        requested_offset: offset,
                        high_watermark: hw,
                        log_start_offset: ls,
                        path,
                        position: seg.size,
                    });
                }
                Some(bi) => {
                    let (start, end) = seg.range_from(bi, max_bytes);
                    (seg.file.clone(), seg.path.clone(), start, end, hw, ls)
                }
            }
        };
        let buf = read_range(&file, &path, start, end)?;
        Ok(FetchedBatches {
            bytes: Bytes::from(buf),
            requested_offset: offset,
            high_watermark: hw,
            log_start_offset: ls,
            path,
            position: start,
        })
    }

    /// The first offset whose record timestamp is at least `ts`, or `None` if every record is
    /// older (Kafka's `ListOffsets` by timestamp).
    ///
    /// # Errors
    /// [`StreamError::CorruptSegment`] / [`StreamError::Io`] when the found batch cannot be read.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<i64>, StreamError> {
        let found = {
            let v = self.view.read();
            v.segments
                .iter()
                .find(|s| s.max_timestamp >= ts)
                .and_then(|s| {
                    let bi = s.batch_for_timestamp(ts)?;
                    let start = u64::from(s.index[bi].position);
                    Some((
                        s.file.clone(),
                        s.path.clone(),
                        start,
                        s.batch_end(bi),
                        s.base_offset,
                        s.index[bi],
                    ))
                })
        };
        let Some((file, path, start, end, base, entry)) = found else {
            return Ok(None);
        };
        let raw = Bytes::from(read_range(&file, &path, start, end)?);
        let corrupt = |reason| StreamError::CorruptSegment {
            path: path.clone(),
            position: start,
            reason,
        };
        match decode_batch(&raw) {
            Ok(recs) => match recs.iter().find(|r| r.timestamp >= ts) {
                Some(r) => Ok(Some(r.offset)),
                // Compaction can leave a batch whose qualifying records are gone: scan on.
                None => {
                    let mut at = BatchHeader::parse(&raw)?.last_offset() + 1;
                    loop {
                        let f = self.read(at, 1 << 20)?;
                        if f.is_empty() {
                            return Ok(None);
                        }
                        if let Some(r) = f.records()?.into_iter().find(|r| r.timestamp >= ts) {
                            return Ok(Some(r.offset));
                        }
                        at = f.next_offset();
                    }
                }
            },
            Err(StreamError::Unsupported(_)) => Ok(Some(base + i64::from(entry.offset_delta))),
            Err(StreamError::CorruptBatch(r)) => Err(corrupt(r)),
            Err(e) => Err(e),
        }
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.view.read().log_start()
    }

    /// The log end: the offset the next record will get (Kafka's high watermark on one node).
    pub fn log_end_offset(&self) -> i64 {
        self.view.read().active().next_offset
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.view.read().segments.len()
    }

    /// Bytes on disk over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.view.read().segments.iter().map(|s| s.size).sum()
    }

    /// `(base offset, size)` of the active segment (tests use it to aim crashes).
    pub fn active_segment(&self) -> (i64, u64, PathBuf) {
        let v = self.view.read();
        (
            v.active().base_offset,
            v.active().size,
            v.active().path.clone(),
        )
    }

    /// Paths of all segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.view
            .read()
            .segments
            .iter()
            .map(|s| s.path.clone())
            .collect()
    }

    /// Idempotent producers tracked.
    pub fn producer_count(&self) -> usize {
        self.writer.lock().producers.len()
    }

    pub(crate) fn max_producer_id(&self) -> Option<i64> {
        self.writer.lock().producers.max_id()
    }

    /// fsyncs the active segment if anything is unsynced (the `Interval` policy's timer and
    /// shutdown call this).
    ///
    /// # Errors
    /// [`StreamError::Io`].
    pub fn flush(&self) -> Result<(), StreamError> {
        let mut w = self.writer.lock();
        if w.unsynced {
            let file: Arc<File> = self.view.read().active().file.clone();
            file.sync_data()?;
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            w.unsynced = false;
            w.last_sync_ms = self.clock.now_ms();
        }
        Ok(())
    }

    /// fsync if the `Interval` policy's time has come; returns whether it synced.
    ///
    /// # Errors
    /// [`StreamError::Io`].
    pub fn flush_if_due(&self) -> Result<bool, StreamError> {
        let Durability::Interval(d) = self.config.durability else {
            return Ok(false);
        };
        let due = {
            let w = self.writer.lock();
            w.unsynced && self.clock.now_ms().saturating_sub(w.last_sync_ms) >= millis(d)
        };
        if due {
            self.flush()?;
        }
        Ok(due)
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        if self.config.durability != Durability::Never {
            let _ = self.flush();
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StreamError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// `create_dir_all` that also fsyncs the parent of every directory it created, so a crash
/// cannot forget the new directory's name (and with it every segment acknowledged inside).
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), StreamError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    std::fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        match d.parent() {
            Some(p) if p.as_os_str().is_empty() => sync_dir(Path::new("."))?,
            Some(p) => sync_dir(p)?,
            None => {}
        }
    }
    Ok(())
}
