//! The broker's command-line flags, which every other source of settings fills in: each flag
//! also reads `TRIBUTARY_<FLAG>` from the environment, and `config` merges a YAML or Kafka
//! `server.properties` file under them before assembling the broker's configuration.

use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

/// Command-line flags; every flag also reads `TRIBUTARY_<FLAG>` from the environment, and any
/// flag left unset falls back to the config file, then to the Kafka default.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(name = "tributary-broker", version, about = "Kafka-compatible broker")]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Flags {
    /// Config file: YAML with these flag names as keys, or a Kafka `server.properties` file
    /// (`.properties`) with Kafka's key names.
    #[arg(long, env = "TRIBUTARY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address the Kafka listener binds, host:port: one PLAINTEXT listener, or with
    /// `listeners` set, the bind address of the first of them.
    #[arg(long, env = "TRIBUTARY_LISTENER")]
    pub listener: Option<String>,
    /// host:port clients are told to connect to (defaults to the listener); with `listeners`
    /// set, the advertised address of the first of them.
    #[arg(long, env = "TRIBUTARY_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// Kafka's `listeners`: `NAME://host:port,...` (names map to security protocols through
    /// `listener-security-protocol-map`).
    #[arg(long, env = "TRIBUTARY_LISTENERS")]
    pub listeners: Option<String>,
    /// Kafka's `advertised.listeners`: `NAME://host:port,...`.
    #[arg(long, env = "TRIBUTARY_ADVERTISED_LISTENERS")]
    pub advertised_listeners: Option<String>,
    /// Kafka's `listener.security.protocol.map`: `NAME:PROTOCOL,...` with PLAINTEXT, SSL,
    /// SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, env = "TRIBUTARY_LISTENER_SECURITY_PROTOCOL_MAP")]
    pub listener_security_protocol_map: Option<String>,
    /// Kafka's `inter.broker.listener.name`: the listener followers and other brokers use.
    #[arg(long, env = "TRIBUTARY_INTER_BROKER_LISTENER_NAME")]
    pub inter_broker_listener_name: Option<String>,
    /// TLS and SASL settings by their Kafka names (`ssl.keystore.location`,
    /// `sasl.enabled.mechanisms`, `listener.name.<l>.…`), from the config file only: the
    /// `security` map in YAML, the keys themselves in a `.properties` file.
    #[arg(skip)]
    pub security: Option<std::collections::BTreeMap<String, String>>,
    /// Directory holding partition logs and broker metadata.
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// This broker's node id.
    #[arg(long, env = "TRIBUTARY_BROKER_ID")]
    pub broker_id: Option<i32>,
    /// Rack advertised in Metadata (rack-aware clients use it).
    #[arg(long, env = "TRIBUTARY_RACK")]
    pub rack: Option<String>,
    /// Partitions of an auto-created topic, or when CreateTopics asks for the default (-1).
    #[arg(long, env = "TRIBUTARY_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// Replication factor used when CreateTopics asks for the default (-1).
    #[arg(long, env = "TRIBUTARY_DEFAULT_REPLICATION_FACTOR")]
    pub default_replication_factor: Option<i16>,
    /// Whether a Metadata request naming an unknown topic creates it (when the client allows
    /// it). Produce never creates topics, as in Kafka: it answers UNKNOWN_TOPIC_OR_PARTITION
    /// and the producer's next Metadata request creates the topic.
    #[arg(long, env = "TRIBUTARY_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Default retention.ms for topics (-1 keeps data forever).
    #[arg(long, env = "TRIBUTARY_LOG_RETENTION_MS")]
    pub log_retention_ms: Option<i64>,
    /// Default retention.bytes per partition (-1 for no size limit).
    #[arg(long, env = "TRIBUTARY_LOG_RETENTION_BYTES")]
    pub log_retention_bytes: Option<i64>,
    /// Default segment.bytes: a segment rolls when it would grow past this.
    #[arg(long, env = "TRIBUTARY_LOG_SEGMENT_BYTES")]
    pub log_segment_bytes: Option<u64>,
    /// Default segment.ms: a segment rolls when it is older than this.
    #[arg(long, env = "TRIBUTARY_LOG_SEGMENT_MS")]
    pub log_segment_ms: Option<i64>,
    /// Default max.message.bytes: the largest record batch accepted.
    #[arg(long, env = "TRIBUTARY_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: Option<i32>,
    /// What a compressed batch may expand to when produced; a batch over it (a compression
    /// bomb) is refused with MESSAGE_TOO_LARGE.
    #[arg(long, env = "TRIBUTARY_MAX_UNCOMPRESSED_BATCH_BYTES")]
    pub max_uncompressed_batch_bytes: Option<u64>,
    /// Most partitions this broker hosts (max.broker.partitions); CreateTopics and
    /// CreatePartitions past it are refused with POLICY_VIOLATION. Default: what the file
    /// descriptor limit and memory allow.
    #[arg(long, env = "TRIBUTARY_MAX_BROKER_PARTITIONS")]
    pub max_broker_partitions: Option<usize>,
    /// Most partitions one CreateTopics or CreatePartitions request may create (Kafka's fixed
    /// limit is 10000).
    #[arg(long, env = "TRIBUTARY_MAX_PARTITIONS_PER_REQUEST")]
    pub max_partitions_per_request: Option<usize>,
    /// Default min.insync.replicas for topics.
    #[arg(long, env = "TRIBUTARY_MIN_INSYNC_REPLICAS")]
    pub min_insync_replicas: Option<i32>,
    /// Default cleanup.policy for topics (Kafka's `log.cleanup.policy`): `delete`, `compact`
    /// or both.
    #[arg(long, env = "TRIBUTARY_LOG_CLEANUP_POLICY")]
    pub log_cleanup_policy: Option<String>,
    /// Default compression.type for topics: `producer` keeps what producers send; a codec
    /// recompresses into it.
    #[arg(long, env = "TRIBUTARY_COMPRESSION_TYPE")]
    pub compression_type: Option<String>,
    /// Default unclean.leader.election.enable for topics (the controller decides elections;
    /// the broker describes the default it runs with).
    #[arg(long, env = "TRIBUTARY_UNCLEAN_LEADER_ELECTION_ENABLE")]
    pub unclean_leader_election_enable: Option<bool>,
    /// delete.topic.enable: off, DeleteTopics answers TOPIC_DELETION_DISABLED.
    #[arg(long, env = "TRIBUTARY_DELETE_TOPIC_ENABLE")]
    pub delete_topic_enable: Option<bool>,
    /// socket.send.buffer.bytes: SO_SNDBUF of client connections; -1 (default) leaves the
    /// kernel's autotuning on.
    #[arg(long, env = "TRIBUTARY_SOCKET_SEND_BUFFER_BYTES")]
    pub socket_send_buffer_bytes: Option<i32>,
    /// socket.receive.buffer.bytes: SO_RCVBUF of client connections; -1 (default) leaves the
    /// kernel's autotuning on.
    #[arg(long, env = "TRIBUTARY_SOCKET_RECEIVE_BUFFER_BYTES")]
    pub socket_receive_buffer_bytes: Option<i32>,
    /// How often retention and segment age are checked, in milliseconds.
    #[arg(long, env = "TRIBUTARY_LOG_RETENTION_CHECK_INTERVAL_MS")]
    pub log_retention_check_interval_ms: Option<u64>,
    /// How often compacted topics are checked for a cleaning pass, in milliseconds (Kafka's
    /// log.cleaner.backoff.ms).
    #[arg(long, env = "TRIBUTARY_LOG_CLEANER_BACKOFF_MS")]
    pub log_cleaner_backoff_ms: Option<u64>,
    /// Default flush.messages: unsynced records that force an fsync of writes no producer
    /// waits on (unset: left to the OS and to segment rolls, as in Kafka).
    #[arg(long, env = "TRIBUTARY_LOG_FLUSH_INTERVAL_MESSAGES")]
    pub log_flush_interval_messages: Option<i64>,
    /// Default flush.ms: longest such writes stay unsynced (unset: no limit, as in Kafka).
    #[arg(long, env = "TRIBUTARY_LOG_FLUSH_INTERVAL_MS")]
    pub log_flush_interval_ms: Option<i64>,
    /// fsync before answering acks=all produce requests (group commit).
    #[arg(long, env = "TRIBUTARY_FSYNC_ACKS_ALL")]
    pub fsync_acks_all: Option<bool>,
    /// fsync before answering acks=1 produce requests too.
    #[arg(long, env = "TRIBUTARY_FSYNC_ACKS_ONE")]
    pub fsync_acks_one: Option<bool>,
    /// Sync the data directory's whole filesystem once when a group commit covers several
    /// partitions (cheapest on a volume of its own; turn off on a disk shared with busy writers).
    #[arg(long, env = "TRIBUTARY_FSYNC_FILESYSTEM")]
    pub fsync_filesystem: Option<bool>,
    /// Size of the commit journal that makes fsynced produce requests durable with one
    /// sequential write per group commit (0: fsync the segments instead). Created zero-filled
    /// in the data directory at start-up, smaller where a quarter of the free space is less.
    #[arg(long, env = "TRIBUTARY_COMMIT_JOURNAL_BYTES")]
    pub commit_journal_bytes: Option<u64>,
    /// Largest request frame accepted (socket.request.max.bytes).
    #[arg(long, env = "TRIBUTARY_SOCKET_REQUEST_MAX_BYTES")]
    pub socket_request_max_bytes: Option<usize>,
    /// Most client connections served at once; further ones wait to be accepted.
    #[arg(long, env = "TRIBUTARY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Address of the HTTP endpoint serving /metrics, /healthz and /readyz.
    #[arg(long, env = "TRIBUTARY_HTTP_LISTENER")]
    pub http_listener: Option<String>,
    /// group.initial.rebalance.delay.ms: how long a new group's first rebalance waits for
    /// more members.
    #[arg(long, env = "TRIBUTARY_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<i64>,
    /// group.min.session.timeout.ms: shortest session timeout a member may ask for.
    #[arg(long, env = "TRIBUTARY_GROUP_MIN_SESSION_TIMEOUT_MS")]
    pub group_min_session_timeout_ms: Option<i32>,
    /// group.max.session.timeout.ms: longest session timeout a member may ask for.
    #[arg(long, env = "TRIBUTARY_GROUP_MAX_SESSION_TIMEOUT_MS")]
    pub group_max_session_timeout_ms: Option<i32>,
    /// group.coordinator.rebalance.protocols: the group protocols served, comma-separated
    /// (`classic,consumer` by default, as in Kafka 4.0: the KIP-848 consumer protocol beside
    /// the classic one; `classic` alone turns it off).
    #[arg(long, env = "TRIBUTARY_GROUP_COORDINATOR_REBALANCE_PROTOCOLS")]
    pub group_coordinator_rebalance_protocols: Option<String>,
    /// group.consumer.session.timeout.ms: a consumer group member (KIP-848) silent this long
    /// is removed.
    #[arg(long, env = "TRIBUTARY_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    pub group_consumer_session_timeout_ms: Option<i32>,
    /// group.consumer.heartbeat.interval.ms: how often consumer group members heartbeat.
    #[arg(long, env = "TRIBUTARY_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    pub group_consumer_heartbeat_interval_ms: Option<i32>,
    /// group.consumer.assignors: the server-side assignors of consumer groups, comma-separated
    /// (`uniform`, `range`); the first is the default.
    #[arg(long, env = "TRIBUTARY_GROUP_CONSUMER_ASSIGNORS")]
    pub group_consumer_assignors: Option<String>,
    /// group.consumer.migration.policy: online conversion between classic and consumer
    /// groups: `bidirectional` (default), `upgrade`, `downgrade` or `disabled`.
    #[arg(long, env = "TRIBUTARY_GROUP_CONSUMER_MIGRATION_POLICY")]
    pub group_consumer_migration_policy: Option<String>,
    /// group.max.size: most members a classic group admits (KIP-389; GROUP_MAX_SIZE_REACHED
    /// beyond), and most a consumer group may have to turn back into a classic one.
    #[arg(long, env = "TRIBUTARY_GROUP_MAX_SIZE")]
    pub group_max_size: Option<i32>,
    /// group.consumer.max.size: most members a consumer group (KIP-848) admits.
    #[arg(long, env = "TRIBUTARY_GROUP_CONSUMER_MAX_SIZE")]
    pub group_consumer_max_size: Option<i32>,
    /// offsets.topic.num.partitions: partitions of `__consumer_offsets` when it is created.
    #[arg(long, env = "TRIBUTARY_OFFSETS_TOPIC_NUM_PARTITIONS")]
    pub offsets_topic_num_partitions: Option<i32>,
    /// offsets.retention.minutes: how long offsets of an empty group are kept.
    #[arg(long, env = "TRIBUTARY_OFFSETS_RETENTION_MINUTES")]
    pub offsets_retention_minutes: Option<i64>,
    /// offsets.retention.check.interval.ms: how often expired offsets are removed.
    #[arg(long, env = "TRIBUTARY_OFFSETS_RETENTION_CHECK_INTERVAL_MS")]
    pub offsets_retention_check_interval_ms: Option<i64>,
    /// transaction.max.timeout.ms: longest transaction.timeout.ms a producer may ask for.
    #[arg(long, env = "TRIBUTARY_TRANSACTION_MAX_TIMEOUT_MS")]
    pub transaction_max_timeout_ms: Option<i32>,
    /// transactional.id.expiration.ms: how long an idle transactional id is remembered.
    #[arg(long, env = "TRIBUTARY_TRANSACTIONAL_ID_EXPIRATION_MS")]
    pub transactional_id_expiration_ms: Option<i64>,
    /// transaction.state.log.num.partitions: partitions of `__transaction_state` when it is
    /// created.
    #[arg(long, env = "TRIBUTARY_TRANSACTION_STATE_LOG_NUM_PARTITIONS")]
    pub transaction_state_log_num_partitions: Option<i32>,
    /// offsets.topic.replication.factor: replicas of `__consumer_offsets` in cluster mode (a
    /// standalone broker has one), so committed offsets survive a broker's loss.
    #[arg(long, env = "TRIBUTARY_OFFSETS_TOPIC_REPLICATION_FACTOR")]
    pub offsets_topic_replication_factor: Option<i16>,
    /// transaction.state.log.replication.factor: replicas of `__transaction_state` in cluster
    /// mode (a standalone broker has one).
    #[arg(long, env = "TRIBUTARY_TRANSACTION_STATE_LOG_REPLICATION_FACTOR")]
    pub transaction_state_log_replication_factor: Option<i16>,
    /// transaction.state.log.min.isr: min.insync.replicas of `__transaction_state`.
    #[arg(long, env = "TRIBUTARY_TRANSACTION_STATE_LOG_MIN_ISR")]
    pub transaction_state_log_min_isr: Option<i32>,
    /// transaction.partition.verification.enable: in cluster mode a partition leader asks the
    /// producer's transaction coordinator whether the partition is in the producer's open
    /// transaction before appending its first transactional batch (KIP-890), so a late write
    /// of an ended transaction cannot leave a hanging one; false takes such writes on trust.
    #[arg(long, env = "TRIBUTARY_TRANSACTION_PARTITION_VERIFICATION_ENABLE")]
    pub transaction_partition_verification_enable: Option<bool>,
    /// replica.lag.time.max.ms: how long a follower may go without catching up with its
    /// leader before the leader removes it from the ISR.
    #[arg(long, env = "TRIBUTARY_REPLICA_LAG_TIME_MAX_MS")]
    pub replica_lag_time_max_ms: Option<i64>,
    /// replica.fetch.wait.max.ms: how long a follower's fetch waits at the leader for data.
    #[arg(long, env = "TRIBUTARY_REPLICA_FETCH_WAIT_MAX_MS")]
    pub replica_fetch_wait_max_ms: Option<i32>,
    /// replica.fsync.before.ack: a follower fsyncs what it fetched before its next fetch
    /// reports the new position, so an acks=all write is acknowledged only once it is on disk
    /// on every in-sync replica (off: followers write to the page cache, as Kafka's do).
    #[arg(long, env = "TRIBUTARY_REPLICA_FSYNC_BEFORE_ACK")]
    pub replica_fsync_before_ack: Option<bool>,
    /// producer.id.expiration.ms: how long a partition remembers an idle producer's sequences.
    #[arg(long, env = "TRIBUTARY_PRODUCER_ID_EXPIRATION_MS")]
    pub producer_id_expiration_ms: Option<i64>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "TRIBUTARY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Cluster mode: the KafkaCluster this broker belongs to. Its metadata then lives in
    /// Kubernetes (KafkaTopics, KafkaPartitions, broker Leases) instead of the data directory.
    #[arg(long, env = "TRIBUTARY_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Cluster mode: the namespace of the KafkaCluster (default: the pod's, POD_NAMESPACE).
    #[arg(long, env = "TRIBUTARY_CLUSTER_NAMESPACE")]
    pub cluster_namespace: Option<String>,
    /// Cluster mode: how long the broker's registration Lease lasts without renewal.
    #[arg(long, env = "TRIBUTARY_BROKER_LEASE_DURATION_MS")]
    pub broker_lease_duration_ms: Option<u64>,
    /// Cluster mode: how often the broker renews its registration Lease.
    #[arg(long, env = "TRIBUTARY_BROKER_LEASE_RENEW_INTERVAL_MS")]
    pub broker_lease_renew_interval_ms: Option<u64>,
    /// Cluster mode: listeners reached from outside Kubernetes through a per-broker Service
    /// (`<cluster>-broker-<id>-<listener>`, NodePort or LoadBalancer), comma-separated. Each
    /// advertises what its Service gives (node address and node port, or the load balancer's
    /// ingress), and is left out of Metadata until that is known.
    #[arg(long, env = "TRIBUTARY_EXTERNAL_LISTENERS")]
    pub external_listeners: Option<String>,
    /// Cluster mode: the node's address, which NodePort listeners advertise unless their
    /// Service names another host (the pod gets it from `status.hostIP`).
    #[arg(long, env = "HOST_IP")]
    pub host_ip: Option<String>,
    /// remote.log.storage.system.enable: tiered storage (KIP-405) for topics that set
    /// `remote.storage.enable`; needs `remote-storage-url`.
    #[arg(long, env = "TRIBUTARY_REMOTE_LOG_STORAGE_SYSTEM_ENABLE")]
    pub remote_log_storage_system_enable: Option<bool>,
    /// Where tiered segments go: `s3://bucket/prefix` or `file:///directory`.
    #[arg(long, env = "TRIBUTARY_REMOTE_STORAGE_URL")]
    pub remote_storage_url: Option<String>,
    /// S3 endpoint of an S3-compatible server (unset: AWS, or `AWS_ENDPOINT_URL`).
    #[arg(long, env = "TRIBUTARY_REMOTE_STORAGE_ENDPOINT")]
    pub remote_storage_endpoint: Option<String>,
    /// S3 region (unset: `AWS_REGION`, else us-east-1).
    #[arg(long, env = "TRIBUTARY_REMOTE_STORAGE_REGION")]
    pub remote_storage_region: Option<String>,
    /// Path-style S3 requests, which most S3-compatible servers need (default true).
    #[arg(long, env = "TRIBUTARY_REMOTE_STORAGE_PATH_STYLE")]
    pub remote_storage_path_style: Option<bool>,
    /// S3 access key (unset: `AWS_ACCESS_KEY_ID`).
    #[arg(long, env = "TRIBUTARY_REMOTE_STORAGE_ACCESS_KEY_ID")]
    pub remote_storage_access_key_id: Option<String>,
    /// S3 secret key (unset: `AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "TRIBUTARY_REMOTE_STORAGE_SECRET_ACCESS_KEY")]
    pub remote_storage_secret_access_key: Option<String>,
    /// A directory holding the S3 credentials as files `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` (and optionally `AWS_SESSION_TOKEN`), as a mounted Secret
    /// provides them; read again whenever they change, so a rotated Secret needs no restart.
    #[arg(long, env = "TRIBUTARY_REMOTE_STORAGE_CREDENTIALS_DIR")]
    pub remote_storage_credentials_dir: Option<PathBuf>,
    /// How often leaders upload due segments and expire remote ones, in milliseconds
    /// (Kafka's remote.log.manager.task.interval.ms; default 30000).
    #[arg(long, env = "TRIBUTARY_REMOTE_LOG_MANAGER_TASK_INTERVAL_MS")]
    pub remote_log_manager_task_interval_ms: Option<u64>,
    /// Bytes of remote segments cached in memory for fetches (default 64 MiB).
    #[arg(long, env = "TRIBUTARY_REMOTE_FETCH_CACHE_BYTES")]
    pub remote_fetch_cache_bytes: Option<u64>,
    /// Longest a fetch waits for the bucket, in milliseconds (Kafka's
    /// remote.fetch.max.wait.ms; default 500): past it the partition is answered
    /// KAFKA_STORAGE_ERROR, which clients retry, while the read goes on into the cache.
    #[arg(long, env = "TRIBUTARY_REMOTE_FETCH_MAX_WAIT_MS")]
    pub remote_fetch_max_wait_ms: Option<u64>,
    /// Longest a ListOffsets by timestamp on a tiered topic waits for the bucket when the
    /// request names no timeout (ListOffsets below v10, or `timeout_ms` 0), in milliseconds
    /// (Kafka's remote.list.offsets.request.timeout.ms; default 30000).
    #[arg(long, env = "TRIBUTARY_REMOTE_LIST_OFFSETS_REQUEST_TIMEOUT_MS")]
    pub remote_list_offsets_request_timeout_ms: Option<u64>,
    /// group.share.enable: serve share groups (KIP-932; Kafka 4.0's switch, on by default as
    /// share groups are on a new Kafka 4.2 cluster); `false` serves and advertises none of
    /// their APIs.
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_ENABLE")]
    pub group_share_enable: Option<bool>,
    /// group.share.record.lock.duration.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_RECORD_LOCK_DURATION_MS")]
    pub group_share_record_lock_duration_ms: Option<i32>,
    /// group.share.min.record.lock.duration.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MIN_RECORD_LOCK_DURATION_MS")]
    pub group_share_min_record_lock_duration_ms: Option<i32>,
    /// group.share.max.record.lock.duration.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MAX_RECORD_LOCK_DURATION_MS")]
    pub group_share_max_record_lock_duration_ms: Option<i32>,
    /// group.share.delivery.count.limit (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_DELIVERY_COUNT_LIMIT")]
    pub group_share_delivery_count_limit: Option<i32>,
    /// group.share.min.delivery.count.limit (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MIN_DELIVERY_COUNT_LIMIT")]
    pub group_share_min_delivery_count_limit: Option<i32>,
    /// group.share.max.delivery.count.limit (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MAX_DELIVERY_COUNT_LIMIT")]
    pub group_share_max_delivery_count_limit: Option<i32>,
    /// group.share.partition.max.record.locks (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_PARTITION_MAX_RECORD_LOCKS")]
    pub group_share_partition_max_record_locks: Option<i32>,
    /// group.share.min.partition.max.record.locks (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MIN_PARTITION_MAX_RECORD_LOCKS")]
    pub group_share_min_partition_max_record_locks: Option<i32>,
    /// group.share.max.partition.max.record.locks (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MAX_PARTITION_MAX_RECORD_LOCKS")]
    pub group_share_max_partition_max_record_locks: Option<i32>,
    /// group.share.session.timeout.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_SESSION_TIMEOUT_MS")]
    pub group_share_session_timeout_ms: Option<i32>,
    /// group.share.min.session.timeout.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MIN_SESSION_TIMEOUT_MS")]
    pub group_share_min_session_timeout_ms: Option<i32>,
    /// group.share.max.session.timeout.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MAX_SESSION_TIMEOUT_MS")]
    pub group_share_max_session_timeout_ms: Option<i32>,
    /// group.share.heartbeat.interval.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_HEARTBEAT_INTERVAL_MS")]
    pub group_share_heartbeat_interval_ms: Option<i32>,
    /// group.share.min.heartbeat.interval.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MIN_HEARTBEAT_INTERVAL_MS")]
    pub group_share_min_heartbeat_interval_ms: Option<i32>,
    /// group.share.max.heartbeat.interval.ms (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MAX_HEARTBEAT_INTERVAL_MS")]
    pub group_share_max_heartbeat_interval_ms: Option<i32>,
    /// group.share.max.size (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MAX_SIZE")]
    pub group_share_max_size: Option<i32>,
    /// group.share.max.share.sessions (see `share_broker_config`).
    #[arg(long, env = "TRIBUTARY_GROUP_SHARE_MAX_SHARE_SESSIONS")]
    pub group_share_max_share_sessions: Option<i32>,
    /// The schema registry that topics with `confluent.key/value.schema.validation` are
    /// checked against (Confluent Server's `confluent.schema.registry.url`; of a list, the
    /// first).
    #[arg(long, env = "TRIBUTARY_SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,
}

impl Flags {
    /// Fills every setting left unset here from `other` (the config file).
    pub(crate) fn or(self, other: Flags) -> Flags {
        macro_rules! pick {
            ($($f:ident),*) => { Flags { config: self.config, $($f: self.$f.or(other.$f)),* } };
        }
        pick!(
            listener,
            advertised_listener,
            listeners,
            advertised_listeners,
            listener_security_protocol_map,
            inter_broker_listener_name,
            security,
            data_dir,
            broker_id,
            rack,
            num_partitions,
            default_replication_factor,
            auto_create_topics,
            log_retention_ms,
            log_retention_bytes,
            log_segment_bytes,
            log_segment_ms,
            message_max_bytes,
            max_uncompressed_batch_bytes,
            max_broker_partitions,
            max_partitions_per_request,
            min_insync_replicas,
            log_cleanup_policy,
            compression_type,
            unclean_leader_election_enable,
            delete_topic_enable,
            socket_send_buffer_bytes,
            socket_receive_buffer_bytes,
            log_retention_check_interval_ms,
            log_cleaner_backoff_ms,
            log_flush_interval_messages,
            log_flush_interval_ms,
            fsync_acks_all,
            fsync_acks_one,
            fsync_filesystem,
            commit_journal_bytes,
            socket_request_max_bytes,
            max_connections,
            http_listener,
            group_initial_rebalance_delay_ms,
            group_min_session_timeout_ms,
            group_max_session_timeout_ms,
            group_coordinator_rebalance_protocols,
            group_consumer_session_timeout_ms,
            group_consumer_heartbeat_interval_ms,
            group_consumer_assignors,
            group_consumer_migration_policy,
            group_max_size,
            group_consumer_max_size,
            offsets_topic_num_partitions,
            offsets_retention_minutes,
            offsets_retention_check_interval_ms,
            transaction_max_timeout_ms,
            producer_id_expiration_ms,
            transactional_id_expiration_ms,
            transaction_state_log_num_partitions,
            offsets_topic_replication_factor,
            transaction_state_log_replication_factor,
            transaction_state_log_min_isr,
            transaction_partition_verification_enable,
            replica_lag_time_max_ms,
            replica_fetch_wait_max_ms,
            replica_fsync_before_ack,
            log_format,
            cluster_name,
            cluster_namespace,
            broker_lease_duration_ms,
            broker_lease_renew_interval_ms,
            external_listeners,
            host_ip,
            remote_log_storage_system_enable,
            remote_storage_url,
            remote_storage_endpoint,
            remote_storage_region,
            remote_storage_path_style,
            remote_storage_access_key_id,
            remote_storage_secret_access_key,
            remote_storage_credentials_dir,
            remote_log_manager_task_interval_ms,
            remote_fetch_cache_bytes,
            remote_fetch_max_wait_ms,
            remote_list_offsets_request_timeout_ms,
            group_share_enable,
            group_share_record_lock_duration_ms,
            group_share_min_record_lock_duration_ms,
            group_share_max_record_lock_duration_ms,
            group_share_delivery_count_limit,
            group_share_min_delivery_count_limit,
            group_share_max_delivery_count_limit,
            group_share_partition_max_record_locks,
            group_share_min_partition_max_record_locks,
            group_share_max_partition_max_record_locks,
            group_share_session_timeout_ms,
            group_share_min_session_timeout_ms,
            group_share_max_session_timeout_ms,
            group_share_heartbeat_interval_ms,
            group_share_min_heartbeat_interval_ms,
            group_share_max_heartbeat_interval_ms,
            group_share_max_size,
            group_share_max_share_sessions,
            schema_registry_url
        )
    }
}
