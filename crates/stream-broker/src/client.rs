//! A small blocking Kafka client over `std::net`, built from `kafka-protocol` messages: what
//! the tour and benchmarks use to drive the broker over TCP the way any client would.
//! One request in flight; every read is bounded by a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, FetchRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// Errors of the client: the connection, or an error code from the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection failed or timed out.
    #[error("connection error")]
    Io(#[from] std::io::Error),
    /// A message could not be encoded or a response not decoded.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The broker answered with a Kafka error code.
    #[error("broker error code {0}")]
    Broker(i16),
}

/// A blocking connection to a Kafka broker.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    /// Connects (5 s timeout; reads time out after 30 s).
    ///
    /// # Errors
    /// [`ClientError::Io`].
    pub fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            correlation: 0,
        })
    }

    /// Sends `req` at `version` and waits for its response.
    ///
    /// # Errors
    /// [`ClientError::Io`], [`ClientError::Protocol`].
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, ClientError> {
        let proto = |e: anyhow_like::Error| ClientError::Protocol(e.0);
        self.correlation = self.correlation.wrapping_add(1);
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("keel")))
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| proto(e.into()))?;
        req.encode(&mut buf, version).map_err(|e| proto(e.into()))?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| ClientError::Protocol("request too large".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf)?;
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix)?;
        let n = usize::try_from(i32::from_be_bytes(prefix))
            .ok()
            .filter(|&n| n <= 256 << 20)
            .ok_or_else(|| ClientError::Protocol("bad response length".into()))?;
        let mut body = vec![0u8; n];
        self.stream.read_exact(&mut body)?;
        let mut frame = Bytes::from(body);
        let h = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|e| proto(e.into()))?;
        if h.correlation_id != self.correlation {
            return Err(ClientError::Protocol("correlation id mismatch".into()));
        }
        R::Response::decode(&mut frame, version).map_err(|e| proto(e.into()))
    }

    /// Creates a topic with `partitions` partitions (an existing one is fine).
    ///
    /// # Errors
    /// [`ClientError::Broker`] with the topic's error code (other than "already exists").
    pub fn create_topic(&mut self, topic: &str, partitions: i32) -> Result<(), ClientError> {
        let t = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1);
        let r = self.call(
            &CreateTopicsRequest::default()
                .with_topics(vec![t])
                .with_timeout_ms(10_000),
            5,
        )?;
        match r.topics.first().map_or(-1, |t| t.error_code) {
            0 | 36 => Ok(()), // 36: TOPIC_ALREADY_EXISTS
            code => Err(ClientError::Broker(code)),
        }
    }

    /// Produces one record batch (v2 bytes) to a partition with `acks`; returns its base offset.
    ///
    /// # Errors
    /// [`ClientError::Broker`] with the partition's error code.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: impl Into<Bytes>,
        acks: i16,
    ) -> Result<i64, ClientError> {
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch.into())),
                    ]),
            ]);
        let r = self.call(&req, 9)?;
        let p = r
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| ClientError::Protocol("empty produce response".into()))?;
        if p.error_code != 0 {
            return Err(ClientError::Broker(p.error_code));
        }
        Ok(p.base_offset)
    }

    /// Fetches from `offset` (no waiting); returns the raw batches and the high watermark.
    ///
    /// # Errors
    /// [`ClientError::Broker`] with the partition's error code.
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
    ) -> Result<(Bytes, i64), ClientError> {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max_bytes),
                    ]),
            ]);
        let r = self.call(&req, 12)?;
        let p = r
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::Protocol("empty fetch response".into()))?;
        if p.error_code != 0 {
            return Err(ClientError::Broker(p.error_code));
        }
        Ok((p.records.clone().unwrap_or_default(), p.high_watermark))
    }
}

/// `kafka-protocol` reports errors as `anyhow::Error`; this keeps `anyhow` out of our API.
mod anyhow_like {
    pub(super) struct Error(pub(super) String);
    impl<E: std::fmt::Display> From<E> for Error {
        fn from(e: E) -> Self {
            Self(format!("{e:#}"))
        }
    }
}
