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
//! - **redis** — Keel's `RedisLimiter` (GCRA and fixed-window Lua, server `TIME`, a
//!   Redis 7 function called with `FCALL`; GCRA batches the decisions queued while a
//!   call is in flight into one multi-key `FCALL` — `batch_mean` is the mean size of
//!   those batches — and runs also `unbatched` (one `FCALL` per decision) and with
//!   `.functions(false)` (one `EVALSHA` per decision, unbatched), for information) against three peers: `EVALSHA` of `return {1,0,0,0}` with the same keys
//!   and arguments (the floor, for information); what a user writes without Keel — a
//!   one-second fixed window with `INCR` + `EXPIRE` in `MULTI/EXEC` (one round trip); and
//!   redis-cell's `CL.THROTTLE` (native GCRA module) when `KEEL_REDIS_CELL` names its
//!   built `libredis_cell.so` (loaded with `--loadmodule`; otherwise a note says why not). Each over
//!   `threads` connection managers with 32 requests in flight per connection. Keel's GCRA
//!   runs with its local denial memory (the default) and without it (`no local denials`),
//!   so the gain and the like-for-like round trip are both shown. Every row carries
//!   `server_us_per_op` (redis-server main-thread CPU from `INFO cpu`) and
//!   `client_us_per_op` (this process's CPU, every thread) per decision. The server
//!   is started by `keel_testkit::RedisServer::start()`; if that fails the scenario is
//!   skipped with a note.
//!
//! The keyed scenarios carry `bytes_per_key`: glibc heap in use after 1 000 000 (`--quick`:
//! 200 000) distinct keys each made one decision, per key held, for Keel and governor.
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
use keel_ratelimit::{CleanupPolicy, Gcra, KeyedLimiter, Quota, RateLimiter, TokenBucket};

use crate::harness::{Contender, Measurement, new_histogram, record, run_threads};
use crate::workload::{uniform_keys, zipf_keys};
use crate::{Config, Report};

const KEYS: u64 = 10_000;
/// Distinct keys for the `bytes_per_key` figure (full run / `--quick`).
const SIZE_KEYS: u64 = 1_000_000;
const SIZE_KEYS_QUICK: u64 = 200_000;
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

/// Heap bytes per key of a keyed limiter built by `build` after `n` distinct keys each
/// made one decision; `len` is the number of keys it holds.
fn bytes_per_key<L>(
    n: u64,
    build: impl FnOnce() -> L,
    check: impl Fn(&L, u64),
    len: impl Fn(&L) -> usize,
) -> Option<f64> {
    let before = crate::heap::in_use()?;
    let limiter = build();
    for k in 0..n {
        check(&limiter, k);
    }
    let held = len(&limiter).max(1);
    let after = crate::heap::in_use()?;
    drop(limiter);
    Some(after.saturating_sub(before) as f64 / held as f64)
}

/// Bytes per key (Keel GCRA, Keel token bucket, governor) with `n` active keys.
fn key_sizes(n: u64) -> anyhow::Result<[Option<f64>; 3]> {
    let (quota, gquota) = quotas(100, 50)?;
    let gcra = bytes_per_key(
        n,
        || {
            KeyedLimiter::<u64, Gcra>::builder()
                .quota(quota)
                .cleanup(CleanupPolicy::manual())
                .build()
        },
        |l, k| {
            if let Ok(l) = l {
                l.check(&k);
            }
        },
        |l| l.as_ref().map_or(0, |l| l.len()),
    );
    let bucket = bytes_per_key(
        n,
        || {
            KeyedLimiter::<u64, TokenBucket>::builder()
                .quota(quota)
                .cleanup(CleanupPolicy::manual())
                .build()
        },
        |l, k| {
            if let Ok(l) = l {
                l.check(&k);
            }
        },
        |l| l.as_ref().map_or(0, |l| l.len()),
    );
    let governor = bytes_per_key(
        n,
        || Governor::keyed(gquota),
        |l, k| {
            let _ = l.check_key(&k);
        },
        |l| l.len(),
    );
    Ok([gcra, bucket, governor])
}

/// Adds `bytes_per_key` to every measurement of `run`, when it was measured.
fn with_size<'a>(
    mut run: impl FnMut(usize, Duration) -> Measurement + 'a,
    bytes: Option<f64>,
) -> impl FnMut(usize, Duration) -> Measurement + 'a {
    move |threads, duration| {
        let m = run(threads, duration);
        match bytes {
            Some(b) => m.with_extra("bytes_per_key", b),
            None => m,
        }
    }
}

fn keyed_scenario(
    cfg: &Config,
    report: &mut Report,
    name: &str,
    keys: &[u64],
    sizes: [Option<f64>; 3],
) -> anyhow::Result<()> {
    let [gcra_size, bucket_size, governor_size] = sizes;
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
                    with_size(decisions(keys, |k| gcra.check(&k).allowed), gcra_size),
                ),
                Contender::keel(
                    "keel-token-bucket keyed",
                    with_size(decisions(keys, |k| bucket.check(&k).allowed), bucket_size),
                ),
                Contender::peer(
                    "governor keyed (dashmap)",
                    with_size(
                        decisions(keys, |k| governor.check_key(&k).is_ok()),
                        governor_size,
                    ),
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

/// CPU nanoseconds this process's threads have run (sum of `/proc/self/task/*/schedstat`).
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between the listing and the read: it just no longer counts.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// The server's main-thread CPU time (µs) from `INFO cpu` (Redis ≥ 6.2 reports it).
async fn server_cpu_us(connection: &mut redis::aio::ConnectionManager) -> Option<f64> {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(connection)
        .await
        .ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((field("used_cpu_user_main_thread")? + field("used_cpu_sys_main_thread")?) * 1e6)
}

/// Runs `run` and adds the CPU each decision cost: `server_us_per_op` (redis-server's
/// main thread, from `INFO cpu`) and `client_us_per_op` (every thread of this process:
/// the runtime's workers, the connection tasks, the callers). CPU time, unlike wall
/// time, does not depend on who else runs on the machine, and it shows where a
/// contender's round trip costs more: in the server or in the client.
fn with_cpu<'a>(
    runtime: &'a tokio::runtime::Runtime,
    info: redis::aio::ConnectionManager,
    mut run: impl FnMut(usize, Duration) -> Measurement + 'a,
) -> impl FnMut(usize, Duration) -> Measurement + 'a {
    move |threads, duration| {
        let mut info = info.clone();
        let server_before = runtime.block_on(server_cpu_us(&mut info));
        let client_before = process_cpu_ns();
        let mut m = run(threads, duration);
        let client_after = process_cpu_ns();
        let server_after = runtime.block_on(server_cpu_us(&mut info));
        let ops = m.ops.max(1) as f64;
        if let (Some(before), Some(after)) = (server_before, server_after) {
            m = m.with_extra("server_us_per_op", (after - before) / ops);
        }
        if let (Some(before), Some(after)) = (client_before, client_after) {
            m = m.with_extra(
                "client_us_per_op",
                after.saturating_sub(before) as f64 / 1e3 / ops,
            );
        }
        m
    }
}

/// Where `--loadmodule` finds redis-cell (`libredis_cell.so`), if it was built.
pub const REDIS_CELL_ENV: &str = "KEEL_REDIS_CELL";

/// A private server, with redis-cell loaded when `KEEL_REDIS_CELL` names its module and it
/// loads; the second value says why redis-cell is absent.
fn start_redis() -> std::io::Result<(keel_testkit::RedisServer, Option<String>)> {
    match std::env::var(REDIS_CELL_ENV) {
        Ok(path) if !path.is_empty() => {
            match keel_testkit::RedisServer::start_with_args(["--loadmodule", path.as_str()]) {
                Ok(server) => Ok((server, None)),
                Err(e) => {
                    let why = format!("redis-cell peer skipped: {path} did not load ({e})");
                    Ok((keel_testkit::RedisServer::start()?, Some(why)))
                }
            }
        }
        _ => Ok((
            keel_testkit::RedisServer::start()?,
            Some(format!(
                "redis-cell peer skipped: set {REDIS_CELL_ENV}=/path/to/libredis_cell.so \
                 (cargo build --release of the `redis-cell` crate's source)"
            )),
        )),
    }
}

fn redis_scenario(cfg: &Config, report: &mut Report, keys: &Arc<Vec<u64>>) -> anyhow::Result<()> {
    let (server, no_cell) = match start_redis() {
        Ok(server) => server,
        Err(e) => {
            report.note(format!(
                "redis scenario skipped: could not start redis-server ({e})"
            ));
            return Ok(());
        }
    };
    if let Some(why) = &no_cell {
        report.note(why.clone());
    }
    let with_cell = no_cell.is_none();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = server.url();
    // 1 000 keys' worth of quota per second each, so both allowed and denied happen.
    let (per_second, burst) = (1_000u32, 100u32);
    let quota = Quota::per_second(per_second)?.with_burst(burst)?;
    let trivial = redis::Script::new("return {1, 0, 0, 0}");
    for &connections in &cfg.threads {
        if !cfg.selected(&redis_name(connections)) {
            continue;
        }
        let mut keel = Vec::new();
        let mut keel_remote = Vec::new();
        let mut keel_unbatched = Vec::new();
        let mut keel_evalsha = Vec::new();
        let mut keel_window = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..connections {
            let local = keel_ratelimit::redis::DEFAULT_LOCAL_DENIALS;
            let batch = keel_ratelimit::redis::DEFAULT_BATCH;
            for (algorithm, functions, local_denials, batch, into) in [
                (RedisAlgorithm::Gcra, true, local, batch, &mut keel),
                (RedisAlgorithm::Gcra, true, 0, batch, &mut keel_remote),
                (RedisAlgorithm::Gcra, true, local, 1, &mut keel_unbatched),
                (RedisAlgorithm::Gcra, false, 0, 1, &mut keel_evalsha),
                (RedisAlgorithm::FixedWindow, true, 0, 1, &mut keel_window),
            ] {
                into.push(
                    runtime.block_on(
                        RedisLimiter::builder()
                            .algorithm(algorithm)
                            .quota(quota)
                            .url(url.as_str())
                            .prefix("bench")
                            .timeout(Duration::from_secs(2))
                            .functions(functions)
                            .local_denials(local_denials)
                            .batch(batch)
                            .build(),
                    )?,
                );
            }
            let client = redis::Client::open(url.as_str())?;
            raw.push(runtime.block_on(client.get_connection_manager())?);
        }
        let tasks = connections * IN_FLIGHT_PER_CONNECTION;
        let (keel, keel_remote, keel_unbatched, keel_evalsha, keel_window, raw) = (
            Arc::new(keel),
            Arc::new(keel_remote),
            Arc::new(keel_unbatched),
            Arc::new(keel_evalsha),
            Arc::new(keel_window),
            Arc::new(raw),
        );
        let name = redis_name(connections);
        let keel_run = |limiters: Arc<Vec<RedisLimiter>>| {
            let keys = keys.clone();
            let runtime = &runtime;
            move |_threads: usize, duration: Duration| {
                let batches = |limiters: &[RedisLimiter]| {
                    limiters.iter().fold((0, 0), |(c, d), l| {
                        let (calls, decisions) = l.batch_stats();
                        (c + calls, d + decisions)
                    })
                };
                let before = batches(&limiters);
                let (limiters2, keys) = (limiters.clone(), keys.clone());
                let m = async_closed_loop(runtime, tasks, duration, move |t, i| {
                    let limiter = limiters2[t % limiters2.len()].clone();
                    let key = keys[(t * 7919 + i as usize) & (STREAM - 1)];
                    async move {
                        limiter
                            .check(&format!("user:{key}"))
                            .await
                            .is_ok_and(|d| d.allowed)
                    }
                });
                let after = batches(&limiters);
                let calls = after.0 - before.0;
                if calls == 0 {
                    m
                } else {
                    // Mean decisions per multi-decision call (see `RedisLimiterBuilder::batch`).
                    m.with_extra("batch_mean", (after.1 - before.1) as f64 / calls as f64)
                }
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
                        // The same key shape and arguments Keel's GCRA sends (cost, now).
                        let reply: redis::RedisResult<Vec<i64>> = trivial
                            .key(format!("bench:{{user:{key}}}:gcra"))
                            .arg(1u32)
                            .arg("")
                            .invoke_async(&mut connection)
                            .await;
                        reply.is_ok()
                    }
                })
            }
        };
        // What a user writes without Keel: a fixed window of one second, `INCR` + `EXPIRE`
        // in `MULTI/EXEC` (pipelined: one round trip), the window picked by the client's
        // clock, allowed while the count is within the limit.
        let incr_run = {
            let (raw, keys) = (raw.clone(), keys.clone());
            let runtime = &runtime;
            move |_threads: usize, duration: Duration| {
                let (raw, keys) = (raw.clone(), keys.clone());
                async_closed_loop(runtime, tasks, duration, move |t, i| {
                    let mut connection = raw[t % raw.len()].clone();
                    let key = keys[(t * 7919 + i as usize) & (STREAM - 1)];
                    async move {
                        let window = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        let reply: redis::RedisResult<(i64,)> = redis::pipe()
                            .atomic()
                            .incr(format!("incr:user:{key}:{window}"), 1)
                            .expire(format!("incr:user:{key}:{window}"), 2)
                            .ignore()
                            .query_async(&mut connection)
                            .await;
                        reply.is_ok_and(|(count,)| count <= i64::from(per_second))
                    }
                })
            }
        };
        // redis-cell: `CL.THROTTLE key max_burst count period 1` allows `max_burst + 1` at
        // once, so `burst - 1` gives the same GCRA as Keel's quota.
        let cell_run = {
            let (raw, keys) = (raw.clone(), keys.clone());
            let runtime = &runtime;
            move |_threads: usize, duration: Duration| {
                let (raw, keys) = (raw.clone(), keys.clone());
                async_closed_loop(runtime, tasks, duration, move |t, i| {
                    let mut connection = raw[t % raw.len()].clone();
                    let key = keys[(t * 7919 + i as usize) & (STREAM - 1)];
                    async move {
                        let reply: redis::RedisResult<Vec<i64>> = redis::cmd("CL.THROTTLE")
                            .arg(format!("cell:user:{key}"))
                            .arg(burst - 1)
                            .arg(per_second)
                            .arg(1)
                            .arg(1)
                            .query_async(&mut connection)
                            .await;
                        reply.is_ok_and(|r| r.first() == Some(&0))
                    }
                })
            }
        };
        let info = &raw[0];
        let mut contenders = vec![
            Contender::keel(
                "keel-redis-gcra",
                with_cpu(&runtime, info.clone(), keel_run(keel.clone())),
            ),
            Contender::keel(
                "keel-redis-gcra no local denials",
                with_cpu(&runtime, info.clone(), keel_run(keel_remote.clone())),
            ),
            Contender::keel(
                "keel-redis-gcra unbatched",
                with_cpu(&runtime, info.clone(), keel_run(keel_unbatched.clone())),
            ),
            Contender::keel(
                "keel-redis-gcra evalsha",
                with_cpu(&runtime, info.clone(), keel_run(keel_evalsha.clone())),
            ),
            Contender::keel(
                "keel-redis-fixed-window",
                with_cpu(&runtime, info.clone(), keel_run(keel_window.clone())),
            ),
            Contender::peer(
                "raw evalsha (trivial)",
                with_cpu(&runtime, info.clone(), raw_run),
            ),
            Contender::peer(
                "incr+expire multi/exec",
                with_cpu(&runtime, info.clone(), incr_run),
            ),
        ];
        if with_cell {
            contenders.push(Contender::peer(
                "redis-cell CL.THROTTLE",
                with_cpu(&runtime, info.clone(), cell_run),
            ));
        }
        report.compare(cfg, &name, connections, &mut contenders);
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
    let keyed = ["keyed uniform 10k", "keyed zipf 10k"];
    let sizes = if keyed.iter().any(|s| cfg.selected(s)) {
        let n = if cfg.quick {
            SIZE_KEYS_QUICK
        } else {
            SIZE_KEYS
        };
        let sizes = key_sizes(n)?;
        if sizes.iter().all(Option::is_none) {
            report.note("bytes_per_key not measured: needs glibc's mallinfo2");
        } else {
            report.note(format!(
                "bytes_per_key = glibc heap in use (mallinfo2) after {n} distinct u64 keys each made one decision on a fresh keyed limiter (Keel: manual cleanup, so all are held), per key held"
            ));
        }
        sizes
    } else {
        [None; 3]
    };
    if cfg.selected(keyed[0]) {
        keyed_scenario(cfg, report, keyed[0], &uniform, sizes)?;
    }
    if cfg.selected(keyed[1]) {
        keyed_scenario(cfg, report, keyed[1], &zipf, sizes)?;
    }
    // Starting a redis-server is the expensive part: only when a connection count is selected.
    if cfg.threads.iter().any(|&c| cfg.selected(&redis_name(c))) {
        redis_scenario(cfg, report, &Arc::new(zipf))?;
    }
    Ok(())
}
