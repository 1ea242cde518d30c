//! Broker configuration: command-line flags, `TRIBUTARY_*` environment variables and an optional
//! YAML file, in that order of precedence, with Kafka's defaults for everything left unset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::UNCOMPRESSED_BATCH_CEILING;
use crate::dynamic_config::DynamicConfigs;
pub use crate::flags::Flags;
use crate::group::consumer::assignor::Assignor;
use crate::group::consumer::{ConsumerGroupConfig, MigrationPolicy};
use crate::group::GroupConfig;
use crate::share_broker_config::ShareBrokerConfig;
use crate::storage::{LogConfig, TimestampType};

/// Errors in the broker configuration; each says which setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid YAML for the known keys.
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    /// The listener settings are inconsistent.
    #[error(transparent)]
    Listeners(#[from] crate::security::listeners::ListenerError),
    /// The Kafka-style properties file is malformed.
    #[error("invalid properties file {path}: {source}")]
    Properties {
        path: PathBuf,
        #[source]
        source: crate::properties::PropertiesError,
    },
    /// A setting has a value outside its allowed range.
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// The share group settings (`group.share.*`) are out of range or inconsistent.
    #[error("invalid share group settings: {0}")]
    ShareGroups(String),
}

/// Bounds on partition creation, so no request can exhaust the broker's descriptors or
/// memory (KIP-578's `max.broker.partitions`; Kafka 4 refuses over 10000 per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLimits {
    /// Most partitions this broker hosts.
    pub per_broker: usize,
    /// Most partitions one request may create.
    pub per_request: usize,
}

/// The broker's effective configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address the inter-broker listener binds.
    pub listener: String,
    /// Host other brokers reach this one at (the inter-broker listener's advertised host).
    pub advertised_host: String,
    /// Port other brokers reach this one at.
    pub advertised_port: i32,
    /// Every listener, with its security protocol and addresses.
    pub listeners: crate::security::listeners::Listeners,
    /// TLS and SASL settings by their Kafka names.
    pub security: crate::security::settings::SecurityProps,
    /// Directory of logs and metadata.
    pub data_dir: PathBuf,
    /// This broker's node id.
    pub broker_id: i32,
    /// Optional rack id.
    pub rack: Option<String>,
    /// The schema registry schema validation asks (`--schema-registry-url`).
    pub schema_registry_url: Option<String>,
    /// Default partition count.
    pub num_partitions: i32,
    /// Default replication factor.
    pub default_replication_factor: i16,
    /// Auto-create unknown topics named by Metadata requests.
    pub auto_create_topics: bool,
    /// Topic config defaults (the broker-level `log.*` settings).
    pub log_defaults: LogConfig,
    /// Partition limits for topic creation.
    pub partition_limits: PartitionLimits,
    /// Default min.insync.replicas.
    pub min_insync_replicas: i32,
    /// Default cleanup.policy.
    pub cleanup_policy: String,
    /// Default compression.type.
    pub compression_type: String,
    /// Default unclean.leader.election.enable.
    pub unclean_leader_election: bool,
    /// Whether DeleteTopics may delete topics.
    pub delete_topic_enable: bool,
    /// SO_SNDBUF / SO_RCVBUF of client connections; not positive: the kernel's default.
    pub socket_send_buffer_bytes: i32,
    /// See [`BrokerConfig::socket_send_buffer_bytes`].
    pub socket_receive_buffer_bytes: i32,
    /// Retention check period.
    pub retention_check_interval_ms: u64,
    /// Compaction check period.
    pub cleaner_backoff_ms: u64,
    /// fsync before acks=all answers.
    pub fsync_acks_all: bool,
    /// fsync before acks=1 answers.
    pub fsync_acks_one: bool,
    /// Group commits covering several partitions sync the whole filesystem once.
    pub fsync_filesystem: bool,
    /// Commit journal size in bytes; 0 turns the journal off.
    pub commit_journal_bytes: u64,
    /// Largest accepted request frame.
    pub socket_request_max_bytes: usize,
    /// Connection limit.
    pub max_connections: usize,
    /// Longest transaction timeout accepted (transaction.max.timeout.ms).
    pub transaction_max_timeout_ms: i32,
    /// How long idle producers' idempotence state is kept (producer.id.expiration.ms).
    pub producer_id_expiration_ms: i64,
    /// How long idle transactional ids are kept (transactional.id.expiration.ms).
    pub transactional_id_expiration_ms: i64,
    /// Partitions of `__transaction_state` when it is created
    /// (transaction.state.log.num.partitions).
    pub transaction_state_log_num_partitions: i32,
    /// Replicas of `__consumer_offsets` in cluster mode (offsets.topic.replication.factor).
    pub offsets_topic_replication_factor: i16,
    /// Replicas of `__transaction_state` in cluster mode
    /// (transaction.state.log.replication.factor).
    pub transaction_state_log_replication_factor: i16,
    /// min.insync.replicas of `__transaction_state` (transaction.state.log.min.isr).
    pub transaction_state_log_min_isr: i32,
    /// Whether partition leaders verify transactional writes with the producer's coordinator
    /// in cluster mode (transaction.partition.verification.enable, KIP-890).
    pub transaction_partition_verification_enable: bool,
    /// How long a follower may lag before it leaves the ISR (replica.lag.time.max.ms).
    pub replica_lag_time_max_ms: i64,
    /// How long a follower's fetch waits at the leader (replica.fetch.wait.max.ms).
    pub replica_fetch_wait_max_ms: i32,
    /// Followers fsync fetched batches before reporting their position to the leader
    /// (replica.fsync.before.ack), so the high watermark counts only fsynced copies.
    pub replica_fsync_before_ack: bool,
    /// Serve share groups (group.share.enable).
    pub share_groups: bool,
    /// The share group defaults and bounds (`group.share.*`).
    pub share: ShareBrokerConfig,
    /// HTTP endpoint address for metrics and probes.
    pub http_listener: String,
    /// Group coordinator settings.
    pub group: GroupConfig,
    /// Emit JSON logs instead of text.
    pub json_logs: bool,
    /// Topic defaults changed at runtime (loaded from the data directory when the broker
    /// opens); shared by every copy of this configuration.
    pub dynamic: Arc<DynamicConfigs>,
    /// Cluster mode's settings; `None` for a standalone broker.
    pub cluster: Option<ClusterSettings>,
    /// Tiered storage's bucket when `remote.log.storage.system.enable` is on; `None` keeps
    /// every topic local (and refuses `remote.storage.enable`).
    pub tiered: Option<crate::tiered::RemoteStorageSettings>,
}

/// Where a broker in cluster mode finds its cluster and how it keeps its registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// KafkaCluster name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// This broker's pod, the holder of its registration Lease.
    pub pod_name: String,
    /// A Lease not renewed for this long is expired.
    pub lease_duration: std::time::Duration,
    /// How often the Lease is renewed.
    pub renew_interval: std::time::Duration,
    /// How long after sending its last successful renewal the broker stops acting as a
    /// leader: shorter than the lease duration, so it stops before anyone declares it dead.
    pub renew_deadline: std::time::Duration,
    /// Listeners whose advertised address comes from their per-broker Service.
    pub external_listeners: Vec<String>,
    /// The node's address (`HOST_IP`, from `status.hostIP`), which NodePort listeners
    /// advertise unless their Service names another host.
    pub host_ip: Option<String>,
}

impl ClusterSettings {
    /// The settings for `flags` in cluster mode (`None`: standalone).
    fn resolve(flags: &Flags, broker_id: i32) -> Result<Option<ClusterSettings>, ConfigError> {
        let Some(name) = flags.cluster_name.clone() else {
            return Ok(None);
        };
        let namespace = flags
            .cluster_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .ok_or_else(|| {
                invalid(
                    "cluster-namespace",
                    "cluster mode needs the KafkaCluster's namespace (or POD_NAMESPACE)",
                )
            })?;
        let pod_name = std::env::var("POD_NAME")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("{name}-broker-{broker_id}"));
        let lease_ms = flags.broker_lease_duration_ms.unwrap_or(9_000);
        let renew_ms = flags.broker_lease_renew_interval_ms.unwrap_or(2_000);
        if renew_ms == 0 || lease_ms < 3 * renew_ms {
            return Err(invalid(
                "broker-lease-duration-ms",
                "must be at least three renew intervals, so one late renewal does not expire the Lease",
            ));
        }
        // client-go's rule: lease duration > renew deadline > retry period (here 2x renewal).
        let deadline_ms = (lease_ms * 2 / 3)
            .max(2 * renew_ms)
            .min(lease_ms - renew_ms);
        let ms = std::time::Duration::from_millis;
        Ok(Some(ClusterSettings {
            name,
            namespace,
            pod_name,
            lease_duration: ms(lease_ms),
            renew_interval: ms(renew_ms),
            renew_deadline: ms(deadline_ms),
            external_listeners: flags
                .external_listeners
                .iter()
                .flat_map(|list| list.split(','))
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty())
                .collect(),
            host_ip: flags.host_ip.clone().filter(|ip| !ip.is_empty()),
        }))
    }
}

/// External listeners must be listeners, and not the inter-broker one: brokers reach each
/// other inside the cluster, at an address known before any Service is.
fn check_external_listeners(
    external: &[String],
    listeners: &crate::security::listeners::Listeners,
) -> Result<(), ConfigError> {
    for name in external {
        if !listeners.all.iter().any(|l| &l.name == name) {
            return Err(invalid(
                "external-listeners",
                &format!("{name} is not one of the listeners"),
            ));
        }
        if &listeners.inter_broker().name == name {
            return Err(invalid(
                "external-listeners",
                &format!("{name} is the inter-broker listener, which must be internal"),
            ));
        }
    }
    Ok(())
}

/// The log settings topics get unless they override them: the flags' values over the built-in
/// defaults, records stamped with their producer's time.
fn log_defaults(flags: &Flags) -> Result<LogConfig, ConfigError> {
    let defaults = LogConfig::default();
    let mut log_defaults = LogConfig {
        retention_ms: flags.log_retention_ms.unwrap_or(defaults.retention_ms),
        retention_bytes: flags
            .log_retention_bytes
            .unwrap_or(defaults.retention_bytes),
        segment_bytes: flags.log_segment_bytes.unwrap_or(defaults.segment_bytes),
        segment_ms: flags.log_segment_ms.unwrap_or(defaults.segment_ms),
        flush_messages: flags
            .log_flush_interval_messages
            .unwrap_or(defaults.flush_messages),
        flush_ms: flags.log_flush_interval_ms.unwrap_or(defaults.flush_ms),
        ..defaults
    };
    if let Some(max) = flags.message_max_bytes {
        log_defaults.max_message_bytes = u32::try_from(max)
            .map_err(|_| invalid("message-max-bytes", "must be a positive number of bytes"))?;
    }
    log_defaults.timestamp_type = TimestampType::CreateTime;
    if let Some(max) = flags.max_uncompressed_batch_bytes {
        if !(1 << 20..=UNCOMPRESSED_BATCH_CEILING).contains(&max) {
            return Err(invalid(
                "max-uncompressed-batch-bytes",
                "must be between 1048576 (1 MiB) and 1073741824 (1 GiB)",
            ));
        }
        log_defaults.max_uncompressed_batch_bytes = max;
    }
    Ok(log_defaults)
}

/// Tiered storage's settings: none unless `remote.log.storage.system.enable`, which then
/// needs a storage URL of a known form.
fn tiered_settings(
    flags: &Flags,
) -> Result<Option<crate::tiered::RemoteStorageSettings>, ConfigError> {
    if flags.remote_log_storage_system_enable != Some(true) {
        return Ok(None);
    }
    let key = "remote-storage-url";
    let url = flags.remote_storage_url.clone().ok_or_else(|| {
        invalid(
            key,
            "remote.log.storage.system.enable needs s3://bucket/prefix or file:///directory",
        )
    })?;
    let defaults = crate::tiered::RemoteStorageSettings::default();
    let settings = crate::tiered::RemoteStorageSettings {
        url,
        endpoint: flags.remote_storage_endpoint.clone(),
        region: flags.remote_storage_region.clone(),
        path_style: flags
            .remote_storage_path_style
            .unwrap_or(defaults.path_style),
        access_key_id: flags.remote_storage_access_key_id.clone(),
        secret_access_key: flags.remote_storage_secret_access_key.clone(),
        credentials_dir: flags.remote_storage_credentials_dir.clone(),
        task_interval: std::time::Duration::from_millis(
            flags
                .remote_log_manager_task_interval_ms
                .unwrap_or(30_000)
                .max(10),
        ),
        cache_bytes: flags
            .remote_fetch_cache_bytes
            .unwrap_or(defaults.cache_bytes),
        fetch_max_wait: flags
            .remote_fetch_max_wait_ms
            .map_or(defaults.fetch_max_wait, std::time::Duration::from_millis),
        list_offsets_timeout: flags.remote_list_offsets_request_timeout_ms.map_or(
            defaults.list_offsets_timeout,
            std::time::Duration::from_millis,
        ),
        ..defaults
    };
    settings
        .check()
        .map_err(|error| invalid(key, &error.to_string()))?;
    Ok(Some(settings))
}

/// How many partitions the broker hosts, and one request may name, at most.
fn partition_limits(flags: &Flags) -> PartitionLimits {
    PartitionLimits {
        per_broker: flags
            .max_broker_partitions
            .unwrap_or_else(crate::limits::default_max_broker_partitions),
        per_request: flags.max_partitions_per_request.unwrap_or(10_000),
    }
}

impl BrokerConfig {
    /// Resolves flags, environment and the optional config file into a checked configuration.
    pub fn resolve(flags: Flags) -> Result<BrokerConfig, ConfigError> {
        let mut flags = match flags.config.clone() {
            Some(path) => flags.or(read_file(&path)?),
            None => flags,
        };
        let share = ShareBrokerConfig::resolve(&mut flags).map_err(ConfigError::ShareGroups)?;
        let mut group = group_config(&flags)?;
        group.share = crate::share::group::ShareGroupConfig {
            session_timeout_ms: share.session_timeout_ms,
            heartbeat_interval_ms: i32::try_from(share.heartbeat_interval_ms).unwrap_or(i32::MAX),
            max_size: usize::try_from(share.max_size).unwrap_or(usize::MAX),
            ..group.share
        };
        let cluster = ClusterSettings::resolve(&flags, flags.broker_id.unwrap_or(0))?;
        let listeners = resolve_listeners(&flags)?;
        if let Some(cluster) = &cluster {
            check_external_listeners(&cluster.external_listeners, &listeners)?;
        }
        let inter_broker = listeners.inter_broker();
        let listener = inter_broker.bind.clone();
        let advertised_host = inter_broker.advertised_host.clone();
        let advertised_port = inter_broker.advertised_port;
        let security = crate::security::settings::SecurityProps::new(
            flags.security.clone().unwrap_or_default(),
        );
        let log_defaults = log_defaults(&flags)?;
        let partition_limits = partition_limits(&flags);
        let tiered = tiered_settings(&flags)?;
        let config = BrokerConfig {
            listener,
            advertised_host,
            advertised_port,
            listeners,
            security,
            data_dir: flags.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            broker_id: flags.broker_id.unwrap_or(0),
            rack: flags.rack,
            schema_registry_url: flags
                .schema_registry_url
                .as_deref()
                .and_then(|urls| urls.split(',').map(str::trim).find(|u| !u.is_empty()))
                .map(str::to_owned),
            num_partitions: flags.num_partitions.unwrap_or(1),
            default_replication_factor: flags.default_replication_factor.unwrap_or(1),
            auto_create_topics: flags.auto_create_topics.unwrap_or(true),
            log_defaults,
            partition_limits,
            min_insync_replicas: flags.min_insync_replicas.unwrap_or(1),
            cleanup_policy: flags
                .log_cleanup_policy
                .unwrap_or_else(|| "delete".to_owned()),
            compression_type: flags
                .compression_type
                .unwrap_or_else(|| "producer".to_owned()),
            unclean_leader_election: flags.unclean_leader_election_enable.unwrap_or(false),
            delete_topic_enable: flags.delete_topic_enable.unwrap_or(true),
            socket_send_buffer_bytes: flags.socket_send_buffer_bytes.unwrap_or(-1),
            socket_receive_buffer_bytes: flags.socket_receive_buffer_bytes.unwrap_or(-1),
            retention_check_interval_ms: flags.log_retention_check_interval_ms.unwrap_or(30_000),
            cleaner_backoff_ms: flags.log_cleaner_backoff_ms.unwrap_or(15_000),
            fsync_acks_all: flags.fsync_acks_all.unwrap_or(true),
            fsync_acks_one: flags.fsync_acks_one.unwrap_or(false),
            fsync_filesystem: flags.fsync_filesystem.unwrap_or(true),
            commit_journal_bytes: flags.commit_journal_bytes.unwrap_or(128 << 20),
            socket_request_max_bytes: flags.socket_request_max_bytes.unwrap_or(104_857_600),
            max_connections: flags.max_connections.unwrap_or(10_000),
            transaction_max_timeout_ms: flags.transaction_max_timeout_ms.unwrap_or(900_000),
            producer_id_expiration_ms: flags.producer_id_expiration_ms.unwrap_or(86_400_000),
            transactional_id_expiration_ms: flags
                .transactional_id_expiration_ms
                .unwrap_or(604_800_000),
            transaction_state_log_num_partitions: flags
                .transaction_state_log_num_partitions
                .unwrap_or(50),
            offsets_topic_replication_factor: flags.offsets_topic_replication_factor.unwrap_or(3),
            transaction_state_log_replication_factor: flags
                .transaction_state_log_replication_factor
                .unwrap_or(3),
            transaction_state_log_min_isr: flags.transaction_state_log_min_isr.unwrap_or(2),
            transaction_partition_verification_enable: flags
                .transaction_partition_verification_enable
                .unwrap_or(true),
            replica_lag_time_max_ms: flags.replica_lag_time_max_ms.unwrap_or(30_000),
            replica_fetch_wait_max_ms: flags.replica_fetch_wait_max_ms.unwrap_or(500),
            replica_fsync_before_ack: flags.replica_fsync_before_ack.unwrap_or(false),
            share_groups: flags.group_share_enable.unwrap_or(true),
            share,
            http_listener: flags
                .http_listener
                .unwrap_or_else(|| "127.0.0.1:9644".to_string()),
            group,
            json_logs: flags.log_format.as_deref() == Some("json"),
            dynamic: Arc::default(),
            cluster,
            tiered,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.broker_id < 0 {
            return Err(invalid("broker-id", "must be 0 or greater"));
        }
        if self.num_partitions < 1 {
            return Err(invalid("num-partitions", "must be at least 1"));
        }
        if self.default_replication_factor < 1 {
            return Err(invalid("default-replication-factor", "must be at least 1"));
        }
        if self.log_defaults.segment_bytes < 14 {
            return Err(invalid("log-segment-bytes", "must be at least 14 bytes"));
        }
        if self.log_defaults.flush_messages < 1 {
            return Err(invalid("log-flush-interval-messages", "must be at least 1"));
        }
        if self.log_defaults.flush_ms < 1 {
            return Err(invalid("log-flush-interval-ms", "must be at least 1"));
        }
        if self.commit_journal_bytes != 0 && self.commit_journal_bytes < 1 << 20 {
            return Err(invalid(
                "commit-journal-bytes",
                "must be 0 (off) or at least 1048576",
            ));
        }
        for (flag, key, value) in [
            ("log-cleanup-policy", "cleanup.policy", &self.cleanup_policy),
            (
                "compression-type",
                "compression.type",
                &self.compression_type,
            ),
        ] {
            tributary_crds::config::check_value(tributary_crds::config::Scope::Topic, key, value)
                .map_err(|reason| invalid(flag, &reason.to_string()))?;
        }
        if self.socket_request_max_bytes < 1024 {
            return Err(invalid("socket-request-max-bytes", "must be at least 1024"));
        }
        if self.partition_limits.per_broker == 0 {
            return Err(invalid("max-broker-partitions", "must be at least 1"));
        }
        if self.partition_limits.per_request == 0 {
            return Err(invalid("max-partitions-per-request", "must be at least 1"));
        }
        if self.max_connections == 0 {
            return Err(invalid("max-connections", "must be at least 1"));
        }
        if self.transaction_max_timeout_ms < 1 {
            return Err(invalid("transaction-max-timeout-ms", "must be at least 1"));
        }
        if self.producer_id_expiration_ms < 1 {
            return Err(invalid("producer-id-expiration-ms", "must be at least 1"));
        }
        if self.transactional_id_expiration_ms < 1 {
            return Err(invalid(
                "transactional-id-expiration-ms",
                "must be at least 1",
            ));
        }
        if self.transaction_state_log_num_partitions < 1 {
            return Err(invalid(
                "transaction-state-log-num-partitions",
                "must be at least 1",
            ));
        }
        if self.offsets_topic_replication_factor < 1 {
            return Err(invalid(
                "offsets-topic-replication-factor",
                "must be at least 1",
            ));
        }
        if self.transaction_state_log_replication_factor < 1 {
            return Err(invalid(
                "transaction-state-log-replication-factor",
                "must be at least 1",
            ));
        }
        if self.transaction_state_log_min_isr < 1 {
            return Err(invalid(
                "transaction-state-log-min-isr",
                "must be at least 1",
            ));
        }
        if self.replica_lag_time_max_ms < 1 {
            return Err(invalid("replica-lag-time-max-ms", "must be at least 1"));
        }
        if self.replica_fetch_wait_max_ms < 0 {
            return Err(invalid("replica-fetch-wait-max-ms", "must not be negative"));
        }
        Ok(())
    }
}

/// Whether `group.coordinator.rebalance.protocols` enables the consumer protocol; `classic`
/// must be listed, as Kafka requires.
fn consumer_protocol_enabled(list: &str) -> Result<bool, ConfigError> {
    let mut classic = false;
    let mut consumer = false;
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "classic" => classic = true,
            "consumer" => consumer = true,
            _ => {
                return Err(invalid(
                    "group-coordinator-rebalance-protocols",
                    "lists only `classic` and `consumer`",
                ))
            }
        }
    }
    if !classic {
        return Err(invalid(
            "group-coordinator-rebalance-protocols",
            "must include `classic`",
        ));
    }
    Ok(consumer)
}

/// A group size limit (`group.max.size`, `group.consumer.max.size`): at least 1.
fn group_size(flag: Option<i32>, default: usize, name: &'static str) -> Result<usize, ConfigError> {
    match flag {
        None => Ok(default),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| invalid(name, "must be at least 1")),
    }
}

/// The assignors `group.consumer.assignors` names, each one the broker runs.
fn consumer_assignors(list: &str) -> Result<Vec<String>, ConfigError> {
    let names: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() || names.iter().any(|n| Assignor::from_name(n).is_none()) {
        return Err(invalid(
            "group-consumer-assignors",
            "lists one or more of `uniform` and `range`",
        ));
    }
    Ok(names)
}

/// The group coordinator settings, Kafka's defaults filled in.
fn group_config(flags: &Flags) -> Result<GroupConfig, ConfigError> {
    let d = GroupConfig::default();
    let config = GroupConfig {
        initial_rebalance_delay_ms: flags
            .group_initial_rebalance_delay_ms
            .unwrap_or(d.initial_rebalance_delay_ms),
        min_session_timeout_ms: flags
            .group_min_session_timeout_ms
            .unwrap_or(d.min_session_timeout_ms),
        max_session_timeout_ms: flags
            .group_max_session_timeout_ms
            .unwrap_or(d.max_session_timeout_ms),
        offsets_topic_partitions: flags
            .offsets_topic_num_partitions
            .unwrap_or(d.offsets_topic_partitions),
        offsets_retention_ms: flags
            .offsets_retention_minutes
            .map_or(d.offsets_retention_ms, |m| m.saturating_mul(60_000)),
        offsets_retention_check_interval_ms: flags
            .offsets_retention_check_interval_ms
            .unwrap_or(d.offsets_retention_check_interval_ms),
        consumer_protocol: match &flags.group_coordinator_rebalance_protocols {
            None => d.consumer_protocol,
            Some(list) => consumer_protocol_enabled(list)?,
        },
        consumer: ConsumerGroupConfig {
            session_timeout_ms: flags
                .group_consumer_session_timeout_ms
                .unwrap_or(d.consumer.session_timeout_ms),
            heartbeat_interval_ms: flags
                .group_consumer_heartbeat_interval_ms
                .unwrap_or(d.consumer.heartbeat_interval_ms),
            assignors: match &flags.group_consumer_assignors {
                None => d.consumer.assignors.clone(),
                Some(list) => consumer_assignors(list)?,
            },
            migration_policy: match &flags.group_consumer_migration_policy {
                None => d.consumer.migration_policy,
                Some(value) => MigrationPolicy::parse(value).ok_or_else(|| {
                    invalid(
                        "group-consumer-migration-policy",
                        "is one of `bidirectional`, `upgrade`, `downgrade` and `disabled`",
                    )
                })?,
            },
            max_size: group_size(
                flags.group_consumer_max_size,
                d.consumer.max_size,
                "group-consumer-max-size",
            )?,
            classic_max_size: group_size(
                flags.group_max_size,
                d.consumer.classic_max_size,
                "group-max-size",
            )?,
            ..d.consumer.clone()
        },
        max_size: group_size(flags.group_max_size, d.max_size, "group-max-size")?,
        ..d
    };
    if config.consumer.heartbeat_interval_ms < 1
        || config.consumer.session_timeout_ms <= config.consumer.heartbeat_interval_ms
    {
        return Err(invalid(
            "group-consumer-session-timeout-ms",
            "must be more than group-consumer-heartbeat-interval-ms, which must be at least 1",
        ));
    }
    if config.initial_rebalance_delay_ms < 0 {
        return Err(invalid(
            "group-initial-rebalance-delay-ms",
            "must be 0 or greater",
        ));
    }
    if config.min_session_timeout_ms < 0
        || config.max_session_timeout_ms < config.min_session_timeout_ms
    {
        return Err(invalid(
            "group-max-session-timeout-ms",
            "must be at least group-min-session-timeout-ms, which must be 0 or greater",
        ));
    }
    if config.offsets_topic_partitions < 1 {
        return Err(invalid(
            "offsets-topic-num-partitions",
            "must be at least 1",
        ));
    }
    if config.offsets_retention_ms < 1 {
        return Err(invalid("offsets-retention-minutes", "must be at least 1"));
    }
    if config.offsets_retention_check_interval_ms < 1 {
        return Err(invalid(
            "offsets-retention-check-interval-ms",
            "must be at least 1",
        ));
    }
    Ok(config)
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.to_string(),
    }
}

fn read_file(path: &Path) -> Result<Flags, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if path.extension().is_some_and(|e| e == "properties") {
        return crate::properties::parse(&text, |key| std::env::var(key).ok()).map_err(|source| {
            ConfigError::Properties {
                path: path.to_path_buf(),
                source,
            }
        });
    }
    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The listeners: Kafka's `listeners` settings, or the `listener` flag's one PLAINTEXT
/// listener; `listener`/`advertised-listener` given with `listeners` override the first
/// listener's addresses (the operator passes the pod's IP that way).
fn resolve_listeners(flags: &Flags) -> Result<crate::security::listeners::Listeners, ConfigError> {
    use crate::security::listeners::{resolve, ListenerSettings};
    let host = default_host();
    let mut listeners = match &flags.listeners {
        Some(text) => resolve(&ListenerSettings {
            listeners: text,
            advertised: flags.advertised_listeners.as_deref(),
            protocol_map: flags.listener_security_protocol_map.as_deref(),
            inter_broker: flags.inter_broker_listener_name.as_deref(),
            default_host: &host,
        })?,
        None => {
            let bind = flags.listener.as_deref().unwrap_or("127.0.0.1:9092");
            split_host_port(bind)
                .map_err(|_| invalid("listener", &format!("`{bind}` is not host:port")))?;
            resolve(&ListenerSettings {
                listeners: &format!("PLAINTEXT://{bind}"),
                default_host: &host,
                ..ListenerSettings::default()
            })?
        }
    };
    if let Some(first) = listeners.all.first_mut() {
        if let Some(bind) = &flags.listener {
            split_host_port(bind)
                .map_err(|_| invalid("listener", &format!("`{bind}` is not host:port")))?;
            if flags.listeners.is_some() {
                first.bind = bind.clone();
            }
            if flags.advertised_listener.is_none() && flags.advertised_listeners.is_none() {
                let (host, port) = split_host_port(bind)?;
                first.advertised_host = host;
                first.advertised_port = port;
            }
        }
        if let Some(advertised) = &flags.advertised_listener {
            let (host, port) = split_host_port(advertised)?;
            first.advertised_host = host;
            first.advertised_port = port;
        }
    }
    Ok(listeners)
}

/// The machine's name, advertised by listeners bound to every interface (as Kafka advertises
/// the canonical host name).
fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn split_host_port(addr: &str) -> Result<(String, i32), ConfigError> {
    let bad = || invalid("advertised-listener", &format!("`{addr}` is not host:port"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), i32::from(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_kafka() {
        let config = BrokerConfig::resolve(Flags::default()).unwrap();
        assert_eq!(config.listener, "127.0.0.1:9092");
        assert_eq!(config.advertised_port, 9092);
        assert_eq!(config.num_partitions, 1);
        assert!(config.auto_create_topics);
        assert!(config.fsync_acks_all);
        assert!(
            !config.replica_fsync_before_ack,
            "followers write as Kafka's do"
        );
        assert_eq!(config.cleaner_backoff_ms, 15_000, "log.cleaner.backoff.ms");
    }

    #[test]
    fn the_consumer_group_protocol_is_on_by_default_and_classic_alone_turns_it_off() {
        let config = BrokerConfig::resolve(Flags::default()).unwrap();
        assert!(config.group.consumer_protocol, "both protocols by default");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.yaml");
        std::fs::write(&path, "group-coordinator-rebalance-protocols: classic\n").unwrap();
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        assert!(
            !BrokerConfig::resolve(flags)
                .unwrap()
                .group
                .consumer_protocol
        );
        let flags = Flags {
            group_consumer_session_timeout_ms: Some(3_000),
            group_consumer_heartbeat_interval_ms: Some(500),
            ..Flags::default()
        };
        let consumer = BrokerConfig::resolve(flags).unwrap().group.consumer;
        assert_eq!(
            (consumer.session_timeout_ms, consumer.heartbeat_interval_ms),
            (3_000, 500)
        );
        let flags = Flags {
            group_consumer_session_timeout_ms: Some(500),
            ..Flags::default()
        };
        assert!(
            BrokerConfig::resolve(flags).is_err(),
            "shorter than a heartbeat"
        );
        let flags = Flags {
            group_max_size: Some(5),
            group_consumer_max_size: Some(7),
            ..Flags::default()
        };
        let group = BrokerConfig::resolve(flags).unwrap().group;
        assert_eq!(
            (group.max_size, group.consumer.classic_max_size),
            (5, 5),
            "group.max.size bounds classic groups and downgrades"
        );
        assert_eq!(group.consumer.max_size, 7);
        let flags = Flags {
            group_max_size: Some(0),
            ..Flags::default()
        };
        assert!(BrokerConfig::resolve(flags).is_err(), "a group for nobody");
        let flags = Flags {
            group_consumer_assignors: Some("range, uniform".into()),
            ..Flags::default()
        };
        let consumer = BrokerConfig::resolve(flags).unwrap().group.consumer;
        assert_eq!(consumer.default_assignor(), "range");
        let flags = Flags {
            group_consumer_assignors: Some("range,sticky".into()),
            ..Flags::default()
        };
        assert!(BrokerConfig::resolve(flags).is_err(), "no such assignor");
        let flags = Flags {
            group_consumer_migration_policy: Some("upgrade".into()),
            ..Flags::default()
        };
        let consumer = BrokerConfig::resolve(flags).unwrap().group.consumer;
        assert_eq!(consumer.migration_policy, MigrationPolicy::Upgrade);
        let flags = Flags {
            group_consumer_migration_policy: Some("sideways".into()),
            ..Flags::default()
        };
        let refused = BrokerConfig::resolve(flags).unwrap_err().to_string();
        assert!(
            refused.contains("group-consumer-migration-policy"),
            "{refused}"
        );
        for refused in ["consumer", "classic,share", ""] {
            let flags = Flags {
                group_coordinator_rebalance_protocols: Some(refused.into()),
                ..Flags::default()
            };
            assert!(BrokerConfig::resolve(flags).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.yaml");
        std::fs::write(&path, "num-partitions: 6\nbroker-id: 3\n").unwrap();
        let flags = Flags {
            config: Some(path),
            broker_id: Some(7),
            ..Flags::default()
        };
        let config = BrokerConfig::resolve(flags).unwrap();
        assert_eq!(config.num_partitions, 6);
        assert_eq!(config.broker_id, 7);
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.yaml");
        std::fs::write(&path, "no-such-key: 1\n").unwrap();
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        assert!(matches!(
            BrokerConfig::resolve(flags),
            Err(ConfigError::Parse { .. })
        ));
        let flags = Flags {
            advertised_listener: Some("nohost".into()),
            ..Flags::default()
        };
        assert!(BrokerConfig::resolve(flags).is_err());
    }

    #[test]
    fn the_listener_flag_is_one_plaintext_listener_or_the_first_of_listeners() {
        let legacy = BrokerConfig::resolve(Flags {
            listener: Some("0.0.0.0:19092".into()),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(legacy.listeners.all.len(), 1);
        assert_eq!(legacy.listeners.all[0].name, "PLAINTEXT");
        assert_eq!(
            legacy.advertised_host, "0.0.0.0",
            "as before: the bind address"
        );
        let both = BrokerConfig::resolve(Flags {
            listener: Some("10.0.0.5:9092".into()),
            listeners: Some("INTERNAL://:9092,EXTERNAL://:9094".into()),
            advertised_listeners: Some("EXTERNAL://kafka.example.com:443".into()),
            listener_security_protocol_map: Some("INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL".into()),
            inter_broker_listener_name: Some("INTERNAL".into()),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(both.listener, "10.0.0.5:9092");
        let external = both.listeners.get("EXTERNAL").unwrap();
        assert_eq!(
            (external.advertised_host.as_str(), external.advertised_port),
            ("kafka.example.com", 443)
        );
        let bad = BrokerConfig::resolve(Flags {
            listeners: Some("INTERNAL://:9092".into()),
            ..Flags::default()
        });
        assert!(matches!(bad, Err(ConfigError::Listeners(_))));
    }

    #[test]
    fn the_commit_journal_is_off_or_at_least_a_mebibyte() {
        let journal = |bytes| {
            BrokerConfig::resolve(Flags {
                commit_journal_bytes: Some(bytes),
                ..Flags::default()
            })
            .map(|c| c.commit_journal_bytes)
        };
        assert_eq!(journal(0).ok(), Some(0));
        assert_eq!(journal(1 << 20).ok(), Some(1 << 20));
        assert!(journal(4096).is_err());
        let default = BrokerConfig::resolve(Flags::default()).unwrap();
        assert_eq!(default.commit_journal_bytes, 128 << 20);
    }
}
