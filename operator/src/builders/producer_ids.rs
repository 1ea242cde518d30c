//! The producer-id ConfigMap `<cluster>-producer-ids`: brokers take blocks of ids from it by
//! conditional updates (Kafka's AllocateProducerIds). The operator only ever creates it, with
//! the counter at 0; it never applies it again, since that would reset the counter and hand
//! out ids producers already use.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use tributary_crds::registration::{producer_ids_name, NEXT_PRODUCER_ID_KEY};
use tributary_crds::CLUSTER_LABEL;

use super::Names;

/// The ConfigMap as first created.
pub fn producer_ids(names: &Names) -> ConfigMap {
    let data = BTreeMap::from([(NEXT_PRODUCER_ID_KEY.to_owned(), "0".to_owned())]);
    brokers_config_map(names, producer_ids_name(&names.cluster), data)
}

/// A ConfigMap the brokers write (created once by the operator, owned by the KafkaCluster).
/// It carries no `managed-by` label, so the brokers' updates do not wake the cluster
/// reconciler (which watches the ConfigMaps it manages).
pub(super) fn brokers_config_map(
    names: &Names,
    name: String,
    data: BTreeMap<String, String>,
) -> ConfigMap {
    let mut meta = names.meta(name);
    meta.labels = Some(BTreeMap::from([
        (CLUSTER_LABEL.to_owned(), names.cluster.clone()),
        ("app.kubernetes.io/name".to_owned(), "tributary".to_owned()),
        (
            "app.kubernetes.io/instance".to_owned(),
            names.cluster.clone(),
        ),
    ]));
    ConfigMap {
        metadata: meta,
        data: Some(data),
        ..ConfigMap::default()
    }
}
