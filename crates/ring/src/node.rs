//! Node identities: stable names that every process agrees on.

use std::fmt;
use std::sync::Arc;

use crate::error::RingError;
use crate::hash;

/// A node's stable identity: its name (for example `"10.0.0.7:6379"` or `"cache-3"`).
///
/// Placement depends only on the names (and weights) of the members, never on the order in
/// which they were added (except jump hash, whose buckets are numbered by position) nor on
/// any per-process randomness, so two processes with the same membership agree.
/// Cloning is cheap (a reference-counted string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Creates a node identity.
    ///
    /// # Errors
    /// [`RingError::EmptyNodeName`] if `name` is empty.
    ///
    /// # Examples
    /// ```
    /// let node = keel_ring::NodeId::new("cache-1").unwrap();
    /// assert_eq!(node.as_str(), "cache-1");
    /// assert!(keel_ring::NodeId::new("").is_err());
    /// ```
    pub fn new(name: impl AsRef<str>) -> Result<Self, RingError> {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(RingError::EmptyNodeName);
        }
        Ok(Self(Arc::from(name)))
    }

    /// For names built from a non-empty literal prefix (cannot be empty).
    pub(crate) fn from_nonempty(name: String) -> Self {
        debug_assert!(!name.is_empty());
        Self(Arc::from(name))
    }

    /// The node's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The portable 64-bit hash of the name under `seed` (xxh3).
    pub(crate) fn hash_with(&self, seed: u64) -> u64 {
        hash::xxh3_seeded(self.0.as_bytes(), seed)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", &*self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for NodeId {
    type Error = RingError;
    fn try_from(name: &str) -> Result<Self, RingError> {
        Self::new(name)
    }
}

impl TryFrom<String> for NodeId {
    type Error = RingError;
    fn try_from(name: String) -> Result<Self, RingError> {
        Self::new(name)
    }
}

/// The member list shared by every algorithm: names, weights, kept sorted by name (or in
/// insertion order for jump hash).
#[derive(Debug, Clone, Default)]
pub(crate) struct Members {
    pub(crate) ids: Vec<NodeId>,
    pub(crate) weights: Vec<u32>,
}

impl Members {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn position(&self, node: &NodeId) -> Option<usize> {
        self.ids.iter().position(|id| id == node)
    }

    pub(crate) fn total_weight(&self) -> u64 {
        self.weights.iter().map(|&w| u64::from(w)).sum()
    }

    pub(crate) fn all_unit_weight(&self) -> bool {
        self.weights.iter().all(|&w| w == 1)
    }

    /// Inserts keeping name order (`sorted`) or at the end.
    pub(crate) fn insert(
        &mut self,
        node: NodeId,
        weight: u32,
        sorted: bool,
    ) -> Result<usize, RingError> {
        if weight == 0 {
            return Err(RingError::ZeroWeight);
        }
        if self.position(&node).is_some() {
            return Err(RingError::DuplicateNode(node));
        }
        let at = if sorted {
            self.ids.partition_point(|id| id < &node)
        } else {
            self.ids.len()
        };
        self.ids.insert(at, node);
        self.weights.insert(at, weight);
        Ok(at)
    }

    pub(crate) fn remove(&mut self, node: &NodeId) -> Result<usize, RingError> {
        let at = self
            .position(node)
            .ok_or_else(|| RingError::UnknownNode(node.clone()))?;
        self.ids.remove(at);
        self.weights.remove(at);
        Ok(at)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.ids
            .iter()
            .map(|id| std::mem::size_of::<NodeId>() + id.as_str().len() + 16)
            .sum::<usize>()
            + self.weights.capacity() * 4
    }
}
