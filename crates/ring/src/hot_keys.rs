//! Streaming hot-key detection: Space-Saving top-k over an exponentially decaying window.
//!
//! **Space-Saving** (Metwally, Agrawal & El Abbadi, 2005) keeps `k` counters. A tracked
//! key's counter is incremented; an untracked key replaces the *smallest* counter `c_min`
//! and starts at `c_min + w` with error `c_min`. Guarantees, for total weight `W`:
//! every key heavier than `W / k` is tracked, and every estimate overshoots by at most its
//! recorded error `≤ W / k`. Memory is O(k) however many distinct keys pass.
//!
//! **Decay** uses forward decay (Cormode, Shkapenyuk, Srivastava & Xu, 2009): an event at
//! time `t` weighs `exp((t − L) / τ)` for a landmark `L`, so old events count
//! exponentially less *relative* to new ones without touching every counter on each tick;
//! dividing by `exp((now − L) / τ)` turns a counter back into a decayed count. When the
//! weights grow large, everything is rescaled and the landmark moves to now. With
//! `τ = half_life / ln 2`, an event's weight halves every `half_life`.
//!
//! Time comes from an injected [`quanta::Clock`], so tests drive the window with
//! `Clock::mock()` instead of sleeping.
//!
//! The detector also keeps a decayed load per node (fed by [`HotKeyDetector::observe`]),
//! so it can report each node's share of the traffic.

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use quanta::{Clock, Instant};

use crate::error::BuildError;
use crate::metrics::{HotKeyCounters, RingStats};
use crate::node::NodeId;

/// The largest accepted capacity `k`: ≈ 1 M counters, each ≈ 60 bytes plus the key
/// (heap entry and index entry), so a detector holds at most ≈ 64 MiB plus its keys
/// however many distinct keys pass. Top-k for hot-key detection needs hundreds, not
/// millions.
pub const MAX_CAPACITY: usize = 1 << 20;

/// Counters reserved at construction; beyond this the heap grows as keys arrive.
const PREALLOCATE_MAX: usize = 4096;

/// Rescale when the forward-decay weight exceeds this (≈ 27.6 τ after the landmark).
const RESCALE_ABOVE: f64 = 1e12;

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotKeyConfig {
    /// Number of Space-Saving counters `k` (memory bound, 1..=[`MAX_CAPACITY`]). Keys
    /// heavier than `1/k` of the decayed traffic are guaranteed to be tracked.
    pub capacity: usize,
    /// Time for an event's weight to halve.
    pub half_life: Duration,
}

impl Default for HotKeyConfig {
    fn default() -> Self {
        Self {
            capacity: 256,
            half_life: Duration::from_secs(10),
        }
    }
}

/// One reported key.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey<K> {
    /// The key.
    pub key: K,
    /// Estimated decayed count (an upper bound; the true value is ≥ `count − error`).
    pub count: f64,
    /// Maximum overestimate of `count`.
    pub error: f64,
    /// `count` as a fraction of all decayed traffic.
    pub share: f64,
}

impl<K> HotKey<K> {
    /// True when even the lower bound `count − error` reaches `share` of the traffic.
    pub fn guaranteed_at(&self, share: f64, total: f64) -> bool {
        self.count - self.error >= share * total
    }
}

/// Counters of a [`HotKeyDetector`]: the crate's [`RingStats`] snapshot (this name is kept
/// for existing callers).
pub type HotKeyStats = RingStats;

#[derive(Debug, Clone)]
struct Counter<K> {
    key: K,
    count: f64,
    error: f64,
}

/// Space-Saving heavy-hitter detector with exponential decay and per-node load shares.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use keel_ring::{HotKeyDetector, NodeId};
/// let (clock, mock) = quanta::Clock::mock();
/// let mut detector = HotKeyDetector::builder()
///     .capacity(16)
///     .half_life(Duration::from_secs(5))
///     .clock(clock)
///     .build()
///     .unwrap();
/// let node = NodeId::new("a").unwrap();
/// for i in 0..1000u64 {
///     let key = if i % 2 == 0 { 0 } else { i };
///     detector.observe(&key, &node);
///     mock.increment(Duration::from_millis(1));
/// }
/// let top = detector.top(1);
/// assert_eq!(top[0].key, 0);
/// assert!(top[0].share > 0.4);
/// ```
#[derive(Debug)]
pub struct HotKeyDetector<K> {
    clock: Clock,
    capacity: usize,
    tau_nanos: f64,
    landmark: Instant,
    /// Min-heap on `count`.
    heap: Vec<Counter<K>>,
    /// Key → position in `heap`.
    index: HashMap<K, usize>,
    total: f64,
    node_load: HashMap<NodeId, f64>,
    stats: RingStats,
    counters: HotKeyCounters,
}

/// Options of a [`HotKeyDetector`]: capacity (default 256), half-life (default 10 s) and
/// the clock (default `quanta::Clock::new()`, a mock in tests).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use keel_ring::{BuildError, HotKeyDetector};
/// let (clock, _mock) = quanta::Clock::mock();
/// let detector: HotKeyDetector<String> = HotKeyDetector::builder()
///     .capacity(64)
///     .half_life(Duration::from_secs(30))
///     .clock(clock)
///     .build()
///     .unwrap();
/// assert_eq!(detector.tracked(), 0);
/// assert!(matches!(
///     HotKeyDetector::<u64>::builder().capacity(0).build(),
///     Err(BuildError::ZeroParameter { what: "capacity" })
/// ));
/// ```
#[must_use]
pub struct HotKeyDetectorBuilder<K> {
    config: HotKeyConfig,
    clock: Option<Clock>,
    key: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for HotKeyDetectorBuilder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotKeyDetectorBuilder")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .finish()
    }
}

impl<K: Hash + Eq + Clone> HotKeyDetectorBuilder<K> {
    /// Number of Space-Saving counters `k` (default 256).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.config.capacity = capacity;
        self
    }

    /// Time for an event's weight to halve (default 10 s).
    pub fn half_life(mut self, half_life: Duration) -> Self {
        self.config.half_life = half_life;
        self
    }

    /// Both settings at once.
    pub fn config(mut self, config: HotKeyConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock time is read from (`quanta::Clock::mock()` in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the detector.
    ///
    /// # Errors
    /// [`BuildError::ZeroParameter`] for capacity 0, [`BuildError::TooLarge`] above
    /// [`MAX_CAPACITY`], [`BuildError::ZeroHalfLife`].
    pub fn build(self) -> Result<HotKeyDetector<K>, BuildError> {
        let config = self.config;
        if config.capacity == 0 {
            return Err(BuildError::ZeroParameter { what: "capacity" });
        }
        if config.capacity > MAX_CAPACITY {
            return Err(BuildError::TooLarge {
                what: "capacity",
                requested: config.capacity as u64,
                limit: MAX_CAPACITY as u64,
            });
        }
        if config.half_life.is_zero() {
            return Err(BuildError::ZeroHalfLife);
        }
        let clock = self.clock.unwrap_or_default();
        let landmark = clock.now();
        Ok(HotKeyDetector {
            clock,
            capacity: config.capacity,
            tau_nanos: config.half_life.as_nanos() as f64 / std::f64::consts::LN_2,
            landmark,
            // Reserve up front only up to a modest size: `capacity` is a bound, and a huge
            // one must not abort the process at construction.
            heap: Vec::with_capacity(config.capacity.min(PREALLOCATE_MAX)),
            index: HashMap::with_capacity(config.capacity.min(PREALLOCATE_MAX)),
            total: 0.0,
            node_load: HashMap::new(),
            stats: RingStats::default(),
            counters: HotKeyCounters::register(),
        })
    }
}

impl<K: Hash + Eq + Clone> HotKeyDetector<K> {
    /// The options, with defaults (256 counters, half-life 10 s, the system clock).
    pub fn builder() -> HotKeyDetectorBuilder<K> {
        HotKeyDetectorBuilder {
            config: HotKeyConfig::default(),
            clock: None,
            key: PhantomData,
        }
    }

    /// Shorthand for `HotKeyDetector::builder().config(config).clock(clock).build()`.
    ///
    /// # Errors
    /// As [`HotKeyDetectorBuilder::build`].
    pub fn new(config: HotKeyConfig, clock: Clock) -> Result<Self, BuildError> {
        Self::builder().config(config).clock(clock).build()
    }

    /// Counters: `observed`, `evictions`, `rescales` (the other fields are 0).
    pub fn stats(&self) -> RingStats {
        self.stats
    }

    /// Number of keys currently tracked (≤ capacity).
    pub fn tracked(&self) -> usize {
        self.heap.len()
    }

    /// Forward-decay weight of an event now, rescaling first if it grew too large.
    fn weight_now(&mut self) -> f64 {
        let now = self.clock.now();
        let age = now.saturating_duration_since(self.landmark).as_nanos() as f64;
        let g = (age / self.tau_nanos).exp();
        if g <= RESCALE_ABOVE {
            return g;
        }
        let scale = 1.0 / g;
        for c in &mut self.heap {
            c.count *= scale;
            c.error *= scale;
        }
        self.total *= scale;
        for load in self.node_load.values_mut() {
            *load *= scale;
        }
        // Loads that decayed to nothing are dropped, so the map only holds active nodes.
        self.node_load.retain(|_, l| *l > f64::MIN_POSITIVE);
        self.landmark = now;
        self.stats.rescales += 1;
        1.0
    }

    /// Current divisor turning stored weights into decayed counts.
    fn decay_divisor(&self) -> f64 {
        let age = self
            .clock
            .now()
            .saturating_duration_since(self.landmark)
            .as_nanos() as f64;
        (age / self.tau_nanos).exp()
    }

    /// Records one request for `key` served by `node`.
    ///
    /// # Examples
    /// ```
    /// use keel_ring::{HotKeyDetector, NodeId};
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let mut detector = HotKeyDetector::builder().capacity(8).clock(clock).build().unwrap();
    /// let (a, b) = (NodeId::new("a").unwrap(), NodeId::new("b").unwrap());
    /// for key in [1u64, 1, 1, 2] {
    ///     detector.observe(&key, if key == 1 { &a } else { &b });
    /// }
    /// assert!(detector.is_hot(&1, 0.5)); // 3 of 4 requests
    /// assert!(!detector.is_hot(&2, 0.5));
    /// assert_eq!(detector.node_shares(), vec![(a, 0.75), (b, 0.25)]);
    /// ```
    pub fn observe(&mut self, key: &K, node: &NodeId) {
        let w = self.observe_key_weighted(key);
        match self.node_load.get_mut(node) {
            Some(load) => *load += w,
            None => {
                self.node_load.insert(node.clone(), w);
            }
        }
    }

    /// Records one request for `key` without node attribution.
    pub fn observe_key(&mut self, key: &K) {
        self.observe_key_weighted(key);
    }

    fn observe_key_weighted(&mut self, key: &K) -> f64 {
        let w = self.weight_now();
        self.total += w;
        self.stats.observed += 1;
        self.counters.observed.increment(1);
        if let Some(&pos) = self.index.get(key) {
            self.heap[pos].count += w;
            self.sift_down(pos);
        } else if self.heap.len() < self.capacity {
            self.heap.push(Counter {
                key: key.clone(),
                count: w,
                error: 0.0,
            });
            let pos = self.heap.len() - 1;
            self.index.insert(key.clone(), pos);
            self.sift_up(pos);
        } else {
            // Replace the minimum (the root).
            let min = self.heap[0].count;
            let old = std::mem::replace(
                &mut self.heap[0],
                Counter {
                    key: key.clone(),
                    count: min + w,
                    error: min,
                },
            );
            self.index.remove(&old.key);
            self.index.insert(key.clone(), 0);
            self.sift_down(0);
            self.stats.evictions += 1;
            self.counters.evictions.increment(1);
        }
        w
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        if let Some(p) = self.index.get_mut(&self.heap[a].key) {
            *p = a;
        }
        if let Some(p) = self.index.get_mut(&self.heap[b].key) {
            *p = b;
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.heap[pos].count < self.heap[parent].count {
                self.swap(pos, parent);
                pos = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].count < self.heap[left].count {
                right
            } else {
                left
            };
            if self.heap[child].count < self.heap[pos].count {
                self.swap(pos, child);
                pos = child;
            } else {
                break;
            }
        }
    }

    /// Total decayed traffic.
    pub fn total(&self) -> f64 {
        self.total / self.decay_divisor()
    }

    /// The `n` hottest tracked keys, hottest first.
    ///
    /// # Examples
    /// ```
    /// use keel_ring::HotKeyDetector;
    /// let (clock, _mock) = quanta::Clock::mock();
    /// let mut detector = HotKeyDetector::builder().capacity(8).clock(clock).build().unwrap();
    /// for key in ["a", "b", "a", "c", "a", "b"] {
    ///     detector.observe_key(&key);
    /// }
    /// let top = detector.top(2);
    /// assert_eq!((top[0].key, top[1].key), ("a", "b"));
    /// assert_eq!(top[0].count, 3.0); // no time passed: no decay
    /// assert_eq!(top[0].share, 0.5);
    /// ```
    pub fn top(&self, n: usize) -> Vec<HotKey<K>> {
        let divisor = self.decay_divisor();
        let total = self.total.max(f64::MIN_POSITIVE);
        let mut all: Vec<&Counter<K>> = self.heap.iter().collect();
        all.sort_by(|a, b| b.count.total_cmp(&a.count));
        all.into_iter()
            .take(n)
            .map(|c| HotKey {
                key: c.key.clone(),
                count: c.count / divisor,
                error: c.error / divisor,
                share: c.count / total,
            })
            .collect()
    }

    /// Every tracked key whose estimated share of the traffic is at least `share`
    /// (no false negatives for `share ≥ 1/k`), hottest first.
    pub fn hot_keys(&self, share: f64) -> Vec<HotKey<K>> {
        self.top(self.heap.len())
            .into_iter()
            .filter(|h| h.share >= share)
            .collect()
    }

    /// Estimated share of the traffic for `key` (0 if not tracked).
    pub fn share_of(&self, key: &K) -> f64 {
        match self.index.get(key) {
            Some(&pos) if self.total > 0.0 => self.heap[pos].count / self.total,
            _ => 0.0,
        }
    }

    /// True when `key`'s estimated share is at least `share`.
    pub fn is_hot(&self, key: &K, share: f64) -> bool {
        self.share_of(key) >= share
    }

    /// Each observed node's share of the decayed traffic, sorted by node name.
    pub fn node_shares(&self) -> Vec<(NodeId, f64)> {
        let total: f64 = self.node_load.values().sum();
        let mut shares: Vec<(NodeId, f64)> = self
            .node_load
            .iter()
            .map(|(n, l)| (n.clone(), if total > 0.0 { l / total } else { 0.0 }))
            .collect();
        shares.sort_by(|a, b| a.0.cmp(&b.0));
        shares
    }

    /// Forgets a node's load (after it left the cluster), keeping memory bounded.
    pub fn forget_node(&mut self, node: &NodeId) {
        self.node_load.remove(node);
    }

    /// Drops every counter and load.
    pub fn clear(&mut self) {
        self.heap.clear();
        self.index.clear();
        self.node_load.clear();
        self.total = 0.0;
        self.landmark = self.clock.now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(capacity: usize) -> (HotKeyDetector<u64>, std::sync::Arc<quanta::Mock>) {
        let (clock, mock) = Clock::mock();
        let d = HotKeyDetector::new(
            HotKeyConfig {
                capacity,
                half_life: Duration::from_secs(1),
            },
            clock,
        )
        .unwrap();
        (d, mock)
    }

    #[test]
    fn rejects_bad_config() {
        let (clock, _) = Clock::mock();
        assert!(matches!(
            HotKeyDetector::<u64>::new(
                HotKeyConfig {
                    capacity: 0,
                    half_life: Duration::from_secs(1)
                },
                clock.clone()
            ),
            Err(BuildError::ZeroParameter { .. })
        ));
        assert!(matches!(
            HotKeyDetector::<u64>::new(
                HotKeyConfig {
                    capacity: 4,
                    half_life: Duration::ZERO
                },
                clock
            ),
            Err(BuildError::ZeroHalfLife)
        ));
    }

    #[test]
    fn exact_when_under_capacity() {
        let (mut d, _mock) = detector(8);
        for (key, times) in [(1u64, 5), (2, 3), (3, 1)] {
            for _ in 0..times {
                d.observe_key(&key);
            }
        }
        let top = d.top(3);
        assert_eq!(top.iter().map(|h| h.key).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(top[0].count, 5.0);
        assert_eq!(top[0].error, 0.0);
        assert!((d.total() - 9.0).abs() < 1e-9);
    }

    #[test]
    fn memory_is_bounded_and_errors_bound_overestimates() {
        let (mut d, _mock) = detector(10);
        for k in 0..10_000u64 {
            d.observe_key(&k);
        }
        assert_eq!(d.tracked(), 10);
        assert_eq!(d.index.len(), 10);
        assert_eq!(d.stats().evictions, 9_990);
        for h in d.top(10) {
            // Each distinct key occurred once: count − error ≤ 1.
            assert!(h.count - h.error <= 1.0 + 1e-9);
            assert!(h.error <= d.total() / 10.0 + 1e-9);
        }
    }

    #[test]
    fn old_traffic_decays_and_rescaling_keeps_answers() {
        let (mut d, mock) = detector(4);
        for _ in 0..100 {
            d.observe_key(&1);
        }
        // Ten half-lives later 1's weight is 100 / 1024 ≈ 0.1; 2 is fresh.
        mock.increment(Duration::from_secs(10));
        for _ in 0..5 {
            d.observe_key(&2);
        }
        assert_eq!(d.top(1)[0].key, 2);
        let c1 = d.top(2)[1].count;
        assert!((c1 - 100.0 / 1024.0).abs() < 1e-6, "{c1}");
        // Far in the future the weights are rescaled, shares unchanged.
        mock.increment(Duration::from_secs(60));
        d.observe_key(&2);
        assert!(d.stats().rescales >= 1);
        assert_eq!(d.top(1)[0].key, 2);
        assert!(d.share_of(&2) > 0.99);
    }

    #[test]
    fn node_shares_sum_to_one_and_forget_cleans_up() {
        let (mut d, _mock) = detector(4);
        let a = NodeId::new("a").unwrap();
        let b = NodeId::new("b").unwrap();
        for i in 0..300u64 {
            d.observe(&i, if i % 3 == 0 { &a } else { &b });
        }
        let shares = d.node_shares();
        assert_eq!(shares.len(), 2);
        assert!((shares[0].1 - 1.0 / 3.0).abs() < 1e-9);
        assert!((shares.iter().map(|s| s.1).sum::<f64>() - 1.0).abs() < 1e-9);
        d.forget_node(&a);
        assert_eq!(d.node_shares().len(), 1);
    }
}
