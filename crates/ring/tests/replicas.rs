//! Replica lists: distinct nodes, owner first, `min(n, N)` long, for every algorithm.

mod common;

use common::{all_algorithms, node};
use keel_ring::{BoundedLoads, Placement};

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn replicas_are_distinct_and_start_with_the_owner(nodes in 1usize..20, n in 0usize..25, key: u64) {
        for mut p in all_algorithms() {
            let members: Vec<_> = (0..nodes).map(|i| (node(i), 1)).collect();
            p.add_weighted_nodes(&members).unwrap();
            let mut out = Vec::new();
            for k in key..key + 20 {
                p.replica_indices_for_hash(k, n, &mut out);
                prop_assert_eq!(out.len(), n.min(nodes), "{}", p.algorithm());
                let mut sorted = out.clone();
                sorted.sort_unstable();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), out.len(), "{} duplicates", p.algorithm());
                if n > 0 {
                    prop_assert_eq!(Some(out[0]), p.index_for_hash(k), "{}", p.algorithm());
                }
            }
        }
    }
}

#[test]
fn empty_placements_return_nothing() {
    for p in all_algorithms() {
        assert_eq!(p.node_for_hash(1), None);
        let mut out = vec![7];
        p.replica_indices_for_hash(1, 3, &mut out);
        assert!(out.is_empty(), "{}", p.algorithm());
    }
}

#[test]
fn every_algorithm_rejects_duplicates_unknowns_and_zero_weight() {
    for mut p in all_algorithms() {
        p.add_node(node(1)).unwrap();
        assert!(p.add_node(node(1)).is_err());
        assert!(p.add_weighted_node(node(2), 0).is_err());
        assert!(p.remove_node(&node(9)).is_err());
        assert_eq!(p.len(), 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Issue 10, item 5: `replicas(k, n)` is a prefix of `replicas(k, n + 1)` for every
    /// algorithm (jump's 4th replica of key 356 on 5 nodes used to depend on `n`), so a
    /// caller asking for more replicas never reorders the ones it already has.
    #[test]
    fn replicas_n_is_a_prefix_of_replicas_n_plus_one(
        nodes in 1usize..24,
        weights in prop::collection::vec(1u32..4, 24),
        key: u64,
        acquires in prop::collection::vec(0u64..4, 0..200),
    ) {
        let mut placements = all_algorithms();
        // Bounded loads with load in flight too (its order puts full nodes last).
        let mut loaded = BoundedLoads::new(16, 0.1).unwrap();
        let members: Vec<_> = (0..nodes).map(|i| (node(i), 1)).collect();
        loaded.add_weighted_nodes(&members).unwrap();
        for k in &acquires {
            loaded.acquire(k).unwrap();
        }
        placements.push(Box::new(loaded));
        for (i, mut p) in placements.into_iter().enumerate() {
            if i < 6 {
                // Weighted members where the algorithm has weights.
                let members: Vec<_> = (0..nodes)
                    .map(|j| (node(j), if p.algorithm() == "jump" { 1 } else { weights[j] }))
                    .collect();
                p.add_weighted_nodes(&members).unwrap();
            }
            let mut shorter = Vec::new();
            let mut longer = Vec::new();
            for k in key..key + 16 {
                for n in 0..=nodes + 1 {
                    p.replica_indices_for_hash(k, n, &mut shorter);
                    p.replica_indices_for_hash(k, n + 1, &mut longer);
                    prop_assert_eq!(
                        &longer[..shorter.len()], &shorter[..],
                        "{}: replicas({}, {}) is not a prefix of replicas(_, {})",
                        p.algorithm(), k, n, n + 1
                    );
                }
            }
        }
    }
}

#[test]
fn jump_replicas_of_key_356_do_not_depend_on_n() {
    let mut jump = keel_ring::Jump::new();
    for i in 0..5 {
        jump.add_node(node(i)).unwrap();
    }
    let four = jump.replicas(&356u64, 4);
    let five = jump.replicas(&356u64, 5);
    assert_eq!(four[..], five[..4]);
    // The case is rare (a replica walk that needs many rehashes), so check many keys.
    for key in 0..50_000u64 {
        let all = jump.replicas(&key, 5);
        for n in 1..5 {
            assert_eq!(jump.replicas(&key, n)[..], all[..n], "key {key}, n {n}");
        }
    }
}
