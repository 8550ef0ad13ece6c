//! The hot-key detector finds keys planted in Zipf traffic, forgets them once they cool
//! down (decay driven by a mock clock), and the mitigations spread their load.

mod common;

use std::time::Duration;

use common::node;
use keel_ring::{BoundedLoads, HotKeyConfig, HotKeyDetector, Placement, ReadSpreader, Ring};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Zipf};

const PLANTED: [u64; 3] = [1_000_001, 1_000_002, 1_000_003];

/// Zipf(1.0) over 100,000 keys, with each planted key taking 4 % of the traffic.
fn traffic(rng: &mut SmallRng, zipf: &Zipf<f64>) -> u64 {
    let r: f64 = rng.random();
    if r < 0.12 {
        PLANTED[(r / 0.04) as usize]
    } else {
        // Cold Zipf keys are offset so they cannot collide with the planted ones.
        zipf.sample(rng) as u64
    }
}

#[test]
fn finds_planted_hot_keys_in_zipf_traffic_and_forgets_them() {
    let (clock, mock) = quanta::Clock::mock();
    let mut detector = HotKeyDetector::new(
        HotKeyConfig {
            capacity: 64,
            half_life: Duration::from_secs(2),
        },
        clock,
    )
    .unwrap();
    let mut ring = Ring::new(100).unwrap();
    for i in 0..8 {
        ring.add_node(node(i)).unwrap();
    }
    let mut rng = SmallRng::seed_from_u64(7);
    let zipf = Zipf::new(100_000.0, 1.0).unwrap();
    for _ in 0..100_000 {
        let key = traffic(&mut rng, &zipf);
        detector.observe(&key, ring.node_for(&key).unwrap());
        mock.increment(Duration::from_micros(50));
    }
    let hot: Vec<u64> = detector.hot_keys(0.03).iter().map(|h| h.key).collect();
    for planted in PLANTED {
        assert!(hot.contains(&planted), "planted {planted} not in {hot:?}");
        let share = detector.share_of(&planted);
        assert!((0.03..0.06).contains(&share), "share {share}");
    }
    // Zipf's own head (key 1 has ≈ 7.5 % of the Zipf part) is hot too; nothing tiny is.
    assert!(hot.len() <= 6, "{hot:?}");
    let shares = detector.node_shares();
    assert_eq!(shares.len(), 8);
    assert!((shares.iter().map(|s| s.1).sum::<f64>() - 1.0).abs() < 1e-9);

    // The planted keys go cold; ten half-lives later fresh traffic dominates.
    mock.increment(Duration::from_secs(20));
    for _ in 0..20_000 {
        let key = loop {
            let k = traffic(&mut rng, &zipf);
            if !PLANTED.contains(&k) {
                break k;
            }
        };
        detector.observe_key(&key);
        mock.increment(Duration::from_micros(50));
    }
    for planted in PLANTED {
        assert!(!detector.is_hot(&planted, 0.03), "{planted} still hot");
    }
    assert!(detector.tracked() <= 64);
}

#[test]
fn spreading_reads_of_a_hot_key_lowers_the_peak() {
    let mut ring = Ring::new(100).unwrap();
    for i in 0..8 {
        ring.add_node(node(i)).unwrap();
    }
    let spreader = ReadSpreader::new(4).unwrap();
    let mut before = std::collections::HashMap::new();
    let mut after = std::collections::HashMap::new();
    for i in 0..10_000u64 {
        let key = if i % 4 == 0 { 1_000_000 } else { i };
        *before
            .entry(ring.node_for(&key).unwrap().clone())
            .or_insert(0u64) += 1;
        let hot = key == 1_000_000;
        *after
            .entry(spreader.route(&ring, &key, hot).unwrap().clone())
            .or_insert(0u64) += 1;
    }
    let peak_before = before.values().max().unwrap();
    let peak_after = after.values().max().unwrap();
    assert!(peak_after < peak_before, "{peak_after} !< {peak_before}");
    assert_eq!(spreader.spread_reads(), 2500);

    // Bounded loads caps the same traffic at ⌈1.25 × mean⌉.
    let mut router = BoundedLoads::new(100, 0.25).unwrap();
    for i in 0..8 {
        router.add_node(node(i)).unwrap();
    }
    for i in 0..10_000u64 {
        let key = if i % 4 == 0 { 1_000_000 } else { i };
        router.acquire(&key).unwrap();
    }
    let peak = router.loads().map(|(_, l)| l).max().unwrap();
    assert!(peak <= (1.25f64 * 10_000.0 / 8.0).ceil() as u64);
    assert!(peak < *peak_before);
}

#[test]
fn spreader_is_thread_safe_and_counts_every_read() {
    let mut ring = Ring::new(50).unwrap();
    for i in 0..4 {
        ring.add_node(node(i)).unwrap();
    }
    let spreader = ReadSpreader::new(3).unwrap();
    let per_thread = 10_000u64;
    let counts: Vec<std::collections::HashMap<String, u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut c = std::collections::HashMap::new();
                    for _ in 0..per_thread {
                        let n = spreader.route(&ring, "hot", true).unwrap();
                        *c.entry(n.to_string()).or_insert(0) += 1;
                    }
                    c
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(spreader.spread_reads(), 4 * per_thread);
    let mut total = std::collections::HashMap::new();
    for c in counts {
        for (k, v) in c {
            *total.entry(k).or_insert(0u64) += v;
        }
    }
    // The shared cursor hands out turns exactly round-robin overall.
    assert_eq!(total.len(), 3);
    let expected = 4 * per_thread / 3;
    assert!(
        total.values().all(|&v| v.abs_diff(expected) <= 1),
        "{total:?}"
    );
}

mod space_saving_model {
    use std::collections::HashMap;
    use std::time::Duration;

    use keel_ring::{HotKeyConfig, HotKeyDetector};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against exact counts (no time passes, so no decay): every key heavier than
        /// W/k is tracked, and every tracked estimate brackets the true count:
        /// `count − error ≤ true ≤ count`, with `error ≤ W/k`.
        #[test]
        fn guarantees_hold(capacity in 1usize..12, stream in prop::collection::vec(0u8..30, 1..600)) {
            let (clock, _mock) = quanta::Clock::mock();
            let mut d = HotKeyDetector::new(
                HotKeyConfig { capacity, half_life: Duration::from_secs(1) },
                clock,
            ).unwrap();
            let mut exact: HashMap<u8, f64> = HashMap::new();
            for k in &stream {
                d.observe_key(k);
                *exact.entry(*k).or_default() += 1.0;
            }
            let total = stream.len() as f64;
            prop_assert!((d.total() - total).abs() < 1e-9);
            let tracked = d.top(capacity);
            prop_assert!(tracked.len() <= capacity);
            for h in &tracked {
                let truth = exact[&h.key];
                prop_assert!(h.count - h.error <= truth + 1e-9, "{h:?} truth {truth}");
                prop_assert!(truth <= h.count + 1e-9, "{h:?} truth {truth}");
                prop_assert!(h.error <= total / capacity as f64 + 1e-9);
            }
            for (k, &c) in &exact {
                if c > total / capacity as f64 {
                    prop_assert!(tracked.iter().any(|h| h.key == *k), "heavy key {k} ({c}) lost");
                }
            }
        }
    }
}

#[test]
fn huge_capacities_and_fanouts_do_not_allocate_up_front() {
    let (clock, _mock) = quanta::Clock::mock();
    let config = HotKeyConfig {
        capacity: keel_ring::hot_keys::MAX_CAPACITY,
        half_life: Duration::from_secs(1),
    };
    let mut detector = HotKeyDetector::new(config, clock).unwrap();
    detector.observe_key(&7u64);
    assert_eq!(detector.tracked(), 1);

    let mut ring = Ring::new(10).unwrap();
    for name in ["a", "b"] {
        ring.add_node(keel_ring::NodeId::new(name).unwrap())
            .unwrap();
    }
    let spreader = ReadSpreader::new(usize::MAX).unwrap();
    assert!(spreader.route(&ring, "hot", true).is_some());
}
