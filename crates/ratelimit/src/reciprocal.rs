//! Division by a per-quota constant without a `div` instruction.
//!
//! GCRA and the token bucket divide by their emission interval on every decision (to
//! report `remaining`, to count refilled tokens). A 64-bit `div` costs 15–45 cycles on
//! common x86 cores — as much as the rest of the decision. The interval is fixed per
//! quota, so `m = ⌊(2^64 − 1) / d⌋` is computed once and `x / d` becomes the high half of
//! one 64×64-bit multiply, `⌊x·m / 2^64⌋`, which is `x / d` or one less (because
//! `x·m / 2^64 > x/d − 1` for every 64-bit `x`), plus one multiply-and-compare to correct it.

/// `x / d` for a fixed `d ≥ 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reciprocal {
    divisor: u64,
    multiplier: u64,
}

impl Reciprocal {
    pub(crate) fn new(divisor: u64) -> Self {
        let divisor = divisor.max(1);
        Self {
            divisor,
            // d = 1 would need 2^64; it is special-cased in `divide` instead.
            multiplier: if divisor == 1 { 0 } else { u64::MAX / divisor },
        }
    }

    /// Exactly `x / divisor`.
    #[inline]
    pub(crate) fn divide(&self, x: u64) -> u64 {
        if self.divisor == 1 {
            return x;
        }
        let q = ((u128::from(x) * u128::from(self.multiplier)) >> 64) as u64;
        // q ∈ {x/d − 1, x/d}, so q·d ≤ x and the remainder x − q·d is below 2d.
        if x - q * self.divisor >= self.divisor {
            q + 1
        } else {
            q
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn equals_integer_division(x in any::<u64>(), d in 1u64..) {
            prop_assert_eq!(Reciprocal::new(d).divide(x), x / d);
        }

        #[test]
        fn equals_integer_division_small_quotients(q in 0u64..(1 << 33), d in 1u64..(1 << 31), r in any::<u64>()) {
            let x = q * d + r % d;
            prop_assert_eq!(Reciprocal::new(d).divide(x), x / d);
        }
    }

    #[test]
    fn edges() {
        for d in [1, 2, 3, 7, 1_000_000_000, u64::MAX / 3, u64::MAX] {
            let r = Reciprocal::new(d);
            for x in [0, 1, d - 1, d, d.saturating_add(1), u64::MAX - 1, u64::MAX] {
                assert_eq!(r.divide(x), x / d, "{x} / {d}");
            }
        }
    }
}
