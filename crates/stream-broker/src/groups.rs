//! The group coordinator: membership, generations and the join/sync barrier.
//!
//! Kafka's classic group protocol puts the *assignment* in the client: the broker only
//! collects members, picks a protocol every member supports, elects a leader, hands the
//! leader everyone's subscription metadata, and relays the leader's assignment to the
//! others. The states:
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / deadline──▶ CompletingRebalance
//!   ▲                     ▲                                           │ leader's SyncGroup
//!   └──last leaves────────┴──join, leave, session expiry──── Stable ◀─┘
//! ```
//!
//! Every transition happens under one mutex over the group map; a `JoinGroup` or
//! `SyncGroup` that must wait gets a oneshot receiver that the transition completing the
//! barrier fills. Time comes from the injected clock: [`Coordinator::tick`] expires members
//! whose session ran out and finishes joins whose rebalance deadline passed; the broker
//! calls it on a timer, tests call it after moving a mock clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use keel_stream::Clock;
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Group states, as `DescribeGroups`/`ListGroups` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
        }
    }
}

/// What a `JoinGroup` asks.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub(crate) group: String,
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<(String, Bytes)>,
}

/// A `JoinGroup` answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinOutcome {
    pub(crate) error: i16,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader: String,
    pub(crate) member_id: String,
    /// `(member id, instance id, metadata)`, for the leader only.
    pub(crate) members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinOutcome {
    fn error(e: ResponseError, member_id: &str) -> Self {
        Self {
            error: e.code(),
            generation: -1,
            member_id: member_id.to_string(),
            ..Self::default()
        }
    }
}

/// A `SyncGroup` answer: an error code and the member's assignment.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncOutcome {
    pub(crate) error: i16,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) assignment: Bytes,
}

impl SyncOutcome {
    fn error(e: ResponseError) -> Self {
        Self {
            error: e.code(),
            ..Self::default()
        }
    }
}

/// Either an answer now, or a receiver the barrier fills.
#[derive(Debug)]
pub(crate) enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

#[derive(Debug)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i64,
    rebalance_timeout_ms: i64,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_seen_ms: i64,
    joined_seq: u64,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

#[derive(Debug)]
struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    statics: HashMap<String, String>,
    rebalance_deadline_ms: i64,
}

impl Group {
    fn new() -> Self {
        Self {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            statics: HashMap::new(),
            rebalance_deadline_ms: 0,
        }
    }
}

/// A described group, for `DescribeGroups`.
#[derive(Debug, Clone)]
pub(crate) struct GroupDescription {
    pub(crate) state: GroupState,
    pub(crate) protocol_type: String,
    pub(crate) protocol: String,
    /// `(member id, instance id, client id, host, metadata, assignment)`.
    pub(crate) members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// Session-timeout bounds (Kafka's `group.min/max.session.timeout.ms`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupLimits {
    pub(crate) min_session_ms: i32,
    pub(crate) max_session_ms: i32,
    pub(crate) max_groups: usize,
    pub(crate) max_members: usize,
}

/// The coordinator of every group on this broker.
#[derive(Debug)]
pub(crate) struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    clock: Arc<dyn Clock>,
    limits: GroupLimits,
    seq: AtomicU64,
    rebalances: AtomicU64,
}

impl Coordinator {
    pub(crate) fn new(clock: Arc<dyn Clock>, limits: GroupLimits) -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            clock,
            limits,
            seq: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
        }
    }

    /// Completed rebalances so far.
    pub(crate) fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let t = self.clock.now_ms();
        let prefix: String = client_id.chars().take(64).collect();
        format!("{prefix}-{t:x}-{n:x}")
    }

    pub(crate) fn join(&self, req: JoinRequest) -> Pending<JoinOutcome> {
        let now = self.clock.now_ms();
        let l = self.limits;
        if req.group.is_empty() {
            return Pending::Ready(JoinOutcome::error(
                ResponseError::InvalidGroupId,
                &req.member_id,
            ));
        }
        if req.session_timeout_ms < l.min_session_ms || req.session_timeout_ms > l.max_session_ms {
            return Pending::Ready(JoinOutcome::error(
                ResponseError::InvalidSessionTimeout,
                &req.member_id,
            ));
        }
        if req.protocols.is_empty() || req.protocol_type.is_empty() {
            return Pending::Ready(JoinOutcome::error(
                ResponseError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        let mut groups = self.groups.lock();
        if !groups.contains_key(&req.group) && groups.len() >= l.max_groups {
            return Pending::Ready(JoinOutcome::error(
                ResponseError::CoordinatorNotAvailable,
                &req.member_id,
            ));
        }
        let g = groups.entry(req.group.clone()).or_insert_with(Group::new);
        if !g.members.is_empty() {
            let type_ok = g.protocol_type.as_deref() == Some(req.protocol_type.as_str());
            let common = req.protocols.iter().any(|(name, _)| {
                g.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            });
            if !type_ok || !common {
                return Pending::Ready(JoinOutcome::error(
                    ResponseError::InconsistentGroupProtocol,
                    &req.member_id,
                ));
            }
        }
        // Resolve who this is: a known member, a static member coming back, or a new one.
        let mut member_id = req.member_id.clone();
        if member_id.is_empty() {
            if let Some(old) = req
                .instance_id
                .as_ref()
                .and_then(|i| g.statics.get(i))
                .cloned()
            {
                // Static membership (KIP-345): the instance takes over its old slot under a
                // new id; the old id is fenced.
                member_id = self.new_member_id(&req.client_id);
                if let Some(mut m) = g.members.remove(&old) {
                    if let Some(w) = m.join_waiter.take() {
                        let _ = w.send(JoinOutcome::error(ResponseError::FencedInstanceId, &old));
                    }
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncOutcome::error(ResponseError::FencedInstanceId));
                    }
                    let same = m.protocols == req.protocols;
                    m.last_seen_ms = now;
                    m.client_host = req.client_host.clone();
                    m.session_timeout_ms = i64::from(req.session_timeout_ms);
                    m.rebalance_timeout_ms = i64::from(req.rebalance_timeout_ms);
                    g.members.insert(member_id.clone(), m);
                    g.statics.insert(
                        req.instance_id.clone().unwrap_or_default(),
                        member_id.clone(),
                    );
                    let was_leader = g.leader.as_deref() == Some(old.as_str());
                    if was_leader {
                        g.leader = Some(member_id.clone());
                    }
                    if g.state == GroupState::Stable && same && !was_leader {
                        // Nothing changed for the group: no rebalance, same generation.
                        return Pending::Ready(JoinOutcome {
                            error: 0,
                            generation: g.generation,
                            protocol_type: g.protocol_type.clone(),
                            protocol_name: g.protocol.clone(),
                            leader: g.leader.clone().unwrap_or_default(),
                            member_id,
                            members: Vec::new(),
                        });
                    }
                }
            } else {
                if g.members.len() >= l.max_members {
                    return Pending::Ready(JoinOutcome::error(
                        ResponseError::GroupMaxSizeReached,
                        "",
                    ));
                }
                member_id = self.new_member_id(&req.client_id);
            }
        } else if !g.members.contains_key(&member_id) {
            return Pending::Ready(JoinOutcome::error(
                ResponseError::UnknownMemberId,
                &member_id,
            ));
        }
        let (tx, rx) = oneshot::channel();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let m = g
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                instance_id: req.instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout_ms: 0,
                rebalance_timeout_ms: 0,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_seen_ms: now,
                joined_seq: seq,
                join_waiter: None,
                sync_waiter: None,
            });
        m.session_timeout_ms = i64::from(req.session_timeout_ms);
        m.rebalance_timeout_ms = i64::from(req.rebalance_timeout_ms.max(req.session_timeout_ms));
        m.protocols = req.protocols;
        m.last_seen_ms = now;
        if let Some(old) = m.join_waiter.replace(tx) {
            // A repeated join from the same member: the older request gets an error.
            let _ = old.send(JoinOutcome::error(
                ResponseError::RebalanceInProgress,
                &member_id,
            ));
        }
        if let Some(i) = &req.instance_id {
            g.statics.insert(i.clone(), member_id.clone());
        }
        g.protocol_type = Some(req.protocol_type);
        if g.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(g, now);
        }
        self.try_complete_join(g, now, false);
        Pending::Wait(rx)
    }

    fn prepare_rebalance(&self, g: &mut Group, now: i64) {
        g.state = GroupState::PreparingRebalance;
        let timeout = g
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        g.rebalance_deadline_ms = now.saturating_add(timeout);
        for m in g.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
            }
        }
    }

    /// Finishes the join barrier when every member has rejoined, or (`deadline`) drops those
    /// that did not.
    fn try_complete_join(&self, g: &mut Group, now: i64, deadline: bool) {
        if g.state != GroupState::PreparingRebalance {
            return;
        }
        let all = g.members.values().all(|m| m.join_waiter.is_some());
        if !all && !deadline {
            return;
        }
        g.members.retain(|_, m| m.join_waiter.is_some());
        g.statics.retain(|_, id| g.members.contains_key(id));
        g.generation = g.generation.wrapping_add(1).max(1);
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.leader = None;
            g.protocol = None;
            return;
        }
        // Protocol: among those every member supports, the one most members list first.
        let first = g
            .members
            .values()
            .next()
            .map(|m| m.protocols.clone())
            .unwrap_or_default();
        let candidates: Vec<String> = first
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                g.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in g.members.values() {
            if let Some((p, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(p)) {
                *votes.entry(p.as_str()).or_default() += 1;
            }
        }
        let protocol = candidates
            .iter()
            .max_by_key(|c| {
                (
                    votes.get(c.as_str()).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|x| x == *c)),
                )
            })
            .cloned()
            .unwrap_or_default();
        let leader = match &g.leader {
            Some(l) if g.members.contains_key(l) => l.clone(),
            _ => g
                .members
                .iter()
                .min_by_key(|(_, m)| m.joined_seq)
                .map(|(id, _)| id.clone())
                .unwrap_or_default(),
        };
        g.leader = Some(leader.clone());
        g.protocol = Some(protocol.clone());
        g.state = GroupState::CompletingRebalance;
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        let members: Vec<(String, Option<String>, Bytes)> = g
            .members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(p, _)| *p == protocol)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (id.clone(), m.instance_id.clone(), meta)
            })
            .collect();
        for (id, m) in &mut g.members {
            m.assignment = Bytes::new();
            m.last_seen_ms = now;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinOutcome {
                    error: 0,
                    generation: g.generation,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        members.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    fn check_member<'a>(
        g: &'a mut Group,
        member_id: &str,
        generation: i32,
    ) -> Result<&'a mut Member, ResponseError> {
        let current = g.generation;
        let m = g
            .members
            .get_mut(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if generation != current {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(m)
    }

    pub(crate) fn sync(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> Pending<SyncOutcome> {
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return Pending::Ready(SyncOutcome::error(ResponseError::UnknownMemberId));
        };
        let (ptype, pname) = (g.protocol_type.clone(), g.protocol.clone());
        let state = g.state;
        let is_leader = g.leader.as_deref() == Some(member_id);
        let m = match Self::check_member(g, member_id, generation) {
            Ok(m) => m,
            Err(e) => return Pending::Ready(SyncOutcome::error(e)),
        };
        m.last_seen_ms = now;
        match state {
            GroupState::Empty => Pending::Ready(SyncOutcome::error(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => {
                Pending::Ready(SyncOutcome::error(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => Pending::Ready(SyncOutcome {
                error: 0,
                protocol_type: ptype,
                protocol_name: pname,
                assignment: m.assignment.clone(),
            }),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                m.sync_waiter = Some(tx);
                if is_leader {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, m) in &mut g.members {
                        m.assignment = by_member.remove(id).unwrap_or_default();
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(SyncOutcome {
                                error: 0,
                                protocol_type: ptype.clone(),
                                protocol_name: pname.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                    g.state = GroupState::Stable;
                }
                Pending::Wait(rx)
            }
        }
    }

    pub(crate) fn heartbeat(&self, group: &str, generation: i32, member_id: &str) -> i16 {
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return ResponseError::UnknownMemberId.code();
        };
        let state = g.state;
        let Some(m) = g.members.get_mut(member_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        m.last_seen_ms = now;
        if state == GroupState::PreparingRebalance {
            return ResponseError::RebalanceInProgress.code();
        }
        if generation != g.generation {
            return ResponseError::IllegalGeneration.code();
        }
        0
    }

    /// Removes members (by id, or by instance id for static members); returns one code each.
    pub(crate) fn leave(&self, group: &str, members: &[(String, Option<String>)]) -> Vec<i16> {
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return vec![ResponseError::UnknownMemberId.code(); members.len()];
        };
        let mut out = Vec::with_capacity(members.len());
        let mut removed = false;
        for (id, instance) in members {
            let id = if id.is_empty() {
                instance
                    .as_ref()
                    .and_then(|i| g.statics.get(i))
                    .cloned()
                    .unwrap_or_default()
            } else {
                id.clone()
            };
            match g.members.remove(&id) {
                Some(m) => {
                    if let Some(i) = &m.instance_id {
                        g.statics.remove(i);
                    }
                    removed = true;
                    out.push(0);
                }
                None => out.push(ResponseError::UnknownMemberId.code()),
            }
        }
        if removed {
            self.after_removal(g, now);
        }
        out
    }

    fn after_removal(&self, g: &mut Group, now: i64) {
        if g.members.is_empty() {
            g.state = GroupState::Empty;
            g.leader = None;
            g.generation = g.generation.wrapping_add(1).max(1);
            return;
        }
        if g.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(g, now);
        }
        self.try_complete_join(g, now, false);
    }

    /// Expires members whose session ran out and completes joins past their deadline.
    pub(crate) fn tick(&self) {
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        for g in groups.values_mut() {
            let before = g.members.len();
            g.members.retain(|_, m| {
                m.join_waiter.is_some()
                    || now.saturating_sub(m.last_seen_ms) <= m.session_timeout_ms
            });
            g.statics.retain(|_, id| g.members.contains_key(id));
            if g.members.len() != before {
                self.after_removal(g, now);
            }
            if g.state == GroupState::PreparingRebalance && now >= g.rebalance_deadline_ms {
                self.try_complete_join(g, now, true);
            }
        }
        groups.retain(|_, g| g.state != GroupState::Empty || !g.members.is_empty());
    }

    /// Checks an `OffsetCommit`'s member, generation and the group's state (`-1`/empty = a simple commit from
    /// outside any group).
    pub(crate) fn check_commit(&self, group: &str, generation: i32, member_id: &str) -> i16 {
        if generation < 0 && member_id.is_empty() {
            let groups = self.groups.lock();
            return match groups.get(group) {
                Some(g) if !g.members.is_empty() => ResponseError::IllegalGeneration.code(),
                _ => 0,
            };
        }
        let now = self.clock.now_ms();
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return ResponseError::UnknownMemberId.code();
        };
        let state = g.state;
        match Self::check_member(g, member_id, generation) {
            Err(e) => e.code(),
            Ok(m) => {
                m.last_seen_ms = now;
                // As Kafka: a member of the current generation may still commit while the
                // group prepares a rebalance (it learns of it from its next heartbeat, and
                // committing what it processed avoids redelivery); between the join and the
                // leader's sync the assignment is in flux, so that commit is refused.
                if state == GroupState::CompletingRebalance {
                    ResponseError::RebalanceInProgress.code()
                } else {
                    0
                }
            }
        }
    }

    pub(crate) fn describe(&self, group: &str) -> Option<GroupDescription> {
        let groups = self.groups.lock();
        let g = groups.get(group)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .iter()
                .map(|(id, m)| {
                    let meta = m
                        .protocols
                        .iter()
                        .find(|(p, _)| *p == protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default();
                    (
                        id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        meta,
                        m.assignment.clone(),
                    )
                })
                .collect(),
        })
    }

    /// `(group, protocol type, state)` of every live group.
    pub(crate) fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups = self.groups.lock();
        groups
            .iter()
            .map(|(n, g)| {
                (
                    n.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect()
    }

    /// Number of live groups.
    pub(crate) fn len(&self) -> usize {
        self.groups.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keel_stream::MockClock;

    use super::*;

    fn coordinator() -> (Coordinator, MockClock) {
        let clock = MockClock::new(1_000_000);
        let limits = GroupLimits {
            min_session_ms: 1000,
            max_session_ms: 60_000,
            max_groups: 100,
            max_members: 100,
        };
        (Coordinator::new(Arc::new(clock.clone()), limits), clock)
    }

    fn req(member: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            group: "g".into(),
            member_id: member.into(),
            instance_id: instance.map(String::from),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![
                ("range".into(), Bytes::from_static(b"r")),
                ("roundrobin".into(), Bytes::from_static(b"rr")),
            ],
        }
    }

    fn ready<T: std::fmt::Debug>(p: Pending<T>) -> T {
        match p {
            Pending::Ready(t) => t,
            Pending::Wait(mut rx) => rx.try_recv().expect("the barrier completed"),
        }
    }

    fn waiting<T>(p: Pending<T>) -> oneshot::Receiver<T> {
        match p {
            Pending::Wait(rx) => rx,
            Pending::Ready(_) => panic!("expected to wait"),
        }
    }

    #[test]
    fn one_member_joins_syncs_and_is_stable() {
        let (c, _) = coordinator();
        let j = ready(c.join(req("", None)));
        assert_eq!((j.error, j.generation), (0, 1));
        assert_eq!(j.leader, j.member_id);
        assert_eq!(j.members.len(), 1);
        assert_eq!(j.protocol_name.as_deref(), Some("range"));
        let s = ready(c.sync(
            "g",
            1,
            &j.member_id,
            vec![(j.member_id.clone(), Bytes::from_static(b"all"))],
        ));
        assert_eq!((s.error, &s.assignment[..]), (0, &b"all"[..]));
        assert_eq!(c.heartbeat("g", 1, &j.member_id), 0);
        assert_eq!(
            c.heartbeat("g", 0, &j.member_id),
            ResponseError::IllegalGeneration.code()
        );
        assert_eq!(
            c.heartbeat("g", 1, "nobody"),
            ResponseError::UnknownMemberId.code()
        );
    }

    #[test]
    fn second_member_triggers_rebalance_and_leader_assignment_reaches_follower() {
        let (c, _) = coordinator();
        let a = ready(c.join(req("", None)));
        ready(c.sync("g", 1, &a.member_id, vec![]));
        let mut b_rx = waiting(c.join(req("", None)));
        assert_eq!(
            c.heartbeat("g", 1, &a.member_id),
            ResponseError::RebalanceInProgress.code()
        );
        let a2 = ready(c.join(req(&a.member_id, None)));
        let b = b_rx.try_recv().unwrap();
        assert_eq!((a2.generation, b.generation), (2, 2));
        assert_eq!(a2.leader, a.member_id, "the old leader keeps leading");
        assert_eq!(a2.members.len(), 2);
        assert!(b.members.is_empty(), "only the leader sees the metadata");
        let mut b_sync = waiting(c.sync("g", 2, &b.member_id, vec![]));
        assert!(
            b_sync.try_recv().is_err(),
            "the follower waits for the leader"
        );
        let s = ready(c.sync(
            "g",
            2,
            &a.member_id,
            vec![
                (a.member_id.clone(), Bytes::from_static(b"p0")),
                (b.member_id.clone(), Bytes::from_static(b"p1")),
            ],
        ));
        assert_eq!(&s.assignment[..], b"p0");
        assert_eq!(&b_sync.try_recv().unwrap().assignment[..], b"p1");
        assert_eq!(c.rebalances(), 2);
    }

    #[test]
    fn a_silent_member_is_expired_after_its_session_and_the_other_takes_over() {
        let (c, clock) = coordinator();
        let a = ready(c.join(req("", None)));
        ready(c.sync("g", 1, &a.member_id, vec![]));
        let mut b_rx = waiting(c.join(req("", None)));
        // a keeps heartbeating (answered REBALANCE_IN_PROGRESS) but never rejoins: at the
        // rebalance deadline (30 s) it is dropped and b completes the join alone.
        for _ in 0..5 {
            clock.advance(Duration::from_secs(5));
            let hb = c.heartbeat("g", 1, &a.member_id);
            assert_eq!(hb, ResponseError::RebalanceInProgress.code());
            c.tick();
            assert!(b_rx.try_recv().is_err(), "still waiting for a");
        }
        clock.advance(Duration::from_millis(5_001));
        c.tick();
        let b = b_rx.try_recv().unwrap();
        assert_eq!(
            (b.error, b.generation, b.leader == b.member_id),
            (0, 2, true)
        );
        ready(c.sync("g", 2, &b.member_id, vec![]));
        // b stops heartbeating: after the session timeout the group is empty and forgotten.
        clock.advance(Duration::from_millis(10_001));
        c.tick();
        assert_eq!(c.len(), 0);
        assert_eq!(
            c.heartbeat("g", 2, &b.member_id),
            ResponseError::UnknownMemberId.code()
        );
    }

    #[test]
    fn a_member_whose_session_expires_during_a_rebalance_is_dropped_before_the_deadline() {
        let (c, clock) = coordinator();
        let a = ready(c.join(req("", None)));
        ready(c.sync("g", 1, &a.member_id, vec![]));
        let mut b_rx = waiting(c.join(req("", None)));
        clock.advance(Duration::from_millis(10_000));
        c.tick();
        assert!(
            b_rx.try_recv().is_err(),
            "a's session (10 s) has not run out yet"
        );
        clock.advance(Duration::from_millis(1));
        c.tick();
        let b = b_rx.try_recv().unwrap();
        assert_eq!((b.generation, b.members.len()), (2, 1));
    }

    #[test]
    fn leave_rebalances_the_rest_and_unknown_members_are_refused() {
        let (c, _) = coordinator();
        let a = ready(c.join(req("", None)));
        let mut b_rx = waiting(c.join(req("", None)));
        let a2 = ready(c.join(req(&a.member_id, None)));
        let b = b_rx.try_recv().unwrap();
        assert_eq!(a2.generation, 2);
        assert_eq!(
            c.leave("g", &[(a.member_id.clone(), None), ("ghost".into(), None)]),
            vec![0, ResponseError::UnknownMemberId.code()]
        );
        assert_eq!(
            c.heartbeat("g", 2, &b.member_id),
            ResponseError::RebalanceInProgress.code()
        );
        let b2 = ready(c.join(req(&b.member_id, None)));
        assert_eq!((b2.generation, b2.leader == b.member_id), (3, true));
        assert_eq!(
            ready(c.join(req("not-a-member", None))).error,
            ResponseError::UnknownMemberId.code()
        );
        assert_eq!(
            c.check_commit("g", 2, &b.member_id),
            ResponseError::IllegalGeneration.code()
        );
        assert_eq!(
            c.check_commit("g", 3, &b.member_id),
            ResponseError::RebalanceInProgress.code(),
            "between join and the leader's sync the assignment is in flux"
        );
        ready(c.sync("g", 3, &b.member_id, vec![]));
        assert_eq!(c.check_commit("g", 3, &b.member_id), 0);
        // A join by someone else starts a rebalance; b may still commit what it processed.
        let _new = waiting(c.join(req("", None)));
        assert_eq!(c.check_commit("g", 3, &b.member_id), 0);
        assert_eq!(
            c.check_commit("g", -1, ""),
            ResponseError::IllegalGeneration.code()
        );
    }

    #[test]
    fn bad_session_timeout_and_inconsistent_protocols_are_refused() {
        let (c, _) = coordinator();
        let mut r = req("", None);
        r.session_timeout_ms = 10;
        assert_eq!(
            ready(c.join(r)).error,
            ResponseError::InvalidSessionTimeout.code()
        );
        ready(c.join(req("", None)));
        let mut r = req("", None);
        r.protocols = vec![("sticky".into(), Bytes::new())];
        assert_eq!(
            ready(c.join(r)).error,
            ResponseError::InconsistentGroupProtocol.code()
        );
    }

    #[test]
    fn static_member_rejoin_in_a_stable_group_does_not_rebalance() {
        let (c, _) = coordinator();
        let a = ready(c.join(req("", Some("a"))));
        let mut b_rx = waiting(c.join(req("", Some("b"))));
        ready(c.join(req(&a.member_id, Some("a"))));
        let b = b_rx.try_recv().unwrap();
        ready(c.sync(
            "g",
            2,
            &a.member_id,
            vec![(b.member_id.clone(), Bytes::from_static(b"p1"))],
        ));
        ready(c.sync("g", 2, &b.member_id, vec![]));
        // b restarts (new process, no member id) with the same instance id.
        let b2 = ready(c.join(req("", Some("b"))));
        assert_eq!(
            (b2.error, b2.generation),
            (0, 2),
            "same generation: no rebalance"
        );
        assert_ne!(b2.member_id, b.member_id);
        assert_eq!(
            &ready(c.sync("g", 2, &b2.member_id, vec![])).assignment[..],
            b"p1"
        );
        assert_eq!(
            c.heartbeat("g", 2, &b.member_id),
            ResponseError::UnknownMemberId.code(),
            "old id fenced"
        );
        assert_eq!(c.rebalances(), 2);
    }
}
