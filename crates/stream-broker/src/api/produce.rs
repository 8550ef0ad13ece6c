//! `Produce`: each partition's record batches go into its log as they arrived (Kafka record
//! batch v2, CRC checked, never re-encoded). The log assigns offsets and checks idempotent
//! producers' sequence numbers, so a retried batch is answered with its original offsets.
//!
//! `acks`: `0` → no response at all (Kafka's rule); `1` and `-1` → the response after the
//! append. With one node the ISR is this broker, so `-1` waits for nothing more than `1`;
//! what makes an acknowledged record survive a crash is the topic's durability: under
//! fsync-every-batch (`flush.messages=1`, the default here) the append returns after
//! `fdatasync`, so every acknowledged record survives `kill -9` and power loss.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{blocking, log_error_code};
use crate::broker::State;
use crate::metrics::count;

pub(crate) async fn handle(
    state: &Arc<State>,
    req: ProduceRequest,
    _version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut appended = false;
    for t in req.topic_data {
        let name = t.name.0.to_string();
        let mut entry = state.topics.get(&name);
        if entry.is_none() && state.config.auto_create_topics {
            let (s, n, settings) = (
                state.clone(),
                name.clone(),
                state.config.default_topic.clone(),
            );
            if let Ok(Ok(e)) = blocking(move || s.topics.create(&n, settings)).await {
                entry = Some(e);
            } else {
                entry = state.topics.get(&name);
            }
        }
        let mut parts = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let mut r = PartitionProduceResponse::default().with_index(p.index);
            let log = entry.as_ref().and_then(|e| e.partition(p.index)).cloned();
            let result = match (log, p.records) {
                (None, _) => Err(ResponseError::UnknownTopicOrPartition),
                (Some(_), None) => Err(ResponseError::CorruptMessage),
                (Some(log), Some(records)) => append_all(state, log, records).await,
            };
            match result {
                Ok((base, log_start)) => {
                    appended = true;
                    r = r.with_base_offset(base).with_log_start_offset(log_start);
                }
                Err(code) => r = r.with_error_code(code.code()).with_base_offset(-1),
            }
            parts.push(r);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_partition_responses(parts),
        );
    }
    if appended {
        state.appended.notify_waiters();
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(topics))
}

/// Appends every batch of one partition's `records`; returns the first base offset.
async fn append_all(
    state: &Arc<State>,
    log: Arc<keel_stream::PartitionLog>,
    records: Bytes,
) -> Result<(i64, i64), ResponseError> {
    let batches: Vec<Bytes> = keel_stream::batch::split_batches(&records)
        .collect::<Result<_, _>>()
        .map_err(|_| ResponseError::CorruptMessage)?;
    // split_batches drops a partial batch at the end; in a produce that is a torn request.
    if batches.is_empty() || batches.iter().map(Bytes::len).sum::<usize>() != records.len() {
        return Err(ResponseError::CorruptMessage);
    }
    let st = state.clone();
    blocking(move || {
        let mut first = None;
        for b in batches {
            let len = b.len() as u64;
            let info = log.append_batch(b.to_vec(), false).map_err(|e| {
                if !matches!(e, keel_stream::StreamError::OutOfOrderSequence { .. }) {
                    log::warn!("append failed: {e}");
                }
                log_error_code(&e)
            })?;
            if info.duplicate {
                count!(st.counters, duplicate_batches, 1);
            } else {
                count!(st.counters, produced_batches, 1);
                count!(
                    st.counters,
                    produced_records,
                    (info.last_offset - info.base_offset + 1) as u64
                );
                count!(st.counters, produced_bytes, len);
            }
            first.get_or_insert(info.base_offset);
        }
        Ok((first.unwrap_or(-1), log.log_start_offset()))
    })
    .await?
}
