//! Dead-letter handling: a record whose handler fails `max_attempts` times (an error or a
//! panic) is written to a dead-letter topic with headers naming the error, so one poison
//! record does not block its partition forever.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;

use crate::batch::{Header, Record};
use crate::consumer::ConsumedRecord;
use crate::error::{BuildError, StreamError};
use crate::partitioner::partition_for_key;
use crate::stream::Stream;

/// Header: the last error message.
pub const HEADER_ERROR: &str = "keel.dlq.error";
/// Header: original topic.
pub const HEADER_TOPIC: &str = "keel.dlq.topic";
/// Header: original partition.
pub const HEADER_PARTITION: &str = "keel.dlq.partition";
/// Header: original offset.
pub const HEADER_OFFSET: &str = "keel.dlq.offset";
/// Header: attempts made.
pub const HEADER_ATTEMPTS: &str = "keel.dlq.attempts";

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The handler succeeded on this attempt (1-based).
    Processed {
        /// Attempts used.
        attempts: u32,
    },
    /// Every attempt failed; the record is in the dead-letter topic at this partition/offset.
    DeadLettered {
        /// Partition of the dead-letter topic.
        partition: u32,
        /// Offset there.
        offset: i64,
    },
}

/// Retry-then-dead-letter policy.
#[derive(Debug, Clone)]
pub struct DeadLetterPolicy {
    topic: String,
    max_attempts: u32,
}

impl DeadLetterPolicy {
    /// Sends to `topic` (which must exist) after `max_attempts` failures.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for zero attempts.
    pub fn new(topic: impl Into<String>, max_attempts: u32) -> Result<Self, BuildError> {
        if max_attempts == 0 {
            return Err(BuildError::Invalid {
                name: "max_attempts",
                reason: "must be at least 1",
            });
        }
        Ok(Self {
            topic: topic.into(),
            max_attempts,
        })
    }

    /// Runs `handler` on `record` up to `max_attempts` times; a panic counts as a failure.
    /// On the last failure the record goes to the dead-letter topic (fsynced) with the
    /// `keel.dlq.*` headers added to its own.
    ///
    /// # Errors
    /// Writing the dead letter failed (then the record must not be committed).
    ///
    /// ```
    /// use keel_stream::{DeadLetterPolicy, GroupConsumer, Handled, Record, Stream, TopicConfig};
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = Stream::builder().dir(dir.path()).build().unwrap();
    /// stream.create_topic("orders", TopicConfig::default()).unwrap();
    /// stream.create_topic("orders.dlq", TopicConfig::default()).unwrap();
    /// stream.append("orders", 0, &[Record::new("poison")]).unwrap();
    /// let mut c = GroupConsumer::builder(&stream, "g").subscribe(["orders"]).build().unwrap();
    /// let dlq = DeadLetterPolicy::new("orders.dlq", 3).unwrap();
    /// let rec = c.poll(1).unwrap().remove(0);
    /// let out = dlq.process(&stream, &rec, |_| Err::<(), _>("bad json")).unwrap();
    /// assert!(matches!(out, Handled::DeadLettered { .. }));
    /// ```
    pub fn process<E: std::fmt::Display>(
        &self,
        stream: &Stream,
        record: &ConsumedRecord,
        mut handler: impl FnMut(&ConsumedRecord) -> Result<(), E>,
    ) -> Result<Handled, StreamError> {
        let mut last_error = String::new();
        for attempt in 1..=self.max_attempts {
            match catch_unwind(AssertUnwindSafe(|| handler(record))) {
                Ok(Ok(())) => return Ok(Handled::Processed { attempts: attempt }),
                Ok(Err(e)) => last_error = e.to_string(),
                Err(p) => {
                    last_error = p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .map_or_else(
                            || "handler panicked".to_string(),
                            |m| format!("handler panicked: {m}"),
                        );
                }
            }
        }
        let r = &record.record;
        let mut headers = r.headers.clone();
        let h = |k: &str, v: String| Header {
            key: k.to_string(),
            value: Some(Bytes::from(v)),
        };
        headers.push(h(HEADER_ERROR, last_error));
        headers.push(h(HEADER_TOPIC, record.topic.clone()));
        headers.push(h(HEADER_PARTITION, record.partition.to_string()));
        headers.push(h(HEADER_OFFSET, r.offset.to_string()));
        headers.push(h(HEADER_ATTEMPTS, self.max_attempts.to_string()));
        let dead = Record {
            key: r.key.clone(),
            value: r.value.clone(),
            headers,
            timestamp: Some(r.timestamp),
        };
        let partitions = stream.partition_count(&self.topic)?;
        let partition = dead
            .key
            .as_deref()
            .map_or(record.partition % partitions, |k| {
                partition_for_key(k, partitions)
            });
        let log = stream.log(&self.topic, partition)?;
        let raw = crate::batch::encode_batch(std::slice::from_ref(&dead), stream.now_ms(), None)?;
        let at = log.append_batch(raw, true)?;
        Ok(Handled::DeadLettered {
            partition,
            offset: at.base_offset,
        })
    }
}
