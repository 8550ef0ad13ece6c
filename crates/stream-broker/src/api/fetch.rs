//! `Fetch` with long polling: answer at once when `min_bytes` are available (or on an
//! error), otherwise wait — for an append (the broker's `appended` notification) or until
//! `max_wait_ms` (capped by the broker's `max_fetch_wait`) — and answer with what is there.
//! Batches come out of the log exactly as stored; the first partition always gets at least
//! one whole batch even above `max_bytes` (KIP-74), so a large batch cannot stall a consumer.
//! Fetch sessions (KIP-227) are not kept: `session_id` is always 0, which clients treat as
//! "send full requests".

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use super::{blocking, log_error_code};
use crate::broker::State;
use crate::metrics::count;

pub(crate) async fn handle(state: &Arc<State>, req: FetchRequest, _version: i16) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0))
        .min(state.config.max_fetch_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0).max(1);
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .clamp(1, state.config.max_fetch_bytes);
    count!(state.counters, fetches, 1);
    loop {
        // Register for the wake-up before looking, so an append in between is not missed.
        let notified = state.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ready = anything_to_read(state, &req);
        if ready || tokio::time::Instant::now() >= deadline {
            let (resp, bytes, errors) = read(state, &req, max_bytes).await;
            if bytes >= min_bytes || errors || tokio::time::Instant::now() >= deadline {
                count!(state.counters, fetched_bytes, bytes as u64);
                return resp;
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            let (resp, bytes, _) = read(state, &req, max_bytes).await;
            count!(state.counters, fetched_bytes, bytes as u64);
            return resp;
        }
    }
}

/// Whether any requested partition has data past its fetch offset (or is in error).
fn anything_to_read(state: &State, req: &FetchRequest) -> bool {
    req.topics
        .iter()
        .any(|t| match state.topics.get(t.topic.0.as_str()) {
            None => true,
            Some(e) => t.partitions.iter().any(|p| match e.partition(p.partition) {
                None => true,
                Some(log) => log.log_end_offset() != p.fetch_offset,
            }),
        })
}

async fn read(
    state: &Arc<State>,
    req: &FetchRequest,
    max_bytes: usize,
) -> (FetchResponse, usize, bool) {
    let mut plan = Vec::new();
    for t in &req.topics {
        let entry = state.topics.get(t.topic.0.as_str());
        for p in &t.partitions {
            let log = entry
                .as_ref()
                .and_then(|e| e.partition(p.partition))
                .cloned();
            plan.push((
                t.topic.clone(),
                p.partition,
                p.fetch_offset,
                usize::try_from(p.partition_max_bytes).unwrap_or(0),
                log,
            ));
        }
    }
    let results = blocking(move || {
        let mut budget = max_bytes;
        let mut out = Vec::with_capacity(plan.len());
        let mut total = 0usize;
        for (topic, partition, offset, part_max, log) in plan {
            let mut d = PartitionData::default().with_partition_index(partition);
            match log {
                None => {
                    d = d
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_high_watermark(-1)
                }
                Some(log) => {
                    // KIP-74: the first non-empty partition gets a batch even past the budget.
                    let limit = if total == 0 {
                        part_max.min(max_bytes)
                    } else {
                        part_max.min(budget)
                    };
                    if total > 0 && limit == 0 {
                        let hw = log.log_end_offset();
                        d = d
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(log.log_start_offset());
                    } else {
                        match log.read(offset, limit) {
                            Ok(f) => {
                                total += f.bytes.len();
                                budget = budget.saturating_sub(f.bytes.len());
                                d = d
                                    .with_high_watermark(f.high_watermark)
                                    .with_last_stable_offset(f.high_watermark)
                                    .with_log_start_offset(f.log_start_offset)
                                    .with_records(Some(f.bytes));
                            }
                            Err(e) => {
                                d = d
                                    .with_error_code(log_error_code(&e).code())
                                    .with_high_watermark(log.log_end_offset())
                                    .with_log_start_offset(log.log_start_offset());
                            }
                        }
                    }
                }
            }
            out.push((topic, d));
        }
        (out, total)
    })
    .await;
    let (parts, total) = match results {
        Ok(x) => x,
        Err(code) => {
            return (
                FetchResponse::default().with_error_code(code.code()),
                0,
                true,
            );
        }
    };
    let errors = parts.iter().any(|(_, d)| d.error_code != 0);
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (topic, d) in parts {
        match topics.last_mut() {
            Some(t) if t.topic == topic => t.partitions.push(d),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(topic)
                    .with_partitions(vec![d]),
            ),
        }
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
    )
}
