//! Consumer groups on the injected clock: join, death by session timeout, a new member,
//! at-least-once, monotonic commits, cooperative vs eager revocations, static membership,
//! max-poll eviction, fencing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use keel_stream::{
    Assignor, GroupConfig, GroupConsumer, GroupError, MockClock, RebalanceProtocol, Record, Stream,
    StreamError, TopicConfig, TopicPartition,
};

const PARTITIONS: u32 = 8;

fn setup(protocol: RebalanceProtocol) -> (tempfile::TempDir, MockClock, Stream) {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(0);
    let group = GroupConfig::builder()
        .session_timeout(Duration::from_secs(10))
        .max_poll_interval(Duration::from_secs(60))
        .protocol(protocol)
        .assignor(Assignor::Sticky)
        .build()
        .unwrap();
    let s = Stream::builder()
        .dir(dir.path())
        .clock(clock.clone())
        .group_config(group)
        .build()
        .unwrap();
    s.create_topic(
        "orders",
        TopicConfig::builder()
            .partitions(PARTITIONS)
            .build()
            .unwrap(),
    )
    .unwrap();
    (dir, clock, s)
}

fn produce(s: &Stream, from: usize, n: usize) {
    for i in from..from + n {
        let key = format!("order-{}", i % 40);
        let p = keel_stream::partition_for_key(key.as_bytes(), PARTITIONS);
        s.append("orders", p, &[Record::keyed(key, i.to_string())])
            .unwrap();
    }
}

fn owners(s: &Stream) -> BTreeMap<TopicPartition, String> {
    let (_, members) = s.coordinator().describe("g").unwrap();
    members
        .into_iter()
        .flat_map(|m| m.owned.into_iter().map(move |tp| (tp, m.member_id.clone())))
        .collect()
}

struct Tracker {
    processed: HashMap<(u32, i64), u32>,
    committed: BTreeMap<u32, i64>,
}

impl Tracker {
    /// One poll-process-commit step of `c`; checks commits never go backwards.
    fn step(&mut self, s: &Stream, c: &mut GroupConsumer) {
        for r in c.poll(50).unwrap() {
            *self
                .processed
                .entry((r.partition, r.record.offset))
                .or_default() += 1;
        }
        c.commit().unwrap();
        self.check_commits(s);
    }

    fn check_commits(&mut self, s: &Stream) {
        for p in 0..PARTITIONS {
            if let Some(o) = s.committed("g", "orders", p) {
                let prev = self.committed.insert(p, o).unwrap_or(0);
                assert!(o >= prev, "partition {p}: committed {o} after {prev}");
            }
        }
    }
}

#[test]
fn three_join_one_dies_one_joins_every_record_at_least_once_and_commits_monotonic() {
    let (_d, clock, s) = setup(RebalanceProtocol::Cooperative);
    let mut t = Tracker {
        processed: HashMap::new(),
        committed: BTreeMap::new(),
    };
    produce(&s, 0, 400);
    let consumer = |id: &str| {
        GroupConsumer::builder(&s, "g")
            .subscribe(["orders"])
            .instance_id(id)
            .build()
            .unwrap()
    };
    let mut c1 = consumer("c1");
    let mut c2 = consumer("c2");
    let mut c3 = consumer("c3");
    for _ in 0..3 {
        for c in [&mut c1, &mut c2, &mut c3] {
            t.step(&s, c);
        }
        clock.advance(Duration::from_secs(1));
    }
    // Each live member owns a balanced share, no partition twice.
    let o = owners(&s);
    assert_eq!(o.len(), PARTITIONS as usize);
    produce(&s, 400, 200);
    // c2 dies mid-processing: it polled a batch, then no commit, no heartbeat, no leave.
    let lost_in_flight = c2.poll(50).unwrap().len();
    assert!(lost_in_flight > 0);
    c2.abandon();
    let before_death = s.stats().evictions;
    for _ in 0..6 {
        clock.advance(Duration::from_secs(2));
        for c in [&mut c1, &mut c3] {
            t.step(&s, c);
        }
    }
    assert_eq!(
        s.stats().evictions,
        before_death + 1,
        "c2 removed after the session timeout"
    );
    assert_eq!(
        owners(&s).values().collect::<BTreeSet<_>>().len(),
        2,
        "c1 and c3 own everything"
    );
    assert_eq!(owners(&s).len(), PARTITIONS as usize);
    // A fourth member joins: the cooperative protocol revokes only what moves to it.
    let before = owners(&s);
    let revocations_before = s.coordinator().revocations();
    let mut c4 = consumer("c4");
    produce(&s, 600, 200);
    for _ in 0..4 {
        for c in [&mut c1, &mut c3, &mut c4] {
            t.step(&s, c);
        }
        clock.advance(Duration::from_secs(1));
    }
    let after = owners(&s);
    assert_eq!(after.len(), PARTITIONS as usize);
    let moved = before
        .iter()
        .filter(|(tp, m)| after.get(*tp) != Some(*m))
        .count();
    assert!(moved > 0);
    assert_eq!(
        s.coordinator().revocations() - revocations_before,
        moved as u64,
        "only moved partitions revoked"
    );
    assert_eq!(
        after.values().filter(|m| m.starts_with("c4")).count(),
        moved,
        "everything moved went to c4"
    );
    // Drain and check: every record processed at least once.
    for _ in 0..20 {
        for c in [&mut c1, &mut c3, &mut c4] {
            t.step(&s, c);
        }
    }
    for p in 0..PARTITIONS {
        let end = s.log("orders", p).unwrap().log_end_offset();
        for off in 0..end {
            assert!(
                t.processed.contains_key(&(p, off)),
                "partition {p} offset {off} never processed"
            );
        }
        assert_eq!(s.committed("g", "orders", p), Some(end));
    }
    assert_eq!(s.lag("g").total, 0);
    let redelivered = t.processed.values().filter(|n| **n > 1).count();
    assert_eq!(t.processed.len(), 800);
    eprintln!(
        "groups: 800 records all processed; {lost_in_flight} polled by c2 before it died were redelivered to others; {redelivered} processed twice; rebalances {}, revocations {}, moved on c4 join {moved}",
        s.stats().rebalances,
        s.stats().revocations
    );
}

#[test]
fn eager_rebalance_revokes_everything_cooperative_only_what_moves() {
    let mut counts = Vec::new();
    for protocol in [RebalanceProtocol::Eager, RebalanceProtocol::Cooperative] {
        let (_d, _clock, s) = setup(protocol);
        let mut cs: Vec<GroupConsumer> = (0..3)
            .map(|i| {
                GroupConsumer::builder(&s, "g")
                    .subscribe(["orders"])
                    .instance_id(format!("c{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        for _ in 0..3 {
            for c in &mut cs {
                c.heartbeat().unwrap();
            }
        }
        assert_eq!(owners(&s).len(), PARTITIONS as usize);
        let before = s.coordinator().revocations();
        cs.push(
            GroupConsumer::builder(&s, "g")
                .subscribe(["orders"])
                .instance_id("c3")
                .build()
                .unwrap(),
        );
        for _ in 0..3 {
            for c in &mut cs {
                c.heartbeat().unwrap();
            }
        }
        assert_eq!(owners(&s).len(), PARTITIONS as usize);
        counts.push(s.coordinator().revocations() - before);
    }
    assert_eq!(
        counts[0],
        u64::from(PARTITIONS),
        "eager: all 8 owned partitions revoked"
    );
    assert_eq!(
        counts[1], 2,
        "cooperative-sticky: 3,3,2 → 2,2,2,2 moves exactly 2"
    );
}

#[test]
fn a_static_member_restarting_within_the_session_timeout_causes_no_rebalance() {
    let (_d, clock, s) = setup(RebalanceProtocol::Cooperative);
    let build = |id: &str| {
        GroupConsumer::builder(&s, "g")
            .subscribe(["orders"])
            .instance_id(id)
            .build()
            .unwrap()
    };
    let mut a = build("a");
    let mut b = build("b");
    for _ in 0..3 {
        a.heartbeat().unwrap();
        b.heartbeat().unwrap();
    }
    let old_id = a.member_id().to_string();
    let owned = a.assignment();
    let (generation, _) = s.coordinator().describe("g").unwrap();
    let rebalances = s.stats().rebalances;
    a.abandon(); // crash
    clock.advance(Duration::from_secs(8));
    b.heartbeat().unwrap();
    let mut a2 = build("a");
    a2.heartbeat().unwrap();
    assert_eq!(a2.assignment(), owned, "same partitions back");
    assert_eq!(
        s.coordinator().describe("g").unwrap().0,
        generation,
        "no new generation"
    );
    assert_eq!(s.stats().rebalances, rebalances, "no rebalance");
    assert_eq!(s.stats().static_rejoins, 1);
    // The crashed process's member id is fenced.
    assert!(matches!(
        s.coordinator().heartbeat("g", &old_id, false),
        Err(GroupError::FencedInstance(i)) if i == "a"
    ));
    // Past the session timeout a static member is removed like any other.
    clock.advance(Duration::from_secs(11));
    b.heartbeat().unwrap();
    assert_eq!(s.coordinator().describe("g").unwrap().1.len(), 1);
}

#[test]
fn a_member_that_stops_polling_is_evicted_after_max_poll_interval() {
    let (_d, clock, s) = setup(RebalanceProtocol::Cooperative);
    let mut a = GroupConsumer::builder(&s, "g")
        .subscribe(["orders"])
        .build()
        .unwrap();
    let mut b = GroupConsumer::builder(&s, "g")
        .subscribe(["orders"])
        .build()
        .unwrap();
    a.poll(1).unwrap();
    b.poll(1).unwrap();
    // `a` keeps heartbeating (its background thread lives) but its processing is stuck.
    for _ in 0..13 {
        clock.advance(Duration::from_secs(5));
        a.heartbeat().unwrap();
        b.poll(1).unwrap();
    }
    let (_, members) = s.coordinator().describe("g").unwrap();
    assert_eq!(
        members.len(),
        2,
        "a rejoined through its heartbeat after eviction"
    );
    assert!(s.stats().evictions >= 1);
}

#[test]
fn group_bad_input_is_typed() {
    let (_d, _clock, s) = setup(RebalanceProtocol::Cooperative);
    assert!(
        GroupConsumer::builder(&s, "g").build().is_err(),
        "no topics"
    );
    assert!(
        GroupConsumer::builder(&s, "g")
            .subscribe(["missing"])
            .build()
            .is_err()
    );
    assert!(matches!(
        s.coordinator().join("", None, &[("orders".into(), 8)]),
        Err(GroupError::Invalid(_))
    ));
    s.coordinator()
        .join("g2", None, &[("orders".into(), 8)])
        .unwrap();
    assert_eq!(
        s.coordinator().join("g2", None, &[("other".into(), 1)]),
        Err(GroupError::InconsistentSubscription)
    );
    assert!(matches!(
        s.coordinator().heartbeat("g2", "nobody", true),
        Err(GroupError::UnknownMember(_))
    ));
    let mut c = GroupConsumer::builder(&s, "g")
        .subscribe(["orders"])
        .build()
        .unwrap();
    c.poll(1).unwrap();
    let tp = c.assignment()[0].clone();
    assert!(matches!(
        c.seek(&tp, keel_stream::OffsetSpec::At(5)),
        Err(StreamError::OffsetOutOfRange { .. })
    ));
    assert!(
        GroupConfig::builder()
            .max_poll_interval(Duration::ZERO)
            .build()
            .is_err()
    );
}
