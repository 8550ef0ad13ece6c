//! `keel-bench stream`: Keel's embedded event log against NATS JetStream and Redis Streams.
//!
//! # Workload
//!
//! - **publish** (100 B and 1 KB records): one thread appends as fast as it can for the
//!   round. Keel: a [`keel_stream::Producer`] (linger 1 ms, 64 KiB batches, 4 MiB buffer)
//!   into a 1-partition topic; the round ends when everything sent is acknowledged. Redis
//!   Streams: `XADD stream MAXLEN ~ 100000 * v <payload>` through the `redis` crate, 64
//!   commands per pipeline, on a private `redis-server` (started by `keel-testkit`).
//!   Latency is send → acknowledgement: for Keel, one record in 32 is timed until its
//!   `Delivery` completes; for Redis, each pipeline's round trip.
//!   NATS JetStream: acked `publish` to a file-storage stream on a private `nats-server -js`
//!   (started by `keel-testkit`), up to 256 acks outstanding (async-nats on a 1-worker tokio
//!   runtime); latency is publish → ack.
//! - **Durability (equal on all sides)**: nothing is fsynced per message. Keel runs with
//!   `Durability::Never` and `Acks::Leader` (written to the page cache); JetStream file
//!   storage writes to its files and fsyncs on its own interval (2 min by default); the test
//!   `redis-server` has no AOF (memory). A second Keel row, `keel fsync/batch`, uses
//!   `Durability::EveryBatch` + `Acks::Durable` (an fsync per batch) — stricter than the peer,
//!   so its ratio is a floor, not a like-for-like figure.
//! - **produce → consume** (100 B, Keel only): a producer thread and a consumer thread
//!   polling the log; latency is the time from send to the consumer reading the record.
//!
//! Not here yet: the broker-over-TCP scenarios, consumption on the peers (JetStream pull
//! consumers, Redis `XREADGROUP`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keel_stream::{Acks, Delivery, Durability, Producer, Record, Stream, TopicConfig};

use crate::harness::{Contender, Measurement, new_histogram, record};
use crate::{Config, Report};

const SIZES: [(usize, &str); 2] = [(100, "100 B"), (1000, "1 KB")];
const PIPELINE: usize = 64;
const WAIT: Duration = Duration::from_secs(60);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("keel-bench-stream-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct KeelSide {
    _dir: Scratch,
    stream: Stream,
    producer: Producer,
}

fn keel_side(tag: &str, durability: Durability, acks: Acks) -> anyhow::Result<KeelSide> {
    let dir = Scratch::new(tag)?;
    let stream = Stream::builder().dir(&dir.0).build()?;
    let cfg = TopicConfig::builder()
        .partitions(1)
        .durability(durability)
        .retention_bytes(Some(256 << 20))
        .build()?;
    stream.create_topic("bench", cfg)?;
    let producer = Producer::builder(&stream)
        .linger(Duration::from_millis(1))
        .batch_bytes(64 << 10)
        .buffer_bytes(4 << 20)
        .acks(acks)
        .build()?;
    Ok(KeelSide {
        _dir: dir,
        stream,
        producer,
    })
}

fn keel_publish(side: &KeelSide, payload: &Bytes, duration: Duration) -> Measurement {
    let mut m = Measurement::new();
    let mut sampled: VecDeque<(Instant, Delivery)> = VecDeque::new();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        for _ in 0..32 {
            let d = side
                .producer
                .send("bench", Record::new(payload.clone()))
                .expect("send");
            sent += 1;
            if sent % 32 == 0 {
                sampled.push_back((Instant::now(), d));
            }
        }
        while sampled
            .front()
            .is_some_and(|(_, d)| d.try_result().is_some())
        {
            let (t, _) = sampled.pop_front().expect("non-empty");
            record(&mut m.latency, t.elapsed());
        }
    }
    side.producer.flush(WAIT).expect("flush");
    for (t, d) in sampled {
        d.wait(WAIT).expect("ack");
        record(&mut m.latency, t.elapsed());
    }
    m.ops = sent;
    m.elapsed = start.elapsed();
    let _ = side.stream.enforce_retention();
    m
}

fn redis_publish(con: &mut redis::Connection, payload: &[u8], duration: Duration) -> Measurement {
    let mut m = Measurement::new();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        let mut pipe = redis::pipe();
        for _ in 0..PIPELINE {
            pipe.cmd("XADD")
                .arg("bench")
                .arg("MAXLEN")
                .arg("~")
                .arg(100_000)
                .arg("*")
                .arg("v")
                .arg(payload)
                .ignore();
        }
        let t = Instant::now();
        pipe.query::<()>(con).expect("XADD pipeline");
        record(&mut m.latency, t.elapsed());
        sent += PIPELINE as u64;
    }
    m.ops = sent;
    m.elapsed = start.elapsed();
    m
}

struct NatsSide {
    _server: keel_testkit::NatsServer,
    rt: tokio::runtime::Runtime,
    js: async_nats::jetstream::Context,
}

fn nats_side() -> anyhow::Result<NatsSide> {
    let server = keel_testkit::NatsServer::start()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let url = server.url();
    let js = rt.block_on(async move {
        let client = async_nats::connect(url).await?;
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "BENCH".to_string(),
            subjects: vec!["bench.>".to_string()],
            storage: async_nats::jetstream::stream::StorageType::File,
            max_bytes: 256 << 20,
            ..Default::default()
        })
        .await?;
        anyhow::Ok(js)
    })?;
    Ok(NatsSide {
        _server: server,
        rt,
        js,
    })
}

fn nats_publish(
    side: &NatsSide,
    subject: &str,
    payload: &Bytes,
    duration: Duration,
) -> Measurement {
    side.rt.block_on(async {
        let mut m = Measurement::new();
        let mut window = VecDeque::with_capacity(256);
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            let t = Instant::now();
            let ack = side
                .js
                .publish(subject.to_string(), payload.clone())
                .await
                .expect("publish");
            window.push_back((t, ack));
            sent += 1;
            if window.len() >= 256 {
                let (t, ack) = window.pop_front().expect("non-empty");
                ack.await.expect("ack");
                record(&mut m.latency, t.elapsed());
            }
        }
        for (t, ack) in window {
            ack.await.expect("ack");
            record(&mut m.latency, t.elapsed());
        }
        m.ops = sent;
        m.elapsed = start.elapsed();
        m
    })
}

/// Producer thread and consumer thread on one topic; latency = send → read.
fn keel_end_to_end(side: &KeelSide, payload_len: usize, duration: Duration) -> Measurement {
    let log = side.stream.log("bench", 0).expect("partition");
    let from = log.log_end_offset();
    let origin = Instant::now();
    let done = AtomicBool::new(false);
    let produced = AtomicU64::new(0);
    let mut m = Measurement::new();
    std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut hist = new_histogram();
            let mut at = from;
            let mut read = 0u64;
            loop {
                let f = log.read(at, 1 << 20).expect("read");
                if f.is_empty() {
                    if done.load(Ordering::Acquire) && read >= produced.load(Ordering::Acquire) {
                        break;
                    }
                    std::thread::yield_now();
                    continue;
                }
                for r in f.records().expect("decode") {
                    read += 1;
                    if r.offset % 32 == 0 {
                        let v = r.value.expect("value");
                        let sent = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
                        let now = origin.elapsed().as_nanos() as u64;
                        record(&mut hist, Duration::from_nanos(now.saturating_sub(sent)));
                    }
                }
                at = f.next_offset();
            }
            (read, hist)
        });
        let start = Instant::now();
        let mut buf = vec![0u8; payload_len.max(8)];
        while start.elapsed() < duration {
            for _ in 0..32 {
                buf[..8].copy_from_slice(&(origin.elapsed().as_nanos() as u64).to_le_bytes());
                side.producer
                    .send("bench", Record::new(buf.clone()))
                    .expect("send");
                produced.fetch_add(1, Ordering::Release);
            }
        }
        side.producer.flush(WAIT).expect("flush");
        done.store(true, Ordering::Release);
        let (read, hist) = consumer.join().expect("consumer");
        m.ops = read;
        m.elapsed = start.elapsed();
        m.latency = hist;
    });
    m
}

/// Runs the stream scenarios.
///
/// # Errors
/// When a Keel stream cannot be created in the temp directory.
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    let redis = match keel_testkit::RedisServer::start() {
        Ok(server) => Some(server),
        Err(e) => {
            report.note(format!(
                "Redis Streams rows skipped: could not start redis-server ({e})"
            ));
            None
        }
    };
    let nats = match nats_side() {
        Ok(side) => Some(side),
        Err(e) => {
            report.note(format!(
                "NATS JetStream rows skipped: could not start nats-server -js ({e})"
            ));
            None
        }
    };
    let mut con = match &redis {
        Some(server) => Some(redis::Client::open(server.url())?.get_connection()?),
        None => None,
    };
    report.note(
        "durability: keel (page cache) = Durability::Never + acks=leader; jetstream = file storage, \
         server-side fsync interval (not per message); redis = no AOF (memory); \
         keel fsync/batch = fdatasync per batch before the ack (stricter than the peer)",
    );
    for (len, label) in SIZES {
        let scenario = format!("publish {label}, 1 producer");
        if !cfg.selected(&scenario) {
            continue;
        }
        let payload = Bytes::from(vec![b'x'; len]);
        let fast = keel_side(&format!("fast{len}"), Durability::Never, Acks::Leader)?;
        let durable = keel_side(
            &format!("fsync{len}"),
            Durability::EveryBatch,
            Acks::Durable,
        )?;
        let mut contenders = vec![
            Contender::keel("keel (page cache)", |_, d| keel_publish(&fast, &payload, d)),
            Contender::keel("keel fsync/batch", |_, d| {
                keel_publish(&durable, &payload, d)
            }),
        ];
        if let Some(side) = nats.as_ref() {
            let p = payload.clone();
            let subject = format!("bench.{len}");
            contenders.push(Contender::peer("nats jetstream (file)", move |_, d| {
                nats_publish(side, &subject, &p, d)
            }));
        }
        if let Some(con) = con.as_mut() {
            let p = payload.clone();
            contenders.push(Contender::peer("redis streams XADD x64", move |_, d| {
                redis_publish(con, &p, d)
            }));
        }
        report.compare(cfg, &scenario, 1, &mut contenders);
    }
    let scenario = "produce -> consume 100 B (keel)";
    if cfg.selected(scenario) {
        let side = keel_side("e2e", Durability::Never, Acks::Leader)?;
        report.compare(
            cfg,
            scenario,
            2,
            &mut [Contender::keel("keel (page cache)", |_, d| {
                keel_end_to_end(&side, 100, d)
            })],
        );
    }
    report.note("Kafka's published single-producer figure for reference: 821k records/s (100 B, 2014 hardware, 3 async replicas)");
    Ok(())
}
