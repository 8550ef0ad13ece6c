//! Counters: the [`RingStats`] snapshot and the `metrics` facade.
//!
//! # The rule
//!
//! - **Lookups are never counted.** `node_for`, `replicas` and the `*_for_hash` methods
//!   cost 3–30 ns (Maglev, ring); even a relaxed atomic increment on a shared line would
//!   be a large share of that and would bounce a cache line between reader threads.
//!   Count lookups in the caller if you need them.
//! - **Stateful operations count per event**, into a plain field of the component (for
//!   [`RingStats`]) and into the facade through a handle registered once at construction
//!   (`metrics::Counter`, so an event costs no registry lookup). These are
//!   [`BoundedLoads::acquire`](crate::BoundedLoads::acquire) / `release`,
//!   [`HotKeyDetector::observe`](crate::HotKeyDetector::observe) (and its evictions and
//!   rescales) and hot-key routing in [`ReadSpreader::route`](crate::ReadSpreader::route):
//!   each already does a hash-map or heap update that costs far more than the increment.
//! - **Membership changes** (rare, and they rebuild the lookup structure) go to the facade
//!   per change as `keel_ring_membership_changes_total{algorithm, change}`.
//!
//! Because the handles are registered at construction, install the global recorder (the
//! Prometheus exporter) before building routers, detectors and spreaders; a component built
//! earlier reports to the no-op recorder.
//!
//! # Names
//!
//! | facade counter | [`RingStats`] field |
//! |---|---|
//! | `keel_ring_bounded_acquired_total` | `acquired` |
//! | `keel_ring_bounded_released_total` | `released` |
//! | `keel_ring_bounded_forwarded_total` | `forwarded` |
//! | `keel_ring_hot_key_observed_total` | `observed` |
//! | `keel_ring_hot_key_evictions_total` | `evictions` |
//! | `keel_ring_spread_reads_total` | `spread_reads` |
//! | `keel_ring_membership_changes_total{algorithm, change}` | — |

use std::ops::{Add, AddAssign};

use ::metrics::{Counter, counter};

/// A plain snapshot of the counters a component keeps.
///
/// One type for the whole crate: [`BoundedLoads::stats`](crate::BoundedLoads::stats) fills
/// the bounded-load fields, [`HotKeyDetector::stats`](crate::HotKeyDetector::stats) the
/// hot-key fields, [`ReadSpreader::stats`](crate::ReadSpreader::stats) `spread_reads`;
/// the rest are 0. Snapshots add up (`+`), so a service sums its components into one.
///
/// # Examples
/// ```
/// use keel_ring::{BoundedLoads, NodeId, Placement, RingStats};
/// let mut router = BoundedLoads::new(100, 0.25).unwrap();
/// router.add_node(NodeId::new("a").unwrap()).unwrap();
/// let node = router.acquire("k").unwrap();
/// router.release(&node).unwrap();
/// let stats = router.stats();
/// assert_eq!((stats.acquired, stats.released, stats.observed), (1, 1, 0));
/// assert_eq!((stats + stats).acquired, 2);
/// assert_eq!(RingStats::default().acquired, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Bounded loads: successful acquisitions.
    pub acquired: u64,
    /// Bounded loads: releases.
    pub released: u64,
    /// Bounded loads: acquisitions that did not land on the key's first choice because it
    /// was full.
    pub forwarded: u64,
    /// Bounded loads: full nodes skipped over in total (sum of walk lengths beyond the
    /// first choice).
    pub skipped: u64,
    /// Hot-key detector: events observed.
    pub observed: u64,
    /// Hot-key detector: counters taken over by a new key (the smallest was evicted).
    pub evictions: u64,
    /// Hot-key detector: forward-decay rescales.
    pub rescales: u64,
    /// Read spreader: reads sent to a replica list rather than the primary.
    pub spread_reads: u64,
}

impl Add for RingStats {
    type Output = RingStats;

    fn add(mut self, other: RingStats) -> RingStats {
        self += other;
        self
    }
}

impl AddAssign for RingStats {
    fn add_assign(&mut self, o: RingStats) {
        self.acquired += o.acquired;
        self.released += o.released;
        self.forwarded += o.forwarded;
        self.skipped += o.skipped;
        self.observed += o.observed;
        self.evictions += o.evictions;
        self.rescales += o.rescales;
        self.spread_reads += o.spread_reads;
    }
}

/// Facade handles of a bounded-load router.
#[derive(Debug, Clone)]
pub(crate) struct BoundedCounters {
    pub(crate) acquired: Counter,
    pub(crate) released: Counter,
    pub(crate) forwarded: Counter,
}

impl BoundedCounters {
    pub(crate) fn register() -> Self {
        Self {
            acquired: counter!("keel_ring_bounded_acquired_total"),
            released: counter!("keel_ring_bounded_released_total"),
            forwarded: counter!("keel_ring_bounded_forwarded_total"),
        }
    }
}

/// Facade handles of a hot-key detector.
#[derive(Debug, Clone)]
pub(crate) struct HotKeyCounters {
    pub(crate) observed: Counter,
    pub(crate) evictions: Counter,
}

impl HotKeyCounters {
    pub(crate) fn register() -> Self {
        Self {
            observed: counter!("keel_ring_hot_key_observed_total"),
            evictions: counter!("keel_ring_hot_key_evictions_total"),
        }
    }
}

/// Facade handle of a read spreader.
pub(crate) fn spread_reads_counter() -> Counter {
    counter!("keel_ring_spread_reads_total")
}

/// Records a membership change (rare: registered per call).
pub(crate) fn record_membership_change(algorithm: &'static str, change: &'static str) {
    counter!("keel_ring_membership_changes_total", "algorithm" => algorithm, "change" => change)
        .increment(1);
}
