//! Tour scenario for keel-cache: cache-aside in front of a slow database,
//! LRU vs SIEVE, a cache stampede, and (with Redis) two app instances
//! sharing an L2 with invalidation.
//!
//! Parts: cache-aside (the traffic driver is in [`traffic`]), stampede,
//! tiered L1 + Redis L2 (skipped with a note when no `redis-server` starts).
//! They share nothing, so their shared state is `()`.

mod traffic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_cache::{Cache, Policy, TieredCache};

use super::{Chart, SummaryRow, SystemReport, Table, Tour, latency_histogram};
use crate::report::charts::{Series, bar_chart, line_chart};
use traffic::{Run, SlowDb, run_variant};

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::for_system(
        "cache",
        "An API reads users from a slow database (each read sleeps ~200 µs) with Zipf-skewed \
         popularity over a key space 10x the cache. It runs without a cache, then cache-aside \
         with Keel's concurrent LRU and SIEVE caches; then 500 requests hit one cold key at once \
         (a stampede), with and without single-flight; then two app instances share a Redis L2 \
         and invalidate each other's L1.",
    );
    tour.run_parts(
        &mut report,
        &mut (),
        &[
            ("cache-aside", cache_aside),
            ("stampede", stampede),
            (TIERED, tiered),
        ],
    )?;
    Ok(report)
}

/// The part that needs Redis.
const TIERED: &str = "tiered L1 + Redis L2";

fn cache_aside(tour: &Tour, _: &mut (), report: &mut SystemReport) -> anyhow::Result<()> {
    let key_space: u64 = tour.size(20_000, 100_000);
    let capacity = key_space / 10;
    let requests: usize = tour.size(24_000, 96_000);
    let threads = 8; // I/O-bound clients: more than the cores
    let windows = 24;
    let db_latency = Duration::from_micros(200);
    let keys = keel_bench::workload::zipf_keys(key_space, 1.0, requests, 0x70A2);

    let bar = tour.progress("cache: cache-aside", 4);
    let no_cache = run_variant("no cache", None, &keys, threads, windows, db_latency);
    bar.inc(1);
    let lru: Cache<u64, u64> = Cache::builder()
        .max_capacity(capacity)
        .policy(Policy::Lru)
        .name("tour-lru")
        .build()?;
    let with_lru = run_variant("keel LRU", Some(&lru), &keys, threads, windows, db_latency);
    bar.inc(1);
    let sieve: Cache<u64, u64> = Cache::builder()
        .max_capacity(capacity)
        .policy(Policy::Sieve)
        .name("tour-sieve")
        .build()?;
    let with_sieve = run_variant(
        "keel SIEVE",
        Some(&sieve),
        &keys,
        threads,
        windows,
        db_latency,
    );
    bar.inc(1);
    let s3fifo: Cache<u64, u64> = Cache::builder()
        .max_capacity(capacity)
        .policy(Policy::S3Fifo)
        .name("tour-s3fifo")
        .build()?;
    let with_s3fifo = run_variant(
        "keel S3-FIFO",
        Some(&s3fifo),
        &keys,
        threads,
        windows,
        db_latency,
    );
    bar.inc(1);
    bar.finish_and_clear();

    let runs = [&no_cache, &with_lru, &with_sieve, &with_s3fifo];
    let mut table = Table::new(
        format!(
            "Cache-aside: {requests} requests, {threads} client threads, {key_space} keys, cache {capacity}"
        ),
        &[
            "variant",
            "requests/s",
            "DB calls",
            "hit ratio",
            "p50",
            "p99",
        ],
    );
    for r in runs {
        report.summary.push(SummaryRow::from_histogram(
            format!("{}, {threads} threads", r.name),
            "requests/s",
            r.requests,
            r.elapsed,
            &r.all,
        ));
        table.row(vec![
            r.name.to_string(),
            format!("{:.0}", r.requests as f64 / r.elapsed.as_secs_f64()),
            r.db_calls.to_string(),
            format!("{:.3}", r.hits as f64 / r.requests.max(1) as f64),
            micros(r.all.value_at_quantile(0.5)),
            micros(r.all.value_at_quantile(0.99)),
        ]);
    }
    report.tables.push(table);

    let per_window = (requests / windows) as f64 / 1_000.0;
    let x = |i: usize| (i + 1) as f64 * per_window;
    let hit_series: Vec<Series> = [&with_lru, &with_sieve, &with_s3fifo]
        .iter()
        .map(|r| {
            Series::new(
                r.name,
                r.windows
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (x(i), w.0 as f64 / w.1.max(1) as f64))
                    .collect(),
            )
        })
        .collect();
    report.charts.push(Chart::new(
        "Hit ratio over time",
        "Hit ratio per window of requests. Both caches start cold and warm up within the first \
         windows; SIEVE and S3-FIFO settle higher than LRU because one-hit wonders leave quickly \
         (S3-FIFO: from its small queue) instead of pushing popular keys towards the tail.",
        line_chart(
            "hit ratio over time",
            "requests (thousands)",
            "hit ratio",
            &hit_series,
        )?,
    ));
    let latency_series: Vec<Series> = runs
        .iter()
        .map(|r| {
            Series::new(
                r.name,
                r.windows
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (x(i), w.2.mean() / 1_000.0))
                    .collect(),
            )
        })
        .collect();
    report.charts.push(Chart::new(
        "Mean latency over time",
        "Mean request latency per window (µs). Without a cache every request pays the database; \
         with one, latency falls as the hit ratio rises.",
        line_chart(
            "mean latency over time",
            "requests (thousands)",
            "µs",
            &latency_series,
        )?,
    ));

    let wrong: u64 = runs.iter().map(|r| r.wrong).sum();
    report.check(
        "every response had the database's value",
        wrong == 0,
        format!("{wrong} wrong of {}", requests * runs.len()),
    );
    for (r, cache) in [
        (&with_lru, &lru),
        (&with_sieve, &sieve),
        (&with_s3fifo, &s3fifo),
    ] {
        let stats = cache.stats();
        report.check(
            format!("{}: one DB call per load, capacity held", r.name),
            r.db_calls == stats.loads_ok && stats.entries <= capacity,
            format!(
                "{} DB calls, {} loads, {} entries ≤ {capacity}",
                r.db_calls, stats.loads_ok, stats.entries
            ),
        );
    }
    let ratio = |r: &Run| r.hits as f64 / r.requests.max(1) as f64;
    let (lru_hr, sieve_hr, s3_hr) = (ratio(&with_lru), ratio(&with_sieve), ratio(&with_s3fifo));
    report.check(
        "SIEVE hit ratio ≥ LRU hit ratio",
        sieve_hr >= lru_hr,
        format!("SIEVE {sieve_hr:.3} vs LRU {lru_hr:.3}"),
    );
    report.check(
        "S3-FIFO hit ratio ≥ LRU hit ratio",
        s3_hr >= lru_hr,
        format!("S3-FIFO {s3_hr:.3} vs LRU {lru_hr:.3}"),
    );
    Ok(())
}

fn stampede(tour: &Tour, _: &mut (), report: &mut SystemReport) -> anyhow::Result<()> {
    let requests: usize = tour.size(200, 500);
    let db_latency = Duration::from_millis(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let bar = tour.progress("cache: stampede", 2);

    // Naive cache-aside: check, miss, every request goes to the database.
    let naive_calls = Arc::new(AtomicU64::new(0));
    let naive_cache: Cache<u64, u64> = Cache::new(100)?;
    let (naive_time, naive_ok) = rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(requests));
        let start = Instant::now();
        let tasks: Vec<_> = (0..requests)
            .map(|_| {
                let (cache, calls, barrier) = (
                    naive_cache.clone(),
                    Arc::clone(&naive_calls),
                    Arc::clone(&barrier),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    if let Some(v) = cache.get(&7) {
                        return v;
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(db_latency).await;
                    let v = SlowDb::value_of(7);
                    cache.insert(7, v);
                    v
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            ok += u64::from(t.await.is_ok_and(|v| v == SlowDb::value_of(7)));
        }
        (start.elapsed(), ok)
    });
    bar.inc(1);

    // Single-flight: the same burst through get_or_load.
    let calls = Arc::new(AtomicU64::new(0));
    let cache: Cache<u64, u64> = Cache::new(100)?;
    let (flight_time, flight_ok, latency) = rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(requests));
        let start = Instant::now();
        let tasks: Vec<_> = (0..requests)
            .map(|_| {
                let (cache, calls, barrier) =
                    (cache.clone(), Arc::clone(&calls), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let t0 = Instant::now();
                    let v = cache
                        .try_get_or_load_async(7, || async move {
                            calls.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(db_latency).await;
                            Ok::<_, std::io::Error>(SlowDb::value_of(7))
                        })
                        .await;
                    (v, t0.elapsed())
                })
            })
            .collect();
        let mut ok = 0;
        let mut hist = latency_histogram();
        for t in tasks {
            if let Ok((Ok(v), d)) = t.await {
                ok += u64::from(v == SlowDb::value_of(7));
                hist.saturating_record(d.as_nanos() as u64);
            }
        }
        (start.elapsed(), ok, hist)
    });
    bar.inc(1);
    bar.finish_and_clear();

    let naive = naive_calls.load(Ordering::Relaxed);
    let single = calls.load(Ordering::Relaxed);
    report.summary.push(SummaryRow::from_histogram(
        format!("stampede: {requests} concurrent gets of a cold key"),
        "requests/s",
        requests as u64,
        flight_time,
        &latency,
    ));
    let mut table = Table::new(
        format!("Stampede: {requests} concurrent requests for one cold key, DB read takes 50 ms"),
        &["strategy", "DB calls", "correct responses", "burst time"],
    );
    table.row(vec![
        "check-then-load".into(),
        naive.to_string(),
        naive_ok.to_string(),
        format!("{:.1} ms", naive_time.as_secs_f64() * 1e3),
    ]);
    table.row(vec![
        "get_or_load (single-flight)".into(),
        single.to_string(),
        flight_ok.to_string(),
        format!("{:.1} ms", flight_time.as_secs_f64() * 1e3),
    ]);
    report.tables.push(table);
    report.charts.push(Chart::new(
        "Database calls in a stampede",
        "How many times the database was read when hundreds of requests missed the same key \
         together. Single-flight lets one request load and the rest wait for its result.",
        bar_chart(
            "DB calls for one cold key",
            "DB calls",
            &["check-then-load".to_string(), "single-flight".to_string()],
            &[Series::bars("DB calls", [naive as f64, single as f64])],
        )?,
    ));
    report.check(
        "stampede: single-flight made exactly one DB call",
        single == 1 && flight_ok == requests as u64,
        format!(
            "{single} DB call(s), {flight_ok}/{requests} correct (check-then-load: {naive} calls)"
        ),
    );
    report.check(
        "stampede: nothing left in flight",
        cache.pending_loads() == 0,
        format!("{} pending", cache.pending_loads()),
    );
    Ok(())
}

fn tiered(tour: &Tour, _: &mut (), report: &mut SystemReport) -> anyhow::Result<()> {
    let Some(redis) = tour.redis_for(report, TIERED) else {
        return Ok(());
    };
    let url = redis.url();
    let url = url.as_str();
    let rounds: u64 = tour.size(100, 400);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let bar = tour.progress("cache: L1 + Redis L2", rounds);
    let outcome = rt.block_on(async {
        let a: TieredCache<String> = TieredCache::builder()
            .redis_url(url)
            .namespace("tour")
            .ttl(Duration::from_secs(60))
            .build()
            .await?;
        let b: TieredCache<String> = TieredCache::builder()
            .redis_url(url)
            .namespace("tour")
            .ttl(Duration::from_secs(60))
            .build()
            .await?;
        let mut events = b.sync_events();
        let mut hist = latency_histogram();
        let mut stale = 0u64;
        let start = Instant::now();
        for i in 0..rounds {
            let key = format!("user:{}", i % 10);
            // B holds the current value in L1…
            let _ = b
                .get_or_load(&key, || async {
                    Ok::<_, std::io::Error>("initial".to_string())
                })
                .await?;
            let seen = events.borrow().invalidations_received;
            // …A writes a new one and B must drop its copy.
            let fresh = format!("v{i}");
            let t0 = Instant::now();
            a.set(&key, fresh.clone()).await?;
            tokio::time::timeout(
                Duration::from_secs(5),
                events.wait_for(|s| s.invalidations_received > seen),
            )
            .await
            .map_err(|_| anyhow::anyhow!("invalidation did not arrive within 5 s"))??;
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
            if b.get(&key).await.as_deref() != Some(fresh.as_str()) {
                stale += 1;
            }
            bar.inc(1);
        }
        Ok::<_, anyhow::Error>((start.elapsed(), hist, stale, a.stats(), b.stats()))
    });
    bar.finish_and_clear();
    let (elapsed, hist, stale, a_stats, b_stats) = outcome?;
    report.summary.push(SummaryRow::from_histogram(
        "L2: write on A → invalidation seen by B",
        "rounds/s",
        rounds,
        elapsed,
        &hist,
    ));
    let mut table = Table::new(
        format!("Two instances on one Redis, {rounds} write/invalidate rounds"),
        &[
            "instance",
            "L1 hit ratio",
            "L2 hits",
            "L2 misses",
            "L2 errors",
            "invalidations sent",
            "received",
        ],
    );
    for (name, s) in [("A (writer)", a_stats), ("B (reader)", b_stats)] {
        table.row(vec![
            name.into(),
            format!("{:.3}", s.l1.hit_ratio()),
            s.l2_hits.to_string(),
            s.l2_misses.to_string(),
            s.l2_errors.to_string(),
            s.invalidations_published.to_string(),
            s.invalidations_received.to_string(),
        ]);
    }
    report.tables.push(table);
    report.check(
        "L2: B never served a stale value after the invalidation",
        stale == 0 && b_stats.invalidations_received >= rounds,
        format!(
            "{stale} stale of {rounds}; B received {} invalidations",
            b_stats.invalidations_received
        ),
    );
    Ok(())
}

fn micros(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1_000.0)
}
