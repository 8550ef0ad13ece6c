//! Maglev hashing (Eisenbud et al., NSDI 2016).
//!
//! Each node gets a pseudo-random permutation of the `M` table slots
//! (`offset + j·skip mod M`, `M` prime so every `skip` visits every slot). Nodes take
//! turns claiming their next free preferred slot until the table is full; a lookup is one
//! hash and one array read. Every node ends up with ⌊M/N⌋ or ⌈M/N⌉ slots (weighted: it
//! takes `weight` turns per round), so balance is near perfect.
//!
//! The price is disruption: the table is **rebuilt on every membership change**, and the
//! turn order shifts, so a few slots change owner between surviving nodes. Keel measures
//! this (see the crate docs): with `M = 65537` removing one node moves the removed node's
//! ≈ K/N keys plus a small extra, bounded in the tests by [`EXTRA_MOVEMENT_BOUND`].

use crate::error::{BuildError, RingError};
use crate::hash::{MAGLEV_OFFSET_SEED, MAGLEV_SKIP_SEED, fast_range};
use crate::metrics::record_membership_change;
use crate::node::{Members, NodeId};
use crate::placement::Placement;
use crate::points::Chosen;

/// Default table size: a prime, ≥ 100 × the node count up to 655 nodes (the paper asks
/// for `M ≫ N`; 100× keeps the per-node imbalance ≤ 1 %).
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

/// Documented bound on extra movement: when one node leaves, the fraction of keys that
/// move between *surviving* nodes stays below this (measured: well under it for
/// N ∈ 8..512 at the default table size; see the crate docs).
pub const EXTRA_MOVEMENT_BOUND: f64 = 0.05;

/// Largest accepted table size.
pub const MAX_TABLE_SIZE: u32 = 1 << 24;

/// Maglev placement with a fixed prime table size.
///
/// # Examples
/// ```
/// use keel_ring::{Maglev, NodeId, Placement};
/// let mut maglev = Maglev::new(Maglev::DEFAULT_TABLE_SIZE).unwrap();
/// for name in ["a", "b", "c"] {
///     maglev.add_node(NodeId::new(name).unwrap()).unwrap();
/// }
/// let replicas = maglev.replicas("k", 3);
/// assert_eq!(replicas.len(), 3);
/// assert_eq!(Some(replicas[0]), maglev.node_for("k"));
/// assert!(Maglev::new(65_536).is_err()); // not prime
/// ```
#[derive(Debug, Clone)]
pub struct Maglev {
    size: u32,
    members: Members,
    table: Vec<u32>,
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

impl Maglev {
    /// The default table size, [`DEFAULT_TABLE_SIZE`].
    pub const DEFAULT_TABLE_SIZE: u32 = DEFAULT_TABLE_SIZE;

    /// Maglev with a lookup table of `table_size` slots (a prime).
    ///
    /// # Errors
    /// [`BuildError::TableSizeNotPrime`], or [`BuildError::TooLarge`] above
    /// [`MAX_TABLE_SIZE`].
    pub fn new(table_size: u32) -> Result<Self, BuildError> {
        if table_size > MAX_TABLE_SIZE {
            return Err(BuildError::TooLarge {
                what: "maglev table size",
                requested: u64::from(table_size),
                limit: u64::from(MAX_TABLE_SIZE),
            });
        }
        if !is_prime(u64::from(table_size)) {
            return Err(BuildError::TableSizeNotPrime(u64::from(table_size)));
        }
        Ok(Self {
            size: table_size,
            members: Members::default(),
            table: Vec::new(),
        })
    }

    /// The table size `M`.
    pub fn table_size(&self) -> u32 {
        self.size
    }

    /// The smallest prime ≥ `n` (for choosing a table size); `None` above the largest
    /// prime that fits a `u32` (4,294,967,291).
    ///
    /// # Examples
    /// ```
    /// use keel_ring::Maglev;
    /// assert_eq!(Maglev::next_prime(65_536), Some(65_537));
    /// assert_eq!(Maglev::next_prime(u32::MAX), None);
    /// ```
    pub fn next_prime(n: u32) -> Option<u32> {
        (n.max(2)..=u32::MAX).find(|&c| is_prime(u64::from(c)))
    }

    /// Fills the table: nodes (in name order) take turns, each claiming `weight` slots per
    /// round from its own permutation.
    fn rebuild(&mut self) {
        let m = u64::from(self.size);
        let n = self.members.len();
        self.table.clear();
        if n == 0 {
            return;
        }
        const EMPTY: u32 = u32::MAX;
        self.table.resize(m as usize, EMPTY);
        // Per node: current position in its permutation and its skip.
        let mut pos: Vec<u64> = Vec::with_capacity(n);
        let mut skip: Vec<u64> = Vec::with_capacity(n);
        for id in &self.members.ids {
            pos.push(id.hash_with(MAGLEV_OFFSET_SEED) % m);
            skip.push(id.hash_with(MAGLEV_SKIP_SEED) % (m - 1) + 1);
        }
        let mut filled = 0u64;
        'fill: loop {
            for i in 0..n {
                for _ in 0..self.members.weights[i] {
                    let mut c = pos[i];
                    while self.table[c as usize] != EMPTY {
                        c += skip[i];
                        if c >= m {
                            c -= m;
                        }
                    }
                    self.table[c as usize] = i as u32;
                    let mut next = c + skip[i];
                    if next >= m {
                        next -= m;
                    }
                    pos[i] = next;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
    }

    #[inline]
    fn slot(&self, hash: u64) -> usize {
        fast_range(hash, u64::from(self.size)) as usize
    }
}

impl Placement for Maglev {
    fn algorithm(&self) -> &'static str {
        "maglev"
    }

    fn nodes(&self) -> &[NodeId] {
        &self.members.ids
    }

    fn weight(&self, node: &NodeId) -> Option<u32> {
        self.members.position(node).map(|i| self.members.weights[i])
    }

    fn add_weighted_node(&mut self, node: NodeId, weight: u32) -> Result<(), RingError> {
        let requested = self.members.total_weight() + u64::from(weight);
        if requested >= u64::from(self.size) {
            return Err(RingError::TableTooSmall {
                table_size: u64::from(self.size),
                nodes: requested,
            });
        }
        self.members.insert(node, weight, true)?;
        self.rebuild();
        record_membership_change("maglev", "add");
        Ok(())
    }

    fn add_weighted_nodes(&mut self, nodes: &[(NodeId, u32)]) -> Result<(), RingError> {
        let mut result = Ok(());
        for (node, weight) in nodes {
            let requested = self.members.total_weight() + u64::from(*weight);
            result = if requested >= u64::from(self.size) {
                Err(RingError::TableTooSmall {
                    table_size: u64::from(self.size),
                    nodes: requested,
                })
            } else {
                self.members.insert(node.clone(), *weight, true).map(|_| ())
            };
            if result.is_err() {
                break;
            }
        }
        self.rebuild();
        record_membership_change("maglev", "add");
        result
    }

    fn remove_node(&mut self, node: &NodeId) -> Result<(), RingError> {
        self.members.remove(node)?;
        self.rebuild();
        record_membership_change("maglev", "remove");
        Ok(())
    }

    #[inline]
    fn index_for_hash(&self, hash: u64) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        Some(self.table[self.slot(hash)] as usize)
    }

    /// Primary from the table, then the owners of the following slots (wrapping), skipping
    /// duplicates, like walking a ring of `M` slots.
    fn replica_indices_for_hash(&self, hash: u64, n: usize, out: &mut Vec<usize>) {
        out.clear();
        let want = n.min(self.members.len());
        if want == 0 {
            return;
        }
        let mut chosen = Chosen::new(want, self.members.len());
        let start = self.slot(hash);
        let len = self.table.len();
        for step in 0..len {
            let owner = self.table[(start + step) % len] as usize;
            if !chosen.contains(out, owner) {
                chosen.insert(owner);
                out.push(owner);
                if out.len() == want {
                    return;
                }
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.table.capacity() * 4 + self.members.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        assert!(is_prime(65_537));
        assert!(!is_prime(65_536));
        assert!(!is_prime(1));
        assert_eq!(Maglev::next_prime(800), Some(809));
        assert!(matches!(
            Maglev::new(10),
            Err(BuildError::TableSizeNotPrime(10))
        ));
        assert!(Maglev::new(MAX_TABLE_SIZE + 1).is_err());
    }

    #[test]
    fn table_is_balanced_and_rejects_too_many_nodes() {
        let mut m = Maglev::new(101).unwrap();
        for i in 0..10 {
            m.add_node(NodeId::new(format!("n{i}")).unwrap()).unwrap();
        }
        let mut counts = [0u32; 10];
        for &o in &m.table {
            counts[o as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c == 10 || c == 11), "{counts:?}");
        assert!(matches!(
            m.add_weighted_node(NodeId::new("huge").unwrap(), 200),
            Err(RingError::TableTooSmall { .. })
        ));
    }
}
