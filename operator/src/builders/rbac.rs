//! The brokers' identity and least-privilege rights in the namespace:
//! - Leases: register and renew (`<cluster>-broker-<id>`), read the others'. Creating cannot be
//!   limited to names (RBAC does not know a name on create), so neither is the rest.
//! - KafkaTopics: read, and create/update/patch/delete (the Kafka admin API writes them), and
//!   their status, to remove themselves from `pendingDeletion` after deleting a topic's data.
//! - KafkaPartitions: read, and write the status (a partition's leader records ISR changes);
//!   never the spec, which is the operator's assignment.
//! - The producer-id ConfigMap: read and update (take a block of ids), nothing else.
//! - The ACL and dynamic-config ConfigMaps and the SCRAM credential Secret: read, watch and
//!   update (Kafka's CreateAcls, DeleteAcls, AlterConfigs and AlterUserScramCredentials).
//! - Their own KafkaCluster: read (racks and listeners).
//! - Services: read, for the addresses of external listeners.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use tributary_crds::registration::{
    acls_name, client_quotas_name, dynamic_configs_name, producer_ids_name, scram_credentials_name,
};

use super::Names;

pub(super) fn service_account(names: &Names) -> ServiceAccount {
    ServiceAccount {
        metadata: names.meta(names.broker()),
        ..ServiceAccount::default()
    }
}

fn rule(
    group: &str,
    resources: &[&str],
    verbs: &[&str],
    resource_names: Option<Vec<String>>,
) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names,
        ..PolicyRule::default()
    }
}

pub(super) fn role(names: &Names) -> Role {
    const READ: &[&str] = &["get", "list", "watch"];
    let group = tributary_crds::GROUP;
    Role {
        metadata: names.meta(names.broker()),
        rules: Some(vec![
            rule(
                "coordination.k8s.io",
                &["leases"],
                &["get", "list", "watch", "create", "update"],
                None,
            ),
            rule(
                group,
                &["kafkatopics"],
                &[
                    "get", "list", "watch", "create", "update", "patch", "delete",
                ],
                None,
            ),
            rule(group, &["kafkatopics/status"], &["update", "patch"], None),
            // patch: the election request annotation of Kafka's ElectLeaders
            // (tributary_crds::ELECT_LEADER_ANNOTATION); update: the reassignment lists of
            // AlterPartitionReassignments (tributary_crds::Assignment).
            rule(
                group,
                &["kafkapartitions"],
                &[READ, &["update", "patch"]].concat(),
                None,
            ),
            rule(
                group,
                &["kafkapartitions/status"],
                &["update", "patch"],
                None,
            ),
            rule(
                "",
                &["configmaps"],
                &["get", "update"],
                Some(vec![producer_ids_name(&names.cluster)]),
            ),
            // The shared ACLs, cluster-wide dynamic configs, client quotas and SCRAM
            // credentials: watched by every broker, updated through the Kafka API.
            rule(
                "",
                &["configmaps"],
                &["get", "list", "watch", "update"],
                Some(vec![
                    acls_name(&names.cluster),
                    dynamic_configs_name(&names.cluster),
                    client_quotas_name(&names.cluster),
                ]),
            ),
            rule(
                "",
                &["secrets"],
                &["get", "list", "watch", "update"],
                Some(vec![scram_credentials_name(&names.cluster)]),
            ),
            rule(
                group,
                &["kafkaclusters"],
                &["get", "watch"],
                Some(vec![names.cluster.clone()]),
            ),
            // Each broker follows its external listeners' Services for the address it
            // advertises there (node port, load-balancer ingress, overrides).
            rule("", &["services"], READ, None),
        ]),
    }
}

pub(super) fn role_binding(names: &Names) -> RoleBinding {
    RoleBinding {
        metadata: names.meta(names.broker()),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: names.broker(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: names.broker(),
            namespace: Some(names.namespace.clone()),
            ..Subject::default()
        }]),
    }
}
