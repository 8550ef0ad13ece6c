//! Typed errors. `Display` messages are short and lowercase.

use std::io;
use std::path::PathBuf;

/// A builder was given a value it cannot work with, or the data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A topic needs at least one partition.
    #[error("a topic needs at least one partition")]
    ZeroPartitions,
    /// A setting is out of range.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// No data directory was given.
    #[error("no data directory given")]
    MissingDir,
    /// Opening or recovering the data directory failed.
    #[error("cannot open the stream")]
    Open(#[source] StreamError),
}

/// Errors of the log, topics, producers and consumers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The file system failed.
    #[error("i/o error")]
    Io(#[from] io::Error),
    /// No topic with that name.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// `create_topic` on a name that exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// A topic name must be 1–249 characters of `[A-Za-z0-9._-]` and not `.` or `..`.
    #[error("invalid topic name {0:?}")]
    InvalidTopicName(String),
    /// The topic has fewer partitions.
    #[error("unknown partition {partition} of topic {topic:?}")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// Requested partition.
        partition: u32,
    },
    /// The offset is below the log start or above the log end.
    #[error("offset {requested} out of range [{earliest}, {latest}]")]
    OffsetOutOfRange {
        /// Requested offset.
        requested: i64,
        /// First offset still in the log.
        earliest: i64,
        /// Next offset to be written (the log end).
        latest: i64,
    },
    /// A record or batch is larger than the topic's `max_batch_bytes`.
    #[error("batch of {size} bytes exceeds the limit of {max}")]
    RecordTooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Nothing to append.
    #[error("empty batch")]
    EmptyBatch,
    /// A record batch failed validation (bad CRC, magic, lengths or record encoding).
    #[error("corrupt record batch: {0}")]
    CorruptBatch(&'static str),
    /// A sealed segment file is damaged (found on open or on read).
    #[error("corrupt segment {path:?} at byte {position}: {reason}")]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the bad batch.
        position: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// A feature this log does not implement (e.g. decoding compressed batches).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// Idempotent producer: a batch's first sequence is not the next expected one.
    #[error("out-of-order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// Next expected sequence.
        expected: i32,
        /// First sequence of the rejected batch.
        got: i32,
    },
    /// Idempotent producer: an older epoch of this producer id wrote after a newer one.
    #[error("producer {producer_id} fenced: epoch {epoch} is older than {current}")]
    ProducerFenced {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the rejected batch.
        epoch: i16,
        /// Current epoch.
        current: i16,
    },
    /// A consumer-group operation failed.
    #[error("consumer group error")]
    Group(#[from] GroupError),
}

/// Errors of the producer's send path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The bounded buffer stayed full for the whole timeout.
    #[error("producer buffer full for {0:?}")]
    BufferFull(std::time::Duration),
    /// The record alone is larger than the batch or buffer limit.
    #[error("record of {size} bytes exceeds the limit of {max}")]
    RecordTooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The producer was closed.
    #[error("producer closed")]
    Closed,
    /// No acknowledgement within the wait's timeout.
    #[error("no acknowledgement within {0:?}")]
    AckTimeout(std::time::Duration),
    /// Writing to the log failed.
    #[error("append failed: {0}")]
    Log(String),
    /// The topic or partition does not exist.
    #[error("produce rejected")]
    Rejected(#[source] StreamError),
}

/// Errors of the group coordinator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The member id is not (or no longer) in the group: it timed out or was fenced. Rejoin.
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    /// Static membership: another process joined with this instance id.
    #[error("instance {0:?} fenced by a newer member")]
    FencedInstance(String),
    /// Members of a group must subscribe to the same topics.
    #[error("subscription differs from the group's")]
    InconsistentSubscription,
    /// An empty group id or subscription.
    #[error("invalid group request: {0}")]
    Invalid(&'static str),
}
