//! Rate limiting: five algorithms, one decision type, keyed and memory-bounded, on Redis
//! and as tower middleware.
//!
//! ```
//! use std::time::Duration;
//! use keel_ratelimit::{Gcra, KeyedLimiter, Quota};
//!
//! // 5 requests per second per client, bursts of up to 5; time is injected.
//! let (clock, mock) = quanta::Clock::mock();
//! let limiter = KeyedLimiter::<String, Gcra>::with_clock(Quota::per_second(5)?, clock);
//!
//! let allowed = (0..8).filter(|_| limiter.check("client-1").allowed).count();
//! assert_eq!(allowed, 5);
//! let denied = limiter.check("client-1");
//! assert_eq!(denied.retry_after, Some(Duration::from_millis(200)));
//! assert!(limiter.check("client-2").allowed);         // other keys are independent
//!
//! mock.increment(Duration::from_millis(200));
//! assert!(limiter.check("client-1").allowed);         // exactly retry_after later
//! # Ok::<(), keel_ratelimit::QuotaError>(())
//! ```
//!
//! # Layout
//!
//! TODO-DOCS

mod algorithm;
mod clock;
mod decision;
pub mod error;
mod fixed_window;
mod gcra;
mod keyed;
mod limiter;
mod metrics;
mod quota;
mod reciprocal;
mod sliding_counter;
mod sliding_log;
mod token_bucket;

#[cfg(feature = "tower")]
pub mod middleware;
#[cfg(feature = "redis")]
pub mod redis;

/// The clock crate, re-exported so callers build `quanta::Clock`s of the same version.
pub use quanta;

pub use algorithm::Algorithm;
pub use decision::Decision;
pub use error::{CheckError, QuotaError};
pub use fixed_window::{FixedWindow, FixedWindowState};
pub use gcra::{Gcra, GcraState};
pub use keyed::{CleanupPolicy, KeyedLimiter, KeyedLimiterBuilder, QuotaResolver};
pub use limiter::RateLimiter;
pub use metrics::{LimiterMetrics, MetricsSnapshot};
pub use quota::{MAX_WINDOW, Quota};
pub use sliding_counter::{SlidingCounter, SlidingCounterState};
pub use sliding_log::{SlidingLog, SlidingLogState};
pub use token_bucket::{TokenBucket, TokenBucketState};
