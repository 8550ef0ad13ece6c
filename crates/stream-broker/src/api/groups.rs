//! `FindCoordinator`, `JoinGroup`, `SyncGroup`, `Heartbeat`, `LeaveGroup`,
//! `DescribeGroups`, `ListGroups`: thin wire adapters over [`crate::groups::Coordinator`].

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as WireCoordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};

use super::metadata::NODE_ID;
use super::str_bytes;
use crate::broker::State;
use crate::groups::{GroupState, JoinRequest, Pending};

/// Extra time a waiting join/sync allows beyond the rebalance timeout before answering
/// on its own (the coordinator's tick normally answers first).
const WAIT_MARGIN: Duration = Duration::from_secs(5);

pub(crate) fn find_coordinator(
    state: &State,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = state.advertised.read().clone();
    // key_type 1 = transaction coordinator: transactions are not served.
    let code = if req.key_type == 0 {
        0
    } else {
        ResponseError::CoordinatorNotAvailable.code()
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|k| {
                WireCoordinator::default()
                    .with_key(k)
                    .with_node_id(BrokerId(NODE_ID))
                    .with_host(str_bytes(host.clone()))
                    .with_port(port)
                    .with_error_code(code)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(NODE_ID))
        .with_host(str_bytes(host))
        .with_port(port)
}

async fn wait<T>(p: Pending<T>, timeout: Duration, on_timeout: T) -> T {
    match p {
        Pending::Ready(t) => t,
        Pending::Wait(rx) => match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(t)) => t,
            _ => on_timeout,
        },
    }
}

pub(crate) async fn join(
    state: &Arc<State>,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    host: String,
) -> JoinGroupResponse {
    let rebalance_ms = if version >= 1 {
        req.rebalance_timeout_ms
    } else {
        req.session_timeout_ms
    };
    let r = JoinRequest {
        group: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        client_id,
        client_host: format!("/{host}"),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: rebalance_ms,
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
    };
    let timeout = Duration::from_millis(u64::try_from(rebalance_ms).unwrap_or(0)) + WAIT_MARGIN;
    let on_timeout = crate::groups::JoinOutcome {
        error: ResponseError::RebalanceInProgress.code(),
        generation: -1,
        member_id: r.member_id.clone(),
        ..Default::default()
    };
    let o = wait(state.groups.join(r), timeout, on_timeout).await;
    let mut resp = JoinGroupResponse::default()
        .with_error_code(o.error)
        .with_generation_id(o.generation)
        .with_leader(str_bytes(o.leader))
        .with_member_id(str_bytes(o.member_id))
        .with_members(
            o.members
                .into_iter()
                .map(|(id, instance, meta)| {
                    let m = JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(id))
                        .with_metadata(meta);
                    if version >= 5 {
                        m.with_group_instance_id(instance.map(str_bytes))
                    } else {
                        m
                    }
                })
                .collect(),
        );
    resp.protocol_name = Some(str_bytes(o.protocol_name.unwrap_or_default()));
    if version >= 7 {
        resp.protocol_type = o.protocol_type.map(str_bytes);
    }
    resp
}

pub(crate) async fn sync(
    state: &Arc<State>,
    req: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let assignments = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let pending = state.groups.sync(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
        assignments,
    );
    let on_timeout = crate::groups::SyncOutcome {
        error: ResponseError::RebalanceInProgress.code(),
        ..Default::default()
    };
    let o = wait(pending, Duration::from_secs(300) + WAIT_MARGIN, on_timeout).await;
    let mut resp = SyncGroupResponse::default()
        .with_error_code(o.error)
        .with_assignment(o.assignment);
    if version >= 5 {
        resp.protocol_type = o.protocol_type.map(str_bytes);
        resp.protocol_name = o.protocol_name.map(str_bytes);
    }
    resp
}

pub(crate) fn heartbeat(state: &State, req: HeartbeatRequest) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(state.groups.heartbeat(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
    ))
}

pub(crate) fn leave(state: &State, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    if version < 3 {
        let codes = state
            .groups
            .leave(&group, &[(req.member_id.to_string(), None)]);
        return LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0));
    }
    let who: Vec<(String, Option<String>)> = req
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|i| i.to_string()),
            )
        })
        .collect();
    let codes = state.groups.leave(&group, &who);
    let members = req
        .members
        .into_iter()
        .zip(codes)
        .map(|(m, code)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub(crate) fn describe(state: &State, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let name = g.0.to_string();
            let d = DescribedGroup::default().with_group_id(g);
            match state.groups.describe(&name) {
                None => {
                    let state_name = if state.offsets.groups().contains(&name) {
                        "Empty"
                    } else {
                        "Dead"
                    };
                    d.with_group_state(str_bytes(state_name))
                }
                Some(desc) => d
                    .with_group_state(str_bytes(desc.state.name()))
                    .with_protocol_type(str_bytes(desc.protocol_type))
                    .with_protocol_data(str_bytes(desc.protocol))
                    .with_members(
                        desc.members
                            .into_iter()
                            .map(|(id, _instance, client, host, meta, assignment)| {
                                DescribedGroupMember::default()
                                    .with_member_id(str_bytes(id))
                                    .with_client_id(str_bytes(client))
                                    .with_client_host(str_bytes(host))
                                    .with_member_metadata(meta)
                                    .with_member_assignment(assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub(crate) fn list(state: &State, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut all: Vec<(String, String, GroupState)> = state.groups.list();
    for g in state.offsets.groups() {
        if !all.iter().any(|(n, _, _)| *n == g) {
            all.push((g, "consumer".to_string(), GroupState::Empty));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let filter: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let groups = all
        .into_iter()
        .filter(|(_, _, s)| filter.is_empty() || filter.iter().any(|f| f == s.name()))
        .map(|(n, ptype, s)| {
            ListedGroup::default()
                .with_group_id(kafka_protocol::messages::GroupId(str_bytes(n)))
                .with_protocol_type(str_bytes(ptype))
                .with_group_state(str_bytes(s.name()))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
