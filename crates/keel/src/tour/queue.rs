//! Tour scenario for `keel-queue`: a fast producer and slow consumers under
//! each backpressure policy (queue depth over time), a graceful shutdown that
//! drains with nothing lost, and a skewed workload on the work-stealing pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_queue::{Backpressure, Pool, PushError, Queue};

use super::{Chart, SummaryRow, SystemReport, Table, Tour, latency_histogram};
use crate::report::charts::{Series, bar_chart, line_chart};

const CAPACITY: usize = 64;
const CONSUMERS: usize = 2;

/// Busy work standing in for a slow consumer's processing of one item.
fn work_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

struct PolicyRun {
    policy: Backpressure,
    produced: u64,
    consumed: u64,
    rejected_back: u64,
    leftovers: u64,
    stats: keel_queue::QueueStats,
    depth: Vec<(f64, f64)>,
    elapsed: Duration,
    latency: hdrhistogram::Histogram<u64>,
}

fn run_policy(
    tour: &Tour,
    policy: Backpressure,
    items: u64,
    per_item: Duration,
    interval: Duration,
) -> anyhow::Result<PolicyRun> {
    let bar = tour.progress(&format!("queue: {policy:?}"), items);
    let (tx, rx) = Queue::builder().capacity(CAPACITY)
        .backpressure(policy)
        .name(format!("tour-{policy:?}"))
        .build::<Instant>()?;
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    // Depth sampler: one point per millisecond.
    let sampler = {
        let (rx, done) = (rx.clone(), done.clone());
        std::thread::spawn(move || {
            let mut points = Vec::new();
            while !done.load(Ordering::Relaxed) {
                points.push((start.elapsed().as_secs_f64() * 1e3, rx.len() as f64));
                std::thread::sleep(Duration::from_millis(1));
            }
            points
        })
    };
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut latency = latency_histogram();
                let mut count = 0u64;
                while let Ok(sent) = rx.pop() {
                    let _ = latency.record((sent.elapsed().as_nanos() as u64).max(1));
                    work_for(per_item);
                    count += 1;
                }
                (count, latency)
            })
        })
        .collect();
    drop(rx);
    // The fast producer: one item per `interval` (faster than the consumers
    // can go), catching up at full speed whenever it was held back.
    let mut rejected_back = 0u64;
    for i in 0..items {
        let due = start + interval * i as u32;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        match tx.push(Instant::now()) {
            Ok(()) => {}
            // `Reject` hands the item back: a real producer would shed or retry.
            Err(PushError::Full(_)) => rejected_back += 1,
            Err(e) => anyhow::bail!("push failed: {e}"),
        }
        if i % 256 == 0 {
            bar.set_position(i);
        }
    }
    bar.set_position(items);
    // Graceful shutdown: close, let the consumers drain (generous grace),
    // and take back whatever would remain.
    let leftovers = tx.shutdown(Duration::from_secs(10)).len() as u64;
    let stats = tx.stats();
    drop(tx);
    let mut consumed = 0;
    let mut latency = latency_histogram();
    for c in consumers {
        let (count, hist) = c.join().map_err(|_| anyhow::anyhow!("consumer panicked"))?;
        consumed += count;
        latency.add(&hist)?;
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let depth = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    bar.finish_and_clear();
    Ok(PolicyRun {
        policy,
        produced: items,
        consumed,
        rejected_back,
        leftovers,
        stats,
        depth,
        elapsed,
        latency,
    })
}

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::new(
        "keel-queue",
        "Producer-consumer queue",
        "One fast producer feeds two slow consumers (50 µs of work per item, 40k items/s together) at 2.5× their pace through a \
         bounded FIFO queue of 64, once per backpressure policy, then shuts down gracefully. \
         Then a work-stealing pool runs a skewed workload: one task spawns every job onto its \
         own worker's deque and the idle workers steal.",
    );
    let items = tour.size(3_000u64, 12_000);
    let per_item = Duration::from_micros(50);
    // Two consumers take 50 µs per item (40k items/s together); the producer
    // offers one item every 10 µs (100k items/s): 2.5× what they can take.
    let interval = Duration::from_micros(10);

    let mut runs = Vec::new();
    for policy in [
        Backpressure::Block,
        Backpressure::Reject,
        Backpressure::DropIncoming,
        Backpressure::DropOldest,
    ] {
        runs.push(run_policy(tour, policy, items, per_item, interval)?);
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
    for r in &runs {
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
    if let Some(block) = runs.iter().find(|r| r.policy == Backpressure::Block) {
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

    // A shutdown whose deadline passes before the consumer is done: what is
    // left comes back to the caller instead of vanishing.
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

    let series: Vec<Series> = runs
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

    // ---- the work-stealing pool ------------------------------------------
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
    report.notes.push(format!(
        "Consumers simulate {} µs of work per item (a spin, so on a busy machine they run \
         slower); the producer offers one item every {} µs. Under Reject the producer gets each \
         refused item back (Full) and moves on.",
        per_item.as_micros(),
        interval.as_micros()
    ));
    Ok(report)
}
