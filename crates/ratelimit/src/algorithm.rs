//! The [`Algorithm`] trait that every limiter (direct, keyed) is generic over.

use std::fmt;

use crate::{Decision, Quota};

/// A rate-limiting algorithm: its parameters (`Self`, derived from a [`Quota`]) and its
/// per-key state.
///
/// Times are nanoseconds since the limiter's epoch, read from its injected
/// [`quanta::Clock`]. Implementations must be linearizable per state: concurrent `check`
/// calls on one state behave as if they ran one after another (tested with 8 threads).
///
/// The limiters validate the cost (`1..=capacity`) before calling `check`, so `check` may
/// assume `1 <= cost <= self.capacity()`.
pub trait Algorithm: Copy + Send + Sync + fmt::Debug + 'static {
    /// Per-key state.
    type State: Send + Sync + fmt::Debug;

    /// A short name (`"gcra"`, `"token_bucket"`, …) for metrics and reports.
    const NAME: &'static str;

    /// Derives the parameters from a validated quota.
    fn from_quota(quota: Quota) -> Self;

    /// The quota these parameters came from.
    fn quota(&self) -> Quota;

    /// The largest cost that can ever be allowed at once (limit or burst).
    fn capacity(&self) -> u32;

    /// A fresh state, created at `now`.
    fn new_state(&self, now: u64) -> Self::State;

    /// Decides a request of `cost` at `now`, consuming capacity when allowed.
    fn check(&self, state: &Self::State, now: u64, cost: u32) -> Decision;

    /// The decision a unit-cost request would get at `now`, consuming nothing.
    fn peek(&self, state: &Self::State, now: u64) -> Decision;

    /// `true` when the state is indistinguishable from [`Algorithm::new_state`] at `now`,
    /// so a keyed limiter may drop it without changing any future decision.
    fn is_idle(&self, state: &Self::State, now: u64) -> bool;
}
