//! Topics and partition logs: bad input, corruption, retention, rolls, seeks, offsets,
//! idempotent appends.

use std::sync::Arc;
use std::time::Duration;

use keel_stream::batch::encode_batch;
use keel_stream::{
    BuildError, Clock, Durability, MockClock, OffsetSpec, PartitionLog, ProducerInfo, Record,
    Stream, StreamError, TopicConfig,
};

fn stream(dir: &std::path::Path, clock: &MockClock) -> Stream {
    Stream::builder()
        .dir(dir)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn small_segments(partitions: u32) -> TopicConfig {
    TopicConfig::builder()
        .partitions(partitions)
        .segment_bytes(4096)
        .retention(None)
        .durability(Durability::Never)
        .build()
        .unwrap()
}

#[test]
fn bad_input_gets_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let s = stream(dir.path(), &clock);
    assert!(matches!(
        TopicConfig::builder().partitions(0).build(),
        Err(BuildError::ZeroPartitions)
    ));
    assert!(matches!(
        s.create_topic("../x", TopicConfig::default()),
        Err(StreamError::InvalidTopicName(_))
    ));
    assert!(matches!(
        s.create_topic("__internal", TopicConfig::default()),
        Err(StreamError::InvalidTopicName(_))
    ));
    let cfg = TopicConfig::builder()
        .max_batch_bytes(1024)
        .build()
        .unwrap();
    s.create_topic("t", cfg).unwrap();
    // A record larger than the max batch size.
    let big = Record::new(vec![0u8; 2000]);
    assert!(matches!(
        s.append("t", 0, &[big]),
        Err(StreamError::RecordTooLarge { max: 1024, .. })
    ));
    assert!(matches!(
        s.append("t", 0, &[]),
        Err(StreamError::EmptyBatch)
    ));
    assert!(matches!(
        s.append("nope", 0, &[Record::new("x")]),
        Err(StreamError::UnknownTopic(_))
    ));
    assert!(matches!(
        s.append("t", 5, &[Record::new("x")]),
        Err(StreamError::UnknownPartition { partition: 5, .. })
    ));
    // Offsets out of range, both sides.
    s.append("t", 0, &[Record::new("a"), Record::new("b")])
        .unwrap();
    assert!(matches!(
        s.fetch("t", 0, 3, 1 << 20),
        Err(StreamError::OffsetOutOfRange {
            requested: 3,
            earliest: 0,
            latest: 2
        })
    ));
    assert!(matches!(
        s.fetch("t", 0, -1, 1 << 20),
        Err(StreamError::OffsetOutOfRange { .. })
    ));
    assert!(s.fetch("t", 0, 2, 1 << 20).unwrap().is_empty());
    assert!(matches!(
        s.resolve_offset("t", 0, OffsetSpec::At(9)),
        Err(StreamError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        s.commit("g", &[("t".into(), 0, 99)]),
        Err(StreamError::OffsetOutOfRange { .. })
    ));
    // A malformed batch from the network.
    let log = s.log("t", 0).unwrap();
    let mut raw = encode_batch(&[Record::new("x")], 0, None).unwrap();
    raw[30] ^= 1;
    assert!(matches!(
        log.append_batch(raw, false),
        Err(StreamError::CorruptBatch("crc mismatch"))
    ));
    assert!(matches!(
        log.append_batch(vec![1, 2, 3], false),
        Err(StreamError::CorruptBatch(_))
    ));
    assert!(Stream::builder().build().is_err());
    assert!(
        Stream::builder()
            .dir(dir.path())
            .offsets_segment_bytes(0)
            .build()
            .is_err()
    );
}

#[test]
fn corrupt_sealed_segment_is_an_error_on_read_and_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let s = stream(dir.path(), &clock);
    s.create_topic("t", small_segments(1)).unwrap();
    for i in 0..100 {
        s.append(
            "t",
            0,
            &[Record::new(format!("value-{i:04}-{}", "x".repeat(100)))],
        )
        .unwrap();
    }
    let log = s.log("t", 0).unwrap();
    assert!(log.segment_count() > 2);
    let first = log.segment_paths()[0].clone();
    // Flip one byte inside the first record's value: the CRC catches it on read.
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[70] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    let err = s.fetch("t", 0, 0, 1 << 20).unwrap().records().unwrap_err();
    assert!(
        matches!(
            err,
            StreamError::CorruptSegment {
                reason: "crc mismatch",
                position: 0,
                ..
            }
        ),
        "{err}"
    );
    // Break a header inside a sealed segment: opening refuses instead of losing data silently.
    bytes[16] = 7; // magic
    std::fs::write(&first, &bytes).unwrap();
    drop((log, s));
    let err = Stream::builder()
        .dir(dir.path())
        .clock(clock.clone())
        .build()
        .unwrap_err();
    let BuildError::Open(StreamError::CorruptSegment { path, reason, .. }) = err else {
        panic!("{err:?}")
    };
    assert_eq!(path, first);
    assert_eq!(reason, "magic is not 2");
}

#[test]
fn torn_tail_is_truncated_on_open_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let cfg = small_segments(1);
    let open = || PartitionLog::open(dir.path(), cfg.clone(), Arc::new(clock.clone())).unwrap();
    let log = open();
    for i in 0..5 {
        log.append(&[Record::new(format!("r{i}"))]).unwrap();
    }
    let (_, size, path) = log.active_segment();
    drop(log);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(size - 3)
        .unwrap();
    let log = open();
    assert_eq!(log.log_end_offset(), 4, "the torn 5th batch is gone");
    assert_eq!(log.append(&[Record::new("again")]).unwrap().base_offset, 4);
    let recs = log.read(0, 1 << 20).unwrap().records().unwrap();
    let values: Vec<_> = recs.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, vec!["r0", "r1", "r2", "r3", "again"]);
}

#[test]
fn retention_by_size_and_time_deletes_whole_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let s = stream(dir.path(), &clock);
    let by_size = TopicConfig::builder()
        .segment_bytes(4096)
        .retention(None)
        .retention_bytes(Some(8192))
        .build()
        .unwrap();
    s.create_topic("size", by_size).unwrap();
    for _ in 0..200 {
        s.append("size", 0, &[Record::new(vec![1u8; 200])]).unwrap();
    }
    let log = s.log("size", 0).unwrap();
    assert!(log.size_bytes() >= 8192, "never below the retention size");
    assert!(
        log.size_bytes() < 8192 + 2 * 4096,
        "old segments were deleted"
    );
    assert!(log.log_start_offset() > 0);
    assert!(matches!(
        s.fetch("size", 0, 0, 100),
        Err(StreamError::OffsetOutOfRange { .. })
    ));

    let by_time = TopicConfig::builder()
        .segment_bytes(4096)
        .retention(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    s.create_topic("time", by_time).unwrap();
    for _ in 0..60 {
        s.append("time", 0, &[Record::new(vec![1u8; 200])]).unwrap();
    }
    let log = s.log("time", 0).unwrap();
    let before = log.segment_count();
    assert!(before >= 3);
    assert_eq!(log.enforce_retention().unwrap(), 0, "nothing is old yet");
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        log.enforce_retention().unwrap(),
        before - 1,
        "every sealed segment expired, the active one stays"
    );
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        s.append("time", 0, &[Record::new("new")])
            .unwrap()
            .base_offset,
        60
    );
    assert!(s.stats().segments_deleted as usize >= before - 1);
    assert!(s.enforce_retention().is_ok());
}

#[test]
fn segments_roll_by_age_on_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let s = stream(dir.path(), &clock);
    let cfg = TopicConfig::builder()
        .segment_age(Duration::from_secs(10))
        .build()
        .unwrap();
    s.create_topic("t", cfg).unwrap();
    s.append("t", 0, &[Record::new("a")]).unwrap();
    clock.advance(Duration::from_secs(9));
    s.append("t", 0, &[Record::new("b")]).unwrap();
    assert_eq!(s.log("t", 0).unwrap().segment_count(), 1);
    clock.advance(Duration::from_secs(1));
    s.append("t", 0, &[Record::new("c")]).unwrap();
    assert_eq!(s.log("t", 0).unwrap().segment_count(), 2);
    assert_eq!(s.stats().segments_rolled, 1);
}

#[test]
fn offsets_resolve_by_earliest_latest_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let s = stream(dir.path(), &clock);
    s.create_topic("t", small_segments(1)).unwrap();
    for i in 0..50i64 {
        s.append(
            "t",
            0,
            &[
                Record::new("x").with_timestamp(1_000 + i * 10),
                Record::new("y").with_timestamp(1_005 + i * 10),
            ],
        )
        .unwrap();
    }
    assert_eq!(s.resolve_offset("t", 0, OffsetSpec::Earliest).unwrap(), 0);
    assert_eq!(s.resolve_offset("t", 0, OffsetSpec::Latest).unwrap(), 100);
    assert_eq!(
        s.resolve_offset("t", 0, OffsetSpec::Timestamp(0)).unwrap(),
        0
    );
    assert_eq!(
        s.resolve_offset("t", 0, OffsetSpec::Timestamp(1_005))
            .unwrap(),
        1
    );
    assert_eq!(
        s.resolve_offset("t", 0, OffsetSpec::Timestamp(1_006))
            .unwrap(),
        2
    );
    assert_eq!(
        s.resolve_offset("t", 0, OffsetSpec::Timestamp(1_495))
            .unwrap(),
        99
    );
    assert_eq!(
        s.resolve_offset("t", 0, OffsetSpec::Timestamp(9_999))
            .unwrap(),
        100,
        "none: the log end"
    );
}

#[test]
fn committed_offsets_survive_reopen_and_the_offsets_log_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    {
        let s = Stream::builder()
            .dir(dir.path())
            .clock(clock.clone())
            .offsets_segment_bytes(4096)
            .build()
            .unwrap();
        s.create_topic("t", TopicConfig::builder().partitions(2).build().unwrap())
            .unwrap();
        s.append("t", 0, &[Record::new("a"), Record::new("b")])
            .unwrap();
        s.append("t", 1, &[Record::new("c")]).unwrap();
        for _ in 0..500 {
            s.commit("g", &[("t".into(), 0, 1), ("t".into(), 1, 1)])
                .unwrap();
        }
        s.commit("g", &[("t".into(), 0, 2)]).unwrap();
        s.commit("other", &[("t".into(), 1, 0)]).unwrap();
        assert!(
            s.stats().offsets_log_bytes < 3 * 4096,
            "snapshots keep the offsets log short"
        );
    }
    let s = stream(dir.path(), &clock);
    assert_eq!(s.committed("g", "t", 0), Some(2));
    assert_eq!(s.committed("g", "t", 1), Some(1));
    assert_eq!(s.committed("other", "t", 1), Some(0));
    assert_eq!(
        s.committed_groups(),
        vec!["g".to_string(), "other".to_string()]
    );
    let lag = s.lag("g");
    assert_eq!(lag.total, 0);
    assert_eq!(s.lag("other").total, 1);
    assert_eq!(s.delete_group_offsets("other").unwrap(), 1);
    drop(s);
    let s = stream(dir.path(), &clock);
    assert_eq!(s.committed("other", "t", 1), None);
}

#[test]
fn idempotent_retry_is_not_written_twice_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let pid;
    {
        let s = stream(dir.path(), &clock);
        s.create_topic("t", TopicConfig::default()).unwrap();
        pid = s.init_producer_id().unwrap();
        let p = |seq| ProducerInfo {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: seq,
        };
        let a = s
            .append_idempotent("t", 0, &[Record::new("a"), Record::new("b")], p(0), true)
            .unwrap();
        let retry = s
            .append_idempotent("t", 0, &[Record::new("a"), Record::new("b")], p(0), true)
            .unwrap();
        assert!(retry.duplicate);
        assert_eq!(
            (retry.base_offset, retry.last_offset),
            (a.base_offset, a.last_offset)
        );
        // A gap (a lost batch) is refused rather than reordered.
        let gap = s
            .append_idempotent("t", 0, &[Record::new("d")], p(5), true)
            .unwrap_err();
        assert!(matches!(
            gap,
            StreamError::OutOfOrderSequence {
                expected: 2,
                got: 5,
                ..
            }
        ));
        s.append_idempotent("t", 0, &[Record::new("c")], p(2), true)
            .unwrap();
        // An older epoch is fenced once a newer one wrote.
        let newer = ProducerInfo {
            producer_id: pid,
            producer_epoch: 1,
            base_sequence: 0,
        };
        s.append_idempotent("t", 0, &[Record::new("e")], newer, true)
            .unwrap();
        assert!(matches!(
            s.append_idempotent("t", 0, &[Record::new("f")], p(3), true),
            Err(StreamError::ProducerFenced { .. })
        ));
    }
    let s = stream(dir.path(), &clock);
    let retry = ProducerInfo {
        producer_id: pid,
        producer_epoch: 1,
        base_sequence: 0,
    };
    let again = s
        .append_idempotent("t", 0, &[Record::new("e")], retry, true)
        .unwrap();
    assert!(again.duplicate, "producer state was rebuilt from the log");
    assert_eq!(s.log("t", 0).unwrap().log_end_offset(), 4);
    assert!(
        s.init_producer_id().unwrap() > pid,
        "producer ids never repeat"
    );
    assert_eq!(s.stats().duplicate_batches, 1);
}

#[test]
fn readers_run_while_a_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let s = stream(dir.path(), &clock);
    s.create_topic("t", small_segments(1)).unwrap();
    let log = s.log("t", 0).unwrap();
    const N: i64 = 3000;
    std::thread::scope(|scope| {
        let w = scope.spawn(|| {
            for i in 0..N {
                log.append(&[Record::new(i.to_string())]).unwrap();
            }
        });
        for _ in 0..2 {
            scope.spawn(|| {
                let mut next = 0i64;
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while next < N && std::time::Instant::now() < deadline {
                    let f = log.read(next, 4096).unwrap();
                    for r in f.records().unwrap() {
                        assert_eq!(r.offset, next);
                        assert_eq!(r.value.as_deref(), Some(next.to_string().as_bytes()));
                        next += 1;
                    }
                }
                assert_eq!(next, N, "reader saw every record in order");
            });
        }
        w.join().unwrap();
    });
    assert_eq!(log.log_end_offset(), N);
    assert!(clock.now_ms() == 0);
}

#[test]
fn interval_durability_fsyncs_when_the_interval_has_passed_on_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let s = stream(dir.path(), &clock);
    let cfg = TopicConfig::builder()
        .durability(Durability::Interval(Duration::from_millis(500)))
        .build()
        .unwrap();
    s.create_topic("t", cfg).unwrap();
    let first = s.append("t", 0, &[Record::new("a")]).unwrap();
    assert!(!first.synced, "within the interval: no fsync");
    assert_eq!(s.flush_due().unwrap(), 0);
    clock.advance(Duration::from_millis(500));
    assert_eq!(
        s.flush_due().unwrap(),
        1,
        "the timer's flush syncs the pending write"
    );
    assert_eq!(s.flush_due().unwrap(), 0, "nothing left to sync");
    clock.advance(Duration::from_millis(600));
    assert!(
        s.append("t", 0, &[Record::new("b")]).unwrap().synced,
        "an append after the interval syncs itself"
    );
    let never = TopicConfig::builder()
        .durability(Durability::Never)
        .build()
        .unwrap();
    s.create_topic("n", never).unwrap();
    let before = s.stats().fsyncs;
    assert!(!s.append("n", 0, &[Record::new("c")]).unwrap().synced);
    assert_eq!(s.stats().fsyncs, before);
}

/// A batch from outside (a Kafka `Produce`) whose `lastOffsetDelta` disagrees with its record
/// count would move the log end by up to 2^31 per batch; a few of them overflow the segment
/// index's 32-bit offset deltas and reads return the wrong batches. It must be refused.
#[test]
fn append_batch_rejects_an_offset_delta_that_disagrees_with_the_record_count() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let cfg = TopicConfig::builder()
        .durability(Durability::Never)
        .build()
        .unwrap();
    let log = PartitionLog::open(dir.path(), cfg, Arc::new(clock.clone())).unwrap();
    log.append(&[Record::new("first")]).unwrap();
    let mut raw = encode_batch(&[Record::new("x")], 0, None).unwrap();
    raw[23..27].copy_from_slice(&i32::MAX.to_be_bytes()); // lastOffsetDelta
    let crc = crc32c::crc32c(&raw[21..]);
    raw[17..21].copy_from_slice(&crc.to_be_bytes());
    for _ in 0..3 {
        let r = log.append_batch(raw.clone(), false);
        assert!(matches!(r, Err(StreamError::CorruptBatch(_))), "{r:?}");
    }
    assert_eq!(log.log_end_offset(), 1);
    let recs = log.read(0, 1 << 20).unwrap().records().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].value.as_deref(), Some(&b"first"[..]));
}

/// Offsets are stored under `group \0 topic \0 partition`: a group id holding a nul byte was
/// accepted, then skipped on replay — the commit silently vanished at the next restart.
#[test]
fn a_group_id_with_a_nul_byte_is_refused_not_lost_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let s = stream(dir.path(), &clock);
    s.create_topic("t", TopicConfig::default()).unwrap();
    s.append("t", 0, &[Record::new("x")]).unwrap();
    let r = s.commit("a\0b", &[("t".into(), 0, 1)]);
    assert!(
        matches!(
            r,
            Err(StreamError::Group(keel_stream::GroupError::Invalid(_)))
        ),
        "{r:?}"
    );
    assert_eq!(s.committed("a\0b", "t", 0), None);
}

/// The offsets snapshot was cut into 4096-record batches whatever their size: with long keys
/// one chunk passed the internal log's 1 MiB batch limit, and from then on every commit failed
/// (after its own batch was already durable).
#[test]
fn offset_snapshots_with_long_keys_fit_the_batch_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let topic = "t".repeat(249);
    let build = || {
        Stream::builder()
            .dir(dir.path())
            .clock(clock.clone())
            .offsets_segment_bytes(4096)
            .build()
            .unwrap()
    };
    let s = build();
    s.create_topic(
        &topic,
        TopicConfig::builder().partitions(8).build().unwrap(),
    )
    .unwrap();
    for p in 0..8 {
        s.append(&topic, p, &[Record::new("x")]).unwrap();
    }
    let offsets: Vec<(String, u32, i64)> = (0..8).map(|p| (topic.clone(), p, 1)).collect();
    for g in 0..60 {
        let group = format!("{g:04}{}", "g".repeat(2048));
        s.commit(&group, &offsets)
            .unwrap_or_else(|e| panic!("commit {g}: {e}"));
    }
    drop(s);
    let s = build();
    assert_eq!(s.committed_groups().len(), 60);
}

/// A crash inside `create_topic` (directory made, `topic.conf` not yet renamed into place)
/// left a directory that made every later `Stream::open` fail: the topic was never
/// acknowledged, so opening must skip it.
#[test]
fn a_topic_directory_without_its_config_does_not_brick_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    {
        let s = stream(dir.path(), &clock);
        s.create_topic("kept", TopicConfig::default()).unwrap();
        s.append("kept", 0, &[Record::new("x")]).unwrap();
    }
    let orphan = dir.path().join("half-made");
    std::fs::create_dir(&orphan).unwrap();
    std::fs::write(orphan.join("topic.conf.tmp"), "partitions=").unwrap();
    let s = stream(dir.path(), &clock);
    assert_eq!(s.log("kept", 0).unwrap().log_end_offset(), 1);
    assert!(matches!(
        s.log("half-made", 0),
        Err(StreamError::UnknownTopic(_))
    ));
    s.create_topic("half-made", TopicConfig::default()).unwrap();
    s.append("half-made", 0, &[Record::new("y")]).unwrap();
}

/// Idle idempotent producers were only expired when the segment rolled; a partition that
/// rolls rarely (64 MiB / 7 days by default) kept every producer id it ever saw. They now
/// expire on append once a TTL has passed, so the table holds only recently active ids.
#[test]
fn idle_producer_ids_expire_without_a_segment_roll() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let cfg = TopicConfig::builder()
        .durability(Durability::Never)
        .producer_state_ttl(Duration::from_secs(10))
        .build()
        .unwrap();
    let log = PartitionLog::open(dir.path(), cfg, Arc::new(clock.clone())).unwrap();
    for pid in 0..200 {
        let info = ProducerInfo {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
        };
        let raw = encode_batch(&[Record::new("x")], clock.now_ms(), Some(info)).unwrap();
        log.append_batch(raw, false).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(log.segment_count(), 1);
    assert!(log.producer_count() <= 21, "{}", log.producer_count());
    assert!(log.producer_count() >= 10, "{}", log.producer_count());
}

/// Producer ids in batch headers come from clients (a Kafka `Produce`): one carrying
/// `i64::MAX` made the next `Stream::open` overflow computing the next id.
#[test]
fn a_producer_id_of_i64_max_in_the_log_does_not_break_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    {
        let s = stream(dir.path(), &clock);
        s.create_topic("t", TopicConfig::default()).unwrap();
        let info = ProducerInfo {
            producer_id: i64::MAX,
            producer_epoch: 0,
            base_sequence: 0,
        };
        let raw = encode_batch(&[Record::new("x")], 0, Some(info)).unwrap();
        s.log("t", 0).unwrap().append_batch(raw, false).unwrap();
    }
    let s = Stream::builder()
        .dir(dir.path())
        .clock(clock.clone())
        .build();
    let s = s.unwrap();
    assert_eq!(s.log("t", 0).unwrap().log_end_offset(), 1);
    let r = s.init_producer_id();
    assert!(r.is_ok() || matches!(r, Err(StreamError::Io(_))), "{r:?}");
}
