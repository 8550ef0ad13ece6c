//! Retry delays: capped exponential backoff with full jitter.
//!
//! `delay(n) = uniform(0, min(max, base · 2^(n−1)))` for the n-th failure ("full jitter",
//! from AWS's "Exponential Backoff and Jitter"): the expected delay still doubles, but
//! workers that failed together (a database blip) spread their retries over the whole
//! window instead of retrying in lock-step and failing together again.

use std::time::Duration;

use rand::Rng;

/// A retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Window of the first retry.
    pub base: Duration,
    /// Largest window.
    pub max: Duration,
    /// Full jitter (uniform in `[0, window]`) when true; the window itself when false.
    pub jitter: bool,
}

impl Default for Backoff {
    /// 1 s, doubling, capped at 1 h, full jitter.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The window (upper bound of the delay) after the `failures`-th failure (1-based).
    ///
    /// ```
    /// # use keel_jobs::Backoff;
    /// # use std::time::Duration;
    /// let b = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(10), jitter: true };
    /// assert_eq!(b.window(1), Duration::from_secs(1));
    /// assert_eq!(b.window(3), Duration::from_secs(4));
    /// assert_eq!(b.window(60), Duration::from_secs(10)); // capped, no overflow
    /// ```
    pub fn window(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(62);
        let factor = 1u64 << shift;
        let millis = u64::try_from(self.base.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(factor);
        Duration::from_millis(millis).min(self.max)
    }

    /// The delay before the next attempt after the `failures`-th failure.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let window = self.window(failures);
        if !self.jitter || window.is_zero() {
            return window;
        }
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn full_jitter_stays_within_the_doubling_window_and_uses_all_of_it() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
            jitter: true,
        };
        let mut rng = SmallRng::seed_from_u64(7);
        for failures in 1..=10u32 {
            let window = b.window(failures);
            assert_eq!(
                window,
                Duration::from_millis(100 * (1 << (failures - 1))).min(Duration::from_secs(5))
            );
            let delays: Vec<_> = (0..2_000).map(|_| b.delay(failures, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d <= window));
            // Full jitter: both ends of the window are reached (not a fixed ±10 %).
            assert!(delays.iter().any(|d| *d < window / 10));
            assert!(delays.iter().any(|d| *d > window * 9 / 10));
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let b = Backoff::default();
        let a: Vec<_> = {
            let mut rng = SmallRng::seed_from_u64(1);
            (1..20).map(|n| b.delay(n, &mut rng)).collect()
        };
        let c: Vec<_> = {
            let mut rng = SmallRng::seed_from_u64(1);
            (1..20).map(|n| b.delay(n, &mut rng)).collect()
        };
        assert_eq!(a, c);
    }

    #[test]
    fn no_jitter_is_the_window_and_huge_settings_do_not_overflow() {
        let b = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
            jitter: false,
        };
        let mut rng = SmallRng::seed_from_u64(0);
        assert_eq!(b.delay(u32::MAX, &mut rng), Duration::from_millis(u64::MAX));
        let zero = Backoff {
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: true,
        };
        assert_eq!(zero.delay(3, &mut rng), Duration::ZERO);
    }
}
