//! Tour scenario for `keel-stream`: order events over 8 partitions through the batching,
//! idempotent producer; a consumer group of 3 in which one member dies and one joins
//! (cooperative-sticky rebalancing, timeline of who owned what), a poison record sent to the
//! dead-letter topic, lag over time; then a torn write recovered on reopen.
//!
//! The stream's clock is a mock the scenario advances one second per round, so session
//! timeouts happen on schedule without waiting; the producer's linger runs on the real clock.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use keel_stream::{
    Acks, DeadLetterPolicy, Durability, GroupConfig, GroupConsumer, HEADER_ERROR, Handled,
    MockClock, Producer, RebalanceProtocol, Record, Stream, SystemClock, TopicConfig,
    TopicPartition,
};

use super::{Chart, SummaryRow, SystemReport, Table, Tour, latency_histogram};
use crate::report::charts::{Series, line_chart};

const PARTITIONS: u32 = 8;
const CUSTOMERS: u64 = 500;
const WAIT: Duration = Duration::from_secs(60);

/// What the parts share.
struct Shared {
    dir: PathBuf,
    clock: MockClock,
    stream: Option<Stream>,
    /// Records acknowledged by the producer, per partition: the log end after producing.
    acked: u64,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stream = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Shared {
    fn stream(&self) -> anyhow::Result<&Stream> {
        self.stream
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("stream not open"))
    }
}

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::for_system(
        "stream",
        "An order service appends order events keyed by customer to a topic of 8 partitions \
         (fsync per batch, acks = durable). A consumer group of 3 processes them; member c2 \
         crashes mid-batch and is noticed by its session timeout, member c4 joins later \
         (cooperative-sticky). One poison event fails processing and goes to the dead-letter \
         topic. Then a torn write is left at the end of a segment and the stream reopens. Finally \
         the same kind of workload goes over TCP through the Kafka-protocol broker on loopback.",
    );
    let dir = std::env::temp_dir().join(format!("keel-tour-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let clock = MockClock::new(1_700_000_000_000);
    let group = GroupConfig::builder()
        .session_timeout(Duration::from_secs(10))
        .protocol(RebalanceProtocol::Cooperative)
        .build()?;
    let stream = Stream::builder()
        .dir(&dir)
        .clock(clock.clone())
        .group_config(group)
        .build()?;
    let topic = TopicConfig::builder()
        .partitions(PARTITIONS)
        .durability(Durability::EveryBatch)
        .build()?;
    stream.create_topic("orders", topic)?;
    stream.create_topic("orders.dlq", TopicConfig::default())?;
    let mut shared = Shared {
        dir,
        clock,
        stream: Some(stream),
        acked: 0,
    };
    tour.run_parts(
        &mut report,
        &mut shared,
        &[
            ("produce order events", produce),
            ("consumer group", consume),
            ("torn write recovery", recover),
            ("broker on loopback", broker),
        ],
    )?;
    Ok(report)
}

fn order(customer: u64, seq: u64) -> Record {
    Record::keyed(
        format!("customer-{customer}"),
        format!("{seq}:order placed"),
    )
}

/// Produces `n` events (customer round-robin, per-customer sequence) and returns the
/// send → ack latency histogram (every 16th record timed).
fn produce_events(
    producer: &Producer,
    seqs: &mut HashMap<u64, u64>,
    n: u64,
    latency: &mut hdrhistogram::Histogram<u64>,
) -> anyhow::Result<u64> {
    let mut sampled = Vec::new();
    for i in 0..n {
        let customer = (i * 7919) % CUSTOMERS;
        let seq = seqs.entry(customer).or_insert(0);
        *seq += 1;
        let d = producer.send("orders", order(customer, *seq))?;
        if i % 16 == 0 {
            sampled.push((Instant::now(), d));
        }
    }
    producer.flush(WAIT)?;
    for (t, d) in &sampled {
        d.wait(WAIT)?;
        let _ = latency.record((t.elapsed().as_nanos() as u64).max(1));
    }
    Ok(n)
}

fn produce(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let stream = shared.stream()?;
    let n = tour.size(20_000u64, 100_000);
    let producer = Producer::builder(stream)
        .linger(Duration::from_millis(2))
        .batch_bytes(32 << 10)
        .buffer_bytes(4 << 20)
        .acks(Acks::Durable)
        .clock(SystemClock)
        .build()?;
    let bar = tour.spinner("stream: producing");
    let mut latency = latency_histogram();
    let mut seqs = HashMap::new();
    let start = Instant::now();
    produce_events(&producer, &mut seqs, n, &mut latency)?;
    // The poison event.
    producer
        .send("orders", Record::keyed("customer-poison", "POISON"))?
        .wait(WAIT)?;
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    let stats = producer.stats();
    let s = stream.stats();
    let in_log: i64 = (0..PARTITIONS)
        .map(|p| stream.log("orders", p).map(|l| l.log_end_offset()))
        .sum::<Result<i64, _>>()?;
    shared.acked = n + 1;
    report.summary.push(SummaryRow::from_histogram(
        "produce, acks=durable (fsync per batch), send → ack",
        "records/s",
        n + 1,
        elapsed,
        &latency,
    ));
    report.check(
        "every acknowledged record is in the log once",
        in_log as u64 == n + 1 && stats.duplicate_batches == 0 && stats.records_failed == 0,
        format!(
            "{} acknowledged, {in_log} in the log, {} duplicate batches",
            n + 1,
            stats.duplicate_batches
        ),
    );
    report.check(
        "batching amortised the fsync",
        s.fsyncs < (n + 1) / 10,
        format!(
            "{} records in {} batches, {} fsyncs",
            n + 1,
            stats.batches_written,
            s.fsyncs
        ),
    );
    Ok(())
}

#[derive(Default)]
struct Observed {
    /// (partition, offset) → deliveries.
    seen: HashMap<(u32, i64), u32>,
    /// customer → highest sequence processed.
    last_seq: HashMap<String, u64>,
    order_violations: u64,
    redelivered: u64,
    committed: BTreeMap<u32, i64>,
    commits_backwards: u64,
    dead_lettered: Vec<(u32, i64)>,
}

fn consume(tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let stream = shared.stream()?.clone();
    let clock = shared.clock.clone();
    let dlq = DeadLetterPolicy::new("orders.dlq", 3)?;
    let member = |id: &str| {
        GroupConsumer::builder(&stream, "billing")
            .subscribe(["orders"])
            .instance_id(id)
            .build()
    };
    let mut members: Vec<(String, GroupConsumer)> = vec![
        ("c1".into(), member("c1")?),
        ("c2".into(), member("c2")?),
        ("c3".into(), member("c3")?),
    ];
    let mut obs = Observed::default();
    let mut timeline: Vec<(u32, BTreeMap<TopicPartition, String>)> = Vec::new();
    let mut lag_points = Vec::new();
    let mut events = Table::new(
        "Group timeline",
        &[
            "round (s)",
            "event",
            "generation",
            "owners (partition→member)",
        ],
    );
    let mut poll_latency = latency_histogram();
    let mut processed = 0u64;
    let (kill_round, join_round) = (4u32, 20u32);
    let mut join_revocations = None;
    let mut lost_on_crash = 0usize;
    let mut before_join = BTreeMap::new();
    let mut moved_on_join = 0usize;
    let mut revocations_before = 0;
    let start = Instant::now();
    let bar = tour.progress("stream: consumer group", shared.acked);
    let more = tour.size(5_000u64, 20_000);
    for round in 0..400u32 {
        let owned = owners(&stream);
        if round == kill_round {
            // c2 crashes after polling a batch, before committing it.
            if let Some(i) = members.iter().position(|(n, _)| n == "c2") {
                let (_, mut c2) = members.remove(i);
                let lost = c2.poll(200)?.len();
                lost_on_crash = lost;
                c2.abandon();
                events.row(vec![
                    round.to_string(),
                    format!("c2 crashes holding {lost} uncommitted records"),
                    generation(&stream),
                    fmt_owners(&owned),
                ]);
            }
        }
        if round == kill_round + 2 {
            // More orders arrive while the group is one member short.
            let producer = Producer::builder(&stream)
                .linger(Duration::from_millis(2))
                .clock(SystemClock)
                .build()?;
            // Continue every customer's sequence after the last one produced.
            let mut seqs = last_produced(&stream)?;
            let mut h = latency_histogram();
            produce_events(&producer, &mut seqs, more, &mut h)?;
            shared.acked += more;
            bar.set_length(shared.acked);
        }
        if round == join_round {
            before_join = owned.clone();
            revocations_before = stream.coordinator().revocations();
            members.push(("c4".into(), member("c4")?));
            events.row(vec![
                round.to_string(),
                "c4 joins".into(),
                generation(&stream),
                fmt_owners(&owned),
            ]);
        }
        for (_, c) in &mut members {
            let t = Instant::now();
            let batch = c.poll(500)?;
            let _ = poll_latency.record((t.elapsed().as_nanos() as u64).max(1));
            for r in &batch {
                let delivered = obs.seen.entry((r.partition, r.record.offset)).or_insert(0);
                *delivered += 1;
                if *delivered > 1 {
                    obs.redelivered += 1;
                    continue;
                }
                let handled = dlq.process(&stream, r, |r| {
                    process(r, &mut obs.last_seq, &mut obs.order_violations)
                })?;
                if let Handled::DeadLettered { partition, offset } = handled {
                    obs.dead_lettered.push((partition, offset));
                }
                processed += 1;
            }
            c.commit()?;
        }
        for p in 0..PARTITIONS {
            if let Some(o) = stream.committed("billing", "orders", p) {
                let prev = obs.committed.insert(p, o).unwrap_or(0);
                obs.commits_backwards += u64::from(o < prev);
            }
        }
        let after = owners(&stream);
        if after != owned && round != join_round {
            events.row(vec![
                round.to_string(),
                "assignment changed".into(),
                generation(&stream),
                fmt_owners(&after),
            ]);
        }
        if round > join_round
            && join_revocations.is_none()
            && after.values().filter(|m| m.starts_with("c4")).count() > 0
        {
            let settled = after.len() == PARTITIONS as usize
                && after
                    .values()
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    == members.len();
            if settled {
                join_revocations = Some(stream.coordinator().revocations() - revocations_before);
                moved_on_join = before_join
                    .iter()
                    .filter(|(tp, m)| after.get(*tp) != Some(*m))
                    .count();
            }
        }
        timeline.push((round, after));
        let lag = stream.lag("billing").total;
        lag_points.push((f64::from(round), lag as f64));
        bar.set_position(processed);
        clock.advance(Duration::from_secs(1));
        if round > join_round + 3 && lag == 0 && join_revocations.is_some() {
            break;
        }
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    for (_, c) in members {
        c.close()?;
    }
    report.summary.push(SummaryRow::from_histogram(
        "group consume + process + commit (poll latency)",
        "records/s",
        processed,
        elapsed,
        &poll_latency,
    ));
    let mut missing = 0u64;
    for p in 0..PARTITIONS {
        let end = stream.log("orders", p)?.log_end_offset();
        missing += (0..end)
            .filter(|o| !obs.seen.contains_key(&(p, *o)))
            .count() as u64;
    }
    report.check(
        "every acknowledged record consumed at least once",
        missing == 0 && obs.seen.len() as u64 == shared.acked,
        format!(
            "{} acknowledged, {} distinct consumed, {missing} missing; the {lost_on_crash} records c2 held \
             uncommitted when it crashed were consumed again by their new owners; {} duplicate deliveries",
            shared.acked,
            obs.seen.len(),
            obs.redelivered
        ),
    );
    report.check(
        "per-key order held",
        obs.order_violations == 0,
        format!(
            "{} customers, {} out-of-order or gapped events",
            obs.last_seq.len(),
            obs.order_violations
        ),
    );
    report.check(
        "committed offsets never went backwards",
        obs.commits_backwards == 0,
        format!(
            "{} partitions committed, {} backward commits",
            obs.committed.len(),
            obs.commits_backwards
        ),
    );
    let s = stream.stats();
    report.check(
        "c2's crash noticed by its session timeout",
        s.evictions == 1,
        format!(
            "{} evictions, {} rebalances in total",
            s.evictions, s.rebalances
        ),
    );
    report.check(
        "cooperative rebalance revoked only moved partitions",
        join_revocations.is_some_and(|r| r as usize == moved_on_join && moved_on_join > 0),
        format!(
            "c4's join moved {moved_on_join} partitions and revoked {:?}",
            join_revocations
        ),
    );
    let dead = match obs.dead_lettered.first() {
        Some(&(p, o)) => stream
            .fetch("orders.dlq", p, o, 1 << 16)?
            .records()?
            .into_iter()
            .next(),
        None => None,
    };
    let error = dead
        .as_ref()
        .and_then(|r| r.headers.iter().find(|h| h.key == HEADER_ERROR))
        .and_then(|h| h.value.clone())
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    report.check(
        "the poison record went to the dead-letter topic with its error",
        obs.dead_lettered.len() == 1 && error.is_some(),
        format!(
            "{} dead letters; error header {:?}",
            obs.dead_lettered.len(),
            error
        ),
    );
    report.check(
        "final lag is 0",
        stream.lag("billing").total == 0,
        format!("lag {}", stream.lag("billing").total),
    );
    report.tables.push(events);
    // Timeline chart: one line per partition, y = the member that owned it.
    let names = ["c1", "c2", "c3", "c4"];
    let series: Vec<Series> = (0..PARTITIONS)
        .map(|p| {
            let tp = TopicPartition::new("orders", p);
            let pts = timeline
                .iter()
                .map(|(r, o)| {
                    let m = o.get(&tp).map_or(0.0, |m| {
                        names
                            .iter()
                            .position(|n| m.starts_with(n))
                            .map_or(0.0, |i| i as f64 + 1.0)
                    });
                    // A small offset per partition keeps overlapping lines visible.
                    (f64::from(*r), m + f64::from(p) * 0.03)
                })
                .collect();
            Series::new(format!("p{p}"), pts)
        })
        .collect();
    report.charts.push(Chart::new(
        "Who owned which partition",
        "One line per partition; y is the owning member (1 = c1 … 4 = c4, 0 = nobody). c2 crashes at \
         round 4 and is removed after the 10 s session timeout; its partitions go to c1 and c3. c4 joins \
         at round 20: cooperative-sticky moves only the partitions it takes.",
        line_chart("Partition ownership over time", "round (s of the stream's clock)", "member", &series)?,
    ));
    report.charts.push(Chart::new(
        "Consumer lag",
        "Total lag of the group (log end − committed offset, summed over partitions), as the log reports it. \
         It rises when new orders arrive while the group is one member short and falls to 0.",
        line_chart("Group lag over time", "round (s)", "records behind", &[Series::new("billing", lag_points)])?,
    ));
    Ok(())
}

/// The consumer's business logic: checks per-key order; fails on the poison event.
fn process(
    r: &keel_stream::ConsumedRecord,
    last_seq: &mut HashMap<String, u64>,
    violations: &mut u64,
) -> Result<(), String> {
    let value = r.record.value.as_deref().unwrap_or_default();
    if value == b"POISON" {
        return Err("unparseable order event".into());
    }
    let key = String::from_utf8_lossy(r.record.key.as_deref().unwrap_or_default()).into_owned();
    let seq: u64 = std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.split(':').next())
        .and_then(|s| s.parse().ok())
        .ok_or("bad event")?;
    let last = last_seq.entry(key).or_insert(0);
    if seq != *last + 1 {
        *violations += 1;
    }
    *last = (*last).max(seq);
    Ok(())
}

/// Highest sequence produced per customer (read back from the log).
fn last_produced(stream: &Stream) -> anyhow::Result<HashMap<u64, u64>> {
    let mut out = HashMap::new();
    for p in 0..PARTITIONS {
        let mut at = 0;
        loop {
            let f = stream.fetch("orders", p, at, 1 << 20)?;
            if f.is_empty() {
                break;
            }
            for r in f.records()? {
                let key =
                    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
                let Some(c) = key
                    .strip_prefix("customer-")
                    .and_then(|c| c.parse::<u64>().ok())
                else {
                    continue;
                };
                let seq = std::str::from_utf8(r.value.as_deref().unwrap_or_default())
                    .ok()
                    .and_then(|v| v.split(':').next())
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                let e = out.entry(c).or_insert(0);
                *e = (*e).max(seq);
            }
            at = f.next_offset();
        }
    }
    Ok(out)
}

fn owners(stream: &Stream) -> BTreeMap<TopicPartition, String> {
    stream
        .coordinator()
        .describe("billing")
        .map(|(_, members)| {
            members
                .into_iter()
                .flat_map(|m| {
                    let name = m.instance_id.unwrap_or(m.member_id);
                    m.owned.into_iter().map(move |tp| (tp, name.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn generation(stream: &Stream) -> String {
    stream
        .coordinator()
        .describe("billing")
        .map_or("-".into(), |(g, _)| g.to_string())
}

fn fmt_owners(o: &BTreeMap<TopicPartition, String>) -> String {
    o.iter()
        .map(|(tp, m)| format!("{}→{m}", tp.partition))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same kind of workload over TCP through `keel-stream-broker` (see `tour/stream_broker.rs`).
fn broker(tour: &Tour, _shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    super::stream_broker::broker_part(tour, &mut (), report)
}

fn recover(_tour: &Tour, shared: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let stream = shared
        .stream
        .take()
        .ok_or_else(|| anyhow::anyhow!("stream not open"))?;
    let ends: Vec<i64> = (0..PARTITIONS)
        .map(|p| stream.log("orders", p).map(|l| l.log_end_offset()))
        .collect::<Result<_, _>>()?;
    let (_, _, path) = stream.log("orders", 0)?.active_segment();
    drop(stream);
    // A crash in the middle of writing a batch: half of a valid batch at the end of the file.
    let torn = keel_stream::batch::encode_batch(&[Record::new(vec![7u8; 200])], 0, None)?;
    let half = &torn[..torn.len() / 2];
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
        f.write_all(half)?;
    }
    let start = Instant::now();
    let stream = Stream::builder()
        .dir(&shared.dir)
        .clock(shared.clock.clone())
        .build()?;
    let open_time = start.elapsed();
    let after: Vec<i64> = (0..PARTITIONS)
        .map(|p| stream.log("orders", p).map(|l| l.log_end_offset()))
        .collect::<Result<_, _>>()?;
    let truncated = stream.stats().recovered_truncated_bytes;
    report.check(
        "torn write truncated on reopen, 0 acknowledged records lost",
        after == ends
            && truncated == half.len() as u64
            && stream.committed("billing", "orders", 0) == Some(ends[0]),
        format!(
            "{} torn bytes cut; log ends {:?} before and after; reopen took {:.1} ms",
            truncated,
            after,
            open_time.as_secs_f64() * 1e3
        ),
    );
    shared.stream = Some(stream);
    Ok(())
}
