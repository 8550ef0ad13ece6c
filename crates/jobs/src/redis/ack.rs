//! Group acks on Redis: one `FCALL` of `complete.lua` settles a whole group (see
//! [`crate::ack_group`]); it checks and settles each pair exactly as a single ack would
//! and updates the lease set, counters and id indexes once per group.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::Value;
use ::redis::aio::ConnectionManager;

use super::decode::{bad_reply, int, split_events};
use super::functions::{Function, Library};
use crate::ack_group::{AckAnswer, SendAcks};
use crate::clock::Clock;
use crate::metrics::StoreMetrics;
use crate::{FencingToken, JobId, JobsError};

/// What a Redis ack group call needs of its store.
pub(super) struct RedisAcks {
    pub(super) conn: ConnectionManager,
    pub(super) functions: Arc<Library>,
    pub(super) prefix: String,
    pub(super) keep_completed: bool,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: Arc<StoreMetrics>,
    pub(super) succeeded_total: Arc<AtomicU64>,
}

impl SendAcks for RedisAcks {
    async fn send(&self, acks: &[(JobId, FencingToken)]) -> Result<Vec<AckAnswer>, JobsError> {
        let mut cmd = self.functions.command(Function::Complete);
        cmd.arg(&self.prefix)
            .arg(self.clock.now().0)
            .arg(if self.keep_completed { "1" } else { "0" });
        for (id, token) in acks {
            cmd.arg(id.0).arg(token.0);
        }
        let mut conn = self.conn.clone();
        let reply: Value = self
            .functions
            .call(&mut conn, &cmd)
            .await
            .map_err(|e| JobsError::Storage(Box::new(e)))?;
        let (events, rest) = split_events(&reply)?;
        self.metrics.record(&events);
        self.metrics.record_commit(acks.len() as u64);
        let (total, codes) = rest
            .split_first()
            .ok_or_else(|| bad_reply("ack group total"))?;
        if codes.len() != acks.len() {
            return Err(bad_reply("one code per ack"));
        }
        self.succeeded_total
            .fetch_max(int(total)?, Ordering::Relaxed);
        codes
            .iter()
            .map(|c| {
                Ok(match int(c)? {
                    0 => AckAnswer::Done,
                    1 => AckAnswer::Stale,
                    _ => AckAnswer::Expired,
                })
            })
            .collect()
    }
}
