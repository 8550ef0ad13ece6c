//! Weighted nodes get their weight's share of keys, within a stated tolerance.
//!
//! Tolerance: with 100,000 keys, weights 1..=4 over 8 nodes, each node's share is within
//! 10 % (relative) of `w / Σw` for ring (200 vnodes per unit), rendezvous, Maglev, and
//! within 25 % for multi-probe (one point per weight unit is coarse: its balance comes
//! from the 21 probes, not from many points).

mod common;

use common::node;
use keel_ring::{Maglev, MultiProbe, Placement, Rendezvous, Ring, RingKey};

fn shares(mut p: Box<dyn Placement>, tolerance: f64) {
    let weights = [1u32, 2, 3, 4, 1, 2, 3, 4];
    let members: Vec<_> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (node(i), w))
        .collect();
    p.add_weighted_nodes(&members).unwrap();
    let keys = 100_000u64;
    let mut counts = [0u64; 8];
    for k in 0..keys {
        let owner = p.index_for_hash(k.ring_hash()).unwrap();
        counts[owner] += 1;
    }
    let total: u32 = weights.iter().sum();
    for (i, (&w, &c)) in weights.iter().zip(&counts).enumerate() {
        let expected = keys as f64 * f64::from(w) / f64::from(total);
        let deviation = (c as f64 / expected - 1.0).abs();
        assert!(
            deviation <= tolerance,
            "{}: node {i} weight {w} got {c}, expected {expected:.0} (dev {deviation:.3})",
            p.algorithm()
        );
    }
}

#[test]
fn ring_weights() {
    shares(Box::new(Ring::new(200).unwrap()), 0.10);
}

#[test]
fn rendezvous_weights() {
    shares(Box::new(Rendezvous::new()), 0.10);
}

#[test]
fn maglev_weights() {
    shares(Box::new(Maglev::new(65_537).unwrap()), 0.10);
}

#[test]
fn multi_probe_weights() {
    shares(Box::new(MultiProbe::new(21).unwrap()), 0.25);
}

#[test]
fn jump_refuses_weights() {
    let mut jump = keel_ring::Jump::new();
    assert!(matches!(
        jump.add_weighted_node(node(0), 2),
        Err(keel_ring::RingError::WeightUnsupported { .. })
    ));
}
