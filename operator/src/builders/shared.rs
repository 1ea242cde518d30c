//! The objects the brokers share state in: the ACLs (ConfigMap `<cluster>-acls`, Kafka's
//! CreateAcls and DeleteAcls), the cluster-wide dynamic broker configs (ConfigMap
//! `<cluster>-dynamic-configs`, AlterConfigs on the default BROKER resource) and the SCRAM
//! credentials (Secret `<cluster>-scram-credentials`, AlterUserScramCredentials) and the client
//! quotas (ConfigMap `<cluster>-client-quotas`, AlterClientQuotas; KafkaUsers' `spec.quotas`
//! are written there by the KafkaUser reconciler). Any broker changes them and every broker
//! applies what they hold.
//! The operator only ever creates them, empty and owned by the KafkaCluster; it never applies
//! them again, since that would drop what the brokers wrote.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::ByteString;
use tributary_crds::registration::{
    acls_name, client_quotas_name, dynamic_configs_name, scram_credentials_name, ACLS_KEY,
    CLIENT_QUOTAS_KEY, DYNAMIC_CONFIGS_KEY, SCRAM_CREDENTIALS_KEY,
};

use super::producer_ids::brokers_config_map;
use super::Names;

/// The ACL ConfigMap as first created: no ACLs.
pub fn acls(names: &Names) -> ConfigMap {
    let data = BTreeMap::from([(ACLS_KEY.to_owned(), "[]".to_owned())]);
    brokers_config_map(names, acls_name(&names.cluster), data)
}

/// The dynamic-config ConfigMap as first created: no values.
pub fn dynamic_configs(names: &Names) -> ConfigMap {
    let data = BTreeMap::from([(DYNAMIC_CONFIGS_KEY.to_owned(), "{}".to_owned())]);
    brokers_config_map(names, dynamic_configs_name(&names.cluster), data)
}

/// The client-quota ConfigMap as first created: no quotas.
pub fn client_quotas(names: &Names) -> ConfigMap {
    let data = BTreeMap::from([(CLIENT_QUOTAS_KEY.to_owned(), "[]".to_owned())]);
    brokers_config_map(names, client_quotas_name(&names.cluster), data)
}

/// The SCRAM credential Secret as first created: no users.
pub fn scram_credentials(names: &Names) -> Secret {
    let like = brokers_config_map(
        names,
        scram_credentials_name(&names.cluster),
        BTreeMap::new(),
    );
    Secret {
        metadata: like.metadata,
        data: Some(BTreeMap::from([(
            SCRAM_CREDENTIALS_KEY.to_owned(),
            ByteString(b"{}".to_vec()),
        )])),
        ..Secret::default()
    }
}
