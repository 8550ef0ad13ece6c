//! Model-based test: random operation sequences applied to the in-memory store and to a
//! plain reference (a `Vec` scanned linearly), compared after every step — fetched ids,
//! fencing results, and the per-queue counts by state.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::Duration;

use keel_jobs::{
    Failure, FailureKind, FencingToken, JobId, JobsError, MemoryStore, MockClock, NewJob,
    QueueCounts, Store, Timestamp,
};
use proptest::prelude::*;

const LEASE_MS: u64 = 1_000;
const QUEUES: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        queue: usize,
        priority: i16,
        delay: u64,
        unique: Option<u8>,
        max_attempts: u32,
    },
    Fetch {
        queue: usize,
        limit: usize,
    },
    Complete {
        pick: usize,
    },
    Fail {
        pick: usize,
        retry_in: Option<u64>,
    },
    Release {
        pick: usize,
    },
    Heartbeat {
        pick: usize,
    },
    Cancel {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, -2..3i16, prop_oneof![Just(0u64), 1..3_000u64], proptest::option::of(0..3u8), 1..4u32)
            .prop_map(|(queue, priority, delay, unique, max_attempts)| Op::Enqueue { queue, priority, delay, unique, max_attempts }),
        3 => (0..2usize, 1..4usize).prop_map(|(queue, limit)| Op::Fetch { queue, limit }),
        2 => (0..8usize).prop_map(|pick| Op::Complete { pick }),
        2 => (0..8usize, proptest::option::of(0..2_000u64)).prop_map(|(pick, retry_in)| Op::Fail { pick, retry_in }),
        1 => (0..8usize).prop_map(|pick| Op::Release { pick }),
        1 => (0..8usize).prop_map(|pick| Op::Heartbeat { pick }),
        1 => (0..16usize).prop_map(|pick| Op::Cancel { pick }),
        2 => (0..1_500u64).prop_map(|ms| Op::Advance { ms }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Running { token: u64, deadline: u64 },
    Dead,
    Gone,
}

#[derive(Debug, Clone)]
struct RefJob {
    id: u64,
    queue: usize,
    priority: i16,
    run_at: u64,
    attempt: u32,
    max_attempts: u32,
    failed: bool,
    unique: Option<u8>,
    st: St,
}

#[derive(Debug, Default)]
struct Model {
    jobs: Vec<RefJob>,
    next_token: u64,
}

impl Model {
    fn reap(&mut self, now: u64) {
        for j in &mut self.jobs {
            if let St::Running { deadline, .. } = j.st
                && deadline <= now
            {
                j.failed = true;
                j.st = if j.attempt >= j.max_attempts {
                    St::Dead
                } else {
                    St::Pending
                };
                j.run_at = now;
            }
        }
    }

    fn counts(&self, now: u64) -> BTreeMap<String, QueueCounts> {
        let mut out: BTreeMap<String, QueueCounts> = BTreeMap::new();
        for j in &self.jobs {
            let c = out.entry(QUEUES[j.queue].to_owned()).or_default();
            match j.st {
                St::Pending if j.failed => c.retrying += 1,
                St::Pending if j.run_at > now => c.scheduled += 1,
                St::Pending => c.available += 1,
                St::Running { .. } => c.running += 1,
                St::Dead => c.dead += 1,
                St::Gone => {}
            }
        }
        out
    }
}

fn fenced<T>(r: &Result<T, JobsError>) -> bool {
    matches!(r, Err(e) if e.is_fenced())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_the_reference(ops in proptest::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let clock = MockClock::new(Timestamp(1_000_000));
        let store = MemoryStore::builder().clock(clock.clone()).build();
        let mut model = Model { next_token: 0, ..Model::default() };
        // Leases handed out, newest last (stale ones stay: acking them must be fenced).
        let mut held: Vec<(u64, u64)> = Vec::new();
        let lease = Duration::from_millis(LEASE_MS);
        rt.block_on(async {
            for op in ops {
                let now = clock.now_ms();
                match op {
                    Op::Enqueue { queue, priority, delay, unique, max_attempts } => {
                        let mut job = NewJob::new(QUEUES[queue], "k", serde_json::Value::Null)
                            .with_priority(priority)
                            .with_max_attempts(max_attempts)
                            .with_delay(Duration::from_millis(delay));
                        if let Some(u) = unique {
                            job = job.with_unique_key(format!("u{u}"));
                        }
                        let got = store.enqueue(job).await.unwrap();
                        let existing = unique.and_then(|u| {
                            model.jobs.iter().find(|j| j.unique == Some(u) && matches!(j.st, St::Pending | St::Running { .. })).map(|j| j.id)
                        });
                        match existing {
                            Some(id) => prop_assert_eq!((got.id.0, got.created), (id, false)),
                            None => {
                                prop_assert!(got.created);
                                model.jobs.push(RefJob { id: got.id.0, queue, priority, run_at: now + delay, attempt: 0, max_attempts, failed: false, unique, st: St::Pending });
                            }
                        }
                    }
                    Op::Fetch { queue, limit } => {
                        let got = store.fetch(QUEUES[queue], limit, lease).await.unwrap();
                        model.reap(now);
                        let mut due: Vec<&mut RefJob> = model.jobs.iter_mut()
                            .filter(|j| j.queue == queue && j.st == St::Pending && j.run_at <= now)
                            .collect();
                        due.sort_by_key(|j| (Reverse(j.priority), j.run_at, j.id));
                        let mut expected = Vec::new();
                        for j in due.into_iter().take(limit) {
                            j.attempt += 1;
                            model.next_token += 1;
                            j.st = St::Running { token: model.next_token, deadline: now + LEASE_MS };
                            expected.push(j.id);
                        }
                        prop_assert_eq!(got.iter().map(|l| l.job.id.0).collect::<Vec<_>>(), expected);
                        for l in &got {
                            held.push((l.job.id.0, l.token.0));
                        }
                    }
                    Op::Complete { pick } | Op::Fail { pick, .. } | Op::Release { pick } | Op::Heartbeat { pick } => {
                        let Some(&(id, token_seen)) = held.get(pick % held.len().max(1)).filter(|_| !held.is_empty()) else { continue };
                        // Both hand out tokens 1, 2, 3, … in lease order.
                        let token = FencingToken(token_seen);
                        let model_token = token_seen;
                        let job = model.jobs.iter_mut().find(|j| j.id == id).unwrap();
                        let current = matches!(job.st, St::Running { token: t, deadline } if t == model_token && deadline > now);
                        let expired_current = matches!(job.st, St::Running { token: t, deadline } if t == model_token && deadline <= now);
                        let id = JobId(id);
                        let result: Result<(), JobsError> = match op {
                            Op::Complete { .. } => store.complete(id, token).await,
                            Op::Fail { retry_in, .. } => {
                                let retry_at = retry_in.map(|ms| Timestamp(now + ms));
                                store.fail(id, token, Failure { kind: FailureKind::Error, message: "x".into(), retry_at }).await.map(|_| ())
                            }
                            Op::Release { .. } => store.release(id, token).await,
                            _ => store.heartbeat(id, token, lease).await.map(|_| ()),
                        };
                        if expired_current {
                            // Rejected, and the expired lease is given back right there.
                            prop_assert!(matches!(result, Err(JobsError::LeaseExpired { .. })), "{:?}", result);
                            job.failed = true;
                            job.st = if job.attempt >= job.max_attempts { St::Dead } else { St::Pending };
                            job.run_at = now;
                        } else if !current {
                            prop_assert!(fenced(&result), "stale call accepted: {:?}", result);
                        } else {
                            prop_assert!(result.is_ok(), "{:?}", result);
                            match op {
                                Op::Complete { .. } => job.st = St::Gone,
                                Op::Fail { retry_in, .. } => {
                                    job.failed = true;
                                    match retry_in {
                                        Some(ms) if job.attempt < job.max_attempts => {
                                            job.st = St::Pending;
                                            job.run_at = now + ms;
                                        }
                                        _ => job.st = St::Dead,
                                    }
                                }
                                Op::Release { .. } => {
                                    job.attempt -= 1;
                                    job.st = St::Pending;
                                    job.run_at = job.run_at.min(now);
                                }
                                _ => job.st = St::Running { token: model_token, deadline: now + LEASE_MS },
                            }
                        }
                    }
                    Op::Cancel { pick } => {
                        if model.jobs.is_empty() {
                            continue;
                        }
                        let n = model.jobs.len();
                        let job = &mut model.jobs[pick % n];
                        let got = store.cancel(JobId(job.id)).await.unwrap();
                        let expected = match job.st {
                            St::Pending => {
                                job.st = St::Gone;
                                keel_jobs::CancelOutcome::Cancelled
                            }
                            St::Running { .. } => keel_jobs::CancelOutcome::Running,
                            St::Dead => keel_jobs::CancelOutcome::Finished,
                            St::Gone => keel_jobs::CancelOutcome::NotFound,
                        };
                        prop_assert_eq!(got, expected);
                    }
                    Op::Advance { ms } => clock.advance(Duration::from_millis(ms)),
                }
                // Counts are read without reaping: expired leases still count as running.
                let now = clock.now_ms();
                let mut got = store.counts().await.unwrap();
                got.retain(|_, c| *c != QueueCounts::default());
                let mut want = model.counts(now);
                want.retain(|_, c| *c != QueueCounts::default());
                prop_assert_eq!(got, want);
            }
            Ok(())
        })?;
    }
}

trait NowMs {
    fn now_ms(&self) -> u64;
}

impl NowMs for MockClock {
    fn now_ms(&self) -> u64 {
        keel_jobs::Clock::now(self).0
    }
}
