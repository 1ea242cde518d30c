//! Topic administration: CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

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

use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::error_codes::metadata_code;
use crate::metadata::{Growth, MetadataError, TopicImage, TopicSpec};
use crate::topics::describe;

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
    // Every topic is created at once and waited for until the request's one timeout, as
    // Kafka does: a request naming several topics answers within timeout_ms, not once per topic.
    let timeout = request_timeout(request.timeout_ms);
    let (ctx, duplicates) = (&ctx, &duplicates);
    let validate_only = request.validate_only;
    let results = request.topics.into_iter().map(|topic| async move {
        let name = topic.name.clone();
        if duplicates.contains(name.as_str()) {
            return failed(
                name,
                ResponseError::InvalidRequest,
                "topic appears more than once in the request".into(),
            );
        }
        if !ctx.may_create_topic(&name) {
            let error = ResponseError::TopicAuthorizationFailed;
            return failed(name, error, "not authorized to create it".into());
        }
        match create_one(ctx, topic, validate_only, timeout).await {
            Ok(image) => created(ctx, name, &image),
            Err(error) => {
                tracing::info!(topic = %name.as_str(), %error, "create topic refused");
                failed(name, metadata_code(&error), error.to_string())
            }
        }
    });
    let topics = futures::future::join_all(results).await;
    CreateTopicsResponse::default().with_topics(topics)
}

async fn create_one(
    ctx: &RequestContext,
    topic: CreatableTopic,
    validate_only: bool,
    timeout: Duration,
) -> Result<std::sync::Arc<TopicImage>, MetadataError> {
    let mut configs = BTreeMap::new();
    for config in topic.configs {
        let value = config.value.ok_or_else(|| {
            MetadataError::InvalidConfig(format!("null value for config `{}`", config.name))
        })?;
        configs.insert(config.name.to_string(), value.to_string());
    }
    let mut assignments: Vec<_> = topic
        .assignments
        .iter()
        .map(|a| {
            (
                a.partition_index,
                a.broker_ids.iter().map(|b| b.0).collect(),
            )
        })
        .collect();
    assignments.sort_by_key(|(index, _)| *index);
    if let Some((at, (index, _))) = (0..).zip(&assignments).find(|(at, (index, _))| at != index) {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "partition assignments must run 0, 1, ... without gaps; found {index} at position {at}"
        )));
    }
    let spec = TopicSpec {
        name: topic.name.to_string(),
        partitions: topic.num_partitions,
        replication_factor: topic.replication_factor,
        configs,
        assignments: assignments
            .into_iter()
            .map(|(_, replicas)| replicas)
            .collect(),
    };
    if validate_only {
        ctx.broker
            .admin
            .validate_create(&spec)
            .map(std::sync::Arc::new)
    } else {
        ctx.broker.admin.create_topic(spec, timeout).await
    }
}

fn created(ctx: &RequestContext, name: TopicName, topic: &TopicImage) -> CreatableTopicResult {
    let configs = describe::topic(&ctx.broker.config, &topic.configs)
        .into_iter()
        .map(|c| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_string(c.name))
                .with_value(Some(StrBytes::from_string(c.value)))
                .with_config_source(c.source.code())
                .with_read_only(c.read_only)
        })
        .collect();
    let result = CreatableTopicResult::default().with_name(name);
    let result = if ctx.version() >= 7 {
        result.with_topic_id(topic.id)
    } else {
        result
    };
    if ctx.version() >= 5 {
        result
            .with_num_partitions(topic.partition_count())
            .with_replication_factor(topic.replication_factor)
            .with_configs(Some(configs))
    } else {
        result
    }
}

/// How long a topic change may take to take effect: the request's timeout (at least 1 ms).
pub(crate) fn request_timeout(timeout_ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0).max(1))
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
    let request_timeout_ms = request.timeout_ms;
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
    if !ctx.broker.config.delete_topic_enable {
        // As Kafka: the whole request is refused, INVALID_REQUEST before v3.
        let error = if ctx.version() >= 3 {
            ResponseError::TopicDeletionDisabled
        } else {
            ResponseError::InvalidRequest
        };
        tracing::info!(
            topics = wanted.len(),
            "DeleteTopics refused: delete.topic.enable=false"
        );
        let responses = wanted
            .into_iter()
            .map(|(name, id)| {
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(id)
                    .with_error_code(error.code())
            })
            .collect();
        return DeleteTopicsResponse::default().with_responses(responses);
    }
    let image = ctx.broker.metadata.image();
    // Every topic at once, within the request's one timeout (see create_topics).
    let (ctx, image) = (&ctx, &image);
    let deletions = wanted.into_iter().map(|(name, id)| async move {
        let topic = match &name {
            Some(name) => image.topic(name),
            None => image.topic_by_id(&id),
        };
        let result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(id);
        // Kafka checks DESCRIBE and DELETE before it tells whether the topic exists.
        let checked = topic
            .map(|t| t.name.as_str())
            .or(name.as_deref().map(|n| n.as_str()));
        if let Some(checked) = checked {
            if !ctx.may(Operation::Delete, ResourceType::Topic, checked) {
                let error = ResponseError::TopicAuthorizationFailed;
                return result.with_error_code(error.code());
            }
        }
        let Some(topic) = topic else {
            let error = if name.is_some() {
                ResponseError::UnknownTopicOrPartition
            } else {
                ResponseError::UnknownTopicId
            };
            return result.with_error_code(error.code());
        };
        let result = result.with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))));
        let result = if ctx.version() >= 6 {
            result.with_topic_id(topic.id)
        } else {
            result
        };
        let timeout = request_timeout(request_timeout_ms);
        match ctx.broker.admin.delete_topic(&topic.name, timeout).await {
            Ok(deleted) => {
                ctx.broker
                    .metrics
                    .forget_topic(&deleted.name, deleted.partition_count());
                result
            }
            Err(error) => {
                tracing::warn!(topic = topic.name, %error, "delete topic failed");
                let result = result.with_error_code(metadata_code(&error).code());
                if ctx.version() >= 5 {
                    result.with_error_message(Some(StrBytes::from_string(error.to_string())))
                } else {
                    result
                }
            }
        }
    });
    let responses = futures::future::join_all(deletions).await;
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Adds partitions to topics; every topic asked about gets an answer.
pub(crate) async fn create_partitions(
    ctx: RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let image = ctx.broker.metadata.image();
    let growth = request
        .topics
        .iter()
        .filter_map(|t| {
            let current = image.topic(&t.name)?.partition_count();
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
    // Every topic at once, within the request's one timeout (see create_topics).
    let (ctx, validate_only, timeout) = (
        &ctx,
        request.validate_only,
        request_timeout(request.timeout_ms),
    );
    let growths = request.topics.into_iter().map(|topic| async move {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if !ctx.may(Operation::Alter, ResourceType::Topic, &topic.name) {
            let error = ResponseError::TopicAuthorizationFailed;
            return result.with_error_code(error.code());
        }
        let assignments = topic
            .assignments
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
            .collect();
        let growth = Growth {
            count: topic.count,
            assignments,
            validate_only,
        };
        let outcome = ctx
            .broker
            .admin
            .create_partitions(&topic.name, growth, timeout)
            .await;
        match outcome {
            Ok(()) => result,
            Err(error) => result
                .with_error_code(metadata_code(&error).code())
                .with_error_message(Some(StrBytes::from_string(error.to_string()))),
        }
    });
    let results = futures::future::join_all(growths).await;
    CreatePartitionsResponse::default().with_results(results)
}
