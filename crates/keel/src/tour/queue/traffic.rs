//! The tour's producer-consumer traffic: one fast producer, slow consumers, a
//! depth sampler, under one backpressure policy, ending in a graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keel_queue::{Backpressure, PushError, Queue};

use super::{CAPACITY, CONSUMERS};
use crate::tour::{Tour, latency_histogram};

/// Busy work standing in for a slow consumer's processing of one item.
pub(super) fn work_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// What one policy's run produced, consumed, dropped and handed back.
pub(super) struct PolicyRun {
    pub(super) policy: Backpressure,
    pub(super) produced: u64,
    pub(super) consumed: u64,
    pub(super) rejected_back: u64,
    pub(super) leftovers: u64,
    pub(super) stats: keel_queue::QueueStats,
    pub(super) depth: Vec<(f64, f64)>,
    pub(super) elapsed: Duration,
    pub(super) latency: hdrhistogram::Histogram<u64>,
}

/// A fast producer (one item per `interval`) and [`CONSUMERS`] consumers
/// (`per_item` of work each) through a FIFO queue of [`CAPACITY`] under `policy`,
/// then `shutdown` with a generous grace; the queue depth is sampled every ms.
pub(super) fn run_policy(
    tour: &Tour,
    policy: Backpressure,
    items: u64,
    per_item: Duration,
    interval: Duration,
) -> anyhow::Result<PolicyRun> {
    let bar = tour.progress(&format!("queue: {policy:?}"), items);
    let (tx, rx) = Queue::builder()
        .capacity(CAPACITY)
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
