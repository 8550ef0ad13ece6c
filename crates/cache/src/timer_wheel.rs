//! A hierarchical timer wheel that expires entries proactively, in O(1)
//! amortised time per entry.
//!
//! # Why a wheel
//!
//! Checking the deadline on `get` is enough to never *return* an expired
//! entry, but an entry nobody reads again would keep its memory forever. The
//! cache must find expired entries without scanning. Options:
//!
//! | index | schedule | cancel | find expired |
//! |---|---|---|---|
//! | scan everything | O(1) | O(1) | O(n) |
//! | `BTreeMap<(deadline, key)>` (mini-redis) | O(log n) | O(log n) | O(log n) each |
//! | FIFO list (only if every entry has the same TTL) | O(1) | O(1) | O(1) each |
//! | hierarchical wheel (Varghese & Lauck; tokio, Kafka, Caffeine) | O(1) | O(1) | O(1) amortised each |
//!
//! # Layout
//!
//! Time is counted in ticks of 2^20 ns (≈ 1.05 ms). There are 6 levels of 64
//! slots; a slot at level `L` spans 64^L ticks, so the wheel covers 2^36 ticks
//! (≈ 2.2 years) and further deadlines wrap at the top level and are
//! re-checked. An entry goes to the level of the highest 6-bit group in which
//! its deadline differs from the wheel's current time (the same rule as
//! tokio's timer). Each slot is an intrusive doubly linked list through the
//! arena nodes (`timer_prev`/`timer_next`), so cancelling an entry (removed or
//! replaced) is O(1). A 64-bit occupancy mask per level finds the next busy
//! slot with one `trailing_zeros`.
//!
//! When time passes a slot's start, the slot is emptied: entries whose
//! deadline has passed are expired, the others are re-inserted at a lower
//! level ("cascading"). An entry cascades at most once per level, so the
//! total work is O(levels) per entry, O(1) amortised.
//!
//! # Resolution
//!
//! A deadline is rounded *up* to the next tick boundary after
//! `now + ttl`: an entry lives at least its TTL and at most one tick longer,
//! and every entry whose deadline tick has passed is removed exactly when
//! the wheel is advanced. Both the wheel and the `get` check use the same
//! tick, so "removed by the wheel" and "invisible to readers" agree.

use crate::arena::{NIL, NO_SLOT, Node};

/// log2 of a tick in nanoseconds.
pub(crate) const TICK_SHIFT: u32 = 20;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const LEVELS: usize = 6;

/// The tick that contains `now_ns`.
#[inline]
pub(crate) fn tick_of(now_ns: u64) -> u64 {
    now_ns >> TICK_SHIFT
}

/// The deadline tick of an entry written at `now_ns` with `ttl_ns` to live:
/// the first tick boundary strictly after `now + ttl`.
#[inline]
/// Nanoseconds from `origin` to the clock's now (0 if the clock is behind
/// `origin`, `u64::MAX` after ≈ 584 years): the time base of every deadline.
pub(crate) fn elapsed_ns(clock: &quanta::Clock, origin: quanta::Instant) -> u64 {
    clock
        .now()
        .saturating_duration_since(origin)
        .as_nanos()
        .min(u128::from(u64::MAX)) as u64
}

pub(crate) fn deadline_tick(now_ns: u64, ttl_ns: u64) -> u64 {
    (now_ns.saturating_add(ttl_ns) >> TICK_SHIFT) + 1
}

/// The wheel: per level, 64 list heads and an occupancy mask.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    /// Boxed: 1.5 KiB that would otherwise sit between a shard's hot
    /// fields and push them onto more cache lines.
    heads: Box<[[u32; SLOTS]; LEVELS]>,
    occupied: [u64; LEVELS],
    /// Every entry with a deadline `<= elapsed` has been expired.
    elapsed: u64,
    len: usize,
}

impl TimerWheel {
    pub(crate) fn new() -> Self {
        Self {
            heads: Box::new([[NIL; SLOTS]; LEVELS]),
            occupied: [0; LEVELS],
            elapsed: 0,
            len: 0,
        }
    }

    /// Number of scheduled entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The tick up to which the wheel has expired everything.
    #[inline]
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    fn level_for(elapsed: u64, when: u64) -> usize {
        let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
        let significant = 63 - masked.leading_zeros();
        ((significant / SLOT_BITS) as usize).min(LEVELS - 1)
    }

    fn slot_for(when: u64, level: usize) -> usize {
        ((when >> (SLOT_BITS as usize * level)) & (SLOTS as u64 - 1)) as usize
    }

    /// Schedules node `idx` at its `deadline`, which must be `> elapsed`.
    pub(crate) fn insert<K, V>(&mut self, nodes: &mut [Node<K, V>], idx: u32) {
        let when = nodes[idx as usize].deadline;
        debug_assert!(
            when > self.elapsed,
            "deadline {when} not after {}",
            self.elapsed
        );
        let level = Self::level_for(self.elapsed, when);
        let slot = Self::slot_for(when, level);
        let head = self.heads[level][slot];
        {
            let node = &mut nodes[idx as usize];
            node.timer_prev = NIL;
            node.timer_next = head;
            node.timer_slot = (level * SLOTS + slot) as u16;
        }
        if head != NIL {
            nodes[head as usize].timer_prev = idx;
        }
        self.heads[level][slot] = idx;
        self.occupied[level] |= 1 << slot;
        self.len += 1;
    }

    /// Cancels node `idx` (it must be scheduled).
    pub(crate) fn remove<K, V>(&mut self, nodes: &mut [Node<K, V>], idx: u32) {
        let (prev, next, at) = {
            let node = &nodes[idx as usize];
            (node.timer_prev, node.timer_next, node.timer_slot)
        };
        debug_assert_ne!(at, NO_SLOT);
        let (level, slot) = (at as usize / SLOTS, at as usize % SLOTS);
        if prev != NIL {
            nodes[prev as usize].timer_next = next;
        } else {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1 << slot);
            }
        }
        if next != NIL {
            nodes[next as usize].timer_prev = prev;
        }
        let node = &mut nodes[idx as usize];
        node.timer_slot = NO_SLOT;
        node.timer_prev = NIL;
        node.timer_next = NIL;
        self.len -= 1;
    }

    /// The earliest busy slot: `(level, slot, start tick)`. Lower levels
    /// always expire before higher ones, so the first busy level wins.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS as usize * level;
            let now_slot = ((self.elapsed >> shift) & (SLOTS as u64 - 1)) as u32;
            // Search from the slot after "now": the current slot can only
            // hold top-level entries that wrapped (due a full cycle later).
            let from = (now_slot + 1) % SLOTS as u32;
            let slot = ((occupied.rotate_right(from).trailing_zeros() + from) as usize) % SLOTS;
            let slot_range = 1u64 << shift;
            let level_range = slot_range << SLOT_BITS;
            let level_start = self.elapsed & !(level_range - 1);
            let mut start = level_start + slot as u64 * slot_range;
            if start <= self.elapsed {
                // Only at the top level: a deadline beyond the wheel's span
                // wrapped around; its slot comes round in the next cycle.
                start += level_range;
            }
            return Some((level, slot, start));
        }
        None
    }

    /// Moves time forward to tick `now`. Returns the expired nodes as a
    /// chain through `timer_next` (already detached from the wheel), for the
    /// caller to remove from the cache.
    pub(crate) fn advance<K, V>(&mut self, nodes: &mut [Node<K, V>], now: u64) -> u32 {
        let mut expired = NIL;
        if now <= self.elapsed {
            return expired;
        }
        while let Some((level, slot, start)) = self.next_expiration() {
            if start > now {
                break;
            }
            self.elapsed = start;
            let mut cur = self.heads[level][slot];
            self.heads[level][slot] = NIL;
            self.occupied[level] &= !(1 << slot);
            while cur != NIL {
                let next = nodes[cur as usize].timer_next;
                self.len -= 1;
                if nodes[cur as usize].deadline <= now {
                    let node = &mut nodes[cur as usize];
                    node.timer_slot = NO_SLOT;
                    node.timer_prev = NIL;
                    node.timer_next = expired;
                    expired = cur;
                } else {
                    self.insert(nodes, cur);
                }
                cur = next;
            }
        }
        self.elapsed = now;
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;

    fn drain<K, V>(arena: &Arena<K, V>, mut head: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while head != NIL {
            out.push(head);
            head = arena.node(head).timer_next;
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn expires_exactly_at_deadline_across_levels() {
        let mut arena: Arena<u64, ()> = Arena::new(None);
        let mut wheel = TimerWheel::new();
        let deadlines = [
            1u64,
            2,
            63,
            64,
            65,
            4095,
            4096,
            4097,
            300_000,
            1 << 30,
            (1 << 36) + 7,
        ];
        let mut ids = Vec::new();
        for &d in &deadlines {
            let idx = arena.alloc(d, (), 1, d, 0);
            wheel.insert(&mut arena.nodes, idx);
            ids.push(idx);
        }
        for (i, &d) in deadlines.iter().enumerate() {
            // One tick before: nothing of this deadline expires.
            let before = wheel.advance(&mut arena.nodes, d - 1);
            assert!(
                drain(&arena, before).is_empty(),
                "deadline {d} expired early"
            );
            let at = wheel.advance(&mut arena.nodes, d);
            assert_eq!(drain(&arena, at), vec![ids[i]], "deadline {d}");
        }
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn big_jump_expires_everything_due_and_keeps_the_rest() {
        let mut arena: Arena<u64, ()> = Arena::new(None);
        let mut wheel = TimerWheel::new();
        for d in 1..=10_000u64 {
            let idx = arena.alloc(d, (), 1, d * 7, 0);
            wheel.insert(&mut arena.nodes, idx);
        }
        let head = wheel.advance(&mut arena.nodes, 35_000);
        let expired = drain(&arena, head);
        assert_eq!(expired.len(), 5_000);
        assert!(expired.iter().all(|&i| arena.node(i).deadline <= 35_000));
        assert_eq!(wheel.len(), 5_000);
    }

    #[test]
    fn cancelled_entries_never_expire() {
        let mut arena: Arena<u64, ()> = Arena::new(None);
        let mut wheel = TimerWheel::new();
        let a = arena.alloc(1, (), 1, 100, 0);
        let b = arena.alloc(2, (), 1, 100, 0);
        wheel.insert(&mut arena.nodes, a);
        wheel.insert(&mut arena.nodes, b);
        wheel.remove(&mut arena.nodes, a);
        let head = wheel.advance(&mut arena.nodes, 1_000);
        assert_eq!(drain(&arena, head), vec![b]);
    }

    #[test]
    fn deadline_rounds_up_to_the_next_tick() {
        let tick = 1u64 << TICK_SHIFT;
        assert_eq!(deadline_tick(0, 0), 1);
        assert_eq!(deadline_tick(0, tick - 1), 1);
        assert_eq!(deadline_tick(0, tick), 2);
        assert_eq!(deadline_tick(u64::MAX, 5), (u64::MAX >> TICK_SHIFT) + 1);
    }
}
