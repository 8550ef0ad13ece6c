//! Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam, SODA 2018).
//!
//! A ring with virtual nodes, plus a load counter per node. With `m` units of load
//! currently assigned, a node may hold at most `cap = ⌈(1 + ε) · (m + 1) / N⌉` (weighted:
//! `⌈(1 + ε) · (m + 1) · wᵢ / Σw⌉`). [`BoundedLoads::acquire`] walks clockwise from the
//! key's hash and takes the first node below its cap; [`BoundedLoads::release`] gives the
//! unit back. No node ever exceeds `(1 + ε)` times its fair share at the moment it takes
//! load, and since the caps sum to more than `m + 1`, a node with room always exists.
//! Google Cloud Pub/Sub and Vimeo's HAProxy used this with ε ≈ 0.25.
//!
//! Keys move more than on a plain ring (a full node forwards overflow to its successors),
//! but the expected number of moves per membership change is still O(1/ε²) times optimal.
//!
//! `BoundedLoads` takes `&mut self` to acquire and release; share it behind a `Mutex`.

use crate::error::{BuildError, RingError};
use crate::metrics::{BoundedCounters, RingStats, record_membership_change};
use crate::node::NodeId;
use crate::placement::Placement;
use crate::points::Chosen;
use crate::ring::Ring;

/// Counters of a [`BoundedLoads`] router: the crate's [`RingStats`] snapshot (this name is
/// kept for existing callers).
pub type BoundedLoadsStats = RingStats;

/// A ring that routes each unit of load to the first node below `⌈(1+ε)·avg⌉`.
///
/// # Examples
/// ```
/// use keel_ring::{BoundedLoads, NodeId, Placement};
/// let mut router = BoundedLoads::builder().vnodes(100).epsilon(0.25).build().unwrap();
/// for name in ["a", "b", "c", "d"] {
///     router.add_node(NodeId::new(name).unwrap()).unwrap();
/// }
/// // With no load in flight it places like a plain ring: owner first, distinct replicas.
/// let replicas = router.replicas("user:42", 3);
/// assert_eq!(Some(replicas[0]), router.node_for("user:42"));
/// assert_eq!(replicas.len(), 3);
/// // Every request for one very hot key: the cap spreads them.
/// for _ in 0..100 {
///     router.acquire("hot").unwrap();
/// }
/// let peak = router.loads().map(|(_, load)| load).max().unwrap();
/// assert!(peak <= (1.25f64 * 100.0 / 4.0).ceil() as u64);
/// ```
#[derive(Debug, Clone)]
pub struct BoundedLoads {
    ring: Ring,
    epsilon: f64,
    /// Load per member index of `ring.nodes()`.
    loads: Vec<u64>,
    total: u64,
    total_weight: u64,
    stats: RingStats,
    counters: BoundedCounters,
}

/// Options of a [`BoundedLoads`] router: virtual nodes per weight unit (default 100) and
/// the slack ε (default 0.25).
///
/// # Examples
/// ```
/// use keel_ring::{BoundedLoads, BuildError};
/// let router = BoundedLoads::builder().vnodes(200).epsilon(0.1).build().unwrap();
/// assert_eq!(router.epsilon(), 0.1);
/// assert!(matches!(
///     BoundedLoads::builder().epsilon(0.0).build(),
///     Err(BuildError::InvalidEpsilon(_))
/// ));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use]
pub struct BoundedLoadsBuilder {
    vnodes: u32,
    epsilon: f64,
}

impl Default for BoundedLoadsBuilder {
    fn default() -> Self {
        Self {
            vnodes: 100,
            epsilon: 0.25,
        }
    }
}

impl BoundedLoadsBuilder {
    /// Virtual nodes per weight unit of the underlying ring (default 100).
    pub fn vnodes(mut self, vnodes: u32) -> Self {
        self.vnodes = vnodes;
        self
    }

    /// The slack ε: a node takes at most `⌈(1+ε)·avg⌉` (default 0.25).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Builds the router.
    ///
    /// # Errors
    /// [`BuildError::InvalidEpsilon`] unless ε is finite and > 0; the ring's errors for
    /// `vnodes` (see [`Ring::new`]).
    pub fn build(self) -> Result<BoundedLoads, BuildError> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(BuildError::InvalidEpsilon(self.epsilon));
        }
        Ok(BoundedLoads {
            ring: Ring::new(self.vnodes)?,
            epsilon: self.epsilon,
            loads: Vec::new(),
            total: 0,
            total_weight: 1,
            stats: RingStats::default(),
            counters: BoundedCounters::register(),
        })
    }
}

impl BoundedLoads {
    /// The options, with defaults (100 virtual nodes per weight unit, ε = 0.25).
    pub fn builder() -> BoundedLoadsBuilder {
        BoundedLoadsBuilder::default()
    }

    /// Shorthand for `BoundedLoads::builder().vnodes(vnodes).epsilon(epsilon).build()`.
    ///
    /// # Errors
    /// As [`BoundedLoadsBuilder::build`].
    pub fn new(vnodes: u32, epsilon: f64) -> Result<Self, BuildError> {
        Self::builder().vnodes(vnodes).epsilon(epsilon).build()
    }

    /// The slack ε.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Total load currently acquired.
    pub fn total_load(&self) -> u64 {
        self.total
    }

    /// Counters: `acquired`, `released`, `forwarded`, `skipped` (the other fields are 0).
    pub fn stats(&self) -> RingStats {
        self.stats
    }

    /// Current load per node.
    pub fn loads(&self) -> impl Iterator<Item = (&NodeId, u64)> + '_ {
        self.ring.nodes().iter().zip(self.loads.iter().copied())
    }

    /// Member index of `node`: O(log N), the ring keeps its members sorted by name (a
    /// linear scan here would make every `release` O(N) string comparisons).
    fn index_of(&self, node: &NodeId) -> Option<usize> {
        self.ring.nodes().binary_search(node).ok()
    }

    /// Current load of one node.
    pub fn load(&self, node: &NodeId) -> Option<u64> {
        self.index_of(node).map(|i| self.loads[i])
    }

    /// The cap of member `index` when the total load will be `total`.
    fn cap_at(&self, index: usize, total: u64) -> u64 {
        let weight = f64::from(self.ring.members().weights[index]);
        let share = (1.0 + self.epsilon) * total as f64 * weight / self.total_weight as f64;
        share.ceil() as u64
    }

    /// The cap a node would have for the next unit of load: `⌈(1+ε)·(m+1)·w/Σw⌉`.
    pub fn cap(&self, node: &NodeId) -> Option<u64> {
        let i = self.index_of(node)?;
        Some(self.cap_at(i, self.total + 1))
    }

    /// The member index the next unit for `hash` would go to, and how many full nodes were
    /// skipped.
    fn choose(&self, hash: u64) -> Option<(usize, u64)> {
        let points = self.ring.sorted_points();
        if points.is_empty() {
            return None;
        }
        let total = self.total + 1;
        let start = points.successor(hash);
        let len = points.len();
        let mut skipped = 0u64;
        let mut last = usize::MAX;
        for step in 0..len {
            let owner = points.owner((start + step) % len);
            if owner == last {
                continue;
            }
            if self.loads[owner] < self.cap_at(owner, total) {
                return Some((owner, skipped));
            }
            last = owner;
            skipped += 1;
        }
        // Unreachable in theory (the caps sum to more than `total`); fall back to the
        // least-loaded node rather than fail.
        let least = (0..self.loads.len()).min_by_key(|&i| self.loads[i])?;
        Some((least, skipped))
    }

    /// Assigns one unit of load for `key` and returns the node that took it: the first
    /// node clockwise from the key whose load is below its cap.
    ///
    /// # Errors
    /// [`RingError::NoNodes`] when there are no members.
    ///
    /// # Examples
    /// ```
    /// use keel_ring::{BoundedLoads, NodeId, Placement, RingError};
    /// let mut router = BoundedLoads::new(100, 0.25).unwrap();
    /// assert_eq!(router.acquire("k"), Err(RingError::NoNodes));
    /// router.add_node(NodeId::new("a").unwrap()).unwrap();
    /// router.add_node(NodeId::new("b").unwrap()).unwrap();
    /// let first = router.node_for("k").unwrap().clone();
    /// assert_eq!(router.acquire("k").unwrap(), first); // where `node_for` said it would go
    /// assert_eq!(router.load(&first), Some(1));
    /// ```
    pub fn acquire<K: crate::RingKey + ?Sized>(&mut self, key: &K) -> Result<NodeId, RingError> {
        self.acquire_hash(key.ring_hash())
    }

    /// [`BoundedLoads::acquire`] for a precomputed key hash.
    ///
    /// # Errors
    /// [`RingError::NoNodes`] when there are no members.
    pub fn acquire_hash(&mut self, hash: u64) -> Result<NodeId, RingError> {
        let (index, skipped) = self.choose(hash).ok_or(RingError::NoNodes)?;
        self.loads[index] += 1;
        self.total += 1;
        self.stats.acquired += 1;
        self.counters.acquired.increment(1);
        if skipped > 0 {
            self.stats.forwarded += 1;
            self.stats.skipped += skipped;
            self.counters.forwarded.increment(1);
        }
        Ok(self.ring.nodes()[index].clone())
    }

    /// Returns one unit of load held by `node`.
    ///
    /// # Errors
    /// [`RingError::UnknownNode`], or [`RingError::NothingAcquired`] if its load is 0.
    ///
    /// # Examples
    /// ```
    /// use keel_ring::{BoundedLoads, NodeId, Placement, RingError};
    /// let mut router = BoundedLoads::new(100, 0.25).unwrap();
    /// router.add_node(NodeId::new("a").unwrap()).unwrap();
    /// let node = router.acquire("k").unwrap();
    /// router.release(&node).unwrap();
    /// assert_eq!(router.total_load(), 0);
    /// assert_eq!(router.release(&node), Err(RingError::NothingAcquired(node.clone())));
    /// ```
    pub fn release(&mut self, node: &NodeId) -> Result<(), RingError> {
        let i = self
            .index_of(node)
            .ok_or_else(|| RingError::UnknownNode(node.clone()))?;
        if self.loads[i] == 0 {
            return Err(RingError::NothingAcquired(node.clone()));
        }
        self.loads[i] -= 1;
        self.total -= 1;
        self.stats.released += 1;
        self.counters.released.increment(1);
        Ok(())
    }

    /// Drops every acquired unit (for example before re-assigning after a big change).
    pub fn reset_loads(&mut self) {
        self.loads.iter_mut().for_each(|l| *l = 0);
        self.total = 0;
    }

    fn remap_loads(&mut self, old_nodes: &[NodeId]) {
        let old_loads = std::mem::take(&mut self.loads);
        self.loads = self
            .ring
            .nodes()
            .iter()
            // Both member lists are sorted by name: a binary search, not an O(N) scan per
            // member (O(N²) per membership change).
            .map(|n| old_nodes.binary_search(n).map_or(0, |i| old_loads[i]))
            .collect();
        self.total = self.loads.iter().sum();
        self.total_weight = self.ring.members().total_weight().max(1);
    }
}

impl Placement for BoundedLoads {
    fn algorithm(&self) -> &'static str {
        "bounded-loads"
    }

    fn nodes(&self) -> &[NodeId] {
        self.ring.nodes()
    }

    fn weight(&self, node: &NodeId) -> Option<u32> {
        self.ring.weight(node)
    }

    /// Adds a member; loads of existing members are kept.
    fn add_weighted_node(&mut self, node: NodeId, weight: u32) -> Result<(), RingError> {
        let old = self.ring.nodes().to_vec();
        self.ring.add_weighted_node(node, weight)?;
        self.remap_loads(&old);
        record_membership_change("bounded-loads", "add");
        Ok(())
    }

    fn add_weighted_nodes(&mut self, nodes: &[(NodeId, u32)]) -> Result<(), RingError> {
        let old = self.ring.nodes().to_vec();
        let result = self.ring.add_weighted_nodes(nodes);
        self.remap_loads(&old);
        result
    }

    /// Removes a member; the load it held is dropped (its clients re-acquire elsewhere).
    fn remove_node(&mut self, node: &NodeId) -> Result<(), RingError> {
        let old = self.ring.nodes().to_vec();
        self.ring.remove_node(node)?;
        self.remap_loads(&old);
        record_membership_change("bounded-loads", "remove");
        Ok(())
    }

    /// Where the next unit of load for this hash would go (does not acquire).
    fn index_for_hash(&self, hash: u64) -> Option<usize> {
        self.choose(hash).map(|(i, _)| i)
    }

    /// The ring's preference order with nodes that are at their cap moved to the end.
    fn replica_indices_for_hash(&self, hash: u64, n: usize, out: &mut Vec<usize>) {
        out.clear();
        let points = self.ring.sorted_points();
        let want = n.min(self.ring.len());
        if want == 0 || points.is_empty() {
            return;
        }
        let total = self.total + 1;
        let mut full: Vec<usize> = Vec::new();
        // Members placed in `out` or `full` (either list can grow to every member).
        let mut seen = Chosen::new(self.ring.len(), self.ring.len());
        let start = points.successor(hash);
        let len = points.len();
        for step in 0..len {
            let owner = points.owner((start + step) % len);
            if seen.contains(out, owner) || seen.contains(&full, owner) {
                continue;
            }
            seen.insert(owner);
            if self.loads[owner] < self.cap_at(owner, total) {
                out.push(owner);
                if out.len() == want {
                    return;
                }
            } else {
                full.push(owner);
            }
            if out.len() + full.len() == self.ring.len() {
                break;
            }
        }
        let missing = want - out.len();
        out.extend(full.into_iter().take(missing));
    }

    fn memory_bytes(&self) -> usize {
        self.ring.memory_bytes() + self.loads.capacity() * 8
    }
}
