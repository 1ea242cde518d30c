//! The ACL ConfigMap `<cluster>-acls`: the brokers keep the cluster's ACLs in it (Kafka's
//! CreateAcls and DeleteAcls) and each applies them. The operator only ever creates it, empty
//! and owned by the KafkaCluster; it never applies it again, since that would drop the ACLs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use tributary_crds::registration::{acls_name, ACLS_KEY};

use super::producer_ids::brokers_config_map;
use super::Names;

/// The ConfigMap as first created: no ACLs.
pub fn acls(names: &Names) -> ConfigMap {
    let data = BTreeMap::from([(ACLS_KEY.to_owned(), "[]".to_owned())]);
    brokers_config_map(names, acls_name(&names.cluster), data)
}
