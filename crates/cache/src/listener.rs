//! Why an entry left the cache, as reported to the eviction listener.
//!
//! The listener runs as part of the operation that removed the entry — the
//! `put` that overflowed the capacity, any operation that advanced the timer
//! wheel past a deadline, the background sweeper — so no maintenance call is
//! needed for it to fire. The concurrent [`crate::Cache`] calls it after
//! releasing the shard lock, so a listener may use the cache.
//!
//! A panicking listener is contained like a panicking loader: the removal
//! it was told about stands, the operation carries on with the other
//! entries, and `CacheStats::listener_panics` counts it.

/// Runs one listener call, containing a panic: the entry is already out
/// of the cache, and the operation that removed it (an expiry inside a
/// `get`, the sweeper, `invalidate_all`) must finish its work for the other
/// entries. Returns `true` if the listener panicked; the caller counts it
/// (`CacheStats::listener_panics`). The panic hook still runs, so the
/// message is printed as for any panic.
pub(crate) fn call_contained(call: impl FnOnce()) -> bool {
    // AssertUnwindSafe: the cache's own state is consistent whenever a
    // listener runs (between two removals, or after the shard lock is
    // released); only the listener's own captures may be half-updated.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).is_err()
}

/// The reason an entry was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemovalCause {
    /// Evicted by the policy to make room (capacity or weight).
    Evicted,
    /// Its time to live ran out.
    Expired,
    /// Overwritten by a `put`/`insert` for the same key.
    Replaced,
    /// Removed explicitly (`remove`, `invalidate`, `clear`).
    Removed,
}

impl RemovalCause {
    /// `true` for removals the cache decided on by itself (evicted or expired).
    pub fn was_automatic(self) -> bool {
        matches!(self, RemovalCause::Evicted | RemovalCause::Expired)
    }
}
