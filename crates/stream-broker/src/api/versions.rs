//! `ApiVersions`: the first request of every modern client, and the table of what we serve.
//!
//! A client sends its highest `ApiVersions` version; a broker that does not know it answers
//! at v0 with `UNSUPPORTED_VERSION` and its ranges, and the client retries at the highest
//! version both know. For every other API the client then uses
//! `min(client max, broker max)`. The ranges below stop where a version would change
//! semantics we do not implement (topic ids instead of names in Produce v13 / Fetch v13,
//! batched groups in OffsetFetch v8, KIP-848 in OffsetCommit v9, share groups).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// `(api, min, max)` served by this broker.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 9),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 4),
];

/// The served range of `key`, if any.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, lo, hi)| (lo, hi))
}

pub(crate) fn response(error: Option<ResponseError>) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_api_keys(
            SUPPORTED
                .iter()
                .map(|&(k, lo, hi)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(lo)
                        .with_max_version(hi)
                })
                .collect(),
        )
}
