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
use crate::error_codes::metadata_code;
use crate::metadata::MetadataError;
use crate::topics::config::{
    broker_default, find_key, static_default, ConfigType, TOPIC_CONFIG_KEYS,
};
use crate::topics::dynamic::{
    self, Compute, DynamicConfigError, Level, Values, DYNAMIC_LOG_KEYS, KERBEROS_KEYS,
    REPLICATION_RATE_KEYS,
};

/// ConfigResource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// ConfigResource type of a broker.
const RESOURCE_BROKER: i8 = 4;
/// ConfigSource: a per-topic override.
pub(crate) const CONFIG_SOURCE_TOPIC: i8 = 1;
/// ConfigSource: a dynamic config of this broker.
const CONFIG_SOURCE_DYNAMIC_BROKER: i8 = 2;
/// ConfigSource: a dynamic config of every broker.
const CONFIG_SOURCE_DYNAMIC_DEFAULT: i8 = 3;
/// ConfigSource: set in the broker's static configuration.
const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;
/// ConfigSource: the built-in default.
pub(crate) const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// One described config before it is encoded.
struct Entry {
    name: String,
    value: String,
    source: i8,
    kind: ConfigType,
    doc: &'static str,
    read_only: bool,
}

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
                    RESOURCE_BROKER => broker_entries(&ctx.broker.config, &resource.resource_name),
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

fn topic_entries(ctx: &RequestContext, name: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    let image = ctx.broker.metadata.image();
    let topic = image.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic `{name}` does not exist"),
        )
    })?;
    let broker = &ctx.broker.config;
    Ok(TOPIC_CONFIG_KEYS
        .iter()
        .map(|key| {
            let (value, source) = match topic.configs.get(key.name) {
                Some(v) => (v.clone(), CONFIG_SOURCE_TOPIC),
                None => dynamic_value(broker, key.name)
                    .unwrap_or_else(|| (static_default(broker, key.name), CONFIG_SOURCE_DEFAULT)),
            };
            Entry {
                name: key.name.to_string(),
                value,
                source,
                kind: key.kind,
                doc: key.doc,
                read_only: false,
            }
        })
        .collect())
}

/// The dynamic broker config standing in for topic key `topic_key`'s default, with its source.
fn dynamic_value(broker: &BrokerConfig, topic_key: &str) -> Option<(String, i8)> {
    let (value, level) = broker.dynamic.get(dynamic::broker_key(topic_key)?)?;
    Some((value, source_of(level)))
}

fn source_of(level: Level) -> i8 {
    match level {
        Level::Broker => CONFIG_SOURCE_DYNAMIC_BROKER,
        Level::Cluster => CONFIG_SOURCE_DYNAMIC_DEFAULT,
    }
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

/// A BROKER resource's configs: for the cluster-wide resource ("") its dynamic values alone,
/// for this broker its static settings, then its dynamic `log.*` defaults, replication rates
/// and Kerberos settings.
fn broker_entries(
    config: &BrokerConfig,
    name: &str,
) -> Result<Vec<Entry>, (ResponseError, String)> {
    if broker_level(config, name)? == Level::Cluster {
        // Kafka describes the cluster-wide default resource by its dynamic values alone.
        return Ok(cluster_default_entries(config));
    }
    Ok(static_entries(config)
        .chain(dynamic_log_entries(config))
        .chain(replication_rate_entries(config))
        .chain(kerberos_entries(config))
        .collect())
}

/// The dynamic values set for every broker.
fn cluster_default_entries(config: &BrokerConfig) -> Vec<Entry> {
    config
        .dynamic
        .at(Level::Cluster)
        .into_iter()
        .map(|(name, value)| Entry {
            kind: dynamic::kind(&name).unwrap_or(ConfigType::String),
            name,
            value,
            source: CONFIG_SOURCE_DYNAMIC_DEFAULT,
            doc: "",
            read_only: false,
        })
        .collect()
}

/// The broker's static settings, which only a restart changes.
fn static_entries(config: &BrokerConfig) -> impl Iterator<Item = Entry> {
    static_settings(config)
        .into_iter()
        .map(|(name, value, kind)| Entry {
            name: name.to_string(),
            value,
            source: CONFIG_SOURCE_STATIC_BROKER,
            kind,
            doc: "",
            read_only: true,
        })
}

/// The name, value and type of each static setting a broker describes.
fn static_settings(config: &BrokerConfig) -> Vec<(&'static str, String, ConfigType)> {
    vec![
        ("broker.id", config.broker_id.to_string(), ConfigType::Int),
        ("node.id", config.broker_id.to_string(), ConfigType::Int),
        ("listeners", listeners(config), ConfigType::List),
        (
            "advertised.listeners",
            advertised_listeners(config),
            ConfigType::List,
        ),
        (
            "log.dirs",
            config.data_dir.display().to_string(),
            ConfigType::String,
        ),
        (
            "num.partitions",
            config.num_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "default.replication.factor",
            config.default_replication_factor.to_string(),
            ConfigType::Int,
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            ConfigType::Boolean,
        ),
        (
            "socket.request.max.bytes",
            config.socket_request_max_bytes.to_string(),
            ConfigType::Int,
        ),
    ]
}

/// `listeners`: each listener's name and bind address.
fn listeners(config: &BrokerConfig) -> String {
    config
        .listeners
        .all
        .iter()
        .map(|l| format!("{}://{}", l.name, l.bind))
        .collect::<Vec<_>>()
        .join(",")
}

/// `advertised.listeners`: each listener's name and the address clients are given.
fn advertised_listeners(config: &BrokerConfig) -> String {
    config
        .listeners
        .all
        .iter()
        .map(|l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port))
        .collect::<Vec<_>>()
        .join(",")
}

/// The dynamic `log.*` defaults of topic configs, else their static defaults.
fn dynamic_log_entries(config: &BrokerConfig) -> impl Iterator<Item = Entry> + '_ {
    DYNAMIC_LOG_KEYS.iter().map(move |&(name, topic_key)| {
        let value = dynamic_or(config, name, || {
            (
                static_default(config, topic_key),
                CONFIG_SOURCE_STATIC_BROKER,
            )
        });
        let kind = dynamic::kind(name).unwrap_or(ConfigType::String);
        alterable_entry(name, value, kind)
    })
}

/// The replication throttle rates, unbounded by default.
fn replication_rate_entries(config: &BrokerConfig) -> impl Iterator<Item = Entry> + '_ {
    REPLICATION_RATE_KEYS.iter().map(move |&name| {
        let value = dynamic_or(config, name, || {
            (i64::MAX.to_string(), CONFIG_SOURCE_DEFAULT)
        });
        alterable_entry(name, value, ConfigType::Long)
    })
}

/// The Kerberos login settings, else Kafka's defaults.
fn kerberos_entries(config: &BrokerConfig) -> impl Iterator<Item = Entry> + '_ {
    KERBEROS_KEYS.iter().map(move |&(name, kind, default)| {
        let value = dynamic_or(config, name, || (default.to_owned(), CONFIG_SOURCE_DEFAULT));
        alterable_entry(name, value, kind)
    })
}

/// Dynamic config `name`'s value and source where it is set, else `default`'s.
fn dynamic_or(
    config: &BrokerConfig,
    name: &str,
    default: impl FnOnce() -> (String, i8),
) -> (String, i8) {
    match config.dynamic.get(name) {
        Some((value, level)) => (value, source_of(level)),
        None => default(),
    }
}

/// A dynamic config as described: alterable, without documentation.
fn alterable_entry(name: &str, (value, source): (String, i8), kind: ConfigType) -> Entry {
    Entry {
        name: name.to_string(),
        value,
        source,
        kind,
        doc: "",
        read_only: false,
    }
}

/// What a dynamic broker config is when no dynamic value is set: its topic config's static
/// default, or unbounded for a replication throttle rate.
fn dynamic_default(config: &BrokerConfig, broker_key: &str) -> String {
    match dynamic::topic_key(broker_key) {
        Some(topic_key) => static_default(config, topic_key),
        None => dynamic::kerberos_default(broker_key)
            .map_or_else(|| i64::MAX.to_string(), str::to_owned),
    }
}

fn encode(
    entry: Entry,
    synonyms: bool,
    documentation: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let value = Some(StrBytes::from_string(entry.value));
    let synonyms = if synonyms {
        vec![DescribeConfigsSynonym::default()
            .with_name(StrBytes::from_string(entry.name.clone()))
            .with_value(value.clone())
            .with_source(entry.source)]
    } else {
        Vec::new()
    };
    let result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(value)
        .with_read_only(entry.read_only)
        .with_config_source(entry.source)
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

/// Operations of IncrementalAlterConfigs.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

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
    let configs = topic_configs_after(&ctx.broker.config, &topic.configs, ops)?;
    ctx.broker
        .admin
        .set_topic_configs(name, configs, validate_only, CONFIG_TIMEOUT)
        .await
        .map_err(metadata_failure)
}

/// A topic's overrides `current` with `ops` applied; every config must be a topic config.
fn topic_configs_after(
    broker: &BrokerConfig,
    current: &BTreeMap<String, String>,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, (ResponseError, String)> {
    let mut configs = current.clone();
    for c in ops {
        let key = find_key(&c.name).ok_or_else(|| {
            (
                ResponseError::InvalidConfig,
                format!("unknown topic config `{}`", c.name),
            )
        })?;
        apply_op(&mut configs, change_of(c, key.kind), || {
            broker_default(broker, key.name)
        })?;
    }
    Ok(configs)
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
    dynamic_values_after(config, &config.dynamic.at(level), ops)?;
    let compute = |current: &Values| {
        dynamic_values_after(config, current, ops)
            .map_err(|(_, m)| DynamicConfigError::InvalidValue(m))
    };
    set_dynamic(&ctx.broker, level, &compute, validate_only).await
}

/// A level's dynamic values `current` with `ops` applied; every config must be dynamic.
fn dynamic_values_after(
    config: &BrokerConfig,
    current: &Values,
    ops: &[AlterableConfig],
) -> Result<Values, (ResponseError, String)> {
    let mut values = current.clone();
    for c in ops {
        let kind = dynamic::kind(&c.name).ok_or_else(|| dynamic_failure(not_dynamic(&c.name)))?;
        apply_op(&mut values, change_of(c, kind), || {
            dynamic_default(config, &c.name)
        })?;
    }
    Ok(values)
}

/// The operation `c` asks for on a config of type `kind`.
fn change_of(c: &AlterableConfig, kind: ConfigType) -> Change<'_> {
    Change {
        name: &c.name,
        kind,
        op: c.config_operation,
        value: c.value.as_deref(),
    }
}

/// One operation of IncrementalAlterConfigs on a config of type `kind`.
struct Change<'a> {
    name: &'a str,
    kind: ConfigType,
    op: i8,
    value: Option<&'a str>,
}

/// Applies `change` to `configs`; APPEND and SUBTRACT start from `default` when the config is
/// not set there.
fn apply_op(
    configs: &mut BTreeMap<String, String>,
    change: Change<'_>,
    default: impl FnOnce() -> String,
) -> Result<(), (ResponseError, String)> {
    let Change {
        name,
        kind,
        op,
        value,
    } = change;
    let invalid = |msg: String| (ResponseError::InvalidConfig, msg);
    let need_value = || value.ok_or_else(|| invalid(format!("config `{name}` needs a value")));
    match op {
        OP_SET => {
            configs.insert(name.to_string(), need_value()?.to_string());
        }
        OP_DELETE => {
            configs.remove(name);
        }
        OP_APPEND | OP_SUBTRACT => {
            if kind != ConfigType::List {
                return Err(invalid(format!(
                    "APPEND and SUBTRACT need a list config; `{name}` is not one"
                )));
            }
            let current = configs.get(name).cloned().unwrap_or_else(default);
            let mut items: Vec<String> = current
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            for item in need_value()?.split(',').map(str::trim) {
                if op == OP_APPEND {
                    if !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    }
                } else {
                    items.retain(|i| i != item);
                }
            }
            configs.insert(name.to_string(), items.join(","));
        }
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("unknown config operation {other}"),
            ))
        }
    }
    Ok(())
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

fn not_dynamic(name: &str) -> DynamicConfigError {
    DynamicConfigError::NotDynamic(name.to_string())
}

fn dynamic_failure(error: DynamicConfigError) -> (ResponseError, String) {
    let code = match error {
        DynamicConfigError::NotDynamic(_) => ResponseError::InvalidRequest,
        DynamicConfigError::InvalidValue(_) => ResponseError::InvalidConfig,
        DynamicConfigError::Save { .. }
        | DynamicConfigError::Load { .. }
        | DynamicConfigError::Shared(_) => ResponseError::UnknownServerError,
    };
    (code, error.to_string())
}

/// Kafka's check of a config resource: `operation` on the topic, or on the cluster for a
/// broker's configs.
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
