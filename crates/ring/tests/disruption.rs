//! Minimal disruption: a join moves keys only to the new node, a leave moves only the
//! leaving node's keys (ring, jump at the tail, rendezvous, multi-probe); Maglev's extra
//! movement stays within its documented bound.

mod common;

use common::{node, owners};
use keel_ring::{Jump, Maglev, MultiProbe, Placement, Rendezvous, Ring};
use proptest::prelude::*;

fn keys(seed: u64, count: usize) -> Vec<u64> {
    (0..count as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9).wrapping_add(seed))
        .collect()
}

/// Adds `nodes` (with weights), checks a join and a leave of arbitrary members.
fn check_minimal(mut p: Box<dyn Placement>, weights: &[u32], join: usize, leave: usize, seed: u64) {
    let members: Vec<_> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (node(i), w))
        .collect();
    p.add_weighted_nodes(&members).unwrap();
    let keys = keys(seed, 2000);
    let before = owners(p.as_ref(), &keys);

    let newcomer = node(1000 + join);
    p.add_weighted_node(newcomer.clone(), 1 + (join % 3) as u32)
        .unwrap();
    let after = owners(p.as_ref(), &keys);
    for (b, a) in before.iter().zip(&after) {
        assert!(
            a == b || *a == newcomer,
            "{}: key moved {b} -> {a}",
            p.algorithm()
        );
    }
    p.remove_node(&newcomer).unwrap();
    assert_eq!(
        owners(p.as_ref(), &keys),
        before,
        "{}: leave undoes join",
        p.algorithm()
    );

    let leaving = node(leave % weights.len());
    p.remove_node(&leaving).unwrap();
    let after = owners(p.as_ref(), &keys);
    for (b, a) in before.iter().zip(&after) {
        assert!(
            a == b || *b == leaving,
            "{}: key moved {b} -> {a}",
            p.algorithm()
        );
        assert_ne!(*a, leaving);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn ring_moves_only_what_it_must(weights in prop::collection::vec(1u32..4, 2..12), join in 0usize..50, leave in 0usize..50, seed: u64) {
        check_minimal(Box::new(Ring::new(32).unwrap()), &weights, join, leave, seed);
    }

    #[test]
    fn rendezvous_moves_only_what_it_must(weights in prop::collection::vec(1u32..4, 2..12), join in 0usize..50, leave in 0usize..50, seed: u64) {
        check_minimal(Box::new(Rendezvous::new()), &weights, join, leave, seed);
    }

    #[test]
    fn unweighted_rendezvous_moves_only_what_it_must(n in 2usize..12, join in 0usize..50, leave in 0usize..50, seed: u64) {
        check_minimal(Box::new(Rendezvous::new()), &vec![1; n], join, leave, seed);
    }

    #[test]
    fn multi_probe_moves_only_what_it_must(weights in prop::collection::vec(1u32..4, 2..12), join in 0usize..50, leave in 0usize..50, seed: u64) {
        check_minimal(Box::new(MultiProbe::new(21).unwrap()), &weights, join, leave, seed);
    }

    #[test]
    fn jump_moves_only_what_it_must_at_the_tail(n in 2usize..40, seed: u64) {
        let mut jump = Jump::new();
        for i in 0..n {
            jump.add_node(node(i)).unwrap();
        }
        let keys = keys(seed, 2000);
        let before = owners(&jump, &keys);
        jump.add_node(node(n)).unwrap();
        let after = owners(&jump, &keys);
        for (b, a) in before.iter().zip(&after) {
            prop_assert!(a == b || *a == node(n));
        }
        // Remove the new tail, then the old tail: only the tail's keys move.
        jump.remove_node(&node(n)).unwrap();
        prop_assert_eq!(&owners(&jump, &keys), &before);
        jump.remove_node(&node(n - 1)).unwrap();
        let after = owners(&jump, &keys);
        for (b, a) in before.iter().zip(&after) {
            prop_assert!(a == b || *b == node(n - 1));
        }
        // Anything but the tail is refused, and nothing changes.
        prop_assert!(jump.remove_node(&node(0)).is_err() || n == 2);
    }

    #[test]
    fn maglev_extra_movement_is_bounded(n in 4usize..40, leave in 0usize..40, seed: u64) {
        let mut maglev = Maglev::new(Maglev::DEFAULT_TABLE_SIZE).unwrap();
        let members: Vec<_> = (0..n).map(|i| (node(i), 1)).collect();
        maglev.add_weighted_nodes(&members).unwrap();
        let keys = keys(seed, 4000);
        let before = owners(&maglev, &keys);
        let leaving = node(leave % n);
        maglev.remove_node(&leaving).unwrap();
        let after = owners(&maglev, &keys);
        let extra = before.iter().zip(&after).filter(|(b, a)| a != b && **b != leaving).count();
        let bound = keel_ring::maglev::EXTRA_MOVEMENT_BOUND * keys.len() as f64;
        prop_assert!((extra as f64) <= bound, "extra {extra} > bound {bound}");
        prop_assert!(after.iter().all(|a| *a != leaving));
    }
}
