//! Log compaction by key: the latest value per key survives, offsets never change,
//! tombstones expire, reopening works — plus a model test against a `Vec`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keel_stream::{Durability, MockClock, PartitionLog, Record, Stream, TopicConfig};
use proptest::prelude::*;

fn config() -> TopicConfig {
    TopicConfig::builder()
        .segment_bytes(4096)
        .retention(None)
        .durability(Durability::Never)
        .compact(true)
        .tombstone_retention(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `(offset, key, value)` of every record, reading like a consumer.
fn read_all(log: &PartitionLog) -> Vec<(i64, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    loop {
        let f = log.read(at, 1 << 16).unwrap();
        if f.is_empty() {
            return out;
        }
        for r in f.records().unwrap() {
            let s = |b: Option<bytes::Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
            out.push((r.offset, s(r.key), s(r.value)));
        }
        at = f.next_offset();
    }
}

#[test]
fn compaction_keeps_the_latest_value_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000_000);
    let s = Stream::builder()
        .dir(dir.path())
        .clock(clock.clone())
        .build()
        .unwrap();
    s.create_topic("users", config()).unwrap();
    for round in 0..60 {
        for k in 0..10 {
            s.append(
                "users",
                0,
                &[Record::keyed(
                    format!("k{k}"),
                    format!("v{round}-{}", "x".repeat(40)),
                )],
            )
            .unwrap();
        }
    }
    // k3 is deleted.
    s.append(
        "users",
        0,
        &[Record {
            key: Some("k3".into()),
            value: None,
            ..Record::default()
        }],
    )
    .unwrap();
    let log = s.log("users", 0).unwrap();
    log.roll().unwrap();
    let end = log.log_end_offset();
    let before = log.size_bytes();
    let stats = s.compact().unwrap();
    assert!(
        stats.segments_rewritten > 0 && stats.records_removed > 500,
        "{stats:?}"
    );
    assert!(
        log.size_bytes() < before / 5,
        "{} -> {}",
        before,
        log.size_bytes()
    );
    assert_eq!(log.log_end_offset(), end, "offsets never change");
    let all = read_all(&log);
    let mut latest: HashMap<String, (i64, Option<String>)> = HashMap::new();
    for (o, k, v) in &all {
        latest.insert(k.clone().unwrap(), (*o, v.clone()));
    }
    assert_eq!(all.len(), 10, "one record per key (k3 as its tombstone)");
    assert_eq!(latest["k0"], (590, Some(format!("v59-{}", "x".repeat(40)))));
    assert_eq!(latest["k3"], (600, None));
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "offsets ascend");
    // Reads from any offset still work, including inside removed ranges.
    // A fetch inside an emptied range returns no record but moves the position on.
    let mut at = 5;
    let first = loop {
        let f = s.fetch("users", 0, at, 1 << 16).unwrap();
        assert!(!f.is_empty());
        if let Some(r) = f.records().unwrap().first() {
            break r.offset;
        }
        assert!(f.next_offset() > at);
        at = f.next_offset();
    };
    assert_eq!(first, 590);
    assert_eq!(
        s.resolve_offset("users", 0, keel_stream::OffsetSpec::Timestamp(0))
            .unwrap(),
        590
    );
    // The tombstone expires by its timestamp; then k3 is gone entirely.
    s.append("users", 0, &[Record::keyed("k0", "newest")])
        .unwrap();
    log.roll().unwrap();
    clock.advance(Duration::from_secs(61));
    s.compact().unwrap();
    let all = read_all(&log);
    assert!(all.iter().all(|(_, k, _)| k.as_deref() != Some("k3")));
    assert_eq!(
        all.iter()
            .filter(|(_, k, _)| k.as_deref() == Some("k0"))
            .count(),
        1
    );
    // Reopen: the rewritten segments (sparse and empty batches) recover cleanly.
    drop((log, s));
    let s = Stream::builder()
        .dir(dir.path())
        .clock(clock)
        .build()
        .unwrap();
    let log = s.log("users", 0).unwrap();
    assert_eq!(read_all(&log), all);
    assert_eq!(s.stats().recovered_truncated_bytes, 0);
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Roll,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        1 => (0u8..12).prop_map(Op::Delete),
        2 => Just(Op::Roll),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("KEEL_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    /// After any sequence: every record read is the model's record at that offset; every
    /// key's latest record is present; nothing in the active segment was removed.
    #[test]
    fn compaction_matches_a_vec_model(ops in prop::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(1_000);
        let open = || PartitionLog::open(dir.path(), config(), Arc::new(clock.clone())).unwrap();
        let mut log = open();
        let mut model: Vec<(Option<String>, Option<String>)> = Vec::new();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    log.append(&[Record::keyed(format!("k{k}"), format!("{v}-{}", "y".repeat(usize::from(v) % 90)))]).unwrap();
                    model.push((Some(format!("k{k}")), Some(format!("{v}-{}", "y".repeat(usize::from(v) % 90)))));
                }
                Op::Delete(k) => {
                    log.append(&[Record { key: Some(format!("k{k}").into()), value: None, ..Record::default() }]).unwrap();
                    model.push((Some(format!("k{k}")), None));
                }
                Op::Roll => log.roll().unwrap(),
                Op::Compact => { log.compact().unwrap(); }
                Op::Reopen => { drop(log); log = open(); }
            }
            let all = read_all(&log);
            let active_base = log.active_segment().0;
            let mut last = -1;
            for (o, k, v) in &all {
                prop_assert!(*o > last);
                last = *o;
                prop_assert_eq!(&model[*o as usize], &(k.clone(), v.clone()));
            }
            let present: std::collections::HashSet<i64> = all.iter().map(|(o, _, _)| *o).collect();
            let mut latest: HashMap<&Option<String>, usize> = HashMap::new();
            for (i, (k, _)) in model.iter().enumerate() {
                latest.insert(k, i);
            }
            for i in latest.values() {
                prop_assert!(present.contains(&(*i as i64)), "latest record at {} missing", i);
            }
            for o in active_base..model.len() as i64 {
                prop_assert!(present.contains(&o), "active-segment record {} removed", o);
            }
            prop_assert_eq!(log.log_end_offset(), model.len() as i64);
        }
    }
}
