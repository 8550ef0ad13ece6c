//! Every size a caller passes is bounded: an oversized count is a typed [`BuildError`] (or a
//! documented clamp), never a hang, an abort or a panic (issue 10, item 14:
//! `MultiProbe::new(u32::MAX)` was accepted and one lookup took 10 s).

use std::time::Duration;

use keel_ring::analysis::{Algorithm, analyze_one};
use keel_ring::{
    BoundedLoads, BuildError, HotKeyDetector, Maglev, MultiProbe, NodeId, Placement, ReadSpreader,
    Ring, RingError, hot_keys, multi_probe, ring,
};

fn too_large(result: Result<impl std::fmt::Debug, BuildError>, what: &str) {
    match result {
        Err(BuildError::TooLarge {
            what: w,
            requested,
            limit,
        }) => {
            assert_eq!(w, what);
            assert!(requested > limit);
        }
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
}

#[test]
fn multi_probe_rejects_unbounded_probe_counts() {
    too_large(MultiProbe::new(u32::MAX), "probes");
    too_large(MultiProbe::new(multi_probe::MAX_PROBES + 1), "probes");
    // The largest accepted count still answers (and agrees with its replica list).
    let mut mp = MultiProbe::new(multi_probe::MAX_PROBES).unwrap();
    for name in ["a", "b", "c"] {
        mp.add_node(NodeId::new(name).unwrap()).unwrap();
    }
    let owner = mp.node_for("k").unwrap();
    assert_eq!(mp.replicas("k", 3)[0], owner);
}

#[test]
fn ring_and_bounded_loads_reject_more_vnodes_than_the_point_limit() {
    let over = u32::try_from(ring::MAX_POINTS + 1).unwrap();
    too_large(Ring::new(over), "vnodes");
    too_large(Ring::new(u32::MAX), "vnodes");
    too_large(BoundedLoads::new(u32::MAX, 0.25), "vnodes");
    // vnodes × weights beyond the limit is refused when the node is added.
    let mut ring = Ring::new(1 << 20).unwrap();
    assert!(matches!(
        ring.add_weighted_node(NodeId::new("big").unwrap(), 17),
        Err(RingError::TooManyPoints { .. })
    ));
    assert!(ring.is_empty());
}

#[test]
fn hot_key_detector_rejects_unbounded_capacity() {
    let (clock, _mock) = quanta::Clock::mock();
    too_large(
        HotKeyDetector::<u64>::builder()
            .capacity(usize::MAX)
            .clock(clock.clone())
            .build(),
        "capacity",
    );
    too_large(
        HotKeyDetector::<u64>::builder()
            .capacity(hot_keys::MAX_CAPACITY + 1)
            .clock(clock.clone())
            .build(),
        "capacity",
    );
    // The largest accepted capacity allocates only a small reserve up front.
    let mut detector = HotKeyDetector::<u64>::builder()
        .capacity(hot_keys::MAX_CAPACITY)
        .half_life(Duration::MAX)
        .clock(clock)
        .build()
        .unwrap();
    detector.observe_key(&7);
    assert_eq!(detector.tracked(), 1);
}

#[test]
fn maglev_table_sizes_and_next_prime_are_bounded() {
    too_large(Maglev::new(u32::MAX), "maglev table size");
    assert_eq!(Maglev::next_prime(65_536), Some(65_537));
    // Above the largest prime below 2^32 there is none that fits (this used to overflow).
    assert_eq!(Maglev::next_prime(u32::MAX), None);
    assert_eq!(Maglev::next_prime(4_294_967_291), Some(4_294_967_291));
}

#[test]
fn read_spreader_fanout_is_clamped_to_the_members() {
    let mut ring = Ring::new(10).unwrap();
    for name in ["a", "b"] {
        ring.add_node(NodeId::new(name).unwrap()).unwrap();
    }
    let spreader = ReadSpreader::new(usize::MAX).unwrap();
    let seen: std::collections::BTreeSet<_> = (0..4)
        .map(|_| spreader.route(&ring, "hot", true).unwrap().clone())
        .collect();
    assert_eq!(seen.len(), 2);
}

#[test]
fn analysis_rejects_zero_nodes_and_zero_keys() {
    for algorithm in Algorithm::standard() {
        assert!(
            matches!(
                analyze_one(algorithm, 0, 1000, 1),
                Err(RingError::Build(BuildError::ZeroParameter {
                    what: "nodes"
                }))
            ),
            "{}",
            algorithm.label()
        );
        assert!(matches!(
            analyze_one(algorithm, 4, 0, 1),
            Err(RingError::Build(BuildError::ZeroParameter { what: "keys" }))
        ));
    }
}
