//! The history checker: every operation the simulated clients ran, with its invocation
//! and completion times, and the two guarantees the crate documents, checked against it.
//!
//! # What is recorded
//! - **Writes** carry a unique value and what the client *saw* when it made them: a
//!   causal write (`DHT.PUT key value context`) sends the context of a `DHT.SIBLINGS`
//!   read, and the values of that read are exactly the versions the write may supersede.
//!   A write is *acknowledged* when the node answered `OK`; a write that failed or timed
//!   out is *indeterminate* (it may or may not have landed) — never counted as lost, never
//!   required to be absent.
//! - **Reads** record the values they returned.
//! - **Final reads** record, after every fault was healed and the cluster had time to
//!   converge, every sibling of every key read at consistency `ALL`.
//!
//! # Property 1: every acknowledged write survives
//! For each key, the *covered* values are the final siblings plus, transitively, every
//! value a covered write saw (a write's context supersedes exactly what it saw). Every
//! acknowledged write must be covered: still there as the value or a sibling, or
//! superseded by a causally later write. Final siblings that no client ever wrote are
//! reported too (phantoms).
//!
//! This is stricter than "some newer write exists": a later write that did *not* see an
//! acknowledged value (a concurrent one) must leave it as a sibling, so the checker would
//! flag a store that silently resolved the two by timestamp (last-write-wins).
//!
//! # Property 2: with R + W > N and no failures, a read sees the latest acknowledged write
//! Reads marked `fresh` run while every node is up and every link healed (after the
//! failure detector has recovered). Such a read must return the value of the latest write
//! to its key acknowledged before the read was invoked, or of a write concurrent with the
//! read (invoked before the read completed, not acknowledged before it was invoked): the
//! regular-register condition.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Milliseconds of simulated time.
pub(crate) type Ms = u64;

/// One write.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub(crate) key: String,
    pub(crate) value: String,
    /// The values the write's context saw (it may supersede exactly these); empty for a
    /// blind write.
    pub(crate) saw: Vec<String>,
    /// A plain `SET` (no context): it supersedes whatever its coordinator held, which no
    /// client can know, so the checker lets it cover every write to the key invoked
    /// before it completed (the only writes its coordinator can have applied first).
    pub(crate) blind: bool,
    pub(crate) invoked: Ms,
    /// When the node acknowledged it; `None` when it failed or timed out.
    pub(crate) acked: Option<Ms>,
}

/// One read.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    pub(crate) key: String,
    /// The live values returned (a `GET`: zero or one).
    pub(crate) values: Vec<String>,
    pub(crate) invoked: Ms,
    pub(crate) completed: Ms,
    /// Made with no faults active: property 2 applies.
    pub(crate) fresh: bool,
}

/// Everything the clients did.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    pub(crate) writes: Vec<Write>,
    pub(crate) reads: Vec<Read>,
    /// Key → every sibling value read at `ALL` after healing.
    pub(crate) finals: BTreeMap<String, Vec<String>>,
}

/// A broken guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// An acknowledged write is neither in the final state nor superseded by a write
    /// that saw it.
    Lost {
        key: String,
        value: String,
        acked: Ms,
    },
    /// The final state holds a value no client wrote.
    Phantom { key: String, value: String },
    /// A fresh read missed the latest acknowledged write.
    Stale {
        key: String,
        returned: Vec<String>,
        expected: String,
        read_invoked: Ms,
    },
    /// A key written in the run has no final read.
    Unread { key: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Lost { key, value, acked } => write!(
                f,
                "acknowledged write lost: {key} = {value} (acked at {acked} ms) is neither \
                 in the final state nor superseded by a write that saw it"
            ),
            Violation::Phantom { key, value } => {
                write!(f, "phantom value: {key} = {value} was never written")
            }
            Violation::Stale {
                key,
                returned,
                expected,
                read_invoked,
            } => write!(
                f,
                "stale read: {key} read at {read_invoked} ms returned {returned:?}, \
                 latest acknowledged write is {expected}"
            ),
            Violation::Unread { key } => write!(f, "no final read of {key}"),
        }
    }
}

/// What a passing check saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) acked_writes: usize,
    pub(crate) indeterminate_writes: usize,
    pub(crate) surviving_as_sibling_or_value: usize,
    pub(crate) superseded: usize,
    pub(crate) fresh_reads: usize,
    pub(crate) keys_with_siblings: usize,
}

impl History {
    /// Checks both properties; every violation is returned, not only the first.
    ///
    /// # Errors
    /// The violations found.
    pub(crate) fn check(&self) -> Result<Summary, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut summary = Summary::default();
        self.check_durability(&mut summary, &mut violations);
        self.check_fresh_reads(&mut summary, &mut violations);
        if violations.is_empty() {
            Ok(summary)
        } else {
            Err(violations)
        }
    }

    fn check_durability(&self, summary: &mut Summary, out: &mut Vec<Violation>) {
        let mut by_key: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
        for w in &self.writes {
            by_key.entry(&w.key).or_default().push(w);
        }
        for (key, writes) in by_key {
            let Some(finals) = self.finals.get(key) else {
                out.push(Violation::Unread { key: key.into() });
                continue;
            };
            if finals.len() > 1 {
                summary.keys_with_siblings += 1;
            }
            let saw: BTreeMap<&str, Vec<&str>> = writes
                .iter()
                .map(|w| {
                    let saw = if w.blind {
                        let completed = w.acked.unwrap_or(Ms::MAX);
                        writes
                            .iter()
                            .filter(|o| o.value != w.value && o.invoked < completed)
                            .map(|o| o.value.as_str())
                            .collect()
                    } else {
                        w.saw.iter().map(String::as_str).collect()
                    };
                    (w.value.as_str(), saw)
                })
                .collect();
            for v in finals {
                if !saw.contains_key(v.as_str()) {
                    out.push(Violation::Phantom {
                        key: key.into(),
                        value: v.clone(),
                    });
                }
            }
            // Covered: the final values and everything they saw, transitively.
            let mut covered: BTreeSet<&str> = BTreeSet::new();
            let mut stack: Vec<&str> = finals.iter().map(String::as_str).collect();
            while let Some(v) = stack.pop() {
                if covered.insert(v) {
                    stack.extend(saw.get(v).into_iter().flatten().copied());
                }
            }
            let present: BTreeSet<&str> = finals.iter().map(String::as_str).collect();
            for w in writes {
                let Some(acked) = w.acked else {
                    summary.indeterminate_writes += 1;
                    continue;
                };
                summary.acked_writes += 1;
                if present.contains(w.value.as_str()) {
                    summary.surviving_as_sibling_or_value += 1;
                } else if covered.contains(w.value.as_str()) {
                    summary.superseded += 1;
                } else {
                    out.push(Violation::Lost {
                        key: key.into(),
                        value: w.value.clone(),
                        acked,
                    });
                }
            }
        }
    }

    fn check_fresh_reads(&self, summary: &mut Summary, out: &mut Vec<Violation>) {
        for r in self.reads.iter().filter(|r| r.fresh) {
            summary.fresh_reads += 1;
            let on_key = || self.writes.iter().filter(|w| w.key == r.key);
            // The latest write acknowledged before the read began.
            let latest = on_key()
                .filter(|w| w.acked.is_some_and(|a| a < r.invoked))
                .max_by_key(|w| w.acked);
            let Some(latest) = latest else {
                continue; // nothing acknowledged yet: any concurrent value or none is fine
            };
            let allowed = |v: &String| {
                *v == latest.value
                    || on_key().any(|w| {
                        w.value == *v
                            && w.invoked < r.completed
                            && w.acked.is_none_or(|a| a >= r.invoked)
                    })
            };
            if r.values.is_empty() || !r.values.iter().any(allowed) {
                out.push(Violation::Stale {
                    key: r.key.clone(),
                    returned: r.values.clone(),
                    expected: latest.value.clone(),
                    read_invoked: r.invoked,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, saw: &[&str], invoked: Ms, acked: Option<Ms>) -> Write {
        Write {
            key: key.into(),
            value: value.into(),
            saw: saw.iter().map(|s| (*s).to_owned()).collect(),
            blind: false,
            invoked,
            acked,
        }
    }

    fn set(key: &str, value: &str, invoked: Ms, acked: Option<Ms>) -> Write {
        Write {
            blind: true,
            ..put(key, value, &[], invoked, acked)
        }
    }

    #[test]
    fn a_blind_set_covers_only_writes_invoked_before_it_completed() {
        // s2 (acked at 25) may have superseded s1 (invoked at 0): not lost.
        let h = History {
            writes: vec![set("k", "s1", 0, Some(5)), set("k", "s2", 20, Some(25))],
            reads: vec![],
            finals: finals(&[("k", &["s2"])]),
        };
        assert_eq!(h.check().unwrap().superseded, 1);
        // s3 was invoked after s2 completed, so s2 cannot have seen it: s3 is lost.
        let h = History {
            writes: vec![
                set("k", "s1", 0, Some(5)),
                set("k", "s2", 20, Some(25)),
                set("k", "s3", 30, Some(35)),
            ],
            reads: vec![],
            finals: finals(&[("k", &["s2"])]),
        };
        assert_eq!(
            h.check().unwrap_err(),
            vec![Violation::Lost {
                key: "k".into(),
                value: "s3".into(),
                acked: 35
            }]
        );
        // A fresh GET after an acknowledged SET must return it.
        let h = History {
            writes: vec![set("k", "s1", 0, Some(5)), set("k", "s2", 10, Some(15))],
            reads: vec![Read {
                key: "k".into(),
                values: vec!["s1".into()],
                invoked: 20,
                completed: 22,
                fresh: true,
            }],
            finals: finals(&[("k", &["s2"])]),
        };
        assert!(matches!(
            h.check().unwrap_err().as_slice(),
            [Violation::Stale { .. }]
        ));
    }

    fn finals(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, vs)| {
                (
                    (*k).to_owned(),
                    vs.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn an_acknowledged_write_that_disappears_is_rejected() {
        // v1 acknowledged; v2 did not see it (empty context), yet only v2 is left: the
        // store resolved two concurrent writes by dropping one (last-write-wins).
        let h = History {
            writes: vec![
                put("k", "v1", &[], 0, Some(5)),
                put("k", "v2", &[], 10, Some(15)),
            ],
            reads: vec![],
            finals: finals(&[("k", &["v2"])]),
        };
        assert_eq!(
            h.check().unwrap_err(),
            vec![Violation::Lost {
                key: "k".into(),
                value: "v1".into(),
                acked: 5
            }]
        );
    }

    #[test]
    fn a_write_superseded_by_one_that_saw_it_is_not_lost_even_transitively() {
        let h = History {
            writes: vec![
                put("k", "v1", &[], 0, Some(5)),
                put("k", "v2", &["v1"], 10, None), // indeterminate, but it landed
                put("k", "v3", &["v2"], 20, Some(25)),
                put("k", "x", &[], 21, Some(26)), // concurrent: a sibling
            ],
            reads: vec![],
            finals: finals(&[("k", &["v3", "x"])]),
        };
        let s = h.check().unwrap();
        assert_eq!(s.acked_writes, 3);
        assert_eq!(s.superseded, 1);
        assert_eq!(s.surviving_as_sibling_or_value, 2);
        assert_eq!(s.indeterminate_writes, 1);
        assert_eq!(s.keys_with_siblings, 1);
    }

    #[test]
    fn an_unacknowledged_write_may_vanish_but_a_value_nobody_wrote_may_not_appear() {
        let h = History {
            writes: vec![put("k", "v1", &[], 0, None)],
            reads: vec![],
            finals: finals(&[("k", &["ghost"])]),
        };
        assert_eq!(
            h.check().unwrap_err(),
            vec![Violation::Phantom {
                key: "k".into(),
                value: "ghost".into()
            }]
        );
    }

    #[test]
    fn a_fresh_read_that_misses_the_latest_acknowledged_write_is_rejected() {
        let read = |values: &[&str], invoked, fresh| Read {
            key: "k".into(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            invoked,
            completed: invoked + 3,
            fresh,
        };
        let writes = vec![
            put("k", "v1", &[], 0, Some(5)),
            put("k", "v2", &["v1"], 10, Some(15)),
        ];
        let mut h = History {
            writes,
            reads: vec![read(&["v2"], 20, true), read(&["v1"], 20, false)],
            finals: finals(&[("k", &["v2"])]),
        };
        assert!(
            h.check().is_ok(),
            "fresh read of v2 and a faulty-phase read of v1 pass"
        );
        h.reads.push(read(&["v1"], 30, true));
        h.reads.push(read(&[], 31, true));
        let errors = h.check().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| matches!(e, Violation::Stale { .. })));
        // A read concurrent with a write may return either value.
        let mut h = h.clone();
        h.reads.truncate(2);
        h.writes.push(put("k", "v3", &["v2"], 40, Some(50)));
        h.reads.push(read(&["v3"], 45, true));
        h.reads.push(read(&["v2"], 46, true));
        h.finals = finals(&[("k", &["v3"])]);
        assert!(h.check().is_ok());
    }

    #[test]
    fn a_written_key_without_a_final_read_is_reported() {
        let h = History {
            writes: vec![put("k", "v1", &[], 0, Some(1))],
            reads: vec![],
            finals: BTreeMap::new(),
        };
        assert_eq!(
            h.check().unwrap_err(),
            vec![Violation::Unread { key: "k".into() }]
        );
    }
}
