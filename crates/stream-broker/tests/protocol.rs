//! The broker over TCP with a small client made of `kafka-protocol` messages: versions,
//! topics, produce/fetch, offsets, groups, idempotence, and the error paths.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Client;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use keel_stream::Record;
use keel_stream::batch::{ProducerInfo, decode_batch, encode_batch, split_batches};
use keel_stream_broker::{Broker, BrokerHandle};

struct Fixture {
    rt: tokio::runtime::Runtime,
    broker: Option<BrokerHandle>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(
        configure: impl FnOnce(keel_stream_broker::BrokerBuilder) -> keel_stream_broker::BrokerBuilder,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let b = configure(
            Broker::builder()
                .listen("127.0.0.1:0".parse().unwrap())
                .data_dir(dir.path()),
        );
        let broker = rt.block_on(async { b.build().unwrap().start().await.unwrap() });
        Self {
            rt,
            broker: Some(broker),
            _dir: dir,
        }
    }
    fn client(&self) -> Client {
        Client::connect(self.broker.as_ref().unwrap().local_addr())
    }
    fn broker(&self) -> &BrokerHandle {
        self.broker.as_ref().unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            self.rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), b.shutdown()).await
                })
                .unwrap();
        }
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(c: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
    let t = CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        );
    let r = c.call(
        &CreateTopicsRequest::default()
            .with_topics(vec![t])
            .with_timeout_ms(5000),
        5,
    );
    r.topics[0].error_code
}

fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    batch: Vec<u8>,
    version: i16,
) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(Bytes::from(batch))),
                ]),
        ]);
    let r = c.call(&req, version);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_req(
    topic: &str,
    partition: i32,
    offset: i64,
    wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

fn values(records: &Option<Bytes>) -> Vec<(i64, String)> {
    let Some(b) = records else { return vec![] };
    split_batches(b)
        .flat_map(|b| decode_batch(&b.unwrap()).unwrap())
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect()
}

fn batch(values: &[&str], ts: i64) -> Vec<u8> {
    let recs: Vec<Record> = values
        .iter()
        .map(|v| Record::keyed("k", v.to_string()))
        .collect();
    encode_batch(&recs, ts, None).unwrap()
}

#[test]
fn api_versions_lists_what_we_serve_and_falls_back_to_v0_for_a_newer_version() {
    let f = Fixture::new(|b| b);
    let mut c = f.client();
    let r = c.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(r.error_code, 0);
    let produce = r.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (3, 9));
    assert_eq!(
        r.api_keys.len(),
        keel_stream_broker::api::versions::SUPPORTED.len()
    );
    // ApiVersions v4 (newer than ours): a v0 response with UNSUPPORTED_VERSION and the list.
    let mut raw = vec![0, 0, 0, 0];
    raw.extend_from_slice(&[0, 18, 0, 4, 0, 0, 0, 42, 0, 0]); // key 18, v4, correlation 42, null client id
    raw.extend_from_slice(&[0]); // tag buffer … the broker must not even need it
    let len = (raw.len() - 4) as i32;
    raw[..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&raw);
    let mut frame = c.read_frame().unwrap();
    assert_eq!(common::correlation_of(&mut frame), 42);
    let v0 = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0)
        .unwrap();
    assert_eq!(v0.error_code, ResponseError::UnsupportedVersion.code());
    assert!(!v0.api_keys.is_empty());
}

#[test]
fn create_topics_metadata_and_bad_topic_settings() {
    let f = Fixture::new(|b| b);
    let mut c = f.client();
    assert_eq!(create(&mut c, "orders", 3, &[("retention.ms", "-1")]), 0);
    assert_eq!(
        create(&mut c, "orders", 3, &[]),
        ResponseError::TopicAlreadyExists.code()
    );
    assert_eq!(
        create(&mut c, "bad/name", 1, &[]),
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create(&mut c, "compacted", 1, &[("cleanup.policy", "compact")]),
        0,
        "a changelog topic is accepted"
    );
    assert_eq!(
        create(&mut c, "badpolicy", 1, &[("cleanup.policy", "compacted")]),
        ResponseError::InvalidConfig.code()
    );
    assert_eq!(
        create(&mut c, "zero", 0, &[]),
        ResponseError::InvalidPartitions.code()
    );
    let r = c.call(
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name("r3"))
                .with_num_partitions(1)
                .with_replication_factor(3),
        ]),
        5,
    );
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::InvalidReplicationFactor.code()
    );
    let md = c.call(&MetadataRequest::default().with_topics(None), 9);
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(
        md.brokers[0].port,
        i32::from(f.broker().local_addr().port())
    );
    let names: Vec<&str> = md
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.as_str())
        .collect();
    assert_eq!(names, vec!["compacted", "orders"]);
    assert_eq!(md.topics[1].partitions.len(), 3);
    // Auto-create is off by default: an unknown topic is an error, not a new topic.
    let md = c.call(
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("nope"))),
            ]))
            .with_allow_auto_topic_creation(true),
        9,
    );
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let r = c.call(
        &DeleteTopicsRequest::default().with_topic_names(vec![
            name("orders"),
            name("nope"),
            name("compacted"),
        ]),
        4,
    );
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        r.responses[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(r.responses[2].error_code, 0);
    let md = c.call(&MetadataRequest::default().with_topics(None), 9);
    assert!(md.topics.is_empty());
}

#[test]
fn produce_fetch_roundtrip_list_offsets_and_long_poll() {
    let f = Fixture::new(|b| b);
    let mut c = f.client();
    assert_eq!(create(&mut c, "t", 2, &[]), 0);
    assert_eq!(
        produce(&mut c, "t", 0, batch(&["a", "b"], 1_000), 9),
        (0, 0)
    );
    assert_eq!(produce(&mut c, "t", 0, batch(&["c"], 2_000), 3), (0, 2));
    assert_eq!(
        produce(&mut c, "t", 5, batch(&["x"], 1), 9).0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let mut corrupt = batch(&["x"], 1);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut c, "t", 0, corrupt, 9).0,
        ResponseError::CorruptMessage.code()
    );
    for v in [4, 12] {
        let r = c.call(&fetch_req("t", 0, 1, 0, 1), v);
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 3));
        assert_eq!(
            values(&p.records),
            vec![(0, "a".into()), (1, "b".into()), (2, "c".into())],
            "whole batches come back"
        );
    }
    let r = c.call(&fetch_req("t", 0, 99, 0, 1), 12);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let lo = |ts: i64| {
        ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(ts),
                ]),
        ])
    };
    let off = |c: &mut Client, ts| c.call(&lo(ts), 7).topics[0].partitions[0].offset;
    assert_eq!(off(&mut c, -2), 0);
    assert_eq!(off(&mut c, -1), 3);
    assert_eq!(off(&mut c, 1_500), 2);
    assert_eq!(off(&mut c, 9_999), -1);
    // Long poll: a fetch at the log end waits until another connection produces.
    let addr = f.broker().local_addr();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let mut p = Client::connect(addr);
        produce(&mut p, "t", 1, batch(&["late"], 3_000), 9)
    });
    let started = Instant::now();
    let r = c.call(&fetch_req("t", 1, 0, 10_000, 1), 12);
    assert_eq!(
        values(&r.responses[0].partitions[0].records),
        vec![(0, "late".into())]
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "woken by the append, not the timeout"
    );
    assert_eq!(producer.join().unwrap(), (0, 0));
    // Nothing arrives: the fetch answers empty after max_wait.
    let r = c.call(&fetch_req("t", 1, 1, 100, 1), 12);
    assert!(values(&r.responses[0].partitions[0].records).is_empty());
    let s = f.broker().stats();
    assert_eq!(s.produced_records, 4);
}

#[test]
fn idempotent_producer_retry_is_not_written_twice() {
    let f = Fixture::new(|b| b);
    let mut c = f.client();
    assert_eq!(create(&mut c, "idem", 1, &[]), 0);
    let pid = c.call(
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(1000),
        4,
    );
    assert_eq!(pid.error_code, 0);
    let pid2 = c.call(
        &InitProducerIdRequest::default().with_transactional_id(None),
        4,
    );
    assert_ne!(pid.producer_id, pid2.producer_id);
    let info = |seq| {
        Some(ProducerInfo {
            producer_id: pid.producer_id.0,
            producer_epoch: pid.producer_epoch,
            base_sequence: seq,
        })
    };
    let b0 = encode_batch(&[Record::new("one"), Record::new("two")], 1, info(0)).unwrap();
    assert_eq!(produce(&mut c, "idem", 0, b0.clone(), 9), (0, 0));
    assert_eq!(
        produce(&mut c, "idem", 0, b0, 9),
        (0, 0),
        "the retry gets its original offset"
    );
    let gap = encode_batch(&[Record::new("x")], 1, info(5)).unwrap();
    assert_eq!(
        produce(&mut c, "idem", 0, gap, 9).0,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    let b1 = encode_batch(&[Record::new("three")], 1, info(2)).unwrap();
    assert_eq!(produce(&mut c, "idem", 0, b1, 9), (0, 2));
    let r = c.call(&fetch_req("idem", 0, 0, 0, 1), 12);
    assert_eq!(values(&r.responses[0].partitions[0].records).len(), 3);
    assert_eq!(f.broker().stats().duplicate_batches, 1);
    let txn = c.call(
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx")))),
        4,
    );
    assert_ne!(txn.error_code, 0, "transactions are refused, not pretended");
}

fn join(c: &mut Client, member: &str, version: i16) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"meta")),
        ]);
    c.call(&req, version)
}

#[test]
fn group_join_sync_heartbeat_commit_and_leave() {
    let f = Fixture::new(|b| b);
    let mut c = f.client();
    assert_eq!(create(&mut c, "t", 2, &[]), 0);
    let fc = c.call(
        &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g")),
        3,
    );
    assert_eq!(
        (fc.error_code, fc.port),
        (0, i32::from(f.broker().local_addr().port()))
    );
    let fc4 = c.call(
        &FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
        4,
    );
    assert_eq!(fc4.coordinators.len(), 1);
    let j = join(&mut c, "", 7);
    assert_eq!((j.error_code, j.generation_id), (0, 1));
    assert_eq!(j.leader, j.member_id);
    assert_eq!(j.members.len(), 1);
    let g = GroupId(StrBytes::from_static_str("g"));
    let s = c.call(
        &SyncGroupRequest::default()
            .with_group_id(g.clone())
            .with_generation_id(1)
            .with_member_id(j.member_id.clone())
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(j.member_id.clone())
                    .with_assignment(Bytes::from_static(b"both")),
            ]),
        5,
    );
    assert_eq!((s.error_code, &s.assignment[..]), (0, &b"both"[..]));
    let hb = |c: &mut Client, generation, member: StrBytes| {
        c.call(
            &HeartbeatRequest::default()
                .with_group_id(g.clone())
                .with_generation_id(generation)
                .with_member_id(member),
            4,
        )
        .error_code
    };
    assert_eq!(hb(&mut c, 1, j.member_id.clone()), 0);
    assert_eq!(
        hb(&mut c, 7, j.member_id.clone()),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        hb(&mut c, 1, StrBytes::from_static_str("ghost")),
        ResponseError::UnknownMemberId.code()
    );
    let commit = |c: &mut Client, generation, offset| {
        let r = c.call(
            &OffsetCommitRequest::default()
                .with_group_id(g.clone())
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(j.member_id.clone())
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(name("t"))
                        .with_partitions(vec![
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(1)
                                .with_committed_offset(offset),
                        ]),
                ]),
            8,
        );
        r.topics[0].partitions[0].error_code
    };
    assert_eq!(commit(&mut c, 1, 42), 0);
    assert_eq!(
        commit(&mut c, 0, 43),
        ResponseError::IllegalGeneration.code(),
        "a zombie generation cannot commit"
    );
    let of = c.call(
        &OffsetFetchRequest::default()
            .with_group_id(g.clone())
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0, 1]),
            ])),
        7,
    );
    let offs: Vec<i64> = of.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(offs, vec![-1, 42]);
    let d = c.call(
        &DescribeGroupsRequest::default().with_groups(vec![g.clone()]),
        5,
    );
    assert_eq!(
        (d.groups[0].group_state.as_str(), d.groups[0].members.len()),
        ("Stable", 1)
    );
    let l = c.call(&ListGroupsRequest::default(), 4);
    assert_eq!(l.groups.len(), 1);
    let leave = c.call(
        &LeaveGroupRequest::default()
            .with_group_id(g.clone())
            .with_member_id(j.member_id.clone()),
        2,
    );
    assert_eq!(leave.error_code, 0);
    assert_eq!(
        hb(&mut c, 1, j.member_id.clone()),
        ResponseError::UnknownMemberId.code()
    );
    // A second consumer joining a live group makes the first rejoin (REBALANCE_IN_PROGRESS).
    let addr = f.broker().local_addr();
    let a = join(&mut c, "", 5);
    let b_thread = std::thread::spawn(move || join(&mut Client::connect(addr), "", 5));
    let deadline = Instant::now() + Duration::from_secs(10);
    while hb(&mut c, a.generation_id, a.member_id.clone())
        != ResponseError::RebalanceInProgress.code()
    {
        assert!(Instant::now() < deadline, "the rebalance never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let a2 = join(&mut c, a.member_id.as_str(), 5);
    let b = b_thread.join().unwrap();
    assert_eq!(
        (a2.generation_id, b.generation_id),
        (a.generation_id + 1, a.generation_id + 1)
    );
    assert_eq!(a2.members.len(), 2);
    assert!(b.members.is_empty());
}

#[test]
fn malformed_and_oversized_frames_close_only_their_connection() {
    let f = Fixture::new(|b| b.max_request_bytes(1 << 20));
    let mut good = f.client();
    assert_eq!(good.call(&ApiVersionsRequest::default(), 3).error_code, 0);
    // A length prefix of 2 GiB: refused before allocating, connection closed.
    let mut big = f.client();
    big.send_raw(&0x7fff_ffffi32.to_be_bytes());
    assert!(big.closed_by_broker());
    // A negative length.
    let mut neg = f.client();
    neg.send_raw(&(-5i32).to_be_bytes());
    assert!(neg.closed_by_broker());
    // A Metadata v0 body claiming 54 million topics in 5 bytes (the kafka-protocol bug the
    // vendored patch fixes): a decode error, not a 3.6 GiB allocation.
    let mut bomb = f.client();
    let body = [
        0u8, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x03, 0x3c, 0x0c, 0x00, 0xb6,
    ];
    let mut raw = (body.len() as i32).to_be_bytes().to_vec();
    raw.extend_from_slice(&body);
    bomb.send_raw(&raw);
    assert!(bomb.closed_by_broker());
    // An unknown API key.
    let mut unknown = f.client();
    unknown.send_raw(&[0, 0, 0, 8, 0x7f, 0x00, 0, 0, 0, 0, 0, 1]);
    assert!(unknown.closed_by_broker());
    // An unsupported version of a known API (Produce v13 uses topic ids).
    let mut v13 = f.client();
    v13.send_raw(&[0, 0, 0, 8, 0, 0, 0, 13, 0, 0, 0, 1]);
    assert!(v13.closed_by_broker());
    // The first connection never noticed.
    assert_eq!(
        good.call(&MetadataRequest::default().with_topics(None), 9)
            .brokers
            .len(),
        1
    );
    assert_eq!(f.broker().stats().frames_rejected, 5);
}

#[test]
fn connections_over_the_limit_are_refused_and_the_rest_keep_working() {
    let f = Fixture::new(|b| b.max_connections(2));
    let mut a = f.client();
    let mut b = f.client();
    assert_eq!(a.call(&ApiVersionsRequest::default(), 3).error_code, 0);
    assert_eq!(b.call(&ApiVersionsRequest::default(), 3).error_code, 0);
    let mut c = f.client();
    assert!(c.closed_by_broker());
    assert_eq!(a.call(&ApiVersionsRequest::default(), 3).error_code, 0);
    assert_eq!(f.broker().stats().connections_refused, 1);
}

#[test]
fn pipelined_requests_are_answered_in_order_with_one_in_flight_slot() {
    use kafka_protocol::protocol::{Encodable, HeaderVersion};
    let f = Fixture::new(|b| b.max_in_flight(1));
    let mut c = f.client();
    // 50 requests in one write; with one in-flight slot the broker reads the next only
    // after answering the previous, and every answer comes back in request order.
    let mut raw = bytes::BytesMut::new();
    for id in 0..50 {
        let mut frame = bytes::BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(18)
            .with_request_api_version(3)
            .with_correlation_id(1000 + id)
            .encode(&mut frame, ApiVersionsRequest::header_version(3))
            .unwrap();
        ApiVersionsRequest::default().encode(&mut frame, 3).unwrap();
        raw.extend_from_slice(&(frame.len() as i32).to_be_bytes());
        raw.extend_from_slice(&frame);
    }
    c.send_raw(&raw);
    for id in 0..50 {
        let mut frame = c.read_frame().expect("a response");
        assert_eq!(common::correlation_of(&mut frame), 1000 + id);
    }
    assert_eq!(f.broker().stats().requests, 50);
}

#[test]
fn retention_ms_from_create_topics_deletes_old_segments_on_the_injected_clock() {
    let clock = keel_stream::MockClock::new(1_000_000);
    let c2 = clock.clone();
    let f = Fixture::new(move |b| b.clock(c2).tick(Duration::from_millis(10)));
    let mut c = f.client();
    assert_eq!(
        create(
            &mut c,
            "short",
            1,
            &[("retention.ms", "60000"), ("segment.bytes", "4096")]
        ),
        0
    );
    let big = "x".repeat(1000);
    for _ in 0..12 {
        assert_eq!(
            produce(&mut c, "short", 0, batch(&[&big], 1_000_000), 9).0,
            0
        );
    }
    let earliest = |c: &mut Client| {
        let req = ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name("short"))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-2),
                ]),
        ]);
        c.call(&req, 7).topics[0].partitions[0].offset
    };
    assert_eq!(earliest(&mut c), 0);
    // Nothing is old yet; then the (mock) clock passes retention.ms and the housekeeping
    // tick deletes the sealed segments (the active one always stays).
    clock.advance(Duration::from_millis(60_001));
    let deadline = Instant::now() + Duration::from_secs(20);
    while earliest(&mut c) == 0 {
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = earliest(&mut c);
    assert!(start > 0 && start < 12, "log start {start}");
    let r = c.call(&fetch_req("short", 0, 0, 0, 1), 12);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code(),
        "deleted offsets are out of range"
    );
}
