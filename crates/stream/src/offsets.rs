//! Committed consumer offsets, stored durably in an internal log (`__consumer_offsets`, one
//! partition), the way Kafka keeps them in a topic.
//!
//! Each commit appends one batch (fsynced before `commit` returns) of records keyed
//! `group \0 topic \0 partition` with the offset as an 8-byte big-endian value; deleting a
//! group writes tombstones. On open the log is replayed into a map. Instead of Kafka's log
//! compaction, when the log rolls to a new segment the store writes a snapshot of the whole
//! map into the new segment and deletes the older segments, so the file stays about one
//! segment long and replay stays short.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::batch::{self, Record};
use crate::clock::SharedClock;
use crate::error::{GroupError, StreamError};
use crate::log::PartitionLog;
use crate::topic::{Durability, TopicConfig};

/// Directory of the internal log under the stream's directory.
pub(crate) const OFFSETS_DIR: &str = "__consumer_offsets";

/// Batch size limit of the internal log.
const MAX_BATCH_BYTES: usize = 1 << 20;

type Key = (String, String, u32);

#[derive(Debug)]
pub(crate) struct OffsetStore {
    log: PartitionLog,
    map: Mutex<HashMap<Key, i64>>,
}

fn encode_key(k: &Key) -> Bytes {
    Bytes::from(format!("{}\0{}\0{}", k.0, k.1, k.2))
}

fn decode_key(b: &[u8]) -> Option<Key> {
    let s = std::str::from_utf8(b).ok()?;
    let mut it = s.split('\0');
    let (g, t, p) = (it.next()?, it.next()?, it.next()?.parse().ok()?);
    Some((g.to_string(), t.to_string(), p))
}

impl OffsetStore {
    pub(crate) fn open(
        dir: &Path,
        clock: SharedClock,
        segment_bytes: u64,
    ) -> Result<Self, StreamError> {
        let config = TopicConfig::builder()
            .segment_bytes(segment_bytes)
            .segment_age(Duration::MAX)
            .retention(None)
            .durability(Durability::EveryBatch)
            .max_batch_bytes(MAX_BATCH_BYTES)
            .build()
            .expect("valid internal config");
        let log = PartitionLog::open(&dir.join(OFFSETS_DIR).join("0"), config, clock)?;
        let mut map = HashMap::new();
        let mut at = log.log_start_offset();
        loop {
            let f = log.read(at, 1 << 20)?;
            if f.is_empty() {
                break;
            }
            for r in f.records()? {
                let Some(k) = r.key.as_deref().and_then(decode_key) else {
                    continue;
                };
                match r.value.as_deref().and_then(|v| <[u8; 8]>::try_from(v).ok()) {
                    Some(v) => map.insert(k, i64::from_be_bytes(v)),
                    None => map.remove(&k),
                };
            }
            at = f.next_offset();
        }
        Ok(Self {
            log,
            map: Mutex::new(map),
        })
    }

    /// Durably records `offsets` for `group` (one fsynced batch), then updates the map.
    pub(crate) fn commit(
        &self,
        group: &str,
        offsets: &[(String, u32, i64)],
        now_ms: i64,
    ) -> Result<(), StreamError> {
        if offsets.is_empty() {
            return Ok(());
        }
        // The key is `group \0 topic \0 partition`: a nul in the group would not replay.
        if group.contains('\0') {
            return Err(GroupError::Invalid("group id contains a nul byte").into());
        }
        let mut map = self.map.lock();
        let records: Vec<Record> = offsets
            .iter()
            .map(|(t, p, o)| Record {
                key: Some(encode_key(&(group.to_string(), t.clone(), *p))),
                value: Some(Bytes::copy_from_slice(&o.to_be_bytes())),
                ..Record::default()
            })
            .collect();
        self.append_chunked(&records, now_ms)?;
        for (t, p, o) in offsets {
            map.insert((group.to_string(), t.clone(), *p), *o);
        }
        if self.log.segment_count() > 1 {
            self.snapshot(&map, now_ms)?;
        }
        Ok(())
    }

    /// Appends `records` as fsynced batches that each stay under the internal log's batch limit
    /// (cut by encoded size, not by count: keys can be long).
    fn append_chunked(&self, records: &[Record], now_ms: i64) -> Result<(), StreamError> {
        let limit = MAX_BATCH_BYTES - batch::BATCH_HEADER_LEN;
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut bytes = 0usize;
            while end < records.len() {
                let size = records[end].encoded_size_bound();
                if end > start && bytes + size > limit {
                    break;
                }
                bytes += size;
                end += 1;
            }
            self.log.append_batch(
                batch::encode_batch(&records[start..end], now_ms, None)?,
                true,
            )?;
            start = end;
        }
        Ok(())
    }

    /// Writes every current offset into the active segment, then drops older segments.
    fn snapshot(&self, map: &HashMap<Key, i64>, now_ms: i64) -> Result<(), StreamError> {
        let start = self.log.log_end_offset();
        let records: Vec<Record> = map
            .iter()
            .map(|(k, o)| Record {
                key: Some(encode_key(k)),
                value: Some(Bytes::copy_from_slice(&o.to_be_bytes())),
                ..Record::default()
            })
            .collect();
        self.append_chunked(&records, now_ms)?;
        self.log.delete_segments_before(start)?;
        Ok(())
    }

    pub(crate) fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<i64> {
        self.map
            .lock()
            .get(&(group.to_string(), topic.to_string(), partition))
            .copied()
    }

    /// All `(topic, partition, offset)` committed by `group`.
    pub(crate) fn group_offsets(&self, group: &str) -> Vec<(String, u32, i64)> {
        let mut v: Vec<_> = self
            .map
            .lock()
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, o)| (k.1.clone(), k.2, *o))
            .collect();
        v.sort();
        v
    }

    /// Groups with at least one committed offset.
    pub(crate) fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self.map.lock().keys().map(|k| k.0.clone()).collect();
        g.sort();
        g.dedup();
        g
    }

    /// Forgets a group's offsets (tombstones, fsynced).
    pub(crate) fn delete_group(&self, group: &str, now_ms: i64) -> Result<usize, StreamError> {
        let mut map = self.map.lock();
        let keys: Vec<Key> = map.keys().filter(|k| k.0 == group).cloned().collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let records: Vec<Record> = keys
            .iter()
            .map(|k| Record {
                key: Some(encode_key(k)),
                ..Record::default()
            })
            .collect();
        self.append_chunked(&records, now_ms)?;
        for k in &keys {
            map.remove(k);
        }
        Ok(keys.len())
    }

    pub(crate) fn log(&self) -> &PartitionLog {
        &self.log
    }
}
