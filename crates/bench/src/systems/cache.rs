//! `keel-bench cache`: Keel's concurrent cache (LRU, SIEVE, S3-FIFO and
//! W-TinyLFU)
//! against moka, quick_cache and `Mutex<lru::LruCache>`.
//!
//! # Workload
//!
//! Three seeded key streams (traces); select them with `--scenario zipf`,
//! `--scenario scan` or `--scenario one-hit`:
//!
//! - **zipf**: Zipf (s = 1.0) keys over a key space 10× the capacity.
//! - **scan**: every other key comes from a loop over 2× the capacity of
//!   keys outside the Zipf space (a scan larger than the cache, repeated),
//!   the rest from the Zipf working set.
//! - **one-hit**: every other key is new (never seen before in the stream:
//!   one-hit wonders), the rest from the Zipf working set.
//!
//! Every thread walks the same stream from its own offset. Operation `i` is
//! a write (`insert(k, k + 1)`) when `i % 10 == 9`, otherwise a read that
//! inserts the key on a miss (cache-aside). Each contender's cache is built
//! once per trace and thread count and stays warm across the warm-up and
//! the timed rounds.
//!
//! # Extra columns
//!
//! - `hit_ratio`: hits / reads in the round. Each contender's rounds carry
//!   on where its previous round stopped in the stream (a slow contender
//!   would otherwise replay the same short prefix every round — a smaller
//!   working set — and score higher than over the whole trace); it still
//!   moves a little with load.
//! - `trace_hit_ratio`: hits / reads of a fixed replay on one thread — a
//!   fresh cache, the whole stream once to warm up, then once counted.
//!   It does not depend on timing or load; it can still move by ±0.001
//!   between processes (per-process random hash seeds change the sharding;
//!   moka's maintenance is deferred). Compare policies with this.
//! - `bytes_per_entry`: heap in use (glibc `mallinfo2`: `uordblks + hblkhd`,
//!   all arenas) after filling a fresh cache of the benchmark's capacity with
//!   distinct `u64` keys and values, minus before, divided by the entries
//!   it then holds. Measured once per contender on one thread; it includes
//!   the table, list/arena, per-entry allocations and any spare capacity the
//!   implementation keeps. Absent on non-glibc targets.
//!
//! # Instructions per operation (callgrind)
//!
//! The machine's load moves wall-clock ratios; instruction counts do not.
//! With `KEEL_CACHE_PROFILE=<contender>` (`keel-lru`, `keel-sieve`,
//! `keel-s3fifo`, `keel-tinylfu`, `moka`, `quick_cache`, `mutex-lru`) the
//! benchmark instead replays each selected trace on one thread into a
//! fresh cache of that contender — the whole trace once to warm up, then
//! [`PROFILE_OPS`] operations from its start in `profiled_ops` — and prints
//! that window's hit ratio (and `trace_hit_ratio`, on another fresh cache,
//! after the window). Count only that function:
//!
//! ```text
//! KEEL_CACHE_PROFILE=keel-sieve valgrind --tool=callgrind \
//!     --toggle-collect='*profiled_ops*' target/release/keel-bench cache --scenario one-hit
//! ```
//!
//! and divide the total instructions by [`PROFILE_OPS`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_cache::{Cache, Policy};

use crate::harness::{Contender, Measurement, run_threads};
use crate::workload::zipf_keys;
use crate::{Config, Report};

/// The operations every contender offers.
trait BenchCache: Send + Sync {
    fn read(&self, key: u64) -> bool;
    fn write(&self, key: u64, value: u64);
}

/// Keel, moka and quick_cache share the `get` / `insert(&self)` shape: read, insert on miss.
macro_rules! impl_bench_cache {
    ($($cache:ty),+ $(,)?) => {$(
        impl BenchCache for $cache {
            #[inline]
            fn read(&self, key: u64) -> bool {
                if self.get(&key).is_some() {
                    return true;
                }
                self.insert(key, key);
                false
            }
            #[inline]
            fn write(&self, key: u64, value: u64) {
                self.insert(key, value);
            }
        }
    )+};
}

impl_bench_cache!(
    Cache<u64, u64>,
    moka::sync::Cache<u64, u64>,
    quick_cache::sync::Cache<u64, u64>,
);

impl BenchCache for parking_lot::Mutex<lru::LruCache<u64, u64>> {
    #[inline]
    fn read(&self, key: u64) -> bool {
        let mut cache = self.lock();
        if cache.get(&key).is_some() {
            return true;
        }
        cache.put(key, key);
        false
    }
    #[inline]
    fn write(&self, key: u64, value: u64) {
        self.lock().put(key, value);
    }
}

fn keel(capacity: u64, policy: Policy) -> anyhow::Result<Cache<u64, u64>> {
    Ok(Cache::builder()
        .max_capacity(capacity)
        .policy(policy)
        .build()?)
}

fn moka_cache(capacity: u64) -> moka::sync::Cache<u64, u64> {
    moka::sync::Cache::new(capacity)
}

fn quick(capacity: u64) -> quick_cache::sync::Cache<u64, u64> {
    quick_cache::sync::Cache::new(capacity as usize)
}

fn mutex_lru(capacity: u64) -> anyhow::Result<parking_lot::Mutex<lru::LruCache<u64, u64>>> {
    let cap = std::num::NonZeroUsize::new(capacity as usize)
        .ok_or_else(|| anyhow::anyhow!("zero capacity"))?;
    Ok(parking_lot::Mutex::new(lru::LruCache::new(cap)))
}

/// One round: closed loop on `threads` threads over the shared key stream.
fn measure(
    cache: &dyn BenchCache,
    keys: &[u64],
    cursor: &AtomicU64,
    threads: usize,
    duration: Duration,
) -> Measurement {
    let hits = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    let len = keys.len() as u64;
    let mut m = run_threads(threads, duration, |t| {
        let mut counts = Counts {
            hits: 0,
            reads: 0,
            sink_hits: &hits,
            sink_reads: &reads,
        };
        // Threads start far apart in the stream so they do not move in lockstep.
        let offset = (t as u64)
            .wrapping_mul(len / 7 + 13)
            .wrapping_add(cursor.load(Ordering::Relaxed));
        move |i: u64| {
            let key = keys[((i + offset) % len) as usize];
            if i % 10 == 9 {
                cache.write(key, key + 1);
            } else {
                // A method call moves the whole `Counts` into the closure
                // (field accesses would capture copies of the `u64`s).
                counts.record(cache.read(key));
            }
        }
    });
    // The next round continues where this one stopped.
    cursor.fetch_add(m.ops / threads.max(1) as u64, Ordering::Relaxed);
    let reads = reads.load(Ordering::Relaxed);
    if reads > 0 {
        m.extra.insert(
            "hit_ratio".into(),
            hits.load(Ordering::Relaxed) as f64 / reads as f64,
        );
    }
    m
}

/// Per-thread counters, added to the shared totals when the worker ends.
struct Counts<'a> {
    hits: u64,
    reads: u64,
    sink_hits: &'a AtomicU64,
    sink_reads: &'a AtomicU64,
}

impl Counts<'_> {
    #[inline]
    fn record(&mut self, hit: bool) {
        self.reads += 1;
        self.hits += u64::from(hit);
    }
}

impl Drop for Counts<'_> {
    fn drop(&mut self) {
        self.sink_hits.fetch_add(self.hits, Ordering::Relaxed);
        self.sink_reads.fetch_add(self.reads, Ordering::Relaxed);
    }
}

/// Heap bytes per entry of a cache built by `build` and filled to
/// `capacity` with distinct keys; `len` reports the entries it holds.
fn bytes_per_entry<C>(
    capacity: u64,
    build: impl FnOnce() -> C,
    fill: impl Fn(&C, u64),
    len: impl Fn(&C) -> u64,
) -> Option<f64> {
    let before = crate::heap::in_use()?;
    let cache = build();
    for k in 0..capacity {
        fill(&cache, k);
    }
    let entries = len(&cache).max(1);
    let after = crate::heap::in_use()?;
    let per = after.saturating_sub(before) as f64 / entries as f64;
    drop(cache);
    Some(per)
}

/// Length of every key stream.
const STREAM: usize = 1 << 21;

/// Builds a trace's key stream (only when its scenario is selected).
type BuildKeys = Box<dyn Fn() -> Vec<u64>>;

/// The three traces: (scenario name, how to build its key stream).
fn traces(capacity: u64) -> [(String, BuildKeys); 3] {
    let cap_k = capacity / 1_000;
    let key_space = capacity * 10;
    let zipf = move || zipf_keys(key_space, 1.0, STREAM, 0xCAC4E);
    [
        (
            format!("zipf s=1.0 {cap_k}k cap, 10x keys, 90/10"),
            Box::new(zipf),
        ),
        (
            format!("scan: 50% loop over 2x cap + 50% zipf, {cap_k}k cap, 90/10"),
            Box::new(move || {
                let loop_len = capacity * 2;
                let mut keys = zipf();
                for (j, k) in keys.iter_mut().enumerate() {
                    if j % 2 == 1 {
                        *k = key_space + (j as u64 / 2) % loop_len;
                    }
                }
                keys
            }),
        ),
        (
            format!("one-hit: 50% new keys + 50% zipf, {cap_k}k cap, 90/10"),
            Box::new(move || {
                let mut keys = zipf();
                for (j, k) in keys.iter_mut().enumerate() {
                    if j % 2 == 1 {
                        *k = key_space + j as u64;
                    }
                }
                keys
            }),
        ),
    ]
}

/// Operations counted by the callgrind mode (module docs).
pub const PROFILE_OPS: usize = 500_000;

/// A fresh cache of the named contender, for the callgrind mode.
fn contender_by_name(name: &str, capacity: u64) -> anyhow::Result<Box<dyn BenchCache>> {
    Ok(match name {
        "keel-lru" => Box::new(keel(capacity, Policy::Lru)?),
        "keel-sieve" => Box::new(keel(capacity, Policy::Sieve)?),
        "keel-s3fifo" => Box::new(keel(capacity, Policy::S3Fifo)?),
        "keel-tinylfu" => Box::new(keel(capacity, Policy::TinyLfu)?),
        "moka" => Box::new(moka_cache(capacity)),
        "quick_cache" => Box::new(quick(capacity)),
        "mutex-lru" => Box::new(mutex_lru(capacity)?),
        other => anyhow::bail!("KEEL_CACHE_PROFILE: unknown contender {other}"),
    })
}

/// The operations callgrind counts (`--toggle-collect='*profiled_ops*'`):
/// the benchmark's loop body on one thread. Returns (hits, reads).
#[inline(never)]
fn profiled_ops(cache: &dyn BenchCache, keys: &[u64]) -> (u64, u64) {
    let (mut hits, mut reads) = (0u64, 0u64);
    for (i, &key) in keys.iter().enumerate() {
        if i % 10 == 9 {
            cache.write(key, key + 1);
        } else {
            reads += 1;
            hits += u64::from(cache.read(key));
        }
    }
    (hits, reads)
}

/// The callgrind mode: warm pass, then [`profiled_ops`] on each selected trace.
fn profile(cfg: &Config, contender: &str, capacity: u64) -> anyhow::Result<()> {
    for (scenario, build_keys) in &traces(capacity) {
        if !cfg.selected(scenario) {
            continue;
        }
        let keys = build_keys();
        let cache = contender_by_name(contender, capacity)?;
        replay_hit_ratio_passes(&*cache, &keys, 1);
        let window = &keys[..PROFILE_OPS.min(keys.len())];
        let (hits, reads) = profiled_ops(&*cache, window);
        drop(cache);
        let trace = replay_hit_ratio(&*contender_by_name(contender, capacity)?, &keys);
        println!(
            "{contender} {scenario}: {} ops profiled, hit ratio {:.4}; trace_hit_ratio {trace:.4}",
            window.len(),
            hits as f64 / reads.max(1) as f64
        );
    }
    Ok(())
}

/// Runs the cache benchmark.
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    let capacity: u64 = if cfg.quick { 20_000 } else { 100_000 };
    if let Ok(contender) = std::env::var("KEEL_CACHE_PROFILE") {
        return profile(cfg, &contender, capacity);
    }
    let traces = traces(capacity);
    if !traces.iter().any(|(name, _)| cfg.selected(name)) {
        return Ok(());
    }

    let sizes = [
        (
            "keel-lru",
            bytes_per_entry(
                capacity,
                || keel(capacity, Policy::Lru).ok(),
                |c, k| {
                    if let Some(c) = c {
                        c.insert(k, k)
                    }
                },
                |c| c.as_ref().map_or(0, |c| c.len()),
            ),
        ),
        (
            "keel-sieve",
            bytes_per_entry(
                capacity,
                || keel(capacity, Policy::Sieve).ok(),
                |c, k| {
                    if let Some(c) = c {
                        c.insert(k, k)
                    }
                },
                |c| c.as_ref().map_or(0, |c| c.len()),
            ),
        ),
        (
            "keel-s3fifo",
            bytes_per_entry(
                capacity,
                || keel(capacity, Policy::S3Fifo).ok(),
                |c, k| {
                    if let Some(c) = c {
                        c.insert(k, k)
                    }
                },
                |c| c.as_ref().map_or(0, |c| c.len()),
            ),
        ),
        (
            "keel-tinylfu",
            bytes_per_entry(
                capacity,
                || keel(capacity, Policy::TinyLfu).ok(),
                |c, k| {
                    if let Some(c) = c {
                        c.insert(k, k)
                    }
                },
                |c| c.as_ref().map_or(0, |c| c.len()),
            ),
        ),
        (
            "moka",
            bytes_per_entry(
                capacity,
                || moka_cache(capacity),
                |c, k| c.insert(k, k),
                |c| {
                    c.run_pending_tasks();
                    c.entry_count()
                },
            ),
        ),
        (
            "quick_cache",
            bytes_per_entry(
                capacity,
                || quick(capacity),
                |c, k| c.insert(k, k),
                |c| c.len() as u64,
            ),
        ),
        (
            "mutex-lru",
            bytes_per_entry(
                capacity,
                || mutex_lru(capacity).ok(),
                |c, k| {
                    if let Some(c) = c {
                        c.lock().put(k, k);
                    }
                },
                |c| c.as_ref().map_or(0, |c| c.lock().len() as u64),
            ),
        ),
    ];
    let size_of = |name: &str| sizes.iter().find(|(n, _)| *n == name).and_then(|(_, b)| *b);
    if sizes.iter().all(|(_, b)| b.is_none()) {
        report.note("bytes_per_entry not measured: needs glibc's mallinfo2");
    } else {
        report.note("bytes_per_entry = glibc heap in use (mallinfo2) after filling a fresh cache with `capacity` distinct u64 keys, per entry held");
    }

    for (scenario, build_keys) in &traces {
        if !cfg.selected(scenario) {
            continue;
        }
        let keys = build_keys();
        let replay = replay_hit_ratios(capacity, &keys)?;
        let extras = |name: &str| {
            let mut extra = Vec::new();
            if let Some(b) = size_of(name) {
                extra.push(("bytes_per_entry", b));
            }
            if let Some((_, r)) = replay.iter().find(|(n, _)| *n == name) {
                extra.push(("trace_hit_ratio", *r));
            }
            extra
        };
        for &threads in &cfg.threads {
            compare_one(cfg, report, scenario, &keys, threads, capacity, &extras)?;
        }
    }
    Ok(())
}

/// The trace-replay hit ratio (see the module docs) of a fresh cache.
fn replay_hit_ratio(cache: &dyn BenchCache, keys: &[u64]) -> f64 {
    replay_hit_ratio_passes(cache, keys, 2)
}

/// Replays `keys` `passes` times; the hit ratio of the last pass.
fn replay_hit_ratio_passes(cache: &dyn BenchCache, keys: &[u64], passes: usize) -> f64 {
    let (mut hits, mut reads) = (0u64, 0u64);
    for pass in 0..passes {
        for (i, &key) in keys.iter().enumerate() {
            if i % 10 == 9 {
                cache.write(key, key + 1);
            } else {
                let hit = cache.read(key);
                if pass + 1 == passes {
                    reads += 1;
                    hits += u64::from(hit);
                }
            }
        }
    }
    hits as f64 / reads.max(1) as f64
}

/// [`replay_hit_ratio`] of every contender, by name.
fn replay_hit_ratios(capacity: u64, keys: &[u64]) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let moka_c = moka_cache(capacity);
    let moka_ratio = replay_hit_ratio(&moka_c, keys);
    drop(moka_c);
    Ok(vec![
        (
            "keel-lru",
            replay_hit_ratio(&keel(capacity, Policy::Lru)?, keys),
        ),
        (
            "keel-sieve",
            replay_hit_ratio(&keel(capacity, Policy::Sieve)?, keys),
        ),
        (
            "keel-s3fifo",
            replay_hit_ratio(&keel(capacity, Policy::S3Fifo)?, keys),
        ),
        (
            "keel-tinylfu",
            replay_hit_ratio(&keel(capacity, Policy::TinyLfu)?, keys),
        ),
        ("moka", moka_ratio),
        ("quick_cache", replay_hit_ratio(&quick(capacity), keys)),
        ("mutex-lru", replay_hit_ratio(&mutex_lru(capacity)?, keys)),
    ])
}

/// Every contender on one trace at one thread count, on fresh caches.
fn compare_one(
    cfg: &Config,
    report: &mut Report,
    scenario: &str,
    keys: &[u64],
    threads: usize,
    capacity: u64,
    extras: &dyn Fn(&str) -> Vec<(&'static str, f64)>,
) -> anyhow::Result<()> {
    {
        let keel_lru: Arc<Cache<u64, u64>> = Arc::new(keel(capacity, Policy::Lru)?);
        let keel_sieve: Arc<Cache<u64, u64>> = Arc::new(keel(capacity, Policy::Sieve)?);
        let keel_s3: Arc<Cache<u64, u64>> = Arc::new(keel(capacity, Policy::S3Fifo)?);
        let keel_lfu: Arc<Cache<u64, u64>> = Arc::new(keel(capacity, Policy::TinyLfu)?);
        let moka_c = moka_cache(capacity);
        let quick_c = quick(capacity);
        let lru_c = mutex_lru(capacity)?;
        let cursors: [AtomicU64; 7] = Default::default();
        let with_size = |mut m: Measurement, name: &str| {
            for (k, v) in extras(name) {
                m.extra.insert(k.into(), v);
            }
            m
        };
        report.compare(
            cfg,
            scenario,
            threads,
            &mut [
                Contender::keel("keel-lru", |t, d| {
                    with_size(measure(&*keel_lru, keys, &cursors[0], t, d), "keel-lru")
                }),
                Contender::keel("keel-sieve", |t, d| {
                    with_size(measure(&*keel_sieve, keys, &cursors[1], t, d), "keel-sieve")
                }),
                Contender::keel("keel-s3fifo", |t, d| {
                    with_size(measure(&*keel_s3, keys, &cursors[2], t, d), "keel-s3fifo")
                }),
                Contender::keel("keel-tinylfu", |t, d| {
                    with_size(measure(&*keel_lfu, keys, &cursors[3], t, d), "keel-tinylfu")
                }),
                Contender::peer("moka", |t, d| {
                    with_size(measure(&moka_c, keys, &cursors[4], t, d), "moka")
                }),
                Contender::peer("quick_cache", |t, d| {
                    with_size(measure(&quick_c, keys, &cursors[5], t, d), "quick_cache")
                }),
                Contender::peer("mutex-lru", |t, d| {
                    with_size(measure(&lru_c, keys, &cursors[6], t, d), "mutex-lru")
                }),
            ],
        );
    }
    Ok(())
}
