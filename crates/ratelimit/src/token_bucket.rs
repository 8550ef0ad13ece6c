//! Token bucket: a bucket of `burst` tokens refilled at `limit / window`; a request of cost
//! `n` takes `n` tokens or is denied.
//!
//! The state is the classic pair *(tokens, last refill time)*. Refill adds whole tokens
//! only and advances `last` by exactly `tokens × T`, so fractional progress towards the
//! next token is kept in the timestamp and nothing is lost to rounding. Two fields cannot
//! be updated by one 64-bit CAS, so each key holds a tiny [`parking_lot::Mutex`] (one
//! uncontended atomic to lock, one to unlock). Rewriting the pair as a single timestamp
//! ("when would the bucket be empty?") turns it into [`Gcra`](crate::Gcra) — the two are
//! the same policy, which the property tests check.

use parking_lot::Mutex;

use crate::reciprocal::Reciprocal;
use crate::{Algorithm, Decision, Quota};

/// Token bucket parameters: capacity `burst`, one token every `T = window / limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    quota: Quota,
    interval: u64,
    capacity: u64,
    per_interval: Reciprocal,
}

/// Per-key token bucket state.
#[derive(Debug)]
pub struct TokenBucketState {
    inner: Mutex<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    last: u64,
}

impl TokenBucket {
    /// Refilled copy of `bucket` at `now`.
    #[inline]
    fn refill(&self, mut b: Bucket, now: u64) -> Bucket {
        // A quota change may have lowered the capacity.
        b.tokens = b.tokens.min(self.capacity);
        if now > b.last {
            let added = self.per_interval.divide(now - b.last);
            if b.tokens + added >= self.capacity {
                b.tokens = self.capacity;
                b.last = now;
            } else {
                b.tokens += added;
                b.last += added * self.interval;
            }
        }
        b
    }

    /// Time until `want` tokens are present in the refilled bucket `b` at `now`.
    fn time_until(&self, b: Bucket, now: u64, want: u64) -> u64 {
        if b.tokens >= want {
            return 0;
        }
        let partial = now.saturating_sub(b.last);
        ((want - b.tokens) * self.interval).saturating_sub(partial)
    }

    #[inline]
    fn decide(&self, b: &mut Bucket, now: u64, cost: u64, consume: bool) -> Decision {
        *b = self.refill(*b, now);
        let limit = self.quota.burst();
        if b.tokens >= cost {
            let left = b.tokens - cost;
            let reset = self.time_until(Bucket { tokens: left, ..*b }, now, self.capacity);
            if consume {
                b.tokens = left;
            }
            Decision::allow(limit, left, reset)
        } else {
            Decision::deny(
                limit,
                b.tokens,
                self.time_until(*b, now, self.capacity),
                self.time_until(*b, now, cost),
            )
        }
    }
}

impl Algorithm for TokenBucket {
    type State = TokenBucketState;
    const NAME: &'static str = "token_bucket";

    fn from_quota(quota: Quota) -> Self {
        Self {
            quota,
            interval: quota.emission_interval_ns(),
            capacity: u64::from(quota.burst()),
            per_interval: Reciprocal::new(quota.emission_interval_ns()),
        }
    }

    fn quota(&self) -> Quota {
        self.quota
    }

    fn capacity(&self) -> u32 {
        self.quota.burst()
    }

    fn new_state(&self, now: u64) -> TokenBucketState {
        TokenBucketState {
            inner: Mutex::new(Bucket {
                tokens: self.capacity,
                last: now,
            }),
        }
    }

    #[inline]
    fn check(&self, state: &TokenBucketState, now: u64, cost: u32) -> Decision {
        let mut bucket = state.inner.lock();
        self.decide(&mut bucket, now, u64::from(cost), true)
    }

    fn peek(&self, state: &TokenBucketState, now: u64) -> Decision {
        let mut copy = *state.inner.lock();
        self.decide(&mut copy, now, 1, false)
    }

    fn is_idle(&self, state: &TokenBucketState, now: u64) -> bool {
        self.refill(*state.inner.lock(), now).tokens >= self.capacity
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
