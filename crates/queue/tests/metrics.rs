//! Counters reach the `metrics` facade.

use keel_queue::{Backpressure, Queue};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn publish_exports_counters_and_gauges() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (tx, rx) = Queue::builder()
        .capacity(2)
        .backpressure(Backpressure::DropIncoming)
        .name("jobs")
        .build::<u32>()
        .unwrap();
    for i in 0..5 {
        tx.push(i).unwrap();
    }
    rx.pop().unwrap();
    metrics::with_local_recorder(&recorder, || tx.publish_metrics());
    let mut seen = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        assert!(
            key.labels()
                .any(|l| l.key() == "queue" && l.value() == "jobs")
        );
        let number = match value {
            DebugValue::Counter(c) => c as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(_) => continue,
        };
        seen.insert(key.name().to_owned(), number);
    }
    assert_eq!(seen["keel_queue_pushed_total"], 2.0);
    assert_eq!(seen["keel_queue_popped_total"], 1.0);
    assert_eq!(seen["keel_queue_dropped_total"], 3.0);
    assert_eq!(seen["keel_queue_rejected_total"], 0.0);
    assert_eq!(seen["keel_queue_len"], 1.0);
    assert_eq!(seen["keel_queue_capacity"], 2.0);
    assert_eq!(seen["keel_queue_high_watermark"], 2.0);
}

#[test]
fn stats_track_drop_oldest_and_high_watermark() {
    let (tx, rx) = Queue::builder()
        .capacity(3)
        .backpressure(Backpressure::DropOldest)
        .build::<u32>()
        .unwrap();
    for i in 0..10 {
        tx.push(i).unwrap();
    }
    let stats = tx.stats();
    assert_eq!(
        (stats.pushed, stats.dropped, stats.len, stats.high_watermark),
        (10, 7, 3, 3)
    );
    assert_eq!(rx.drain(), vec![7, 8, 9]);
    let stats = rx.stats();
    assert_eq!(stats.pushed, stats.popped + 7);
}
