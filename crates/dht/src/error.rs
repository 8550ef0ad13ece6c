//! Errors: [`BuildError`] (configuration), [`ProtocolError`] (malformed RESP input),
//! [`DecodeError`] (corrupt stored or replicated bytes) and [`DhtError`] (running a node).

use std::io;

/// A [`NodeBuilder`](crate::NodeBuilder) setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// N, R or W is zero, or R or W is larger than N.
    #[error("invalid replication n={n} r={r} w={w}: need 1 <= r, w <= n")]
    Replication {
        /// Replicas per key.
        n: usize,
        /// Read quorum.
        r: usize,
        /// Write quorum.
        w: usize,
    },
    /// Zero partitions, or more than [`MAX_PARTITIONS`](crate::MAX_PARTITIONS).
    #[error("invalid partition count {0}: need 1..=65536")]
    Partitions(usize),
    /// Zero virtual nodes.
    #[error("virtual nodes per node must be at least 1")]
    VirtualNodes,
    /// A timeout or interval that is zero or too large to add to a clock.
    #[error("invalid {what}: must be between 1 ms and 1 day")]
    Duration {
        /// Which setting.
        what: &'static str,
    },
    /// The data directory is missing from the builder.
    #[error("no data directory given")]
    NoDataDir,
    /// A node name the ring rejects (empty, too long).
    #[error("invalid node name")]
    NodeName(#[source] keel_ring::RingError),
    /// The placement ring rejected its configuration.
    #[error("placement ring rejected its configuration")]
    RingConfig(#[source] keel_ring::BuildError),
    /// The placement ring rejected the membership.
    #[error("placement ring rejected the members")]
    Ring(#[source] keel_ring::RingError),
    /// The storage engine could not open the data directory.
    #[error("cannot open storage")]
    Storage(#[source] Box<DhtError>),
    /// A request size limit is zero.
    #[error("request size limits must be at least 1")]
    Limits,
    /// A node name with a separator (`|`, `,`, `;`, `=`, space) or longer than 255 bytes.
    #[error("invalid node name {0:?}")]
    BadName(String),
    /// The node could not join the cluster of its seeds.
    #[error("cannot join the cluster: {0}")]
    Join(String),
    /// The listen address could not be bound.
    #[error("cannot bind listen address")]
    Bind(#[source] io::Error),
}

/// Malformed or oversized client input. The connection is answered with
/// `-ERR Protocol error: …` and closed, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// `*<n>` is not a number or above the array limit.
    #[error("invalid multibulk length")]
    ArrayLength,
    /// `$<n>` is not a number or above the bulk limit.
    #[error("invalid bulk length")]
    BulkLength,
    /// An array element does not start with `$`.
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// A bulk string is not followed by `\r\n`.
    #[error("bulk string not terminated by crlf")]
    BulkTerminator,
    /// An inline command line is longer than the inline limit.
    #[error("too big inline request")]
    InlineTooLong,
    /// A request header line is longer than any valid header.
    #[error("too big header line")]
    HeaderTooLong,
    /// An inline command has an unbalanced quote.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// Bytes that do not decode as a stored or replicated record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt record: {0}")]
pub struct DecodeError(pub(crate) &'static str);

/// Errors while running a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// The storage engine failed.
    #[error("storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record did not decode.
    #[error("stored record is corrupt")]
    Corrupt(#[source] DecodeError),
    /// The storage writer thread has stopped.
    #[error("storage writer stopped")]
    StorageClosed,
    /// Socket I/O failed.
    #[error("i/o failed")]
    Io(#[source] io::Error),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for DhtError {
            fn from(e: $t) -> Self {
                DhtError::Storage(Box::new(e))
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<DecodeError> for DhtError {
    fn from(e: DecodeError) -> Self {
        DhtError::Corrupt(e)
    }
}
