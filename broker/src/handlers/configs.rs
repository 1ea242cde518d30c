//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and this broker (whose
//! dynamic configs are the `log.*` defaults of topic configs).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::dynamic_config::{Compute, DynamicConfigError, Level, Values};
use crate::error_codes::metadata_code;
use crate::group_configs::{GroupConfigError, GroupConfigOp};
use crate::metadata::MetadataError;
use crate::topics::alter::{dynamic_values_after, topic_configs_after, AlterError};
use crate::topics::config::ConfigType;
use crate::topics::describe::{self, Described};

/// ConfigResource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// ConfigResource type of a broker.
const RESOURCE_BROKER: i8 = 4;
/// ConfigResource type of a group (consumer and share groups' configs).
const RESOURCE_GROUP: i8 = 32;

/// Describes topic or broker configs.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let refusal = refused(
                &ctx,
                resource.resource_type,
                &resource.resource_name,
                Operation::DescribeConfigs,
            );
            let entries = match refusal {
                Some(refusal) => Err(refusal),
                None => match resource.resource_type {
                    RESOURCE_TOPIC => topic_entries(&ctx, &resource.resource_name),
                    RESOURCE_BROKER => broker_level(&ctx.broker.config, &resource.resource_name)
                        .map(|level| describe::broker(&ctx.broker.config, level)),
                    RESOURCE_GROUP => {
                        Ok(ctx.broker.group_configs.describe(&resource.resource_name))
                    }
                    other => Err((
                        ResponseError::InvalidRequest,
                        format!("config resource type {other} is not supported"),
                    )),
                },
            };
            match entries {
                Ok(entries) => {
                    let keys = resource
                        .configuration_keys
                        // Null or empty: every config, as Kafka answers.
                        .filter(|keys| !keys.is_empty())
                        .map(|keys| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
                    let configs = entries
                        .into_iter()
                        .filter(|e| keys.as_ref().is_none_or(|keys| keys.contains(&e.name)))
                        .map(|e| {
                            encode(
                                e,
                                request.include_synonyms,
                                request.include_documentation,
                                ctx.version(),
                            )
                        })
                        .collect();
                    result.with_configs(configs)
                }
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn topic_entries(
    ctx: &RequestContext,
    name: &str,
) -> Result<Vec<Described>, (ResponseError, String)> {
    let image = ctx.broker.metadata.image();
    let topic = image.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic `{name}` does not exist"),
        )
    })?;
    Ok(describe::topic(&ctx.broker.config, &topic.configs))
}

/// Which dynamic values a BROKER resource name means: this broker's id or "" (every broker).
fn broker_level(config: &BrokerConfig, name: &str) -> Result<Level, (ResponseError, String)> {
    if name.is_empty() {
        Ok(Level::Cluster)
    } else if name == config.broker_id.to_string() {
        Ok(Level::Broker)
    } else {
        Err((
            ResponseError::InvalidRequest,
            format!("this is broker {}, not broker {name}", config.broker_id),
        ))
    }
}

fn encode(
    entry: Described,
    synonyms: bool,
    documentation: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    // A secret's value is never sent (Kafka's sensitive PASSWORD configs).
    let sensitive = entry.kind == ConfigType::Password;
    let value = (!sensitive).then(|| StrBytes::from_string(entry.value));
    let synonyms = if synonyms {
        vec![DescribeConfigsSynonym::default()
            .with_name(StrBytes::from_string(entry.name.clone()))
            .with_value(value.clone())
            .with_source(entry.source.code())]
    } else {
        Vec::new()
    };
    let result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(value)
        .with_read_only(entry.read_only)
        .with_is_sensitive(sensitive)
        .with_config_source(entry.source.code())
        .with_synonyms(synonyms);
    // Types and documentation exist from v3 on.
    if version >= 3 {
        result
            .with_config_type(entry.kind as i8)
            .with_documentation(documentation.then(|| StrBytes::from_static_str(entry.doc)))
    } else {
        result
    }
}

/// Replaces a topic's whole set of overrides (the legacy, non-incremental API).
pub(crate) async fn alter(
    ctx: RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        {
            let refusal = refused(
                &ctx,
                resource.resource_type,
                &resource.resource_name,
                Operation::AlterConfigs,
            );
            let outcome = match refusal {
                Some(refusal) => Err(refusal),
                None => match resource.resource_type {
                    RESOURCE_TOPIC => {
                        let parsed = resource
                            .configs
                            .into_iter()
                            .map(|c| match c.value {
                                Some(v) => Ok((c.name.to_string(), v.to_string())),
                                None => Err(MetadataError::InvalidConfig(format!(
                                    "null value for config `{}`",
                                    c.name
                                ))),
                            })
                            .collect::<Result<BTreeMap<_, _>, _>>();
                        match parsed {
                            Ok(configs) => ctx
                                .broker
                                .admin
                                .set_topic_configs(
                                    &resource.resource_name,
                                    configs,
                                    request.validate_only,
                                    CONFIG_TIMEOUT,
                                )
                                .await
                                .map_err(metadata_failure),
                            Err(error) => Err(metadata_failure(error)),
                        }
                    }
                    RESOURCE_BROKER => match resource
                        .configs
                        .into_iter()
                        .map(|c| match c.value {
                            Some(v) => Ok((c.name.to_string(), v.to_string())),
                            None => Err((
                                ResponseError::InvalidConfig,
                                format!("null value for config `{}`", c.name),
                            )),
                        })
                        .collect::<Result<BTreeMap<_, _>, _>>()
                        .and_then(|values| {
                            let level = broker_level(&ctx.broker.config, &resource.resource_name)?;
                            Ok((level, values))
                        }) {
                        Err(error) => Err(error),
                        Ok((level, values)) => {
                            let replace = |_: &Values| Ok(values.clone());
                            set_dynamic(&ctx.broker, level, &replace, request.validate_only).await
                        }
                    },
                    other => Err(not_alterable(other)),
                },
            };
            let (code, message) = split(outcome);
            responses.push(
                alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// How long a topic config change may take to take effect (the requests carry no timeout).
const CONFIG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Applies SET/DELETE/APPEND/SUBTRACT operations to topic overrides.
pub(crate) async fn incremental_alter(
    ctx: RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let outcome = alter_resource_incrementally(&ctx, &resource, request.validate_only).await;
        let (code, message) = split(outcome);
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// One resource's operations, authorized and applied (or only checked, `validate_only`).
async fn alter_resource_incrementally(
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let name = &resource.resource_name;
    if let Some(refusal) = refused(ctx, resource.resource_type, name, Operation::AlterConfigs) {
        return Err(refusal);
    }
    match resource.resource_type {
        RESOURCE_TOPIC => {
            alter_topic_incrementally(ctx, name, &resource.configs, validate_only).await
        }
        RESOURCE_BROKER => {
            alter_broker_incrementally(ctx, name, &resource.configs, validate_only).await
        }
        RESOURCE_GROUP => {
            alter_group_incrementally(ctx, name, &resource.configs, validate_only).await
        }
        other => Err(not_alterable(other)),
    }
}

/// Applies `ops` to topic `name`'s overrides and sets the result.
async fn alter_topic_incrementally(
    ctx: &RequestContext,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let image = ctx.broker.metadata.image();
    let topic = image.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic `{name}` does not exist"),
        )
    })?;
    let configs =
        topic_configs_after(&ctx.broker.config, &topic.configs, ops).map_err(alter_failure)?;
    ctx.broker
        .admin
        .set_topic_configs(name, configs, validate_only, CONFIG_TIMEOUT)
        .await
        .map_err(metadata_failure)
}

/// Applies `ops` to the dynamic configs of the level BROKER resource `name` means: checked
/// against its values now, then applied again to the latest ones as they are saved (another
/// broker may change the cluster-wide level meanwhile).
async fn alter_broker_incrementally(
    ctx: &RequestContext,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let config = &ctx.broker.config;
    let level = broker_level(config, name)?;
    dynamic_values_after(config, &config.dynamic.at(level), ops).map_err(alter_failure)?;
    let compute = |current: &Values| {
        dynamic_values_after(config, current, ops)
            .map_err(|e| DynamicConfigError::InvalidValue(e.to_string()))
    };
    set_dynamic(&ctx.broker, level, &compute, validate_only).await
}

/// Applies `ops` to group `name`'s configs (all checked first; none applied if one fails),
/// for every broker of a cluster.
async fn alter_group_incrementally(
    ctx: &RequestContext,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    if name.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "a group config needs a group id".into(),
        ));
    }
    let ops: Vec<GroupConfigOp> = ops
        .iter()
        .map(|op| {
            let key = op.name.to_string();
            match op.config_operation {
                0 => GroupConfigOp::Set(key, op.value.as_deref().unwrap_or_default().to_owned()),
                1 => GroupConfigOp::Delete(key),
                _ => GroupConfigOp::ListOp(key),
            }
        })
        .collect();
    ctx.broker
        .group_configs
        .alter(name, &ops, validate_only)
        .await
        .map_err(|error| {
            let code = match error {
                GroupConfigError::Save { .. }
                | GroupConfigError::Load(_)
                | GroupConfigError::Shared(_) => ResponseError::UnknownServerError,
                _ => ResponseError::InvalidConfig,
            };
            (code, error.to_string())
        })
}

fn alter_failure(error: AlterError) -> (ResponseError, String) {
    (error.code(), error.to_string())
}

fn metadata_failure(error: MetadataError) -> (ResponseError, String) {
    (metadata_code(&error), error.to_string())
}

/// Sets the dynamic broker configs of `level` to what `compute` makes of them and applies
/// them to every topic.
async fn set_dynamic(
    broker: &Broker,
    level: Level,
    compute: Compute<'_>,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    broker
        .config
        .dynamic
        .change(level, compute, validate_only)
        .await
        .map_err(dynamic_failure)?;
    if !validate_only {
        broker.admin.reapply_defaults();
    }
    Ok(())
}

fn dynamic_failure(error: DynamicConfigError) -> (ResponseError, String) {
    let code = match error {
        DynamicConfigError::NotDynamic(_) => ResponseError::InvalidRequest,
        DynamicConfigError::InvalidValue(_) => ResponseError::InvalidConfig,
        DynamicConfigError::Save { .. }
        | DynamicConfigError::Load(_)
        | DynamicConfigError::Shared(_) => ResponseError::UnknownServerError,
    };
    (code, error.to_string())
}

/// Kafka's check of a config resource: `operation` on the topic or group, or on the cluster
/// for a broker's configs.
fn refused(
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Option<(ResponseError, String)> {
    let (allowed, error) = match resource_type {
        RESOURCE_TOPIC => (
            ctx.may(operation, ResourceType::Topic, name),
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_BROKER => (
            ctx.may_on_cluster(operation),
            ResponseError::ClusterAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            ctx.may(operation, ResourceType::Group, name),
            ResponseError::GroupAuthorizationFailed,
        ),
        _ => return None,
    };
    (!allowed).then(|| (error, format!("not authorized to {operation:?} {name:?}")))
}

fn not_alterable(resource_type: i8) -> (ResponseError, String) {
    (
        ResponseError::InvalidRequest,
        format!("config resource type {resource_type} is not supported"),
    )
}

fn split(outcome: Result<(), (ResponseError, String)>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err((code, message)) => {
            tracing::info!(%message, "config change refused");
            (code.code(), Some(StrBytes::from_string(message)))
        }
    }
}
