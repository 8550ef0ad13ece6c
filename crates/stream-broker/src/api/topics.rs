//! `CreateTopics` and `DeleteTopics`.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};

use super::{blocking, str_bytes};
use crate::broker::State;
use crate::error::BrokerError;

fn code(e: &BrokerError) -> ResponseError {
    match e {
        BrokerError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        BrokerError::InvalidTopicName(_) => ResponseError::InvalidTopicException,
        BrokerError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        BrokerError::InvalidTopicConfig { name, .. } if name == "partitions" || name == "topic" => {
            ResponseError::InvalidPartitions
        }
        BrokerError::InvalidTopicConfig { .. } => ResponseError::InvalidConfig,
        BrokerError::TooManyTopics(_) => ResponseError::PolicyViolation,
        _ => ResponseError::UnknownServerError,
    }
}

pub(crate) async fn create(
    state: &Arc<State>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut settings = state.config.default_topic.clone();
        let mut outcome: Result<(), BrokerError> = Ok(());
        if t.num_partitions != -1 {
            outcome = settings.apply("partitions", &t.num_partitions.to_string());
        }
        if outcome.is_ok() && !(t.replication_factor == -1 || t.replication_factor == 1) {
            results.push(
                CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ResponseError::InvalidReplicationFactor.code())
                    .with_error_message(Some(str_bytes("a single-node broker keeps one replica"))),
            );
            continue;
        }
        if outcome.is_ok() && !t.assignments.is_empty() {
            outcome = Err(BrokerError::InvalidTopicConfig {
                name: "assignments".into(),
                reason: "manual assignment is not supported".into(),
            });
        }
        for c in &t.configs {
            if outcome.is_err() {
                break;
            }
            if let Some(v) = &c.value {
                outcome = settings.apply(c.name.as_str(), v.as_str());
            }
        }
        if outcome.is_ok() {
            outcome = settings.log_config().map(|_| ());
        }
        if outcome.is_ok() && !req.validate_only {
            let (s, n, st) = (state.clone(), name.clone(), settings.clone());
            outcome = match blocking(move || s.topics.create(&n, st)).await {
                Ok(r) => r.map(|_| {
                    log::info!("created topic {name} ({} partitions)", settings.partitions)
                }),
                Err(_) => Err(BrokerError::Io(std::io::Error::other("task failed"))),
            };
        } else if outcome.is_ok() && state.topics.get(&name).is_some() {
            outcome = Err(BrokerError::TopicExists(name.clone()));
        }
        let mut r = CreatableTopicResult::default().with_name(t.name);
        match outcome {
            Ok(()) => {
                if version >= 5 {
                    r = r
                        .with_num_partitions(settings.partitions as i32)
                        .with_replication_factor(1)
                        .with_configs(Some(
                            settings
                                .to_configs()
                                .into_iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfigs::default()
                                        .with_name(str_bytes(k))
                                        .with_value(Some(str_bytes(v)))
                                        .with_config_source(5)
                                })
                                .collect(),
                        ));
                }
            }
            Err(e) => {
                r = r.with_error_code(code(&e).code());
                if version >= 1 {
                    r = r.with_error_message(Some(str_bytes(e.to_string())));
                }
            }
        }
        results.push(r);
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) async fn delete(
    state: &Arc<State>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let names: Vec<_> = if version >= 6 {
        req.topics.into_iter().filter_map(|t| t.name).collect()
    } else {
        req.topic_names
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let n = name.0.to_string();
        let s = state.clone();
        let res = match blocking(move || s.topics.delete(&n)).await {
            Ok(r) => r,
            Err(_) => Err(BrokerError::Io(std::io::Error::other("task failed"))),
        };
        let mut r = DeletableTopicResult::default().with_name(Some(name.clone()));
        match res {
            Ok(()) => {
                state.offsets.forget_topic(name.0.as_str());
                log::info!("deleted topic {}", name.0.as_str());
            }
            Err(e) => {
                r = r.with_error_code(code(&e).code());
                if version >= 5 {
                    r = r.with_error_message(Some(str_bytes(e.to_string())));
                }
            }
        }
        out.push(r);
    }
    DeleteTopicsResponse::default().with_responses(out)
}
