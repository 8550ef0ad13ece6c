//! Group acks on Postgres (see [`crate::ack_group`]): one autocommitted statement deletes
//! every job of the group whose ack holds its lease — exactly `check_lease`'s success
//! condition, and deleting the row is all an ack of a job outside a batch does. Every
//! other ack (stale or expired token, a batch member, a duplicate in the group) matches
//! no row, is answered [`AckAnswer::Miss`], and takes the store's one-ack path, which
//! classifies it and counts it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::Pool;

use super::{ms, storage};
use crate::ack_group::{AckAnswer, SendAcks};
use crate::clock::Clock;
use crate::metrics::StoreMetrics;
use crate::state::Events;
use crate::{FencingToken, JobId, JobsError};

const ACK_GROUP: &str = "DELETE FROM keel_jobs j \
     USING unnest($1::bigint[], $2::bigint[]) AS a(id, token) \
     WHERE j.id = a.id AND j.token = a.token AND j.state = 1 AND j.deadline > $3 \
     AND j.batch_id IS NULL \
     RETURNING j.id, nextval('keel_jobs_succeeded_seq')";

/// What a Postgres ack group call needs of its store.
pub(super) struct PgAcks {
    pub(super) pool: Pool,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: Arc<StoreMetrics>,
    pub(super) succeeded_total: Arc<AtomicU64>,
}

impl SendAcks for PgAcks {
    async fn send(&self, acks: &[(JobId, FencingToken)]) -> Result<Vec<AckAnswer>, JobsError> {
        let now = self.clock.now();
        let ids: Vec<i64> = acks
            .iter()
            .map(|(id, _)| i64::try_from(id.0).unwrap_or(i64::MAX))
            .collect();
        let tokens: Vec<i64> = acks
            .iter()
            .map(|(_, t)| i64::try_from(t.0).unwrap_or(i64::MAX))
            .collect();
        let conn = self.pool.get().await.map_err(storage)?;
        // Prepared once per pooled connection.
        let statement = conn.prepare_cached(ACK_GROUP).await.map_err(storage)?;
        let rows = conn
            .query(&statement, &[&ids, &tokens, &ms(now)])
            .await
            .map_err(storage)?;
        drop(conn);
        let mut done: HashSet<i64> = HashSet::with_capacity(rows.len());
        let mut total = 0i64;
        for row in &rows {
            done.insert(row.get(0));
            total = total.max(row.get(1));
        }
        self.metrics.record(&Events {
            completed: rows.len() as u64,
            ..Events::default()
        });
        self.metrics.record_commit(acks.len() as u64);
        self.succeeded_total
            .fetch_max(u64::try_from(total).unwrap_or(0), Ordering::Relaxed);
        Ok(ids
            .iter()
            .map(|id| {
                if done.remove(id) {
                    AckAnswer::Done
                } else {
                    AckAnswer::Miss
                }
            })
            .collect())
    }
}
