//! keel-cache (docs below are written last).

mod arena;
mod concurrent;
mod error;
mod listener;
mod lru;
mod policy;
mod raw;
mod single_flight;
mod stats;
#[cfg(feature = "redis")]
mod tiered;
mod timer_wheel;

pub use concurrent::{Cache, CacheBuilder};
#[cfg(feature = "redis")]
pub use error::TieredError;
pub use error::{BuildError, LoadError};
pub use listener::RemovalCause;
pub use lru::{LruCache, LruCacheBuilder};
pub use policy::Policy;
pub use stats::CacheStats;
#[cfg(feature = "redis")]
pub use tiered::{SyncState, TieredCache, TieredCacheBuilder, TieredStats};
