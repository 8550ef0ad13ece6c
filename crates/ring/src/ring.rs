//! Consistent hashing on a ring with virtual nodes (Karger et al., 1997).
//!
//! Every node is hashed onto the 64-bit circle `vnodes × weight` times (its *virtual
//! nodes*); a key belongs to the first point clockwise from its hash. Adding a node takes
//! over only the arcs in front of its new points, removing one hands its arcs to the next
//! points, so only ≈ K/N keys move. With `v` points per node the load's standard
//! deviation is ≈ 1/√v of the mean (100 → ≈10 %, 1000 → ≈3.2 %).

use crate::error::{BuildError, RingError};
use crate::hash::{POINT_SEED, xxh3_seeded};
use crate::metrics::record_membership_change;
use crate::node::{Members, NodeId};
use crate::placement::Placement;
use crate::points::SortedPoints;

/// Upper bound on the total number of points (weights × virtual nodes) of a ring, a
/// multi-probe placement or a bounded-load router. A point costs ≈ 12 bytes kept plus
/// ≈ 24 bytes during a rebuild, so the limit bounds a placement at ≈ 200 MiB kept
/// (≈ 600 MiB while rebuilding); 1000 vnodes × 16,384 nodes fit.
pub const MAX_POINTS: u64 = 1 << 24;

/// A consistent-hash ring with virtual nodes; weights scale a node's virtual-node count.
///
/// # Examples
/// ```
/// use keel_ring::{NodeId, Placement, Ring};
/// let mut ring = Ring::new(100).unwrap();
/// for name in ["a", "b", "c"] {
///     ring.add_node(NodeId::new(name).unwrap()).unwrap();
/// }
/// let owner = ring.node_for("user:42").unwrap().clone();
/// let replicas = ring.replicas("user:42", 2);
/// assert_eq!(replicas[0], &owner);
/// assert_ne!(replicas[0], replicas[1]);
/// ```
#[derive(Debug, Clone)]
pub struct Ring {
    vnodes: u32,
    members: Members,
    points: SortedPoints,
}

impl Ring {
    /// A ring giving each weight unit `vnodes` points (100–1000 is typical).
    ///
    /// # Errors
    /// [`BuildError::ZeroParameter`] if `vnodes` is 0, [`BuildError::TooLarge`] above
    /// [`MAX_POINTS`] (not even one node would fit).
    pub fn new(vnodes: u32) -> Result<Self, BuildError> {
        if vnodes == 0 {
            return Err(BuildError::ZeroParameter { what: "vnodes" });
        }
        if u64::from(vnodes) > MAX_POINTS {
            return Err(BuildError::TooLarge {
                what: "vnodes",
                requested: u64::from(vnodes),
                limit: MAX_POINTS,
            });
        }
        Ok(Self {
            vnodes,
            members: Members::default(),
            points: SortedPoints::default(),
        })
    }

    /// Virtual nodes per weight unit.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// Number of points on the circle.
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    pub(crate) fn members(&self) -> &Members {
        &self.members
    }

    pub(crate) fn sorted_points(&self) -> &SortedPoints {
        &self.points
    }

    fn rebuild(&mut self) {
        self.points = build_points(&self.members, self.vnodes);
    }
}

/// Point `i` of a node is `xxh3(name ‖ i as u64 LE, POINT_SEED)`: one strong hash over the
/// whole input, portable and independent of every other node, so a node's points never
/// change while it is a member.
///
/// Why not `xxh3(name, POINT_SEED + i)` (what Keel did before): for inputs of 1–3 bytes
/// xxh3 folds the seed into the input by a plain XOR-and-add before its final avalanche,
/// so `(name, seed)` pairs whose combinations coincide give the *same* point — `db1`..`db6`
/// with 100 vnodes had 104 distinct points of 600 and one node took 97 % of the keys.
/// Putting the index in the hashed bytes makes every input at least 9 bytes long, where
/// xxh3 mixes the whole input with a 128-bit multiply, and distinct `(name, i)` pairs are
/// distinct inputs.
pub(crate) fn build_points(members: &Members, per_weight: u32) -> SortedPoints {
    let total: usize = members
        .weights
        .iter()
        .map(|&w| w as usize * per_weight as usize)
        .sum();
    let mut raw = Vec::with_capacity(total);
    for (index, (id, &weight)) in members.ids.iter().zip(&members.weights).enumerate() {
        let tie = id.hash_with(0);
        let count = u64::from(weight) * u64::from(per_weight);
        let mut input = Vec::with_capacity(id.as_str().len() + 8);
        input.extend_from_slice(id.as_str().as_bytes());
        let name_len = input.len();
        input.extend_from_slice(&[0; 8]);
        for i in 0..count {
            input[name_len..].copy_from_slice(&i.to_le_bytes());
            raw.push((xxh3_seeded(&input, POINT_SEED), index as u32, tie));
        }
    }
    SortedPoints::build(raw)
}

pub(crate) fn check_points(
    members: &Members,
    weight: u32,
    per_weight: u32,
) -> Result<(), RingError> {
    let requested =
        (members.total_weight() + u64::from(weight)).saturating_mul(u64::from(per_weight));
    if requested > MAX_POINTS {
        return Err(RingError::TooManyPoints {
            requested,
            limit: MAX_POINTS,
        });
    }
    Ok(())
}

impl Placement for Ring {
    fn algorithm(&self) -> &'static str {
        "ring"
    }

    fn nodes(&self) -> &[NodeId] {
        &self.members.ids
    }

    fn weight(&self, node: &NodeId) -> Option<u32> {
        self.members.position(node).map(|i| self.members.weights[i])
    }

    fn add_weighted_node(&mut self, node: NodeId, weight: u32) -> Result<(), RingError> {
        check_points(&self.members, weight, self.vnodes)?;
        self.members.insert(node, weight, true)?;
        self.rebuild();
        record_membership_change("ring", "add");
        Ok(())
    }

    fn add_weighted_nodes(&mut self, nodes: &[(NodeId, u32)]) -> Result<(), RingError> {
        let mut result = Ok(());
        for (node, weight) in nodes {
            result = check_points(&self.members, *weight, self.vnodes)
                .and_then(|()| self.members.insert(node.clone(), *weight, true).map(|_| ()));
            if result.is_err() {
                break;
            }
        }
        self.rebuild();
        record_membership_change("ring", "add");
        result
    }

    fn remove_node(&mut self, node: &NodeId) -> Result<(), RingError> {
        self.members.remove(node)?;
        self.rebuild();
        record_membership_change("ring", "remove");
        Ok(())
    }

    #[inline]
    fn index_for_hash(&self, hash: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        Some(self.points.owner(self.points.successor(hash)))
    }

    fn replica_indices_for_hash(&self, hash: u64, n: usize, out: &mut Vec<usize>) {
        self.points
            .distinct_owners(hash, n, self.members.len(), out);
    }

    fn memory_bytes(&self) -> usize {
        self.points.heap_bytes() + self.members.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            Ring::new(0),
            Err(BuildError::ZeroParameter { .. })
        ));
        let mut ring = Ring::new(10).unwrap();
        let a = NodeId::new("a").unwrap();
        assert_eq!(ring.node_for("k"), None);
        assert!(ring.replicas("k", 3).is_empty());
        ring.add_node(a.clone()).unwrap();
        assert_eq!(
            ring.add_node(a.clone()),
            Err(RingError::DuplicateNode(a.clone()))
        );
        assert_eq!(
            ring.add_weighted_node(NodeId::new("b").unwrap(), 0),
            Err(RingError::ZeroWeight)
        );
        let z = NodeId::new("z").unwrap();
        assert_eq!(ring.remove_node(&z), Err(RingError::UnknownNode(z)));
        assert!(matches!(
            ring.add_weighted_node(NodeId::new("big").unwrap(), u32::MAX),
            Err(RingError::TooManyPoints { .. })
        ));
        assert_eq!(ring.node_for("k"), Some(&a));
        assert_eq!(ring.replicas("k", 5), vec![&a]);
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let names = ["n1", "n2", "n3", "n4"];
        let mut forward = Ring::new(50).unwrap();
        let mut backward = Ring::new(50).unwrap();
        for n in names {
            forward.add_node(NodeId::new(n).unwrap()).unwrap();
        }
        for n in names.iter().rev() {
            backward.add_node(NodeId::new(n).unwrap()).unwrap();
        }
        for k in 0..2000u64 {
            assert_eq!(forward.node_for(&k), backward.node_for(&k));
            assert_eq!(forward.replicas(&k, 3), backward.replicas(&k, 3));
        }
    }

    /// Issue 10, item 4: `db1`..`db6` with 100 vnodes had 104 distinct points of 600.
    #[test]
    fn short_names_give_distinct_points() {
        for names in [
            vec!["db1", "db2", "db3", "db4", "db5", "db6"],
            vec!["a", "b", "c", "d"],
            vec!["w-0", "w-1", "w-2"],
            vec!["n01", "n02", "n03"],
        ] {
            let mut ring = Ring::new(100).unwrap();
            for name in &names {
                ring.add_node(NodeId::new(name).unwrap()).unwrap();
            }
            let mut points = ring.sorted_points().points.clone();
            points.dedup();
            assert_eq!(points.len(), 100 * names.len(), "{names:?}");
        }
    }
}
