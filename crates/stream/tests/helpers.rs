//! Dead-letter policy and the deduplicating idempotent-consumer helper.

use keel_stream::{
    DeadLetterPolicy, Deduplicator, GroupConsumer, HEADER_ATTEMPTS, HEADER_ERROR, HEADER_OFFSET,
    HEADER_TOPIC, Handled, MockClock, Record, Stream, TopicConfig,
};

fn setup() -> (tempfile::TempDir, Stream) {
    let dir = tempfile::tempdir().unwrap();
    let s = Stream::builder()
        .dir(dir.path())
        .clock(MockClock::new(0))
        .build()
        .unwrap();
    s.create_topic(
        "orders",
        TopicConfig::builder().partitions(2).build().unwrap(),
    )
    .unwrap();
    s.create_topic("orders.dlq", TopicConfig::default())
        .unwrap();
    (dir, s)
}

#[test]
fn a_poison_record_goes_to_the_dead_letter_topic_with_error_headers() {
    let (_d, s) = setup();
    s.append(
        "orders",
        0,
        &[
            Record::keyed("a", "ok-1"),
            Record::keyed("a", "poison"),
            Record::keyed("a", "ok-2"),
        ],
    )
    .unwrap();
    let dlq = DeadLetterPolicy::new("orders.dlq", 3).unwrap();
    let mut c = GroupConsumer::builder(&s, "g")
        .subscribe(["orders"])
        .build()
        .unwrap();
    let mut calls = 0;
    let mut outcomes = Vec::new();
    for r in c.poll(10).unwrap() {
        let out = dlq
            .process(&s, &r, |r| {
                calls += 1;
                if r.record.value.as_deref() == Some(b"poison") {
                    panic!("cannot parse order");
                }
                Ok::<(), String>(())
            })
            .unwrap();
        outcomes.push(out);
    }
    c.commit().unwrap();
    assert_eq!(calls, 1 + 3 + 1, "the poison record was tried three times");
    assert_eq!(outcomes[0], Handled::Processed { attempts: 1 });
    assert!(matches!(outcomes[1], Handled::DeadLettered { .. }));
    assert_eq!(outcomes[2], Handled::Processed { attempts: 1 });
    let Handled::DeadLettered { partition, offset } = outcomes[1] else {
        unreachable!()
    };
    let dead = s
        .fetch("orders.dlq", partition, offset, 1 << 20)
        .unwrap()
        .records()
        .unwrap()
        .remove(0);
    assert_eq!(dead.value.as_deref(), Some(&b"poison"[..]));
    let header = |k: &str| {
        dead.headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    };
    assert_eq!(
        header(HEADER_ERROR).as_deref(),
        Some("handler panicked: cannot parse order")
    );
    assert_eq!(header(HEADER_TOPIC).as_deref(), Some("orders"));
    assert_eq!(header(HEADER_OFFSET).as_deref(), Some("1"));
    assert_eq!(header(HEADER_ATTEMPTS).as_deref(), Some("3"));
    assert_eq!(
        s.committed("g", "orders", 0),
        Some(3),
        "the partition moved on"
    );
    assert!(DeadLetterPolicy::new("x", 0).is_err());
}

#[test]
fn the_deduplicator_skips_redeliveries_and_stays_bounded() {
    let (_d, s) = setup();
    for i in 0..100 {
        s.append("orders", 0, &[Record::keyed(format!("k{i}"), "v")])
            .unwrap();
    }
    let mut d = Deduplicator::new(50).unwrap();
    // First delivery: 60 records; then a crash before commit redelivers the last 30.
    let first = s.fetch("orders", 0, 0, 1 << 20).unwrap().records().unwrap();
    let as_consumed = |r: keel_stream::StoredRecord| keel_stream::ConsumedRecord {
        topic: "orders".into(),
        partition: 0,
        record: r,
    };
    let mut processed = 0;
    for r in first.iter().take(60).cloned() {
        processed += usize::from(d.first_seen(&as_consumed(r)));
    }
    for r in first.iter().skip(30).take(40).cloned() {
        processed += usize::from(d.first_seen(&as_consumed(r)));
    }
    assert_eq!(
        processed, 70,
        "the 30 redelivered records inside the window were skipped"
    );
    assert_eq!(d.len(), 50, "memory bounded by the window");
    assert!(Deduplicator::new(0).is_err());
}
