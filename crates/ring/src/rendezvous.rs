//! Rendezvous hashing / highest random weight (Thaler & Ravishankar, 1998), weighted.
//!
//! Every node scores every key with a hash of the pair; the key goes to the highest
//! score, and the replica list is the nodes sorted by score. No shared structure at all:
//! removing a node moves only its keys (everyone else's scores are unchanged), adding a
//! node moves only the keys it now wins. Cost: O(N) per lookup.
//!
//! # Weights
//! With `u = hash(key, node)` mapped into (0, 1), the weighted score is `-w / ln(u)`
//! (Schindelhauer & Schomaker; the "logarithmic method"): node `i` then wins with
//! probability exactly `wᵢ / Σw`, and a weight change moves only the keys it must. When all
//! weights are equal the score is monotone in `u`, so the raw 64-bit hash is compared
//! instead — same answers, no logarithm.
//! `ln` comes from the platform's libm; a last-bit difference could only flip a key whose
//! two best weighted scores tie to within one ulp.

use crate::error::RingError;
use crate::hash::{RENDEZVOUS_SEED, mix64};
use crate::metrics::record_membership_change;
use crate::node::{Members, NodeId};
use crate::placement::Placement;

/// Weighted rendezvous (HRW) placement.
///
/// # Examples
/// ```
/// use keel_ring::{NodeId, Placement, Rendezvous};
/// let mut hrw = Rendezvous::new();
/// hrw.add_weighted_node(NodeId::new("small").unwrap(), 1).unwrap();
/// hrw.add_weighted_node(NodeId::new("large").unwrap(), 3).unwrap();
/// let replicas = hrw.replicas(&7u64, 5);
/// assert_eq!(replicas.len(), 2);
/// assert_eq!(Some(replicas[0]), hrw.node_for(&7u64));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Rendezvous {
    members: Members,
    node_hashes: Vec<u64>,
    unit: bool,
}

/// The pair hash: a bijective mix of the key hash combined with the node's hash.
#[inline]
fn score(key_hash: u64, node_hash: u64) -> u64 {
    mix64(key_hash ^ node_hash)
}

/// `u = (top 52 bits + 0.5) / 2^52`: strictly inside (0, 1), computed exactly.
#[inline]
fn unit_interval(raw: u64) -> f64 {
    ((raw >> 12) as f64 + 0.5) / (1u64 << 52) as f64
}

/// `-w / ln(u)`.
#[inline]
fn weighted_score(raw: u64, weight: u32) -> f64 {
    -f64::from(weight) / unit_interval(raw).ln()
}

impl Rendezvous {
    /// An empty rendezvous placement.
    pub fn new() -> Self {
        Self {
            unit: true,
            ..Self::default()
        }
    }

    fn rebuild(&mut self) {
        self.node_hashes = self
            .members
            .ids
            .iter()
            .map(|id| id.hash_with(RENDEZVOUS_SEED))
            .collect();
        self.unit = self.members.all_unit_weight();
    }
}

impl Placement for Rendezvous {
    fn algorithm(&self) -> &'static str {
        "rendezvous"
    }

    fn nodes(&self) -> &[NodeId] {
        &self.members.ids
    }

    fn weight(&self, node: &NodeId) -> Option<u32> {
        self.members.position(node).map(|i| self.members.weights[i])
    }

    fn add_weighted_node(&mut self, node: NodeId, weight: u32) -> Result<(), RingError> {
        self.members.insert(node, weight, true)?;
        self.rebuild();
        record_membership_change("rendezvous", "add");
        Ok(())
    }

    fn add_weighted_nodes(&mut self, nodes: &[(NodeId, u32)]) -> Result<(), RingError> {
        let mut result = Ok(());
        for (node, weight) in nodes {
            result = self.members.insert(node.clone(), *weight, true).map(|_| ());
            if result.is_err() {
                break;
            }
        }
        self.rebuild();
        record_membership_change("rendezvous", "add");
        result
    }

    fn remove_node(&mut self, node: &NodeId) -> Result<(), RingError> {
        self.members.remove(node)?;
        self.rebuild();
        record_membership_change("rendezvous", "remove");
        Ok(())
    }

    #[inline]
    fn index_for_hash(&self, hash: u64) -> Option<usize> {
        if self.node_hashes.is_empty() {
            return None;
        }
        if self.unit {
            let mut best = 0usize;
            let mut best_score = 0u64;
            for (i, &nh) in self.node_hashes.iter().enumerate() {
                let s = score(hash, nh);
                if s >= best_score {
                    // `>=` with ascending names: ties go to the later name, deterministically.
                    best_score = s;
                    best = i;
                }
            }
            Some(best)
        } else {
            // Pruning without changing the answer: −ln u ≥ 1 − u, so a node whose
            // (1 − u)/w already exceeds the best 1/score (with a margin far above rounding
            // error) cannot win or tie, and its logarithm is skipped.
            let mut best = 0usize;
            let mut best_score = f64::NEG_INFINITY;
            let mut best_inverse = f64::INFINITY;
            for (i, (&nh, &w)) in self
                .node_hashes
                .iter()
                .zip(&self.members.weights)
                .enumerate()
            {
                let u = unit_interval(score(hash, nh));
                if (1.0 - u) > best_inverse * f64::from(w) {
                    continue;
                }
                let s = -f64::from(w) / u.ln();
                if s >= best_score {
                    best_score = s;
                    best_inverse = (1.0 + 1e-9) / s;
                    best = i;
                }
            }
            Some(best)
        }
    }

    fn replica_indices_for_hash(&self, hash: u64, n: usize, out: &mut Vec<usize>) {
        out.clear();
        let want = n.min(self.node_hashes.len());
        if want == 0 {
            return;
        }
        if want == 1 {
            out.extend(self.index_for_hash(hash));
            return;
        }
        // Scores as (score, index) so ties order exactly like `index_for_hash` (higher index
        // wins); weighted scores are positive finite floats, whose bit patterns order like
        // the floats themselves.
        let mut scored: Vec<(u64, usize)> = if self.unit {
            self.node_hashes
                .iter()
                .enumerate()
                .map(|(i, &nh)| (score(hash, nh), i))
                .collect()
        } else {
            self.node_hashes
                .iter()
                .zip(&self.members.weights)
                .enumerate()
                .map(|(i, (&nh, &w))| (weighted_score(score(hash, nh), w).to_bits(), i))
                .collect()
        };
        let cmp = |a: &(u64, usize), b: &(u64, usize)| b.cmp(a);
        if want < scored.len() {
            scored.select_nth_unstable_by(want - 1, cmp);
            scored.truncate(want);
        }
        scored.sort_unstable_by(cmp);
        out.extend(scored.into_iter().map(|(_, i)| i));
    }

    fn memory_bytes(&self) -> usize {
        self.node_hashes.capacity() * 8 + self.members.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_score_is_monotone_in_raw_hash() {
        let mut prev = weighted_score(0, 1);
        for i in 1..10_000u64 {
            let s = weighted_score(i << 50, 1);
            assert!(s >= prev);
            prev = s;
        }
        assert!(weighted_score(u64::MAX, 1).is_finite());
        assert!(weighted_score(0, 1) > 0.0);
    }

    #[test]
    fn pruning_never_changes_the_weighted_winner() {
        let mut hrw = Rendezvous::new();
        for i in 0..64 {
            hrw.add_weighted_node(NodeId::new(format!("n{i}")).unwrap(), 1 + (i * 7) % 5)
                .unwrap();
        }
        for k in 0..50_000u64 {
            let h = crate::hash::mix64(k);
            let mut best = (f64::NEG_INFINITY, 0usize);
            for (i, (&nh, &w)) in hrw.node_hashes.iter().zip(&hrw.members.weights).enumerate() {
                let s = weighted_score(score(h, nh), w);
                if s >= best.0 {
                    best = (s, i);
                }
            }
            assert_eq!(hrw.index_for_hash(h), Some(best.1));
        }
    }

    #[test]
    fn first_replica_is_the_owner() {
        let mut hrw = Rendezvous::new();
        for i in 0..20 {
            hrw.add_weighted_node(NodeId::new(format!("n{i}")).unwrap(), 1 + i % 3)
                .unwrap();
        }
        for k in 0..5000u64 {
            let reps = hrw.replicas(&k, 4);
            assert_eq!(Some(reps[0]), hrw.node_for(&k));
        }
    }
}
