//! keel-dht (docs in progress).

pub mod clock;
mod cluster;
mod cmd;
mod coordinator;
pub mod error;
pub mod metrics;
mod mutation;
pub mod node;
mod peer;
pub mod reply;
pub mod resp;
mod storage;
pub mod version;

pub use clock::{Clock, ManualClock, SystemClock};
pub use cmd::Consistency;
pub use error::{BuildError, DecodeError, DhtError, ProtocolError};
pub use metrics::DhtStats;
pub use node::{Node, NodeBuilder, NodeHandle};
pub use reply::{Protocol, Reply};
pub use version::{MAX_SIBLINGS, Sibling, SiblingSet, VersionVector};

/// Most partitions a cluster can have (partition numbers are `u16`).
pub const MAX_PARTITIONS: usize = 65_536;
