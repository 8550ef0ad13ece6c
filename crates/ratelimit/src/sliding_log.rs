//! Sliding-window log: remember the time of every allowed request; allow a new one iff
//! fewer than `limit` happened in the last `W`.
//!
//! Exact — in *every* interval of length `W` at most `limit` requests are allowed (a
//! property test checks this against random arrivals) — at the price of memory: up to
//! `limit` timestamps per key (requests at the same instant share one entry with a cost).
//! A request at `t` counts while `now < t + W`.

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::{Algorithm, Decision, Quota};

/// Sliding log parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingLog {
    quota: Quota,
    window: u64,
    limit: u64,
}

/// Per-key sliding log: `(timestamp, cost)` entries, oldest first, and their total.
#[derive(Debug)]
pub struct SlidingLogState {
    inner: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<(u64, u32)>,
    total: u64,
    /// The latest time this log has been evicted at. Entries older than a window before it
    /// are gone, so a clock that steps back must not decide (or record) before it.
    latest: u64,
}

impl SlidingLog {
    /// Drops the entries that have expired at `now`; returns the time to decide at: `now`,
    /// or — if the clock stepped back — the latest time seen ("no time passed"; otherwise a
    /// request recorded at the earlier time would expire too soon).
    #[inline]
    fn evict(&self, log: &mut Log, now: u64) -> u64 {
        let now = now.max(log.latest);
        log.latest = now;
        while let Some(&(at, cost)) = log.entries.front() {
            if at + self.window > now {
                break;
            }
            log.entries.pop_front();
            log.total -= u64::from(cost);
        }
        if log.entries.is_empty() && log.entries.capacity() > 64 {
            // A key that was busy and went quiet gives its memory back.
            log.entries = VecDeque::new();
        }
        now
    }

    fn reset_after(&self, log: &Log, now: u64) -> u64 {
        log.entries
            .back()
            .map_or(0, |&(at, _)| (at + self.window).saturating_sub(now))
    }

    fn denied(&self, log: &Log, now: u64, cost: u64) -> Decision {
        // Walk from the oldest entry until enough cost has expired to make room.
        let need = log.total + cost - self.limit;
        let mut freed = 0;
        let mut retry = 0;
        for &(at, c) in &log.entries {
            freed += u64::from(c);
            if freed >= need {
                retry = (at + self.window).saturating_sub(now);
                break;
            }
        }
        Decision::deny(
            self.quota.limit(),
            self.limit - log.total.min(self.limit),
            self.reset_after(log, now),
            retry,
        )
    }
}

impl Algorithm for SlidingLog {
    type State = SlidingLogState;
    const NAME: &'static str = "sliding_log";

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

    fn new_state(&self, _now: u64) -> SlidingLogState {
        SlidingLogState {
            inner: Mutex::new(Log::default()),
        }
    }

    fn check(&self, state: &SlidingLogState, now: u64, cost: u32) -> Decision {
        let mut log = state.inner.lock();
        let now = self.evict(&mut log, now);
        let wide = u64::from(cost);
        if log.total + wide > self.limit {
            return self.denied(&log, now, wide);
        }
        log.total += wide;
        match log.entries.back_mut() {
            // Same instant (or a clock that went backwards): merge, keeping order.
            Some((at, c)) if *at >= now => *c += cost,
            _ => log.entries.push_back((now, cost)),
        }
        Decision::allow(
            self.quota.limit(),
            self.limit - log.total,
            self.reset_after(&log, now),
        )
    }

    fn peek(&self, state: &SlidingLogState, now: u64) -> Decision {
        let mut log = state.inner.lock();
        let now = self.evict(&mut log, now);
        if log.total < self.limit {
            Decision::allow(self.quota.limit(), self.limit - log.total - 1, self.window)
        } else {
            self.denied(&log, now, 1)
        }
    }

    fn is_idle(&self, state: &SlidingLogState, now: u64) -> bool {
        let log = state.inner.lock();
        log.entries
            .back()
            .is_none_or(|&(at, _)| at + self.window <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: u64 = 1_000_000;

    fn log(limit: u32, window_ms: u64) -> SlidingLog {
        SlidingLog::from_quota(Quota::new(limit, Duration::from_millis(window_ms)).unwrap())
    }

    #[test]
    fn exact_window_no_boundary_burst() {
        let sl = log(3, 1000);
        let s = sl.new_state(0);
        assert!(sl.check(&s, 100 * MS, 1).allowed);
        assert!(sl.check(&s, 900 * MS, 2).allowed);
        // At 1 001 ms the fixed window would have reset; the log still sees 3 in the last second.
        let d = sl.check(&s, 1001 * MS, 1);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_millis(99)));
        assert_eq!(d.reset_after, Duration::from_millis(899));
        assert!(sl.check(&s, 1100 * MS, 1).allowed);
        assert!(!sl.check(&s, 1100 * MS, 1).allowed);
    }

    #[test]
    fn cost_n_retry_waits_for_enough_expiry() {
        let sl = log(5, 1000);
        let s = sl.new_state(0);
        for t in [0, 100, 200, 300, 400] {
            assert!(sl.check(&s, t * MS, 1).allowed);
        }
        let d = sl.check(&s, 500 * MS, 3);
        // Three entries must expire: the one at 200 ms expires at 1 200 ms.
        assert_eq!(d.retry_after, Some(Duration::from_millis(700)));
        assert!(!sl.check(&s, 1200 * MS - 1, 3).allowed);
        assert!(sl.check(&s, 1200 * MS, 3).allowed);
    }

    #[test]
    fn same_instant_entries_merge_and_idle_when_expired() {
        let sl = log(100, 1000);
        let s = sl.new_state(0);
        for _ in 0..100 {
            assert!(sl.check(&s, 5 * MS, 1).allowed);
        }
        assert_eq!(s.inner.lock().entries.len(), 1);
        assert_eq!(sl.peek(&s, 5 * MS).remaining, 0);
        assert!(!sl.is_idle(&s, 1004 * MS));
        assert!(sl.is_idle(&s, 1005 * MS));
    }
}
