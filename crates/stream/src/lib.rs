//! keel-stream: a durable, partitioned event log (docs in progress).

mod assignor;
pub mod batch;
mod clock;
mod consumer;
mod dead_letter;
mod dedupe;
mod error;
mod group;
mod log;
mod metrics;
mod offsets;
mod partitioner;
mod producer;
mod producer_state;
mod segment;
mod stream;
mod topic;
mod varint;

pub use assignor::{Assignor, TopicPartition};
pub use batch::{Header, ProducerInfo, Record, StoredRecord};
pub use clock::{Clock, MockClock, SystemClock};
pub use consumer::{ConsumedRecord, GroupConsumer, GroupConsumerBuilder, OffsetReset};
pub use dead_letter::{
    DeadLetterPolicy, HEADER_ATTEMPTS, HEADER_ERROR, HEADER_OFFSET, HEADER_PARTITION, HEADER_TOPIC, Handled,
};
pub use dedupe::Deduplicator;
pub use error::{BuildError, GroupError, ProduceError, StreamError};
pub use group::{
    Assignment, GroupConfig, GroupConfigBuilder, GroupCoordinator, Joined, MemberDescription, RebalanceProtocol,
};
pub use log::{AppendInfo, FetchedBatches, PartitionLog};
pub use metrics::StreamStats;
pub use partitioner::{KeylessPartitioning, murmur2, partition_for_key};
pub use producer::{Acks, Delivery, Producer, ProducerBuilder, ProducerStats, RecordMetadata};
pub use stream::{GroupLag, OffsetSpec, PartitionLag, Stream, StreamBuilder};
pub use topic::{Durability, Topic, TopicConfig, TopicConfigBuilder};
