//! kill -9 of the broker process in the middle of an acks=all produce stream under
//! fsync-every-batch durability; after a restart on the same data directory every
//! acknowledged record is there, once, in order.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{BrokerProcess, Client};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use keel_stream::Record;
use keel_stream::batch::{decode_batch, encode_batch, split_batches};

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("crash"))
}

#[test]
fn every_acknowledged_record_survives_kill_9_mid_produce() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), &["--auto-create-topics"]);
    let addr = broker.addr;
    // The producer: batches of 10 records with acks=-1; it records what was acknowledged
    // and keeps going until the connection dies.
    let producer = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        let mut acked: Vec<u64> = Vec::new();
        let mut next = 0u64;
        loop {
            let recs: Vec<Record> = (next..next + 10)
                .map(|i| Record::new(i.to_string()))
                .collect();
            let batch = encode_batch(&recs, 1, None).unwrap();
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(topic())
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(Bytes::from(batch))),
                        ]),
                ]);
            match c.try_call(&req, 9) {
                Some(r) if r.responses[0].partition_responses[0].error_code == 0 => {
                    acked.extend(next..next + 10);
                    next += 10;
                }
                Some(r) => panic!("produce failed: {r:?}"),
                None => return acked, // the broker died
            }
        }
    });
    // Let a few hundred batches be acknowledged, then kill -9 while the producer is mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let size: u64 = walk(dir.path());
        if size > 40_000 || Instant::now() > deadline {
            break;
        }
    }
    broker.kill9();
    let acked = producer.join().unwrap();
    assert!(
        acked.len() >= 100,
        "the producer got acknowledgements before the kill ({})",
        acked.len()
    );
    // Restart on the same data and read everything back.
    let broker = BrokerProcess::start(dir.path(), &["--auto-create-topics"]);
    let mut c = Client::connect(broker.addr);
    let mut got: Vec<u64> = Vec::new();
    let mut offset = 0i64;
    loop {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]);
        let r = c.call(&req, 12);
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let recs: Vec<_> = p
            .records
            .iter()
            .flat_map(|b| {
                split_batches(b)
                    .flat_map(|b| decode_batch(&b.unwrap()).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        if recs.is_empty() {
            break;
        }
        for r in recs.iter().filter(|r| r.offset >= offset) {
            got.push(
                String::from_utf8(r.value.clone().unwrap().to_vec())
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
        offset = recs.last().unwrap().offset + 1;
    }
    assert!(
        got.len() >= acked.len(),
        "recovered {} < acknowledged {}",
        got.len(),
        acked.len()
    );
    assert_eq!(
        &got[..acked.len()],
        &acked[..],
        "every acknowledged record, in order, no duplicates"
    );
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "nothing after the acknowledged prefix is torn or repeated"
    );
    println!(
        "kill -9: acknowledged {}, recovered {}, lost 0",
        acked.len(),
        got.len()
    );
}

fn walk(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}
