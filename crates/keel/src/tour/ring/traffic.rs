//! The hot-key workload: Zipf traffic over 100,000 keys plus one planted key that takes a
//! fixed share of all requests.

use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Zipf};

/// The planted hot key (outside the Zipf key range).
pub(super) const HOT_KEY: u64 = 10_000_000;
/// Share of all requests that go to the planted key.
pub(super) const HOT_SHARE: f64 = 0.10;
/// Zipf exponent of the cold traffic.
pub(super) const ZIPF_EXPONENT: f64 = 0.9;
/// Distinct cold keys.
const COLD_KEYS: f64 = 100_000.0;

/// `requests` keys: [`HOT_KEY`] with probability [`HOT_SHARE`], otherwise Zipf over
/// `1..=100,000`. Seeded, so every run sees the same requests.
pub(super) fn zipf_with_hot_key(requests: u64) -> anyhow::Result<Vec<u64>> {
    let zipf = Zipf::new(COLD_KEYS, ZIPF_EXPONENT)?;
    let mut rng = SmallRng::seed_from_u64(0x4b65_656c);
    Ok((0..requests)
        .map(|_| {
            if rng.random::<f64>() < HOT_SHARE {
                HOT_KEY
            } else {
                zipf.sample(&mut rng) as u64
            }
        })
        .collect())
}
