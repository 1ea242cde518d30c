//! `KafkaCluster`: the desired set of brokers and everything the operator renders from it
//! (StatefulSet, Services, ConfigMap, RBAC, PodDisruptionBudget), plus its observed status.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]
// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for duplicated
// attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{broker_keys_rule, MAX_CONFIG_ENTRIES};
pub use crate::listener::{
    external_bootstrap_name, external_service_name, listener_dns_name, AdvertisedAddress,
    Authentication, AuthenticationType, Authorization, AuthorizationType, CertificateAuthority,
    ExternalBootstrap, ExternalBroker, ExternalConfiguration, JwksConfigMap, Listener,
    ListenerProtocol, ListenerTls, ListenerType, SecurityProtocol, EXTERNAL_LISTENER_LABEL,
    REPLICATION_LISTENER, REPLICATION_PORT,
};
pub use crate::schema_registry::{
    registry_name, registry_url, RegistryAuthentication, RegistryAuthenticationType,
    SchemaRegistry, SchemaRegistryStatus, DEFAULT_REGISTRY_IMAGE,
};
pub use crate::tiered_storage::{CredentialsSecret, TieredStorage};

/// Image used when `spec.image` is not set.
pub const DEFAULT_IMAGE: &str = "ghcr.io/tributary-dev/tributary-broker:0.1.0";

/// Desired state of a Kafka cluster. The name of the object names every child object
/// (`<name>-broker`, `<name>-brokers`, `<name>-bootstrap`, `<name>-config`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    namespaced,
    status = "KafkaClusterStatus",
    derive = "PartialEq",
    shortname = "kc",
    category = "tributary",
    doc = "A Kafka-compatible cluster of Tributary brokers run as a StatefulSet.",
    scale(
        spec_replicas_path = ".spec.brokers",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(name = "Brokers", type_ = "integer", json_path = ".spec.brokers"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyBrokers"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Bootstrap",
        type_ = "string",
        json_path = ".status.bootstrapServers",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!has(self.schemaRegistry) || !has(self.config) || !('confluent.schema.registry.url' in self.config)").message("config confluent.schema.registry.url names an external schema registry, and spec.schemaRegistry runs one the brokers are given: keep one of them"))]
pub struct KafkaClusterSpec {
    /// Number of brokers (StatefulSet replicas); broker ids are the pod ordinals 0..brokers-1.
    /// Scaling down decommissions the highest ids: the operator moves their replicas first.
    #[schemars(range(min = 1, max = 256))]
    pub brokers: i32,

    /// Broker container image.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,

    /// Image pull policy for the broker container.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,

    /// Kafka broker settings written into the broker config file. Only the keys in
    /// `tributary_crds::config::BROKER_KEYS` are accepted; settings the operator derives
    /// (ids, listeners, directories, rack) cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_CONFIG_ENTRIES))]
    #[x_kube(validation = broker_keys_rule())]
    pub config: BTreeMap<String, String>,

    /// Persistent storage for each broker's log directory.
    #[serde(default)]
    pub storage: Storage,

    /// CPU and memory for the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Rack (zone) awareness: when set, replicas of a partition are spread across racks and
    /// pods across the topology domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<Rack>,

    /// Client listeners, each with its own TLS and authentication. When any of them uses TLS
    /// or authentication (or `authorization` is set), the brokers replicate over an extra
    /// listener the operator owns, `REPLICATION` on port 9091 (mutual TLS with the broker
    /// certificate), so those two are reserved.
    #[serde(default = "default_listeners")]
    #[schemars(length(min = 1, max = 4))]
    #[x_kube(validation = kube::core::Rule::new("self.all(l, self.exists_one(m, m.name == l.name) && self.exists_one(m, m.port == l.port))").message("listener names and ports must be unique"))]
    #[x_kube(validation = kube::core::Rule::new("self.exists(l, !has(l.type) || l.type == 'internal')").message("at least one listener must be internal: brokers reach each other inside the cluster"))]
    pub listeners: Vec<Listener>,

    /// Kafka ACLs: with an authorizer every request is checked against the ACLs (managed
    /// with `kafka-acls.sh` or the Admin API); without one every client may do everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,

    /// Validity and renewal of the cluster and clients CAs the operator keeps, and of the
    /// certificates it issues from them.
    #[serde(default)]
    pub certificate_authority: CertificateAuthority,

    /// Overrides applied to the broker pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateOverrides>,

    /// The PodDisruptionBudget protecting the brokers from voluntary evictions.
    #[serde(default)]
    pub disruption_budget: DisruptionBudget,

    /// Metrics endpoint, PodMonitor and alert rules.
    #[serde(default)]
    pub monitoring: Monitoring,

    /// Broker Lease timing: how fast a dead broker is noticed versus how much API traffic
    /// renewals cost.
    #[serde(default)]
    pub coordination: Coordination,

    /// How the operator moves replicas between brokers: after a scale-out (onto the new
    /// brokers), before a scale-in (off the removed ones) and when a topic's replication
    /// factor changes.
    #[serde(default)]
    pub rebalance: Rebalance,

    /// A Confluent-compatible schema registry run beside the brokers (Deployment and Service
    /// `<name>-schema-registry`), storing its schemas in a topic of this cluster; removing
    /// the field removes the registry (the topic and its schemas stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<SchemaRegistry>,

    /// Tiered storage (KIP-405): the S3-compatible bucket closed segments of topics with
    /// `remote.storage.enable=true` are copied to. Changing it rolls the brokers; rotating
    /// the credentials Secret does not (the brokers re-read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiered_storage: Option<TieredStorage>,

    /// Feature levels (KIP-584) to hold the cluster at, by feature name (`group.version`,
    /// `share.version`, `transaction.version`): the operator finalizes them as
    /// `kafka-features.sh` would, and UpdateFeatures can no longer change the features named
    /// here. Features not named keep their level (a new cluster's, or what UpdateFeatures set).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, i16>,

    /// Seconds a broker gets to move leadership away and flush before it is killed.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 30, max = 3600))]
    pub termination_grace_period_seconds: i64,
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_owned()
}

fn default_grace() -> i64 {
    120
}

fn default_listeners() -> Vec<Listener> {
    vec![Listener::default()]
}

/// Kubernetes image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when not present on the node.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The string Kubernetes expects in `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Per-broker persistent volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// Volume size as a Kubernetes quantity, e.g. `100Gi`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: String,
    /// StorageClass for the claims; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Delete the PersistentVolumeClaims (and so the data) when the KafkaCluster is deleted.
    /// Claims of scaled-down brokers are always kept so a scale-up finds its data again.
    #[serde(default)]
    pub delete_claim: bool,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            size: "10Gi".to_owned(),
            storage_class_name: None,
            delete_claim: false,
        }
    }
}

/// Rack awareness settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rack {
    /// Node label whose value is a broker's rack, e.g. `topology.kubernetes.io/zone`.
    #[schemars(length(min = 1, max = 316))]
    pub topology_key: String,
}

/// Overrides for the broker pod template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    /// Extra pod labels (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Pod affinity rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Pod tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// PriorityClass of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// PodDisruptionBudget settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisruptionBudget {
    /// Create the PodDisruptionBudget.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Brokers that may be voluntarily down at once.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 255))]
    pub max_unavailable: i32,
}

impl Default for DisruptionBudget {
    fn default() -> Self {
        DisruptionBudget {
            enabled: true,
            max_unavailable: 1,
        }
    }
}

/// Monitoring settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    /// Annotate pods for Prometheus scraping of `/metrics`.
    #[serde(default = "default_true")]
    pub metrics: bool,
    /// Have the operator create a prometheus-operator scrape target for the brokers: a
    /// PodMonitor, because every broker pod must be scraped, not one behind a Service.
    #[serde(default)]
    pub service_monitor: bool,
    /// Create a prometheus-operator PrometheusRule with Kafka alerts.
    #[serde(default)]
    pub rules: bool,
    /// Scrape interval of that PodMonitor, e.g. `30s`.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub interval: String,
    /// Namespace Prometheus scrapes from: the NetworkPolicies the operator renders open the
    /// brokers' admin port (`/metrics`) and the registry's port to it (selected by its
    /// `kubernetes.io/metadata.name` label). The chart's KafkaCluster takes its
    /// `monitoring.namespace` unless this is set.
    #[serde(default = "default_monitoring_namespace")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: String,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            metrics: true,
            service_monitor: false,
            rules: false,
            interval: default_interval(),
            namespace: default_monitoring_namespace(),
        }
    }
}

fn default_interval() -> String {
    "30s".to_owned()
}

/// Default of `spec.monitoring.namespace`: where kube-prometheus-stack is commonly installed.
pub const DEFAULT_MONITORING_NAMESPACE: &str = "monitoring";

fn default_monitoring_namespace() -> String {
    DEFAULT_MONITORING_NAMESPACE.to_owned()
}

/// Broker Lease timing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.renewIntervalMilliseconds) ? self.renewIntervalMilliseconds * 3 <= self.leaseDurationSeconds * 1000 : self.renewIntervalSeconds * 3 <= self.leaseDurationSeconds").message("the renew interval must be at most a third of leaseDurationSeconds, so one late renewal neither expires the lease nor fences the broker (the brokers refuse shorter leases)"))]
pub struct Coordination {
    /// A broker whose Lease is older than this is considered dead and loses leadership; 9 s by
    /// default, Kafka's `broker.session.timeout.ms`, so failover takes about as long as KRaft's.
    #[serde(default = "default_lease_duration")]
    #[schemars(range(min = 2, max = 300))]
    pub lease_duration_seconds: i32,
    /// How often brokers renew their Lease (2 s by default, Kafka's broker heartbeat).
    #[serde(default = "default_renew_interval")]
    #[schemars(range(min = 1, max = 150))]
    pub renew_interval_seconds: i32,
    /// The renew interval in milliseconds, taking the place of `renewIntervalSeconds` when
    /// set: sub-second renewals allow leases of 2 s and failover in about as long as
    /// Redpanda's. A separate optional field (not a fractional `renewIntervalSeconds`) so
    /// brokers and operators of earlier releases still read the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 150_000))]
    pub renew_interval_milliseconds: Option<i32>,
}

impl Coordination {
    /// How often brokers renew their Lease, in milliseconds.
    pub fn renew_interval_ms(&self) -> i64 {
        self.renew_interval_milliseconds
            .map_or(i64::from(self.renew_interval_seconds) * 1000, i64::from)
    }
}

impl Default for Coordination {
    fn default() -> Self {
        Coordination {
            lease_duration_seconds: default_lease_duration(),
            renew_interval_seconds: default_renew_interval(),
            renew_interval_milliseconds: None,
        }
    }
}

/// Replica movement: each move is a partition reassignment (add the new replica, wait until
/// it is in sync, then drop the old one), so it costs one partition's data in replication
/// traffic; the bound keeps that from starving clients.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rebalance {
    /// Spread replicas evenly over the brokers after a scale-out (moves off the removed
    /// brokers before a scale-in, and replication-factor changes, happen either way).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Partition reassignments in progress at once in the cluster, whoever started them.
    #[serde(default = "default_max_moves")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrent_moves: i32,
}

impl Default for Rebalance {
    fn default() -> Self {
        Rebalance {
            enabled: true,
            max_concurrent_moves: default_max_moves(),
        }
    }
}

fn default_max_moves() -> i32 {
    5
}

fn default_lease_duration() -> i32 {
    9
}

fn default_renew_interval() -> i32 {
    2
}

fn default_true() -> bool {
    true
}

fn default_one() -> i32 {
    1
}

/// Observed state of a Kafka cluster, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Broker pods that exist (the scale subresource's current replicas).
    #[serde(default)]
    pub replicas: i32,
    /// Broker pods that are ready and run the current config.
    #[serde(default)]
    pub ready_brokers: i32,
    /// Per-broker state, ordered by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerStatus>,
    /// `host:port` list clients bootstrap from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// Where each listener's clients bootstrap, as Strimzi reports it: the bootstrap Service's
    /// DNS name (or the pods' IPs) for internal listeners, the nodes' addresses and the bootstrap
    /// node port for `nodeport`, the load balancer's ingress for `loadbalancer` (empty until
    /// Kubernetes has given it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerStatus>,
    /// Kafka cluster id (derived from the object's UID, stable for its life).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Identity of the operator replica acting as the Kafka controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// Partitions of this cluster's topics without a live leader.
    #[serde(default)]
    pub offline_partitions: i32,
    /// Partitions of this cluster's topics whose ISR is smaller than their replica set.
    #[serde(default)]
    pub under_replicated_partitions: i32,
    /// Label selector of the broker pods, for the scale subresource (`kubectl scale`, HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Hash of the rendered broker config; pods whose annotation differs are out of date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Name of the ConfigMap brokers take producer-id blocks from, once the operator created
    /// it. Should it disappear later the operator does not recreate it (a fresh counter would
    /// hand out ids already in use) and reports the cluster Degraded instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_ids: Option<String>,
    /// The rolling update in progress, absent when every broker pod runs the StatefulSet's
    /// current template. Kept here, not in memory, so a restarted or newly elected operator
    /// resumes the roll where it stood (and never restarts a second broker while the first is
    /// still rejoining its ISRs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll: Option<RollStatus>,
    /// The schema registry's URL and readiness, while `spec.schemaRegistry` is set (the
    /// `SchemaRegistry` condition says why it is not ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<SchemaRegistryStatus>,
    /// The feature levels the brokers serve by (KIP-584), as clients see them in ApiVersions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeaturesStatus>,
}

/// The finalized feature levels of a cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeaturesStatus {
    /// Raised by every change (ApiVersions' FinalizedFeaturesEpoch).
    pub epoch: i64,
    /// Each feature switched on, with its level (a feature at 0 is off and not listed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub finalized: BTreeMap<String, i16>,
}

/// Progress of a rolling update. The StatefulSet uses `OnDelete`: the operator restarts one
/// broker at a time by deleting its pod once the restart cannot take a partition below
/// `min.insync.replicas`, and the broker restarted before it is back in every ISR.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollStatus {
    /// The StatefulSet revision (`status.updateRevision`) the brokers roll to; a newer one
    /// (the template changed again mid-roll) starts the roll over towards it.
    pub revision: String,
    /// Brokers whose pods run `revision`, ascending.
    #[serde(default)]
    pub updated: Vec<i32>,
    /// Brokers still to restart, in the order the operator means to restart them.
    #[serde(default)]
    pub pending: Vec<i32>,
    /// The broker restarted last: the next restart waits until it is back (Ready, registered
    /// as a new incarnation, in every ISR it belongs to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarting: Option<RestartedBroker>,
    /// What the roll waits for, when it waits for anything but the restart in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// A broker whose pod the operator deleted to roll it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartedBroker {
    /// Broker id.
    pub id: i32,
    /// UID of the pod deleted: while a pod with this UID exists, the restart has not happened.
    pub pod_uid: String,
    /// The broker's incarnation (its Lease's `tributary.dev/incarnation`) when its pod was
    /// deleted; it is back only as a newer one. Absent when it had no registration then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<i64>,
}

/// One broker as the operator sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// Broker id (pod ordinal).
    pub id: i32,
    /// Pod name.
    pub pod: String,
    /// Pod is Ready.
    pub ready: bool,
    /// Image the pod runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Pod runs the current config hash.
    pub config_in_sync: bool,
    /// The active controller sees the broker's Lease held and renewed, judged by its own clock
    /// (the broker is registered, in Kafka terms).
    #[serde(default)]
    pub registered: bool,
    /// Rack (value of `rack.topologyKey` on the pod's node), used for replica placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// One listener's bootstrap addresses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// The listener's name, as in `spec.listeners`.
    pub name: String,
    /// `internal`, `nodeport` or `loadbalancer`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The addresses clients bootstrap from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<ListenerAddress>,
    /// The addresses as a client's `bootstrap.servers` takes them (`host:port,...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
}

/// A host and port clients connect to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ListenerAddress {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: i32,
}
