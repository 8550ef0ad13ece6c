//! An idempotent-consumer helper: remembers the last `window` record identities
//! (topic, partition, offset, key) and reports redeliveries.
//!
//! At-least-once delivery redelivers records after a crash or a rebalance (everything after
//! the last commit). Two ways to make processing idempotent:
//!
//! 1. Store the consumed offset *in the same transaction* as the effect (e.g. a row
//!    `(topic, partition) → offset` in the database you write to) and skip records at or
//!    below it — exact and durable, what Kafka Streams and Flink sinks do.
//! 2. Keep a window of recently processed ids in memory ([`Deduplicator`]) — cheap, catches
//!    the redeliveries of a rebalance within one process, forgets on restart and after
//!    `window` newer records.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use crate::consumer::ConsumedRecord;
use crate::error::BuildError;

type Id = (String, u32, i64, Option<Bytes>);

/// A bounded window of processed record ids. Memory: `window` ids.
#[derive(Debug)]
pub struct Deduplicator {
    window: usize,
    order: VecDeque<Id>,
    seen: HashSet<Id>,
}

impl Deduplicator {
    /// Remembers the last `window` records.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for a zero or absurd (> 100 M) window.
    pub fn new(window: usize) -> Result<Self, BuildError> {
        if window == 0 || window > 100_000_000 {
            return Err(BuildError::Invalid {
                name: "window",
                reason: "must be between 1 and 100000000",
            });
        }
        Ok(Self {
            window,
            order: VecDeque::new(),
            seen: HashSet::new(),
        })
    }

    /// `true` the first time a record is seen (process it), `false` for a redelivery within
    /// the window (skip it).
    ///
    /// ```
    /// use keel_stream::{ConsumedRecord, Deduplicator, StoredRecord};
    /// let rec = ConsumedRecord { topic: "t".into(), partition: 0, record: StoredRecord {
    ///     offset: 7, timestamp: 0, key: None, value: None, headers: vec![] } };
    /// let mut d = Deduplicator::new(100).unwrap();
    /// assert!(d.first_seen(&rec));
    /// assert!(!d.first_seen(&rec));
    /// ```
    pub fn first_seen(&mut self, r: &ConsumedRecord) -> bool {
        let id: Id = (
            r.topic.clone(),
            r.partition,
            r.record.offset,
            r.record.key.clone(),
        );
        if self.seen.contains(&id) {
            return false;
        }
        if self.order.len() == self.window
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(id.clone());
        self.order.push_back(id);
        true
    }

    /// Ids remembered now (≤ window).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
