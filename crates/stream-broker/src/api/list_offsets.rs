//! `ListOffsets`: `-2` earliest (log start), `-1` latest (log end), or the first offset whose
//! timestamp is at least the given one (the log's time index; `-1` when every record is older).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{blocking, log_error_code};
use crate::broker::State;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(crate) async fn handle(
    state: &Arc<State>,
    req: ListOffsetsRequest,
    _version: i16,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let entry = state.topics.get(t.name.0.as_str());
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let mut r =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let Some(log) = entry
                .as_ref()
                .and_then(|e| e.partition(p.partition_index))
                .cloned()
            else {
                parts.push(r.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            r = match p.timestamp {
                LATEST => r.with_offset(log.log_end_offset()).with_timestamp(-1),
                EARLIEST => r.with_offset(log.log_start_offset()).with_timestamp(-1),
                ts if ts >= 0 => match blocking(move || log.offset_for_timestamp(ts)).await {
                    Ok(Ok(Some(o))) => r.with_offset(o).with_timestamp(ts),
                    Ok(Ok(None)) => r.with_offset(-1).with_timestamp(-1),
                    Ok(Err(e)) => r.with_error_code(log_error_code(&e).code()),
                    Err(code) => r.with_error_code(code.code()),
                },
                // -3 (max timestamp) and the tiered-storage specials are not served.
                _ => r.with_error_code(ResponseError::UnsupportedVersion.code()),
            };
            parts.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
