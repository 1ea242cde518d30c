//! Kafka-style `server.properties` files: the broker reads the keys Kafka operators already use
//! (and that the operator renders into the broker ConfigMap), so one config serves both.

use crate::config::Flags;

/// Why a properties file was refused.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct PropertiesError {
    line: usize,
    reason: String,
}

/// Parses `key=value` lines (`#`/`!` comments, blank lines ignored) into broker settings.
/// `env` supplies the per-pod values a shared file cannot hold (`BROKER_ID`, `POD_NAME`).
/// Unknown keys are logged and ignored, as Kafka does.
pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Flags, PropertiesError> {
    let mut flags = Flags::default();
    let mut advertised_suffix: Option<String> = None;
    let mut security = std::collections::BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let bad = |reason: String| PropertiesError {
            line: n + 1,
            reason,
        };
        let (key, value) = line
            .split_once(['=', ':'])
            .map(|(k, v)| (k.trim(), v.trim().to_string()))
            .ok_or_else(|| bad(format!("`{line}` is not key=value")))?;
        let number = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| bad(format!("{key}: `{v}` is not a number")))
        };
        let boolean = |v: &str| {
            v.parse::<bool>()
                .map_err(|_| bad(format!("{key}: `{v}` is not true or false")))
        };
        match key {
            "broker.id" | "node.id" => flags.broker_id = Some(narrow(number(&value)?, &bad)?),
            "listeners" => flags.listeners = Some(value),
            "advertised.listeners" => flags.advertised_listeners = Some(value),
            "listener.security.protocol.map" => flags.listener_security_protocol_map = Some(value),
            "inter.broker.listener.name" => flags.inter_broker_listener_name = Some(value),
            key if crate::security::settings::is_security_key(key) => {
                security.insert(key.to_string(), value);
            }
            "advertised.host.suffix" => advertised_suffix = Some(value),
            "log.dirs" | "log.dir" => {
                flags.data_dir = value.split(',').next().map(std::path::PathBuf::from);
            }
            "broker.rack" => flags.rack = Some(value),
            "num.partitions" => flags.num_partitions = Some(narrow(number(&value)?, &bad)?),
            "default.replication.factor" => {
                flags.default_replication_factor = Some(narrow(number(&value)?, &bad)?);
            }
            "auto.create.topics.enable" => flags.auto_create_topics = Some(boolean(&value)?),
            "log.retention.ms" => flags.log_retention_ms = Some(number(&value)?),
            "log.retention.minutes" => flags.log_retention_ms = Some(number(&value)? * 60_000),
            "log.retention.hours" => flags.log_retention_ms = Some(number(&value)? * 3_600_000),
            "log.retention.bytes" => flags.log_retention_bytes = Some(number(&value)?),
            "log.segment.bytes" => flags.log_segment_bytes = Some(narrow(number(&value)?, &bad)?),
            "log.roll.ms" => flags.log_segment_ms = Some(number(&value)?),
            "log.roll.hours" => flags.log_segment_ms = Some(number(&value)? * 3_600_000),
            "log.flush.interval.messages" => {
                flags.log_flush_interval_messages = Some(number(&value)?);
            }
            "log.flush.interval.ms" => flags.log_flush_interval_ms = Some(number(&value)?),
            "log.retention.check.interval.ms" => {
                flags.log_retention_check_interval_ms = Some(narrow(number(&value)?, &bad)?);
            }
            "log.cleaner.backoff.ms" => {
                flags.log_cleaner_backoff_ms = Some(narrow(number(&value)?, &bad)?);
            }
            "message.max.bytes" => flags.message_max_bytes = Some(narrow(number(&value)?, &bad)?),
            "max.uncompressed.batch.bytes" => {
                flags.max_uncompressed_batch_bytes = Some(narrow(number(&value)?, &bad)?);
            }
            "max.broker.partitions" => {
                flags.max_broker_partitions = Some(narrow(number(&value)?, &bad)?);
            }
            "max.partitions.per.request" => {
                flags.max_partitions_per_request = Some(narrow(number(&value)?, &bad)?);
            }
            "transactional.id.expiration.ms" => {
                flags.transactional_id_expiration_ms = Some(number(&value)?);
            }
            "producer.id.expiration.ms" => {
                flags.producer_id_expiration_ms = Some(number(&value)?);
            }
            "transaction.state.log.num.partitions" => {
                flags.transaction_state_log_num_partitions = Some(narrow(number(&value)?, &bad)?);
            }
            "offsets.topic.replication.factor" => {
                flags.offsets_topic_replication_factor = Some(narrow(number(&value)?, &bad)?);
            }
            "offsets.topic.num.partitions" => {
                flags.offsets_topic_num_partitions = Some(narrow(number(&value)?, &bad)?);
            }
            "offsets.retention.minutes" => flags.offsets_retention_minutes = Some(number(&value)?),
            "offsets.retention.check.interval.ms" => {
                flags.offsets_retention_check_interval_ms = Some(number(&value)?);
            }
            "group.initial.rebalance.delay.ms" => {
                flags.group_initial_rebalance_delay_ms = Some(number(&value)?);
            }
            "group.min.session.timeout.ms" => {
                flags.group_min_session_timeout_ms = Some(narrow(number(&value)?, &bad)?);
            }
            "group.max.session.timeout.ms" => {
                flags.group_max_session_timeout_ms = Some(narrow(number(&value)?, &bad)?);
            }
            "transaction.state.log.replication.factor" => {
                flags.transaction_state_log_replication_factor =
                    Some(narrow(number(&value)?, &bad)?);
            }
            "replica.lag.time.max.ms" => flags.replica_lag_time_max_ms = Some(number(&value)?),
            "replica.fsync.before.ack" => flags.replica_fsync_before_ack = Some(boolean(&value)?),
            "replica.fetch.wait.max.ms" => {
                flags.replica_fetch_wait_max_ms = Some(narrow(number(&value)?, &bad)?)
            }
            "transaction.partition.verification.enable" => {
                flags.transaction_partition_verification_enable = Some(boolean(&value)?)
            }
            "transaction.state.log.min.isr" => {
                flags.transaction_state_log_min_isr = Some(narrow(number(&value)?, &bad)?);
            }
            "transaction.max.timeout.ms" => {
                flags.transaction_max_timeout_ms = Some(narrow(number(&value)?, &bad)?)
            }
            "min.insync.replicas" => {
                flags.min_insync_replicas = Some(narrow(number(&value)?, &bad)?)
            }
            "log.cleanup.policy" => flags.log_cleanup_policy = Some(value),
            "compression.type" => flags.compression_type = Some(value),
            "unclean.leader.election.enable" => {
                flags.unclean_leader_election_enable = Some(boolean(&value)?);
            }
            "delete.topic.enable" => flags.delete_topic_enable = Some(boolean(&value)?),
            "socket.send.buffer.bytes" => {
                flags.socket_send_buffer_bytes = Some(narrow(number(&value)?, &bad)?);
            }
            "socket.receive.buffer.bytes" => {
                flags.socket_receive_buffer_bytes = Some(narrow(number(&value)?, &bad)?);
            }
            // Kafka's thread pools; this broker runs one async runtime with a worker per core.
            "num.io.threads" | "num.network.threads" => {
                tracing::info!(
                    key,
                    "no thread pool to size: one worker per core serves every connection"
                );
            }
            "socket.request.max.bytes" => {
                flags.socket_request_max_bytes = Some(narrow(number(&value)?, &bad)?);
            }
            "max.connections" => flags.max_connections = Some(narrow(number(&value)?, &bad)?),
            "admin.port" => flags.http_listener = Some(format!("0.0.0.0:{value}")),
            "cluster.name" => flags.cluster_name = Some(value.to_string()),
            "cluster.namespace" => flags.cluster_namespace = Some(value.to_string()),
            "broker.lease.duration.ms" => {
                flags.broker_lease_duration_ms = Some(narrow(number(&value)?, &bad)?);
            }
            "broker.lease.renew.interval.ms" => {
                flags.broker_lease_renew_interval_ms = Some(narrow(number(&value)?, &bad)?);
            }
            "external.listeners" => flags.external_listeners = Some(value),
            // Always `<cluster>-broker-`, which cluster mode derives from cluster.name.
            "broker.lease.prefix" => {}
            _ => tracing::warn!(key, "ignoring unknown broker property"),
        }
    }
    if flags.broker_id.is_none() {
        if let Some(id) = env("BROKER_ID").and_then(|v| v.trim().parse().ok()) {
            flags.broker_id = Some(id);
        }
    }
    if flags.advertised_listeners.is_none() {
        if let (Some(suffix), Some(pod), Some(listeners)) =
            (advertised_suffix, env("POD_NAME"), &flags.listeners)
        {
            // Each listener advertises the pod's DNS name with its own port.
            let advertised: Vec<String> = listeners
                .split(',')
                .filter_map(|entry| {
                    let (name, addr) = entry.trim().split_once("://")?;
                    let (_, port) = addr.rsplit_once(':')?;
                    Some(format!("{name}://{pod}.{suffix}:{port}"))
                })
                .collect();
            flags.advertised_listeners = Some(advertised.join(","));
        }
    }
    if !security.is_empty() {
        flags.security = Some(security);
    }
    Ok(flags)
}

fn narrow<T: TryFrom<i64>>(
    value: i64,
    bad: &impl Fn(String) -> PropertiesError,
) -> Result<T, PropertiesError> {
    T::try_from(value).map_err(|_| bad(format!("{value} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_keys_become_broker_settings() {
        let text = "# comment\nlisteners=PLAIN://0.0.0.0:9092\nlog.dirs=/var/lib/tributary/data\n\
                    num.partitions=6\nlog.retention.hours=2\nauto.create.topics.enable=false\n\
                    advertised.host.suffix=demo-brokers.ns.svc\nadmin.port=9644\nunknown.key=1\n\
                    log.flush.interval.messages=10000\nlog.flush.interval.ms=1000\n\
                    producer.id.expiration.ms=3600000\ntransactional.id.expiration.ms=7200000\n\
                    log.cleaner.backoff.ms=500\ntransaction.state.log.num.partitions=5\n\
                    transaction.state.log.replication.factor=2\ntransaction.state.log.min.isr=1\n\
                    offsets.topic.replication.factor=2\nreplica.fsync.before.ack=true\n\
                    offsets.topic.num.partitions=3\noffsets.retention.minutes=60\n\
                    offsets.retention.check.interval.ms=1000\ngroup.initial.rebalance.delay.ms=0\n\
                    group.min.session.timeout.ms=500\ngroup.max.session.timeout.ms=60000\n";
        let env = |k: &str| match k {
            "BROKER_ID" => Some("2".to_string()),
            "POD_NAME" => Some("demo-broker-2".to_string()),
            _ => None,
        };
        let flags = parse(text, env).unwrap();
        assert_eq!(flags.listeners.as_deref(), Some("PLAIN://0.0.0.0:9092"));
        assert_eq!(
            flags.advertised_listeners.as_deref(),
            Some("PLAIN://demo-broker-2.demo-brokers.ns.svc:9092")
        );
        assert_eq!(flags.broker_id, Some(2));
        assert_eq!(flags.num_partitions, Some(6));
        assert_eq!(flags.log_retention_ms, Some(7_200_000));
        assert_eq!(flags.auto_create_topics, Some(false));
        assert_eq!(flags.http_listener.as_deref(), Some("0.0.0.0:9644"));
        assert_eq!(flags.log_flush_interval_messages, Some(10_000));
        assert_eq!(flags.log_flush_interval_ms, Some(1_000));
        assert_eq!(flags.producer_id_expiration_ms, Some(3_600_000));
        assert_eq!(flags.transactional_id_expiration_ms, Some(7_200_000));
        assert_eq!(flags.log_cleaner_backoff_ms, Some(500));
        assert_eq!(flags.transaction_state_log_num_partitions, Some(5));
        assert_eq!(flags.transaction_state_log_replication_factor, Some(2));
        assert_eq!(flags.transaction_state_log_min_isr, Some(1));
        assert_eq!(flags.offsets_topic_replication_factor, Some(2));
        assert_eq!(flags.replica_fsync_before_ack, Some(true));
        assert_eq!(flags.offsets_topic_num_partitions, Some(3));
        assert_eq!(flags.offsets_retention_minutes, Some(60));
        assert_eq!(flags.offsets_retention_check_interval_ms, Some(1000));
        assert_eq!(flags.group_initial_rebalance_delay_ms, Some(0));
        assert_eq!(flags.group_min_session_timeout_ms, Some(500));
        assert_eq!(flags.group_max_session_timeout_ms, Some(60_000));
        let text = "log.cleanup.policy=compact,delete\ncompression.type=lz4\n\
                    unclean.leader.election.enable=true\ndelete.topic.enable=false\n\
                    socket.send.buffer.bytes=131072\nsocket.receive.buffer.bytes=-1\n\
                    num.io.threads=8\nnum.network.threads=3\n";
        let flags = parse(text, |_| None).unwrap();
        assert_eq!(flags.log_cleanup_policy.as_deref(), Some("compact,delete"));
        assert_eq!(flags.compression_type.as_deref(), Some("lz4"));
        assert_eq!(flags.unclean_leader_election_enable, Some(true));
        assert_eq!(flags.delete_topic_enable, Some(false));
        assert_eq!(flags.socket_send_buffer_bytes, Some(131_072));
        assert_eq!(flags.socket_receive_buffer_bytes, Some(-1));
    }

    #[test]
    fn listener_and_security_keys_are_kept_with_kafkas_names() {
        let text = "listeners=INTERNAL://:9092,EXTERNAL://:9093\n\
                    listener.security.protocol.map=INTERNAL:SSL,EXTERNAL:SASL_SSL\n\
                    inter.broker.listener.name=INTERNAL\n\
                    advertised.host.suffix=b.ns.svc\n\
                    ssl.keystore.location=/certs/tls.crt\n\
                    listener.name.external.sasl.enabled.mechanisms=SCRAM-SHA-512\n\
                    connections.max.reauth.ms=60000\n";
        let env = |k: &str| (k == "POD_NAME").then(|| "p-0".to_string());
        let flags = parse(text, env).unwrap();
        assert_eq!(
            flags.advertised_listeners.as_deref(),
            Some("INTERNAL://p-0.b.ns.svc:9092,EXTERNAL://p-0.b.ns.svc:9093")
        );
        assert_eq!(
            flags.inter_broker_listener_name.as_deref(),
            Some("INTERNAL")
        );
        let security = flags.security.unwrap();
        assert_eq!(security["ssl.keystore.location"], "/certs/tls.crt");
        assert_eq!(
            security["listener.name.external.sasl.enabled.mechanisms"],
            "SCRAM-SHA-512"
        );
        assert_eq!(security["connections.max.reauth.ms"], "60000");
    }

    #[test]
    fn malformed_lines_and_values_are_errors() {
        assert!(parse("just-a-key\n", |_| None).is_err());
        assert!(parse("num.partitions=many\n", |_| None).is_err());
        assert!(parse("broker.id=99999999999\n", |_| None).is_err());
    }
}
