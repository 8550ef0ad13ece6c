//! Group acknowledgement for the server backends: concurrent
//! [`complete`](crate::Store::complete) calls share one round trip.
//!
//! A worker pool with 256 jobs in flight acknowledges them one by one; sent one call
//! each, every ack pays a round trip and the server's per-call cost (parsing, a
//! transaction or a function call, the reply). Here the first ack to arrive while none
//! is being sent spawns a flusher task; acks arriving while its call is in flight wait
//! in a queue, and the flusher sends all of them (at most [`MAX_GROUP`]) in the next
//! call. A lone ack still costs one round trip. The backend decides what one call does
//! ([`SendAcks`]): Redis settles the whole group in one function; Postgres deletes every
//! ack that holds its lease in one statement and leaves the rest ([`AckAnswer::Miss`]) to
//! its one-ack path.
//!
//! Every ack keeps its own answer. A call that fails as a whole (server down, timeout)
//! fails every ack of its group with a storage error — the outcome is unknown, as for
//! any failed call; an ack that did not land leaves the lease to expire (at-least-once).

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::{FencingToken, JobId, JobsError};

/// Most acks one call settles (bounds how long one call holds the server).
pub(crate) const MAX_GROUP: usize = 1_000;

/// What a group call says about one of its acks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckAnswer {
    /// Acknowledged.
    Done,
    /// Rejected: not the current lease.
    Stale,
    /// Rejected: the lease ran out (and was given back).
    Expired,
    /// Not settled by the group call; the store's one-ack path decides.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Miss,
}

/// One group call of a backend.
pub(crate) trait SendAcks: Send + Sync + 'static {
    /// Settles `acks` in one call; one answer per ack, in order.
    fn send(
        &self,
        acks: &[(JobId, FencingToken)],
    ) -> impl Future<Output = Result<Vec<AckAnswer>, JobsError>> + Send;
}

struct Pending {
    ack: (JobId, FencingToken),
    reply: oneshot::Sender<Result<AckAnswer, JobsError>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// A flusher task is running and will take `waiting` before it stops.
    flushing: bool,
}

/// The group-ack state of one store.
pub(crate) struct AckGroup<S> {
    queue: Mutex<Queue>,
    sender: S,
}

impl<S> std::fmt::Debug for AckGroup<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckGroup")
            .field("waiting", &self.queue.lock().waiting.len())
            .finish_non_exhaustive()
    }
}

impl<S: SendAcks> AckGroup<S> {
    pub(crate) fn new(sender: S) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            sender,
        }
    }

    /// Sends one ack with the next group and returns its answer.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not withdraw the ack: it is sent with its group.
    pub(crate) async fn complete(
        self: &Arc<Self>,
        id: JobId,
        token: FencingToken,
    ) -> Result<AckAnswer, JobsError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut q = self.queue.lock();
            q.waiting.push(Pending {
                ack: (id, token),
                reply,
            });
            !std::mem::replace(&mut q.flushing, true)
        };
        if lead {
            // A task of its own, so a caller that gives up cannot strand the others'
            // acks mid-flush.
            tokio::spawn(Arc::clone(self).flush());
        }
        answer.await.unwrap_or_else(|_| {
            Err(JobsError::Storage(
                "the ack was dropped unsent (runtime shutting down)".into(),
            ))
        })
    }

    async fn flush(self: Arc<Self>) {
        // Runs also when the task is dropped (runtime shutdown) or unwinds: the next ack
        // starts a new flusher, and acks still queued are answered with an error by
        // dropping their senders.
        struct Release<'a> {
            queue: &'a Mutex<Queue>,
            armed: bool,
        }
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if self.armed {
                    let mut q = self.queue.lock();
                    q.flushing = false;
                    q.waiting.clear();
                }
            }
        }
        let mut release = Release {
            queue: &self.queue,
            armed: true,
        };
        loop {
            let group: Vec<Pending> = {
                let mut q = self.queue.lock();
                if q.waiting.is_empty() {
                    // Under the lock: an ack pushed after this starts a new flusher.
                    q.flushing = false;
                    release.armed = false;
                    return;
                }
                let n = q.waiting.len().min(MAX_GROUP);
                q.waiting.drain(..n).collect()
            };
            let acks: Vec<(JobId, FencingToken)> = group.iter().map(|p| p.ack).collect();
            match self.sender.send(&acks).await {
                Ok(answers) if answers.len() == group.len() => {
                    for (p, answer) in group.into_iter().zip(answers) {
                        let _ = p.reply.send(Ok(answer));
                    }
                }
                Ok(_) => {
                    for p in group {
                        let _ = p.reply.send(Err(JobsError::Storage(
                            "ack group: not one answer per ack".into(),
                        )));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for p in group {
                        let _ = p
                            .reply
                            .send(Err(JobsError::Storage(message.clone().into())));
                    }
                }
            }
        }
    }
}
