//! Token bucket: a bucket of `burst` tokens refilled at `limit / window`; a request of cost
//! `n` takes `n` tokens or is denied.
//!
//! The classic state is the pair *(tokens, last refill time)*, which needs a lock (or a
//! 128-bit CAS) to update. This implementation stores the same bucket as **one
//! timestamp**: the instant the bucket will be full again, `full_at = last + (burst −
//! tokens) × T`. With `d = max(full_at − now, 0)` the bucket holds `burst − ⌈d / T⌉`
//! whole tokens (the fraction towards the next one is the part of `d` below a multiple of
//! `T`), a refill does not change `full_at` at all, and taking `n` tokens adds `n × T` to
//! it. Allowed iff `burst − ⌈d/T⌉ ≥ n` ⇔ `d + n·T ≤ burst·T` — which is
//! [`Gcra`](crate::Gcra)'s test with `full_at` as its TAT. So the state is one `AtomicU64`
//! updated by a compare-and-swap (the same loop as GCRA, model-checked in
//! `tests/loom_gcra.rs`), a denial is one load and a compare with no store, and the
//! `Decision` fields come out exactly as the pair would give them:
//!
//! | field | (tokens, last) form | `full_at` form |
//! |---|---|---|
//! | allowed: `remaining` | `tokens − n` | `⌊(burst·T − d − n·T) / T⌋` |
//! | allowed: `reset_after` | `(burst − tokens + n)·T − fraction` | `d + n·T` |
//! | denied: `remaining` | `tokens` | `⌊(burst·T − d) / T⌋` |
//! | denied: `reset_after` | `(burst − tokens)·T − fraction` | `d` |
//! | denied: `retry_after` | `(n − tokens)·T − fraction` | `d + n·T − burst·T` |
//!
//! `token_bucket_and_gcra_are_the_same_policy` (tests/properties.rs) checks the two
//! algorithms decide identically; the unit tests below pin the token-bucket numbers.
//!
//! **What changed with the single timestamp** (before, the pair sat under a per-key mutex,
//! which cost 0.15× governor on a contended deny-heavy key): a clock that steps back is no
//! longer "no time passed" but, as for GCRA, "the client came back sooner" — the wait grows
//! by the step, never more is allowed, and once the clock is back the decisions are the
//! undisturbed ones (tests/clock_backwards.rs); and a keyed quota change keeps the time
//! still owed (`full_at`) rather than the token count.

use crate::gcra::GcraState;
use crate::{Algorithm, Decision, Gcra, Quota};

/// Token bucket parameters: capacity `burst`, one token every `T = window / limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// The same arithmetic as GCRA: `T`, `τ = burst × T`, and a reciprocal of `T`.
    meter: Gcra,
}

/// Per-key token bucket state: the instant the bucket is full again, in one atomic.
#[derive(Debug, Default)]
pub struct TokenBucketState {
    full_at: GcraState,
}

impl Algorithm for TokenBucket {
    type State = TokenBucketState;
    const NAME: &'static str = "token_bucket";

    fn from_quota(quota: Quota) -> Self {
        Self {
            meter: Gcra::from_quota(quota),
        }
    }

    fn quota(&self) -> Quota {
        self.meter.quota()
    }

    fn capacity(&self) -> u32 {
        self.meter.capacity()
    }

    /// A full bucket: `full_at = 0`, in the past of every reading.
    fn new_state(&self, _now: u64) -> TokenBucketState {
        TokenBucketState::default()
    }

    #[inline]
    fn check(&self, state: &TokenBucketState, now: u64, cost: u32) -> Decision {
        self.meter.check(&state.full_at, now, cost)
    }

    fn peek(&self, state: &TokenBucketState, now: u64) -> Decision {
        self.meter.peek(&state.full_at, now)
    }

    fn is_idle(&self, state: &TokenBucketState, now: u64) -> bool {
        self.meter.is_idle(&state.full_at, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: u64 = 1_000_000;

    fn bucket(limit: u32, window_ms: u64, burst: u32) -> TokenBucket {
        TokenBucket::from_quota(
            Quota::new(limit, Duration::from_millis(window_ms))
                .unwrap()
                .with_burst(burst)
                .unwrap(),
        )
    }

    #[test]
    fn burst_refill_and_fraction_kept() {
        let tb = bucket(10, 1000, 4); // one token per 100 ms, capacity 4
        let s = tb.new_state(0);
        assert!(tb.check(&s, 0, 4).allowed);
        let d = tb.check(&s, 0, 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(d.reset_after, Duration::from_millis(400));
        // 150 ms: one token, half of the next one kept in `last`.
        assert!(tb.check(&s, 150 * MS, 1).allowed);
        let d = tb.check(&s, 150 * MS, 1);
        assert_eq!(d.retry_after, Some(Duration::from_millis(50)));
        assert!(tb.check(&s, 200 * MS, 1).allowed);
    }

    #[test]
    fn never_holds_more_than_capacity() {
        let tb = bucket(10, 1000, 3);
        let s = tb.new_state(0);
        let p = tb.peek(&s, 10_000 * MS);
        assert_eq!(p.remaining, 2);
        assert!(tb.check(&s, 10_000 * MS, 3).allowed);
        assert!(!tb.check(&s, 10_000 * MS, 1).allowed);
    }

    #[test]
    fn cost_n_retry_after_is_exact() {
        let tb = bucket(10, 1000, 5);
        let s = tb.new_state(0);
        assert!(tb.check(&s, 0, 5).allowed);
        let d = tb.check(&s, 30 * MS, 3);
        assert_eq!(d.retry_after, Some(Duration::from_millis(270)));
        assert!(!tb.check(&s, 300 * MS - 1, 3).allowed);
        assert!(tb.check(&s, 300 * MS, 3).allowed);
        assert!(!tb.is_idle(&s, 300 * MS));
        assert!(tb.is_idle(&s, 800 * MS));
    }
}
