//! Allowed/denied counters: a striped in-process snapshot plus the `metrics` facade.
//!
//! Counting must not become the bottleneck the limiter is measured on: one shared
//! `AtomicU64` bumped by every thread on every decision would bounce one cache line between
//! cores. The snapshot counters are therefore striped — each thread adds to its own
//! cache-padded slot and [`LimiterMetrics::snapshot`] sums the slots. The facade counters
//! (`keel_ratelimit_decisions_total{limiter, outcome}`) are registered once, at
//! construction, so the hot path holds a handle and does no registry lookup.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use crate::Decision;

const STRIPES: usize = 16;

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn stripe() -> usize {
    STRIPE.with(|slot| {
        let mut index = slot.get();
        if index == usize::MAX {
            index = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
            slot.set(index);
        }
        index
    })
}

/// A counter split over cache-padded stripes, one per thread (modulo [`STRIPES`]).
#[derive(Debug, Default)]
pub(crate) struct StripedCounter {
    stripes: [CachePadded<AtomicU64>; STRIPES],
}

impl StripedCounter {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.stripes[stripe()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }
}

/// A point-in-time copy of a limiter's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests denied.
    pub denied: u64,
    /// Keys removed by cleanup because their state was idle (keyed limiters).
    pub keys_removed: u64,
    /// Keys evicted while still active because the hard key cap was hit (keyed limiters).
    pub keys_evicted_active: u64,
    /// Redis calls that failed (Redis limiter).
    pub backend_errors: u64,
    /// Failures answered with "allow" by the fail-open policy (Redis limiter).
    pub failed_open: u64,
    /// Failures answered with "deny" by the fail-closed policy (Redis limiter).
    pub failed_closed: u64,
}

impl MetricsSnapshot {
    /// Allowed + denied.
    pub fn decisions(&self) -> u64 {
        self.allowed + self.denied
    }
}

/// The counters of one limiter.
#[derive(Debug)]
pub struct LimiterMetrics {
    allowed: StripedCounter,
    denied: StripedCounter,
    pub(crate) keys_removed: AtomicU64,
    pub(crate) keys_evicted_active: AtomicU64,
    pub(crate) backend_errors: AtomicU64,
    pub(crate) failed_open: AtomicU64,
    pub(crate) failed_closed: AtomicU64,
    facade: Facade,
}

#[derive(Debug)]
struct Facade {
    allowed: metrics::Counter,
    denied: metrics::Counter,
    keys_removed: metrics::Counter,
    backend_errors: metrics::Counter,
    failed_open: metrics::Counter,
    failed_closed: metrics::Counter,
}

impl LimiterMetrics {
    /// Counters registered under the label `limiter = name`.
    pub fn new(name: &str) -> Self {
        let name = name.to_owned();
        Self {
            allowed: StripedCounter::default(),
            denied: StripedCounter::default(),
            keys_removed: AtomicU64::new(0),
            keys_evicted_active: AtomicU64::new(0),
            backend_errors: AtomicU64::new(0),
            failed_open: AtomicU64::new(0),
            failed_closed: AtomicU64::new(0),
            facade: Facade {
                allowed: metrics::counter!("keel_ratelimit_decisions_total", "limiter" => name.clone(), "outcome" => "allowed"),
                denied: metrics::counter!("keel_ratelimit_decisions_total", "limiter" => name.clone(), "outcome" => "denied"),
                keys_removed: metrics::counter!("keel_ratelimit_keys_removed_total", "limiter" => name.clone()),
                backend_errors: metrics::counter!("keel_ratelimit_backend_errors_total", "limiter" => name.clone()),
                failed_open: metrics::counter!("keel_ratelimit_failures_total", "limiter" => name.clone(), "policy" => "open"),
                failed_closed: metrics::counter!("keel_ratelimit_failures_total", "limiter" => name, "policy" => "closed"),
            },
        }
    }

    #[inline]
    pub(crate) fn record(&self, decision: &Decision) {
        if decision.allowed {
            self.allowed.add(1);
            self.facade.allowed.increment(1);
        } else {
            self.denied.add(1);
            self.facade.denied.increment(1);
        }
    }

    pub(crate) fn record_removed(&self, n: u64) {
        if n > 0 {
            self.keys_removed.fetch_add(n, Ordering::Relaxed);
            self.facade.keys_removed.increment(n);
        }
    }

    pub(crate) fn record_evicted_active(&self, n: u64) {
        if n > 0 {
            self.keys_evicted_active.fetch_add(n, Ordering::Relaxed);
            self.record_removed(n);
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn record_backend_error(&self, failed_open: Option<bool>) {
        self.backend_errors.fetch_add(1, Ordering::Relaxed);
        self.facade.backend_errors.increment(1);
        match failed_open {
            Some(true) => {
                self.failed_open.fetch_add(1, Ordering::Relaxed);
                self.facade.failed_open.increment(1);
            }
            Some(false) => {
                self.failed_closed.fetch_add(1, Ordering::Relaxed);
                self.facade.failed_closed.increment(1);
            }
            None => {}
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            allowed: self.allowed.sum(),
            denied: self.denied.sum(),
            keys_removed: self.keys_removed.load(Ordering::Relaxed),
            keys_evicted_active: self.keys_evicted_active.load(Ordering::Relaxed),
            backend_errors: self.backend_errors.load(Ordering::Relaxed),
            failed_open: self.failed_open.load(Ordering::Relaxed),
            failed_closed: self.failed_closed.load(Ordering::Relaxed),
        }
    }
}
