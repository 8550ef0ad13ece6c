//! Sliding-window counter: two fixed-window counters, the previous one weighted by how much
//! of it still overlaps the sliding window.
//!
//! ```text
//! estimate = previous × (W − elapsed) / W + current        allow iff estimate + cost ≤ limit
//! ```
//!
//! Three integers per key, O(1), and no boundary burst of 2×. It is an *estimate*: it
//! assumes the previous window's requests were spread evenly.
//!
//! **Error bound.** The current fixed window never holds more than `limit` (the estimate is
//! at least `current`). Over-allowing happens when the previous window's requests were
//! bunched at its end: with `p` of them at the very end and elapsed fraction `f`, the exact
//! sliding window holds `p` while the estimate counts `p·(1−f)`, so up to `p·f` extra pass.
//! The exact count in any window of length `W` is therefore below `2 × limit` in the worst
//! case, and `limit` for evenly spread traffic (Cloudflare measured 0.003 % of requests
//! wrongly allowed or denied on real traffic). Both the worst case and the bound are tested.

use parking_lot::Mutex;

use crate::{Algorithm, Decision, Quota};

/// Sliding counter parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingCounter {
    quota: Quota,
    window: u64,
    limit: u64,
}

/// Per-key sliding counter state: window index, previous and current counts.
#[derive(Debug)]
pub struct SlidingCounterState {
    inner: Mutex<Counters>,
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    index: u64,
    previous: u64,
    current: u64,
}

impl SlidingCounter {
    /// Moves `c` to the window holding `now`; returns the time to decide at.
    ///
    /// A clock that stepped back into an earlier window is "no time passed": the counters
    /// stay where they are and the decision is made at the start of their window (the
    /// previous window then weighs fully: never more allowed than at the latest reading).
    #[inline]
    fn roll(&self, c: &mut Counters, now: u64) -> u64 {
        let index = now / self.window;
        if index < c.index {
            return c.index * self.window;
        }
        if index == c.index + 1 {
            *c = Counters {
                index,
                previous: c.current,
                current: 0,
            };
        } else if index > c.index + 1 {
            *c = Counters {
                index,
                previous: 0,
                current: 0,
            };
        }
        now
    }

    /// `estimate × W` for the counters plus `extra`, exact in integers.
    fn weighted(&self, c: &Counters, elapsed: u64, extra: u64) -> u128 {
        u128::from(c.previous) * u128::from(self.window - elapsed)
            + u128::from(c.current + extra) * u128::from(self.window)
    }

    fn remaining(&self, c: &Counters, elapsed: u64) -> u64 {
        let cap = u128::from(self.limit) * u128::from(self.window);
        let used = self.weighted(c, elapsed, 0);
        (cap.saturating_sub(used) / u128::from(self.window)) as u64
    }

    fn reset_after(&self, c: &Counters, now: u64) -> u64 {
        let start = c.index * self.window;
        if c.current > 0 {
            start + 2 * self.window - now
        } else if c.previous > 0 {
            start + self.window - now
        } else {
            0
        }
    }

    /// Smallest elapsed time `e` in a window with `previous` weighted so that
    /// `previous·(W−e) ≤ budget·W`.
    fn elapsed_needed(&self, previous: u64, budget: u64) -> u64 {
        if previous == 0 {
            return 0;
        }
        let fits = u128::from(budget) * u128::from(self.window) / u128::from(previous);
        self.window
            .saturating_sub(fits.min(u128::from(self.window)) as u64)
    }

    fn retry_after(&self, c: &Counters, now: u64, cost: u64) -> u64 {
        let start = c.index * self.window;
        if c.current + cost <= self.limit {
            // Wait inside this window for the previous one's weight to fade.
            let e = self.elapsed_needed(c.previous, self.limit - c.current - cost);
            start + e - now
        } else {
            // Next window: today's count becomes the weighted previous one.
            let e = self.elapsed_needed(c.current, self.limit - cost);
            start + self.window + e - now
        }
    }

    fn decide(&self, c: &mut Counters, now: u64, cost: u64, consume: bool) -> Decision {
        let now = self.roll(c, now);
        let elapsed = now - c.index * self.window;
        let cap = u128::from(self.limit) * u128::from(self.window);
        let limit = self.quota.limit();
        if self.weighted(c, elapsed, cost) <= cap {
            let mut after = *c;
            after.current += cost;
            if consume {
                *c = after;
            }
            Decision::allow(
                limit,
                self.remaining(&after, elapsed),
                self.reset_after(&after, now),
            )
        } else {
            Decision::deny(
                limit,
                self.remaining(c, elapsed),
                self.reset_after(c, now),
                self.retry_after(c, now, cost),
            )
        }
    }
}

impl Algorithm for SlidingCounter {
    type State = SlidingCounterState;
    const NAME: &'static str = "sliding_counter";

    fn from_quota(quota: Quota) -> Self {
        Self {
            quota,
            window: quota.window_ns(),
            limit: u64::from(quota.limit()),
        }
    }

    fn quota(&self) -> Quota {
        self.quota
    }

    fn capacity(&self) -> u32 {
        self.quota.limit()
    }

    fn new_state(&self, now: u64) -> SlidingCounterState {
        SlidingCounterState {
            inner: Mutex::new(Counters {
                index: now / self.window,
                previous: 0,
                current: 0,
            }),
        }
    }

    #[inline]
    fn check(&self, state: &SlidingCounterState, now: u64, cost: u32) -> Decision {
        self.decide(&mut state.inner.lock(), now, u64::from(cost), true)
    }

    fn peek(&self, state: &SlidingCounterState, now: u64) -> Decision {
        let mut copy = *state.inner.lock();
        self.decide(&mut copy, now, 1, false)
    }

    fn is_idle(&self, state: &SlidingCounterState, now: u64) -> bool {
        let mut copy = *state.inner.lock();
        self.roll(&mut copy, now);
        copy.previous == 0 && copy.current == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: u64 = 1_000_000;

    fn counter(limit: u32, window_ms: u64) -> SlidingCounter {
        SlidingCounter::from_quota(Quota::new(limit, Duration::from_millis(window_ms)).unwrap())
    }

    #[test]
    fn previous_window_is_weighted() {
        let sc = counter(10, 1000);
        let s = sc.new_state(0);
        assert!(sc.check(&s, 500 * MS, 10).allowed);
        // At 1 250 ms the previous 10 weigh 7.5: two more fit, the third does not.
        assert!(sc.check(&s, 1250 * MS, 1).allowed);
        assert!(sc.check(&s, 1250 * MS, 1).allowed);
        let d = sc.check(&s, 1250 * MS, 1);
        assert!(!d.allowed);
        // Needs 10·(1−f) + 3 ≤ 10 → f ≥ 0.3 → at 1 300 ms.
        assert_eq!(d.retry_after, Some(Duration::from_millis(50)));
        assert!(!sc.check(&s, 1300 * MS - 1, 1).allowed);
        assert!(sc.check(&s, 1300 * MS, 1).allowed);
    }

    #[test]
    fn worst_case_error_bunched_previous_window() {
        // 10 requests at the very end of window 0, then at mid window 1 the estimate is
        // 10 × 0.5 = 5, so 5 more pass: 15 in the exact (0.5 s, 1.5 s] window — 50 % over.
        let sc = counter(10, 1000);
        let s = sc.new_state(0);
        assert!(sc.check(&s, 999 * MS, 10).allowed);
        let mut extra = 0;
        while sc.check(&s, 1500 * MS, 1).allowed {
            extra += 1;
        }
        assert_eq!(extra, 5);
    }

    #[test]
    fn retry_after_into_next_window() {
        let sc = counter(4, 1000);
        let s = sc.new_state(0);
        assert!(sc.check(&s, 0, 4).allowed);
        let d = sc.check(&s, 0, 2);
        // Next window: 4·(1−f) + 2 ≤ 4 → f ≥ 0.5 → at 1 500 ms.
        assert_eq!(d.retry_after, Some(Duration::from_millis(1500)));
        assert_eq!(d.reset_after, Duration::from_millis(2000));
        assert!(!sc.check(&s, 1500 * MS - 1, 2).allowed);
        assert!(sc.check(&s, 1500 * MS, 2).allowed);
        assert!(!sc.is_idle(&s, 2999 * MS));
        assert!(sc.is_idle(&s, 3000 * MS));
    }
}
