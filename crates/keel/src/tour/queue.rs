//! Tour scenario for `keel-queue`: a fast producer and slow consumers under
//! each backpressure policy (queue depth over time), a graceful shutdown that
//! drains with nothing lost, a shutdown whose deadline expires, and a skewed
//! workload on the work-stealing pool.
//!
//! Parts: the backpressure policies (the traffic itself is in
//! `queue/traffic.rs`), the depth chart, shutdown with a deadline, the
//! work-stealing pool. They share the policy runs ([`Shared`]).

mod traffic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_queue::{Backpressure, Pool, Queue};

use super::{Chart, SummaryRow, SystemReport, Table, Tour, latency_histogram};
use crate::report::charts::{Series, bar_chart, line_chart};
use traffic::{PolicyRun, run_policy, work_for};

/// The bound of every queue in the scenario.
const CAPACITY: usize = 64;
/// Slow consumers per policy run.
const CONSUMERS: usize = 2;

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::for_system(
        "queue",
        "One fast producer feeds two slow consumers (50 µs of work per item, 40k items/s together) at 2.5× their pace through a \
         bounded FIFO queue of 64, once per backpressure policy, then shuts down gracefully. \
         Then a work-stealing pool runs a skewed workload: one task spawns every job onto its \
         own worker's deque and the idle workers steal.",
    );
    let mut shared = Shared {
        items: tour.size(3_000u64, 12_000),
        // Two consumers take 50 µs per item (40k items/s together); the
        // producer offers one item every 10 µs (100k items/s): 2.5× that.
        per_item: Duration::from_micros(50),
        interval: Duration::from_micros(10),
        runs: Vec::new(),
    };
    tour.run_parts(
        &mut report,
        &mut shared,
        &[
            ("backpressure policies", policies),
            ("depth chart", depth_chart),
            ("shutdown with a deadline", shutdown_deadline),
            ("work-stealing pool", pool_skewed),
        ],
    )?;
    Ok(report)
}

/// What the parts share: the traffic's shape and one run per policy.
struct Shared {
    /// Items the producer offers per policy run.
    items: u64,
    /// A consumer's work per item.
    per_item: Duration,
    /// The producer's pace: one item per interval.
    interval: Duration,
    /// One per policy (filled by [`policies`]).
    runs: Vec<PolicyRun>,
}

/// Every policy under the same overload: the table, a summary row per policy,
/// "every item accounted for" checks, and Block's "0 lost" and depth bound.
fn policies(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    for policy in [
        Backpressure::Block,
        Backpressure::Reject,
        Backpressure::DropIncoming,
        Backpressure::DropOldest,
    ] {
        shared.runs.push(run_policy(
            tour,
            policy,
            shared.items,
            shared.per_item,
            shared.interval,
        )?);
    }
    let mut table = Table::new(
        "Backpressure policies (capacity 64, 2 slow consumers)",
        &[
            "policy",
            "produced",
            "consumed",
            "dropped",
            "rejected",
            "left after shutdown",
            "high-watermark",
            "producer blocked",
        ],
    );
    for r in &shared.runs {
        table.row(vec![
            format!("{:?}", r.policy),
            r.produced.to_string(),
            r.consumed.to_string(),
            r.stats.dropped.to_string(),
            r.stats.rejected.to_string(),
            r.leftovers.to_string(),
            r.stats.high_watermark.to_string(),
            format!("{:.1} ms", r.stats.producer_blocked.as_secs_f64() * 1e3),
        ]);
        report.summary.push(SummaryRow::from_histogram(
            format!("{:?}: hand-off to 2 slow consumers", r.policy),
            "items/s",
            r.consumed,
            r.elapsed,
            &r.latency,
        ));
        // Every produced item is consumed, or counted as dropped/rejected by
        // the policy, or handed back by shutdown: nothing vanishes.
        let accounted = r.consumed + r.stats.dropped + r.rejected_back + r.leftovers;
        report.check(
            format!("{:?}: every item accounted for", r.policy),
            accounted == r.produced && r.stats.rejected == r.rejected_back,
            format!(
                "{} produced = {} consumed + {} dropped + {} rejected + {} left",
                r.produced, r.consumed, r.stats.dropped, r.rejected_back, r.leftovers
            ),
        );
    }
    if let Some(block) = shared.runs.iter().find(|r| r.policy == Backpressure::Block) {
        let lost = block.produced - block.consumed - block.leftovers;
        report.check(
            "Block + graceful shutdown: 0 lost",
            lost == 0 && block.stats.dropped == 0 && block.stats.rejected == 0,
            format!(
                "{} produced, {} consumed, {} left after shutdown, {lost} lost",
                block.produced, block.consumed, block.leftovers
            ),
        );
        report.check(
            "Block: depth never exceeds capacity",
            block.stats.high_watermark <= CAPACITY
                && block.depth.iter().all(|&(_, d)| d <= CAPACITY as f64),
            format!(
                "high-watermark {} of {CAPACITY}",
                block.stats.high_watermark
            ),
        );
    }
    report.tables.push(table);

    report.notes.push(format!(
        "Consumers simulate {} µs of work per item (a spin, so on a busy machine they run \
         slower); the producer offers one item every {} µs. Under Reject the producer gets each \
         refused item back (Full) and moves on.",
        shared.per_item.as_micros(),
        shared.interval.as_micros()
    ));
    Ok(())
}

/// Queue depth over time under each policy (from [`policies`]' runs).
fn depth_chart(_: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let series: Vec<Series> = shared
        .runs
        .iter()
        .map(|r| Series::new(format!("{:?}", r.policy), r.depth.clone()))
        .collect();
    report.charts.push(Chart::new(
        "Queue depth over time",
        "Depth sampled every millisecond. Block pins the queue at its capacity while the producer \
         waits (its run lasts as long as the consumers need); Reject and the drop policies keep \
         the producer at full speed, so their runs are short and the surplus is counted instead.",
        line_chart(
            "Queue depth under each policy",
            "time (ms)",
            "items queued",
            &series,
        )?,
    ));

    Ok(())
}

/// A shutdown whose deadline passes before the consumer is done: what is
/// left comes back to the caller instead of vanishing.
fn shutdown_deadline(tour: &Tour, _: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let (tx, rx) = Queue::builder().capacity(CAPACITY).build::<u64>()?;
    for i in 0..CAPACITY as u64 {
        tx.push(i)?;
    }
    let slow = std::thread::spawn(move || {
        let mut taken = 0u64;
        while rx.pop().is_ok() {
            work_for(Duration::from_millis(1));
            taken += 1;
        }
        taken
    });
    let grace = Duration::from_millis(tour.size(10, 20));
    let leftovers = tx.shutdown(grace);
    let taken = slow
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))?;
    report.check(
        "shutdown(deadline) hands back what consumers did not take: 0 lost",
        taken + leftovers.len() as u64 == CAPACITY as u64,
        format!(
            "{CAPACITY} queued; a 1 ms/item consumer took {taken} within the {} ms grace, \
             shutdown returned {} leftovers",
            grace.as_millis(),
            leftovers.len()
        ),
    );

    Ok(())
}

/// A skewed workload spawned onto one worker's deque: exactly-once, steals,
/// graceful shutdown, tasks per worker.
fn pool_skewed(tour: &Tour, _: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let workers = 3;
    let jobs = tour.size(2_000u64, 10_000);
    let pool = Pool::new(workers)?;
    let hits: Arc<Vec<AtomicU64>> = Arc::new((0..jobs).map(|_| AtomicU64::new(0)).collect());
    let spawner = pool.spawner();
    let waits = Arc::new(parking_lot::Mutex::new(latency_histogram()));
    let bar = tour.progress("pool: skewed workload", jobs);
    let started = Instant::now();
    {
        let hits = hits.clone();
        let waits = waits.clone();
        // One task spawns everything: all jobs land on its worker's deque.
        pool.spawn(move || {
            for i in 0..jobs {
                let hits = hits.clone();
                let waits = waits.clone();
                let spawned = Instant::now();
                spawner.execute(move || {
                    let _ = waits
                        .lock()
                        .record((spawned.elapsed().as_nanos() as u64).max(1));
                    // Skewed costs: every 10th job is ten times heavier.
                    let micros = if i % 10 == 0 { 200 } else { 20 };
                    work_for(Duration::from_micros(micros));
                    hits[i as usize].fetch_add(1, Ordering::Relaxed);
                });
            }
        });
    }
    while pool.stats().pending > 0 {
        bar.set_position(
            hits.iter()
                .filter(|h| h.load(Ordering::Relaxed) > 0)
                .count() as u64,
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    bar.finish_and_clear();
    let stats = pool.shutdown();
    let pool_elapsed = started.elapsed();
    let exactly_once = hits.iter().all(|h| h.load(Ordering::Relaxed) == 1);
    report.check(
        "pool: every job ran exactly once",
        exactly_once,
        format!("{jobs} jobs"),
    );
    report.check(
        "pool: idle workers stole work",
        stats.steals() > 0,
        format!("{} steals across {workers} workers", stats.steals()),
    );
    report.check(
        "pool: graceful shutdown ran everything queued",
        stats.pending == 0 && stats.never_started == 0 && stats.tasks_run() == jobs + 1,
        format!(
            "{} tasks run (jobs + the spawning task), {} never started",
            stats.tasks_run(),
            stats.never_started
        ),
    );
    let mut table = Table::new(
        "Pool: skewed workload, per worker",
        &["worker", "tasks run", "steals"],
    );
    for (i, w) in stats.workers.iter().enumerate() {
        table.row(vec![
            i.to_string(),
            w.tasks_run.to_string(),
            w.steals.to_string(),
        ]);
    }
    report.tables.push(table);
    report.summary.push(SummaryRow::from_histogram(
        format!("pool: skewed jobs on {workers} workers (latency = wait in deque)"),
        "tasks/s",
        stats.tasks_run(),
        pool_elapsed,
        &waits.lock(),
    ));
    let categories: Vec<String> = (0..workers).map(|i| format!("worker {i}")).collect();
    report.charts.push(Chart::new(
        "Work stealing: tasks per worker",
        "All jobs were spawned onto one worker's deque; the others ran their share by stealing \
         (a stolen job is counted in both bars of the worker that stole it).",
        bar_chart(
            "Tasks run and steals per worker",
            "tasks",
            &categories,
            &[
                Series::bars(
                    "tasks run",
                    stats.workers.iter().map(|w| w.tasks_run as f64),
                ),
                Series::bars("steals", stats.workers.iter().map(|w| w.steals as f64)),
            ],
        )?,
    ));
    Ok(())
}
