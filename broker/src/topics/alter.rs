//! IncrementalAlterConfigs' operations on a set of configs, as Kafka applies them: SET and
//! DELETE of any config, APPEND and SUBTRACT of a list config's items (from its default when
//! it is not set). Pure functions of the configs and the operations, so every rule is tested
//! here; the handler authorizes, and the metadata source or the dynamic configs store the
//! result.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;

use super::config::{broker_default, ConfigType};
use crate::config::BrokerConfig;
use crate::dynamic_config::{self as dynamic, Values};
use tributary_crds::config::topic_key;

/// Operations of IncrementalAlterConfigs.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Why operations were refused; nothing of the request is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlterError {
    /// A topic resource named a key that is not a topic config.
    #[error("unknown topic config `{0}`")]
    UnknownTopicConfig(String),
    /// A broker resource named a key that cannot change without a restart.
    #[error("cannot update these configs dynamically: {0}")]
    NotDynamic(String),
    /// SET, APPEND or SUBTRACT without a value.
    #[error("config `{0}` needs a value")]
    NeedsValue(String),
    /// APPEND or SUBTRACT of a config that is not a list.
    #[error("APPEND and SUBTRACT need a list config; `{0}` is not one")]
    NotAList(String),
    /// An operation code Kafka does not define.
    #[error("unknown config operation {0}")]
    UnknownOperation(i8),
}

impl AlterError {
    /// The Kafka error the resource is answered with.
    pub fn code(&self) -> ResponseError {
        match self {
            AlterError::NotDynamic(_) | AlterError::UnknownOperation(_) => {
                ResponseError::InvalidRequest
            }
            AlterError::UnknownTopicConfig(_)
            | AlterError::NeedsValue(_)
            | AlterError::NotAList(_) => ResponseError::InvalidConfig,
        }
    }
}

/// A topic's overrides `current` with `ops` applied; every config must be a topic config.
pub fn topic_configs_after(
    broker: &BrokerConfig,
    current: &BTreeMap<String, String>,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, AlterError> {
    let mut configs = current.clone();
    for c in ops {
        let key =
            topic_key(&c.name).ok_or_else(|| AlterError::UnknownTopicConfig(c.name.to_string()))?;
        apply(&mut configs, c, key.kind, || {
            broker_default(broker, key.name)
        })?;
    }
    Ok(configs)
}

/// A level's dynamic broker values `current` with `ops` applied; every config must be
/// dynamic.
pub fn dynamic_values_after(
    config: &BrokerConfig,
    current: &Values,
    ops: &[AlterableConfig],
) -> Result<Values, AlterError> {
    let mut values = current.clone();
    for c in ops {
        let kind =
            dynamic::kind(&c.name).ok_or_else(|| AlterError::NotDynamic(c.name.to_string()))?;
        apply(&mut values, c, kind, || {
            super::config::dynamic_default(config, &c.name)
        })?;
    }
    Ok(values)
}

/// Applies operation `c` on a config of type `kind` to `configs`; APPEND and SUBTRACT start
/// from `default` when the config is not set there.
fn apply(
    configs: &mut BTreeMap<String, String>,
    c: &AlterableConfig,
    kind: ConfigType,
    default: impl FnOnce() -> String,
) -> Result<(), AlterError> {
    let name = c.name.as_str();
    let value = || {
        c.value
            .as_deref()
            .ok_or_else(|| AlterError::NeedsValue(name.to_string()))
    };
    match c.config_operation {
        OP_SET => {
            configs.insert(name.to_string(), value()?.to_string());
        }
        OP_DELETE => {
            configs.remove(name);
        }
        op @ (OP_APPEND | OP_SUBTRACT) => {
            if kind != ConfigType::List {
                return Err(AlterError::NotAList(name.to_string()));
            }
            let current = configs.get(name).cloned().unwrap_or_else(default);
            let mut items: Vec<String> = current
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            for item in value()?.split(',').map(str::trim) {
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
        other => return Err(AlterError::UnknownOperation(other)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::config::Flags;

    fn op(name: &str, operation: i8, value: Option<&str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.to_owned()))
            .with_config_operation(operation)
            .with_value(value.map(|v| StrBytes::from_string(v.to_owned())))
    }

    fn broker() -> BrokerConfig {
        BrokerConfig::resolve(Flags::default()).unwrap_or_else(|e| panic!("config: {e}"))
    }

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_and_delete_change_only_the_named_override() {
        let current = configs(&[("retention.ms", "1000"), ("cleanup.policy", "delete")]);
        let after = topic_configs_after(
            &broker(),
            &current,
            &[
                op("retention.ms", OP_SET, Some("2000")),
                op("cleanup.policy", OP_DELETE, None),
            ],
        );
        assert_eq!(after, Ok(configs(&[("retention.ms", "2000")])));
    }

    #[test]
    fn append_and_subtract_edit_a_list_from_its_default_when_unset() {
        let after = topic_configs_after(
            &broker(),
            &BTreeMap::new(),
            &[op("cleanup.policy", OP_APPEND, Some("compact"))],
        );
        assert_eq!(after, Ok(configs(&[("cleanup.policy", "delete,compact")])));
        let after = topic_configs_after(
            &broker(),
            &configs(&[("cleanup.policy", "delete, compact")]),
            &[
                op("cleanup.policy", OP_APPEND, Some("compact")),
                op("cleanup.policy", OP_SUBTRACT, Some("delete")),
            ],
        );
        assert_eq!(after, Ok(configs(&[("cleanup.policy", "compact")])));
    }

    #[test]
    fn refusals_name_the_config_and_carry_kafkas_codes() {
        let refused = |ops: &[AlterableConfig]| {
            topic_configs_after(&broker(), &BTreeMap::new(), ops)
                .map_err(|e| (e.code(), e.to_string()))
        };
        assert_eq!(
            refused(&[op("no.such.config", OP_SET, Some("1"))]),
            Err((
                ResponseError::InvalidConfig,
                "unknown topic config `no.such.config`".into()
            ))
        );
        assert_eq!(
            refused(&[op("retention.ms", OP_SET, None)]),
            Err((
                ResponseError::InvalidConfig,
                "config `retention.ms` needs a value".into()
            ))
        );
        assert_eq!(
            refused(&[op("retention.ms", OP_APPEND, Some("1"))]),
            Err((
                ResponseError::InvalidConfig,
                "APPEND and SUBTRACT need a list config; `retention.ms` is not one".into()
            ))
        );
        assert_eq!(
            refused(&[op("retention.ms", 9, Some("1"))]),
            Err((
                ResponseError::InvalidRequest,
                "unknown config operation 9".into()
            ))
        );
    }

    #[test]
    fn a_broker_resource_takes_only_dynamic_configs() {
        let config = broker();
        let after = dynamic_values_after(
            &config,
            &Values::new(),
            &[op("log.retention.ms", OP_SET, Some("5000"))],
        );
        assert_eq!(after, Ok(configs(&[("log.retention.ms", "5000")])));
        let refused = dynamic_values_after(
            &config,
            &Values::new(),
            &[op("broker.id", OP_SET, Some("3"))],
        );
        assert_eq!(
            refused.map_err(|e| e.code()),
            Err(ResponseError::InvalidRequest)
        );
    }
}
