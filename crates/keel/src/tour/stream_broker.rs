//! The stream tour's broker part: the same kind of workload as the embedded part, but over
//! TCP through `keel-stream-broker` on loopback, the way a Kafka client would send it —
//! `CreateTopics`, `Produce` with acks=all (fsync per batch), `Fetch` everything back.
//!
//! Wired into `tour/stream.rs` by the stream tour's owner:
//! `("broker on loopback", stream_broker::broker_part)` with `()` as the shared state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use keel_stream::Record;
use keel_stream::batch::{decode_batch, encode_batch, split_batches};
use keel_stream_broker::Broker;
use keel_stream_broker::client::Client;

use super::{SummaryRow, SystemReport, Tour, latency_histogram};

const TOPIC: &str = "orders-over-tcp";
const PARTITIONS: i32 = 8;
const BATCH: u64 = 100;

/// Produces order events over TCP (acks=all, fsync per batch), fetches them back, and
/// reports throughput, produce round-trip latency and what came back.
pub(crate) fn broker_part(
    tour: &Tour,
    _shared: &mut (),
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let records: u64 = if tour.quick() { 5_000 } else { 50_000 };
    let dir = std::env::temp_dir().join(format!("keel-tour-broker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let broker = Broker::builder()
        .listen("127.0.0.1:0".parse()?)
        .data_dir(&dir)
        .build()?;
    let handle = runtime.block_on(broker.start())?;
    let addr = handle.local_addr();
    let result = (|| -> anyhow::Result<()> {
        let mut client = Client::connect(addr)?;
        client.create_topic(TOPIC, PARTITIONS)?;
        let bar = tour.progress("broker: produce over TCP", records);
        let mut latency = latency_histogram();
        let mut sent: HashMap<i32, Vec<String>> = HashMap::new();
        let started = Instant::now();
        let mut i = 0u64;
        while i < records {
            let partition = ((i / BATCH) % PARTITIONS as u64) as i32;
            let values: Vec<String> = (i..(i + BATCH).min(records))
                .map(|n| format!("order-{n}"))
                .collect();
            let recs: Vec<Record> = values
                .iter()
                .map(|v| Record::keyed(format!("customer-{}", partition), v.clone()))
                .collect();
            let batch = encode_batch(&recs, 1_700_000_000_000, None)?;
            let t = Instant::now();
            client.produce(TOPIC, partition, batch, -1)?;
            let _ = latency.record(t.elapsed().as_nanos() as u64);
            i += values.len() as u64;
            bar.inc(values.len() as u64);
            sent.entry(partition).or_default().extend(values);
        }
        let produce_elapsed = started.elapsed();
        bar.finish_and_clear();
        report.summary.push(SummaryRow::from_histogram(
            format!("broker over TCP: produce acks=all, fsync per batch ({BATCH} records/request)"),
            "records/s",
            records,
            produce_elapsed,
            &latency,
        ));
        // Fetch everything back, partition by partition.
        let mut fetch_latency = latency_histogram();
        let started = Instant::now();
        let mut back = 0u64;
        let mut in_order = true;
        let mut wrong = 0u64;
        for p in 0..PARTITIONS {
            let expected = sent.remove(&p).unwrap_or_default();
            let mut got: Vec<String> = Vec::with_capacity(expected.len());
            let mut offset = 0i64;
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let t = Instant::now();
                let (bytes, hw) = client.fetch(TOPIC, p, offset, 1 << 20)?;
                let _ = fetch_latency.record(t.elapsed().as_nanos() as u64);
                for b in split_batches(&bytes) {
                    for r in decode_batch(&b?)? {
                        if r.offset < offset {
                            continue;
                        }
                        in_order &= r.offset == offset;
                        offset = r.offset + 1;
                        got.push(
                            String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                                .into_owned(),
                        );
                    }
                }
                if offset >= hw {
                    break;
                }
            }
            back += got.len() as u64;
            wrong += got.iter().zip(&expected).filter(|(a, b)| a != b).count() as u64;
            wrong += expected.len().abs_diff(got.len()) as u64;
        }
        report.summary.push(SummaryRow::from_histogram(
            "broker over TCP: fetch everything back (per request)",
            "records/s",
            back,
            started.elapsed(),
            &fetch_latency,
        ));
        let stats = handle.stats();
        report.check(
            "broker: every acknowledged record fetched back once, in offset order",
            back == records && wrong == 0 && in_order,
            format!(
                "{records} acknowledged over TCP, {back} fetched back, {wrong} missing or different"
            ),
        );
        report.check(
            "broker: the log counted what the clients sent",
            stats.produced_records == records && stats.frames_rejected == 0,
            format!(
                "{} records in {} batches appended, {} frames rejected",
                stats.produced_records, stats.produced_batches, stats.frames_rejected
            ),
        );
        report.notes.push(format!(
            "The broker part speaks the Kafka protocol on {addr} (loopback); kcat, kafka-python \
             and librdkafka clients work against `keel stream broker` the same way."
        ));
        Ok(())
    })();
    runtime.block_on(handle.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
    result
}
