//! The broker's shared state: configuration, cluster identity, topics, producer ids and the
//! group-commit flusher, and the group coordinator. Handlers receive it as `Arc<Broker>`.
//! It is built last, from parts made complete in the order they depend on each other; the
//! parts below it see it only through the narrow traits it implements (`hosts`).

use std::path::Path;
use std::sync::{Arc, Weak};

use crate::config::BrokerConfig;
use crate::coordinator::log::CoordinatorLog;
use crate::coordinator_host::{BrokerLog, InternalTopic};
use crate::dynamic_config::{DynamicConfigError, DynamicConfigs};
use crate::flusher::Flusher;
use crate::group::GroupCoordinator;
use crate::journal::{Replay, JOURNAL_FILE};
use crate::kube::start::ClusterParts;
use crate::metadata::elections::LeaderElections;
use crate::metadata::reassignments::PartitionReassignments;
use crate::metadata::{BrokerInfo, ClusterImage, MetadataCache, MetadataError, MetadataSource};
use crate::metrics::{Metrics, MetricsError};
use crate::producer::{FileBlocks, IdAllocator, IdAllocatorError};
use crate::quotas::{QuotaStoreError, Quotas};
use crate::replica::{IsrCounters, ReplicaManager, ReplicaParts};
use crate::share::coordinator::ShareCoordinator;
use crate::share::manager::SharePartitionManager;
use crate::share::session::SessionCache;
use crate::share_log::ReplicaShareLog;
use crate::share_state::ShareStates;
use crate::standalone::LocalMetadata;
use crate::topics::LocalStore;
use crate::txn::{Legacy, StoreError, TransactionCoordinator, TxnConfig};

mod hosts;
#[cfg(test)]
mod share_tests;
#[cfg(test)]
mod txn_tests;

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What an earlier commit journal preparation left could not be removed.
    #[error(transparent)]
    Journal(crate::journal::JournalError),
    /// Topics could not be loaded.
    #[error(transparent)]
    Topics(#[from] MetadataError),
    #[error(transparent)]
    GroupConfigs(#[from] crate::group_configs::GroupConfigError),
    /// The finalized feature levels could not be read.
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    /// The producer id checkpoint is unusable.
    #[error(transparent)]
    ProducerIds(#[from] IdAllocatorError),
    /// Metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The schema registry URL or the settings to reach it are unusable.
    #[error("schema registry: {0}")]
    SchemaRegistry(#[from] crate::schema_validation::access::AccessError),
    /// The transaction state is unusable.
    #[error(transparent)]
    Transactions(#[from] StoreError),
    /// The dynamic broker configs are unreadable.
    #[error(transparent)]
    DynamicConfigs(#[from] DynamicConfigError),
    /// The client quotas are unreadable.
    #[error(transparent)]
    Quotas(#[from] QuotaStoreError),
    /// A saved document (the SCRAM credentials, the delegation tokens) is unreadable.
    #[error(transparent)]
    Saved(#[from] crate::fsutil::JsonFileError),
    /// A `delegation.token.*` setting is unusable.
    #[error(transparent)]
    TokenSettings(#[from] crate::security::tokens::TokenSettingsError),
    /// The authorizer cannot start.
    #[error(transparent)]
    Acl(#[from] crate::acl::AclError),
    /// The inter-broker listener's client settings are unusable.
    #[error(transparent)]
    PeerSecurity(#[from] crate::security::peer::PeerSecurityError),
    /// The remote storage of tiered storage cannot be opened.
    #[error(transparent)]
    Tiered(#[from] crate::tiered::TieredError),
    /// Cluster mode could not start (registration, watching the cluster's objects).
    #[error(transparent)]
    Cluster(#[from] crate::kube::KubeError),
}

/// Shared broker state.
pub struct Broker {
    /// Effective configuration.
    pub config: Arc<BrokerConfig>,
    /// Cluster id, generated once and kept in `meta.properties`.
    pub cluster_id: String,
    /// The cluster as this broker sees it: brokers, topics, partition leaders and ISRs.
    pub metadata: Arc<MetadataCache>,
    /// Where topic changes go (the data directory on a standalone broker).
    pub admin: Arc<dyn MetadataSource>,
    /// The partitions this broker hosts, in their roles.
    pub replicas: Arc<ReplicaManager>,
    /// Producer id source for InitProducerId.
    pub producer_ids: IdAllocator,
    /// Group-commit fsync queue.
    pub flusher: Flusher,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Consumer groups and committed offsets.
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids and their transactions.
    pub txns: Arc<TransactionCoordinator>,
    /// The durable state of share-partitions (share groups).
    pub shares: Arc<ShareCoordinator>,
    /// Share-partition state wherever it is served (here or on another broker).
    pub share_states: Arc<ShareStates>,
    /// The share-partitions led here: share groups' records in flight.
    pub share_partitions: Arc<SharePartitionManager>,
    /// The share sessions of the members fetching here (`group.share.max.share.sessions`).
    pub share_sessions: parking_lot::Mutex<SessionCache>,
    /// Groups' configs (config resource type GROUP).
    pub group_configs: Arc<crate::group_configs::GroupConfigs>,
    /// The finalized feature levels (KIP-584) the broker serves by.
    pub features: Arc<crate::features::Features>,
    /// Client quotas and the rates they are enforced against.
    pub quotas: Quotas,
    /// Replication throttles' byte rates, leader and follower side.
    pub replication_quotas: crate::quotas::replication::ReplicationQuotas,
    /// Users' SCRAM credentials.
    pub scram: Arc<crate::security::credentials::ScramCredentials>,
    /// Delegation tokens (KIP-48), which clients log in with over SCRAM.
    pub tokens: Arc<crate::security::tokens::DelegationTokens>,
    /// The ACLs and their checks, when `authorizer.class.name` is set; without it every
    /// client may do everything.
    pub authorizer: Option<Arc<crate::acl::Authorizer>>,
    /// How connections to other brokers are secured (the inter-broker listener's TLS and
    /// SASL), for followers' fetches and transaction markers.
    pub peer_security: Arc<crate::security::peer::PeerSecurity>,
    /// This broker's registration in cluster mode.
    pub registrar: Option<Arc<crate::kube::registration::Registrar>>,
    /// Where ElectLeaders asks for elections: the controller in cluster mode; none on a
    /// standalone broker, which leads everything as the only replica.
    pub elections: Option<Arc<dyn LeaderElections>>,
    /// Where AlterPartitionReassignments records reassignments: the KafkaPartition objects in
    /// cluster mode; none on a standalone broker, the only replica of everything.
    pub reassignments: Option<Arc<dyn PartitionReassignments>>,
    /// The client instances that asked for telemetry subscriptions (KIP-714).
    pub telemetry: crate::telemetry::ClientTelemetry,
    /// Tiered storage, when `remote.log.storage.system.enable` is on.
    pub tiered: Option<Arc<crate::tiered::TieredStorage>>,
    /// The schema registry that schema validation asks, with its cache.
    pub schemas: Arc<crate::schema_validation::lookup::Schemas>,
}

impl Broker {
    /// Opens the data directory, recovers every partition and starts the flusher. Must run
    /// inside a Tokio runtime.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
        let offsets = InternalTopic::offsets(&config);
        Broker::open_with_offsets_log(config, |broker| Arc::new(BrokerLog::new(broker, offsets)))
    }

    /// [`Broker::open`] with the group coordinator writing to the log `offsets_log` makes
    /// (tests use an in-memory one); it gets a weak handle to the broker being built.
    pub fn open_with_offsets_log(
        config: BrokerConfig,
        offsets_log: impl FnOnce(Weak<Broker>) -> Arc<dyn CoordinatorLog>,
    ) -> Result<Arc<Broker>, StartError> {
        let (prepared, replicas) = Prepared::new(config)?;
        let replicas = Arc::new(ReplicaManager::build(replicas));
        let dir = prepared.config.data_dir.clone();
        let cluster_id = load_or_create_cluster_id(&dir, prepared.config.broker_id)?;
        let metadata = Arc::new(MetadataCache::new(standalone_image(
            &prepared.config,
            &cluster_id,
        )));
        let admin: Arc<dyn MetadataSource> = Arc::new(LocalMetadata::open(
            prepared.config.clone(),
            Box::new(LocalStore::new(&dir)),
            metadata.clone(),
            replicas.clone(),
        )?);
        let blocks = Box::new(FileBlocks::open(&dir.join("producer-ids"))?);
        let parts = MetadataParts {
            cluster_id,
            metadata,
            replicas,
            admin,
            producer_ids: IdAllocator::new(blocks),
            registrar: None,
            elections: None,
            reassignments: None,
            shared_acls: None,
            shared_scram: None,
            shared_tokens: None,
            shared_quotas: None,
            shared_dynamic: None,
            shared_groups: None,
            shared_features: None,
        };
        prepared.assemble(parts, offsets_log)
    }

    /// Opens a broker in cluster mode: registers in its Lease as a new incarnation, watches
    /// the cluster's objects until the first image is applied (its partitions open), and keeps
    /// its registration renewed from then on.
    pub async fn open_in_cluster(
        config: BrokerConfig,
        client: kube::Client,
    ) -> Result<Arc<Broker>, StartError> {
        let (prepared, replicas) = Prepared::new(config)?;
        let parts = crate::kube::start::cluster_parts(client, &prepared.config, replicas).await?;
        let offsets = InternalTopic::offsets(&prepared.config);
        prepared.assemble(parts.into(), |broker| {
            Arc::new(BrokerLog::new(broker, offsets))
        })
    }

    /// Whether the broker serves all of its partitions (for `/readyz`): it has recovered them
    /// before it accepts connections, and in cluster mode its registration is current.
    pub fn is_ready(&self) -> bool {
        !self.replicas.fence().is_fenced()
    }

    /// Updates the gauges that are computed rather than counted, before a scrape.
    pub fn refresh_gauges(&self) {
        let m = &self.metrics;
        let mut count = 0;
        for p in self.replicas.all() {
            {
                count += 1;
                let labels = [p.topic(), &p.index().to_string()];
                let (size, start, end) = p.with_log(|log| {
                    (
                        log.size_bytes(),
                        log.log_start_offset(),
                        log.log_end_offset(),
                    )
                });
                m.log_size
                    .with_label_values(&labels)
                    .set(i64::try_from(size).unwrap_or(i64::MAX));
                m.log_start_offset.with_label_values(&labels).set(start);
                m.log_end_offset.with_label_values(&labels).set(end);
            }
        }
        m.partitions.set(count);
        m.record_log_dir(&self.config.data_dir);
        let image = self.metadata.image();
        let led: Vec<_> = image
            .replicas_of(self.config.broker_id)
            .filter(|(_, _, p)| p.leader == self.config.broker_id)
            .collect();
        let under_replicated = led
            .iter()
            .filter(|(_, _, p)| p.is_under_replicated())
            .count();
        let reassigning = led.iter().filter(|(_, _, p)| p.is_reassigning()).count();
        let under_min_isr = led
            .iter()
            .filter(|(topic, index, p)| {
                let min = self
                    .replicas
                    .get(&topic.name, *index)
                    .map_or(1, |hosted| hosted.min_insync_replicas());
                p.isr.len() < min
            })
            .count();
        let level = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        m.under_replicated.set(level(under_replicated));
        m.under_min_isr.set(level(under_min_isr));
        m.reassigning.set(level(reassigning));
        m.leaders.set(level(led.len()));
        let offline = image
            .topics()
            .flat_map(|t| &t.partitions)
            .filter(|p| !p.has_leader())
            .count();
        m.offline.set(i64::try_from(offline).unwrap_or(i64::MAX));
        m.record_groups(&self.groups.take_stats());
        m.share_groups.reset();
        for (_, state) in self.groups.list_share_groups() {
            m.share_groups.with_label_values(&[state]).inc();
        }
        m.share_members
            .set(level(self.groups.share_group_members()));
        m.share_sessions
            .set(level(self.share_sessions.lock().len()));
        self.refresh_share_partitions();
        self.refresh_consumer_lag();
    }

    /// Each share-partition led here: records in flight, and lag (records up to the high
    /// watermark not yet done with); rebuilt on each scrape so dropped ones disappear.
    fn refresh_share_partitions(&self) {
        let m = &self.metrics;
        m.share_in_flight.reset();
        m.share_lag.reset();
        let image = self.metadata.image();
        for (key, stats) in self.share_partitions.stats() {
            let Some(topic) = image.topic_by_id(&key.topic) else {
                continue;
            };
            let labels = [key.group.as_str(), &topic.name, &key.partition.to_string()];
            m.share_in_flight
                .with_label_values(&labels)
                .set(stats.in_flight);
            if let Some(replica) = self.replicas.get(&topic.name, key.partition) {
                let high_watermark = replica.with_log(|log| log.high_watermark());
                let lag = high_watermark - stats.start_offset - stats.delivery_complete;
                m.share_lag.with_label_values(&labels).set(lag.max(0));
            }
        }
        // The manager counts; the counters catch up with it.
        let counts = self.share_partitions.counts();
        for (counter, total) in [
            (&m.share_lock_expiries, counts.lock_expiries),
            (&m.share_acquired, counts.acquired),
            (&m.share_archived, counts.archived),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// Lag of every committed group offset: high watermark minus committed offset. Series of
    /// deleted groups and offsets disappear because the gauge is rebuilt on each scrape.
    fn refresh_consumer_lag(&self) {
        let lag = &self.metrics.consumer_lag;
        lag.reset();
        let (_, groups) = self.groups.list(&[]);
        for group in groups {
            let Ok(topics) = self.groups.fetch_offsets(&group.group_id, None) else {
                continue;
            };
            for (topic_name, partitions) in topics {
                for (index, committed) in partitions {
                    let (Some(partition), Some(committed)) =
                        (self.replicas.get(&topic_name, index), committed)
                    else {
                        continue;
                    };
                    let hw = partition.with_log(|log| log.high_watermark());
                    lag.with_label_values(&[&group.group_id, &topic_name, &index.to_string()])
                        .set((hw - committed.offset).max(0));
                }
            }
        }
    }

    /// fsyncs and checkpoints every partition (graceful shutdown).
    pub fn flush_all(&self) {
        for partition in self.replicas.all() {
            if let Err(error) = partition.flush() {
                tracing::error!(?partition, %error, "flush at shutdown failed");
            }
        }
    }
}

/// What both modes open the same way: the data directory, its dynamic configs, the journal's
/// replay and the metrics.
struct Prepared {
    config: Arc<BrokerConfig>,
    journal_path: std::path::PathBuf,
    last_journal_seq: u64,
    metrics: Metrics,
}

/// Where the metadata comes from: a standalone broker's data directory, or Kubernetes.
struct MetadataParts {
    /// The cluster id clients see.
    cluster_id: String,
    /// The image cache the source keeps current.
    metadata: Arc<MetadataCache>,
    /// The partitions this broker hosts, which the source opens as topics come.
    replicas: Arc<ReplicaManager>,
    /// Where topic changes go.
    admin: Arc<dyn MetadataSource>,
    /// Producer ids.
    producer_ids: IdAllocator,
    /// The registration to renew and release (cluster mode).
    registrar: Option<Arc<crate::kube::registration::Registrar>>,
    /// Where elections are asked for (cluster mode).
    elections: Option<Arc<dyn LeaderElections>>,
    /// Where reassignments are recorded (cluster mode).
    reassignments: Option<Arc<dyn PartitionReassignments>>,
    /// Where the ACLs are shared (cluster mode); a standalone broker keeps its own.
    shared_acls: Option<Arc<dyn crate::shared_state::Shared<crate::acl::AclSet>>>,
    /// Where the SCRAM credentials are shared (cluster mode).
    shared_scram: Option<Arc<dyn crate::shared_state::Shared<crate::security::credentials::Users>>>,
    /// Where the delegation tokens are shared (cluster mode).
    shared_tokens: Option<Arc<dyn crate::shared_state::Shared<crate::security::tokens::Tokens>>>,
    /// Where the client quotas are shared (cluster mode); a standalone broker keeps its own.
    shared_quotas:
        Option<Arc<dyn crate::shared_state::Shared<crate::quotas::store::ClientQuotaDocument>>>,
    /// Where the cluster-wide dynamic broker configs are shared (cluster mode).
    shared_dynamic: Option<Arc<dyn crate::shared_state::Shared<crate::dynamic_config::Values>>>,
    /// Where the group configs are shared (cluster mode).
    shared_groups:
        Option<Arc<dyn crate::shared_state::Shared<crate::group_configs::GroupOverrides>>>,
    /// Where the finalized feature levels are shared (cluster mode).
    shared_features:
        Option<Arc<dyn crate::shared_state::Shared<tributary_crds::features::FeatureLevels>>>,
}

impl From<ClusterParts> for MetadataParts {
    fn from(parts: ClusterParts) -> MetadataParts {
        MetadataParts {
            cluster_id: parts.cluster_id,
            metadata: parts.metadata,
            replicas: parts.replicas,
            admin: parts.admin,
            producer_ids: parts.producer_ids,
            registrar: Some(parts.registrar),
            elections: Some(parts.elections),
            reassignments: Some(parts.reassignments),
            shared_acls: Some(parts.shared_acls),
            shared_scram: Some(parts.shared_scram),
            shared_tokens: Some(parts.shared_tokens),
            shared_quotas: Some(parts.shared_quotas),
            shared_dynamic: Some(parts.shared_dynamic),
            shared_groups: Some(parts.shared_groups),
            shared_features: Some(parts.shared_features),
        }
    }
}

impl Prepared {
    /// Opens what both modes share, and returns it with what the replica manager is built
    /// from (cluster mode adds its ISR writer).
    fn new(config: BrokerConfig) -> Result<(Prepared, ReplicaParts), StartError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| StartError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let mut config = config;
        config.dynamic = Arc::new(DynamicConfigs::open(&dir)?);
        let config = Arc::new(config);
        let journal_path = dir.join(JOURNAL_FILE);
        let replay = Replay::scan(&journal_path).map_err(|source| StartError::DataDir {
            path: journal_path.clone(),
            source,
        })?;
        let last_journal_seq = replay.last_seq();
        let metrics = Metrics::new()?;
        let replicas = ReplicaParts {
            isr_counters: Some(IsrCounters {
                shrinks: metrics.isr_shrinks.clone(),
                expands: metrics.isr_expands.clone(),
                failed: metrics.failed_isr_updates.clone(),
            }),
            ..ReplicaParts::new(crate::topics::config::replica_settings(&config), replay)
        };
        let prepared = Prepared {
            config,
            journal_path,
            last_journal_seq,
            metrics,
        };
        Ok((prepared, replicas))
    }

    fn assemble(
        self,
        parts: MetadataParts,
        offsets_log: impl FnOnce(Weak<Broker>) -> Arc<dyn CoordinatorLog>,
    ) -> Result<Arc<Broker>, StartError> {
        let Prepared {
            config,
            journal_path,
            last_journal_seq,
            metrics,
        } = self;
        let dir = config.data_dir.clone();
        let legacy_txns = Legacy::read(&dir, config.cluster.is_none())?;
        let txn_config = TxnConfig {
            max_timeout_ms: config.transaction_max_timeout_ms,
            id_expiration_ms: config.transactional_id_expiration_ms,
            topic_partitions: config.transaction_state_log_num_partitions,
            ..TxnConfig::default()
        };
        let txn_topic = InternalTopic::transactions(&config);
        let share_topic = InternalTopic::share_state(&config);
        let quotas = Quotas::open(&dir, parts.shared_quotas)?;
        let group_configs =
            crate::group_configs::GroupConfigs::open(&dir, parts.shared_groups, &config.share)?;
        let features = crate::features::Features::open(&dir, parts.shared_features)?;
        let schemas = Arc::new(crate::schema_validation::lookup::Schemas::new(
            config.schema_registry_url.as_deref(),
            &config.security,
            crate::schema_validation::lookup::LookupMetrics {
                lookups: metrics.schema_lookups.clone(),
                cache_hits: metrics.schema_cache_hits.clone(),
            },
        )?);
        let scram =
            crate::security::credentials::ScramCredentials::open_shared(&dir, parts.shared_scram)?;
        let tokens = crate::security::tokens::DelegationTokens::open(
            &dir,
            crate::security::tokens::TokenSettings::from_props(&config.security)?,
            parts.shared_tokens,
        )?;
        let authorizer = crate::acl::from_settings(&config.security, &dir, parts.shared_acls)?;
        let peer_security = Arc::new(crate::security::peer::PeerSecurity::from_props(
            &config.listeners,
            &config.security,
        )?);
        let group_config = config.group.clone();
        let max_share_sessions =
            usize::try_from(config.share.max_share_sessions).unwrap_or(usize::MAX);
        let flusher = Flusher::new(
            metrics.flush_seconds.clone(),
            metrics.writeback_started_bytes.clone(),
            filesystem_handle(&dir, config.fsync_filesystem)?,
        );
        let tiered = match &config.tiered {
            Some(settings) => Some(
                crate::tiered::TieredStorage::open(settings.clone(), metrics.registry())
                    .map_err(StartError::Tiered)?,
            ),
            None => None,
        };
        let broker = Arc::new_cyclic(|weak: &Weak<Broker>| {
            let shares = ShareCoordinator::new(
                Arc::new(BrokerLog::new(weak.clone(), share_topic)),
                SHARE_STATE_WRITE_TIMEOUT,
            );
            let share_states = Arc::new(ShareStates::new(weak.clone()));
            let share_partitions = Arc::new(SharePartitionManager::new(
                Arc::new(ReplicaShareLog::new(weak.clone())),
                share_states.clone(),
            ));
            Broker {
                config,
                cluster_id: parts.cluster_id,
                metadata: parts.metadata,
                admin: parts.admin,
                replicas: parts.replicas,
                producer_ids: parts.producer_ids,
                flusher,
                metrics,
                groups: Arc::new(GroupCoordinator::new(
                    group_config,
                    offsets_log(weak.clone()),
                )),
                txns: Arc::new(TransactionCoordinator::new(
                    txn_config,
                    Arc::new(BrokerLog::new(weak.clone(), txn_topic)),
                )),
                shares,
                share_states,
                share_partitions,
                share_sessions: parking_lot::Mutex::new(SessionCache::new(max_share_sessions)),
                group_configs,
                features,
                quotas,
                replication_quotas: Default::default(),
                scram,
                tokens,
                authorizer,
                peer_security,
                registrar: parts.registrar,
                elections: parts.elections,
                reassignments: parts.reassignments,
                telemetry: Default::default(),
                tiered,
                schemas,
            }
        });
        start_journal(&broker, journal_path, last_journal_seq)?;
        if let Some(shared) = parts.shared_dynamic {
            // A cluster-wide change through another broker applies here as through this one.
            let weak = Arc::downgrade(&broker);
            let changed = Box::new(move || {
                if let Some(broker) = weak.upgrade() {
                    broker.admin.reapply_defaults();
                }
            });
            broker.config.dynamic.share(shared, changed);
        }
        broker.groups.start();
        broker.txns.start(legacy_txns);
        broker.txns.run_timers(Arc::<Broker>::downgrade(&broker));
        broker.tokens.start_sweeping();
        spawn_image_applier(&broker);
        if broker.registrar.is_some() {
            crate::replica::fetcher::spawn(&broker, broker.metrics.replica_max_lag.clone());
        }
        Ok(broker)
    }
}

/// The image a standalone broker starts from: itself as the only broker and the controller.
fn standalone_image(config: &BrokerConfig, cluster_id: &str) -> ClusterImage {
    let me = BrokerInfo {
        id: config.broker_id,
        host: config.advertised_host.clone(),
        port: config.advertised_port,
        rack: config.rack.clone(),
        incarnation: 1,
        endpoints: crate::metadata::advertised_endpoints(config),
    };
    ClusterImage::new(cluster_id.to_string(), config.broker_id, vec![me])
}

/// Starts the commit journal when fsynced produce requests can use it; with the journal off,
/// removes an old one, whose records every partition has replayed and fsynced by now, and
/// what a preparation that crashed left.
fn start_journal(
    broker: &Broker,
    path: std::path::PathBuf,
    last_seq: u64,
) -> Result<(), StartError> {
    let config = &broker.config;
    if config.commit_journal_bytes > 0 && (config.fsync_acks_all || config.fsync_acks_one) {
        broker
            .flusher
            .start_journal(path, config.commit_journal_bytes, last_seq);
        return Ok(());
    }
    crate::journal::remove_leftover(&path).map_err(StartError::Journal)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StartError::DataDir { path, source: e })
        }
        _ => Ok(()),
    }
}

/// The data directory opened for filesystem-wide syncs, when enabled and the OS has them with
/// error reporting (Linux 5.8 on; before, `syncfs` did not report writeback errors).
fn filesystem_handle(dir: &Path, enabled: bool) -> Result<Option<std::fs::File>, StartError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if !enabled || !cfg!(target_os = "linux") || !reports_syncfs_errors(&release) {
        if enabled {
            tracing::info!(
                kernel = release.trim(),
                "syncing partition files one by one"
            );
        }
        return Ok(None);
    }
    std::fs::File::open(dir)
        .map(Some)
        .map_err(|source| StartError::DataDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Whether a kernel `release` ("6.1.0-18-amd64") is Linux 5.8 or later.
fn reports_syncfs_errors(release: &str) -> bool {
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    (major, minor) >= (5, 8)
}

fn load_or_create_cluster_id(dir: &Path, broker_id: i32) -> Result<String, StartError> {
    let path = dir.join("meta.properties");
    let io = |source| StartError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            if let Some(id) = text
                .lines()
                .find_map(|l| l.strip_prefix("cluster.id="))
                .filter(|id| !id.trim().is_empty())
            {
                return Ok(id.trim().to_string());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let id = new_cluster_id();
    let text = format!("version=1\ncluster.id={id}\nnode.id={broker_id}\n");
    crate::fsutil::write_atomic(&path, text.as_bytes()).map_err(io)?;
    Ok(id)
}

/// A 22-character URL-safe base64 UUID, the form Kafka uses for cluster ids.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

/// Applies every new image, until the broker is dropped: the replica manager opens, re-roles
/// and deletes replicas (file work, on a blocking thread), metrics of deleted topics go, the
/// coordinators follow the leadership of their partitions.
/// A standalone broker's source applies its own changes first, so here they are no-ops.
fn spawn_image_applier(broker: &Arc<Broker>) {
    let mut images = broker.metadata.subscribe();
    // The image current at start is applied too (a no-op when the source applied it already).
    images.mark_changed();
    let broker = Arc::downgrade(broker);
    tokio::spawn(async move {
        while images.changed().await.is_ok() {
            let Some(b) = broker.upgrade() else {
                return;
            };
            images.borrow_and_update();
            let (replicas, cache) = (b.replicas.clone(), b.metadata.clone());
            let applied = tokio::task::spawn_blocking(move || replicas.apply_latest(&cache)).await;
            match applied {
                Ok(applied) => forget_deleted(&b, &applied.deleted),
                Err(error) => tracing::error!(%error, "applying the cluster image failed"),
            }
            if let Some(tiered) = &b.tiered {
                // Opened or new leaders whose logs await the remote log metadata.
                tiered.check_leaders_now(b.replicas.all());
            }
            b.groups.sync_leadership();
            b.txns.sync_leadership();
            b.shares.sync_leadership();
        }
    });
}

/// Drops the metric series of replicas that went, and of their topics when the image no
/// longer has them.
fn forget_deleted(broker: &Broker, deleted: &[(String, i32)]) {
    let image = broker.metadata.image();
    for (topic, index) in deleted {
        broker.metrics.forget_partition(topic, *index);
        if image.topic(topic).is_none() {
            broker.metrics.forget_topic(topic, 0);
        }
    }
}

/// How long a share-group state write may take to be committed (Kafka's
/// `share.coordinator.write.timeout.ms`).
const SHARE_STATE_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    #[test]
    fn syncfs_is_trusted_from_linux_5_8() {
        for (release, trusted) in [
            ("6.1.0-18-amd64", true),
            ("5.8.0", true),
            ("5.10.102.1-microsoft-standard-WSL2", true),
            ("5.4.0-150-generic", false),
            ("4.19.0", false),
            ("", false),
        ] {
            assert_eq!(super::reports_syncfs_errors(release), trusted, "{release}");
        }
    }
}
