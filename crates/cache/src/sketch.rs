//! TinyLFU's frequency sketch (Einziger, Friedman & Manes, "TinyLFU: A
//! Highly Efficient Cache Admission Policy", 2017): a count-min sketch of
//! 4-bit counters that estimates how often each key was seen recently.
//!
//! - **One cache line per key**: the sketch is an array of 64-byte
//!   blocks (aligned to 64). A key maps to one block and uses only that
//!   block: one 4-bit counter in each of the block's first four words (the
//!   four rows of the count-min sketch, 16 counters a row) and two bits of
//!   the doorkeeper in its last four words (256 bits). An increment or an
//!   estimate therefore touches one cache line. The earlier layout (counters
//!   in one block, the doorkeeper in a separate array) touched two; on the
//!   W-TinyLFU hit path that second miss was the largest single cost.
//! - **Size**: one block per 4 entries of capacity (rounded up to a power
//!   of two): 16 counters and 64 doorkeeper bits per entry, 16 bytes.
//! - **Estimate**: the minimum of the four counters: collisions only ever
//!   raise a counter, so the minimum is the least polluted.
//! - **Aging**: after `10 × capacity` counted increments every counter is
//!   halved (one shift and mask per word), so the sketch forgets: a key
//!   popular an hour ago does not keep its place against keys popular now.
//!   Counters saturate at 15, which is enough to tell hot from cold.
//! - **Doorkeeper**: a one-bit-per-slot Bloom filter in front of the
//!   counters. A key's first sighting since the last aging only sets its
//!   doorkeeper bits; later ones count. Most keys of a scan or of a stream
//!   of one-hit wonders are seen once, so they never reach the counters and
//!   never crowd out the keys that are counted; the estimate adds one for a
//!   key the doorkeeper has seen. It is cleared at every aging.
//!
//! The input is the key's 64-bit hash (already computed for the table); it is
//! remixed here so the sketch's bits are independent of the bits hashbrown
//! and the shard selection use.

/// Halve every counter after this many counted increments per counter word.
const SAMPLE_FACTOR: u64 = 10;
/// The low bit of every 4-bit counter.
const ONE_MASK: u64 = 0x1111_1111_1111_1111;
/// Every counter bit but the top one of each counter (after `>> 1`).
const RESET_MASK: u64 = 0x7777_7777_7777_7777;
/// Counter words (rows) per block; the other four words are the doorkeeper.
const ROWS: usize = 4;

/// One cache line: four rows of 16 counters, then 256 doorkeeper bits.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Block {
    counters: [u64; ROWS],
    door: [u64; 4],
}

/// A count-min sketch of 4-bit counters with a doorkeeper and periodic
/// halving (see the module docs).
#[derive(Debug)]
pub(crate) struct FrequencySketch {
    blocks: Box<[Block]>,
    /// `blocks.len() - 1`.
    block_mask: u64,
    /// Counted increments since the last halving.
    additions: u64,
    /// Counted increments between halvings.
    sample_size: u64,
}

impl FrequencySketch {
    /// A sketch for about `entries` live entries (at least one block).
    pub(crate) fn new(entries: u64) -> Self {
        let counter_words = entries.clamp(ROWS as u64, 1 << 26).next_power_of_two();
        let blocks = (counter_words / ROWS as u64) as usize;
        Self {
            blocks: vec![Block::default(); blocks].into_boxed_slice(),
            block_mask: (blocks - 1) as u64,
            additions: 0,
            sample_size: SAMPLE_FACTOR * counter_words,
        }
    }

    /// Bytes held by the counters and the doorkeeper.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.blocks.len() * core::mem::size_of::<Block>()
    }

    /// The key's block index and the remixed hash whose low 32 bits pick
    /// the counters (bits 0..16) and the doorkeeper bits (16..32).
    #[inline]
    fn locate(&self, hash: u64) -> (usize, u64) {
        // A multiply-xorshift remix: the block comes from the high bits,
        // the slots from the low ones.
        let h = (hash ^ (hash >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let h = h ^ (h >> 32);
        (((h >> 32) & self.block_mask) as usize, h)
    }

    /// The two doorkeeper bits of `h`: `(word, mask)` each.
    #[inline]
    fn door_bits(h: u64) -> [(usize, u64); 2] {
        let a = (h >> 16) & 255;
        let b = (h >> 24) & 255;
        [
            ((a >> 6) as usize, 1u64 << (a & 63)),
            ((b >> 6) as usize, 1u64 << (b & 63)),
        ]
    }

    /// Estimated recent frequency of the key with this hash (0..=16).
    #[inline]
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let (b, h) = self.locate(hash);
        let block = &self.blocks[b];
        let mut min = 15u64;
        for (i, word) in block.counters.iter().enumerate() {
            let shift = ((h >> (i * 4)) & 15) * 4;
            min = min.min((word >> shift) & 15);
        }
        let seen = Self::door_bits(h)
            .iter()
            .all(|&(w, m)| block.door[w] & m != 0);
        (min + u64::from(seen)) as u8
    }

    /// Records one sighting of the key with this hash.
    #[inline]
    pub(crate) fn increment(&mut self, hash: u64) {
        let (b, h) = self.locate(hash);
        let block = &mut self.blocks[b];
        let [(wa, ma), (wb, mb)] = Self::door_bits(h);
        if block.door[wa] & ma == 0 || block.door[wb] & mb == 0 {
            block.door[wa] |= ma;
            block.door[wb] |= mb;
            return;
        }
        // Branch-free: each row adds one unless its counter is at 15.
        let mut added = 0u64;
        for (i, word) in block.counters.iter_mut().enumerate() {
            let shift = ((h >> (i * 4)) & 15) * 4;
            let room = u64::from((*word >> shift) & 15 != 15);
            *word += room << shift;
            added |= room;
        }
        self.additions += added;
        if self.additions >= self.sample_size {
            self.age();
        }
    }

    /// Halves every counter and clears the doorkeeper.
    fn age(&mut self) {
        let mut odd = 0u64;
        for block in self.blocks.iter_mut() {
            for w in block.counters.iter_mut() {
                odd += u64::from((*w & ONE_MASK).count_ones());
                *w = (*w >> 1) & RESET_MASK;
            }
            block.door = [0; 4];
        }
        // Each halved counter loses half of its count, rounding down;
        // `odd / 4` corrects for the four counters per key.
        self.additions = self.additions.saturating_sub(odd >> 2) >> 1;
    }

    /// Forgets everything (`clear` / `invalidate_all`).
    pub(crate) fn clear(&mut self) {
        self.blocks.fill(Block::default());
        self.additions = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(k: u64) -> u64 {
        k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    #[test]
    fn counts_after_the_doorkeeper_and_saturates() {
        let mut s = FrequencySketch::new(1024);
        assert_eq!(s.frequency(mix(1)), 0);
        s.increment(mix(1));
        assert_eq!(
            s.frequency(mix(1)),
            1,
            "the doorkeeper counts the first sighting"
        );
        for expected in 2..=16u8 {
            s.increment(mix(1));
            assert_eq!(s.frequency(mix(1)), expected);
        }
        s.increment(mix(1));
        assert_eq!(s.frequency(mix(1)), 16, "4-bit counters saturate");
    }

    #[test]
    fn an_increment_touches_one_cache_line() {
        assert_eq!(core::mem::size_of::<Block>(), 64);
        assert_eq!(core::mem::align_of::<Block>(), 64);
        let mut s = FrequencySketch::new(4096);
        for k in 0..1_000u64 {
            let before = s.blocks.to_vec();
            s.increment(mix(k));
            s.increment(mix(k));
            let changed = before
                .iter()
                .zip(s.blocks.iter())
                .filter(|(a, b)| a.counters != b.counters || a.door != b.door)
                .count();
            assert!(changed <= 1, "key {k} changed {changed} blocks");
        }
    }

    #[test]
    fn hot_keys_estimate_above_cold_keys() {
        let mut s = FrequencySketch::new(4096);
        for round in 0..8u64 {
            for k in 0..100u64 {
                s.increment(mix(k));
            }
            for k in 0..2_000u64 {
                s.increment(mix(10_000 + round * 2_000 + k));
            }
        }
        let hot: u32 = (0..100u64).map(|k| u32::from(s.frequency(mix(k)))).sum();
        let cold: u32 = (0..100u64)
            .map(|k| u32::from(s.frequency(mix(10_000 + k))))
            .sum();
        assert!(hot >= 100 * 6, "hot keys estimate high: {hot}");
        assert!(cold <= 100 * 2, "keys seen once estimate low: {cold}");
    }

    #[test]
    fn aging_halves_the_counters_and_clears_the_doorkeeper() {
        let mut s = FrequencySketch::new(8);
        for _ in 0..9 {
            s.increment(mix(7));
        }
        assert_eq!(s.frequency(mix(7)), 9);
        s.age();
        assert_eq!(s.frequency(mix(7)), 4, "8 counted / 2, doorkeeper cleared");
        // Enough counted increments trigger aging on their own.
        let mut s = FrequencySketch::new(1024);
        for _ in 0..9 {
            s.increment(mix(7));
        }
        let mut aged = false;
        for k in 0..10 * s.sample_size {
            let before = s.additions;
            s.increment(mix(100 + k % 8192));
            if s.additions < before {
                aged = true;
                break;
            }
        }
        assert!(aged, "counted increments trigger aging");
        assert!(s.frequency(mix(7)) <= 5, "{}", s.frequency(mix(7)));
    }
}
