//! [`MemoryStore`]: the engine with no persistence — for tests and for workloads that
//! may lose their jobs on restart.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::{Clock, SystemClock};
use crate::engine::{Engine, store_via_engine};
use crate::metrics::StoreMetrics;
use crate::state::State;

/// An in-memory job store: every operation O(log n) under one mutex; nothing survives the
/// process.
///
/// ```
/// use keel_jobs::{MemoryStore, NewJob, Store};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = MemoryStore::builder().build();
/// store.enqueue(NewJob::new("default", "ping", serde_json::json!(1))).await?;
/// let leases = store.fetch("default", 10, Duration::from_secs(30)).await?;
/// assert_eq!(leases.len(), 1);
/// store.complete(leases[0].job.id, leases[0].token).await?;
/// assert_eq!(store.stats().completed, 1);
/// # Ok::<(), keel_jobs::JobsError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    engine: Engine,
}

impl MemoryStore {
    /// A builder (system clock, completed jobs not kept).
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug, Default)]
#[must_use]
pub struct MemoryStoreBuilder {
    clock: Option<Arc<dyn Clock>>,
    keep_completed: bool,
}

impl MemoryStoreBuilder {
    /// The clock for run_at, leases and timestamps.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Keep succeeded jobs (state `Succeeded`) instead of deleting them on ack.
    pub fn keep_completed(mut self, keep: bool) -> Self {
        self.keep_completed = keep;
        self
    }

    /// The store. Nothing can fail, so there is no error.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            engine: Engine {
                state: Mutex::new(State::new(self.keep_completed)),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                metrics: Arc::new(StoreMetrics::new("memory")),
                notify: tokio::sync::Notify::new(),
                committer: None,
            },
        }
    }
}

store_via_engine!(MemoryStore);
