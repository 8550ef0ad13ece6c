//! P producers × C consumers × M items: every item is delivered exactly once
//! (multiset check), and for FIFO each producer's items arrive in order.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;

use keel_queue::{Queue, Receiver, Sender};

/// Items are `producer << 32 | sequence`.
fn run(
    tx: Sender<u64>,
    rx: Receiver<u64>,
    producers: u64,
    consumers: usize,
    per_producer: u64,
    batch: bool,
) -> Vec<Vec<u64>> {
    let barrier = Arc::new(Barrier::new(producers as usize + consumers));
    let mut producer_threads = Vec::new();
    for p in 0..producers {
        let tx = tx.clone();
        let barrier = barrier.clone();
        producer_threads.push(thread::spawn(move || {
            barrier.wait();
            for seq in 0..per_producer {
                tx.push((p << 32) | seq).unwrap();
            }
        }));
    }
    drop(tx);
    let mut consumer_threads = Vec::new();
    for _ in 0..consumers {
        let rx = rx.clone();
        let barrier = barrier.clone();
        consumer_threads.push(thread::spawn(move || {
            barrier.wait();
            let mut got = Vec::new();
            if batch {
                while let Ok(items) = rx.pop_batch(16) {
                    got.extend(items);
                }
            } else {
                while let Ok(item) = rx.pop() {
                    got.push(item);
                }
            }
            got
        }));
    }
    drop(rx);
    for t in producer_threads {
        t.join().unwrap();
    }
    consumer_threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect()
}

fn check_exactly_once(per_consumer: &[Vec<u64>], producers: u64, per_producer: u64) {
    let mut counts: HashMap<u64, u32> = HashMap::new();
    for item in per_consumer.iter().flatten() {
        *counts.entry(*item).or_default() += 1;
    }
    assert_eq!(
        counts.len() as u64,
        producers * per_producer,
        "every item delivered"
    );
    assert!(counts.values().all(|&c| c == 1), "no item delivered twice");
    for p in 0..producers {
        for seq in 0..per_producer {
            assert!(counts.contains_key(&((p << 32) | seq)));
        }
    }
}

fn check_per_producer_fifo(per_consumer: &[Vec<u64>]) {
    // Each consumer sees each producer's items in increasing order (FIFO
    // across all consumers cannot be observed without a global clock, but
    // within one consumer it must hold).
    for got in per_consumer {
        let mut last: HashMap<u64, u64> = HashMap::new();
        for item in got {
            let (p, seq) = (item >> 32, item & 0xffff_ffff);
            if let Some(prev) = last.insert(p, seq) {
                assert!(seq > prev, "producer {p}: {seq} after {prev}");
            }
        }
    }
}

#[test]
fn fifo_exactly_once_and_ordered_various_shapes() {
    let _watchdog = common::watchdog();
    for (producers, consumers, capacity) in
        [(1, 1, 1), (2, 2, 1), (4, 4, 2), (3, 2, 64), (2, 3, 1024)]
    {
        let per_producer = 20_000;
        let (tx, rx) = Queue::builder().capacity(capacity).build::<u64>().unwrap();
        let got = run(tx, rx, producers, consumers, per_producer, false);
        check_exactly_once(&got, producers, per_producer);
        check_per_producer_fifo(&got);
    }
}

#[test]
fn fifo_batch_pop_exactly_once_and_ordered() {
    let _watchdog = common::watchdog();
    let (tx, rx) = Queue::builder().capacity(8).build::<u64>().unwrap();
    let got = run(tx, rx, 3, 2, 50_000, true);
    check_exactly_once(&got, 3, 50_000);
    check_per_producer_fifo(&got);
}

#[test]
fn lifo_exactly_once() {
    let _watchdog = common::watchdog();
    let (tx, rx) = Queue::builder().capacity(4).lifo().build::<u64>().unwrap();
    let got = run(tx, rx, 3, 3, 30_000, false);
    check_exactly_once(&got, 3, 30_000);
}

#[test]
fn priority_exactly_once() {
    let _watchdog = common::watchdog();
    let (tx, rx) = Queue::builder().capacity(4).priority::<u64>().unwrap();
    let got = run(tx, rx, 3, 3, 30_000, true);
    check_exactly_once(&got, 3, 30_000);
}

#[test]
fn stats_account_for_every_item() {
    let _watchdog = common::watchdog();
    let (tx, rx) = Queue::builder().capacity(16).build::<u64>().unwrap();
    let observer = rx.clone();
    let got = run(tx, rx, 2, 2, 20_000, false);
    check_exactly_once(&got, 2, 20_000);
    let stats = observer.stats();
    assert_eq!(stats.pushed, 40_000);
    assert_eq!(stats.popped, 40_000);
    assert_eq!(stats.len, 0);
    assert!(stats.high_watermark <= 16);
}
