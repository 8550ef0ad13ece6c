//! Why an entry left the cache, as reported to the eviction listener.
//!
//! The listener runs as part of the operation that removed the entry — the
//! `put` that overflowed the capacity, any operation that advanced the timer
//! wheel past a deadline, the background sweeper — so no maintenance call is
//! needed for it to fire. The concurrent [`crate::Cache`] calls it after
//! releasing the shard lock, so a listener may use the cache.

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
