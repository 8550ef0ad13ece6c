//! Child process of the kill -9 test: produces numbered, keyed records through an idempotent
//! producer with `acks = durable` on a topic with `Durability::EveryBatch`, and prints
//! `ack <partition> <offset> <producer id>:<sequence>` for every acknowledged record, flushing stdout, until it
//! is killed.
//!
//! Usage: `keel-stream-crash-producer DIR`

use std::io::Write;
use std::time::Duration;

use keel_stream::{Acks, Durability, Producer, Record, Stream, TopicConfig};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: keel-stream-crash-producer DIR");
    let stream = Stream::builder().dir(&dir).build().expect("open stream");
    if stream.topic("crash").is_err() {
        let cfg = TopicConfig::builder()
            .partitions(3)
            .segment_bytes(64 << 10)
            .durability(Durability::EveryBatch)
            .build()
            .expect("config");
        stream.create_topic("crash", cfg).expect("create topic");
    }
    let producer = Producer::builder(&stream)
        .linger(Duration::from_millis(1))
        .batch_bytes(4096)
        .acks(Acks::Durable)
        .build()
        .expect("producer");
    let pid = producer.producer_id().expect("idempotent producer");
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    let mut pending = std::collections::VecDeque::new();
    for i in 0u64.. {
        let value = format!("{pid}:{i:010}");
        let d = producer
            .send(
                "crash",
                Record::keyed(format!("key-{}", i % 17), value.clone()),
            )
            .expect("send");
        pending.push_back((value, d));
        // Keep a window of unacknowledged sends so batches form and a kill lands mid-batch.
        while pending.len() > 64
            || pending
                .front()
                .is_some_and(|(_, d)| d.try_result().is_some())
        {
            let (value, d) = pending.pop_front().expect("non-empty");
            let m = d.wait(Duration::from_secs(60)).expect("ack");
            writeln!(
                out,
                "ack {} {} {value}",
                m.partition,
                m.offset.expect("offset")
            )
            .expect("stdout");
        }
        out.flush().expect("stdout");
    }
}
