//! The [`Placement`] trait every algorithm implements.

use std::fmt;

use crate::error::RingError;
use crate::hash::RingKey;
use crate::node::NodeId;

/// Maps keys to nodes. One trait for every algorithm, so the DHT, the bench and the
/// analysis harness can swap them.
///
/// Lookups take `&self` and allocate nothing (except [`Placement::replicas`], which returns
/// a `Vec`); membership changes take `&mut self` and rebuild what the algorithm needs.
/// For concurrent readers with rare membership changes, keep the placement behind an
/// `Arc` and swap in a rebuilt copy (copy-on-write), or use a `RwLock`.
///
/// The `*_for_hash` / `*_index*` methods are the object-safe core (usable through
/// `dyn Placement`); `node_for` and `replicas` hash the key for you.
pub trait Placement: fmt::Debug + Send + Sync {
    /// Short algorithm name, for reports.
    fn algorithm(&self) -> &'static str;

    /// Current members. The position of a node in this slice is its *index*, as returned
    /// by [`Placement::index_for_hash`]; indices change on membership changes.
    fn nodes(&self) -> &[NodeId];

    /// The weight a member was added with.
    fn weight(&self, node: &NodeId) -> Option<u32>;

    /// Adds a member with a relative weight (capacity) ≥ 1. Algorithms with a lookup
    /// structure rebuild it; to add many nodes, use [`Placement::add_weighted_nodes`].
    ///
    /// # Errors
    /// [`RingError::DuplicateNode`], [`RingError::ZeroWeight`], and algorithm limits such as
    /// [`RingError::WeightUnsupported`] (jump) or [`RingError::TooManyPoints`].
    fn add_weighted_node(&mut self, node: NodeId, weight: u32) -> Result<(), RingError>;

    /// Removes a member; only the keys it owned move.
    ///
    /// # Errors
    /// [`RingError::UnknownNode`], and [`RingError::JumpRemoveNotLast`] for jump hash.
    fn remove_node(&mut self, node: &NodeId) -> Result<(), RingError>;

    /// Index (into [`Placement::nodes`]) of the node owning a key hash; `None` when empty.
    fn index_for_hash(&self, hash: u64) -> Option<usize>;

    /// Fills `out` with up to `n` distinct node indices in preference order (the first is
    /// [`Placement::index_for_hash`]); fewer if there are fewer nodes.
    fn replica_indices_for_hash(&self, hash: u64, n: usize, out: &mut Vec<usize>);

    /// Approximate heap memory held by the lookup structures, in bytes.
    fn memory_bytes(&self) -> usize;

    /// Adds many members at once, rebuilding the lookup structure once (the one-by-one
    /// default is overridden by every algorithm that rebuilds on change). On error, the
    /// members before the failing one have been added.
    ///
    /// # Errors
    /// As [`Placement::add_weighted_node`].
    fn add_weighted_nodes(&mut self, nodes: &[(NodeId, u32)]) -> Result<(), RingError> {
        for (node, weight) in nodes {
            self.add_weighted_node(node.clone(), *weight)?;
        }
        Ok(())
    }

    /// Adds a member with weight 1.
    ///
    /// # Errors
    /// As [`Placement::add_weighted_node`].
    fn add_node(&mut self, node: NodeId) -> Result<(), RingError> {
        self.add_weighted_node(node, 1)
    }

    /// Number of members.
    fn len(&self) -> usize {
        self.nodes().len()
    }

    /// True when there are no members.
    fn is_empty(&self) -> bool {
        self.nodes().is_empty()
    }

    /// True when `node` is a member.
    fn contains(&self, node: &NodeId) -> bool {
        self.nodes().contains(node)
    }

    /// The node owning a key hash.
    fn node_for_hash(&self, hash: u64) -> Option<&NodeId> {
        self.index_for_hash(hash).map(|i| &self.nodes()[i])
    }

    /// The node owning `key`; `None` when there are no members.
    fn node_for<K: RingKey + ?Sized>(&self, key: &K) -> Option<&NodeId>
    where
        Self: Sized,
    {
        self.node_for_hash(key.ring_hash())
    }

    /// Up to `n` distinct nodes for `key` in preference order (primary first).
    fn replicas<K: RingKey + ?Sized>(&self, key: &K, n: usize) -> Vec<&NodeId>
    where
        Self: Sized,
    {
        let mut out = Vec::with_capacity(n.min(self.len()));
        self.replica_indices_for_hash(key.ring_hash(), n, &mut out);
        out.into_iter().map(|i| &self.nodes()[i]).collect()
    }
}

/// Records a membership change through the `metrics` facade.
pub(crate) fn record_membership_change(algorithm: &'static str, change: &'static str) {
    metrics::counter!("keel_ring_membership_changes_total", "algorithm" => algorithm, "change" => change)
        .increment(1);
}
