//! Giving disk back: tombstone and expired-value GC, and dropping partition copies a node
//! no longer owns.
//!
//! # Tombstone GC — the rule
//! A delete writes a tombstone, and the tombstone must outlive every copy of the value
//! it deleted: a replica that still holds the value would otherwise push it back (by
//! anti-entropy, read repair or handoff) and the key would **resurrect**. A key is
//! collected on every owner of its partition at once, and only when all of these hold:
//!
//! 1. every sibling of the key is a tombstone (a concurrent live write keeps the key);
//! 2. the newest tombstone is older than the **grace period** (`tombstone_grace`,
//!    default 1 day) on the injected [`Clock`](crate::Clock);
//! 3. no membership change is in progress, every owner of the partition is up, and
//!    **every owner answers that it holds exactly this set** (`DHT.R.SAME`: the hash of
//!    the canonical encoding; a missing key or any other version does not match);
//! 4. then each owner deletes the key **only if its set still hashes the same**
//!    (`DHT.R.REAP`), so a write that arrived in between is kept.
//!
//! Why nothing resurrects: after step 3 no owner holds the deleted value — each holds
//! the tombstone, which superseded it, and merging the old value into a tombstone leaves
//! the tombstone. A replica that was down during the delete is still an owner, so step 3
//! waits until handoff or anti-entropy has given it the tombstone (its old value is then
//! gone too). A write that lands on one owner between steps 3 and 4 is merged into the
//! tombstone there (so again no old value) and keeps that owner's key. The copies left
//! outside the owners are hints on fallback nodes and partition copies on former owners;
//! both are handed to the owners within a handoff interval / an anti-entropy round while
//! their holder is up — the grace period covers a holder that is *down* for up to that
//! long. A holder down for longer than the grace period can bring a deleted value back
//! (the same operational limit as Cassandra's `gc_grace_seconds`).
//!
//! # Expired values: the same rule
//! A value past its TTL reads as absent but still takes disk. It is collected exactly
//! like a tombstone: an expired sibling counts as a tombstone written at its deadline, so
//! a key goes when *every* sibling is a tombstone or expired and the last of them died
//! more than the grace period ago, with the same all-owners agreement. Collecting it
//! sooner, or on one owner alone, would be unsafe for the same reason: the expired version
//! superseded older ones (`SET k v1`, then `SET k v2 EX 10`), and a replica that missed
//! `v2` would push the live `v1` back once no owner held `v2`. Disk used by expiring keys
//! is therefore bounded by the write rate times (TTL + grace period).
//!
//! The partition's first owner runs the check, in its anti-entropy round, for at most
//! [`GC_BATCH`] keys per partition per round (the scan is O(keys in the partition)).
//!
//! # Old partition copies
//! After a join or leave, a node that no longer owns a partition (neither in the current
//! placement nor in one being installed) pushes its copy to every write target of the
//! partition (Merkle comparison, push only: `DHT.R.PUT` answers after a durable merge,
//! which is the new owner's acknowledgement) and, once **all** of them acknowledged,
//! deletes each key whose set is unchanged since it was pushed. A key written meanwhile
//! (a coordinator still on the old layout) stays and goes at the next round. Every
//! anti-entropy round looks for such partitions, so copies left by a crash or a restart
//! go too.

use std::sync::Arc;

use redis::Value;

use crate::node::Inner;
use crate::storage::set_hash;
use crate::version::SiblingSet;

/// Most tombstones checked per partition per round.
pub(crate) const GC_BATCH: usize = 512;
/// Most former partitions handed off and dropped per round.
pub(crate) const OLD_COPIES_PER_ROUND: usize = 16;

/// Encodes `(key, hash)` pairs as command arguments after `p`.
fn pairs_cmd(name: &str, p: u16, keys: &[(Vec<u8>, u64)]) -> redis::Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(p);
    for (k, h) in keys {
        cmd.arg(k.as_slice()).arg(*h);
    }
    cmd
}

/// Parses `key hash key hash …` (the arguments after the partition).
pub(crate) fn parse_pairs(args: &[Vec<u8>]) -> Option<Vec<(Vec<u8>, u64)>> {
    if args.len() % 2 != 0 {
        return None;
    }
    args.chunks(2)
        .map(|c| {
            let h = std::str::from_utf8(&c[1]).ok()?.parse::<u64>().ok()?;
            Some((c[0].clone(), h))
        })
        .collect()
}

/// When every sibling of `set` had died by `now_ms` (a tombstone at its write, a value
/// at its expiry or its write, whichever is later), the latest of those moments; `None`
/// while a sibling is live or when the set is empty.
pub(crate) fn dead_since(set: &SiblingSet, now_ms: u64) -> Option<u64> {
    let mut latest: Option<u64> = None;
    for s in set.siblings() {
        let died = match (&s.value, s.expires_at_ms) {
            (None, _) => s.written_at_ms,
            (Some(_), Some(deadline)) if deadline <= now_ms => deadline.max(s.written_at_ms),
            (Some(_), _) => return None,
        };
        latest = Some(latest.map_or(died, |l| l.max(died)));
    }
    latest
}

impl Inner {
    /// Dead keys of `p` (every sibling a tombstone or expired) that died longer than the
    /// grace period ago, with the hashes of their sets (at most [`GC_BATCH`]).
    fn tombstone_candidates(&self, p: u16) -> Vec<(Vec<u8>, u64)> {
        let grace = u64::try_from(self.config.tombstone_grace.as_millis()).unwrap_or(u64::MAX);
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        let _ = self.store.for_each_in_partition(p, |k, v| {
            if out.len() >= GC_BATCH {
                return;
            }
            let Ok(set) = SiblingSet::decode(v) else {
                return;
            };
            if dead_since(&set, now).is_some_and(|t| t.saturating_add(grace) <= now) {
                out.push((k.to_vec(), set_hash(v)));
            }
        });
        out
    }

    /// Runs the tombstone GC rule (see the module docs) on partition `p`, whose first
    /// owner this node is. Returns the keys deleted here.
    pub(crate) async fn collect_tombstones(&self, p: u16) -> usize {
        let placement = self.cluster.placement();
        if placement.next.is_some() {
            return 0;
        }
        let owners: Vec<String> = placement.current.owners(p).map(str::to_owned).collect();
        if owners.first() != Some(&self.cluster.me) || owners.iter().any(|o| self.is_down(o)) {
            return 0;
        }
        let mut agreed = self.tombstone_candidates(p);
        for owner in owners.iter().filter(|o| **o != self.cluster.me) {
            if agreed.is_empty() {
                return 0;
            }
            let Some(peer) = self.cluster.peer(owner) else {
                return 0;
            };
            let same = match peer.call(&pairs_cmd("DHT.R.SAME", p, &agreed)).await {
                Ok(Value::Array(items)) if items.len() == agreed.len() => items,
                _ => return 0,
            };
            let mut same = same.into_iter();
            agreed.retain(|_| matches!(same.next(), Some(Value::Int(1))));
        }
        if agreed.is_empty() {
            return 0;
        }
        // Every owner holds exactly these tombstones: delete everywhere (conditionally).
        for owner in owners.iter().filter(|o| **o != self.cluster.me) {
            if let Some(peer) = self.cluster.peer(owner) {
                let _ = peer.call(&pairs_cmd("DHT.R.REAP", p, &agreed)).await;
            }
        }
        let removed = self.store.remove_if_unchanged(p, agreed).await.unwrap_or(0);
        self.metrics.tombstones_collected.add(removed as u64);
        removed
    }

    /// True when this node owns `p` now or in the layout being installed.
    fn owns_now_or_next(&self, p: u16) -> bool {
        let placement = self.cluster.placement();
        let me = &self.cluster.me;
        placement.current.owns(me, p) || placement.next.as_ref().is_some_and(|t| t.owns(me, p))
    }

    /// Hands a partition this node no longer owns to its write targets and deletes the
    /// keys all of them acknowledged. Returns the keys deleted, or `None` when a target
    /// could not be reached (nothing deleted).
    pub(crate) async fn drop_old_copy(&self, p: u16) -> Option<usize> {
        if self.owns_now_or_next(p) {
            return Some(0);
        }
        let mut pushed = Vec::new();
        self.store
            .for_each_in_partition(p, |k, v| pushed.push((k.to_vec(), set_hash(v))))
            .ok()?;
        if pushed.is_empty() {
            return Some(0);
        }
        let targets = self.cluster.placement().write_targets(p);
        if targets.is_empty() || targets.contains(&self.cluster.me) {
            return None;
        }
        for target in &targets {
            self.push_partition(p, target).await?;
        }
        // The layout may have changed back while we pushed.
        if self.owns_now_or_next(p) {
            return Some(0);
        }
        let removed = self.store.remove_if_unchanged(p, pushed).await.ok()?;
        self.metrics.old_copies_dropped.add(removed as u64);
        Some(removed)
    }

    /// Drops up to [`OLD_COPIES_PER_ROUND`] partitions this node holds keys of but no
    /// longer owns. Returns the keys deleted.
    pub(crate) async fn drop_old_copies(self: &Arc<Self>) -> usize {
        let mut removed = 0;
        let mut done = 0;
        for p in 0..self.cluster.partitions() {
            if done >= OLD_COPIES_PER_ROUND {
                break;
            }
            let p = p as u16;
            if self.owns_now_or_next(p) || !self.store.partition_has_keys(p).unwrap_or(false) {
                continue;
            }
            done += 1;
            removed += self.drop_old_copy(p).await.unwrap_or(0);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{Sibling, VersionVector};

    fn set_of(siblings: &[(&str, Option<&str>, Option<u64>, u64)]) -> SiblingSet {
        let mut set = SiblingSet::new();
        for (node, value, expires, at) in siblings {
            let s = Sibling::new_write(
                node,
                &VersionVector::new(),
                &SiblingSet::new(),
                value.map(|v| v.as_bytes().to_vec()),
                *expires,
                *at,
            );
            set.insert(s);
        }
        set
    }

    #[test]
    fn a_key_is_dead_only_when_every_sibling_is_a_tombstone_or_expired() {
        assert_eq!(dead_since(&SiblingSet::new(), 100), None);
        // A tombstone dies when written; an expired value at its deadline.
        assert_eq!(dead_since(&set_of(&[("a", None, None, 10)]), 100), Some(10));
        assert_eq!(
            dead_since(&set_of(&[("a", Some("v"), Some(50), 10)]), 100),
            Some(50)
        );
        // Not expired yet, or no TTL: alive.
        assert_eq!(
            dead_since(&set_of(&[("a", Some("v"), Some(150), 10)]), 100),
            None
        );
        assert_eq!(
            dead_since(&set_of(&[("a", Some("v"), None, 10)]), 100),
            None
        );
        // Siblings: the last death counts, and one live sibling keeps the key.
        let mixed = set_of(&[("a", None, None, 70), ("b", Some("v"), Some(40), 10)]);
        assert_eq!(dead_since(&mixed, 100), Some(70));
        let one_live = set_of(&[("a", None, None, 70), ("b", Some("v"), None, 10)]);
        assert_eq!(dead_since(&one_live, 100), None);
    }
}
