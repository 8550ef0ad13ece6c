//! Eviction policies: exact LRU (the default), SIEVE, S3-FIFO and
//! W-TinyLFU.
//!
//! LRU and SIEVE keep entries on one arena list (head = newest); S3-FIFO
//! uses a second list for its small queue (see `s3fifo.rs`). They differ in
//! what a hit does and whom the cache evicts when it is full.
//!
//! | | on hit | victim | hit cost |
//! |---|---|---|---|
//! | [`Policy::Lru`] | move the entry to the head | the tail (least recently used) | unlink + relink: ~6 index writes |
//! | [`Policy::Sieve`] | set the entry's `visited` bit | a "hand" walks from the tail towards the head, clearing `visited` bits, and evicts the first unvisited entry; the hand stays where it stopped | one bit write |
//! | [`Policy::TinyLfu`] | bump the entry's counter (0..=3) and count the key in the sketch, unless the counter was at 3 already | the window's oldest (0.5 % window) if the sketch saw it no more often than main's CLOCK victim, else that victim (the candidate moves to main) | one byte write + one sketch increment (one cache line) while the counter is below 3 |
//! | [`Policy::S3Fifo`] | bump the entry's counter (0..=3) | small queue's oldest if it is over 10 % of the capacity: out (hash to the ghost) unless read while in small, then it moves to main; otherwise main's hand, as SIEVE's but spending one counter unit per pass | one byte write |
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
//! # S3-FIFO (Yang et al., SOSP '23)
//!
//! Most keys in real traces are requested once ("one-hit wonders"). S3-FIFO
//! puts every new key in a small FIFO (10 %) and only moves it into the main
//! queue if it is read again while there; the rest leave quickly and leave
//! only their hash behind in a ghost queue, so a key that returns soon after
//! goes straight to main. A scan or a burst of one-time keys therefore churns
//! the small queue and never reaches the popular keys in main.
//!
//! Replacing a key's value (`put` on an existing key) updates it in place
//! and counts as an access: LRU moves it to the head, SIEVE sets its bit,
//! S3-FIFO bumps its counter.
//!
//! # W-TinyLFU (Einziger, Friedman & Manes, 2017)
//!
//! A window FIFO takes new keys; leaving it, a key must beat main's victim
//! on the frequency sketch's estimate to get in (see `tinylfu.rs` and
//! `sketch.rs`). Scans and one-hit wonders are seen once and lose; the best
//! hit ratio of the four on the benchmark's traces (crate docs).
//!
//! Iteration order is the list order: recency for LRU, insertion order for
//! SIEVE (newest first); for S3-FIFO the small queue, then main, each newest
//! first; for W-TinyLFU the window, then main.

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
    /// W-TinyLFU: a 1 % window FIFO, a main CLOCK and a count-min
    /// frequency sketch that admits a key to main only if it was seen more
    /// often than main's victim (Caffeine's and moka's policy); see
    /// `tinylfu.rs` and the crate docs' policy section.
    TinyLfu,
}
