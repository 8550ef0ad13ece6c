//! Replica lists: distinct nodes, owner first, `min(n, N)` long, for every algorithm.

mod common;

use common::{all_algorithms, node};

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
