//! A replica list of every member is a permutation of the members that starts with the
//! short list, for every algorithm and a cluster large enough that the long-list code
//! paths run (a member bitmap, multi-probe's one-pass ranking, jump's Fenwick tree).
//! Before them, a list of every member was quadratic: one `replicas(k, N)` took 1.25 s for
//! jump at N = 100,000 (now 17 ms), 1.7 s for Maglev at 20,000 (now 1.7 ms), 0.41 s for a
//! 100-vnode ring at 20,000 (now 0.7 ms) — release build on the shared, loaded 2-core VM,
//! measured by hand and not asserted here.

mod common;

use common::{all_algorithms, node};

#[test]
fn full_replica_lists_are_permutations_extending_the_short_list() {
    let nodes = 1_500;
    for mut p in all_algorithms() {
        let members: Vec<_> = (0..nodes).map(|i| (node(i), 1)).collect();
        if p.algorithm() == "maglev" {
            // The test table (4099 slots) is too small for 1,500 nodes to balance; build a
            // bigger one.
            p = Box::new(keel_ring::Maglev::new(65_537).unwrap());
        }
        p.add_weighted_nodes(&members).unwrap();
        let (mut short, mut all) = (Vec::new(), Vec::new());
        for key in 0..8u64 {
            p.replica_indices_for_hash(key, 3, &mut short);
            p.replica_indices_for_hash(key, usize::MAX, &mut all);
            assert_eq!(all.len(), nodes, "{}", p.algorithm());
            assert_eq!(all[..3], short[..], "{}", p.algorithm());
            let mut sorted = all.clone();
            sorted.sort_unstable();
            assert!(sorted.iter().copied().eq(0..nodes), "{}", p.algorithm());
        }
    }
}
