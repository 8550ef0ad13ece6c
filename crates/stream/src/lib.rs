//! keel-stream: a durable, partitioned event log (docs in progress).

pub mod batch;
mod clock;
mod error;
mod log;
mod partitioner;
mod producer_state;
mod segment;
mod topic;
mod varint;

pub use batch::{Header, Record, StoredRecord};
pub use clock::{Clock, MockClock, SystemClock};
pub use error::{BuildError, GroupError, ProduceError, StreamError};
pub use log::{AppendInfo, FetchedBatches, PartitionLog};
pub use partitioner::{KeylessPartitioning, murmur2, partition_for_key};
pub use topic::{Durability, Topic, TopicConfig, TopicConfigBuilder};
