//! Bounded loads never place a unit on a node at or above its cap, and acquire/release
//! keep exact counts (model-checked against a `Vec` of loads).

mod common;

use common::node;
use keel_ring::{BoundedLoads, Placement, RingError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Acquire(u64),
    Release(usize),
    Join(u32),
    Leave(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u64>().prop_map(Op::Acquire),
        3 => any::<usize>().prop_map(Op::Release),
        1 => (1u32..4).prop_map(Op::Join),
        1 => any::<usize>().prop_map(Op::Leave),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_exceeds_cap(
        weights in prop::collection::vec(1u32..4, 1..8),
        epsilon in 0.05f64..1.0,
        ops in prop::collection::vec(op(), 1..400),
        hot_key in any::<u64>(),
    ) {
        let mut router = BoundedLoads::new(16, epsilon).unwrap();
        let mut next_name = weights.len();
        for (i, &w) in weights.iter().enumerate() {
            router.add_weighted_node(node(i), w).unwrap();
        }
        for op in ops {
            match op {
                Op::Acquire(k) => {
                    // Half the traffic is one hot key: the worst case for a plain ring.
                    let key = if k % 2 == 0 { hot_key } else { k };
                    let total_after = router.total_load() + 1;
                    let total_weight: u64 = router.nodes().iter().map(|n| u64::from(router.weight(n).unwrap())).sum();
                    let before: Vec<u64> = router.loads().map(|(_, l)| l).collect();
                    let chosen = router.acquire(&key).unwrap();
                    let load = router.load(&chosen).unwrap();
                    let w = f64::from(router.weight(&chosen).unwrap());
                    let cap = ((1.0 + epsilon) * total_after as f64 * w / total_weight as f64).ceil() as u64;
                    prop_assert!(load <= cap, "load {load} > cap {cap}");
                    prop_assert_eq!(router.total_load(), before.iter().sum::<u64>() + 1);
                }
                Op::Release(i) => {
                    let loaded: Vec<_> = router.loads().filter(|(_, l)| *l > 0).map(|(n, _)| n.clone()).collect();
                    if loaded.is_empty() {
                        let any = router.nodes()[0].clone();
                        prop_assert_eq!(router.release(&any), Err(RingError::NothingAcquired(any.clone())));
                    } else {
                        let n = &loaded[i % loaded.len()];
                        let before = router.load(n).unwrap();
                        router.release(n).unwrap();
                        prop_assert_eq!(router.load(n).unwrap(), before - 1);
                    }
                }
                Op::Join(w) => {
                    router.add_weighted_node(node(next_name), w).unwrap();
                    next_name += 1;
                }
                Op::Leave(i) => {
                    if router.len() > 1 {
                        let n = router.nodes()[i % router.len()].clone();
                        let held = router.load(&n).unwrap();
                        let total = router.total_load();
                        router.remove_node(&n).unwrap();
                        prop_assert_eq!(router.total_load(), total - held);
                    }
                }
            }
            prop_assert_eq!(router.loads().map(|(_, l)| l).sum::<u64>(), router.total_load());
        }
    }
}

#[test]
fn a_hot_key_is_spread_over_several_nodes() {
    let mut router = BoundedLoads::new(100, 0.25).unwrap();
    for i in 0..8 {
        router.add_node(node(i)).unwrap();
    }
    for _ in 0..8000 {
        router.acquire("the-hot-key").unwrap();
    }
    let cap = (1.25f64 * 8000.0 / 8.0).ceil() as u64;
    let loads: Vec<u64> = router.loads().map(|(_, l)| l).collect();
    assert!(loads.iter().all(|&l| l <= cap), "{loads:?}");
    assert!(loads.iter().filter(|&&l| l > 0).count() >= 7, "{loads:?}");
    assert!(router.stats().forwarded > 0);
}

#[test]
fn rejects_bad_epsilon_and_empty_acquire() {
    assert!(matches!(
        BoundedLoads::new(10, 0.0),
        Err(keel_ring::BuildError::InvalidEpsilon(_))
    ));
    assert!(matches!(
        BoundedLoads::new(10, f64::NAN),
        Err(keel_ring::BuildError::InvalidEpsilon(_))
    ));
    let mut router = BoundedLoads::new(10, 0.5).unwrap();
    assert_eq!(router.acquire("k"), Err(RingError::NoNodes));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// With loads in place, the replica list still starts with where `acquire` would go,
    /// is distinct, and lists open nodes before full ones.
    #[test]
    fn replicas_prefer_open_nodes(nodes in 2usize..10, acquires in prop::collection::vec(any::<u64>(), 0..300), key: u64, n in 1usize..12) {
        let mut router = BoundedLoads::new(16, 0.2).unwrap();
        for i in 0..nodes {
            router.add_node(node(i)).unwrap();
        }
        for k in acquires {
            router.acquire(&(k % 3)).unwrap(); // few distinct keys: caps bind
        }
        let replicas = router.replicas(&key, n);
        prop_assert_eq!(replicas.len(), n.min(nodes));
        let mut names: Vec<_> = replicas.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        prop_assert_eq!(names.len(), replicas.len());
        prop_assert_eq!(Some(replicas[0]), router.node_for(&key));
        let open = |id: &keel_ring::NodeId| router.load(id).unwrap() < router.cap(id).unwrap();
        let first_full = replicas.iter().position(|r| !open(r)).unwrap_or(replicas.len());
        prop_assert!(replicas[first_full..].iter().all(|r| !open(r)));
        let first = replicas[0].clone();
        let chosen = router.acquire(&key).unwrap();
        prop_assert_eq!(chosen, first);
    }
}
