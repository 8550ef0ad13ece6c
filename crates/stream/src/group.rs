//! The consumer-group coordinator: membership, heartbeats, session timeout, max-poll interval,
//! eager and cooperative rebalancing, static membership.
//!
//! Assignment is computed here, on the coordinator (like Kafka's KIP-848 protocol), rather than
//! by a client "leader" (the classic JoinGroup/SyncGroup protocol). Members learn their
//! partitions from [`GroupCoordinator::heartbeat`], which also carries revocations:
//!
//! - A membership change (join, leave, eviction) bumps the generation and computes a new
//!   *target* plan with the group's [`Assignor`].
//! - **Eager**: at its first heartbeat of a new generation a member gives up *everything* it
//!   owns (stop-the-world), then receives its target partitions as their old owners let go.
//! - **Cooperative** (KIP-429): a member gives up only the partitions that move away from it;
//!   a moved partition is handed to its new owner only after the old owner's heartbeat has
//!   released it, so two members never own one partition at once.
//! - **Static membership** (KIP-345): a member with an instance id that stops heartbeating
//!   keeps its slot until the session timeout; rejoining with the same instance id takes the
//!   slot back with its partitions — no generation bump, nothing revoked. The old member id
//!   is fenced.
//!
//! Time comes from the injected clock; expiry runs on every coordinator call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::assignor::{Assignor, Plan, TopicPartition, assign};
use crate::clock::{SharedClock, millis};
use crate::error::{BuildError, GroupError};

/// How a group rebalances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RebalanceProtocol {
    /// Everyone revokes everything, then gets a new assignment.
    Eager,
    /// Only partitions that move are revoked (KIP-429).
    #[default]
    Cooperative,
}

/// Coordinator settings. Build with [`GroupConfig::builder`].
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub(crate) session_timeout: Duration,
    pub(crate) max_poll_interval: Duration,
    pub(crate) protocol: RebalanceProtocol,
    pub(crate) assignor: Assignor,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(45),
            max_poll_interval: Duration::from_secs(300),
            protocol: RebalanceProtocol::Cooperative,
            assignor: Assignor::Sticky,
        }
    }
}

impl GroupConfig {
    /// Kafka's defaults: 45 s session timeout, 5 min max poll interval, cooperative-sticky.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keel_stream::{Assignor, GroupConfig, RebalanceProtocol};
    /// let c = GroupConfig::builder().protocol(RebalanceProtocol::Eager).assignor(Assignor::Range).build().unwrap();
    /// assert!(GroupConfig::builder().session_timeout(Duration::ZERO).build().is_err());
    /// # let _ = c;
    /// ```
    pub fn builder() -> GroupConfigBuilder {
        GroupConfigBuilder {
            config: Self::default(),
        }
    }
}

/// Builder of [`GroupConfig`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct GroupConfigBuilder {
    config: GroupConfig,
}

impl GroupConfigBuilder {
    /// A member that sends no heartbeat for this long is removed.
    pub fn session_timeout(mut self, d: Duration) -> Self {
        self.config.session_timeout = d;
        self
    }
    /// A member that does not poll for this long is removed (its processing is stuck).
    pub fn max_poll_interval(mut self, d: Duration) -> Self {
        self.config.max_poll_interval = d;
        self
    }
    /// Eager or cooperative.
    pub fn protocol(mut self, p: RebalanceProtocol) -> Self {
        self.config.protocol = p;
        self
    }
    /// Range, round-robin or sticky.
    pub fn assignor(mut self, a: Assignor) -> Self {
        self.config.assignor = a;
        self
    }
    /// Validates.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for a zero timeout.
    pub fn build(self) -> Result<GroupConfig, BuildError> {
        if self.config.session_timeout.is_zero() {
            return Err(BuildError::Invalid {
                name: "session_timeout",
                reason: "must be positive",
            });
        }
        if self.config.max_poll_interval.is_zero() {
            return Err(BuildError::Invalid {
                name: "max_poll_interval",
                reason: "must be positive",
            });
        }
        Ok(self.config)
    }
}

/// What a heartbeat tells a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The group's generation.
    pub generation: u32,
    /// Partitions the member owns after this call.
    pub owned: Vec<TopicPartition>,
    /// Newly given to it by this call: start consuming (from the committed offset).
    pub assigned: Vec<TopicPartition>,
    /// Taken away by this call: it must stop consuming them (and should have committed).
    pub revoked: Vec<TopicPartition>,
}

/// Result of a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The member id to use from now on.
    pub member_id: String,
    /// The generation after the join.
    pub generation: u32,
    /// Whether the join started a rebalance (a static rejoin does not).
    pub rebalanced: bool,
}

/// One member, as [`GroupCoordinator::describe`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Partitions it owns now.
    pub owned: Vec<TopicPartition>,
}

#[derive(Debug)]
struct Member {
    instance_id: Option<String>,
    owned: BTreeSet<TopicPartition>,
    last_heartbeat: i64,
    last_poll: i64,
    seen_generation: u32,
}

#[derive(Debug, Default)]
struct Group {
    generation: u32,
    subscription: Vec<(String, u32)>,
    members: BTreeMap<String, Member>,
    target: Plan,
    next_member: u64,
    /// Member ids replaced by a static rejoin → their instance id (so they get `FencedInstance`).
    fenced: HashMap<String, String>,
}

/// Coordinator counters.
#[derive(Debug, Default)]
pub(crate) struct GroupCounters {
    pub(crate) rebalances: AtomicU64,
    pub(crate) revocations: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) static_rejoins: AtomicU64,
}

/// Fenced ids remembered per group (bounded).
const MAX_FENCED: usize = 1024;

/// The group coordinator. Cheap to share behind an `Arc`; every call locks one mutex.
#[derive(Debug)]
pub struct GroupCoordinator {
    clock: SharedClock,
    config: GroupConfig,
    groups: Mutex<HashMap<String, Group>>,
    pub(crate) counters: GroupCounters,
}

impl GroupCoordinator {
    /// A coordinator on `clock`.
    pub fn new(config: GroupConfig, clock: SharedClock) -> Self {
        Self {
            clock,
            config,
            groups: Mutex::new(HashMap::new()),
            counters: GroupCounters::default(),
        }
    }

    /// Joins `group` subscribed to `subscription` (`(topic, partitions)`), optionally as the
    /// static member `instance_id`.
    ///
    /// # Errors
    /// [`GroupError::Invalid`] for an empty group id or subscription;
    /// [`GroupError::InconsistentSubscription`] when it differs from current members'.
    pub fn join(
        &self,
        group: &str,
        instance_id: Option<&str>,
        subscription: &[(String, u32)],
    ) -> Result<Joined, GroupError> {
        if group.is_empty() {
            return Err(GroupError::Invalid("empty group id"));
        }
        if subscription.is_empty() {
            return Err(GroupError::Invalid("empty subscription"));
        }
        let mut sub = subscription.to_vec();
        sub.sort();
        sub.dedup();
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let g = groups.entry(group.to_string()).or_default();
        self.expire_group(g, now);
        if !g.members.is_empty() && g.subscription != sub {
            return Err(GroupError::InconsistentSubscription);
        }
        g.subscription = sub;
        if let Some(iid) = instance_id
            && let Some(old_id) = g
                .members
                .iter()
                .find(|(_, m)| m.instance_id.as_deref() == Some(iid))
                .map(|(id, _)| id.clone())
        {
            // Static rejoin: same slot, same partitions, no rebalance.
            let mut m = g.members.remove(&old_id).expect("found above");
            let new_id = format!("{iid}-{}", g.next_member);
            g.next_member += 1;
            m.last_heartbeat = now;
            m.last_poll = now;
            if let Some(t) = g.target.remove(&old_id) {
                g.target.insert(new_id.clone(), t);
            }
            g.members.insert(new_id.clone(), m);
            if g.fenced.len() >= MAX_FENCED {
                g.fenced.clear();
            }
            g.fenced.insert(old_id, iid.to_string());
            self.counters.static_rejoins.fetch_add(1, Ordering::Relaxed);
            return Ok(Joined {
                member_id: new_id,
                generation: g.generation,
                rebalanced: false,
            });
        }
        let member_id = format!("{}-{}", instance_id.unwrap_or("member"), g.next_member);
        g.next_member += 1;
        g.members.insert(
            member_id.clone(),
            Member {
                instance_id: instance_id.map(str::to_string),
                owned: BTreeSet::new(),
                last_heartbeat: now,
                last_poll: now,
                seen_generation: 0,
            },
        );
        self.rebalance(g);
        Ok(Joined {
            member_id,
            generation: g.generation,
            rebalanced: true,
        })
    }

    /// A heartbeat; with `polled` it also counts as a poll (resets the max-poll timer).
    /// Returns the member's partitions and what changed.
    ///
    /// # Errors
    /// [`GroupError::UnknownMember`] when the member was removed (timed out) — rejoin;
    /// [`GroupError::FencedInstance`] when a newer process took its static instance id.
    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        polled: bool,
    ) -> Result<Assignment, GroupError> {
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let g = groups
            .get_mut(group)
            .ok_or_else(|| GroupError::UnknownMember(member_id.to_string()))?;
        self.expire_group(g, now);
        if let Some(iid) = g.fenced.get(member_id) {
            return Err(GroupError::FencedInstance(iid.clone()));
        }
        let generation = g.generation;
        let protocol = self.config.protocol;
        let target = g.target.get(member_id).cloned().unwrap_or_default();
        let owned_by_others: BTreeSet<TopicPartition> = g
            .members
            .iter()
            .filter(|(id, _)| id.as_str() != member_id)
            .flat_map(|(_, m)| m.owned.iter().cloned())
            .collect();
        let m = g
            .members
            .get_mut(member_id)
            .ok_or_else(|| GroupError::UnknownMember(member_id.to_string()))?;
        m.last_heartbeat = now;
        if polled {
            m.last_poll = now;
        }
        let revoked: Vec<TopicPartition> =
            if protocol == RebalanceProtocol::Eager && m.seen_generation < generation {
                m.owned.iter().cloned().collect()
            } else {
                m.owned.difference(&target).cloned().collect()
            };
        for tp in &revoked {
            m.owned.remove(tp);
        }
        m.seen_generation = generation;
        let assigned: Vec<TopicPartition> = target
            .iter()
            .filter(|tp| !m.owned.contains(*tp) && !owned_by_others.contains(*tp))
            .cloned()
            .collect();
        m.owned.extend(assigned.iter().cloned());
        self.counters
            .revocations
            .fetch_add(revoked.len() as u64, Ordering::Relaxed);
        Ok(Assignment {
            generation,
            owned: m.owned.iter().cloned().collect(),
            assigned,
            revoked,
        })
    }

    /// Leaves the group now (a clean shutdown); its partitions go to the others.
    ///
    /// # Errors
    /// [`GroupError::UnknownMember`].
    pub fn leave(&self, group: &str, member_id: &str) -> Result<(), GroupError> {
        let mut groups = self.groups.lock();
        let g = groups
            .get_mut(group)
            .ok_or_else(|| GroupError::UnknownMember(member_id.to_string()))?;
        g.members
            .remove(member_id)
            .ok_or_else(|| GroupError::UnknownMember(member_id.to_string()))?;
        g.target.remove(member_id);
        self.rebalance(g);
        if g.members.is_empty() {
            groups.remove(group);
        }
        Ok(())
    }

    /// Removes members whose session or poll interval expired, in every group; returns how many.
    pub fn expire(&self) -> usize {
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let n = groups.values_mut().map(|g| self.expire_group(g, now)).sum();
        groups.retain(|_, g| !g.members.is_empty());
        n
    }

    fn expire_group(&self, g: &mut Group, now: i64) -> usize {
        let session = millis(self.config.session_timeout);
        let poll = millis(self.config.max_poll_interval);
        let dead: Vec<String> = g
            .members
            .iter()
            .filter(|(_, m)| {
                now.saturating_sub(m.last_heartbeat) > session
                    || now.saturating_sub(m.last_poll) > poll
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead {
            g.members.remove(id);
            g.target.remove(id);
        }
        if !dead.is_empty() {
            self.counters
                .evictions
                .fetch_add(dead.len() as u64, Ordering::Relaxed);
            self.rebalance(g);
        }
        dead.len()
    }

    fn rebalance(&self, g: &mut Group) {
        g.generation = g.generation.wrapping_add(1);
        self.counters.rebalances.fetch_add(1, Ordering::Relaxed);
        let mut keyed: Vec<(&str, &String)> = g
            .members
            .iter()
            .map(|(id, m)| (m.instance_id.as_deref().unwrap_or(id.as_str()), id))
            .collect();
        keyed.sort();
        let ids: Vec<String> = keyed.into_iter().map(|(_, id)| id.clone()).collect();
        // Sticky starts from what members own now plus what they were promised.
        let mut previous: Plan = g.target.clone();
        for (id, m) in &g.members {
            previous
                .entry(id.clone())
                .or_default()
                .extend(m.owned.iter().cloned());
        }
        g.target = assign(self.config.assignor, &ids, &g.subscription, &previous);
    }

    /// Generation and members of `group` (`None` if it has no members).
    pub fn describe(&self, group: &str) -> Option<(u32, Vec<MemberDescription>)> {
        let groups = self.groups.lock();
        let g = groups.get(group)?;
        Some((
            g.generation,
            g.members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    owned: m.owned.iter().cloned().collect(),
                })
                .collect(),
        ))
    }

    /// The topics `group` subscribes to.
    pub fn subscription(&self, group: &str) -> Vec<(String, u32)> {
        self.groups
            .lock()
            .get(group)
            .map(|g| g.subscription.clone())
            .unwrap_or_default()
    }

    /// Groups with members.
    pub fn groups(&self) -> Vec<String> {
        let mut v: Vec<String> = self.groups.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Rebalances started so far (all groups).
    pub fn rebalances(&self) -> u64 {
        self.counters.rebalances.load(Ordering::Relaxed)
    }

    /// Partitions revoked from live members so far (all groups).
    pub fn revocations(&self) -> u64 {
        self.counters.revocations.load(Ordering::Relaxed)
    }
}
