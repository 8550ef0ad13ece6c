//! Request frames in, response frames out — the only place that touches the wire.
//!
//! A Kafka frame is a 4-byte big-endian length and that many bytes: a request header
//! (`api_key`, `api_version`, `correlation_id`, `client_id`, and tagged fields in flexible
//! versions) followed by the body. [`decode_request`] reads the fixed 8-byte prefix itself
//! (to route by key and version, and to answer an unsupported `ApiVersions` at v0), and
//! leaves everything else to `kafka-protocol`. A panic inside the decoder is caught and
//! reported as [`FrameError::Malformed`]; the length was checked before the frame was read,
//! and the patched decoder bounds every array by the bytes left, so no frame can make the
//! broker allocate more than a small multiple of `max_request_bytes`.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Encodable, decode_request_header_from_buffer};

use crate::api::versions::supported;
use crate::error::FrameError;

/// A decoded request.
#[derive(Debug)]
pub enum DecodedRequest {
    /// A request this broker serves.
    Request {
        /// Its header.
        header: RequestHeader,
        /// Its API.
        api_key: ApiKey,
        /// Its body (boxed: request kinds differ a lot in size).
        body: Box<RequestKind>,
    },
    /// `ApiVersions` at a version above ours: Kafka answers with a v0 response carrying
    /// `UNSUPPORTED_VERSION` and the supported ranges, so the client can retry lower.
    ApiVersionsFallback {
        /// To echo.
        correlation_id: i32,
    },
}

/// Checks a frame's length prefix before anything is allocated for it.
///
/// # Errors
/// [`FrameError::BadLength`] for a length below 8 (no room for the header) or above `max`.
pub fn check_length(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = i32::from_be_bytes(prefix);
    match usize::try_from(len) {
        Ok(n) if (8..=max).contains(&n) => Ok(n),
        _ => Err(FrameError::BadLength {
            length: i64::from(len),
            max,
        }),
    }
}

/// Decodes one request frame (the bytes after the length prefix).
///
/// ```
/// use keel_stream_broker::codec::decode_request;
/// use keel_stream_broker::FrameError;
///
/// // Too short for a header, and an API key no broker knows: errors, never a panic.
/// assert!(matches!(decode_request(bytes::Bytes::from_static(b"\x00\x12")), Err(FrameError::Malformed { .. })));
/// let unknown = bytes::Bytes::from_static(b"\x7f\x00\x00\x00\x00\x00\x00\x01");
/// assert_eq!(decode_request(unknown).unwrap_err(), FrameError::UnknownApi { api_key: 0x7f00 });
/// ```
///
/// # Errors
/// [`FrameError::UnknownApi`], [`FrameError::UnsupportedVersion`], [`FrameError::Malformed`].
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Malformed {
            api: "header",
            version: -1,
            reason: "shorter than 8 bytes".into(),
        });
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(key).map_err(|()| FrameError::UnknownApi { api_key: key })?;
    let Some(range) = supported(api_key) else {
        return Err(FrameError::UnknownApi { api_key: key });
    };
    if !(range.0..=range.1).contains(&version) {
        if api_key == ApiKey::ApiVersions {
            return Ok(DecodedRequest::ApiVersionsFallback { correlation_id });
        }
        return Err(FrameError::UnsupportedVersion {
            api: api_name(api_key),
            version,
        });
    }
    let malformed = |reason: String| FrameError::Malformed {
        api: api_name(api_key),
        version,
        reason,
    };
    let decoded = std::panic::catch_unwind(move || {
        let mut buf = frame;
        let header =
            decode_request_header_from_buffer(&mut buf).map_err(|e| format!("header: {e:#}"))?;
        let body = RequestKind::decode(api_key, &mut buf, version).map_err(|e| format!("{e:#}"))?;
        Ok::<_, String>((header, body))
    });
    match decoded {
        Ok(Ok((header, body))) => Ok(DecodedRequest::Request {
            header,
            api_key,
            body: Box::new(body),
        }),
        Ok(Err(reason)) => Err(malformed(reason)),
        Err(_) => Err(malformed("the decoder panicked".into())),
    }
}

/// Encodes a response frame (length prefix, header, body).
///
/// # Errors
/// The encoder's message when a field does not exist at `version` (a broker bug).
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, String> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| format!("{e:#}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("{e:#}"))?;
    let len = i32::try_from(buf.len() - 4).map_err(|_| "response larger than 2 GiB".to_string())?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// A short name for logs and metrics labels.
pub fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "produce",
        ApiKey::Fetch => "fetch",
        ApiKey::ListOffsets => "list_offsets",
        ApiKey::Metadata => "metadata",
        ApiKey::OffsetCommit => "offset_commit",
        ApiKey::OffsetFetch => "offset_fetch",
        ApiKey::FindCoordinator => "find_coordinator",
        ApiKey::JoinGroup => "join_group",
        ApiKey::Heartbeat => "heartbeat",
        ApiKey::LeaveGroup => "leave_group",
        ApiKey::SyncGroup => "sync_group",
        ApiKey::DescribeGroups => "describe_groups",
        ApiKey::ListGroups => "list_groups",
        ApiKey::ApiVersions => "api_versions",
        ApiKey::CreateTopics => "create_topics",
        ApiKey::DeleteTopics => "delete_topics",
        ApiKey::InitProducerId => "init_producer_id",
        _ => "other",
    }
}
