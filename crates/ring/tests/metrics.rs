//! Counters reach the `metrics` facade and match the snapshot structs.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::node;
use keel_ring::{BoundedLoads, HotKeyConfig, HotKeyDetector, Placement, ReadSpreader, Ring};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn counters_are_exported_and_match_snapshots() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (stats, hot_stats, spread) = metrics::with_local_recorder(&recorder, || {
        let mut router = BoundedLoads::new(50, 0.1).unwrap();
        for i in 0..4 {
            router.add_node(node(i)).unwrap();
        }
        let mut held = Vec::new();
        for _ in 0..100 {
            held.push(router.acquire("hot").unwrap());
        }
        for n in held.iter().take(40) {
            router.release(n).unwrap();
        }
        let (clock, _mock) = quanta::Clock::mock();
        let mut detector = HotKeyDetector::new(
            HotKeyConfig {
                capacity: 2,
                half_life: Duration::from_secs(1),
            },
            clock,
        )
        .unwrap();
        for k in 0..10u64 {
            detector.observe_key(&k);
        }
        let mut ring = Ring::new(10).unwrap();
        ring.add_node(node(0)).unwrap();
        ring.add_node(node(1)).unwrap();
        let spreader = ReadSpreader::new(2).unwrap();
        for _ in 0..7 {
            spreader.route(&ring, "k", true).unwrap();
        }
        (router.stats(), detector.stats(), spreader.spread_reads())
    });
    let counters: HashMap<String, u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(c) => Some((key.key().name().to_string(), c)),
            _ => None,
        })
        .fold(HashMap::new(), |mut m, (k, v)| {
            *m.entry(k).or_insert(0) += v;
            m
        });
    assert_eq!(stats.acquired, 100);
    assert_eq!(stats.released, 40);
    assert!(stats.forwarded > 0);
    assert_eq!(counters["keel_ring_bounded_acquired_total"], stats.acquired);
    assert_eq!(counters["keel_ring_bounded_released_total"], stats.released);
    assert_eq!(
        counters["keel_ring_bounded_forwarded_total"],
        stats.forwarded
    );
    assert_eq!(hot_stats.observed, 10);
    assert_eq!(hot_stats.evictions, 8);
    assert_eq!(counters["keel_ring_hot_key_observed_total"], 10);
    assert_eq!(counters["keel_ring_hot_key_evictions_total"], 8);
    assert_eq!(spread, 7);
    assert_eq!(counters["keel_ring_spread_reads_total"], 7);
    // Bounded loads counts its 4 joins and its inner ring counts them again; then 2 ring joins.
    assert_eq!(counters["keel_ring_membership_changes_total"], 4 + 4 + 2);
}
