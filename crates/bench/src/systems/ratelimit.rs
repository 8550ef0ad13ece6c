//! `keel-bench ratelimit`: decisions/s of Keel's GCRA and token bucket against `governor`
//! (GCRA, lock-free; keyed on a `DashMap` with its default hasher), direct and keyed, and
//! Keel's Redis GCRA against a raw `EVALSHA` of a trivial script.
//!
//! Scenarios (every in-process one at each configured thread count):
//!
//! - **one key, allow-heavy** — 1e9/s quota: every decision is allowed, so every call is a
//!   successful compare-and-swap (or lock) on the one shared state: the contended path.
//! - **one key, deny-heavy** — 1 000/s, burst 100: almost every decision is a denial, the
//!   read-only path.
//! - **keyed uniform 10k** / **keyed zipf 10k** — 10 000 keys (uniform, or Zipf s = 1.0),
//!   100/s per key with bursts of 50, so decisions are a mix of allowed and denied. Every
//!   contender walks the same seeded key array; thread `t` starts at offset `t × 7919`.
//! - **redis** — Keel's `RedisLimiter` (GCRA Lua script, server `TIME`, one `EVALSHA`)
//!   against `EVALSHA` of `return {1,0,0,0}` with the same keys and arguments, each over
//!   `threads` connection managers with 32 requests in flight per connection. The server
//!   is started by `keel_testkit::RedisServer::start()`; if that fails the scenario is
//!   skipped with a note.
//!
//! Keel limiters keep their allowed/denied counters (striped) and `metrics` facade handles
//! on; governor keeps no counters. All limiters use their real quanta clock.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{Quota as GovernorQuota, RateLimiter as Governor};
use keel_ratelimit::redis::{RedisAlgorithm, RedisLimiter};
use keel_ratelimit::{Gcra, KeyedLimiter, Quota, RateLimiter, TokenBucket};

use crate::harness::{Contender, Measurement, new_histogram, record, run_threads};
use crate::workload::{uniform_keys, zipf_keys};
use crate::{Config, Report};

const KEYS: u64 = 10_000;
const STREAM: usize = 1 << 16;

fn nonzero(n: u32) -> anyhow::Result<NonZeroU32> {
    NonZeroU32::new(n).ok_or_else(|| anyhow::anyhow!("zero in a benchmark quota"))
}

/// The same quota for Keel and governor: `per_second` requests per second, `burst` burst.
fn quotas(per_second: u32, burst: u32) -> anyhow::Result<(Quota, GovernorQuota)> {
    let keel = Quota::per_second(per_second)?.with_burst(burst)?;
    let governor = GovernorQuota::per_second(nonzero(per_second)?).allow_burst(nonzero(burst)?);
    Ok((keel, governor))
}

/// A closed loop of decisions; `decide(key) -> allowed`. Counts allowed decisions into an
/// extra `allowed_share` figure so the report shows the workload really is the same.
fn decisions<'a, F>(keys: &'a [u64], decide: F) -> impl FnMut(usize, Duration) -> Measurement + 'a
where
    F: Fn(u64) -> bool + Sync + 'a,
{
    move |threads, duration| {
        let allowed = AtomicU64::new(0);
        let m = run_threads(threads, duration, |t| {
            let offset = t * 7919;
            let allowed = &allowed;
            let decide = &decide;
            let mut local = 0u64;
            move |i: u64| {
                let key = keys[(i as usize + offset) & (STREAM - 1)];
                if decide(black_box(key)) {
                    local += 1;
                }
                if i & 0xffff == 0xffff {
                    allowed.fetch_add(std::mem::take(&mut local), Ordering::Relaxed);
                }
            }
        });
        let share = allowed.load(Ordering::Relaxed) as f64 / m.ops.max(1) as f64;
        m.with_extra("allowed_share", share)
    }
}

fn direct_scenario(
    cfg: &Config,
    report: &mut Report,
    name: &str,
    per_second: u32,
    burst: u32,
) -> anyhow::Result<()> {
    let keys = vec![0u64; STREAM];
    for &threads in &cfg.threads {
        let (quota, gquota) = quotas(per_second, burst)?;
        let gcra = RateLimiter::<Gcra>::new(quota);
        let bucket = RateLimiter::<TokenBucket>::new(quota);
        let governor = Governor::direct(gquota);
        report.compare(
            cfg,
            name,
            threads,
            &mut [
                Contender::keel("keel-gcra", decisions(&keys, |_| gcra.check().allowed)),
                Contender::keel(
                    "keel-token-bucket",
                    decisions(&keys, |_| bucket.check().allowed),
                ),
                Contender::peer("governor", decisions(&keys, |_| governor.check().is_ok())),
            ],
        );
    }
    Ok(())
}

fn keyed_scenario(
    cfg: &Config,
    report: &mut Report,
    name: &str,
    keys: &[u64],
) -> anyhow::Result<()> {
    for &threads in &cfg.threads {
        let (quota, gquota) = quotas(100, 50)?;
        let gcra = KeyedLimiter::<u64, Gcra>::new(quota);
        let bucket = KeyedLimiter::<u64, TokenBucket>::new(quota);
        let governor = Governor::keyed(gquota);
        report.compare(
            cfg,
            name,
            threads,
            &mut [
                Contender::keel(
                    "keel-gcra keyed",
                    decisions(keys, |k| gcra.check(&k).allowed),
                ),
                Contender::keel(
                    "keel-token-bucket keyed",
                    decisions(keys, |k| bucket.check(&k).allowed),
                ),
                Contender::peer(
                    "governor keyed (dashmap)",
                    decisions(keys, |k| governor.check_key(&k).is_ok()),
                ),
            ],
        );
    }
    Ok(())
}

const IN_FLIGHT_PER_CONNECTION: usize = 32;

/// `connections × 32` tasks issuing calls back to back for `duration`.
fn async_closed_loop<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    tasks: usize,
    duration: Duration,
    call: F,
) -> Measurement
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    runtime.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let call = call.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut hist = new_histogram();
                    let mut ops = 0u64;
                    let mut ok = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        if call(t, ops).await {
                            ok += 1;
                        }
                        record(&mut hist, began.elapsed());
                        ops += 1;
                    }
                    (ops, ok, hist)
                })
            })
            .collect();
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut m = Measurement::new();
        let mut ok_total = 0;
        for h in handles {
            if let Ok((ops, ok, hist)) = h.await {
                m.ops += ops;
                ok_total += ok;
                let _ = m.latency.add(&hist);
            }
        }
        m.elapsed = start.elapsed();
        let share = ok_total as f64 / m.ops.max(1) as f64;
        m.with_extra("ok_share", share)
    })
}

fn redis_scenario(cfg: &Config, report: &mut Report, keys: &Arc<Vec<u64>>) -> anyhow::Result<()> {
    let server = match keel_testkit::RedisServer::start() {
        Ok(server) => server,
        Err(e) => {
            report.note(format!(
                "redis scenario skipped: could not start redis-server ({e})"
            ));
            return Ok(());
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = server.url();
    // 1 000 keys' worth of quota per second each, so both allowed and denied happen.
    let quota = Quota::per_second(1_000)?.with_burst(100)?;
    let trivial = redis::Script::new("return {1, 0, 0, 0}");
    for &connections in &cfg.threads {
        if !cfg.selected(&redis_name(connections)) {
            continue;
        }
        let mut keel = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..connections {
            let keel_limiter = runtime.block_on(
                RedisLimiter::builder()
                    .algorithm(RedisAlgorithm::Gcra)
                    .quota(quota)
                    .url(url.as_str())
                    .prefix("bench")
                    .timeout(Duration::from_secs(2))
                    .build(),
            )?;
            keel.push(keel_limiter);
            let client = redis::Client::open(url.as_str())?;
            raw.push(runtime.block_on(client.get_connection_manager())?);
        }
        let tasks = connections * IN_FLIGHT_PER_CONNECTION;
        let (keel, raw) = (Arc::new(keel), Arc::new(raw));
        let name = redis_name(connections);
        let keel_run = {
            let (keel, keys) = (keel.clone(), keys.clone());
            let runtime = &runtime;
            move |_threads: usize, duration: Duration| {
                let (keel, keys) = (keel.clone(), keys.clone());
                async_closed_loop(runtime, tasks, duration, move |t, i| {
                    let limiter = keel[t % keel.len()].clone();
                    let key = keys[(t * 7919 + i as usize) & (STREAM - 1)];
                    async move {
                        limiter
                            .check(&format!("user:{key}"))
                            .await
                            .is_ok_and(|d| d.allowed)
                    }
                })
            }
        };
        let raw_run = {
            let (raw, keys, trivial) = (raw.clone(), keys.clone(), trivial.clone());
            let runtime = &runtime;
            move |_threads: usize, duration: Duration| {
                let (raw, keys, trivial) = (raw.clone(), keys.clone(), trivial.clone());
                async_closed_loop(runtime, tasks, duration, move |t, i| {
                    let mut connection = raw[t % raw.len()].clone();
                    let key = keys[(t * 7919 + i as usize) & (STREAM - 1)];
                    let trivial = trivial.clone();
                    async move {
                        // The same key shape and arguments Keel sends.
                        let reply: redis::RedisResult<Vec<i64>> = trivial
                            .key(format!("bench:{{user:{key}}}:gcra"))
                            .arg(10_000u64)
                            .arg(1_000_000u64)
                            .arg(1u32)
                            .arg("")
                            .invoke_async(&mut connection)
                            .await;
                        reply.is_ok()
                    }
                })
            }
        };
        report.compare(
            cfg,
            &name,
            connections,
            &mut [
                Contender::keel("keel-redis-gcra", keel_run),
                Contender::peer("raw evalsha (trivial)", raw_run),
            ],
        );
    }
    drop(server);
    Ok(())
}

/// The redis scenario's name at `connections` connections.
fn redis_name(connections: usize) -> String {
    format!("redis gcra ({connections} conn x {IN_FLIGHT_PER_CONNECTION} in flight)")
}

/// Runs the ratelimit benchmark. `--scenario REGEX` runs only the scenarios whose name
/// matches (e.g. `keyed`, `one key`, `redis`); unselected ones skip their setup too.
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    if cfg.selected("one key, allow-heavy") {
        direct_scenario(
            cfg,
            report,
            "one key, allow-heavy",
            1_000_000_000,
            1_000_000_000,
        )?;
    }
    if cfg.selected("one key, deny-heavy") {
        direct_scenario(cfg, report, "one key, deny-heavy", 1_000, 100)?;
    }
    let uniform = uniform_keys(KEYS, STREAM, 0x5eed_0001);
    let zipf = zipf_keys(KEYS, 1.0, STREAM, 0x5eed_0002);
    if cfg.selected("keyed uniform 10k") {
        keyed_scenario(cfg, report, "keyed uniform 10k", &uniform)?;
    }
    if cfg.selected("keyed zipf 10k") {
        keyed_scenario(cfg, report, "keyed zipf 10k", &zipf)?;
    }
    // Starting a redis-server is the expensive part: only when a connection count is selected.
    if cfg.threads.iter().any(|&c| cfg.selected(&redis_name(c))) {
        redis_scenario(cfg, report, &Arc::new(zipf))?;
    }
    Ok(())
}
