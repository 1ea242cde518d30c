//! Pure builders: a `KafkaCluster` in, the exact Kubernetes objects it needs out.
//!
//! No I/O here; the cluster reconciler applies what these return, and golden-file tests pin
//! the output.

pub mod broker_registry;
mod config;
pub mod monitoring;
pub mod network_policy;
mod pdb;
mod producer_ids;
mod rbac;
pub mod registry;
pub mod registry_security;
pub mod registry_user;
pub mod security;
mod services;
mod shared;
mod statefulset;
pub mod tiered;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use tributary_crds::{KafkaCluster, CLUSTER_LABEL};

pub use config::{config_hash, server_properties};
pub use producer_ids::producer_ids;
pub use shared::{acls, client_quotas, dynamic_configs, scram_credentials};

/// Annotation on the pod template holding the config hash: a config change changes the pod
/// template and so rolls the brokers.
pub const CONFIG_HASH_ANNOTATION: &str = "tributary.dev/config-hash";
/// Port of the broker's HTTP endpoints (`/metrics`, `/healthz`, `/readyz`).
pub const ADMIN_PORT: i32 = 9644;
/// Name of the admin port on the broker pods; the PodMonitor scrapes it.
pub const ADMIN_PORT_NAME: &str = "admin";
/// Where the broker's data volume is mounted.
pub const DATA_DIR: &str = "/var/lib/tributary";
/// Where the rendered config is mounted.
pub const CONFIG_DIR: &str = "/etc/tributary";
/// File name of the broker config inside the ConfigMap.
pub const CONFIG_FILE: &str = "server.properties";

/// Why objects could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The KafkaCluster has no name/namespace/uid yet (it was never stored by the API server).
    #[error("KafkaCluster {name:?} lacks {field}; only objects read from the API server can be rendered")]
    Unstored {
        /// Name, if any.
        name: String,
        /// The missing field.
        field: &'static str,
    },
    /// A KafkaTopic lacks what its KafkaPartitions are derived from (never stored yet).
    #[error(
        "KafkaTopic {name:?} lacks {field}; only objects read from the API server get partitions"
    )]
    UnstoredTopic {
        /// Name, if any.
        name: String,
        /// The missing field.
        field: &'static str,
    },
}

/// Everything a KafkaCluster owns, in apply order.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterObjects {
    /// Identity the brokers run as.
    pub service_account: ServiceAccount,
    /// Least-privilege rights of the brokers: Leases and KafkaTopics in the namespace.
    pub role: Role,
    /// Binds the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// Rendered broker config.
    pub config_map: ConfigMap,
    /// Headless Service giving each broker a stable DNS name.
    pub headless_service: Service,
    /// Service clients bootstrap from.
    pub bootstrap_service: Service,
    /// The Services of external listeners (bootstrap and per broker); empty without any.
    pub external_services: Vec<Service>,
    /// The brokers.
    pub stateful_set: StatefulSet,
    /// Limits voluntary evictions; `None` when disabled in the spec.
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// prometheus-operator PodMonitor for the brokers; `None` unless `monitoring.serviceMonitor`.
    pub pod_monitor: Option<DynamicObject>,
    /// prometheus-operator PrometheusRule with the broker alerts; `None` unless `monitoring.rules`.
    pub prometheus_rule: Option<DynamicObject>,
    /// Hash of the rendered config (also on the pod template).
    pub config_hash: String,
}

/// A KafkaCluster `kafka/demo` of 3 brokers as the API server hands it over, with `extra`
/// merged into its spec: the input of the builders' unit tests.
#[cfg(test)]
pub(crate) fn test_cluster(extra: serde_json::Value) -> KafkaCluster {
    let mut spec = serde_json::json!({"brokers": 3});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "demo", "namespace": "kafka", "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("bad cluster: {e}"))
}

/// Renders every child object of `cluster`.
pub fn build(cluster: &KafkaCluster) -> Result<ClusterObjects, BuildError> {
    let names = Names::of(cluster)?;
    let props = server_properties(cluster, &names);
    let hash = config_hash(&props);
    Ok(ClusterObjects {
        service_account: rbac::service_account(&names),
        role: rbac::role(&names),
        role_binding: rbac::role_binding(&names),
        config_map: config::config_map(&names, props),
        headless_service: services::headless(cluster, &names),
        bootstrap_service: services::bootstrap(cluster, &names),
        external_services: services::external(cluster, &names),
        stateful_set: statefulset::stateful_set(cluster, &names, &hash),
        pod_disruption_budget: pdb::pod_disruption_budget(cluster, &names),
        pod_monitor: monitoring::pod_monitor(cluster, &names),
        prometheus_rule: monitoring::prometheus_rule(cluster, &names),
        config_hash: hash,
    })
}

/// Names and identity shared by all children of one cluster.
#[derive(Clone, Debug)]
pub struct Names {
    /// KafkaCluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Owner reference pointing at the KafkaCluster (controller=true).
    pub owner: OwnerReference,
}

impl Names {
    /// Reads the names from a stored KafkaCluster.
    pub fn of(cluster: &KafkaCluster) -> Result<Names, BuildError> {
        let name = cluster.name_any();
        let unstored = |field| BuildError::Unstored {
            name: name.clone(),
            field,
        };
        let namespace = cluster
            .namespace()
            .ok_or_else(|| unstored("metadata.namespace"))?;
        let owner = cluster
            .controller_owner_ref(&())
            .ok_or_else(|| unstored("metadata.uid"))?;
        Ok(Names {
            cluster: name,
            namespace,
            owner,
        })
    }

    /// StatefulSet, ServiceAccount, Role, RoleBinding and PDB name.
    pub fn broker(&self) -> String {
        format!("{}-broker", self.cluster)
    }
    /// Headless Service name.
    pub fn headless(&self) -> String {
        format!("{}-brokers", self.cluster)
    }
    /// Bootstrap Service name.
    pub fn bootstrap(&self) -> String {
        format!("{}-bootstrap", self.cluster)
    }
    /// ConfigMap name.
    pub fn config(&self) -> String {
        format!("{}-config", self.cluster)
    }
    /// Name of broker `id`'s pod and Lease.
    pub fn broker_pod(&self, id: i32) -> String {
        format!("{}-broker-{id}", self.cluster)
    }

    /// Labels selecting this cluster's broker pods (never change: the selector is immutable).
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "tributary".to_owned()),
            (
                "app.kubernetes.io/instance".to_owned(),
                self.cluster.clone(),
            ),
            (
                "app.kubernetes.io/component".to_owned(),
                "broker".to_owned(),
            ),
        ])
    }

    /// Labels on every child object.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = self.selector_labels();
        l.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            crate::FIELD_MANAGER.to_owned(),
        );
        l.insert(CLUSTER_LABEL.to_owned(), self.cluster.clone());
        l
    }

    /// Label selector of the Services of this cluster's external listeners.
    pub fn external_services_selector(&self) -> String {
        format!(
            "{CLUSTER_LABEL}={},{}",
            self.cluster,
            tributary_crds::cluster::EXTERNAL_LISTENER_LABEL
        )
    }

    /// `kubectl`-style selector string for the scale subresource.
    pub fn selector_string(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Metadata for a child object named `name`.
    pub fn meta(&self, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// `host:port` of every broker on the first listener, for clients and status.
    pub fn bootstrap_servers(&self, port: i32) -> String {
        format!("{}.{}.svc:{port}", self.bootstrap(), self.namespace)
    }
}
