//! `KafkaCluster.spec.schemaRegistry`: a Confluent-compatible schema registry the operator runs
//! beside the brokers (Deployment and Service `<cluster>-schema-registry`), storing every
//! schema in a compacted topic of the cluster, and where the registry reports itself in the
//! cluster's status.
//!
//! `tls` serves the REST API over HTTPS (a certificate from the cluster CA unless a Secret is
//! named); `authentication` is `basic` (HTTP basic against the KafkaUsers' SCRAM
//! credentials) or `tls` (client certificates of the clients CA, `CN=alice` being
//! `User:alice` as on the brokers' mTLS listeners). Both need `tls`: passwords must not cross
//! the network in clear, and client certificates only exist over TLS.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::listener::ListenerTls;

/// Image used when `schemaRegistry.image` is not set (built from the registry's Dockerfile).
pub const DEFAULT_REGISTRY_IMAGE: &str = "ghcr.io/tributary-dev/tributary-schema-registry:0.1.0";
/// Port the registry serves its REST API (and `/metrics`) on by default, as Confluent's.
pub const DEFAULT_REGISTRY_PORT: i32 = 8081;
/// Topic holding the schemas by default, as Confluent's `kafkastore.topic`.
pub const DEFAULT_REGISTRY_TOPIC: &str = "_schemas";

/// Name of a cluster's registry Deployment, Service, ServiceAccount, Role, RoleBinding and
/// Lease: one name so every object of the registry is found from the cluster's name.
pub fn registry_name(cluster: &str) -> String {
    format!("{cluster}-schema-registry")
}

/// The in-cluster URL of a cluster's registry: what clients, the status and KafkaSchemas use
/// (`https://` when it serves TLS).
pub fn registry_url(cluster: &str, namespace: &str, port: i32, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!(
        "{scheme}://{}.{namespace}.svc:{port}",
        registry_name(cluster)
    )
}

/// Name of the Secret holding the registry's serving certificate when the operator issues it
/// (`tls` without `secretName`).
pub fn registry_tls_name(cluster: &str) -> String {
    format!("{}-tls", registry_name(cluster))
}

/// The schema registry of a cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!has(self.authentication) || self.authentication.type == 'none' || has(self.tls)").message("schemaRegistry.authentication basic and tls need schemaRegistry.tls (passwords must not cross the network in clear; client certificates need TLS): add tls: {} to have the operator issue a certificate from the cluster CA"),
)]
pub struct SchemaRegistry {
    /// Registry pods. Any may serve reads; one at a time (elected with a Lease) writes, the
    /// others forward writes to it, so two replicas keep the API up through a pod restart.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 16))]
    pub replicas: i32,
    /// Registry container image; [`DEFAULT_REGISTRY_IMAGE`] when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// CPU and memory for the registry container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Port of the REST API and `/metrics`, on the pods and the Service.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// The compacted topic holding the schemas (Confluent's `kafkastore.topic`). Changing it
    /// starts an empty registry: the schemas stay in the old topic.
    #[serde(default = "default_topic")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub topic: String,
    /// How clients authenticate to the REST API; anonymous when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<RegistryAuthentication>,
    /// Serve the REST API over HTTPS, with a certificate as the cluster's listeners declare one
    /// (`secretName`, or issued by the operator from the cluster CA for the Service's names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// Who may connect to the registry's port: the `from` of the ingress rule in the
    /// registry's NetworkPolicy. Unset: from anywhere. The cluster's brokers (which validate
    /// records against it), the other registry pods (writes are forwarded to the writer), the
    /// operator (KafkaSchemas) and the monitoring namespace (`/metrics`) are always added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub network_policy_peers: Option<Vec<NetworkPolicyPeer>>,
}

impl SchemaRegistry {
    /// The image the registry pods run.
    pub fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(DEFAULT_REGISTRY_IMAGE)
    }
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        SchemaRegistry {
            replicas: default_replicas(),
            image: None,
            resources: None,
            port: default_port(),
            topic: default_topic(),
            authentication: None,
            tls: None,
            network_policy_peers: None,
        }
    }
}

fn default_replicas() -> i32 {
    1
}

fn default_port() -> i32 {
    DEFAULT_REGISTRY_PORT
}

fn default_topic() -> String {
    DEFAULT_REGISTRY_TOPIC.to_owned()
}

/// How clients authenticate to the registry's REST API.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryAuthentication {
    /// The mechanism.
    #[serde(rename = "type")]
    pub type_: RegistryAuthenticationType,
}

/// Registry authentication mechanisms, as the cluster's listeners offer them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RegistryAuthenticationType {
    /// Anonymous.
    #[serde(rename = "none")]
    None,
    /// HTTP basic authentication against the KafkaUsers' SCRAM credentials (the Secret
    /// `<cluster>-scram-credentials`, re-read when it changes); needs `tls`.
    #[serde(rename = "basic")]
    Basic,
    /// TLS client certificates signed by the clients CA (a KafkaUser of type tls), the
    /// principal being `User:<CN>`; needs `tls`.
    #[serde(rename = "tls")]
    Tls,
}

/// Where the registry serves, as the operator reports it in the cluster's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRegistryStatus {
    /// The registry's URL inside the Kubernetes cluster, through its Service.
    pub url: String,
    /// Registry pods that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_one_replica_on_8081_storing_in_schemas() {
        let r: SchemaRegistry = serde_json::from_str("{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r, SchemaRegistry::default());
        assert_eq!(
            (r.replicas, r.port, r.topic.as_str()),
            (1, 8081, "_schemas")
        );
        assert_eq!(r.image(), DEFAULT_REGISTRY_IMAGE);
    }

    #[test]
    fn the_url_names_the_service_in_the_namespace() {
        assert_eq!(
            registry_url("demo", "kafka", 8081, false),
            "http://demo-schema-registry.kafka.svc:8081"
        );
        assert_eq!(
            registry_url("demo", "kafka", 8081, true),
            "https://demo-schema-registry.kafka.svc:8081"
        );
    }
}
