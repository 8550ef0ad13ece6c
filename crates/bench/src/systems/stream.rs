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
//! - **produce → consume** (100 B and 1 KB, page-cache durability as above): a producer and
//!   a consumer running at once; throughput is records consumed per second of the round,
//!   latency is send → the consumer reading the record (one in 32 timed, from a send
//!   timestamp carried in the payload). Keel: a producer thread and a thread polling
//!   `Log::read`. JetStream: acked publishes (256 outstanding) and a pull consumer
//!   (`AckPolicy::None`, `messages()`), fresh per round on its own subject. Redis Streams:
//!   `XADD` pipelined 64 at a time on one connection, `XREADGROUP … NOACK COUNT 512 BLOCK 100`
//!   on another, a fresh stream and group per round (deleted afterwards). No side acks
//!   per consumed message.
//!
//! - **broker produce** (100 B and 1 KB, over TCP): `keel-stream-broker` started in-process
//!   on 127.0.0.1:0 over a scratch directory with `Durability::Never` (page cache, the match
//!   for JetStream file storage's interval fsync), driven by its blocking
//!   [`keel_stream_broker::client::Client`]: produce requests of one 64-record v2 batch,
//!   `acks=-1`, one in flight; latency is the request round trip. Beside it JetStream's
//!   acked publish as above (one message per publish, 256 outstanding).
//! - **broker fetch** (Keel only): 1 MiB fetch requests over a pre-filled partition
//!   (20k records), wrapping to the start; throughput is records decoded by the client.
//!
//! Not here yet: a JetStream peer for broker fetch; broker produce → consume latency.

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

/// Nanoseconds since `origin`, written into the first 8 bytes of an end-to-end payload.
fn stamp(buf: &mut [u8], origin: Instant) {
    buf[..8].copy_from_slice(&(origin.elapsed().as_nanos() as u64).to_le_bytes());
}

/// Send → read latency of a payload stamped by [`stamp`].
fn since_stamp(payload: &[u8], origin: Instant) -> Duration {
    let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let now = origin.elapsed().as_nanos() as u64;
    Duration::from_nanos(now.saturating_sub(sent))
}

/// JetStream produce → consume: acked publishes (up to 256 outstanding) while a pull consumer
/// (`AckPolicy::None`, fresh per round, filtered to the round's own subject) reads them;
/// latency = publish → the consumer receiving the message (one in 32 timed).
fn nats_end_to_end(
    side: &NatsSide,
    round: u64,
    payload_len: usize,
    duration: Duration,
) -> Measurement {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    use futures::StreamExt;
    let subject = format!("bench.e2e.{payload_len}.{round}");
    side.rt.block_on(async {
        let stream = side.js.get_stream("BENCH").await.expect("stream");
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: subject.clone(),
                ack_policy: AckPolicy::None,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let origin = Instant::now();
        let produced = std::sync::Arc::new(AtomicU64::new(u64::MAX));
        let target = produced.clone();
        let reader = tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut read = 0u64;
            while read < target.load(Ordering::Acquire) {
                let next = tokio::time::timeout(WAIT, messages.next()).await;
                let Ok(Some(Ok(msg))) = next else {
                    panic!("jetstream consumer stalled after {read} messages");
                };
                if read % 32 == 0 {
                    record(&mut hist, since_stamp(&msg.payload, origin));
                }
                read += 1;
            }
            (read, hist)
        });
        let mut window = VecDeque::with_capacity(256);
        let mut buf = vec![0u8; payload_len.max(8)];
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            stamp(&mut buf, origin);
            let ack = side
                .js
                .publish(subject.clone(), Bytes::copy_from_slice(&buf))
                .await
                .expect("publish");
            window.push_back(ack);
            sent += 1;
            if window.len() >= 256 {
                window.pop_front().expect("non-empty").await.expect("ack");
            }
        }
        for ack in window {
            ack.await.expect("ack");
        }
        produced.store(sent, Ordering::Release);
        let (read, hist) = tokio::time::timeout(WAIT, reader)
            .await
            .expect("consumer finished")
            .expect("consumer task");
        let mut m = Measurement::new();
        m.ops = read;
        m.elapsed = start.elapsed();
        m.latency = hist;
        m
    })
}

/// The records of one `XREADGROUP` reply (RESP2: `[[key, [[id, [field, value]], …]]]`), as the
/// value of each entry's first field.
fn xread_values(reply: redis::Value) -> Vec<Vec<u8>> {
    use redis::Value;
    let mut out = Vec::new();
    let Value::Array(streams) = reply else {
        return out;
    };
    for s in streams {
        let Value::Array(mut kv) = s else { continue };
        let Some(Value::Array(entries)) = kv.pop() else {
            continue;
        };
        for e in entries {
            let Value::Array(mut e) = e else { continue };
            if let Some(Value::Array(mut fields)) = e.pop()
                && let Some(Value::BulkString(v)) = fields.pop()
            {
                out.push(v);
            }
        }
    }
    out
}

/// Redis Streams produce → consume: `XADD` pipelined 64 at a time on one connection while
/// another connection reads with `XREADGROUP … NOACK COUNT 512 BLOCK 100` (a fresh stream and
/// group per round, deleted after it); latency = send → read (one in 32 timed).
fn redis_end_to_end(
    producer: &mut redis::Connection,
    consumer: &mut redis::Connection,
    round: u64,
    payload_len: usize,
    duration: Duration,
) -> Measurement {
    let key = format!("e2e.{payload_len}.{round}");
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query::<()>(producer)
        .expect("XGROUP CREATE");
    let origin = Instant::now();
    let produced = AtomicU64::new(u64::MAX);
    let mut m = Measurement::new();
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut hist = new_histogram();
            let mut read = 0u64;
            let deadline = Instant::now() + duration + WAIT;
            while read < produced.load(Ordering::Acquire) {
                assert!(
                    Instant::now() < deadline,
                    "redis consumer stalled after {read}"
                );
                let reply: redis::Value = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg("c")
                    .arg("COUNT")
                    .arg(512)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("NOACK")
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(">")
                    .query(consumer)
                    .expect("XREADGROUP");
                for v in xread_values(reply) {
                    if read % 32 == 0 {
                        record(&mut hist, since_stamp(&v, origin));
                    }
                    read += 1;
                }
            }
            (read, hist)
        });
        let mut buf = vec![0u8; payload_len.max(8)];
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            let mut pipe = redis::pipe();
            for _ in 0..PIPELINE {
                stamp(&mut buf, origin);
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("v")
                    .arg(&buf[..])
                    .ignore();
            }
            pipe.query::<()>(producer).expect("XADD pipeline");
            sent += PIPELINE as u64;
        }
        produced.store(sent, Ordering::Release);
        let (read, hist) = reader.join().expect("redis consumer");
        m.ops = read;
        m.elapsed = start.elapsed();
        m.latency = hist;
    });
    let _ = redis::cmd("DEL").arg(&key).query::<()>(producer);
    m
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
                        record(&mut hist, since_stamp(&v, origin));
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
                stamp(&mut buf, origin);
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

/// Records per produce request to the broker (one v2 batch), like Redis's pipeline depth.
const BROKER_BATCH: usize = 64;

/// The Keel broker on 127.0.0.1:0 over a scratch directory, on its own 1-worker runtime.
struct BrokerSide {
    _dir: Scratch,
    rt: tokio::runtime::Runtime,
    handle: Option<keel_stream_broker::BrokerHandle>,
    client: keel_stream_broker::client::Client,
}

impl Drop for BrokerSide {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}

fn broker_side(tag: &str, durability: Durability) -> anyhow::Result<BrokerSide> {
    let dir = Scratch::new(tag)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let handle = rt.block_on(
        keel_stream_broker::Broker::builder()
            .listen("127.0.0.1:0".parse()?)
            .data_dir(&dir.0)
            .durability(durability)
            .build()?
            .start(),
    )?;
    let mut client = keel_stream_broker::client::Client::connect(handle.local_addr())?;
    client.create_topic("bench", 1)?;
    Ok(BrokerSide {
        _dir: dir,
        rt,
        handle: Some(handle),
        client,
    })
}

fn broker_batch(payload: &Bytes) -> Bytes {
    let recs = vec![Record::new(payload.clone()); BROKER_BATCH];
    Bytes::from(keel_stream::batch::encode_batch(&recs, 0, None).expect("encode batch"))
}

/// Blocking produce requests (acks=-1), one in flight; latency = request round trip.
fn broker_produce(side: &mut BrokerSide, batch: &Bytes, duration: Duration) -> Measurement {
    let mut m = Measurement::new();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        let t = Instant::now();
        side.client
            .produce("bench", 0, batch.clone(), -1)
            .expect("produce");
        record(&mut m.latency, t.elapsed());
        sent += BROKER_BATCH as u64;
    }
    m.ops = sent;
    m.elapsed = start.elapsed();
    m
}

/// Fetch requests (1 MiB) over a pre-filled partition, wrapping to offset 0 at the end;
/// throughput = records decoded by the client; latency = request round trip.
fn broker_fetch(side: &mut BrokerSide, duration: Duration) -> Measurement {
    let mut m = Measurement::new();
    let start = Instant::now();
    let mut read = 0u64;
    let mut at = 0i64;
    while start.elapsed() < duration {
        let t = Instant::now();
        let (bytes, hw) = side.client.fetch("bench", 0, at, 1 << 20).expect("fetch");
        record(&mut m.latency, t.elapsed());
        for b in keel_stream::batch::split_batches(&bytes) {
            let recs = keel_stream::batch::decode_batch(&b.expect("batch")).expect("decode");
            read += recs.len() as u64;
            if let Some(last) = recs.last() {
                at = last.offset + 1;
            }
        }
        if at >= hw {
            at = 0;
        }
    }
    m.ops = read;
    m.elapsed = start.elapsed();
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
    let mut con2 = match &redis {
        Some(server) => Some(redis::Client::open(server.url())?.get_connection()?),
        None => None,
    };
    report.note(
        "produce -> consume: no per-message consumer ack on any side (keel reads the log, \
         jetstream pull consumer with AckPolicy::None, redis XREADGROUP NOACK); \
         throughput = records consumed / round time; latency = send -> consumer read, 1 in 32 timed",
    );
    for (len, label) in SIZES {
        let scenario = format!("produce -> consume {label}, page-cache durability");
        if !cfg.selected(&scenario) {
            continue;
        }
        let side = keel_side(&format!("e2e{len}"), Durability::Never, Acks::Leader)?;
        let mut contenders = vec![Contender::keel("keel (page cache)", |_, d| {
            keel_end_to_end(&side, len, d)
        })];
        if let Some(side) = nats.as_ref() {
            let mut round = 0u64;
            contenders.push(Contender::peer(
                "nats jetstream (file) pull",
                move |_, d| {
                    round += 1;
                    nats_end_to_end(side, round, len, d)
                },
            ));
        }
        if let (Some(p), Some(c)) = (con.as_mut(), con2.as_mut()) {
            contenders.push(Contender::peer("redis streams XADD x64 / XREADGROUP", {
                let mut round = 0u64;
                move |_, d| {
                    round += 1;
                    redis_end_to_end(p, c, round, len, d)
                }
            }));
        }
        report.compare(cfg, &scenario, 2, &mut contenders);
    }
    for (len, label) in SIZES {
        let scenario = format!("broker produce {label} acks=all over TCP, page-cache durability");
        if !cfg.selected(&scenario) {
            continue;
        }
        let payload = Bytes::from(vec![b'x'; len]);
        let batch = broker_batch(&payload);
        let mut broker = broker_side(&format!("broker{len}"), Durability::Never)?;
        let mut contenders = vec![Contender::keel("keel broker (page cache) x64", |_, d| {
            broker_produce(&mut broker, &batch, d)
        })];
        if let Some(side) = nats.as_ref() {
            let p = payload.clone();
            let subject = format!("bench.broker.{len}");
            contenders.push(Contender::peer("nats jetstream (file)", move |_, d| {
                nats_publish(side, &subject, &p, d)
            }));
        }
        report.compare(cfg, &scenario, 1, &mut contenders);
    }
    for (len, label) in SIZES {
        let scenario = format!("broker fetch {label} over TCP (keel)");
        if !cfg.selected(&scenario) {
            continue;
        }
        let payload = Bytes::from(vec![b'x'; len]);
        let batch = broker_batch(&payload);
        let mut broker = broker_side(&format!("fetch{len}"), Durability::Never)?;
        for _ in 0..(20_000 / BROKER_BATCH) {
            broker.client.produce("bench", 0, batch.clone(), -1)?;
        }
        report.compare(
            cfg,
            &scenario,
            1,
            &mut [Contender::keel("keel broker 1 MiB fetches", |_, d| {
                broker_fetch(&mut broker, d)
            })],
        );
    }
    report.note(
        "broker: keel-stream-broker in-process on 127.0.0.1:0 (temp dir, Durability::Never: \
         written to the page cache, fsync left to the OS — the match for JetStream file storage, \
         which fsyncs on its own interval), driven by its blocking client: one produce request \
         of 64 records (one v2 batch) in flight, acks=-1; jetstream: one message per acked publish, \
         256 outstanding. Broker fetch has no peer row yet (no JetStream fetch-over-TCP scenario)",
    );
    report.note("Kafka's published single-producer figure for reference: 821k records/s (100 B, 2014 hardware, 3 async replicas)");
    Ok(())
}
