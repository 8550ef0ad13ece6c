//! Hot-key mitigation: spread the reads of a hot key over its replica list.
//!
//! A key that takes, say, 20 % of all reads overloads its primary however well the
//! placement balances *keys*. Since every replica holds the data, reads of a key the
//! [`HotKeyDetector`](crate::HotKeyDetector) flags as hot can rotate over the first
//! `fanout` replicas; writes still go to the primary (or to all replicas, per the
//! replication protocol). Cold keys keep reading from the primary, so caches stay warm.
//! The other mitigation, [`BoundedLoads`](crate::BoundedLoads), caps every node at
//! `(1+ε)` × its fair share instead.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::BuildError;
use crate::hash::RingKey;
use crate::metrics::{RingStats, spread_reads_counter};
use crate::node::NodeId;
use crate::placement::Placement;

/// Routes reads: primary for cold keys, round-robin over `fanout` replicas for hot keys.
///
/// Thread-safe (`&self`); the round-robin cursor is one relaxed atomic, whose only job is
/// to rotate — no ordering with other memory is needed.
///
/// # Examples
/// ```
/// use keel_ring::{NodeId, Placement, ReadSpreader, Ring};
/// let mut ring = Ring::new(100).unwrap();
/// for name in ["a", "b", "c", "d"] {
///     ring.add_node(NodeId::new(name).unwrap()).unwrap();
/// }
/// let spreader = ReadSpreader::new(3).unwrap();
/// let primary = ring.node_for("cold").unwrap();
/// assert_eq!(spreader.route(&ring, "cold", false), Some(primary));
/// let mut seen = std::collections::BTreeSet::new();
/// for _ in 0..6 {
///     seen.insert(spreader.route(&ring, "hot", true).unwrap().clone());
/// }
/// assert_eq!(seen.len(), 3);
/// ```
#[derive(Debug)]
pub struct ReadSpreader {
    fanout: usize,
    cursor: AtomicU64,
    spread_reads: AtomicU64,
    counter: ::metrics::Counter,
}

impl ReadSpreader {
    /// Spreads hot reads over the first `fanout` replicas. Any `fanout` is accepted: a
    /// route uses `min(fanout, members)` replicas and allocates only for those.
    ///
    /// # Errors
    /// [`BuildError::ZeroParameter`] if `fanout` is 0.
    pub fn new(fanout: usize) -> Result<Self, BuildError> {
        if fanout == 0 {
            return Err(BuildError::ZeroParameter { what: "fanout" });
        }
        Ok(Self {
            fanout,
            cursor: AtomicU64::new(0),
            spread_reads: AtomicU64::new(0),
            counter: spread_reads_counter(),
        })
    }

    /// The fan-out.
    pub fn fanout(&self) -> usize {
        self.fanout
    }

    /// Reads that were sent to a replica list rather than the primary.
    pub fn spread_reads(&self) -> u64 {
        self.spread_reads.load(Ordering::Relaxed)
    }

    /// Counters: `spread_reads` (the other fields are 0).
    pub fn stats(&self) -> RingStats {
        RingStats {
            spread_reads: self.spread_reads(),
            ..RingStats::default()
        }
    }

    /// The node to read `key` from; `hot` usually comes from
    /// [`HotKeyDetector::is_hot`](crate::HotKeyDetector::is_hot).
    ///
    /// # Examples
    /// ```
    /// use keel_ring::{NodeId, Placement, ReadSpreader, Rendezvous};
    /// let mut hrw = Rendezvous::new();
    /// for name in ["a", "b", "c"] {
    ///     hrw.add_node(NodeId::new(name).unwrap()).unwrap();
    /// }
    /// let spreader = ReadSpreader::new(2).unwrap();
    /// let replicas = hrw.replicas("hot", 2);
    /// assert_eq!(spreader.route(&hrw, "hot", true), Some(replicas[0]));
    /// assert_eq!(spreader.route(&hrw, "hot", true), Some(replicas[1]));
    /// assert_eq!(spreader.route(&hrw, "hot", false), Some(replicas[0])); // cold: primary
    /// assert_eq!(spreader.stats().spread_reads, 2);
    /// ```
    pub fn route<'p, P: Placement, K: RingKey + ?Sized>(
        &self,
        placement: &'p P,
        key: &K,
        hot: bool,
    ) -> Option<&'p NodeId> {
        let hash = key.ring_hash();
        if !hot || self.fanout == 1 {
            return placement.node_for_hash(hash);
        }
        // `fanout` is the caller's number; never reserve more than there are nodes.
        let mut replicas = Vec::with_capacity(self.fanout.min(placement.len()));
        placement.replica_indices_for_hash(hash, self.fanout, &mut replicas);
        if replicas.is_empty() {
            return None;
        }
        self.spread_reads.fetch_add(1, Ordering::Relaxed);
        self.counter.increment(1);
        let turn = self.cursor.fetch_add(1, Ordering::Relaxed) as usize % replicas.len();
        Some(&placement.nodes()[replicas[turn]])
    }
}
