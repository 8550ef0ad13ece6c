//! Partition assignors: which member consumes which partition.
//!
//! Members arrive sorted by their stable key (the static instance id, else the member id), so
//! an assignment depends only on membership, not on arrival order.
//!
//! | assignor | rule | moves on a join/leave |
//! |---|---|---|
//! | range | per topic, contiguous blocks; the first `n % m` members get one more | many (every block shifts) |
//! | round-robin | all partitions sorted, dealt in turn | many |
//! | sticky | balanced (each gets ⌊n/m⌋ or ⌈n/m⌉), keeping as many current partitions as balance allows | the minimum |

use std::collections::{BTreeSet, HashMap};

/// A topic and a partition number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
}

impl TopicPartition {
    /// Builds one.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// How partitions are spread over a group's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Assignor {
    /// Kafka's `RangeAssignor`.
    Range,
    /// Kafka's `RoundRobinAssignor`.
    RoundRobin,
    /// Kafka's `StickyAssignor` / `CooperativeStickyAssignor` rule.
    #[default]
    Sticky,
}

pub(crate) type Plan = HashMap<String, BTreeSet<TopicPartition>>;

/// `members`: member ids sorted by stable key; `topics`: `(name, partition count)` sorted;
/// `previous`: the last plan (sticky keeps it where it can).
pub(crate) fn assign(
    assignor: Assignor,
    members: &[String],
    topics: &[(String, u32)],
    previous: &Plan,
) -> Plan {
    let mut plan: Plan = members
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    if members.is_empty() {
        return plan;
    }
    let all: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect();
    let m = members.len();
    match assignor {
        Assignor::Range => {
            for (t, n) in topics {
                let n = *n as usize;
                let (base, extra) = (n / m, n % m);
                let mut next = 0;
                for (i, member) in members.iter().enumerate() {
                    let take = base + usize::from(i < extra);
                    let set = plan.get_mut(member).expect("member in plan");
                    for p in next..next + take {
                        set.insert(TopicPartition::new(t.clone(), p as u32));
                    }
                    next += take;
                }
            }
        }
        Assignor::RoundRobin => {
            for (i, tp) in all.into_iter().enumerate() {
                plan.get_mut(&members[i % m])
                    .expect("member in plan")
                    .insert(tp);
            }
        }
        Assignor::Sticky => {
            let valid: BTreeSet<&TopicPartition> = all.iter().collect();
            let (base, mut extra) = (all.len() / m, all.len() % m);
            let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();
            // Keep current partitions up to the quota; at most `extra` members keep one more.
            for member in members {
                let Some(prev) = previous.get(member) else {
                    continue;
                };
                let mut quota = base;
                let keepable = prev
                    .iter()
                    .filter(|tp| valid.contains(tp) && !taken.contains(*tp))
                    .count();
                if keepable > base && extra > 0 {
                    quota += 1;
                    extra -= 1;
                }
                let set = plan.get_mut(member).expect("member in plan");
                for tp in prev.iter().filter(|tp| valid.contains(tp)) {
                    if set.len() == quota {
                        break;
                    }
                    if taken.insert(tp.clone()) {
                        set.insert(tp.clone());
                    }
                }
            }
            let mut pool = all.into_iter().filter(|tp| !taken.contains(tp));
            // Fill everyone to the base, then hand out the remaining extras one each.
            for member in members {
                let set = plan.get_mut(member).expect("member in plan");
                while set.len() < base {
                    match pool.next() {
                        Some(tp) => set.insert(tp),
                        None => break,
                    };
                }
            }
            for member in members {
                let set = plan.get_mut(member).expect("member in plan");
                if set.len() == base
                    && let Some(tp) = pool.next()
                {
                    set.insert(tp);
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    fn check_complete_and_balanced(plan: &Plan, total: usize) {
        let mut seen = BTreeSet::new();
        for set in plan.values() {
            for tp in set {
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            }
        }
        assert_eq!(seen.len(), total);
        let (min, max) = (
            plan.values().map(BTreeSet::len).min(),
            plan.values().map(BTreeSet::len).max(),
        );
        assert!(
            max.unwrap() - min.unwrap() <= 1,
            "unbalanced: {min:?}..{max:?}"
        );
    }

    #[test]
    fn range_gives_contiguous_blocks_like_kafka() {
        let plan = assign(Assignor::Range, &ids(3), &[("t".into(), 8)], &Plan::new());
        let parts = |m: &str| plan[m].iter().map(|tp| tp.partition).collect::<Vec<_>>();
        assert_eq!(parts("m0"), vec![0, 1, 2]);
        assert_eq!(parts("m1"), vec![3, 4, 5]);
        assert_eq!(parts("m2"), vec![6, 7]);
    }

    #[test]
    fn all_assignors_are_complete_and_balanced() {
        for a in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
            for m in 1..6 {
                let plan = assign(a, &ids(m), &[("a".into(), 7)], &Plan::new());
                check_complete_and_balanced(&plan, 7);
            }
        }
        // No members, no partitions: nothing to do, nothing panics.
        assert!(assign(Assignor::Sticky, &[], &[("a".into(), 3)], &Plan::new()).is_empty());
        assert_eq!(
            assign(Assignor::Range, &ids(2), &[], &Plan::new())["m0"].len(),
            0
        );
    }

    #[test]
    fn sticky_moves_only_what_balance_needs() {
        let topics = [("t".to_string(), 8u32)];
        let before = assign(Assignor::Sticky, &ids(3), &topics, &Plan::new());
        let after = assign(Assignor::Sticky, &ids(4), &topics, &before);
        check_complete_and_balanced(&after, 8);
        let moved: usize = ids(3)
            .iter()
            .map(|m| before[m].difference(&after[m]).count())
            .sum();
        assert_eq!(moved, 2, "the new member takes exactly its share of 2");
        // A member leaves: only its partitions move.
        let mut three = ids(4);
        three.remove(1);
        let after_leave = assign(Assignor::Sticky, &three, &topics, &after);
        check_complete_and_balanced(&after_leave, 8);
        for m in &three {
            assert!(
                after[m].is_subset(&after_leave[m]),
                "{m} lost a partition it could keep"
            );
        }
    }
}
