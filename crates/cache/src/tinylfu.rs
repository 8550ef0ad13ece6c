//! W-TinyLFU (Einziger, Friedman & Manes, 2017; the policy of Caffeine and
//! moka), built from the same arena lists as S3-FIFO: a small **window**
//! FIFO, a **main** CLOCK, and a frequency sketch that decides who may enter
//! main.
//!
//! - **Window** (0.5 % of the capacity, by weight, at least one entry; the
//!   arena's small list):
//!   every new key enters here, so a burst of new keys that are read again
//!   soon gets its chance. When the window is over its share, its oldest
//!   entry is the **candidate** to enter main.
//! - **Main** (the rest): a queue swept by a hand from the oldest end, as
//!   S3-FIFO's main — an entry whose access counter (0..=3) is above zero
//!   has it decremented and is passed; the first at zero is main's
//!   **victim**. A hit only bumps the counter.
//! - **Admission**: while main has room the candidate simply moves in. Once
//!   main is full, the candidate enters only if the sketch
//!   ([`crate::sketch`]) estimates it was seen *more often* than main's
//!   victim; then the victim is evicted, otherwise the candidate is. A scan
//!   or a stream of one-hit wonders is seen once per key, so its keys lose
//!   every duel and leave from the window; main keeps the keys that are
//!   actually popular.
//!
//! Every access — hit, new key, update — is recorded in the sketch, so the
//! sketch, not a ghost queue, remembers keys the cache no longer holds.
//! Each eviction is O(1) amortised: a candidate moves at most once, and each
//! step of the hand spends one counter unit that only a hit adds.

use crate::arena::{Arena, NIL};
use crate::sketch::FrequencySketch;

/// The window's share of the capacity, per mille. Caffeine and moka use
/// 1 %; 0.5 % measured 0.001–0.002 better on all three `keel-bench cache`
/// traces (2 % lost 0.002–0.003), so recency matters less than frequency
/// on them.
pub(crate) const WINDOW_PER_MILLE: u64 = 5;

/// What [`TinyLfu::victim`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Evict this entry (still linked, on the window or on main).
    Evict(u32),
    /// Nothing but `keep` is left.
    Nothing,
}

/// W-TinyLFU's per-cache (per-shard) state besides the arena lists: the
/// window's weight and share, and the sketch.
#[derive(Debug)]
pub(crate) struct TinyLfu {
    pub(crate) sketch: FrequencySketch,
    /// Weight on the window (the arena's small list).
    window_weight: u64,
    window_target: u64,
    /// Weight main may hold before a candidate must win a duel.
    main_target: u64,
}

impl TinyLfu {
    /// For a capacity of `max_weight`; `entries` sizes the sketch.
    pub(crate) fn new(max_weight: u64, entries: u64) -> Self {
        let window_target = (max_weight.saturating_mul(WINDOW_PER_MILLE) / 1000).max(1);
        Self {
            sketch: FrequencySketch::new(entries),
            window_weight: 0,
            window_target,
            main_target: max_weight.saturating_sub(window_target).max(1),
        }
    }

    /// Links a new entry at the head of the window.
    #[inline]
    pub(crate) fn link_new<K, V>(&mut self, arena: &mut Arena<K, V>, idx: u32) {
        self.window_weight += u64::from(arena.node(idx).weight);
        arena.push_front_small(idx);
    }

    /// Bookkeeping for an entry that leaves (any cause), before the arena
    /// unlinks it.
    #[inline]
    pub(crate) fn on_unlink(&mut self, window: bool, weight: u32) {
        if window {
            self.window_weight -= u64::from(weight);
        }
    }

    /// An entry changed weight in place.
    #[inline]
    pub(crate) fn on_reweigh(&mut self, window: bool, old: u32, new: u32) {
        if window {
            self.window_weight = self.window_weight - u64::from(old) + u64::from(new);
        }
    }

    /// Moves the window's oldest entry `c` to the head of main.
    fn promote<K, V>(&mut self, arena: &mut Arena<K, V>, c: u32) {
        let weight = arena.node(c).weight;
        self.on_unlink(true, weight);
        arena.unlink(c);
        arena.push_front(c);
    }

    /// Picks the entry to evict, never `keep` (`NIL` for none), moving
    /// candidates from the window into main on the way. `total_weight` is
    /// the weight the cache holds now.
    pub(crate) fn victim<K, V>(
        &mut self,
        arena: &mut Arena<K, V>,
        hand: &mut u32,
        keep: u32,
        total_weight: u64,
    ) -> Choice {
        if arena.len() - usize::from(keep != NIL) == 0 {
            return Choice::Nothing;
        }
        loop {
            let main_has_other = arena.tail != NIL && !(arena.tail == keep && arena.head == keep);
            let c = arena.small_tail;
            if c != NIL && (self.window_weight >= self.window_target || !main_has_other) {
                if c == keep {
                    // The entry being written leaves the window without a duel:
                    // it was just accessed.
                    self.promote(arena, c);
                    continue;
                }
                let main_weight = total_weight - self.window_weight;
                if main_weight + u64::from(arena.node(c).weight) <= self.main_target
                    || !main_has_other
                {
                    if !main_has_other && main_weight >= self.main_target {
                        // Main holds only `keep` and is full: the candidate goes.
                        return Choice::Evict(c);
                    }
                    self.promote(arena, c);
                    continue;
                }
                let v = main_victim(arena, hand, keep);
                let cf = self.sketch.frequency(arena.node(c).hash);
                let vf = self.sketch.frequency(arena.node(v).hash);
                if cf > vf {
                    self.promote(arena, c);
                    return Choice::Evict(v);
                }
                return Choice::Evict(c);
            }
            if !main_has_other {
                // The window is empty (else the branch above ran) and main
                // holds only `keep`.
                return Choice::Nothing;
            }
            return Choice::Evict(main_victim(arena, hand, keep));
        }
    }
}

/// Main's CLOCK: from the hand (or the tail) towards the head, wrapping,
/// spend one counter unit per entry passed and stop at the first entry at
/// zero other than `keep`. Main must hold an entry other than `keep`.
fn main_victim<K, V>(arena: &mut Arena<K, V>, hand: &mut u32, keep: u32) -> u32 {
    let mut p = if *hand != NIL { *hand } else { arena.tail };
    loop {
        let node = arena.node_mut(p);
        if p != keep {
            if node.freq == 0 {
                *hand = p;
                return p;
            }
            node.freq -= 1;
        }
        p = if node.prev != NIL {
            node.prev
        } else {
            arena.tail
        };
    }
}
