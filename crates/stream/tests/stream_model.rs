//! Model test of the whole stream: random produce / consume / commit / crash (a torn tail in
//! a random partition's active segment) / restart sequences over 3 partitions, against a
//! per-partition `Vec` and a map of committed offsets.

use std::time::Duration;

use keel_stream::{Durability, MockClock, Record, Stream, TopicConfig};
use proptest::prelude::*;

const P: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Produce(u8, Vec<Vec<u8>>),
    Consume(u8, u8),
    Commit(u8),
    Crash(u8, f64),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..5))
            .prop_map(|(p, v)| Op::Produce(p, v)),
        4 => (any::<u8>(), 1u8..20).prop_map(|(p, n)| Op::Consume(p, n)),
        2 => any::<u8>().prop_map(Op::Commit),
        1 => (any::<u8>(), 0.0f64..1.0).prop_map(|(p, f)| Op::Crash(p, f)),
        1 => Just(Op::Restart),
    ]
}

struct Model {
    records: Vec<Vec<Vec<u8>>>,
    /// Per partition: `(base offset, encoded length)` of each batch.
    batches: Vec<Vec<(i64, u64)>>,
    committed: Vec<Option<i64>>,
    position: Vec<i64>,
}

fn open(dir: &std::path::Path, clock: &MockClock) -> Stream {
    let s = Stream::builder()
        .dir(dir)
        .clock(clock.clone())
        .offsets_segment_bytes(4096)
        .build()
        .unwrap();
    if s.topic("t").is_err() {
        let cfg = TopicConfig::builder()
            .partitions(P as u32)
            .segment_bytes(4096)
            .retention(None)
            .durability(Durability::Never)
            .build()
            .unwrap();
        s.create_topic("t", cfg).unwrap();
    }
    s
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(1_000);
    let mut s = open(dir.path(), &clock);
    let mut m = Model {
        records: vec![Vec::new(); P],
        batches: vec![Vec::new(); P],
        committed: vec![None; P],
        position: vec![0; P],
    };
    for op in ops {
        match op {
            Op::Produce(p, values) => {
                let p = usize::from(p) % P;
                let recs: Vec<Record> = values.iter().map(|v| Record::new(v.clone())).collect();
                let raw = keel_stream::batch::encode_batch(&recs, 1_000, None).unwrap();
                let len = raw.len() as u64;
                let at = s
                    .log("t", p as u32)
                    .unwrap()
                    .append_batch(raw, false)
                    .unwrap();
                assert_eq!(at.base_offset, m.records[p].len() as i64);
                m.batches[p].push((at.base_offset, len));
                m.records[p].extend(values);
            }
            Op::Consume(p, n) => {
                let p = usize::from(p) % P;
                let pos = m.position[p];
                let f = s.fetch("t", p as u32, pos, usize::from(n) * 40).unwrap();
                let recs = f.records().unwrap();
                assert_eq!(recs.is_empty(), pos == m.records[p].len() as i64);
                for r in recs.iter().take(usize::from(n)) {
                    assert_eq!(r.offset, m.position[p]);
                    assert_eq!(
                        r.value.as_deref(),
                        Some(&m.records[p][r.offset as usize][..])
                    );
                    m.position[p] += 1;
                }
            }
            Op::Commit(p) => {
                let p = usize::from(p) % P;
                s.commit("g", &[("t".into(), p as u32, m.position[p])])
                    .unwrap();
                m.committed[p] = Some(m.position[p]);
            }
            Op::Crash(p, frac) => {
                let p = usize::from(p) % P;
                let (base, size, path) = s.log("t", p as u32).unwrap().active_segment();
                drop(s);
                // Committed offsets point at acknowledged data, which a crash cannot tear:
                // cut only after the batch holding the last committed record.
                let committed = m.committed[p].unwrap_or(0);
                let mut pos = 0u64;
                let mut floor = 0u64;
                for &(b, len) in m.batches[p].iter().filter(|(b, _)| *b >= base) {
                    if b < committed {
                        floor = pos + len;
                    }
                    pos += len;
                }
                let cut = floor + ((size - floor) as f64 * frac) as u64;
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(cut)
                    .unwrap();
                let mut pos = 0u64;
                let mut keep = m.records[p].len() as i64;
                for &(b, len) in m.batches[p].iter().filter(|(b, _)| *b >= base) {
                    if pos + len > cut {
                        keep = b;
                        break;
                    }
                    pos += len;
                }
                m.records[p].truncate(keep as usize);
                m.batches[p].retain(|(b, _)| *b < keep);
                s = open(dir.path(), &clock);
                restart_consumer(&s, &mut m);
            }
            Op::Restart => {
                drop(s);
                clock.advance(Duration::from_secs(1));
                s = open(dir.path(), &clock);
                restart_consumer(&s, &mut m);
            }
        }
    }
    for p in 0..P {
        assert_eq!(
            s.log("t", p as u32).unwrap().log_end_offset(),
            m.records[p].len() as i64
        );
        // One fetch reads from one segment: loop like a consumer.
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut at = 0;
        loop {
            let f = s.fetch("t", p as u32, at, 1 << 20).unwrap();
            if f.is_empty() {
                break;
            }
            got.extend(
                f.records()
                    .unwrap()
                    .into_iter()
                    .map(|r| r.value.unwrap().to_vec()),
            );
            at = f.next_offset();
        }
        assert!(
            got == m.records[p],
            "partition {p}: {} records read, {} in the model",
            got.len(),
            m.records[p].len()
        );
    }
}

/// A restarted consumer resumes from the committed offsets, which survived.
fn restart_consumer(s: &Stream, m: &mut Model) {
    for p in 0..P {
        assert_eq!(s.committed("g", "t", p as u32), m.committed[p]);
        m.position[p] = m.committed[p].unwrap_or(0);
        assert!(m.position[p] <= m.records[p].len() as i64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("KEEL_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn stream_matches_per_partition_vecs_through_produce_consume_commit_and_crashes(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run(ops);
    }
}
