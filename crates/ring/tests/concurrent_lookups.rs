//! Lookups take `&self` and placements are `Sync`: many threads reading one placement
//! (shared by `Arc`) get exactly the single-threaded answers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{all_algorithms, node};
use keel_ring::{NodeId, Placement, RingKey};

#[test]
fn many_threads_agree_with_one() {
    for mut p in all_algorithms() {
        let members: Vec<_> = (0..16).map(|i| (node(i), 1)).collect();
        p.add_weighted_nodes(&members).unwrap();
        let p: Arc<dyn Placement> = Arc::from(p);
        let expected: Vec<Option<NodeId>> = (0..20_000u64)
            .map(|k| p.node_for_hash(k.ring_hash()).cloned())
            .collect();
        let mismatches = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let p = Arc::clone(&p);
                let expected = &expected;
                let mismatches = &mismatches;
                s.spawn(move || {
                    for (k, e) in expected.iter().enumerate() {
                        if p.node_for_hash((k as u64).ring_hash()) != e.as_ref() {
                            mismatches.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(mismatches.load(Ordering::Relaxed), 0, "{}", p.algorithm());
    }
}
