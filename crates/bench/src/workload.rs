//! Shared workloads: seeded key streams so every contender sees the identical sequence.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// `count` keys drawn from a Zipf distribution with exponent `s` over `0..n`.
///
/// Rank 1 (the hottest) maps to key 0. Seeded, so two calls with the same arguments give
/// the same stream — which is how contenders get an identical workload.
pub fn zipf_keys(n: u64, s: f64, count: usize, seed: u64) -> Vec<u64> {
    let n = n.max(1);
    let zipf = Zipf::new(n as f64, s).expect("zipf parameters are valid for n >= 1, s > 0");
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| zipf.sample(&mut rng) as u64 - 1)
        .collect()
}

/// `count` keys drawn uniformly from `0..n`, seeded.
pub fn uniform_keys(n: u64, count: usize, seed: u64) -> Vec<u64> {
    let n = n.max(1);
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count).map(|_| rng.random_range(0..n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_seeded_in_range_and_skewed() {
        let a = zipf_keys(1000, 1.0, 10_000, 7);
        assert_eq!(a, zipf_keys(1000, 1.0, 10_000, 7));
        assert!(a.iter().all(|&k| k < 1000));
        let hottest = a.iter().filter(|&&k| k == 0).count();
        let coldest = a.iter().filter(|&&k| k == 999).count();
        assert!(hottest > 100 * coldest.max(1), "{hottest} vs {coldest}");
    }

    #[test]
    fn uniform_stays_in_range() {
        let a = uniform_keys(10, 1000, 1);
        assert!(a.iter().all(|&k| k < 10));
        assert!((0..10).all(|k| a.contains(&k)));
    }
}
