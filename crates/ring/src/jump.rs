//! Jump consistent hash (Lamping & Veach, 2014).
//!
//! `jump(key, n)` returns a bucket in `0..n` using no memory and O(ln n) expected steps,
//! with a perfectly even expected load and optimal movement: growing from `n` to `n + 1`
//! buckets moves exactly the ≈ K/(n+1) keys that land in the new bucket.
//!
//! # How node identities map to buckets
//! Bucket `i` is the `i`-th node in [`Placement::nodes`], i.e. the order in which nodes
//! were added. That is also the limitation: **buckets can only be added or removed at the
//! end**. Removing a node from the middle would renumber every later bucket and move most
//! keys, so [`Jump::remove_node`](Placement::remove_node) refuses anything but the last node
//! ([`RingError::JumpRemoveNotLast`]). Systems that need arbitrary removal keep a stable
//! bucket list and map a dead bucket to a replacement (or use rendezvous / a ring).
//! Weights are not supported either ([`RingError::WeightUnsupported`]).

use crate::error::RingError;
use crate::hash::mix64;
use crate::metrics::record_membership_change;
use crate::node::{Members, NodeId};
use crate::placement::Placement;
use crate::points::SHORT_LIST;

/// The jump-hash function: the bucket in `0..buckets` for a 64-bit key hash.
///
/// Returns 0 when `buckets` is 0 or 1. Floating-point here is IEEE-754 multiply/divide,
/// exactly rounded on every platform, so results are portable.
///
/// # Examples
/// ```
/// let b = keel_ring::jump::jump_hash(0xdead_beef, 10);
/// assert!(b < 10);
/// // Growing to 11 buckets either keeps the key or moves it to the new bucket 10.
/// let grown = keel_ring::jump::jump_hash(0xdead_beef, 11);
/// assert!(grown == b || grown == 10);
/// ```
#[inline]
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as u32
}

/// Jump consistent hash over an append-only list of nodes.
///
/// # Examples
/// ```
/// use keel_ring::{Jump, NodeId, Placement, RingError};
/// let mut jump = Jump::new();
/// for name in ["a", "b", "c"] {
///     jump.add_node(NodeId::new(name).unwrap()).unwrap();
/// }
/// let replicas = jump.replicas(&42u64, 2);
/// assert_eq!(Some(replicas[0]), jump.node_for(&42u64));
/// assert_ne!(replicas[0], replicas[1]);
/// // Only the last node can leave.
/// let a = NodeId::new("a").unwrap();
/// assert!(matches!(jump.remove_node(&a), Err(RingError::JumpRemoveNotLast { .. })));
/// jump.remove_node(&NodeId::new("c").unwrap()).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Jump {
    members: Members,
}

impl Jump {
    /// An empty jump placement.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Placement for Jump {
    fn algorithm(&self) -> &'static str {
        "jump"
    }

    fn nodes(&self) -> &[NodeId] {
        &self.members.ids
    }

    fn weight(&self, node: &NodeId) -> Option<u32> {
        self.members.position(node).map(|_| 1)
    }

    fn add_weighted_node(&mut self, node: NodeId, weight: u32) -> Result<(), RingError> {
        if weight == 0 {
            return Err(RingError::ZeroWeight);
        }
        if weight != 1 {
            return Err(RingError::WeightUnsupported {
                algorithm: "jump",
                weight,
            });
        }
        if self.members.len() >= u32::MAX as usize {
            return Err(RingError::TooManyPoints {
                requested: self.members.len() as u64 + 1,
                limit: u64::from(u32::MAX),
            });
        }
        self.members.insert(node, 1, false)?;
        record_membership_change("jump", "add");
        Ok(())
    }

    fn remove_node(&mut self, node: &NodeId) -> Result<(), RingError> {
        match self.members.ids.last() {
            Some(last) if last == node => {
                self.members.remove(node)?;
                record_membership_change("jump", "remove");
                Ok(())
            }
            Some(last) if self.members.position(node).is_some() => {
                Err(RingError::JumpRemoveNotLast {
                    requested: node.clone(),
                    last: last.clone(),
                })
            }
            _ => Err(RingError::UnknownNode(node.clone())),
        }
    }

    #[inline]
    fn index_for_hash(&self, hash: u64) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        Some(jump_hash(hash, n as u32) as usize)
    }

    /// Replica `r > 0` is drawn by jump hash from the buckets not chosen yet:
    /// `jump(mix(hash + r), nodes − r)` indexes the remaining buckets in ascending order.
    /// Each step depends only on the earlier ones, so `replicas(k, n)` is a prefix of
    /// `replicas(k, n + 1)`, and exactly `n` jump hashes are computed (no rehash loop, no
    /// fallback). Within the remaining buckets the draw is a jump hash, so appending a
    /// bucket mostly changes a replica list by moving entries to the new bucket.
    fn replica_indices_for_hash(&self, hash: u64, n: usize, out: &mut Vec<usize>) {
        out.clear();
        let nodes = self.members.len();
        let want = n.min(nodes);
        if want == 0 {
            return;
        }
        out.push(jump_hash(hash, nodes as u32) as usize);
        let draw = |round: usize| {
            let remaining = (nodes - round) as u32;
            jump_hash(mix64(hash.wrapping_add(round as u64)), remaining) as usize
        };
        if want <= SHORT_LIST {
            // The chosen buckets in ascending order, to map "i-th remaining" to a bucket.
            let mut chosen: Vec<usize> = Vec::with_capacity(want);
            chosen.push(out[0]);
            for round in 1..want {
                let mut bucket = draw(round);
                for &c in &chosen {
                    if c <= bucket {
                        bucket += 1;
                    } else {
                        break;
                    }
                }
                out.push(bucket);
                let at = chosen.partition_point(|&c| c < bucket);
                chosen.insert(at, bucket);
            }
        } else {
            // Long lists: the same draws, with "i-th remaining" found in O(log N) by a
            // Fenwick tree of the remaining buckets (the scan above is O(n) per draw).
            let mut remaining = RemainingBuckets::new(nodes);
            remaining.take(out[0]);
            for round in 1..want {
                let bucket = remaining.nth(draw(round));
                remaining.take(bucket);
                out.push(bucket);
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.members.heap_bytes()
    }
}

/// The buckets `0..n` not taken yet, as a Fenwick tree of 0/1 counts: `nth` and `take` in
/// O(log n).
#[derive(Debug)]
struct RemainingBuckets {
    /// 1-based Fenwick array: `tree[i]` counts the remaining buckets in `(i − lowbit(i), i]`.
    tree: Vec<u32>,
    /// Largest power of two ≤ n, where the descent in `nth` starts.
    top: usize,
}

impl RemainingBuckets {
    fn new(n: usize) -> Self {
        // Every bucket present: node i covers lowbit(i) buckets.
        let tree = (0..=n).map(|i| (i & i.wrapping_neg()) as u32).collect();
        let top = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        Self { tree, top }
    }

    /// Marks `bucket` as taken.
    fn take(&mut self, bucket: usize) {
        let mut i = bucket + 1;
        while i < self.tree.len() {
            self.tree[i] -= 1;
            i += i & i.wrapping_neg();
        }
    }

    /// The `k`-th (0-based) remaining bucket in ascending order; requires `k` < remaining.
    fn nth(&self, k: usize) -> usize {
        let mut pos = 0usize;
        let mut rest = k as u32;
        let mut step = self.top;
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && self.tree[next] <= rest {
                pos = next;
                rest -= self.tree[next];
            }
            step >>= 1;
        }
        pos // 1-based position pos + 1 holds it: bucket index pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_buckets_match_a_plain_list() {
        for n in 1..70usize {
            let mut fenwick = RemainingBuckets::new(n);
            let mut plain: Vec<usize> = (0..n).collect();
            let mut h = n as u64;
            while !plain.is_empty() {
                h = mix64(h);
                let k = (h % plain.len() as u64) as usize;
                assert_eq!(fenwick.nth(k), plain[k], "n {n}, k {k}");
                let bucket = plain.remove(k);
                fenwick.take(bucket);
            }
        }
    }

    #[test]
    fn long_and_short_replica_lists_agree() {
        let mut jump = Jump::new();
        for i in 0..300 {
            jump.add_node(NodeId::new(format!("n{i}")).unwrap())
                .unwrap();
        }
        let (mut short, mut long) = (Vec::new(), Vec::new());
        for key in 0..500u64 {
            let hash = mix64(key);
            jump.replica_indices_for_hash(hash, SHORT_LIST, &mut short);
            jump.replica_indices_for_hash(hash, 300, &mut long);
            assert_eq!(long[..SHORT_LIST], short[..]);
            let mut sorted = long.clone();
            sorted.sort_unstable();
            assert!(sorted.iter().copied().eq(0..300));
        }
    }
}
