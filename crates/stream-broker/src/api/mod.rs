//! One handler per Kafka API, each of the same shape: take the decoded request, apply it to
//! the broker state, build the response at the request's version.

pub(crate) mod fetch;
pub(crate) mod groups;
pub(crate) mod list_offsets;
pub(crate) mod metadata;
pub(crate) mod offsets;
pub(crate) mod produce;
pub(crate) mod producer_id;
pub(crate) mod topics;
pub mod versions;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::broker::State;
use crate::codec::encode_response;

/// Handles one request; `Ok(None)` means no response is sent (`Produce` with `acks = 0`).
pub(crate) async fn handle(
    state: &Arc<State>,
    header: &RequestHeader,
    api_key: ApiKey,
    body: RequestKind,
    peer: SocketAddr,
) -> Result<Option<Bytes>, String> {
    let v = header.request_api_version;
    let client_id = header
        .client_id
        .as_ref()
        .map_or("", |c| c.as_str())
        .to_string();
    let response = match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(versions::response(None)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(state, r, v).await),
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(topics::create(state, r, v).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(topics::delete(state, r, v).await)
        }
        RequestKind::Produce(r) => match produce::handle(state, r, v).await {
            Some(resp) => ResponseKind::Produce(resp),
            None => return Ok(None),
        },
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(state, r, v).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(state, r, v).await)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(state, r, v))
        }
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(
            groups::join(state, r, v, client_id, peer.ip().to_string()).await,
        ),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync(state, r, v).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(state, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave(state, r, v)),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(groups::describe(state, r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list(state, r)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offsets::commit(state, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offsets::fetch(state, r, v)),
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(producer_id::handle(state, r).await)
        }
        other => return Err(format!("no handler for {other:?}")),
    };
    encode_response(api_key, v, header.correlation_id, &response).map(Some)
}

/// The v0 `ApiVersions` answer to an `ApiVersions` version we do not know.
pub(crate) fn api_versions_fallback(correlation_id: i32) -> Result<Option<Bytes>, String> {
    let body =
        ResponseKind::ApiVersions(versions::response(Some(ResponseError::UnsupportedVersion)));
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body).map(Some)
}

/// Runs blocking file-system work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ResponseError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        log::error!("a blocking task failed: {e}");
        ResponseError::UnknownServerError
    })
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Maps a log error to Kafka's code.
pub(crate) fn log_error_code(e: &keel_stream::StreamError) -> ResponseError {
    use keel_stream::StreamError as E;
    match e {
        E::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        E::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        E::CorruptBatch(_) | E::EmptyBatch => ResponseError::CorruptMessage,
        E::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        E::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        E::UnknownPartition { .. } | E::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        E::Unsupported(_) => ResponseError::UnsupportedForMessageFormat,
        E::Io(_) | E::CorruptSegment { .. } => ResponseError::KafkaStorageError,
        _ => ResponseError::UnknownServerError,
    }
}
