//! Counters, the per-API latency histogram and the lag gauges reach the `metrics` facade.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use keel_stream::Record;
use keel_stream::batch::encode_batch;
use keel_stream_broker::Broker;
use keel_stream_broker::client::Client;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn counters_latency_and_group_lag_reach_the_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt
        .block_on(
            Broker::builder()
                .listen("127.0.0.1:0".parse().unwrap())
                .data_dir(dir.path())
                .build()
                .unwrap()
                .start(),
        )
        .unwrap();
    let mut c = Client::connect(handle.local_addr()).unwrap();
    c.create_topic("m", 1).unwrap();
    let batch = encode_batch(
        &[Record::new("a"), Record::new("b"), Record::new("c")],
        1,
        None,
    )
    .unwrap();
    assert_eq!(c.produce("m", 0, Bytes::from(batch), -1).unwrap(), 0);
    let (bytes, hw) = c.fetch("m", 0, 0, 1 << 20).unwrap();
    assert!(!bytes.is_empty() && hw == 3);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("billing")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("m")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    assert_eq!(
        c.call(&commit, 8).unwrap().topics[0].partitions[0].error_code,
        0
    );
    handle.publish_metrics();
    let mut seen: HashMap<String, f64> = HashMap::new();
    let mut histograms: Vec<String> = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let k = key.key();
        let labels: Vec<String> = k
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            k.name().to_string()
        } else {
            format!("{}{{{}}}", k.name(), labels.join(","))
        };
        match value {
            DebugValue::Counter(n) => {
                seen.insert(name, n as f64);
            }
            DebugValue::Gauge(g) => {
                seen.insert(name, g.into_inner());
            }
            DebugValue::Histogram(_) => histograms.push(name),
        }
    }
    assert_eq!(seen["keel_stream_broker_produced_records"], 3.0);
    assert_eq!(seen["keel_stream_broker_produced_batches"], 1.0);
    assert_eq!(seen["keel_stream_broker_fetches"], 1.0);
    assert_eq!(seen["keel_stream_broker_offsets_committed"], 1.0);
    assert_eq!(seen["keel_stream_broker_topics"], 1.0);
    assert_eq!(
        seen["keel_stream_broker_group_lag{group=billing,topic=m,partition=0}"],
        2.0
    );
    assert!(
        histograms
            .iter()
            .any(|h| h.contains("keel_stream_broker_request_seconds") && h.contains("api=produce")),
        "{histograms:?}"
    );
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await })
        .unwrap();
}
