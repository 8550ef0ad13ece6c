//! Errors: [`BuildError`] for construction (constructors and builders), [`RingError`] for
//! membership changes, bounded-load routing and lookups that need a node.

use crate::node::NodeId;

/// Why a placement, router, detector or spreader could not be constructed.
///
/// Returned by every constructor (`Ring::new`, `MultiProbe::new`, `Maglev::new`,
/// `ReadSpreader::new`) and every builder's `build()` (`BoundedLoads::builder()`,
/// `HotKeyDetector::builder()`). It converts into [`RingError`] with `?`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// A count parameter (virtual nodes, probes, capacity, fan-out) must be at least 1.
    #[error("{what} must be at least 1")]
    ZeroParameter {
        /// Which parameter.
        what: &'static str,
    },
    /// A size parameter is above the crate's documented bound for it.
    #[error("{what} {requested} is above the limit {limit}")]
    TooLarge {
        /// Which parameter.
        what: &'static str,
        /// The value asked for.
        requested: u64,
        /// The largest accepted value.
        limit: u64,
    },
    /// A Maglev table size must be a prime number, so every skip visits every slot.
    #[error("maglev table size {0} is not a prime")]
    TableSizeNotPrime(u64),
    /// The bounded-load slack ε must be finite and greater than 0.
    #[error("epsilon must be finite and > 0, got {0}")]
    InvalidEpsilon(f64),
    /// The decay half-life must be greater than zero.
    #[error("half-life must be greater than zero")]
    ZeroHalfLife,
}

/// Why a membership change or a bounded-load operation was refused.
///
/// Every variant is a caller mistake that is reported instead of panicking; lookups on an
/// empty placement are not errors, they return `None` / an empty replica list.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RingError {
    /// The node is already a member.
    #[error("node {0} is already a member")]
    DuplicateNode(NodeId),
    /// The node is not a member.
    #[error("node {0} is not a member")]
    UnknownNode(NodeId),
    /// A node identity must be a non-empty name.
    #[error("node name must not be empty")]
    EmptyNodeName,
    /// Weights are relative capacities and must be at least 1.
    #[error("node weight must be at least 1")]
    ZeroWeight,
    /// The algorithm does not support weights other than 1 (jump hash).
    #[error("{algorithm} does not support weighted nodes (weight {weight})")]
    WeightUnsupported {
        /// Algorithm name.
        algorithm: &'static str,
        /// The weight that was asked for.
        weight: u32,
    },
    /// Jump hash can only remove the node with the highest bucket number (the last added).
    #[error("jump hash can only remove the last node ({last}), not {requested}")]
    JumpRemoveNotLast {
        /// The node that was asked to leave.
        requested: NodeId,
        /// The node that may leave.
        last: NodeId,
    },
    /// The configuration would need more points or table entries than the crate allows.
    #[error("too many points: {requested} (limit {limit})")]
    TooManyPoints {
        /// Points (ring, multi-probe) or nodes (Maglev) requested.
        requested: u64,
        /// The limit.
        limit: u64,
    },
    /// Maglev needs more table slots than nodes.
    #[error("maglev table size {table_size} must exceed the node count {nodes}")]
    TableTooSmall {
        /// Table size.
        table_size: u64,
        /// Node count.
        nodes: u64,
    },
    /// A release for a node that holds no acquired load.
    #[error("node {0} holds no acquired load")]
    NothingAcquired(NodeId),
    /// No node is available (empty placement).
    #[error("no nodes")]
    NoNodes,
    /// Construction failed (see [`BuildError`]); lets `?` carry a constructor's error in a
    /// function that returns `RingError`.
    #[error(transparent)]
    Build(#[from] BuildError),
}
