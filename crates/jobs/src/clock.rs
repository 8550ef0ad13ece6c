//! Injected wall-clock time: [`Timestamp`]s are milliseconds since the Unix epoch, because
//! a job's `run_at` and lease deadline outlive the process that wrote them (a monotonic
//! clock restarts at every boot). Production uses [`SystemClock`]; tests use
//! [`MockClock`] and move time by hand, so no test sleeps to wait for a delay or a lease.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The latest representable time; used as "never" and to reject overflowing delays.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, or `None` when it does not fit in 64-bit milliseconds.
    ///
    /// ```
    /// # use keel_jobs::Timestamp;
    /// # use std::time::Duration;
    /// assert_eq!(Timestamp(1_000).checked_add(Duration::from_secs(2)), Some(Timestamp(3_000)));
    /// assert_eq!(Timestamp(1).checked_add(Duration::MAX), None);
    /// ```
    pub fn checked_add(self, d: Duration) -> Option<Timestamp> {
        let ms = u64::try_from(d.as_millis()).ok()?;
        self.0.checked_add(ms).map(Timestamp)
    }

    /// `self + d`, clamped at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        self.checked_add(d).unwrap_or(Timestamp::MAX)
    }

    /// The time from `earlier` to `self` (zero when `earlier` is later).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A source of wall-clock time. Cheap to call; shared between threads.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock (`SystemTime`). A clock set before 1970 reads as 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// # use keel_jobs::{Clock, MockClock, Timestamp};
/// # use std::time::Duration;
/// let clock = MockClock::new(Timestamp(1_000));
/// clock.advance(Duration::from_millis(500));
/// assert_eq!(clock.now(), Timestamp(1_500));
/// ```
#[derive(Clone, Debug, Default)]
pub struct MockClock {
    now: Arc<AtomicU64>,
}

impl MockClock {
    /// A mock clock that reads `start` until advanced.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Moves time forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the time (it may go backwards: tests of clock steps use that).
    pub fn set(&self, t: Timestamp) {
        self.now.store(t.0, Ordering::Release);
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::Acquire))
    }
}
