//! Kafka-style `server.properties` files: the broker reads the keys Kafka operators already use
//! (and that the operator renders into the broker ConfigMap), so one config serves both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tributary_crds::config::{check_value, ConfigError, Scope};

use crate::flags::Flags;

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
    let mut parsed = Parsed::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        parsed.line(line).map_err(|reason| PropertiesError {
            line: n + 1,
            reason,
        })?;
    }
    Ok(parsed.finish(env))
}

/// The settings read so far, with the keys that only take effect once the file is read.
#[derive(Default)]
struct Parsed {
    flags: Flags,
    /// `advertised.host.suffix`: builds `advertised.listeners` from the pod name when the file
    /// does not set them.
    advertised_suffix: Option<String>,
    /// Security keys, by their Kafka names.
    security: BTreeMap<String, String>,
}

/// A property's value, with its key for the error message.
struct Value<'a> {
    key: &'a str,
    text: String,
}

impl Value<'_> {
    fn int(&self) -> Result<i64, String> {
        let (key, v) = (self.key, &self.text);
        v.parse::<i64>()
            .map_err(|_| format!("{key}: `{v}` is not a number"))
    }

    /// A number that must fit the setting's type.
    fn narrow<T: TryFrom<i64>>(&self) -> Result<T, String> {
        let value = self.int()?;
        T::try_from(value).map_err(|_| format!("{value} is out of range"))
    }

    fn boolean(&self) -> Result<bool, String> {
        let (key, v) = (self.key, &self.text);
        v.parse::<bool>()
            .map_err(|_| format!("{key}: `{v}` is not true or false"))
    }
}

impl Parsed {
    /// Reads one `key=value` (or `key:value`) line; the error is the reason only.
    fn line(&mut self, line: &str) -> Result<(), String> {
        let (key, text) = line
            .split_once(['=', ':'])
            .map(|(k, v)| (k.trim(), v.trim().to_string()))
            .ok_or_else(|| format!("`{line}` is not key=value"))?;
        if !self.set(Value { key, text })? {
            tracing::warn!(key, "ignoring unknown broker property");
        }
        Ok(())
    }

    /// Where each known key's value goes; false for a key this broker does not know. A key of
    /// the shared configuration table (what a KafkaCluster may set) is first held to that
    /// table's type and check, so a value is accepted or refused alike by the CRD, the
    /// operator and the broker.
    fn set(&mut self, v: Value<'_>) -> Result<bool, String> {
        match check_value(Scope::Broker, v.key, &v.text) {
            Ok(()) | Err(ConfigError::UnknownKey { .. }) => {}
            Err(refused) => return Err(refused.to_string()),
        }
        let f = &mut self.flags;
        match v.key {
            "broker.id" | "node.id" => f.broker_id = Some(v.narrow()?),
            "listeners" => f.listeners = Some(v.text),
            "advertised.listeners" => f.advertised_listeners = Some(v.text),
            "listener.security.protocol.map" => f.listener_security_protocol_map = Some(v.text),
            "inter.broker.listener.name" => f.inter_broker_listener_name = Some(v.text),
            key if crate::security::settings::is_security_key(key) => {
                self.security.insert(key.to_string(), v.text);
            }
            "advertised.host.suffix" => self.advertised_suffix = Some(v.text),
            "log.dirs" | "log.dir" => f.data_dir = v.text.split(',').next().map(PathBuf::from),
            "broker.rack" => f.rack = Some(v.text),
            "confluent.schema.registry.url" => f.schema_registry_url = Some(v.text),
            "num.partitions" => f.num_partitions = Some(v.narrow()?),
            "default.replication.factor" => f.default_replication_factor = Some(v.narrow()?),
            "auto.create.topics.enable" => f.auto_create_topics = Some(v.boolean()?),
            "log.retention.ms" => f.log_retention_ms = Some(v.int()?),
            "log.retention.minutes" => f.log_retention_ms = Some(retention(v.int()?, 60_000)),
            "log.retention.hours" => f.log_retention_ms = Some(retention(v.int()?, 3_600_000)),
            "log.retention.bytes" => f.log_retention_bytes = Some(v.int()?),
            "log.segment.bytes" => f.log_segment_bytes = Some(v.narrow()?),
            "log.roll.ms" => f.log_segment_ms = Some(v.int()?),
            "log.roll.hours" => f.log_segment_ms = Some(v.int()? * 3_600_000),
            "log.flush.interval.messages" => f.log_flush_interval_messages = Some(v.int()?),
            "log.flush.interval.ms" => f.log_flush_interval_ms = Some(v.int()?),
            "log.retention.check.interval.ms" => {
                f.log_retention_check_interval_ms = Some(v.narrow()?);
            }
            "log.cleaner.backoff.ms" => f.log_cleaner_backoff_ms = Some(v.narrow()?),
            "remote.log.storage.system.enable" => {
                f.remote_log_storage_system_enable = Some(v.boolean()?);
            }
            "remote.log.manager.task.interval.ms" => {
                f.remote_log_manager_task_interval_ms = Some(v.narrow()?);
            }
            // The bucket, as the flags of the same names (a StatefulSet's rendered
            // server.properties can carry them; credentials better come from a mounted Secret
            // through remote.storage.credentials.dir, re-read when rotated, or from
            // TRIBUTARY_REMOTE_STORAGE_* or AWS_* variables, which override the file).
            "remote.storage.url" => f.remote_storage_url = Some(v.text),
            "remote.storage.endpoint" => f.remote_storage_endpoint = Some(v.text),
            "remote.storage.region" => f.remote_storage_region = Some(v.text),
            "remote.storage.path.style" => f.remote_storage_path_style = Some(v.boolean()?),
            "remote.storage.access.key.id" => f.remote_storage_access_key_id = Some(v.text),
            "remote.storage.secret.access.key" => {
                f.remote_storage_secret_access_key = Some(v.text);
            }
            "remote.storage.credentials.dir" => {
                f.remote_storage_credentials_dir = Some(PathBuf::from(v.text));
            }
            "remote.fetch.cache.bytes" => f.remote_fetch_cache_bytes = Some(v.narrow()?),
            "remote.fetch.max.wait.ms" => f.remote_fetch_max_wait_ms = Some(v.narrow()?),
            "remote.list.offsets.request.timeout.ms" => {
                f.remote_list_offsets_request_timeout_ms = Some(v.narrow()?);
            }
            "message.max.bytes" => f.message_max_bytes = Some(v.narrow()?),
            "max.uncompressed.batch.bytes" => f.max_uncompressed_batch_bytes = Some(v.narrow()?),
            "max.broker.partitions" => f.max_broker_partitions = Some(v.narrow()?),
            "max.partitions.per.request" => f.max_partitions_per_request = Some(v.narrow()?),
            "transactional.id.expiration.ms" => f.transactional_id_expiration_ms = Some(v.int()?),
            "producer.id.expiration.ms" => f.producer_id_expiration_ms = Some(v.int()?),
            "transaction.state.log.num.partitions" => {
                f.transaction_state_log_num_partitions = Some(v.narrow()?);
            }
            "offsets.topic.replication.factor" => {
                f.offsets_topic_replication_factor = Some(v.narrow()?);
            }
            "offsets.topic.num.partitions" => f.offsets_topic_num_partitions = Some(v.narrow()?),
            "offsets.retention.minutes" => f.offsets_retention_minutes = Some(v.int()?),
            "offsets.retention.check.interval.ms" => {
                f.offsets_retention_check_interval_ms = Some(v.int()?);
            }
            "group.initial.rebalance.delay.ms" => {
                f.group_initial_rebalance_delay_ms = Some(v.int()?);
            }
            "group.min.session.timeout.ms" => f.group_min_session_timeout_ms = Some(v.narrow()?),
            "group.max.session.timeout.ms" => f.group_max_session_timeout_ms = Some(v.narrow()?),
            "group.coordinator.rebalance.protocols" => {
                f.group_coordinator_rebalance_protocols = Some(v.text);
            }
            "group.consumer.session.timeout.ms" => {
                f.group_consumer_session_timeout_ms = Some(v.narrow()?);
            }
            "group.consumer.heartbeat.interval.ms" => {
                f.group_consumer_heartbeat_interval_ms = Some(v.narrow()?);
            }
            "group.consumer.assignors" => f.group_consumer_assignors = Some(v.text),
            "group.consumer.migration.policy" => {
                f.group_consumer_migration_policy = Some(v.text);
            }
            "group.max.size" => f.group_max_size = Some(v.narrow()?),
            "group.consumer.max.size" => f.group_consumer_max_size = Some(v.narrow()?),
            "transaction.state.log.replication.factor" => {
                f.transaction_state_log_replication_factor = Some(v.narrow()?);
            }
            "replica.lag.time.max.ms" => f.replica_lag_time_max_ms = Some(v.int()?),
            "replica.fsync.before.ack" => f.replica_fsync_before_ack = Some(v.boolean()?),
            "group.share.enable" => f.group_share_enable = Some(v.boolean()?),
            "replica.fetch.wait.max.ms" => f.replica_fetch_wait_max_ms = Some(v.narrow()?),
            "transaction.partition.verification.enable" => {
                f.transaction_partition_verification_enable = Some(v.boolean()?);
            }
            "transaction.state.log.min.isr" => f.transaction_state_log_min_isr = Some(v.narrow()?),
            "transaction.max.timeout.ms" => f.transaction_max_timeout_ms = Some(v.narrow()?),
            "min.insync.replicas" => f.min_insync_replicas = Some(v.narrow()?),
            "log.cleanup.policy" => f.log_cleanup_policy = Some(v.text),
            "compression.type" => f.compression_type = Some(v.text),
            "unclean.leader.election.enable" => {
                f.unclean_leader_election_enable = Some(v.boolean()?);
            }
            "delete.topic.enable" => f.delete_topic_enable = Some(v.boolean()?),
            "socket.send.buffer.bytes" => f.socket_send_buffer_bytes = Some(v.narrow()?),
            "socket.receive.buffer.bytes" => f.socket_receive_buffer_bytes = Some(v.narrow()?),
            // Kafka's thread pools; this broker runs one async runtime with a worker per core.
            "num.io.threads" | "num.network.threads" => tracing::info!(
                key = v.key,
                "no thread pool to size: one worker per core serves every connection"
            ),
            "socket.request.max.bytes" => f.socket_request_max_bytes = Some(v.narrow()?),
            "max.connections" => f.max_connections = Some(v.narrow()?),
            "admin.port" => f.http_listener = Some(format!("0.0.0.0:{}", v.text)),
            "cluster.name" => f.cluster_name = Some(v.text),
            "cluster.namespace" => f.cluster_namespace = Some(v.text),
            "broker.lease.duration.ms" => f.broker_lease_duration_ms = Some(v.narrow()?),
            "broker.lease.renew.interval.ms" => {
                f.broker_lease_renew_interval_ms = Some(v.narrow()?);
            }
            "external.listeners" => f.external_listeners = Some(v.text),
            // Always `<cluster>-broker-`, which cluster mode derives from cluster.name.
            "broker.lease.prefix" => {}
            // Kafka's controller settings: the operator's controller acts on them.
            "auto.leader.rebalance.enable"
            | "leader.imbalance.check.interval.seconds"
            | "leader.imbalance.per.broker.percentage" => {}
            key => match crate::share_broker_config::flag(f, key) {
                Some(flag) => *flag = Some(v.narrow()?),
                None => return Ok(false),
            },
        }
        Ok(true)
    }

    /// The settings, completed from `env` where the file leaves the per-pod ones out.
    fn finish(self, env: impl Fn(&str) -> Option<String>) -> Flags {
        let mut flags = self.flags;
        if flags.broker_id.is_none() {
            if let Some(id) = env("BROKER_ID").and_then(|v| v.trim().parse().ok()) {
                flags.broker_id = Some(id);
            }
        }
        if flags.advertised_listeners.is_none() {
            if let (Some(suffix), Some(pod), Some(listeners)) =
                (self.advertised_suffix, env("POD_NAME"), &flags.listeners)
            {
                flags.advertised_listeners = Some(pod_listeners(listeners, &pod, &suffix));
            }
        }
        if !self.security.is_empty() {
            flags.security = Some(self.security);
        }
        flags
    }
}

/// Retention in minutes or hours as milliseconds; any negative value is unlimited (-1), as
/// Kafka reads `log.retention.minutes` and `log.retention.hours`.
fn retention(count: i64, unit_ms: i64) -> i64 {
    if count < 0 {
        -1
    } else {
        count.saturating_mul(unit_ms)
    }
}

/// Each listener advertises the pod's DNS name (`<pod>.<suffix>`) with its own port.
fn pod_listeners(listeners: &str, pod: &str, suffix: &str) -> String {
    let advertised: Vec<String> = listeners
        .split(',')
        .filter_map(|entry| {
            let (name, addr) = entry.trim().split_once("://")?;
            let (_, port) = addr.rsplit_once(':')?;
            Some(format!("{name}://{pod}.{suffix}:{port}"))
        })
        .collect();
    advertised.join(",")
}

#[cfg(test)]
mod tests {
    use tributary_crds::config::{broker_value, Check, ConfigType, BROKER_KEYS};

    use super::*;

    #[test]
    fn remote_storage_keys_become_the_flags_of_the_same_names() {
        let text = "remote.log.storage.system.enable=true\nremote.storage.url=s3://b/p\n\
                    remote.storage.endpoint=http://minio:9000\nremote.storage.region=eu-west-1\n\
                    remote.storage.path.style=false\nremote.storage.access.key.id=id\n\
                    remote.storage.secret.access.key=secret\nremote.fetch.cache.bytes=1024\n\
                    remote.log.manager.task.interval.ms=500\nremote.fetch.max.wait.ms=750\n\
                    remote.list.offsets.request.timeout.ms=2000\n";
        let flags = parse(text, |_: &str| None).unwrap();
        assert_eq!(flags.remote_log_storage_system_enable, Some(true));
        assert_eq!(flags.remote_storage_url.as_deref(), Some("s3://b/p"));
        assert_eq!(
            flags.remote_storage_endpoint.as_deref(),
            Some("http://minio:9000")
        );
        assert_eq!(flags.remote_storage_region.as_deref(), Some("eu-west-1"));
        assert_eq!(flags.remote_storage_path_style, Some(false));
        assert_eq!(flags.remote_storage_access_key_id.as_deref(), Some("id"));
        assert_eq!(
            flags.remote_storage_secret_access_key.as_deref(),
            Some("secret")
        );
        assert_eq!(flags.remote_fetch_cache_bytes, Some(1024));
        assert_eq!(flags.remote_log_manager_task_interval_ms, Some(500));
        assert_eq!(flags.remote_fetch_max_wait_ms, Some(750));
        assert_eq!(flags.remote_list_offsets_request_timeout_ms, Some(2000));
    }

    #[test]
    fn the_credentials_directory_key_becomes_its_flag() {
        let text = "remote.storage.credentials.dir=/etc/tributary/remote-storage\n";
        let flags = parse(text, |_: &str| None).unwrap();
        assert_eq!(
            flags.remote_storage_credentials_dir,
            Some(PathBuf::from("/etc/tributary/remote-storage"))
        );
    }

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
                    group.min.session.timeout.ms=500\ngroup.max.session.timeout.ms=60000\n\
                    group.coordinator.rebalance.protocols=classic,consumer\n\
                    group.consumer.migration.policy=upgrade\n\
                    group.share.record.lock.duration.ms=1000\n";
        let env = |k: &str| match k {
            "BROKER_ID" => Some("2".to_string()),
            "POD_NAME" => Some("demo-broker-2".to_string()),
            _ => None,
        };
        let flags = parse(text, env).unwrap();
        assert_eq!(flags.listeners.as_deref(), Some("PLAIN://0.0.0.0:9092"));
        assert_eq!(flags.group_share_record_lock_duration_ms, Some(1000));
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
        assert_eq!(
            flags.group_coordinator_rebalance_protocols.as_deref(),
            Some("classic,consumer")
        );
        assert_eq!(
            flags.group_consumer_migration_policy.as_deref(),
            Some("upgrade")
        );
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

    /// A value `check` accepts, for a key of type `kind`.
    fn sample(kind: ConfigType, check: Check) -> String {
        match (kind, check) {
            (ConfigType::Boolean, _) => "true".into(),
            (_, Check::AtLeast(min)) => min.max(1).to_string(),
            (ConfigType::Int | ConfigType::Long, _) => "1".into(),
            (_, Check::OneOf(values) | Check::OneOfAnyCase(values)) => values[0].into(),
            (_, Check::CleanupPolicy) => "delete".into(),
            (_, Check::Ratio) => "0.5".into(),
            (_, Check::ThrottledReplicas) => "*".into(),
            (_, Check::KafkaVersion) => "3.9".into(),
            (_, Check::RebalanceProtocols) => "classic,consumer".into(),
            (_, Check::Assignors) => "uniform".into(),
            (_, Check::HttpUrls) => "http://registry:8081".into(),
            _ => "value".into(),
        }
    }

    /// Every key a KafkaCluster may set reaches a setting (or is knowingly the operator's),
    /// none is ignored as unknown: the shared table and the parser cannot drift apart.
    #[test]
    fn every_key_of_the_shared_table_is_known() {
        for key in BROKER_KEYS {
            let (kind, check) = broker_value(key.name).unwrap();
            let text = sample(kind, check);
            check_value(Scope::Broker, key.name, &text).unwrap();
            let known = Parsed::default().set(Value {
                key: key.name,
                text: text.clone(),
            });
            assert_eq!(known, Ok(true), "{}={text}", key.name);
        }
    }

    /// A value the shared table refuses is refused here too, with the same words the operator
    /// and the config APIs use.
    #[test]
    fn values_are_held_to_the_shared_table() {
        for line in [
            "compression.type=brotli",
            "min.insync.replicas=0",
            "group.consumer.migration.policy=sideways",
            "confluent.schema.registry.url=ftp://registry",
            "auto.create.topics.enable=yes",
        ] {
            let err = parse(line, |_| None).unwrap_err().to_string();
            let key = line.split('=').next().unwrap();
            assert!(
                err.contains(key) && err.contains("expected"),
                "{line}: {err}"
            );
        }
        let flags = parse(
            "socket.receive.buffer.bytes=-1
log.retention.hours=-1
",
            |_| None,
        )
        .unwrap();
        assert_eq!(flags.socket_receive_buffer_bytes, Some(-1));
        assert_eq!(
            flags.log_retention_ms,
            Some(-1),
            "negative hours: unlimited"
        );
    }

    #[test]
    fn malformed_lines_and_values_are_errors() {
        assert!(parse("just-a-key\n", |_| None).is_err());
        assert!(parse("num.partitions=many\n", |_| None).is_err());
        assert!(parse("broker.id=99999999999\n", |_| None).is_err());
    }
}
