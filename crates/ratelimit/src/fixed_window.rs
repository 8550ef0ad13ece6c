//! Fixed window: count requests in aligned windows `[k·W, (k+1)·W)`; reset at each boundary.
//!
//! The baseline: two integers per key, O(1), trivially distributed (`INCR` + `EXPIRE`).
//! Its flaw is the **boundary burst**: `limit` requests at the very end of one window and
//! `limit` more at the start of the next are all allowed, so up to `2 × limit` requests
//! pass within a few milliseconds (tested in `boundary_burst_allows_twice_the_limit`).

use parking_lot::Mutex;

use crate::{Algorithm, Decision, Quota};

/// Fixed window parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    quota: Quota,
    window: u64,
    limit: u64,
}

/// Per-key fixed window state: the window's start and the count inside it.
#[derive(Debug)]
pub struct FixedWindowState {
    inner: Mutex<Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    count: u64,
}

impl FixedWindow {
    /// Moves `w` to the window holding `now`; returns the time to decide at.
    ///
    /// A clock that stepped back into an earlier window is "no time passed": the state stays
    /// in its window and the decision is made at that window's start. (Moving the state back
    /// would reset the count and let a second `limit` through.)
    #[inline]
    fn roll(&self, w: &mut Window, now: u64) -> u64 {
        if now < w.start {
            return w.start;
        }
        let start = now - now % self.window;
        if start != w.start {
            *w = Window { start, count: 0 };
        }
        now
    }

    fn decide(&self, w: &mut Window, now: u64, cost: u64, consume: bool) -> Decision {
        let now = self.roll(w, now);
        let until_end = w.start + self.window - now;
        let limit = self.quota.limit();
        if w.count + cost <= self.limit {
            let after = w.count + cost;
            if consume {
                w.count = after;
            }
            Decision::allow(limit, self.limit - after, until_end)
        } else {
            Decision::deny(limit, self.limit - w.count, until_end, until_end)
        }
    }
}

impl Algorithm for FixedWindow {
    type State = FixedWindowState;
    const NAME: &'static str = "fixed_window";

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

    fn new_state(&self, now: u64) -> FixedWindowState {
        FixedWindowState {
            inner: Mutex::new(Window {
                start: now - now % self.window,
                count: 0,
            }),
        }
    }

    #[inline]
    fn check(&self, state: &FixedWindowState, now: u64, cost: u32) -> Decision {
        self.decide(&mut state.inner.lock(), now, u64::from(cost), true)
    }

    fn peek(&self, state: &FixedWindowState, now: u64) -> Decision {
        let mut copy = *state.inner.lock();
        self.decide(&mut copy, now, 1, false)
    }

    fn is_idle(&self, state: &FixedWindowState, now: u64) -> bool {
        let w = *state.inner.lock();
        // Only a later window frees the count; an earlier `now` (a step back) does not.
        w.count == 0 || now >= w.start + self.window
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: u64 = 1_000_000;

    fn fixed(limit: u32, window_ms: u64) -> FixedWindow {
        FixedWindow::from_quota(Quota::new(limit, Duration::from_millis(window_ms)).unwrap())
    }

    #[test]
    fn counts_within_window_and_resets_at_boundary() {
        let fw = fixed(3, 1000);
        let s = fw.new_state(0);
        for remaining in [2, 1, 0] {
            assert_eq!(fw.check(&s, 100 * MS, 1).remaining, remaining);
        }
        let d = fw.check(&s, 400 * MS, 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(600)));
        assert_eq!(d.reset_after, Duration::from_millis(600));
        assert!(!fw.check(&s, 1000 * MS - 1, 1).allowed);
        assert!(fw.check(&s, 1000 * MS, 1).allowed);
    }

    #[test]
    fn boundary_burst_allows_twice_the_limit() {
        let fw = fixed(5, 1000);
        let s = fw.new_state(0);
        let mut allowed = 0;
        for _ in 0..5 {
            allowed += u32::from(fw.check(&s, 999 * MS, 1).allowed);
        }
        for _ in 0..5 {
            allowed += u32::from(fw.check(&s, 1001 * MS, 1).allowed);
        }
        // 10 requests within 2 ms under a "5 per second" limit: the documented flaw.
        assert_eq!(allowed, 10);
    }

    #[test]
    fn cost_n_and_peek() {
        let fw = fixed(5, 1000);
        let s = fw.new_state(0);
        assert!(fw.check(&s, 0, 3).allowed);
        assert!(!fw.check(&s, 0, 3).allowed);
        let p = fw.peek(&s, 0);
        assert!(p.allowed);
        assert_eq!(p.remaining, 1);
        assert_eq!(fw.peek(&s, 0), p);
        assert!(fw.check(&s, 0, 2).allowed);
        assert!(!fw.is_idle(&s, 999 * MS));
        assert!(fw.is_idle(&s, 1000 * MS));
    }
}
