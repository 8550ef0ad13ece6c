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
    ///
    /// # Examples
    /// ```
    /// use keel_ring::{Maglev, NodeId, Placement, RingKey};
    /// let mut maglev = Maglev::new(Maglev::DEFAULT_TABLE_SIZE).unwrap();
    /// assert_eq!(maglev.index_for_hash(42u64.ring_hash()), None);
    /// for name in ["a", "b"] {
    ///     maglev.add_node(NodeId::new(name).unwrap()).unwrap();
    /// }
    /// let i = maglev.index_for_hash(42u64.ring_hash()).unwrap();
    /// assert_eq!(Some(&maglev.nodes()[i]), maglev.node_for(&42u64));
    /// ```
    fn index_for_hash(&self, hash: u64) -> Option<usize>;

    /// Fills `out` with up to `n` distinct node indices in preference order (the first is
    /// [`Placement::index_for_hash`]); fewer if there are fewer nodes. `out` is cleared
    /// first, so one buffer serves many lookups without allocating.
    ///
    /// # Examples
    /// ```
    /// use keel_ring::{MultiProbe, NodeId, Placement, RingKey};
    /// let mut mp = MultiProbe::new(21).unwrap();
    /// for name in ["a", "b", "c"] {
    ///     mp.add_node(NodeId::new(name).unwrap()).unwrap();
    /// }
    /// let mut out = Vec::with_capacity(3);
    /// for key in 0..100u64 {
    ///     mp.replica_indices_for_hash(key.ring_hash(), 2, &mut out);
    ///     assert_eq!(out.len(), 2);
    ///     assert_ne!(out[0], out[1]);
    ///     assert_eq!(Some(out[0]), mp.index_for_hash(key.ring_hash()));
    /// }
    /// ```
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

    /// The node owning a key hash (for callers that hash keys themselves, e.g. once per
    /// request).
    ///
    /// # Examples
    /// ```
    /// use keel_ring::{NodeId, Placement, Rendezvous, RingKey, hash_bytes};
    /// let mut hrw = Rendezvous::new();
    /// for name in ["a", "b", "c"] {
    ///     hrw.add_node(NodeId::new(name).unwrap()).unwrap();
    /// }
    /// let hash = hash_bytes(b"user:42");
    /// assert_eq!(hrw.node_for_hash(hash), hrw.node_for("user:42"));
    /// ```
    fn node_for_hash(&self, hash: u64) -> Option<&NodeId> {
        self.index_for_hash(hash).map(|i| &self.nodes()[i])
    }

    /// The node owning `key`; `None` when there are no members.
    ///
    /// # Examples
    /// Every algorithm answers the same way: the owner is a member, always the same one for
    /// the same membership, and `None` only when empty.
    /// ```
    /// use keel_ring::{BoundedLoads, Jump, Maglev, MultiProbe, NodeId, Placement, Rendezvous, Ring};
    /// fn check<P: Placement>(mut p: P) {
    ///     assert_eq!(p.node_for("user:42"), None);
    ///     for name in ["a", "b", "c"] {
    ///         p.add_node(NodeId::new(name).unwrap()).unwrap();
    ///     }
    ///     let owner = p.node_for("user:42").unwrap();
    ///     assert!(p.contains(owner));
    ///     assert_eq!(p.node_for("user:42"), Some(owner));
    /// }
    /// check(Ring::new(100).unwrap());
    /// check(Jump::new());
    /// check(Rendezvous::new());
    /// check(Maglev::new(Maglev::DEFAULT_TABLE_SIZE).unwrap());
    /// check(MultiProbe::new(21).unwrap());
    /// check(BoundedLoads::new(100, 0.25).unwrap());
    /// ```
    fn node_for<K: RingKey + ?Sized>(&self, key: &K) -> Option<&NodeId>
    where
        Self: Sized,
    {
        self.node_for_hash(key.ring_hash())
    }

    /// Up to `n` distinct nodes for `key` in preference order (primary first).
    ///
    /// # Examples
    /// For every algorithm: distinct nodes, the owner first, `min(n, N)` of them.
    /// ```
    /// use keel_ring::{BoundedLoads, Jump, Maglev, MultiProbe, NodeId, Placement, Rendezvous, Ring};
    /// fn check<P: Placement>(mut p: P) {
    ///     assert!(p.replicas("user:42", 3).is_empty());
    ///     for name in ["a", "b", "c", "d"] {
    ///         p.add_node(NodeId::new(name).unwrap()).unwrap();
    ///     }
    ///     let replicas = p.replicas("user:42", 3);
    ///     assert_eq!(replicas.len(), 3);
    ///     assert_eq!(Some(replicas[0]), p.node_for("user:42"));
    ///     assert!(replicas[0] != replicas[1] && replicas[1] != replicas[2] && replicas[0] != replicas[2]);
    ///     assert_eq!(p.replicas("user:42", 10).len(), 4); // never more than the members
    /// }
    /// check(Ring::new(100).unwrap());
    /// check(Jump::new());
    /// check(Rendezvous::new());
    /// check(Maglev::new(Maglev::DEFAULT_TABLE_SIZE).unwrap());
    /// check(MultiProbe::new(21).unwrap());
    /// check(BoundedLoads::new(100, 0.25).unwrap());
    /// ```
    fn replicas<K: RingKey + ?Sized>(&self, key: &K, n: usize) -> Vec<&NodeId>
    where
        Self: Sized,
    {
        let mut out = Vec::with_capacity(n.min(self.len()));
        self.replica_indices_for_hash(key.ring_hash(), n, &mut out);
        out.into_iter().map(|i| &self.nodes()[i]).collect()
    }
}
