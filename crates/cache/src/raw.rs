//! The cache core shared by [`crate::LruCache`] and each shard of
//! [`crate::Cache`]: hash table + arena list + timer wheel + policy.
//!
//! The table is a `hashbrown::HashTable<u32>`: it stores only arena indices
//! and asks the arena for the key when it compares, so a key is stored
//! once; the node keeps the key's hash, so growing the table, evicting and
//! removing never hash a key again. Callers hash the key once (the concurrent cache uses the same
//! hash to pick the shard) and pass the hash in.
//!
//! Removed entries are handed to a `sink` closure with their
//! [`RemovalCause`]; the wrappers decide whether to call a listener now, after
//! unlocking, or just drop them.

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::arena::{Arena, NEVER, NIL, NO_SLOT};
use crate::listener::RemovalCause;
use crate::policy::Policy;
use crate::s3fifo::{MAX_FREQ, S3Fifo};
use crate::timer_wheel::{TimerWheel, tick_of};
use crate::tinylfu::{Choice, TinyLfu};

/// Plain (unsynchronised) counters; the concurrent cache keeps one per shard
/// under the shard lock, so counting costs no atomic operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawStats {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) inserts: u64,
    pub(crate) evictions: u64,
    pub(crate) expirations: u64,
}

#[derive(Debug)]
pub(crate) struct RawCache<K, V, S> {
    table: HashTable<u32>,
    arena: Arena<K, V>,
    wheel: TimerWheel,
    policy: Policy,
    /// SIEVE's hand (S3-FIFO's on its main queue): the next candidate, or
    /// `NIL` for "start at the tail".
    hand: u32,
    /// S3-FIFO's queue weights and ghost (idle for the other policies).
    s3: S3Fifo,
    /// W-TinyLFU's window weight and frequency sketch (`None` for the
    /// other policies).
    lfu: Option<TinyLfu>,
    weight: u64,
    max_weight: u64,
    hasher: S,
    pub(crate) stats: RawStats,
}

impl<K, V, S> RawCache<K, V, S> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.arena.len()
    }

    #[inline]
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    #[inline]
    pub(crate) fn max_weight(&self) -> u64 {
        self.max_weight
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> RawCache<K, V, S> {
    /// `max_entries` is `Some` when capacity counts entries (weight 1 each),
    /// which lets the arena stop growing at the capacity.
    pub(crate) fn new(
        policy: Policy,
        max_weight: u64,
        max_entries: Option<usize>,
        hasher: S,
    ) -> Self {
        Self {
            // Sized up front when the capacity counts entries, at twice
            // it: evictions leave tombstones, and once they use up the
            // spare slots hashbrown grows any table more than half full
            // (a full rehash inside one operation). At twice the capacity it
            // is at most half full and only ever cleans up in place — the
            // size churn reaches anyway, without the growth steps.
            table: max_entries.map_or_else(HashTable::new, |n| {
                HashTable::with_capacity(n.saturating_mul(2))
            }),
            arena: Arena::new(max_entries),
            wheel: TimerWheel::new(),
            policy,
            hand: NIL,
            s3: S3Fifo::new(max_weight),
            lfu: (policy == Policy::TinyLfu).then(|| {
                // With a weigher the entry count is unknown: size the
                // sketch for the weight, up to 64 Ki entries.
                let entries = max_entries.map_or(max_weight.min(1 << 16), |n| n as u64);
                TinyLfu::new(max_weight, entries)
            }),
            weight: 0,
            max_weight,
            hasher,
            stats: RawStats::default(),
        }
    }

    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Whether any entry has a deadline (only then is the clock read).
    #[inline]
    pub(crate) fn has_timers(&self) -> bool {
        self.wheel.len() != 0
    }

    /// Bytes held by the table and the arena (capacity), for size reports.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.arena.allocated_bytes()
            + self.table.capacity() * (core::mem::size_of::<u32>() + 1)
            + self.lfu.as_ref().map_or(0, |l| l.sketch.allocated_bytes())
    }

    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table
            .find(hash, |&i| self.arena.key(i).borrow() == key)
            .copied()
    }

    #[inline]
    fn is_expired(&self, idx: u32, now_ns: u64) -> bool {
        let deadline = self.arena.node(idx).deadline;
        deadline != NEVER && deadline <= tick_of(now_ns)
    }

    /// Expires every entry whose deadline tick is `<= tick_of(now_ns)`.
    /// O(1) when the tick has not changed; O(1) amortised per entry otherwise.
    pub(crate) fn advance(&mut self, now_ns: u64, sink: &mut impl FnMut(K, V, RemovalCause)) {
        let now = tick_of(now_ns);
        if now <= self.wheel.elapsed() {
            return;
        }
        let mut cur = self.wheel.advance(&mut self.arena.nodes, now);
        while cur != NIL {
            let next = self.arena.node(cur).timer_next;
            if let Some((k, v)) = self.remove_index(cur) {
                self.stats.expirations += 1;
                sink(k, v, RemovalCause::Expired);
            }
            cur = next;
        }
    }

    /// Looks up and promotes (LRU: move to head; SIEVE: set visited;
    /// S3-FIFO: bump the counter).
    #[inline]
    pub(crate) fn get<Q>(&mut self, hash: u64, key: &Q, now_ns: u64) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(idx) = self.find(hash, key) else {
            self.stats.misses += 1;
            return None;
        };
        if self.is_expired(idx, now_ns) {
            // Not reachable after `advance(now_ns)`; kept so a reader can
            // never see an expired value whatever the call order.
            self.stats.misses += 1;
            return None;
        }
        self.stats.hits += 1;
        self.touch(idx, hash);
        self.arena.entry(idx).map(|(_, v)| v)
    }

    /// Looks up without promoting and without counting.
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q, now_ns: u64) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        if self.is_expired(idx, now_ns) {
            return None;
        }
        self.arena.entry(idx).map(|(_, v)| v)
    }

    /// Remaining deadline tick of a live entry (`NEVER` if it has no TTL).
    pub(crate) fn deadline<Q>(&self, hash: u64, key: &Q, now_ns: u64) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        if self.is_expired(idx, now_ns) {
            return None;
        }
        Some(self.arena.node(idx).deadline)
    }

    /// Inserts or replaces. Returns the replaced entry (the caller
    /// reports it as [`RemovalCause::Replaced`]). Evicted entries, and the new
    /// entry itself when it is heavier than the whole capacity, go to `sink`.
    ///
    /// `deadline` is a tick from [`crate::timer_wheel::deadline_tick`] (which
    /// is after `now_ns`'s tick) or `NEVER`; the caller has advanced the wheel
    /// to `now_ns` first.
    pub(crate) fn put(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u32,
        deadline: u64,
        sink: &mut impl FnMut(K, V, RemovalCause),
    ) -> Option<(K, V)> {
        // A weight of 0 counts as 1: otherwise zero-weight entries would
        // never be evicted and the cache could grow without bound.
        let weight = weight.max(1);
        let weight64 = u64::from(weight);
        let existing = self.find(hash, &key);
        if let Some(idx) = existing
            && weight64 <= self.max_weight
        {
            return Some(self.update_in_place(idx, hash, key, value, weight, deadline, sink));
        }
        let old = existing.and_then(|idx| self.remove_index(idx));
        if weight64 > self.max_weight {
            self.stats.evictions += 1;
            sink(key, value, RemovalCause::Evicted);
            return old;
        }
        // S3-FIFO: a key evicted from small not long ago goes straight to
        // main (looked up before evicting, which may push hashes out).
        let to_main = self.policy == Policy::S3Fifo && self.s3.take_ghost(hash);
        if let Some(lfu) = &mut self.lfu {
            // Counted before eviction: the new key may be the window's
            // candidate in the duel below.
            lfu.sketch.increment(hash);
        }
        while self.weight + weight64 > self.max_weight {
            if !self.evict_one(NIL, sink) {
                break;
            }
        }
        let idx = self.arena.alloc(key, value, weight, deadline, hash);
        match self.policy {
            Policy::S3Fifo => self.s3.link_new(&mut self.arena, idx, to_main),
            Policy::TinyLfu => {
                if let Some(lfu) = &mut self.lfu {
                    lfu.link_new(&mut self.arena, idx);
                }
            }
            Policy::Lru | Policy::Sieve => self.arena.push_front(idx),
        }
        let (table, arena) = (&mut self.table, &self.arena);
        table.insert_unique(hash, idx, |&i| arena.node(i).hash);
        if deadline != NEVER {
            // A deadline at or before the wheel's time would be expired
            // already; clamp so the wheel's invariant holds.
            if deadline <= self.wheel.elapsed() {
                self.arena.node_mut(idx).deadline = self.wheel.elapsed() + 1;
            }
            self.wheel.insert(&mut self.arena.nodes, idx);
        }
        self.weight += weight64;
        self.stats.inserts += 1;
        old
    }

    /// Replaces the value of a live entry without touching the table: an
    /// update counts as an access (LRU: to the head; SIEVE: visited).
    /// Returns `(key, old value)`.
    #[allow(clippy::too_many_arguments)]
    fn update_in_place(
        &mut self,
        idx: u32,
        hash: u64,
        key: K,
        value: V,
        weight: u32,
        deadline: u64,
        sink: &mut impl FnMut(K, V, RemovalCause),
    ) -> (K, V) {
        if self.arena.node(idx).timer_slot != NO_SLOT {
            self.wheel.remove(&mut self.arena.nodes, idx);
        }
        let elapsed = self.wheel.elapsed();
        let node = self.arena.node_mut(idx);
        let old_weight32 = node.weight;
        let old_weight = u64::from(old_weight32);
        node.weight = weight;
        node.deadline = if deadline != NEVER && deadline <= elapsed {
            elapsed + 1
        } else {
            deadline
        };
        let old_value = match node.entry.as_mut() {
            Some((_, v)) => core::mem::replace(v, value),
            // Only live indices come from the table.
            None => unreachable!("arena index {idx} is free"),
        };
        if deadline != NEVER {
            self.wheel.insert(&mut self.arena.nodes, idx);
        }
        self.touch(idx, hash);
        let small = self.arena.node(idx).small;
        match &mut self.lfu {
            Some(lfu) => lfu.on_reweigh(small, old_weight32, weight),
            None => self.s3.on_reweigh(small, old_weight32, weight),
        }
        self.weight = self.weight - old_weight + u64::from(weight);
        self.stats.inserts += 1;
        // A heavier value may need room. The entry was just accepted, so
        // the policy must not pick it: with SIEVE its visited bit alone does
        // not protect it (the hand clears every bit in one pass and would
        // come back to it), so eviction skips it explicitly. It fits on its
        // own (`weight <= max_weight`), so the loop ends before running out
        // of other entries.
        while self.weight > self.max_weight {
            if !self.evict_one(idx, sink) {
                break;
            }
        }
        (key, old_value)
    }

    /// An access to a live entry, as the policy records it.
    #[inline]
    fn touch(&mut self, idx: u32, hash: u64) {
        match self.policy {
            Policy::Lru => self.arena.move_to_front(idx),
            Policy::Sieve => self.arena.node_mut(idx).freq = 1,
            Policy::S3Fifo => S3Fifo::on_access(&mut self.arena.node_mut(idx).freq),
            Policy::TinyLfu => {
                let freq = &mut self.arena.node_mut(idx).freq;
                // A key hit again before the hand's next pass has its
                // counter at the top already: it is popular now, and the
                // sketch would only learn what the counter says. Skipping
                // those increments saves the sketch's cache line on most
                // hits of a hot key.
                if *freq < MAX_FREQ {
                    *freq += 1;
                    if let Some(lfu) = &mut self.lfu {
                        lfu.sketch.increment(hash);
                    }
                }
            }
        }
    }

    /// Removes a live entry by key.
    pub(crate) fn remove<Q>(&mut self, hash: u64, key: &Q, now_ns: u64) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        let expired = self.is_expired(idx, now_ns);
        let entry = self.remove_index(idx)?;
        if expired { None } else { Some(entry) }
    }

    /// Removes everything, handing each live entry to `sink` as `cause`.
    pub(crate) fn clear(&mut self, cause: RemovalCause, sink: &mut impl FnMut(K, V, RemovalCause)) {
        loop {
            let idx = if self.arena.small_tail != NIL {
                self.arena.small_tail
            } else {
                self.arena.tail
            };
            if idx == NIL {
                break;
            }
            if let Some((k, v)) = self.remove_index(idx) {
                sink(k, v, cause);
            }
        }
        self.s3.clear_ghost();
        if let Some(lfu) = &mut self.lfu {
            lfu.sketch.clear();
        }
    }

    /// Evicts one entry chosen by the policy, never `keep` (the entry being
    /// written; `NIL` for none). Returns `false` if there is nothing else.
    fn evict_one(&mut self, keep: u32, sink: &mut impl FnMut(K, V, RemovalCause)) -> bool {
        let victim = match self.policy {
            Policy::Lru => {
                let tail = self.arena.tail;
                if tail == keep {
                    self.arena.node(tail).prev
                } else {
                    tail
                }
            }
            Policy::Sieve => self.sieve_victim(keep),
            Policy::S3Fifo => self.s3.victim(&mut self.arena, &mut self.hand, keep),
            Policy::TinyLfu => {
                let Some(lfu) = &mut self.lfu else {
                    return false;
                };
                match lfu.victim(&mut self.arena, &mut self.hand, keep, self.weight) {
                    Choice::Evict(v) => v,
                    Choice::Nothing => NIL,
                }
            }
        };
        if victim == NIL {
            return false;
        }
        let hash = self.arena.node(victim).hash;
        if self.policy == Policy::S3Fifo && self.arena.node(victim).small {
            // Evicted from S3-FIFO's small queue: remember it in the ghost.
            self.s3.remember(hash, self.arena.len());
        }
        match self.remove_index_hashed(victim, hash) {
            Some((k, v)) => {
                self.stats.evictions += 1;
                sink(k, v, RemovalCause::Evicted);
                true
            }
            None => false,
        }
    }

    /// SIEVE: walk from the hand (or the tail) towards the head, clearing
    /// visited bits, wrapping at the head; stop at the first unvisited entry
    /// other than `keep`. Terminates: one full pass clears every bit, and
    /// `NIL` is returned when `keep` is the only entry.
    fn sieve_victim(&mut self, keep: u32) -> u32 {
        let tail = self.arena.tail;
        if tail == NIL || (tail == keep && self.arena.node(tail).prev == NIL) {
            return NIL;
        }
        let mut p = if self.hand != NIL { self.hand } else { tail };
        loop {
            let node = self.arena.node_mut(p);
            if p != keep {
                if node.freq == 0 {
                    break;
                }
                node.freq = 0;
            }
            p = if node.prev != NIL { node.prev } else { tail };
        }
        // `remove_index` moves the hand on to the victim's newer neighbour.
        self.hand = p;
        p
    }

    /// Unlinks `idx` from the table, the list and the wheel, and frees it.
    fn remove_index(&mut self, idx: u32) -> Option<(K, V)> {
        let hash = self.arena.node(idx).hash;
        self.remove_index_hashed(idx, hash)
    }

    /// [`Self::remove_index`] when the caller has the key's hash.
    fn remove_index_hashed(&mut self, idx: u32, hash: u64) -> Option<(K, V)> {
        if let Ok(found) = self.table.find_entry(hash, |&i| i == idx) {
            found.remove();
        }
        // One read of the node for everything below (each `node(idx)` is
        // a bounds check and a load).
        let node = self.arena.node(idx);
        let (prev, small, weight, timed) = (
            node.prev,
            node.small,
            node.weight,
            node.timer_slot != NO_SLOT,
        );
        if self.hand == idx {
            self.hand = prev;
        }
        match &mut self.lfu {
            Some(lfu) => lfu.on_unlink(small, weight),
            None => self.s3.on_unlink(small, weight),
        }
        self.arena.unlink(idx);
        if timed {
            self.wheel.remove(&mut self.arena.nodes, idx);
        }
        self.weight -= u64::from(weight);
        self.arena.free(idx)
    }

    /// Live entries in list order (head first), skipping expired ones.
    pub(crate) fn iter(&self, now_ns: u64) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.arena
            .indices()
            .filter(move |&idx| !self.is_expired(idx, now_ns))
            .filter_map(|idx| self.arena.entry(idx).map(|(k, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a count capacity the table is sized up front: filling the
    /// cache and churning through many more keys never grows or reallocates
    /// it (sized at the capacity, churn made it grow).
    #[test]
    fn a_counted_cache_never_regrows_its_table() {
        for policy in [Policy::Lru, Policy::Sieve, Policy::S3Fifo, Policy::TinyLfu] {
            let mut raw: RawCache<u64, u64, foldhash::fast::RandomState> =
                RawCache::new(policy, 3_000, Some(3_000), Default::default());
            assert!(raw.table.capacity() >= 3_000, "{policy:?}");
            // `capacity()` moves with tombstones; the allocation does not.
            let bytes = raw.table.allocation_size();
            let mut sink = |_: u64, _: u64, _: RemovalCause| {};
            for k in 0..50_000u64 {
                let h = raw.hash(&k);
                if raw.get(h, &k, 0).is_none() {
                    raw.put(h, k, k, 1, NEVER, &mut sink);
                }
                let r = k / 7;
                let h = raw.hash(&r);
                raw.get(h, &r, 0);
            }
            assert_eq!(raw.len(), 3_000);
            assert_eq!(raw.table.allocation_size(), bytes, "{policy:?}");
        }
    }

    /// S3-FIFO's ghost stays bounded by what main holds, however many keys
    /// pass through the cache, and the small queue's weight stays exact.
    #[test]
    fn s3fifo_ghost_memory_is_bounded() {
        let mut raw: RawCache<u64, u64, foldhash::fast::RandomState> =
            RawCache::new(Policy::S3Fifo, 1_000, Some(1_000), Default::default());
        let mut sink = |_: u64, _: u64, _: RemovalCause| {};
        for k in 0..200_000u64 {
            // Every third key is read right away, so main fills too.
            let h = raw.hash(&k);
            raw.put(h, k, k, 1, NEVER, &mut sink);
            if k % 3 == 0 {
                raw.get(h, &k, 0);
            }
            let main_len = raw.len() - raw.s3.small_len();
            assert!(raw.s3.ghost_len() <= main_len.max(1));
        }
        assert_eq!(raw.len(), 1_000);
        assert!(raw.s3.ghost_len() > 100, "the ghost is in use");
        let small: u64 = raw
            .arena
            .indices()
            .filter(|&i| raw.arena.node(i).small)
            .map(|i| u64::from(raw.arena.node(i).weight))
            .sum();
        assert_eq!(small, raw.s3.small_weight());
        raw.clear(RemovalCause::Removed, &mut sink);
        assert_eq!(raw.s3.ghost_len(), 0);
        assert_eq!(raw.s3.small_weight(), 0);
    }
}
