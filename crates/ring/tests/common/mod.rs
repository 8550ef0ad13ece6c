//! Shared helpers for the behaviour suites.
#![allow(dead_code, unreachable_pub)]

use keel_ring::{BoundedLoads, Jump, Maglev, MultiProbe, NodeId, Placement, Rendezvous, Ring};

pub fn node(i: usize) -> NodeId {
    NodeId::new(format!("node-{i}")).unwrap()
}

/// Every algorithm, empty.
pub fn all_algorithms() -> Vec<Box<dyn Placement>> {
    vec![
        Box::new(Ring::new(64).unwrap()),
        Box::new(Jump::new()),
        Box::new(Rendezvous::new()),
        Box::new(Maglev::new(4099).unwrap()),
        Box::new(MultiProbe::new(21).unwrap()),
        Box::new(BoundedLoads::new(64, 0.25).unwrap()),
    ]
}

pub fn owners(p: &dyn Placement, keys: &[u64]) -> Vec<NodeId> {
    use keel_ring::RingKey;
    keys.iter()
        .map(|k| p.node_for_hash(k.ring_hash()).unwrap().clone())
        .collect()
}
