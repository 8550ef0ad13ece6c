//! Merkle-tree anti-entropy: replicas of a partition compare hash trees on a timer and
//! exchange only the keys under differing leaves.
//!
//! Read repair fixes keys that are read and hinted handoff fixes writes a down node
//! missed while its hints survive; anti-entropy fixes everything else (a replacement disk,
//! a lost hint, keys nobody reads). Each partition's tree has two levels: [`LEAVES`] leaf
//! hashes (a key goes to leaf `hash(key) % LEAVES`; a leaf's hash is the wrapping sum of
//! `xxh3(key ‖ encoded set)` over its keys, so it is independent of iteration order) and
//! the root (the hash of the leaves). Equal roots end the exchange with one 512-byte
//! reply; otherwise only differing leaves are fetched (`DHT.R.LEAF`) and merged both
//! ways. Sets are canonical (siblings sorted), so equal contents hash equally.
//!
//! Scheduling: each round a node takes the next [`PARTITIONS_PER_ROUND`] partitions it
//! owns and compares each with the *next* owner in that partition's preference list, so
//! the N owners form a ring and every pair converges transitively without N² exchanges.
//! Building a tree scans the partition (O(keys in partition)); trees are not cached, which
//! keeps them always correct at the cost of that scan.

use std::sync::Arc;

use redis::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::node::Inner;
use crate::version::SiblingSet;

/// Leaves per partition tree.
pub(crate) const LEAVES: usize = 64;
/// Partitions compared per anti-entropy round.
pub(crate) const PARTITIONS_PER_ROUND: usize = 16;

/// The leaf a key belongs to (bits independent of the partition's top bits).
pub(crate) fn leaf_of(key: &[u8]) -> usize {
    (xxh3_64(key) % LEAVES as u64) as usize
}

fn entry_hash(key: &[u8], set: &[u8]) -> u64 {
    let mut buf = Vec::with_capacity(key.len() + set.len() + 4);
    buf.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(set);
    xxh3_64(&buf)
}

/// The leaf hashes of one partition on this node, encoded as `LEAVES` little-endian u64.
pub(crate) fn tree(inner: &Inner, p: u16) -> Option<Vec<u8>> {
    let mut leaves = [0u64; LEAVES];
    inner
        .store
        .for_each_in_partition(p, |k, v| {
            let l = leaf_of(k);
            leaves[l] = leaves[l].wrapping_add(entry_hash(k, v));
        })
        .ok()?;
    Some(leaves.iter().flat_map(|h| h.to_le_bytes()).collect())
}

/// Every `(key, encoded set)` of one leaf of a partition on this node.
pub(crate) fn leaf_entries(inner: &Inner, p: u16, leaf: usize) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    inner
        .store
        .for_each_in_partition(p, |k, v| {
            if leaf_of(k) == leaf {
                out.push((k.to_vec(), v.to_vec()));
            }
        })
        .ok()?;
    Some(out)
}

impl Inner {
    /// Compares partition `p` with `peer_name` and repairs both sides. Returns the number
    /// of keys sent or received, or `None` if the peer could not be reached.
    pub(crate) async fn sync_partition(&self, p: u16, peer_name: &str) -> Option<usize> {
        self.exchange_partition(p, peer_name, true).await
    }

    /// Pushes this node's copy of partition `p` to `peer_name` (only keys under differing
    /// leaves, and only where theirs differs); pulls nothing. `Some` means the peer
    /// acknowledged (durably merged) every key it lacked.
    pub(crate) async fn push_partition(&self, p: u16, peer_name: &str) -> Option<usize> {
        self.exchange_partition(p, peer_name, false).await
    }

    async fn exchange_partition(&self, p: u16, peer_name: &str, pull: bool) -> Option<usize> {
        let peer = self.cluster.peer(peer_name)?;
        let mine = tree(self, p)?;
        let theirs = match peer.call(redis::cmd("DHT.R.TREE").arg(p)).await {
            Ok(Value::BulkString(b)) if b.len() == LEAVES * 8 => b,
            _ => return None,
        };
        if mine == theirs {
            return Some(0);
        }
        let mut moved = 0;
        for leaf in 0..LEAVES {
            if mine[leaf * 8..leaf * 8 + 8] == theirs[leaf * 8..leaf * 8 + 8] {
                continue;
            }
            let remote = match peer.call(redis::cmd("DHT.R.LEAF").arg(p).arg(leaf)).await {
                Ok(Value::Array(items)) => items,
                _ => return None,
            };
            // Key order, not hash order: the same merges in the same order on every run.
            let mut remote_sets = std::collections::BTreeMap::new();
            for pair in remote.chunks(2) {
                if let [Value::BulkString(k), Value::BulkString(v)] = pair {
                    if let Ok(set) = SiblingSet::decode(v) {
                        remote_sets.insert(k.clone(), set);
                    }
                }
            }
            // Pull: merge what they have into ours.
            for (k, set) in remote_sets.iter().filter(|_| pull) {
                if self.store.merge(p, k, set.clone()).await.is_err() {
                    return None;
                }
            }
            // Push: send our merged set wherever theirs differs or is missing.
            for (k, v) in leaf_entries(self, p, leaf)? {
                let Ok(ours) = SiblingSet::decode(&v) else {
                    continue;
                };
                if remote_sets.get(&k).is_none_or(|r| *r != ours) {
                    let sent = peer.call(redis::cmd("DHT.R.PUT").arg(&k).arg(&v)).await;
                    if !matches!(sent, Ok(Value::Okay | Value::SimpleString(_))) {
                        return None;
                    }
                    moved += 1;
                }
            }
            if pull {
                moved += remote_sets.len();
            }
        }
        self.metrics.anti_entropy_keys.add(moved as u64);
        Some(moved)
    }

    /// One anti-entropy round over the next partitions this node owns, starting at
    /// `*cursor`, then tombstone GC on those it is the first owner of and the hand-off of
    /// copies of partitions it no longer owns (see `reclaim`). Returns the keys exchanged.
    pub(crate) async fn anti_entropy_round(self: &Arc<Self>, cursor: &mut usize) -> usize {
        let q = self.cluster.partitions();
        let mut moved = 0;
        let mut done = 0;
        let mut visited = 0;
        while done < PARTITIONS_PER_ROUND && visited < q {
            let p = (*cursor % q) as u16;
            *cursor = (*cursor + 1) % q;
            visited += 1;
            let owners = self.cluster.owners(p);
            let Some(i) = owners.iter().position(|o| *o == self.cluster.me) else {
                continue;
            };
            done += 1;
            let next = &owners[(i + 1) % owners.len()];
            if owners.len() >= 2 && !self.is_down(next) {
                moved += self.sync_partition(p, next).await.unwrap_or(0);
            }
            if i == 0 {
                // After the exchange, so replicas that just converged agree at once.
                self.collect_tombstones(p).await;
            }
        }
        self.drop_old_copies().await;
        self.metrics.anti_entropy_rounds.inc();
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hash_is_order_independent() {
        let a = entry_hash(b"k1", b"x").wrapping_add(entry_hash(b"k2", b"y"));
        let b = entry_hash(b"k2", b"y").wrapping_add(entry_hash(b"k1", b"x"));
        assert_eq!(a, b);
        assert_ne!(entry_hash(b"k1", b"x"), entry_hash(b"k1x", b""));
        assert!((0..1000).all(|i: u32| leaf_of(&i.to_le_bytes()) < LEAVES));
    }
}
