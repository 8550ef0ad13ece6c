//! S3-FIFO (Yang et al., SOSP '23): three FIFO queues — small, main and
//! ghost — instead of one recency list.
//!
//! - **Small** (≈ 10 % of the capacity, by weight): every new key enters
//!   here. When the small queue is over its share, its oldest entry leaves:
//!   to the head of **main** if it was read again while in small, otherwise
//!   out of the cache — its key's hash goes to the ghost queue. Most keys of
//!   a scan or one-hit wonders are read once, so they leave from here and
//!   never push anything out of main.
//! - **Main** (the rest): a queue with a small access counter (0..=3) per
//!   entry, swept by a hand from the oldest end: an entry at 0 is evicted,
//!   otherwise its counter drops by one and the hand moves on ("lazy
//!   promotion": a hit only bumps the counter). The paper reinserts such an
//!   entry at the head of a FIFO (CLOCK); here the entry stays where it is
//!   and only the hand moves, as in SIEVE — no relinking per step, and
//!   entries promoted from small land at the head, behind the hand's lap.
//! - **Ghost**: hashes (8 bytes + a sequence number, no key or value) of keys
//!   recently evicted from small, as many as main holds entries. A key that
//!   comes back while its hash is still there was evicted too early: it goes
//!   straight into main.
//!
//! A hit is one byte write, like SIEVE. Every step of eviction is O(1): a
//! promotion moves an entry out of small once per insertion, and a
//! reinsertion into main spends one unit of a counter that only hits raise,
//! so the work is O(1) amortised per operation.
//!
//! # Ghost memory
//!
//! The ghost is a FIFO ring of `(hash)` plus a table `hash -> sequence
//! number`. Its length is trimmed on every push to the number of entries
//! main holds (at least 1), so it never holds more hashes than the cache has
//! ever held entries. A ghost hit removes the hash from the table; the ring
//! slot then goes stale and is dropped when it reaches the front.

use std::collections::VecDeque;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::arena::{Arena, NIL};

/// The largest value of an entry's access counter in main.
pub(crate) const MAX_FREQ: u8 = 3;

/// Per-cache (per-shard) S3-FIFO bookkeeping; the queues themselves are the
/// arena's two lists (`small_head..small_tail` and `head..tail`).
#[derive(Debug)]
pub(crate) struct S3Fifo {
    /// Weight on the small queue.
    small_weight: u64,
    /// Entries on the small queue.
    small_len: usize,
    /// The small queue's share of the capacity (≥ 1).
    small_target: u64,
    ghost: Ghost,
}

impl S3Fifo {
    pub(crate) fn new(max_weight: u64) -> Self {
        Self {
            small_weight: 0,
            small_len: 0,
            small_target: (max_weight / 10).max(1),
            ghost: Ghost::default(),
        }
    }

    /// A hit (or an update): bump the counter, saturating at [`MAX_FREQ`].
    #[inline]
    pub(crate) fn on_access(freq: &mut u8) {
        if *freq < MAX_FREQ {
            *freq += 1;
        }
    }

    /// Whether a new key was evicted from small recently (and forgets it):
    /// then it is inserted straight into main.
    #[inline]
    pub(crate) fn take_ghost(&mut self, hash: u64) -> bool {
        self.ghost.take(hash)
    }

    /// Links a new entry: into main after a ghost hit, else into small.
    pub(crate) fn link_new<K, V>(&mut self, arena: &mut Arena<K, V>, idx: u32, to_main: bool) {
        if to_main {
            arena.push_front(idx);
        } else {
            self.small_weight += u64::from(arena.node(idx).weight);
            self.small_len += 1;
            arena.push_front_small(idx);
        }
    }

    /// Bookkeeping for an entry that leaves (any cause); call before the
    /// arena unlinks it. `weight` is its current weight.
    #[inline]
    pub(crate) fn on_unlink(&mut self, small: bool, weight: u32) {
        if small {
            self.small_weight -= u64::from(weight);
            self.small_len -= 1;
        }
    }

    /// An entry on the small queue changed weight in place.
    #[inline]
    pub(crate) fn on_reweigh(&mut self, small: bool, old: u32, new: u32) {
        if small {
            self.small_weight = self.small_weight - u64::from(old) + u64::from(new);
        }
    }

    /// An entry evicted from small: remember its hash, keeping as many
    /// hashes as main holds entries.
    pub(crate) fn remember(&mut self, hash: u64, live_entries: usize) {
        let main_len = live_entries.saturating_sub(self.small_len);
        self.ghost.push(hash, main_len.max(1));
    }

    /// Forgets every remembered hash (`invalidate_all` / `clear`).
    pub(crate) fn clear_ghost(&mut self) {
        self.ghost = Ghost::default();
    }

    /// Hashes the ghost remembers.
    #[cfg(test)]
    pub(crate) fn ghost_len(&self) -> usize {
        self.ghost.map.len()
    }

    /// Entries on the small queue.
    #[cfg(test)]
    pub(crate) fn small_len(&self) -> usize {
        self.small_len
    }

    /// Weight on the small queue.
    #[cfg(test)]
    pub(crate) fn small_weight(&self) -> u64 {
        self.small_weight
    }

    /// Picks the entry to evict, never `keep` (`NIL` for none), moving
    /// entries between queues on the way: small's oldest goes to main if it
    /// was read while in small; in main, a `hand` (SIEVE's, on the main
    /// list; `NIL` = start at the tail) passes entries whose counter is
    /// above zero, spending one unit each, and stops at the first at zero.
    /// Returns the victim,
    /// still linked (on small or main; read `node.small` before removing),
    /// or `NIL` when nothing but `keep` is left.
    pub(crate) fn victim<K, V>(
        &mut self,
        arena: &mut Arena<K, V>,
        hand: &mut u32,
        keep: u32,
    ) -> u32 {
        let others = arena.len() - usize::from(keep != NIL);
        if others == 0 {
            return NIL;
        }
        loop {
            let s = arena.small_tail;
            let main_only_keep = arena.tail == keep && arena.head == keep;
            let from_small = s != NIL
                && (self.small_weight >= self.small_target || arena.tail == NIL || main_only_keep);
            if from_small {
                let node = arena.node_mut(s);
                if s != keep && node.freq == 0 {
                    return s;
                }
                // Read while in small (or being written): promote to main.
                node.freq = 0;
                let weight = node.weight;
                self.on_unlink(true, weight);
                arena.unlink(s);
                arena.push_front(s);
            } else {
                // `others > 0` and small is empty or under its share, so
                // main holds an entry other than `keep`. The hand walks
                // from the tail towards the head and wraps: passing an
                // entry is its reinsertion, without relinking it.
                let p = if *hand != NIL { *hand } else { arena.tail };
                let node = arena.node_mut(p);
                if p != keep {
                    if node.freq == 0 {
                        *hand = p;
                        return p;
                    }
                    node.freq -= 1;
                }
                *hand = if node.prev != NIL {
                    node.prev
                } else {
                    arena.tail
                };
            }
        }
    }
}

/// A bounded FIFO of hashes with O(1) membership.
#[derive(Debug, Default)]
struct Ghost {
    /// Hashes in push order; slot `i` has sequence number `front_seq + i`.
    ring: VecDeque<u64>,
    front_seq: u64,
    /// `(hash, sequence number of its latest push)` for every remembered hash.
    map: HashTable<(u64, u64)>,
}

impl Ghost {
    fn push(&mut self, hash: u64, cap: usize) {
        let seq = self.front_seq + self.ring.len() as u64;
        self.ring.push_back(hash);
        // One probe: update the sequence number of a hash already there.
        match self.map.entry(hash, |e| e.0 == hash, |e| e.0) {
            Entry::Occupied(mut e) => e.get_mut().1 = seq,
            Entry::Vacant(e) => {
                e.insert((hash, seq));
            }
        }
        while self.ring.len() > cap {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            if let Ok(e) = self.map.find_entry(old, |e| e.0 == old)
                && e.get().1 == self.front_seq
            {
                e.remove();
            }
            self.front_seq += 1;
        }
    }

    fn take(&mut self, hash: u64) -> bool {
        if self.map.is_empty() {
            return false;
        }
        match self.map.find_entry(hash, |e| e.0 == hash) {
            Ok(e) => {
                e.remove();
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghost_is_a_bounded_fifo() {
        let mut g = Ghost::default();
        for h in 0..10u64 {
            g.push(h, 4);
        }
        assert_eq!(g.ring.len(), 4);
        assert_eq!(g.map.len(), 4);
        assert!(!g.take(5));
        assert!(g.take(6));
        assert!(!g.take(6), "a ghost hit forgets the hash");
        // The stale slot of 6 leaves the ring without touching the table.
        g.push(6, 4);
        g.push(20, 4);
        assert_eq!(g.ring.len(), 4);
        assert!(g.take(6));
        assert!(g.take(20));
        assert!(g.take(9));
        assert!(!g.take(7), "pushed out by the cap");
    }

    #[test]
    fn a_repeated_hash_is_kept_by_its_latest_push() {
        let mut g = Ghost::default();
        g.push(1, 3);
        g.push(2, 3);
        g.push(1, 3);
        g.push(3, 3); // drops the first push of 1: the latest one stays
        assert!(g.take(1));
        assert!(g.take(2));
        assert!(g.take(3));
        assert!(g.map.is_empty());
    }

    #[test]
    fn shrinking_the_cap_trims_the_ring() {
        let mut g = Ghost::default();
        for h in 0..100u64 {
            g.push(h, 100);
        }
        g.push(100, 10);
        assert_eq!(g.ring.len(), 10);
        assert_eq!(g.map.len(), 10);
    }
}
