//! The Redis GCRA limiter's local memory of keys the server just refused (feature `redis`).
//!
//! # Why it is correct
//!
//! GCRA's state is one number per key, the theoretical arrival time (TAT), and it only
//! moves forward: an allowed request pushes it ahead, a denied one leaves it, time passing
//! never pulls it back. So once the server has told us "the TAT of `k` is `c` ahead of my
//! now", every later request for `k` whose cost does not fit under `TAT − now` is denied
//! by the server too, whatever other clients did meanwhile (they can only have pushed
//! the TAT further). The limiter remembers `local TAT = sent + c`, `sent` being the local
//! clock read *before* the call went out — no later than the server's `TIME` inside the
//! function — so the remembered TAT is never later than the real one, and a local denial
//! is a denial the server would have given: same `allowed`, a `retry_after` no longer
//! than the server's. It saves the round trip and the server's work for exactly the
//! requests that change nothing on the server (a denial writes nothing).
//!
//! # Clock assumptions
//!
//! Only the *rate* of the local monotonic clock matters, not its offset from the server:
//! the local TAT is measured from a local reading. It must not run faster than the
//! server's clock over one remembered interval (at most the quota's burst tolerance plus
//! one request's interval); NTP-disciplined clocks differ by parts per million, i.e.
//! microseconds over a second. A server whose `TIME` *steps* forward (a wall-clock
//! correction) would allow a key earlier than the cache expects: the cache then denies
//! that key for at most the rest of the remembered interval. The same holds after an
//! administrator deletes a key to reset it.
//!
//! # Memory and concurrency
//!
//! A fixed, direct-mapped table of [`DenyCache::slots`] entries (a power of two) picked
//! by a hash of the key: a new key replaces whatever was in its slot, so memory never
//! grows with the number of keys. Each slot is a small mutex (uncontended it is one
//! compare-and-swap to take and one store to release, nothing next to a network round
//! trip); the key is stored in full and compared, so a hash collision can never deny
//! another key. A slot reuses its `String`'s capacity, so a warm cache does not allocate.

use std::hash::BuildHasher;

use parking_lot::Mutex;

/// Keys longer than this are not remembered (a slot would otherwise keep a huge
/// allocation for good); they always go to the server.
const MAX_KEY_LEN: usize = 256;

#[derive(Debug, Default)]
struct Slot {
    key: String,
    /// The key's TAT on the local clock (ns); `0` = empty.
    tat_ns: u64,
}

/// A bounded map from key to a lower bound of its GCRA TAT on the local clock.
#[derive(Debug)]
pub(crate) struct DenyCache {
    slots: Box<[Mutex<Slot>]>,
    hasher: foldhash::fast::RandomState,
}

impl DenyCache {
    /// A cache of `slots` entries, rounded up to a power of two; `None` for zero.
    pub(crate) fn new(slots: usize) -> Option<Self> {
        if slots == 0 {
            return None;
        }
        let slots = slots.checked_next_power_of_two()?;
        Some(Self {
            slots: (0..slots).map(|_| Mutex::new(Slot::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        })
    }

    /// Number of entries.
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, key: &str) -> &Mutex<Slot> {
        let hash = self.hasher.hash_one(key) as usize;
        &self.slots[hash & (self.slots.len() - 1)]
    }

    /// How far the remembered TAT of `key` is ahead of `now_ns` (local clock), if it is.
    pub(crate) fn ahead(&self, key: &str, now_ns: u64) -> Option<u64> {
        let slot = self.slot(key).lock();
        if slot.tat_ns > now_ns && slot.key == key {
            Some(slot.tat_ns - now_ns)
        } else {
            None
        }
    }

    /// Remembers that `key`'s TAT is at least `tat_ns` (local clock); with `only_update`,
    /// only if the key is already remembered (keeping it exact without taking a slot for
    /// a key that has room). Never moves a remembered TAT of the same key back.
    pub(crate) fn remember(&self, key: &str, tat_ns: u64, only_update: bool) {
        if key.len() > MAX_KEY_LEN || tat_ns == 0 {
            return;
        }
        let mut slot = self.slot(key).lock();
        if slot.key == key {
            slot.tat_ns = slot.tat_ns.max(tat_ns);
        } else if !only_update {
            slot.key.clear();
            slot.key.push_str(key);
            slot.tat_ns = tat_ns;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_slots_is_no_cache_and_sizes_round_up_to_a_power_of_two() {
        assert!(DenyCache::new(0).is_none());
        assert_eq!(DenyCache::new(1000).map(|c| c.slots()), Some(1024));
        assert_eq!(DenyCache::new(1).map(|c| c.slots()), Some(1));
    }

    #[test]
    fn a_remembered_tat_is_ahead_until_the_clock_reaches_it() {
        let cache = DenyCache::new(16).expect("non-zero");
        cache.remember("user:1", 1_000, false);
        assert_eq!(cache.ahead("user:1", 400), Some(600));
        assert_eq!(cache.ahead("user:1", 1_000), None);
        assert_eq!(
            cache.ahead("user:2", 400),
            None,
            "another key is never denied"
        );
    }

    #[test]
    fn a_remembered_tat_never_moves_back() {
        let cache = DenyCache::new(16).expect("non-zero");
        cache.remember("k", 2_000, false);
        cache.remember("k", 1_000, false);
        assert_eq!(cache.ahead("k", 0), Some(2_000));
        cache.remember("k", 3_000, true);
        assert_eq!(cache.ahead("k", 0), Some(3_000));
        cache.remember("new", 3_000, true);
        assert_eq!(cache.ahead("new", 0), None, "only_update takes no slot");
    }

    #[test]
    fn many_distinct_keys_stay_within_the_slots_and_collisions_never_cross_keys() {
        // One slot: every key collides; each remembers its own TAT or nothing at all.
        let cache = DenyCache::new(1).expect("non-zero");
        for k in 0..10_000u64 {
            cache.remember(&format!("key:{k}"), 1_000 + k, false);
        }
        assert_eq!(cache.slots(), 1);
        assert_eq!(cache.ahead("key:9999", 0), Some(10_999));
        assert_eq!(cache.ahead("key:9998", 0), None);
    }

    #[test]
    fn oversized_keys_are_not_remembered() {
        let cache = DenyCache::new(4).expect("non-zero");
        let key = "x".repeat(MAX_KEY_LEN + 1);
        cache.remember(&key, 5_000, false);
        assert_eq!(cache.ahead(&key, 0), None);
    }

    #[test]
    fn concurrent_writers_and_readers_only_ever_see_a_keys_own_tat() {
        // Each key's TAT encodes the key (k × 1000 + 1), so a torn slot (key of one
        // writer, TAT of another) would show up as a reading that does not decode to k.
        let cache = DenyCache::new(4).expect("non-zero");
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..20_000u64 {
                        let k = (i * 7 + t) % 64;
                        let key = format!("k{k}");
                        cache.remember(&key, k * 1_000 + 1, false);
                        if let Some(ahead) = cache.ahead(&key, 0) {
                            assert_eq!(ahead, k * 1_000 + 1, "slot of {key} torn");
                        }
                    }
                });
            }
        });
    }
}
