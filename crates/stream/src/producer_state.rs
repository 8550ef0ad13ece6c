//! Idempotent-producer state per partition: for each producer id, its epoch and the sequence
//! ranges of its last [`RECENT_BATCHES`] batches (Kafka keeps 5, matching
//! `max.in.flight.requests.per.connection = 5`).
//!
//! A batch whose `(first, last)` sequence equals a recent one is a retry: the log answers with
//! the offsets it already has and writes nothing. A batch that does not start right after the
//! last sequence is out of order (a gap means a lost batch; accepting it would reorder).
//! The state is rebuilt from batch headers on open, so it survives a crash.

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::error::StreamError;

/// Batches remembered per producer.
pub(crate) const RECENT_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy)]
struct SeenBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug)]
struct Entry {
    epoch: i16,
    recent: VecDeque<SeenBatch>,
    last_ms: i64,
}

/// Producer id → entry. Entries idle longer than the TTL are dropped (bounded memory).
#[derive(Debug, Default)]
pub(crate) struct ProducerTable {
    entries: HashMap<i64, Entry>,
}

impl ProducerTable {
    /// `Ok(Some((base, last)))` for a duplicate, `Ok(None)` to append, or the rejection.
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<Option<(i64, i64)>, StreamError> {
        if h.producer_id < 0 {
            return Ok(None);
        }
        let Some(e) = self.entries.get(&h.producer_id) else {
            return Ok(None);
        };
        if h.producer_epoch < e.epoch {
            return Err(StreamError::ProducerFenced {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: e.epoch,
            });
        }
        if h.producer_epoch > e.epoch {
            return Ok(None);
        }
        if let Some(b) = e
            .recent
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(Some((b.base_offset, b.last_offset)));
        }
        let expected = e
            .recent
            .back()
            .map_or(h.base_sequence, |b| b.last_seq.wrapping_add(1));
        if h.base_sequence != expected {
            return Err(StreamError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected,
                got: h.base_sequence,
            });
        }
        Ok(None)
    }

    /// Records an appended batch (its header carries the assigned base offset).
    pub(crate) fn record(&mut self, h: &BatchHeader, now_ms: i64) {
        if h.producer_id < 0 {
            return;
        }
        let e = self.entries.entry(h.producer_id).or_insert(Entry {
            epoch: h.producer_epoch,
            recent: VecDeque::with_capacity(RECENT_BATCHES),
            last_ms: now_ms,
        });
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.recent.clear();
        }
        if e.recent.len() == RECENT_BATCHES {
            e.recent.pop_front();
        }
        e.recent.push_back(SeenBatch {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        e.last_ms = e.last_ms.max(now_ms);
    }

    /// Drops producers idle since before `cutoff_ms`.
    pub(crate) fn expire(&mut self, cutoff_ms: i64) {
        self.entries.retain(|_, e| e.last_ms >= cutoff_ms);
    }

    /// Number of producers tracked.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Largest producer id seen (to keep ids unique across restarts).
    pub(crate) fn max_id(&self) -> Option<i64> {
        self.entries.keys().copied().max()
    }
}
