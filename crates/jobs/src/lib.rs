//! keel-jobs (docs being written)

mod backoff;
mod clock;
mod embedded;
mod engine;
pub mod error;
pub mod job;
mod memory;
mod metrics;
mod producer;
mod state;
mod store;
mod worker;

pub use backoff::Backoff;
pub use clock::{Clock, MockClock, SystemClock, Timestamp};
pub use embedded::{RedbStore, RedbStoreBuilder};
pub use error::{BuildError, InvalidJob, JobsError};
pub use job::{
    AttemptError, FailureKind, FencingToken, Job, JobId, JobOptions, JobRecord, JobState, NewJob,
    Status,
};
pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use metrics::{JobsStats, WorkerStats};
pub use producer::Producer;
pub use store::{
    CancelOutcome, Enqueued, FailOutcome, Failure, Lease, ListFilter, QueueCounts, Store,
};
pub use worker::{
    HandlerError, JobContext, RunningPool, ShutdownReport, WorkerPool,
    WorkerPoolBuilder,
};
