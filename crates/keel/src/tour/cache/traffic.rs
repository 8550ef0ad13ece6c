//! The cache-aside traffic of the `keel-cache` tour: a slow "database" and a
//! driver that sends Zipf-skewed reads from several threads, with or without a cache,
//! and records hits and latencies per window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use keel_cache::Cache;

use crate::tour::latency_histogram;

/// The "database": every read costs `latency` of wall time and is counted.
pub(super) struct SlowDb {
    latency: Duration,
    calls: AtomicU64,
}

impl SlowDb {
    pub(super) fn value_of(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn read(&self, key: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.latency);
        Self::value_of(key)
    }
}

/// Hits, requests and latencies (ns) of one window of requests.
pub(super) type Window = (u64, u64, Histogram<u64>);

/// One variant's per-window figures.
pub(super) struct Run {
    pub(super) name: &'static str,
    /// (hits, requests, latency histogram) per window.
    pub(super) windows: Vec<Window>,
    pub(super) all: Histogram<u64>,
    pub(super) elapsed: Duration,
    pub(super) requests: u64,
    pub(super) db_calls: u64,
    pub(super) wrong: u64,
    pub(super) hits: u64,
}

pub(super) fn run_variant(
    name: &'static str,
    cache: Option<&Cache<u64, u64>>,
    keys: &[u64],
    threads: usize,
    windows: usize,
    db_latency: Duration,
) -> Run {
    let db = SlowDb {
        latency: db_latency,
        calls: AtomicU64::new(0),
    };
    let per_thread = keys.len() / threads;
    let per_window = (per_thread / windows).max(1);
    let start = Instant::now();
    let results: Vec<(Vec<Window>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let slice = &keys[t * per_thread..(t + 1) * per_thread];
                let db = &db;
                s.spawn(move || {
                    let mut out: Vec<Window> =
                        (0..windows).map(|_| (0, 0, latency_histogram())).collect();
                    let mut wrong = 0;
                    for (i, &key) in slice.iter().enumerate() {
                        let w = (i / per_window).min(windows - 1);
                        let t0 = Instant::now();
                        let (value, hit) = match cache {
                            None => (db.read(key), false),
                            Some(cache) => match cache.get(&key) {
                                Some(v) => (v, true),
                                None => (
                                    cache.get_or_load(key, || db.read(key)).unwrap_or(u64::MAX),
                                    false,
                                ),
                            },
                        };
                        let ns = (t0.elapsed().as_nanos() as u64).max(1);
                        if value != SlowDb::value_of(key) {
                            wrong += 1;
                        }
                        let slot = &mut out[w];
                        slot.0 += u64::from(hit);
                        slot.1 += 1;
                        slot.2.saturating_record(ns);
                    }
                    (out, wrong)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = start.elapsed();
    let mut merged: Vec<Window> = (0..windows).map(|_| (0, 0, latency_histogram())).collect();
    let mut all = latency_histogram();
    let mut wrong = 0;
    for (per_window, w) in results {
        wrong += w;
        for (slot, (h, r, hist)) in merged.iter_mut().zip(per_window) {
            slot.0 += h;
            slot.1 += r;
            let _ = slot.2.add(&hist);
            let _ = all.add(&hist);
        }
    }
    let requests = merged.iter().map(|w| w.1).sum();
    let hits = merged.iter().map(|w| w.0).sum();
    Run {
        name,
        windows: merged,
        all,
        elapsed,
        requests,
        db_calls: db.calls.load(Ordering::Relaxed),
        wrong,
        hits,
    }
}
