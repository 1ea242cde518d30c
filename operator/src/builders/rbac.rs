//! The brokers' identity and least-privilege rights: their own Leases and the KafkaTopics in
//! the namespace, and read access to their own KafkaCluster (for racks and listeners).

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

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
    const RW: &[&str] = &["get", "list", "watch", "create", "update", "patch"];
    Role {
        metadata: names.meta(names.broker()),
        rules: Some(vec![
            rule("coordination.k8s.io", &["leases"], RW, None),
            rule(tributary_crds::GROUP, &["kafkatopics"], RW, None),
            rule(
                tributary_crds::GROUP,
                &["kafkatopics/status"],
                &["get", "update", "patch"],
                None,
            ),
            rule(
                tributary_crds::GROUP,
                &["kafkaclusters"],
                &["get", "watch"],
                Some(vec![names.cluster.clone()]),
            ),
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
