//! Tour scenario for `keel-ratelimit`: simulated API traffic — many well-behaved clients
//! and a few abusive, bursty ones (generated in [`traffic`]) — through a keyed limiter,
//! once per algorithm, on a manual clock (so a minute of traffic replays in milliseconds
//! and every figure is exact). Then the same traffic through the Redis scripts, and a
//! real-time run of two Redis limiter instances sharing one global limit.
//!
//! Parts: per-algorithm simulation, charts, keyed throughput, Redis replay and Redis
//! shared limit (both skipped with a note when no `redis-server` starts). They share the
//! traffic and the simulation's outcomes ([`Shared`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_ratelimit::quanta::Clock;
use keel_ratelimit::redis::{RedisAlgorithm, RedisLimiter};
use keel_ratelimit::{
    Algorithm, CleanupPolicy, Decision, FixedWindow, Gcra, KeyedLimiter, Quota, SlidingCounter,
    SlidingLog, TokenBucket,
};

use super::{Chart, SummaryRow, SystemReport, Table, Tour, latency_histogram};
use crate::report::charts::{Series, line_chart};
use traffic::{Event, traffic};

mod traffic;

/// Per client: 20 requests per 10 s (bursts of 20 for token bucket and GCRA).
const LIMIT: u32 = 20;
const WINDOW: Duration = Duration::from_secs(10);
/// Chart resolution.
const BUCKET_NS: u64 = 500_000_000;

fn quota() -> anyhow::Result<Quota> {
    Ok(Quota::new(LIMIT, WINDOW)?)
}

/// What one algorithm did with the traffic.
struct Outcome {
    name: &'static str,
    decisions: Vec<Decision>,
    /// Per chart bucket: allowed, denied (all clients), allowed from abusive clients.
    allowed: Vec<u64>,
    denied: Vec<u64>,
    abusive_allowed: Vec<u64>,
    abusive_denied: Vec<u64>,
    normal_denied: u64,
    normal_total: u64,
    abusive_allowed_total: u64,
    abusive_total: u64,
    /// Allowed request times per client.
    allowed_at: BTreeMap<u32, Vec<u64>>,
    max_keys: usize,
    keys_after_cleanup: usize,
}

fn simulate<A: Algorithm>(events: &[Event], seconds: u64) -> anyhow::Result<Outcome> {
    let (clock, mock) = Clock::mock();
    let limiter = KeyedLimiter::<u32, A>::builder()
        .quota(quota()?)
        .clock(clock)
        .cleanup(CleanupPolicy::default())
        .build()?;
    let buckets = (seconds * 1_000_000_000 / BUCKET_NS) as usize;
    let mut out = Outcome {
        name: A::NAME,
        decisions: Vec::with_capacity(events.len()),
        allowed: vec![0; buckets],
        denied: vec![0; buckets],
        abusive_allowed: vec![0; buckets],
        abusive_denied: vec![0; buckets],
        normal_denied: 0,
        normal_total: 0,
        abusive_allowed_total: 0,
        abusive_total: 0,
        allowed_at: BTreeMap::new(),
        max_keys: 0,
        keys_after_cleanup: 0,
    };
    let mut now = 0;
    for (i, e) in events.iter().enumerate() {
        mock.increment(e.at_ns - now);
        now = e.at_ns;
        let d = limiter.check(&e.client);
        let b = ((e.at_ns / BUCKET_NS) as usize).min(buckets - 1);
        if d.allowed {
            out.allowed[b] += 1;
            out.allowed_at.entry(e.client).or_default().push(e.at_ns);
        } else {
            out.denied[b] += 1;
        }
        if e.abusive {
            out.abusive_total += 1;
            if d.allowed {
                out.abusive_allowed[b] += 1;
                out.abusive_allowed_total += 1;
            } else {
                out.abusive_denied[b] += 1;
            }
        } else {
            out.normal_total += 1;
            out.normal_denied += u64::from(!d.allowed);
        }
        out.decisions.push(d);
        if i % 1024 == 0 {
            out.max_keys = out.max_keys.max(limiter.len());
        }
    }
    out.max_keys = out.max_keys.max(limiter.len());
    // Once every client has been quiet for a window, nothing needs remembering.
    mock.increment(WINDOW * 2);
    limiter.retain_recent();
    out.keys_after_cleanup = limiter.len();
    Ok(out)
}

/// Most allowed requests of one client in any window of length `window` (sliding).
fn max_in_any_window(times: &[u64], window: u64) -> usize {
    let mut max = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        max = max.max(end - start + 1);
    }
    max
}

/// Most allowed in any aligned window `[k·W, (k+1)·W)`.
fn max_in_aligned_window(times: &[u64], window: u64) -> usize {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for t in times {
        *counts.entry(t / window).or_default() += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

/// Whether every interval `[a, b]` holds at most `burst + (b − a) / T` allowed requests.
fn within_burst_plus_rate(times: &[u64], burst: u64, interval: u64) -> bool {
    (0..times.len()).all(|i| {
        (i..times.len()).all(|j| (j - i + 1) as u64 <= burst + (times[j] - times[i]) / interval)
    })
}

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::for_system(
        "ratelimit",
        "A minute of simulated API traffic: well-behaved clients (Poisson, 0.8 req/s) and a \
         few abusive ones (bursts of 40–80 requests in half a second, plus a 10 req/s scraper) \
         go through a keyed limiter of 20 requests per 10 s per client, once per algorithm, on \
         a manual clock. The same traffic then replays through the Redis Lua scripts, and two \
         Redis limiter instances share one global limit in real time.",
    );
    let normal = tour.size(300, 2_000);
    let mut shared = Shared {
        events: traffic(normal, 5, SECONDS, 0xa11ce),
        clients: normal as usize + 6,
        outcomes: Vec::new(),
    };
    tour.run_parts(
        &mut report,
        &mut shared,
        &[
            ("keyed limiter per algorithm", per_algorithm),
            ("charts", charts),
            ("keyed throughput", throughput),
            (REDIS_REPLAY, redis_replay),
            (REDIS_SHARED, redis_shared_limit),
        ],
    )?;
    Ok(report)
}

/// Simulated seconds of traffic.
const SECONDS: u64 = 60;
/// The parts that need Redis.
const REDIS_REPLAY: &str = "Redis replay";
const REDIS_SHARED: &str = "Redis shared limit";

/// What the parts share: the traffic, and what each algorithm did with it.
struct Shared {
    events: Vec<Event>,
    /// Distinct clients in the traffic.
    clients: usize,
    /// One per algorithm, in [`ALGORITHMS`] order (filled by [`per_algorithm`]).
    outcomes: Vec<Outcome>,
}

/// The five algorithms, in the order of the outcomes and the Redis replay.
const ALGORITHMS: [RedisAlgorithm; 5] = [
    RedisAlgorithm::FixedWindow,
    RedisAlgorithm::SlidingLog,
    RedisAlgorithm::SlidingCounter,
    RedisAlgorithm::TokenBucket,
    RedisAlgorithm::Gcra,
];

/// The traffic through a keyed limiter per algorithm on a manual clock: the table and the
/// checks each algorithm's guarantee must pass.
fn per_algorithm(
    tour: &Tour,
    shared: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let events = &shared.events;
    let bar = tour.progress("ratelimit: simulate", 5);
    let mut outcomes = Vec::new();
    for algorithm in ALGORITHMS {
        let outcome = match algorithm {
            RedisAlgorithm::FixedWindow => simulate::<FixedWindow>(events, SECONDS)?,
            RedisAlgorithm::SlidingLog => simulate::<SlidingLog>(events, SECONDS)?,
            RedisAlgorithm::SlidingCounter => simulate::<SlidingCounter>(events, SECONDS)?,
            RedisAlgorithm::TokenBucket => simulate::<TokenBucket>(events, SECONDS)?,
            RedisAlgorithm::Gcra => simulate::<Gcra>(events, SECONDS)?,
        };
        bar.set_message(outcome.name);
        bar.inc(1);
        outcomes.push(outcome);
    }
    bar.finish_and_clear();

    let window_ns = WINDOW.as_nanos() as u64;
    let interval_ns = quota()?.emission_interval_ns();
    let clients = shared.clients;
    let mut table = Table::new(
        format!(
            "{} requests from {} clients over {} s (limit {LIMIT} per {} s per client)",
            shared.events.len(),
            clients,
            SECONDS,
            WINDOW.as_secs()
        ),
        &[
            "algorithm",
            "allowed",
            "denied",
            "abusive allowed",
            "well-behaved denied",
            "max per client in any 10 s",
            "keys (peak / after cleanup)",
        ],
    );
    for o in &outcomes {
        let allowed: u64 = o.allowed.iter().sum();
        let denied: u64 = o.denied.iter().sum();
        let worst_sliding = o
            .allowed_at
            .values()
            .map(|t| max_in_any_window(t, window_ns))
            .max()
            .unwrap_or(0);
        let worst_aligned = o
            .allowed_at
            .values()
            .map(|t| max_in_aligned_window(t, window_ns))
            .max()
            .unwrap_or(0);
        table.row(vec![
            o.name.to_owned(),
            allowed.to_string(),
            denied.to_string(),
            format!(
                "{:.1} %",
                100.0 * o.abusive_allowed_total as f64 / o.abusive_total.max(1) as f64
            ),
            format!(
                "{} ({:.2} %)",
                o.normal_denied,
                100.0 * o.normal_denied as f64 / o.normal_total.max(1) as f64
            ),
            worst_sliding.to_string(),
            format!("{} / {}", o.max_keys, o.keys_after_cleanup),
        ]);
        let limit = LIMIT as usize;
        let (name, passed, detail) = match o.name {
            "sliding_log" => (
                "sliding log: never more than the limit in any 10 s window",
                worst_sliding <= limit,
                format!("worst client: {worst_sliding} of {limit}"),
            ),
            "fixed_window" => (
                "fixed window: limit per aligned window (boundary bursts show in the table)",
                worst_aligned <= limit && worst_sliding <= 2 * limit,
                format!(
                    "aligned max {worst_aligned}, any-window max {worst_sliding} (≤ 2×{limit})"
                ),
            ),
            "sliding_counter" => (
                "sliding counter: limit per aligned window, bounded overshoot",
                worst_aligned <= limit && worst_sliding <= 2 * limit,
                format!("aligned max {worst_aligned}, any-window max {worst_sliding}"),
            ),
            _ => {
                let ok = o
                    .allowed_at
                    .values()
                    .all(|t| within_burst_plus_rate(t, u64::from(LIMIT), interval_ns));
                (
                    if o.name == "gcra" {
                        "GCRA: never more than burst + rate·t in any interval"
                    } else {
                        "token bucket: never more than burst + rate·t in any interval"
                    },
                    ok,
                    format!("{} clients checked over every interval", o.allowed_at.len()),
                )
            }
        };
        report.check(name, passed, detail);
    }
    let bounded = outcomes
        .iter()
        .all(|o| o.max_keys <= clients && o.keys_after_cleanup == 0);
    report.check(
        "keyed state is bounded and cleaned up",
        bounded,
        format!(
            "peak keys ≤ {clients} clients for every algorithm; 0 left after the clients went quiet"
        ),
    );
    let gcra = &outcomes[4];
    let bucket = &outcomes[3];
    let same = gcra
        .decisions
        .iter()
        .zip(&bucket.decisions)
        .all(|(a, b)| a.allowed == b.allowed);
    report.check(
        "token bucket and GCRA make the same decisions",
        same,
        format!("{} decisions compared", gcra.decisions.len()),
    );
    report.tables.push(table);
    shared.outcomes = outcomes;
    Ok(())
}

/// Allowed vs denied over time per algorithm, and what the abusive clients got through.
fn charts(_: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let outcomes = &shared.outcomes;
    let secs = |b: usize| b as f64 * BUCKET_NS as f64 / 1e9;
    let per_second = 1e9 / BUCKET_NS as f64;
    for o in outcomes {
        let line = |values: &[u64]| -> Vec<(f64, f64)> {
            values
                .iter()
                .enumerate()
                .map(|(b, &v)| (secs(b), v as f64 * per_second))
                .collect()
        };
        let svg = line_chart(
            &format!("{}: abusive clients, allowed vs denied", o.name),
            "simulated time (s)",
            "requests/s",
            &[
                Series::new("allowed (abusive)", line(&o.abusive_allowed)),
                Series::new("denied (abusive)", line(&o.abusive_denied)),
                Series::new("denied (all clients)", line(&o.denied)),
            ],
        )?;
        report.charts.push(Chart::new(
            format!("{}: allowed vs denied over time", o.name),
            format!(
                "Per 0.5 s. The abusive bursts (40–80 requests in half a second) are cut to what \
                 the policy allows; well-behaved clients ({} requests/s on average, almost all \
                 allowed) make up the difference between the two denied lines.",
                (o.normal_total as f64 / 60.0).round()
            ),
            svg,
        ));
    }
    let series: Vec<Series> = outcomes
        .iter()
        .map(|o| {
            Series::new(
                o.name,
                o.abusive_allowed
                    .iter()
                    .enumerate()
                    .map(|(b, &v)| (secs(b), v as f64 * per_second))
                    .collect(),
            )
        })
        .collect();
    let svg = line_chart(
        "abusive clients: allowed requests/s by algorithm",
        "simulated time (s)",
        "allowed requests/s",
        &series,
    )?;
    report.charts.push(Chart::new(
        "burst vs smoothing",
        "What the abusive clients got through. Token bucket and GCRA let a full burst of 20 \
         through at once, then one request per 0.5 s; the windows let the limit through as \
         soon as a window allows, and the fixed window lets a second limit through right \
         after each boundary. The token bucket's line lies under GCRA's: they make the same \
         decisions.",
        svg,
    ));
    Ok(())
}

/// Real-clock decisions/s of each keyed algorithm on the traffic's key stream.
fn throughput(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let keys: Arc<Vec<u32>> = Arc::new(shared.events.iter().map(|e| e.client).collect());
    let duration = tour.size(Duration::from_millis(200), Duration::from_millis(600));
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    fn measure<A: Algorithm>(
        keys: &[u32],
        threads: usize,
        duration: Duration,
    ) -> anyhow::Result<keel_bench::Measurement> {
        let limiter = KeyedLimiter::<u32, A>::new(Quota::new(LIMIT, WINDOW)?);
        Ok(keel_bench::harness::run_threads(threads, duration, |t| {
            let limiter = &limiter;
            let offset = t * 7919;
            move |i: u64| {
                let key = keys[(i as usize + offset) % keys.len()];
                std::hint::black_box(limiter.check(&key));
            }
        }))
    }
    let bar = tour.progress("ratelimit: throughput", 5);
    for (name, m) in [
        (
            "fixed window",
            measure::<FixedWindow>(&keys, threads, duration)?,
        ),
        (
            "sliding log",
            measure::<SlidingLog>(&keys, threads, duration)?,
        ),
        (
            "sliding counter",
            measure::<SlidingCounter>(&keys, threads, duration)?,
        ),
        (
            "token bucket",
            measure::<TokenBucket>(&keys, threads, duration)?,
        ),
        ("GCRA", measure::<Gcra>(&keys, threads, duration)?),
    ] {
        bar.inc(1);
        report.summary.push(SummaryRow::from_histogram(
            format!("keyed {name}, {threads} threads"),
            "decisions/s",
            m.ops,
            m.elapsed,
            &m.latency,
        ));
    }
    bar.finish_and_clear();
    Ok(())
}

/// A small runtime for the Redis parts.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The Redis scripts on the simulated clock (client time only here, so a minute replays in
/// a second) must decide exactly like the in-process algorithms.
fn redis_replay(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let Some(server) = tour.redis_for(report, REDIS_REPLAY) else {
        return Ok(());
    };
    let url = server.url();
    let url = url.as_str();
    let runtime = runtime()?;
    let (events, outcomes) = (&shared.events, &shared.outcomes);
    let replay: Vec<Event> = events
        .iter()
        .filter(|e| e.client < 150 || e.abusive)
        .copied()
        .collect();
    let index: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.client < 150 || e.abusive)
        .map(|(i, _)| i)
        .collect();
    let bar = tour.progress("ratelimit: redis replay", 5);
    let mut table = Table::new(
        format!(
            "Redis Lua scripts replaying {} requests of the same traffic",
            replay.len()
        ),
        &[
            "algorithm",
            "allowed",
            "denied",
            "same as in-process",
            "decisions/s",
            "p50",
            "p99",
        ],
    );
    let mut all_same = true;
    for (algorithm, outcome) in ALGORITHMS.iter().zip(outcomes) {
        let (clock, mock) = Clock::mock();
        let limiter = runtime.block_on(
            RedisLimiter::builder()
                .algorithm(*algorithm)
                .quota(quota()?)
                .url(url)
                .prefix(format!("tour:replay:{}", algorithm.name()))
                .clock(clock)
                .build(),
        )?;
        let mut latency = latency_histogram();
        let (mut allowed, mut same) = (0u64, 0u64);
        let started = Instant::now();
        let mut now = 0;
        runtime.block_on(async {
            for (e, &i) in replay.iter().zip(&index) {
                mock.increment(e.at_ns - now);
                now = e.at_ns;
                let t = Instant::now();
                let d = limiter.check(&e.client.to_string()).await?;
                keel_bench::harness::record(&mut latency, t.elapsed());
                allowed += u64::from(d.allowed);
                same += u64::from(d.allowed == outcome.decisions[i].allowed);
            }
            anyhow::Ok(())
        })?;
        let elapsed = started.elapsed();
        all_same &= same == replay.len() as u64;
        let row = SummaryRow::from_histogram("", "", replay.len() as u64, elapsed, &latency);
        table.row(vec![
            algorithm.name().to_owned(),
            allowed.to_string(),
            (replay.len() as u64 - allowed).to_string(),
            format!("{same} / {}", replay.len()),
            format!("{:.0}", row.throughput),
            format!("{:.0} µs", row.p50_ns as f64 / 1e3),
            format!("{:.0} µs", row.p99_ns as f64 / 1e3),
        ]);
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.tables.push(table);
    report.check(
        "Redis scripts decide exactly like the in-process algorithms",
        all_same,
        format!("{} requests × 5 algorithms replayed", replay.len()),
    );
    Ok(())
}

/// Real time, server clock: two limiter instances (as two processes) share one limit.
fn redis_shared_limit(
    tour: &Tour,
    _: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let Some(server) = tour.redis_for(report, REDIS_SHARED) else {
        return Ok(());
    };
    let url = server.url();
    let url = url.as_str();
    let runtime = runtime()?;
    let spinner = tour.spinner("ratelimit: redis shared limit");
    let global = 500;
    // A three-day window: GCRA refills one request per ~8.6 minutes, so however long this
    // part takes on a loaded machine, exactly `global` requests can pass.
    let quota = Quota::new(global, Duration::from_secs(3 * 86_400))?;
    let a = runtime.block_on(
        RedisLimiter::builder()
            .algorithm(RedisAlgorithm::Gcra)
            .quota(quota)
            .url(url)
            .prefix("tour:global")
            .build(),
    )?;
    let b = runtime.block_on(
        RedisLimiter::builder()
            .algorithm(RedisAlgorithm::Gcra)
            .quota(quota)
            .url(url)
            .prefix("tour:global")
            .build(),
    )?;
    let attempts = tour.size(2_000u64, 8_000);
    let allowed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let latency = runtime.block_on(async {
        let mut handles = Vec::new();
        for task in 0..32u64 {
            let limiter = if task % 2 == 0 { a.clone() } else { b.clone() };
            let allowed = allowed.clone();
            handles.push(tokio::spawn(async move {
                let mut hist = latency_histogram();
                for _ in 0..attempts / 32 {
                    let t = Instant::now();
                    if limiter.check("global").await.is_ok_and(|d| d.allowed) {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    keel_bench::harness::record(&mut hist, t.elapsed());
                }
                hist
            }));
        }
        let mut merged = latency_histogram();
        for h in handles {
            if let Ok(hist) = h.await {
                let _ = merged.add(&hist);
            }
        }
        merged
    });
    let elapsed = started.elapsed();
    spinner.finish_and_clear();
    let total = attempts / 32 * 32;
    report.summary.push(SummaryRow::from_histogram(
        "Redis GCRA, 2 instances × 16 tasks",
        "decisions/s",
        total,
        elapsed,
        &latency,
    ));
    let allowed = allowed.load(Ordering::Relaxed);
    report.check(
        "two Redis limiter instances allow exactly the global limit",
        allowed == u64::from(global),
        format!("{allowed} of {total} attempts allowed, limit {global} per 3 days"),
    );
    let m = a.stats();
    report.notes.push(format!(
        "Redis: one EVALSHA per decision (script {}), server TIME, keys under a prefix with TTLs; \
         instance A counted {} allowed / {} denied / {} backend errors",
        &a.script_hash()[..12],
        m.allowed,
        m.denied,
        m.backend_errors
    ));
    Ok(())
}
