//! Topic administration: CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::configs::CONFIG_SOURCE_DEFAULT;
use super::configs::CONFIG_SOURCE_TOPIC;
use super::errors::registry_code;
use super::RequestContext;
use crate::topics::config::{effective, TOPIC_CONFIG_KEYS};
use crate::topics::{RegistryError, TopicRecord, TopicSpec};

/// Creates topics (or only validates them with `validate_only`).
pub(crate) async fn create_topics(
    ctx: RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    let default_partitions = ctx.broker.config.num_partitions;
    let requested = request
        .topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => u64::try_from(default_partitions).unwrap_or(0),
            (0, n) => u64::try_from(n).unwrap_or(0),
            (assigned, _) => assigned as u64,
        })
        .sum();
    if let Some(message) = over_request_limit(&ctx, requested) {
        tracing::info!(requested, "create topics refused: {message}");
        let topics = request
            .topics
            .into_iter()
            .map(|t| failed(t.name, ResponseError::PolicyViolation, message.clone()))
            .collect();
        return CreateTopicsResponse::default().with_topics(topics);
    }
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.clone();
            if duplicates.contains(name.as_str()) {
                return failed(
                    name,
                    ResponseError::InvalidRequest,
                    "topic appears more than once in the request".into(),
                );
            }
            match create_one(&ctx, topic, request.validate_only) {
                Ok(record) => created(&ctx, name, &record),
                Err(error) => {
                    tracing::info!(topic = %name.as_str(), %error, "create topic refused");
                    failed(name, registry_code(&error), error.to_string())
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn create_one(
    ctx: &RequestContext,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<TopicRecord, RegistryError> {
    let mut configs = BTreeMap::new();
    for config in topic.configs {
        let value = config.value.ok_or_else(|| {
            RegistryError::InvalidConfig(format!("null value for config `{}`", config.name))
        })?;
        configs.insert(config.name.to_string(), value.to_string());
    }
    let (partitions, replication_factor) = if topic.assignments.is_empty() {
        (topic.num_partitions, topic.replication_factor)
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(RegistryError::InvalidReplicaAssignment(
                "give either replica assignments or partitions and replication factor, not both"
                    .into(),
            ));
        }
        let me = ctx.broker.config.broker_id;
        if let Some(bad) = topic
            .assignments
            .iter()
            .find(|a| a.broker_ids.iter().any(|b| b.0 != me) || a.broker_ids.is_empty())
        {
            return Err(RegistryError::InvalidReplicaAssignment(format!(
                "partition {} is assigned to brokers {:?}; the only broker is {me}",
                bad.partition_index,
                bad.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>()
            )));
        }
        let rf = topic.assignments[0].broker_ids.len();
        (
            i32::try_from(topic.assignments.len()).unwrap_or(i32::MAX),
            i16::try_from(rf).unwrap_or(i16::MAX),
        )
    };
    let spec = TopicSpec {
        name: topic.name.to_string(),
        partitions,
        replication_factor,
        configs,
    };
    if validate_only {
        ctx.broker.topics.validate_create(&spec)
    } else {
        ctx.broker.topics.create(&spec).map(|t| t.record.clone())
    }
}

fn created(ctx: &RequestContext, name: TopicName, record: &TopicRecord) -> CreatableTopicResult {
    let broker = &ctx.broker.config;
    let configs = TOPIC_CONFIG_KEYS
        .iter()
        .map(|key| {
            let source = if record.configs.contains_key(key.name) {
                CONFIG_SOURCE_TOPIC
            } else {
                CONFIG_SOURCE_DEFAULT
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(key.name))
                .with_value(Some(StrBytes::from_string(effective(
                    broker,
                    &record.configs,
                    key.name,
                ))))
                .with_config_source(source)
        })
        .collect();
    let result = CreatableTopicResult::default().with_name(name);
    let result = if ctx.version() >= 7 {
        result.with_topic_id(record.id)
    } else {
        result
    };
    if ctx.version() >= 5 {
        result
            .with_num_partitions(record.partitions)
            .with_replication_factor(record.replication_factor)
            .with_configs(Some(configs))
    } else {
        result
    }
}

/// Kafka refuses a whole request that would create more partitions than one request may
/// (every topic in it gets POLICY_VIOLATION); the message names the limit.
fn over_request_limit(ctx: &RequestContext, requested: u64) -> Option<String> {
    let limit = ctx.broker.config.partition_limits.per_request;
    (requested > limit as u64).then(|| {
        format!(
            "Excessively large number of partitions per request: {requested} requested, limit \
             {limit} (max.partitions.per.request)"
        )
    })
}

fn failed(name: TopicName, error: ResponseError, message: String) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(name)
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}

/// Deletes topics by name (v0-v5) or by name or id (v6+).
pub(crate) async fn delete_topics(
    ctx: RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let topics = &ctx.broker.topics;
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if ctx.version() >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let topic = match &name {
                Some(name) => topics.get(name),
                None => topics.get_by_id(&id),
            };
            let result = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(id);
            let Some(topic) = topic else {
                let error = if name.is_some() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::UnknownTopicId
                };
                return result.with_error_code(error.code());
            };
            let result = result.with_name(Some(TopicName(StrBytes::from_string(
                topic.name().to_string(),
            ))));
            let result = if ctx.version() >= 6 {
                result.with_topic_id(topic.record.id)
            } else {
                result
            };
            match topics.delete(topic.name()) {
                Ok(deleted) => {
                    ctx.broker
                        .metrics
                        .forget_topic(deleted.name(), deleted.record.partitions);
                    result
                }
                Err(error) => {
                    tracing::warn!(topic = topic.name(), %error, "delete topic failed");
                    let result = result.with_error_code(registry_code(&error).code());
                    if ctx.version() >= 5 {
                        result.with_error_message(Some(StrBytes::from_string(error.to_string())))
                    } else {
                        result
                    }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Adds partitions to topics; every topic asked about gets an answer.
pub(crate) async fn create_partitions(
    ctx: RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let me = ctx.broker.config.broker_id;
    let growth = request
        .topics
        .iter()
        .filter_map(|t| {
            let current = ctx.broker.topics.get(&t.name)?.record.partitions;
            u64::try_from(t.count.saturating_sub(current)).ok()
        })
        .sum();
    if let Some(message) = over_request_limit(&ctx, growth) {
        tracing::info!(growth, "create partitions refused: {message}");
        let results = request
            .topics
            .into_iter()
            .map(|t| {
                CreatePartitionsTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(ResponseError::PolicyViolation.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone())))
            })
            .collect();
        return CreatePartitionsResponse::default().with_results(results);
    }
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let outcome = match &topic.assignments {
                Some(assignments)
                    if assignments
                        .iter()
                        .any(|a| a.broker_ids.iter().any(|b| b.0 != me)) =>
                {
                    Err(RegistryError::InvalidReplicaAssignment(format!(
                        "assignments must name only broker {me}"
                    )))
                }
                _ => ctx.broker.topics.add_partitions(
                    &topic.name,
                    topic.count,
                    request.validate_only,
                ),
            };
            match outcome {
                Ok(()) => result,
                Err(error) => result
                    .with_error_code(registry_code(&error).code())
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
