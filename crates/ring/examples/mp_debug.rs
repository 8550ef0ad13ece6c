//! Debug multi-probe balance.
use keel_ring::analysis::{Algorithm, analyze_one};
fn main() {
    for probes in [1u32, 5, 21, 64] {
        let r = analyze_one(Algorithm::MultiProbe { probes }, 64, 1_000_000, 1).unwrap();
        let min = r.loads.iter().min().unwrap();
        println!(
            "probes {probes}: peak/mean {:.3} σ {:.2}% min {} ns {:.0}",
            r.peak_to_mean, r.stddev_pct, min, r.lookup_ns
        );
    }
}
