//! Group acknowledgement: concurrent [`complete`](crate::Store::complete) calls share one
//! script call.
//!
//! A worker pool with 256 jobs in flight acknowledges them one by one; sent one script
//! each, every ack pays the full per-call cost on the server (command parsing, script
//! lookup, the reply) and a round trip of its own. Here the first ack to arrive while
//! none is being sent spawns a flusher; acks arriving while its script is in flight wait
//! in a queue, and the flusher sends all of them (at most [`MAX_GROUP`]) in the next
//! call, `complete.lua` (one `FCALL`), which checks and settles each pair exactly as a single
//! `complete` would. A lone ack still costs one round trip.
//!
//! Every ack keeps its own answer: a stale or expired lease in a group fails only that
//! ack ([`JobsError::StaleLease`] / [`JobsError::LeaseExpired`]); a call that fails as a
//! whole (Redis down, timeout) fails every ack of that group with a storage error — the
//! outcome is unknown, as for any failed call, and an ack that did not land leaves the
//! lease to expire (at-least-once).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::Value;
use ::redis::aio::ConnectionManager;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::decode::{bad_reply, int, split_events};
use super::functions::{Function, Library};
use crate::clock::Clock;
use crate::metrics::StoreMetrics;
use crate::{FencingToken, JobId, JobsError};

/// Most acks one script call settles (bounds how long one call holds the server).
pub(super) const MAX_GROUP: usize = 1_000;

type Reply = Result<(), JobsError>;

struct Pending {
    id: JobId,
    token: FencingToken,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// A flusher task is running and will take `waiting` before it stops.
    flushing: bool,
}

/// The shared state of group acks (one per store).
pub(super) struct AckGroup {
    queue: Mutex<Queue>,
    conn: ConnectionManager,
    functions: Arc<Library>,
    prefix: String,
    keep_completed: bool,
    clock: Arc<dyn Clock>,
    metrics: Arc<StoreMetrics>,
    succeeded_total: Arc<AtomicU64>,
}

impl AckGroup {
    pub(super) fn new(
        conn: ConnectionManager,
        functions: Arc<Library>,
        prefix: String,
        keep_completed: bool,
        clock: Arc<dyn Clock>,
        metrics: Arc<StoreMetrics>,
        succeeded_total: Arc<AtomicU64>,
    ) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            conn,
            functions,
            prefix,
            keep_completed,
            clock,
            metrics,
            succeeded_total,
        }
    }

    /// Acknowledges one run, in the next group.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not withdraw the ack: it is sent with its group.
    pub(super) async fn complete(self: &Arc<Self>, id: JobId, token: FencingToken) -> Reply {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut q = self.queue.lock();
            q.waiting.push(Pending { id, token, reply });
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
            match self.send(&group).await {
                Ok(codes) => {
                    for (p, code) in group.into_iter().zip(codes) {
                        let answer = match code {
                            0 => Ok(()),
                            1 => Err(JobsError::StaleLease {
                                id: p.id,
                                token: p.token,
                            }),
                            _ => Err(JobsError::LeaseExpired {
                                id: p.id,
                                token: p.token,
                            }),
                        };
                        let _ = p.reply.send(answer);
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

    /// One `complete.lua` call for `group`; the code per ack (0 ok, 1 stale, 2 expired).
    async fn send(&self, group: &[Pending]) -> Result<Vec<u64>, JobsError> {
        let mut cmd = self.functions.command(Function::Complete);
        cmd.arg(&self.prefix)
            .arg(self.clock.now().0)
            .arg(if self.keep_completed { "1" } else { "0" });
        for p in group {
            cmd.arg(p.id.0).arg(p.token.0);
        }
        let mut conn = self.conn.clone();
        let reply: Value = self
            .functions
            .call(&mut conn, &cmd)
            .await
            .map_err(|e| JobsError::Storage(Box::new(e)))?;
        let (events, rest) = split_events(&reply)?;
        self.metrics.record(&events);
        self.metrics.record_commit(group.len() as u64);
        let (total, codes) = rest
            .split_first()
            .ok_or_else(|| bad_reply("ack group total"))?;
        if codes.len() != group.len() {
            return Err(bad_reply("one code per ack"));
        }
        self.succeeded_total
            .fetch_max(int(total)?, Ordering::Relaxed);
        codes.iter().map(int).collect()
    }
}
