//! `OffsetCommit` (checked against the member's generation, stored durably before the
//! answer) and `OffsetFetch` (`-1` for a partition never committed).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};

use super::{blocking, str_bytes};
use crate::broker::State;
use crate::metrics::count;
use crate::offset_store::Committed;

pub(crate) async fn commit(state: &Arc<State>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let mut code = state.groups.check_commit(
        &group,
        req.generation_id_or_member_epoch,
        req.member_id.as_str(),
    );
    let mut entries = Vec::new();
    let mut per_partition: Vec<(usize, i32, i16)> = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let entry = state.topics.get(t.name.0.as_str());
        for p in &t.partitions {
            let known = entry
                .as_ref()
                .is_some_and(|e| e.partition(p.partition_index).is_some());
            let c = if code != 0 {
                code
            } else if !known {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                entries.push((
                    (t.name.0.to_string(), p.partition_index),
                    Committed {
                        offset: p.committed_offset,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    },
                ));
                0
            };
            per_partition.push((ti, p.partition_index, c));
        }
    }
    if code == 0 && !entries.is_empty() {
        let n = entries.len() as u64;
        let (s, g) = (state.clone(), group.clone());
        match blocking(move || s.offsets.commit(&g, entries)).await {
            Ok(Ok(())) => count!(state.counters, offsets_committed, n),
            Ok(Err(e)) => {
                log::error!("storing offsets of group {group} failed: {e}");
                code = ResponseError::KafkaStorageError.code();
            }
            Err(e) => code = e.code(),
        }
    }
    let mut topics: Vec<OffsetCommitResponseTopic> = req
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (ti, p, c) in per_partition {
        let c = if c == 0 { code } else { c };
        topics[ti].partitions.push(
            OffsetCommitResponsePartition::default()
                .with_partition_index(p)
                .with_error_code(c),
        );
    }
    OffsetCommitResponse::default().with_topics(topics)
}

pub(crate) fn fetch(state: &State, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let group = req.group_id.0.to_string();
    let answer = |topic: &str, p: i32| {
        let c = state.offsets.fetch(&group, topic, p);
        OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_committed_offset(c.as_ref().map_or(-1, |c| c.offset))
            .with_metadata(Some(str_bytes(
                c.and_then(|c| c.metadata).unwrap_or_default(),
            )))
    };
    let topics = match req.topics {
        Some(list) => list
            .into_iter()
            .map(|t| {
                let parts = t
                    .partition_indexes
                    .iter()
                    .map(|&p| answer(t.name.0.as_str(), p))
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(parts)
            })
            .collect(),
        // null (v2+): everything the group committed.
        None => {
            let mut out: Vec<OffsetFetchResponseTopic> = Vec::new();
            for ((topic, p), _) in state.offsets.all(&group) {
                let part = answer(&topic, p);
                match out.last_mut() {
                    Some(t) if t.name.0.as_str() == topic => t.partitions.push(part),
                    _ => out.push(
                        OffsetFetchResponseTopic::default()
                            .with_name(kafka_protocol::messages::TopicName(str_bytes(topic)))
                            .with_partitions(vec![part]),
                    ),
                }
            }
            out
        }
    };
    let resp = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        resp.with_error_code(0)
    } else {
        resp
    }
}
