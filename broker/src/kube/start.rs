//! Starting a broker in cluster mode: the cluster id from the KafkaCluster, registration in the
//! broker's Lease, the watches that feed the image cache (waiting for the first full image),
//! the replica manager with its ISR writer, and the metadata source, elections, producer-id
//! blocks and shared documents that write to Kubernetes. Each part is built complete, in the
//! order they depend on each other.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use tributary_crds::features::FeatureLevels;
use tributary_crds::registration::{
    acls_name, client_quotas_name, dynamic_configs_name, scram_credentials_name, Endpoint,
    Registration, ACLS_KEY, CLIENT_QUOTAS_KEY, DELEGATION_TOKENS_KEY, DYNAMIC_CONFIGS_KEY,
    FEATURES_KEY, GROUP_CONFIGS_KEY, SCRAM_CREDENTIALS_KEY,
};
use tributary_crds::KafkaCluster;

use super::blocks::ConfigMapBlocks;
use super::document::SharedDocument;
use super::elections::KubeElections;
use super::isr::KubeIsrWriter;
use super::reassignments::KubeReassignments;
use super::registration::Registrar;
use super::source::KubeMetadata;
use super::watcher::{self, Stores};
use super::KubeError;
use crate::acl::AclSet;
use crate::config::{BrokerConfig, ClusterSettings};
use crate::dynamic_config::Values;
use crate::fence::Fence;
use crate::group_configs::GroupOverrides;
use crate::metadata::elections::LeaderElections;
use crate::metadata::reassignments::PartitionReassignments;
use crate::metadata::{ClusterImage, MetadataCache, MetadataSource, NO_LEADER};
use crate::producer::IdAllocator;
use crate::quotas::store::ClientQuotaDocument;
use crate::replica::{ReplicaManager, ReplicaParts};
use crate::security::credentials::Users;
use crate::security::tokens::Tokens;
use crate::shared_state::Shared;

/// How long a start waits for the watches to list the cluster's objects.
const FIRST_IMAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The parts of a broker whose metadata lives in Kubernetes, as a start makes them.
pub struct ClusterParts {
    /// The cluster id clients see.
    pub cluster_id: String,
    /// The image cache the watches keep current.
    pub metadata: Arc<MetadataCache>,
    /// The partitions this broker hosts, recording ISR changes in the KafkaPartitions.
    pub replicas: Arc<ReplicaManager>,
    /// Where topic changes go: the KafkaTopics.
    pub admin: Arc<dyn MetadataSource>,
    /// Producer ids, from blocks allocated in a ConfigMap.
    pub producer_ids: IdAllocator,
    /// The registration to renew and release.
    pub registrar: Arc<Registrar>,
    /// Where ElectLeaders asks the controller for elections.
    pub elections: Arc<dyn LeaderElections>,
    /// Where AlterPartitionReassignments records reassignments.
    pub reassignments: Arc<dyn PartitionReassignments>,
    /// The ACLs every broker shares.
    pub shared_acls: Arc<dyn Shared<AclSet>>,
    /// The SCRAM credentials every broker shares.
    pub shared_scram: Arc<dyn Shared<Users>>,
    /// The delegation tokens every broker shares.
    pub shared_tokens: Arc<dyn Shared<Tokens>>,
    /// The client quotas every broker shares.
    pub shared_quotas: Arc<dyn Shared<ClientQuotaDocument>>,
    /// The cluster-wide dynamic broker configs.
    pub shared_dynamic: Arc<dyn Shared<Values>>,
    /// The group configs (config resource GROUP), kept beside the dynamic broker configs.
    pub shared_groups: Arc<dyn Shared<GroupOverrides>>,
    /// The finalized feature levels, kept beside the dynamic broker configs.
    pub shared_features: Arc<dyn Shared<FeatureLevels>>,
}

/// Registers this broker, starts its renewals and watches, and returns the parts of a broker
/// whose metadata lives in Kubernetes, once the first image is in the cache. `replicas` is
/// what the replica manager is built from, but for its ISR writer, which is made here once the
/// watches run.
pub async fn cluster_parts(
    client: Client,
    config: &Arc<BrokerConfig>,
    replicas: ReplicaParts,
) -> Result<ClusterParts, KubeError> {
    let settings = config
        .cluster
        .clone()
        .ok_or_else(|| KubeError::Invalid("cluster mode needs --cluster-name".into()))?;
    let cluster_id = cluster_id(&client, &settings).await?;
    let metadata = Arc::new(MetadataCache::new(ClusterImage::new(
        cluster_id.clone(),
        NO_LEADER,
        vec![],
    )));
    let registrar = register(&client, &settings, config, &replicas.fence, &metadata).await?;
    let stores = watch_until_first_image(&client, &settings, &cluster_id, &metadata).await?;
    let isr_writer = Arc::new(KubeIsrWriter::new(
        client.clone(),
        &settings,
        stores.partitions.clone(),
    ));
    let replicas = Arc::new(ReplicaManager::build(ReplicaParts {
        isr_writer: Some(isr_writer),
        incarnation: Some(registrar.incarnation()),
        ..replicas
    }));
    let elections = Arc::new(KubeElections::new(
        client.clone(),
        &settings,
        stores.partitions.clone(),
        metadata.clone(),
    ));
    let reassignments = Arc::new(KubeReassignments::new(
        client.clone(),
        &settings,
        stores.partitions.clone(),
    ));
    let blocks = ConfigMapBlocks::new(client.clone(), &settings.namespace, &settings.name);
    let documents = SharedDocuments::new(&client, &settings);
    let admin = Arc::new(KubeMetadata::new(
        client,
        settings,
        config.clone(),
        metadata.clone(),
        stores,
        replicas.clone(),
    ));
    admin.spawn_deletion_reports();
    Ok(ClusterParts {
        cluster_id,
        metadata,
        replicas,
        admin,
        producer_ids: IdAllocator::new(Box::new(blocks)),
        registrar,
        elections,
        reassignments,
        shared_acls: Arc::new(documents.acls),
        shared_scram: Arc::new(documents.scram),
        shared_tokens: Arc::new(documents.tokens),
        shared_quotas: Arc::new(documents.quotas),
        shared_dynamic: Arc::new(documents.dynamic),
        shared_groups: Arc::new(documents.groups),
        shared_features: Arc::new(documents.features),
    })
}

/// Registers this broker in its Lease, records a fresh data directory's incarnation, and
/// starts the renewals and the external listeners' publication, which the registrar owns.
async fn register(
    client: &Client,
    settings: &ClusterSettings,
    config: &BrokerConfig,
    fence: &Arc<Fence>,
    metadata: &Arc<MetadataCache>,
) -> Result<Arc<Registrar>, KubeError> {
    let me = registration(config, settings)?;
    let fresh_directory = me.directory_epoch.is_none();
    let registrar = Registrar::register(
        client.clone(),
        settings.clone(),
        me,
        fence.clone(),
        metadata.clone(),
    )
    .await?;
    if fresh_directory {
        super::directory::record(&config.data_dir, registrar.incarnation())?;
    }
    registrar.spawn();
    registrar.adopt(super::external::spawn(
        client.clone(),
        settings,
        config.broker_id,
        &registrar,
    ));
    Ok(registrar)
}

/// What this broker registers: its address, rack, data directory epoch (read from disk) and
/// the listeners it can publish now.
fn registration(
    config: &BrokerConfig,
    settings: &ClusterSettings,
) -> Result<Registration, KubeError> {
    Ok(Registration {
        id: config.broker_id,
        host: config.advertised_host.clone(),
        port: config.advertised_port,
        rack: config.rack.clone(),
        incarnation: 0,
        shutting_down: false,
        directory_epoch: super::directory::read(&config.data_dir)?,
        listeners: published_listeners(config, settings),
        refused: Default::default(),
    })
}

/// The advertised listeners but the external ones, which are published once their Services
/// give their addresses.
fn published_listeners(config: &BrokerConfig, settings: &ClusterSettings) -> Vec<Endpoint> {
    crate::metadata::advertised_endpoints(config)
        .into_iter()
        .filter(|e| !settings.external_listeners.contains(&e.listener))
        .map(|e| Endpoint {
            name: e.listener,
            host: e.host,
            port: e.port,
        })
        .collect()
}

/// Starts the watches feeding `metadata` and waits, up to [`FIRST_IMAGE_TIMEOUT`], for their
/// first full image; returns the stores, which keep the watches running.
async fn watch_until_first_image(
    client: &Client,
    settings: &ClusterSettings,
    cluster_id: &str,
    metadata: &Arc<MetadataCache>,
) -> Result<Stores, KubeError> {
    let mut images = metadata.subscribe();
    let publisher = metadata.clone();
    let stores = watcher::spawn(
        client.clone(),
        settings.clone(),
        cluster_id.to_string(),
        move |image| publisher.publish(image),
    );
    tokio::time::timeout(FIRST_IMAGE_TIMEOUT, images.changed())
        .await
        .map_err(|_| {
            KubeError::Invalid(format!(
                "the KafkaTopics, KafkaPartitions and Leases of namespace {} did not list within {}s",
                settings.namespace,
                FIRST_IMAGE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|_| KubeError::Invalid("the cluster watch stopped".into()))?;
    Ok(stores)
}

/// The documents every broker of the cluster shares, each in its own ConfigMap or Secret.
struct SharedDocuments {
    acls: SharedDocument<ConfigMap, AclSet>,
    dynamic: SharedDocument<ConfigMap, Values>,
    scram: SharedDocument<Secret, Users>,
    tokens: SharedDocument<Secret, Tokens>,
    quotas: SharedDocument<ConfigMap, ClientQuotaDocument>,
    groups: SharedDocument<ConfigMap, GroupOverrides>,
    features: SharedDocument<ConfigMap, FeatureLevels>,
}

impl SharedDocuments {
    /// The shared documents of the cluster `settings` names.
    fn new(client: &Client, settings: &ClusterSettings) -> SharedDocuments {
        let acls = SharedDocument::new(
            client.clone(),
            &settings.namespace,
            acls_name(&settings.name),
            ACLS_KEY,
        );
        let dynamic = SharedDocument::new(
            client.clone(),
            &settings.namespace,
            dynamic_configs_name(&settings.name),
            DYNAMIC_CONFIGS_KEY,
        );
        let scram = SharedDocument::new(
            client.clone(),
            &settings.namespace,
            scram_credentials_name(&settings.name),
            SCRAM_CREDENTIALS_KEY,
        );
        // Delegation tokens are credentials too: they share the SCRAM credentials' Secret,
        // which the brokers may already read and write, under their own key.
        let tokens = SharedDocument::new(
            client.clone(),
            &settings.namespace,
            scram_credentials_name(&settings.name),
            DELEGATION_TOKENS_KEY,
        );
        let quotas = SharedDocument::new(
            client.clone(),
            &settings.namespace,
            client_quotas_name(&settings.name),
            CLIENT_QUOTAS_KEY,
        );
        // Group configs are dynamic configs too (Kafka keeps both in its metadata log): they
        // share the dynamic configs' ConfigMap under their own key.
        let groups = SharedDocument::new(
            client.clone(),
            &settings.namespace,
            dynamic_configs_name(&settings.name),
            GROUP_CONFIGS_KEY,
        );
        // So are the feature levels, which Kafka keeps in its metadata log too.
        let features = SharedDocument::new(
            client.clone(),
            &settings.namespace,
            dynamic_configs_name(&settings.name),
            FEATURES_KEY,
        );
        SharedDocuments {
            acls,
            dynamic,
            scram,
            tokens,
            quotas,
            groups,
            features,
        }
    }
}

/// The cluster id: the one the operator published in the KafkaCluster's status, or the same
/// derivation from its uid when the status is not written yet.
async fn cluster_id(client: &Client, settings: &ClusterSettings) -> Result<String, KubeError> {
    let api: Api<KafkaCluster> = Api::namespaced(client.clone(), &settings.namespace);
    let cluster = api.get(&settings.name).await.map_err(|e| {
        KubeError::api(
            format!("read KafkaCluster {}/{}", settings.namespace, settings.name),
            e,
        )
    })?;
    if let Some(id) = cluster.status.as_ref().and_then(|s| s.cluster_id.clone()) {
        return Ok(id);
    }
    let uid =
        cluster.metadata.uid.as_deref().ok_or_else(|| {
            KubeError::Invalid(format!("KafkaCluster {} has no uid", settings.name))
        })?;
    tributary_crds::ids::kafka_id_from_uid(uid)
        .map_err(|e| KubeError::Invalid(format!("KafkaCluster {} uid: {e}", settings.name)))
}
