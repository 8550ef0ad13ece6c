//! TinyLFU's frequency sketch (Einziger, Friedman & Manes, "TinyLFU: A
//! Highly Efficient Cache Admission Policy", 2017): a count-min sketch of
//! 4-bit counters that estimates how often each key was seen recently.
//!
//! - **Counters**: 16 four-bit counters per `u64` word, one word per entry
//!   of capacity (rounded up to a power of two): 8 bytes per entry, plus
//!   8 for the doorkeeper. A key
//!   maps to one 64-byte block (8 words) and to one counter in each of four
//!   words of that block, so an increment or an estimate touches one block
//!   of counters (Caffeine's block layout) plus one doorkeeper word. The estimate is the
//!   minimum of the four counters: collisions only ever raise a counter, so
//!   the minimum is the least polluted.
//! - **Aging**: after `10 × capacity` increments every counter is halved
//!   (one shift and mask per word), so the sketch forgets: a key popular an
//!   hour ago does not keep its place against keys popular now. Counters
//!   saturate at 15, which is enough to tell hot from cold.
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

/// Halve every counter after this many increments per word of the table.
const SAMPLE_FACTOR: u64 = 10;
/// The low bit of every 4-bit counter.
const ONE_MASK: u64 = 0x1111_1111_1111_1111;
/// Every counter bit but the top one of each counter (after `>> 1`).
const RESET_MASK: u64 = 0x7777_7777_7777_7777;

/// A count-min sketch of 4-bit counters with a doorkeeper and periodic
/// halving (see the module docs).
#[derive(Debug)]
pub(crate) struct FrequencySketch {
    table: Box<[u64]>,
    /// One bit per counter slot of a word: the doorkeeper's Bloom filter.
    doorkeeper: Box<[u64]>,
    /// `table.len() / 8 - 1`: which 8-word block a key uses.
    block_mask: u64,
    /// Counted increments since the last halving.
    additions: u64,
    /// Increments between halvings.
    sample_size: u64,
}

impl FrequencySketch {
    /// A sketch for about `entries` live entries (at least one block).
    pub(crate) fn new(entries: u64) -> Self {
        let words = entries.clamp(8, 1 << 26).next_power_of_two() as usize;
        Self {
            table: vec![0; words].into_boxed_slice(),
            doorkeeper: vec![0; words].into_boxed_slice(),
            block_mask: (words / 8 - 1) as u64,
            additions: 0,
            sample_size: SAMPLE_FACTOR * words as u64,
        }
    }

    /// Bytes held by the counters and the doorkeeper.
    pub(crate) fn allocated_bytes(&self) -> usize {
        (self.table.len() + self.doorkeeper.len()) * 8
    }

    /// The block and, for each of the four counters, `(word, shift)`.
    #[inline]
    fn slots(&self, hash: u64) -> (usize, u64) {
        // A multiply-xorshift remix: the block comes from the high bits of
        // one product, the counter positions from the other bits.
        let h = (hash ^ (hash >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let h = h ^ (h >> 32);
        let block = ((h >> 40) & self.block_mask) as usize * 8;
        (block, h)
    }

    /// Word index and bit shift of counter `i` (0..4) for `h`.
    #[inline]
    fn counter(block: usize, h: u64, i: u64) -> (usize, u64) {
        let bits = h >> (i * 8);
        // Counter `i` lives in word `2i` or `2i + 1` of the block.
        let word = block + (2 * i + (bits & 1)) as usize;
        let index = (bits >> 1) & 15;
        (word, index * 4)
    }

    /// The doorkeeper bits (word, mask) for `h`: two bits of one word.
    #[inline]
    fn door(&self, h: u64) -> (usize, u64) {
        let d = h.rotate_left(32).wrapping_mul(0x94D0_49BB_1331_11EB);
        let word = (d >> 12) as usize & (self.doorkeeper.len() - 1);
        let mask = (1u64 << (d & 63)) | (1u64 << ((d >> 6) & 63));
        (word, mask)
    }

    /// Estimated recent frequency of the key with this hash (0..=16).
    #[inline]
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let (block, h) = self.slots(hash);
        let mut min = 15u64;
        for i in 0..4 {
            let (word, shift) = Self::counter(block, h, i);
            min = min.min((self.table[word] >> shift) & 15);
        }
        let (dw, mask) = self.door(h);
        let seen = u64::from(self.doorkeeper[dw] & mask == mask);
        (min + seen) as u8
    }

    /// Records one sighting of the key with this hash.
    #[inline]
    pub(crate) fn increment(&mut self, hash: u64) {
        let (block, h) = self.slots(hash);
        let (dw, mask) = self.door(h);
        let door = &mut self.doorkeeper[dw];
        if *door & mask != mask {
            *door |= mask;
            return;
        }
        let mut added = false;
        for i in 0..4 {
            let (word, shift) = Self::counter(block, h, i);
            let w = &mut self.table[word];
            if (*w >> shift) & 15 != 15 {
                *w += 1 << shift;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.sample_size {
                self.age();
            }
        }
    }

    /// Halves every counter and clears the doorkeeper.
    fn age(&mut self) {
        let mut odd = 0u64;
        for w in self.table.iter_mut() {
            odd += u64::from((*w & ONE_MASK).count_ones());
            *w = (*w >> 1) & RESET_MASK;
        }
        self.doorkeeper.fill(0);
        // Each halved counter loses half of its count, rounding down;
        // `odd / 4` corrects for the four counters per key.
        self.additions = self.additions.saturating_sub(odd >> 2) >> 1;
    }

    /// Forgets everything (`clear` / `invalidate_all`).
    pub(crate) fn clear(&mut self) {
        self.table.fill(0);
        self.doorkeeper.fill(0);
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
