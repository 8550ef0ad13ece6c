//! The state-changing actions, shared by the HTML forms and the JSON API. Each maps the
//! store's outcome to a message or a [`RequestError`] (404 for a missing job, 409 for an
//! action that does not apply to the job as it is now).

use keel_jobs::{CancelOutcome, JobId, Store};

use crate::error::RequestError;

/// An action on one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobAction {
    /// Put a dead job back with fresh attempts.
    Retry,
    /// Delete (discard) a job that is not running.
    Delete,
    /// Remove a pending job.
    Cancel,
}

impl JobAction {
    pub(crate) fn parse(s: &str) -> Result<Self, RequestError> {
        match s {
            "retry" => Ok(JobAction::Retry),
            "delete" => Ok(JobAction::Delete),
            "cancel" => Ok(JobAction::Cancel),
            _ => Err(RequestError::NotFound(format!(
                "no job action {s:?} (retry, delete, cancel)"
            ))),
        }
    }
}

/// An action on one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueAction {
    Pause,
    Resume,
    RetryDead,
    DeleteDead,
}

impl QueueAction {
    pub(crate) fn parse(s: &str) -> Result<Self, RequestError> {
        match s {
            "pause" => Ok(QueueAction::Pause),
            "resume" => Ok(QueueAction::Resume),
            "retry-dead" => Ok(QueueAction::RetryDead),
            "delete-dead" => Ok(QueueAction::DeleteDead),
            _ => Err(RequestError::NotFound(format!(
                "no queue action {s:?} (pause, resume, retry-dead, delete-dead)"
            ))),
        }
    }
}

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Done {
    /// A sentence for the user.
    pub(crate) message: String,
    /// Jobs affected.
    pub(crate) count: usize,
}

pub(crate) async fn on_job<S: Store>(
    store: &S,
    id: JobId,
    action: JobAction,
) -> Result<Done, RequestError> {
    let message = match action {
        JobAction::Retry => {
            store.retry_dead(id).await?;
            format!("job {id} is queued again")
        }
        JobAction::Delete => {
            store.delete(id).await?;
            format!("job {id} deleted")
        }
        JobAction::Cancel => match store.cancel(id).await? {
            CancelOutcome::Cancelled => format!("job {id} cancelled"),
            CancelOutcome::NotFound => {
                return Err(RequestError::NotFound(format!("job {id} not found")));
            }
            CancelOutcome::Running => {
                return Err(RequestError::Conflict(format!(
                    "job {id} is running: a worker holds it, it cannot be cancelled"
                )));
            }
            CancelOutcome::Finished => {
                return Err(RequestError::Conflict(format!(
                    "job {id} has finished (dead or succeeded): delete it instead"
                )));
            }
        },
    };
    Ok(Done { message, count: 1 })
}

pub(crate) async fn on_queue<S: Store>(
    store: &S,
    queue: &str,
    action: QueueAction,
) -> Result<Done, RequestError> {
    Ok(match action {
        QueueAction::Pause => {
            store.pause(queue).await?;
            Done {
                message: format!("queue {queue} paused"),
                count: 0,
            }
        }
        QueueAction::Resume => {
            store.resume(queue).await?;
            Done {
                message: format!("queue {queue} resumed"),
                count: 0,
            }
        }
        QueueAction::RetryDead => {
            let n = store.retry_all_dead(queue).await?;
            Done {
                message: format!("{n} dead jobs of {queue} queued again"),
                count: n,
            }
        }
        QueueAction::DeleteDead => {
            let n = store.delete_all_dead(queue).await?;
            Done {
                message: format!("{n} dead jobs of {queue} deleted"),
                count: n,
            }
        }
    })
}
