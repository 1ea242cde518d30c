//! Starting a broker in cluster mode: the cluster id from the KafkaCluster, registration in the
//! broker's Lease, the watches that feed the image cache (waiting for the first full image),
//! and the metadata source, elections and producer-id blocks that write to Kubernetes.

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
use super::catch_up::CatchUp;
use super::elections::KubeElections;
use super::isr::KubeIsrWriter;
use super::reassignments::KubeReassignments;
use super::registration::Registrar;
use super::shared::SharedDocument;
use super::source::KubeMetadata;
use super::{watcher, KubeError};
use crate::broker::MetadataParts;
use crate::config::{BrokerConfig, ClusterSettings};
use crate::metadata::{ClusterImage, MetadataCache, NO_LEADER};
use crate::producer::IdAllocator;
use crate::replica::ReplicaManager;

/// How long a start waits for the watches to list the cluster's objects.
const FIRST_IMAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Registers this broker, starts its renewals and watches, and returns the parts of a broker
/// whose metadata lives in Kubernetes, once the first image is in the cache.
pub async fn metadata_parts(
    client: Client,
    config: Arc<BrokerConfig>,
    replicas: Arc<ReplicaManager>,
) -> Result<MetadataParts, KubeError> {
    let settings = config
        .cluster
        .clone()
        .ok_or_else(|| KubeError::Invalid("cluster mode needs --cluster-name".into()))?;
    let cluster_id = cluster_id(&client, &settings).await?;
    let me = Registration {
        id: config.broker_id,
        host: config.advertised_host.clone(),
        port: config.advertised_port,
        rack: config.rack.clone(),
        incarnation: 0,
        shutting_down: false,
        directory_epoch: super::directory::read(&config.data_dir)?,
        // External listeners are published once their Services give their addresses.
        listeners: crate::broker::advertised_endpoints(&config)
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
        replicas.fence().clone(),
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

    let metadata = Arc::new(MetadataCache::new(ClusterImage::new(
        cluster_id.clone(),
        NO_LEADER,
        vec![],
    )));
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

    registrar.set_catch_up(CatchUp::new(
        client.clone(),
        &settings.namespace,
        &settings.name,
        metadata.clone(),
    ));
    replicas.set_isr_writer(Arc::new(KubeIsrWriter::new(
        client.clone(),
        &settings,
        stores.partitions.clone(),
    )));
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
    let acls = SharedDocument::<ConfigMap, crate::acl::AclSet>::new(
        client.clone(),
        &settings.namespace,
        acls_name(&settings.name),
        ACLS_KEY,
    );
    let dynamic = SharedDocument::<ConfigMap, crate::topics::dynamic::Values>::new(
        client.clone(),
        &settings.namespace,
        dynamic_configs_name(&settings.name),
        DYNAMIC_CONFIGS_KEY,
    );
    let scram = SharedDocument::<Secret, crate::scram::Users>::new(
        client.clone(),
        &settings.namespace,
        scram_credentials_name(&settings.name),
        SCRAM_CREDENTIALS_KEY,
    );
    let quotas = SharedDocument::<ConfigMap, crate::quotas::store::ClientQuotaDocument>::new(
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
        replicas,
    ));
    admin.spawn_deletion_reports();
    Ok(MetadataParts {
        cluster_id,
        metadata,
        admin,
        producer_ids: IdAllocator::new(Box::new(blocks)),
        registrar: Some(registrar),
        elections: Some(elections),
        reassignments: Some(reassignments),
        shared_acls: Some(Arc::new(acls)),
        shared_scram: Some(Arc::new(scram)),
        shared_quotas: Some(Arc::new(quotas)),
        shared_dynamic: Some(Arc::new(dynamic)),
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
