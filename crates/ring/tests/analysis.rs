//! The comparison harness reports what the theory predicts (small sizes, fast in debug).

use keel_ring::analysis::{Algorithm, AnalysisConfig, analyze, analyze_one, markdown_table};

#[test]
fn harness_matches_theory_on_small_inputs() {
    let config = AnalysisConfig {
        algorithms: Algorithm::standard(),
        node_counts: vec![8],
        keys: 50_000,
        threads: 2,
    };
    let mut seen = 0;
    let reports = analyze(&config, |_| seen += 1).unwrap();
    assert_eq!(seen, reports.len());
    assert_eq!(reports.len(), Algorithm::standard().len());
    for r in &reports {
        assert_eq!(r.loads.iter().sum::<u64>(), 50_000, "{}", r.algorithm);
        assert!(r.peak_to_mean >= 1.0);
        match r.algorithm.as_str() {
            "jump" | "rendezvous" | "ring-100" | "ring-1000" | "multi-probe-21" => {
                assert_eq!(r.moved_on_add_elsewhere, 0, "{}", r.algorithm);
                assert_eq!(r.moved_on_remove_extra, 0, "{}", r.algorithm);
            }
            _ => {}
        }
        if r.algorithm == "jump" {
            assert!(r.weighted_deviation_pct.is_none());
            // Optimal movement: within 10 % of K/(N+1) and K/N.
            assert!(
                (r.moved_on_add_ratio - 1.0).abs() < 0.1,
                "{}",
                r.moved_on_add_ratio
            );
            assert!((r.moved_on_remove_ratio - 1.0).abs() < 0.1);
        }
        if r.algorithm.starts_with("maglev") {
            assert!(r.peak_to_mean < 1.05);
        }
        if let Some(cap) = r.cap {
            assert!(*r.loads.iter().max().unwrap() <= cap, "{}", r.algorithm);
        }
    }
    let table = markdown_table(&reports);
    assert_eq!(table.lines().count(), 2 + reports.len());
}

#[test]
fn more_vnodes_balance_better() {
    let r100 = analyze_one(Algorithm::Ring { vnodes: 100 }, 64, 100_000, 2).unwrap();
    let r1000 = analyze_one(Algorithm::Ring { vnodes: 1000 }, 64, 100_000, 2).unwrap();
    assert!(
        r1000.stddev_pct < r100.stddev_pct,
        "{} !< {}",
        r1000.stddev_pct,
        r100.stddev_pct
    );
    // 1/√100 = 10 % plus sampling noise of 100,000 keys over 64 nodes (≈ 2.5 %).
    assert!(r100.stddev_pct < 16.0, "{}", r100.stddev_pct);
}
