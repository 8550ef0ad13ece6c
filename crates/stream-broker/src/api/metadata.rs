//! `Metadata`: brokers (just us), topics and their partitions (we lead every one; the
//! replica set and the ISR are `[0]` — see the crate docs for what a cluster would add).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::{blocking, str_bytes};
use crate::broker::State;
use crate::topics::TopicEntry;

/// The one node id of this broker.
pub(crate) const NODE_ID: i32 = 0;

pub(crate) async fn handle(
    state: &Arc<State>,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let (host, port) = state.advertised.read().clone();
    let mut topics = Vec::new();
    match req.topics {
        // null (v1+) or empty at v0: every topic.
        None => topics.extend(state.topics.all().iter().map(|t| topic(t))),
        Some(list) if list.is_empty() && version == 0 => {
            topics.extend(state.topics.all().iter().map(|t| topic(t)))
        }
        Some(list) => {
            for t in list {
                let Some(name) = t.name else { continue };
                let name = name.0.to_string();
                let found = match state.topics.get(&name) {
                    Some(e) => Ok(e),
                    None if state.config.auto_create_topics
                        && (version < 4 || req.allow_auto_topic_creation) =>
                    {
                        let (s, n) = (state.clone(), name.clone());
                        let settings = state.config.default_topic.clone();
                        match blocking(move || s.topics.create(&n, settings)).await {
                            Ok(Ok(e)) => {
                                log::info!("auto-created topic {name}");
                                Ok(e)
                            }
                            Ok(Err(crate::error::BrokerError::TopicExists(_))) => state
                                .topics
                                .get(&name)
                                .ok_or(ResponseError::UnknownTopicOrPartition),
                            Ok(Err(crate::error::BrokerError::InvalidTopicName(_))) => {
                                Err(ResponseError::InvalidTopicException)
                            }
                            Ok(Err(e)) => {
                                log::warn!("auto-creating topic {name} failed: {e}");
                                Err(ResponseError::UnknownServerError)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    None => Err(ResponseError::UnknownTopicOrPartition),
                };
                topics.push(match found {
                    Ok(e) => topic(&e),
                    Err(code) => MetadataResponseTopic::default()
                        .with_error_code(code.code())
                        .with_name(Some(TopicName(str_bytes(name)))),
                });
            }
        }
    }
    let mut resp = MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(NODE_ID))
                .with_host(str_bytes(host))
                .with_port(port),
        ])
        .with_topics(topics);
    if version >= 1 {
        resp = resp.with_controller_id(BrokerId(NODE_ID));
    }
    if version >= 2 {
        resp = resp.with_cluster_id(Some(str_bytes("keel-stream")));
    }
    resp
}

fn topic(t: &TopicEntry) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(t.name.clone()))))
        .with_partitions(
            (0..t.logs.len() as i32)
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(BrokerId(NODE_ID))
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![BrokerId(NODE_ID)])
                        .with_isr_nodes(vec![BrokerId(NODE_ID)])
                })
                .collect(),
        )
}
