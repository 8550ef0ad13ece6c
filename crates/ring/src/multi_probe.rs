//! Multi-probe consistent hashing (Appleton & O'Reilly, 2015).
//!
//! Nodes are hashed onto the circle **once** (weight `w` → `w` points); a key is hashed
//! `k` times and goes to the node whose point is closest clockwise to any of its probes.
//! With `k = 21` the paper bounds the peak-to-mean load at ≈ 1.05 (for large N) using
//! O(N) memory instead of the O(N·v) of virtual nodes, at the cost of `k` successor
//! searches per lookup. Probes are `h + i·s` (double hashing). Removing a
//! node only lengthens the distances that ended on its points, so only its keys move;
//! adding one only shortens distances to its own points.

use crate::error::{BuildError, RingError};
use crate::hash::{POINT_SEED, mix64};
use crate::metrics::record_membership_change;
use crate::node::{Members, NodeId};
use crate::placement::Placement;
use crate::points::{SHORT_LIST, SortedPoints};
use crate::ring::{build_points, check_points};

/// The probe count the paper gives for peak-to-mean ≈ 1.05 (asymptotically; see the
/// crate docs for what Keel measures at 8–512 nodes).
pub const DEFAULT_PROBES: u32 = 21;

/// The largest accepted probe count. A lookup does one successor search per probe
/// (≈ 10–20 ns each), so this bounds a lookup at ≈ 10–20 µs; the paper's 21 probes already
/// give its ≈ 1.05 bound, and a few hundred buy nothing more.
pub const MAX_PROBES: u32 = 1024;

/// Multi-probe consistent hashing.
///
/// # Examples
/// ```
/// use keel_ring::{MultiProbe, NodeId, Placement};
/// let mut mp = MultiProbe::new(21).unwrap();
/// for name in ["a", "b", "c"] {
///     mp.add_node(NodeId::new(name).unwrap()).unwrap();
/// }
/// let reps = mp.replicas("k", 3);
/// assert_eq!(Some(reps[0]), mp.node_for("k"));
/// ```
#[derive(Debug, Clone)]
pub struct MultiProbe {
    probes: u32,
    members: Members,
    points: SortedPoints,
}

impl MultiProbe {
    /// Multi-probe hashing with `probes` probes per lookup (21 is the paper's choice).
    ///
    /// # Errors
    /// [`BuildError::ZeroParameter`] if `probes` is 0, [`BuildError::TooLarge`] above
    /// [`MAX_PROBES`].
    pub fn new(probes: u32) -> Result<Self, BuildError> {
        if probes == 0 {
            return Err(BuildError::ZeroParameter { what: "probes" });
        }
        if probes > MAX_PROBES {
            return Err(BuildError::TooLarge {
                what: "probes",
                requested: u64::from(probes),
                limit: u64::from(MAX_PROBES),
            });
        }
        Ok(Self {
            probes,
            members: Members::default(),
            points: SortedPoints::default(),
        })
    }

    /// Probes per lookup.
    pub fn probes(&self) -> u32 {
        self.probes
    }

    /// Probe `i` of a key is `h + i·step` (double hashing, `step` odd).
    #[inline]
    fn step(hash: u64) -> u64 {
        mix64(hash ^ POINT_SEED) | 1
    }

    /// `(distance, point index)` of the nearest point clockwise of any probe.
    #[inline]
    fn nearest(&self, hash: u64) -> (u64, usize) {
        let step = Self::step(hash);
        let mut probe = hash;
        let mut best = (u64::MAX, 0usize);
        for _ in 0..self.probes {
            let i = self.points.successor(probe);
            let distance = self.points.points[i].wrapping_sub(probe);
            if distance < best.0 {
                best = (distance, i);
            }
            probe = probe.wrapping_add(step);
        }
        best
    }
}

impl Placement for MultiProbe {
    fn algorithm(&self) -> &'static str {
        "multi-probe"
    }

    fn nodes(&self) -> &[NodeId] {
        &self.members.ids
    }

    fn weight(&self, node: &NodeId) -> Option<u32> {
        self.members.position(node).map(|i| self.members.weights[i])
    }

    fn add_weighted_node(&mut self, node: NodeId, weight: u32) -> Result<(), RingError> {
        check_points(&self.members, weight, 1)?;
        self.members.insert(node, weight, true)?;
        self.points = build_points(&self.members, 1);
        record_membership_change("multi-probe", "add");
        Ok(())
    }

    fn add_weighted_nodes(&mut self, nodes: &[(NodeId, u32)]) -> Result<(), RingError> {
        let mut result = Ok(());
        for (node, weight) in nodes {
            result = check_points(&self.members, *weight, 1)
                .and_then(|()| self.members.insert(node.clone(), *weight, true).map(|_| ()));
            if result.is_err() {
                break;
            }
        }
        self.points = build_points(&self.members, 1);
        record_membership_change("multi-probe", "add");
        result
    }

    fn remove_node(&mut self, node: &NodeId) -> Result<(), RingError> {
        self.members.remove(node)?;
        self.points = build_points(&self.members, 1);
        record_membership_change("multi-probe", "remove");
        Ok(())
    }

    #[inline]
    fn index_for_hash(&self, hash: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        Some(self.points.owner(self.nearest(hash).1))
    }

    /// Ranks nodes by their smallest probe distance: from every probe, walk clockwise and
    /// record each distinct owner's distance; the best `n` by distance win. The first is
    /// the owner.
    fn replica_indices_for_hash(&self, hash: u64, n: usize, out: &mut Vec<usize>) {
        out.clear();
        let want = n.min(self.members.len());
        if want == 0 {
            return;
        }
        if want == 1 {
            out.extend(self.index_for_hash(hash));
            return;
        }
        if want > SHORT_LIST {
            self.rank_every_member(hash, want, out);
        } else {
            self.rank_by_walking(hash, want, out);
        }
        // The primary must agree with `index_for_hash` even on exact distance ties.
        let primary = self.index_for_hash(hash).unwrap_or(out[0]);
        if out[0] != primary {
            if let Some(p) = out.iter().position(|&o| o == primary) {
                out.remove(p);
            } else {
                out.pop();
            }
            out.insert(0, primary);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.points.heap_bytes() + self.members.heap_bytes()
    }
}

impl MultiProbe {
    /// Short lists: from every probe walk clockwise to the first `want` distinct owners,
    /// recording each one's distance. A member among the best `want` always has its true
    /// smallest distance recorded (every owner walked before it from its best probe is
    /// closer), so the best `want` recorded are the best `want` overall.
    fn rank_by_walking(&self, hash: u64, want: usize, out: &mut Vec<usize>) {
        let len = self.points.len();
        let step = Self::step(hash);
        let mut probe = hash;
        // best[node] = smallest distance seen.
        let mut best: Vec<(u64, usize)> = Vec::new();
        let mut walked: Vec<usize> = Vec::with_capacity(want);
        for _ in 0..self.probes {
            let start = self.points.successor(probe);
            walked.clear();
            for s in 0..len {
                let i = (start + s) % len;
                let owner = self.points.owner(i);
                if walked.contains(&owner) {
                    continue;
                }
                walked.push(owner);
                let distance = self.points.points[i].wrapping_sub(probe);
                match best.iter_mut().find(|(_, o)| *o == owner) {
                    Some(entry) if distance < entry.0 => entry.0 = distance,
                    Some(_) => {}
                    None => best.push((distance, owner)),
                }
                if walked.len() == want {
                    break;
                }
            }
            probe = probe.wrapping_add(step);
        }
        best.sort_unstable();
        out.extend(best.into_iter().take(want).map(|(_, o)| o));
    }

    /// Long lists: every member's smallest distance in one pass over the points. A point's
    /// distance from its nearest probe counter-clockwise is its smallest distance from any
    /// probe, so a member's is the smallest over its points: O(points · log k + N log N),
    /// where walking from every probe would be O(k · points) for a list of every member.
    fn rank_every_member(&self, hash: u64, want: usize, out: &mut Vec<usize>) {
        let step = Self::step(hash);
        let mut probes: Vec<u64> = (0..u64::from(self.probes))
            .map(|i| hash.wrapping_add(step.wrapping_mul(i)))
            .collect();
        probes.sort_unstable();
        let last = probes[probes.len() - 1];
        let mut best = vec![u64::MAX; self.members.len()];
        for (i, &point) in self.points.points.iter().enumerate() {
            let k = probes.partition_point(|&p| p <= point);
            let probe = if k == 0 { last } else { probes[k - 1] };
            let owner = self.points.owner(i);
            best[owner] = best[owner].min(point.wrapping_sub(probe));
        }
        let mut ranked: Vec<(u64, usize)> =
            best.into_iter().enumerate().map(|(o, d)| (d, o)).collect();
        if want < ranked.len() {
            ranked.select_nth_unstable(want - 1);
            ranked.truncate(want);
        }
        ranked.sort_unstable();
        out.extend(ranked.into_iter().map(|(_, o)| o));
    }
}
