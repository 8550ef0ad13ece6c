//! Batches: a group of jobs with a callback job enqueued **exactly once** when the last
//! member finishes — `on_success` when every member succeeded, `on_failure` when any was
//! dead-lettered or cancelled (Sidekiq Pro batches, BullMQ flows).
//!
//! Exactly once because the member's final transition (ack, dead-letter, cancel) and the
//! callback's enqueue are one state change, persisted in one commit: no crash can leave
//! one without the other, and a member finishes at most once (fencing rejects a second
//! ack). The batch record is removed when it fires, so open batches are what memory holds.

use serde::{Deserialize, Serialize};

use crate::job::NewJob;
use crate::{JobId, Timestamp};

/// A batch's id (drawn from the same counter as job ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BatchId(pub u64);

/// The callbacks of a batch. The callback job is tagged `batch:<id>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchCallbacks {
    /// Enqueued when every member succeeded.
    pub on_success: Option<NewJob>,
    /// Enqueued when the last member finished and at least one failed (dead or cancelled).
    pub on_failure: Option<NewJob>,
}

/// What [`Store::enqueue_batch`](crate::Store::enqueue_batch) created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The batch.
    pub id: BatchId,
    /// Its members, in the order given.
    pub jobs: Vec<JobId>,
}

/// An open batch's progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchStatus {
    /// The batch.
    pub id: BatchId,
    /// Members in total.
    pub total: u64,
    /// Members not finished yet.
    pub pending: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Members dead-lettered or cancelled.
    pub failed: u64,
    /// The callbacks.
    pub callbacks: BatchCallbacks,
    /// When the batch was created.
    pub created_at: Timestamp,
}
