//! Eviction policies: exact LRU (the default) and SIEVE.
//!
//! Both keep entries on the same arena list (head = newest); they differ in
//! what a hit does and whom the cache evicts when it is full.
//!
//! | | on hit | victim | hit cost |
//! |---|---|---|---|
//! | [`Policy::Lru`] | move the entry to the head | the tail (least recently used) | unlink + relink: ~6 index writes |
//! | [`Policy::Sieve`] | set the entry's `visited` bit | a "hand" walks from the tail towards the head, clearing `visited` bits, and evicts the first unvisited entry; the hand stays where it stopped | one bit write |
//!
//! # SIEVE (Zhang et al., NSDI '24)
//!
//! SIEVE is a FIFO queue with one bit per entry and a hand that remembers
//! where the last eviction stopped. New entries go in at the head; entries
//! never move. A popular entry keeps getting its bit set between two passes
//! of the hand and survives; a one-hit wonder inserted behind the hand is
//! evicted on the next pass ("quick demotion"). On skewed (Zipf) workloads
//! this keeps more of the popular set than LRU, which lets every new key push
//! an old popular one one step closer to the tail. A hit is also cheaper
//! (no list relinking), which matters under a lock.
//!
//! Replacing a key's value (`put` on an existing key) updates it in place
//! and counts as an access: LRU moves it to the head, SIEVE sets its bit.
//!
//! Iteration order is the list order: recency for LRU, insertion order for
//! SIEVE (newest first).

/// Which entry a full cache evicts. Chosen once, at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Policy {
    /// Least recently used: exact LRU order within one cache (or shard).
    #[default]
    Lru,
    /// SIEVE: FIFO with a visited bit and a moving hand (NSDI '24).
    Sieve,
    /// S3-FIFO: small, main and ghost FIFO queues (SOSP '23); see
    /// the crate docs' policy section.
    S3Fifo,
}
