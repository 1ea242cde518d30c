//! Starting a broker in cluster mode: the cluster id from the KafkaCluster, registration in the
//! broker's Lease, the watches that feed the image cache (waiting for the first full image),
//! the replica manager with its ISR writer, and the metadata source, elections, producer-id
//! blocks and shared documents that write to Kubernetes. Each part is built complete, in the
//! order they depend on each other.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use tributary_crds::registration::{
    acls_name, client_quotas_name, dynamic_configs_name, scram_credentials_name, Registration,
    ACLS_KEY, CLIENT_QUOTAS_KEY, DYNAMIC_CONFIGS_KEY, SCRAM_CREDENTIALS_KEY,
};
use tributary_crds::KafkaCluster;

use super::blocks::ConfigMapBlocks;
use super::elections::KubeElections;
use super::isr::KubeIsrWriter;
use super::reassignments::KubeReassignments;
use super::registration::Registrar;
use super::shared::SharedDocument;
use super::source::KubeMetadata;
use super::{watcher, KubeError};
use crate::acl::AclSet;
use crate::config::ClusterSettings;
use crate::metadata::elections::LeaderElections;
use crate::metadata::reassignments::PartitionReassignments;
use crate::metadata::{ClusterImage, MetadataCache, MetadataSource, NO_LEADER};
use crate::producer::IdAllocator;
use crate::quotas::store::ClientQuotaDocument;
use crate::replica::{ReplicaManager, ReplicaParts};
use crate::scram::Users;
use crate::shared::Shared;
use crate::topics::dynamic::Values;

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
    /// The client quotas every broker shares.
    pub shared_quotas: Arc<dyn Shared<ClientQuotaDocument>>,
    /// The cluster-wide dynamic broker configs.
    pub shared_dynamic: Arc<dyn Shared<Values>>,
}

/// Registers this broker, starts its renewals and watches, and returns the parts of a broker
/// whose metadata lives in Kubernetes, once the first image is in the cache. `replicas` is
/// what the replica manager is built from, but for its ISR writer, which is made here once the
/// watches run.
pub async fn cluster_parts(
    client: Client,
    replicas: ReplicaParts,
) -> Result<ClusterParts, KubeError> {
    let config = replicas.config.clone();
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
    let me = Registration {
        id: config.broker_id,
        host: config.advertised_host.clone(),
        port: config.advertised_port,
        rack: config.rack.clone(),
        incarnation: 0,
        shutting_down: false,
        directory_epoch: super::directory::read(&config.data_dir)?,
        // External listeners are published once their Services give their addresses.
        listeners: crate::metadata::advertised_endpoints(&config)
            .into_iter()
            .filter(|e| !settings.external_listeners.contains(&e.listener))
            .map(|e| tributary_crds::registration::Endpoint {
                name: e.listener,
                host: e.host,
                port: e.port,
            })
            .collect(),
    };
    let fresh_directory = me.directory_epoch.is_none();
    let registrar = Registrar::register(
        client.clone(),
        settings.clone(),
        me,
        replicas.fence.clone(),
        metadata.clone(),
    )
    .await?;
    if fresh_directory {
        super::directory::record(&config.data_dir, registrar.incarnation())?;
    }
    registrar.spawn();
    registrar.adopt(super::external::spawn(
        client.clone(),
        &settings,
        config.broker_id,
        &registrar,
    ));

    let mut images = metadata.subscribe();
    let publisher = metadata.clone();
    let stores = watcher::spawn(
        client.clone(),
        settings.clone(),
        cluster_id.clone(),
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

    let isr_writer = Arc::new(KubeIsrWriter::new(
        client.clone(),
        &settings,
        stores.partitions.clone(),
    ));
    let replicas = Arc::new(ReplicaManager::build(ReplicaParts {
        isr_writer: Some(isr_writer),
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
    let acls = SharedDocument::<ConfigMap, AclSet>::new(
        client.clone(),
        &settings.namespace,
        acls_name(&settings.name),
        ACLS_KEY,
    );
    let dynamic = SharedDocument::<ConfigMap, Values>::new(
        client.clone(),
        &settings.namespace,
        dynamic_configs_name(&settings.name),
        DYNAMIC_CONFIGS_KEY,
    );
    let scram = SharedDocument::<Secret, Users>::new(
        client.clone(),
        &settings.namespace,
        scram_credentials_name(&settings.name),
        SCRAM_CREDENTIALS_KEY,
    );
    let quotas = SharedDocument::<ConfigMap, ClientQuotaDocument>::new(
        client.clone(),
        &settings.namespace,
        client_quotas_name(&settings.name),
        CLIENT_QUOTAS_KEY,
    );
    let admin = Arc::new(KubeMetadata::new(
        client,
        settings,
        config,
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
        shared_acls: Arc::new(acls),
        shared_scram: Arc::new(scram),
        shared_quotas: Arc::new(quotas),
        shared_dynamic: Arc::new(dynamic),
    })
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
