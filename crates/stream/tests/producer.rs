//! The batching producer: linger on the injected clock, batch size, per-key order,
//! backpressure, acks, idempotence counters, bad input.

use std::collections::HashMap;
use std::time::Duration;

use keel_stream::{
    Acks, Durability, MockClock, ProduceError, Producer, Record, Stream, TopicConfig,
    partition_for_key,
};

const WAIT: Duration = Duration::from_secs(20);

fn setup(partitions: u32, durability: Durability) -> (tempfile::TempDir, MockClock, Stream) {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let s = Stream::builder()
        .dir(dir.path())
        .clock(clock.clone())
        .build()
        .unwrap();
    s.create_topic(
        "t",
        TopicConfig::builder()
            .partitions(partitions)
            .durability(durability)
            .build()
            .unwrap(),
    )
    .unwrap();
    (dir, clock, s)
}

#[test]
fn a_partial_batch_waits_for_linger_on_the_clock() {
    let (_d, clock, s) = setup(1, Durability::Never);
    let p = Producer::builder(&s)
        .linger(Duration::from_millis(100))
        .acks(Acks::Leader)
        .build()
        .unwrap();
    let ds: Vec<_> = (0..3)
        .map(|i| p.send("t", Record::new(format!("{i}"))).unwrap())
        .collect();
    p.wake();
    assert!(
        matches!(
            ds[0].wait(Duration::from_millis(30)),
            Err(ProduceError::AckTimeout(_))
        ),
        "sent before linger"
    );
    assert_eq!(s.log("t", 0).unwrap().log_end_offset(), 0);
    clock.advance(Duration::from_millis(100));
    p.wake();
    for (i, d) in ds.iter().enumerate() {
        assert_eq!(d.wait(WAIT).unwrap().offset, Some(i as i64));
    }
    assert_eq!(
        p.stats().batches_written,
        1,
        "the three records went as one batch"
    );
}

#[test]
fn a_full_batch_is_sent_without_waiting_for_linger() {
    let (_d, _clock, s) = setup(1, Durability::Never);
    let p = Producer::builder(&s)
        .linger(Duration::from_secs(3600))
        .batch_bytes(1024)
        .acks(Acks::Leader)
        .build()
        .unwrap();
    let ds: Vec<_> = (0..20)
        .map(|_| p.send("t", Record::new(vec![7u8; 100])).unwrap())
        .collect();
    // The clock never moves: only full batches can have been sent.
    ds[0].wait(WAIT).unwrap();
    let written = p.stats().batches_written;
    assert!(written >= 1);
    // 7 records of ≤ 135 encoded bytes fill a 1024-byte batch (the 8th would overflow it).
    assert!(s.log("t", 0).unwrap().log_end_offset() >= 7);
    p.flush(WAIT).unwrap();
    assert_eq!(s.log("t", 0).unwrap().log_end_offset(), 20);
}

#[test]
fn per_key_order_holds_with_many_sending_threads() {
    let (_d, _clock, s) = setup(4, Durability::Never);
    let p = Producer::builder(&s)
        .linger(Duration::from_millis(1))
        .batch_bytes(2048)
        .acks(Acks::Leader)
        .build()
        .unwrap();
    const THREADS: usize = 4;
    const PER: usize = 500;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let p = &p;
            scope.spawn(move || {
                for i in 0..PER {
                    let key = format!("key-{t}-{}", i % 5);
                    p.send("t", Record::keyed(key, format!("{t}:{i}"))).unwrap();
                }
            });
        }
    });
    p.flush(WAIT).unwrap();
    let mut last: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for part in 0..4 {
        for r in s.fetch("t", part, 0, 64 << 20).unwrap().records().unwrap() {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            assert_eq!(
                partition_for_key(key.as_bytes(), 4),
                part,
                "murmur2 placement"
            );
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            let i: usize = v.split(':').nth(1).unwrap().parse().unwrap();
            if let Some(prev) = last.insert(key.clone(), i) {
                assert!(i > prev, "{key}: {i} after {prev}");
            }
            total += 1;
        }
    }
    assert_eq!(total, THREADS * PER, "every record once");
    assert_eq!(p.stats().duplicate_batches, 0);
}

#[test]
fn a_full_buffer_is_a_typed_error_then_frees_up() {
    let (_d, clock, s) = setup(4, Durability::Never);
    let p = Producer::builder(&s)
        .linger(Duration::from_secs(60))
        .batch_bytes(8192)
        .buffer_bytes(8192)
        .acks(Acks::Leader)
        .build()
        .unwrap();
    // Spread over 4 partitions so no batch fills: the records stay buffered until linger.
    let keys: Vec<String> = (0..4)
        .map(|part| {
            (0..)
                .map(|k| format!("k{k}"))
                .find(|k| partition_for_key(k.as_bytes(), 4) == part)
                .unwrap()
        })
        .collect();
    let mut sent = 0;
    let err = loop {
        match p.send_timeout(
            "t",
            Record::keyed(keys[sent % 4].clone(), vec![0u8; 1000]),
            Duration::ZERO,
        ) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "the buffer never filled");
    };
    assert!(matches!(err, ProduceError::BufferFull(_)), "{err}");
    let st = p.stats();
    assert!(
        st.buffered_bytes <= 8192 && st.max_buffered_bytes <= 8192,
        "{st:?}"
    );
    assert_eq!(st.buffer_full_errors, 1);
    assert_eq!(
        s.log("t", 0).unwrap().log_end_offset(),
        0,
        "nothing sent yet, nothing dropped"
    );
    clock.advance(Duration::from_secs(60));
    p.wake();
    let d = p
        .send_timeout("t", Record::keyed(keys[0].clone(), "after"), WAIT)
        .unwrap();
    p.flush(WAIT).unwrap();
    assert!(d.wait(WAIT).unwrap().offset.is_some());
    let total: i64 = (0..4)
        .map(|part| s.log("t", part).unwrap().log_end_offset())
        .sum();
    assert_eq!(total, sent as i64 + 1);
}

/// A producer 10× faster than its consumer: the log absorbs the difference on disk, the
/// producer's memory stays within its buffer.
#[test]
fn a_fast_producer_and_a_slow_consumer_keep_memory_bounded() {
    let (_d, _clock, s) = setup(1, Durability::Never);
    const BUFFER: usize = 64 << 10;
    let p = Producer::builder(&s)
        .linger(Duration::from_millis(1))
        .batch_bytes(16 << 10)
        .buffer_bytes(BUFFER)
        .acks(Acks::Leader)
        .build()
        .unwrap();
    let mut consumed = 0i64;
    const N: usize = 20_000;
    for i in 0..N {
        p.send("t", Record::new(vec![(i % 251) as u8; 1000]))
            .unwrap();
        if i % 10 == 9 {
            // The consumer reads one record for every ten produced.
            let f = s.fetch("t", 0, consumed, 1).unwrap();
            if let Some(r) = f.records().unwrap().first() {
                assert_eq!(r.offset, consumed);
                consumed += 1;
            }
        }
    }
    p.flush(WAIT).unwrap();
    let st = p.stats();
    eprintln!("backpressure: {st:?}; consumer at {consumed} of {N}");
    assert!(
        st.max_buffered_bytes as usize <= BUFFER,
        "producer memory bounded by its buffer"
    );
    assert!(consumed <= (N / 10) as i64);
    assert_eq!(
        s.log("t", 0).unwrap().log_end_offset(),
        N as i64,
        "nothing dropped"
    );
}

#[test]
fn durable_acks_fsync_and_leader_acks_do_not() {
    let (_d, _clock, s) = setup(1, Durability::Never);
    let p = Producer::builder(&s)
        .linger(Duration::from_millis(1))
        .acks(Acks::Durable)
        .build()
        .unwrap();
    let d = p.send("t", Record::new("a")).unwrap();
    p.flush(WAIT).unwrap();
    d.wait(WAIT).unwrap();
    assert!(
        s.stats().fsyncs >= 1,
        "acks=durable fsyncs even under Durability::Never"
    );
    let before = s.stats().fsyncs;
    let p2 = Producer::builder(&s)
        .linger(Duration::from_millis(1))
        .acks(Acks::Leader)
        .build()
        .unwrap();
    let d = p2.send("t", Record::new("b")).unwrap();
    p2.flush(WAIT).unwrap();
    d.wait(WAIT).unwrap();
    assert_eq!(s.stats().fsyncs, before);
    let p3 = Producer::builder(&s)
        .linger(Duration::from_millis(1))
        .acks(Acks::None)
        .build()
        .unwrap();
    let d = p3.send("t", Record::new("c")).unwrap();
    p3.flush(WAIT).unwrap();
    assert_eq!(d.wait(WAIT).unwrap().offset, None);
    assert_eq!(s.log("t", 0).unwrap().log_end_offset(), 3);
}

#[test]
fn bad_input_and_closed_producer_are_typed_errors() {
    let (_d, _clock, s) = setup(1, Durability::Never);
    assert!(Producer::builder(&s).batch_bytes(0).build().is_err());
    assert!(
        Producer::builder(&s)
            .batch_bytes(1 << 20)
            .buffer_bytes(1024)
            .build()
            .is_err()
    );
    assert!(
        Producer::builder(&s)
            .linger(Duration::ZERO)
            .build()
            .is_err()
    );
    let p = Producer::builder(&s).build().unwrap();
    assert!(matches!(
        p.send("nope", Record::new("x")),
        Err(ProduceError::Rejected(_))
    ));
    assert!(matches!(
        p.send("t", Record::new(vec![0u8; 2 << 20])),
        Err(ProduceError::RecordTooLarge { .. })
    ));
    p.close(WAIT).unwrap();
}

#[test]
fn async_send_waits_for_space_and_acks() {
    let (_d, _clock, s) = setup(2, Durability::Never);
    let p = Producer::builder(&s)
        .linger(Duration::from_millis(1))
        .batch_bytes(1024)
        .buffer_bytes(2048)
        .acks(Acks::Leader)
        .max_block(Duration::from_secs(20))
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut ds = Vec::new();
        for i in 0..200 {
            ds.push(
                p.send_async("t", Record::keyed(format!("k{i}"), vec![1u8; 200]))
                    .await
                    .unwrap(),
            );
        }
        p.flush(WAIT).unwrap(); // the clock is frozen: flush instead of waiting for linger
        for d in ds {
            d.wait_async(WAIT).await.unwrap();
        }
    });
    let total: i64 = (0..2)
        .map(|part| s.log("t", part).unwrap().log_end_offset())
        .sum();
    assert_eq!(total, 200);
    assert!(p.stats().max_buffered_bytes <= 2048);
}
