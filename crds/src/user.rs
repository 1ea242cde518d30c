//! `KafkaUser`: a Kafka principal (`User:<metadata.name>`) with its credentials and ACLs, as
//! Strimzi's KafkaUser (same field names, so manifests carry over). The user's KafkaCluster,
//! in the same namespace, is named by the label [`crate::CLUSTER_LABEL`], as Strimzi's
//! `strimzi.io/cluster`.
//!
//! # What the operator makes of it
//!
//! - `authentication.type: scram-sha-512`: a SCRAM-SHA-512 credential in the cluster's shared
//!   credential document ([`crate::scram`]), and a Secret named like the user (owned by it)
//!   with [`PASSWORD_KEY`] and [`JAAS_CONFIG_KEY`]. The password is generated unless
//!   `password.valueFrom.secretKeyRef` names one.
//! - `authentication.type: tls`: a client certificate with common name `<metadata.name>`,
//!   signed by the cluster's clients CA, in the user's Secret under [`USER_CERT_KEY`],
//!   [`USER_KEY_KEY`] and [`crate::registration::CA_CERT_KEY`]; renewed before it expires
//!   and when the CA changes.
//! - `authorization.type: simple`: the user owns every binding of its principal in the
//!   cluster's shared ACL document ([`crate::acls`]); that set is replaced by the spec's.
//!
//! - `quotas`: the user owns the client quotas of entity `user=<metadata.name>` in the
//!   cluster's shared client-quota document ([`crate::quotas`]); they are replaced by the
//!   spec's (none without `quotas`).
//!
//! Deleting the KafkaUser removes its credential, its bindings and its quotas (a finalizer);
//! the Secret goes with it by garbage collection.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]
// Several `printcolumn(...)` entries repeat `type_ = ...`, which clippy mistakes for duplicated
// attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Finalizer the operator keeps on a KafkaUser until its credential and ACLs are removed from
/// the cluster's shared documents (the Secret is garbage collected on its own).
pub const USER_FINALIZER: &str = "tributary.dev/user-credentials";
/// Key of a SCRAM user's Secret holding the password.
pub const PASSWORD_KEY: &str = "password";
/// Key of a SCRAM user's Secret holding the JAAS line Java clients put in `sasl.jaas.config`.
pub const JAAS_CONFIG_KEY: &str = "sasl.jaas.config";
/// Key of a TLS user's Secret holding the client certificate, PEM.
pub const USER_CERT_KEY: &str = "user.crt";
/// Key of a TLS user's Secret holding the client certificate's private key (PKCS#8), PEM.
pub const USER_KEY_KEY: &str = "user.key";

/// Desired state of a Kafka user.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaUser",
    namespaced,
    status = "KafkaUserStatus",
    derive = "PartialEq",
    shortname = "ku",
    category = "tributary",
    doc = "A Kafka user (principal User:<name>) of the KafkaCluster named by its tributary.dev/cluster label: its credentials and ACLs.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels.tributary\\.dev/cluster"
    ),
    printcolumn(
        name = "Authentication",
        type_ = "string",
        json_path = ".spec.authentication.type"
    ),
    printcolumn(
        name = "Authorization",
        type_ = "string",
        json_path = ".spec.authorization.type"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".status.secret",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// How the user proves who it is; without it the user has no credentials of its own (its
    /// ACLs may still apply to a principal authenticated some other way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<UserAuthentication>,
    /// What the user may do; without it the user's ACLs are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<UserAuthorization>,
    /// The user's client quotas, as Strimzi's: the Kafka quotas of entity `user=<name>`,
    /// applied by every broker; without it (or for a field left out) the user has none of its
    /// own, and the cluster's defaults apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<UserQuotas>,
}

/// A user's client quotas (Strimzi's `KafkaUserQuotas`): each is Kafka's quota of the same
/// name for entity `user=<name>`, shared by all of the user's connections on each broker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserQuotas {
    /// Bytes per second the user may produce before it is throttled (`producer_byte_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub producer_byte_rate: Option<i64>,
    /// Bytes per second the user may fetch before it is throttled (`consumer_byte_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub consumer_byte_rate: Option<i64>,
    /// Percentage of one request handler thread the user may keep busy
    /// (`request_percentage`); may exceed 100, as the broker has several threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub request_percentage: Option<i64>,
    /// Partitions the user may create or delete per second (`controller_mutation_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub controller_mutation_rate: Option<f64>,
}

/// The user's credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.type == 'scram-sha-512' || !has(self.password)").message("password applies to type scram-sha-512 only"))]
pub struct UserAuthentication {
    /// `scram-sha-512` (a password) or `tls` (a client certificate from the clients CA).
    #[serde(rename = "type")]
    pub type_: AuthenticationType,
    /// Where the password comes from (scram-sha-512 only); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSource>,
}

/// Kinds of authentication.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthenticationType {
    /// SASL SCRAM-SHA-512 with a password.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// Mutual TLS with a certificate signed by the cluster's clients CA.
    #[serde(rename = "tls")]
    Tls,
}

/// A password given rather than generated.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSource {
    /// Where to read it.
    pub value_from: PasswordValueFrom,
}

/// The object holding a given password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordValueFrom {
    /// A key of a Secret in the user's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the password.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The user's permissions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthorization {
    /// `simple`: Kafka ACLs (the only kind).
    #[serde(rename = "type")]
    pub type_: AuthorizationType,
    /// The ACL rules, each granting or denying operations on a resource.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub acls: Vec<AclRule>,
}

/// Kinds of authorization.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthorizationType {
    /// Kafka ACLs, checked by the brokers' authorizer.
    #[serde(rename = "simple")]
    Simple,
}

/// One ACL rule: every operation listed, on the resource, from the host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    /// What the rule protects.
    pub resource: AclRuleResource,
    /// The operations allowed or denied.
    #[schemars(length(min = 1, max = 11))]
    pub operations: Vec<AclOperation>,
    /// The client address it applies to, `*` for any.
    #[serde(default = "any_host")]
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Allow (the default) or deny; a deny wins over any allow.
    #[serde(default, rename = "type")]
    pub type_: AclRuleType,
}

fn any_host() -> String {
    "*".to_owned()
}

/// The resource of an ACL rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.type == 'cluster' || has(self.name)").message("name is required unless type is cluster"))]
#[x_kube(validation = kube::core::Rule::new("self.type != 'cluster' || !has(self.name) || self.name == 'kafka-cluster'").message("the cluster resource is named kafka-cluster"))]
pub struct AclRuleResource {
    /// topic, group, cluster or transactionalId.
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// The resource's name, a prefix of names (`patternType: prefix`), or `*` for all; not
    /// needed for `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    /// literal (the default) or prefix.
    #[serde(default)]
    pub pattern_type: AclPatternType,
}

/// Resource types an ACL rule can protect.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AclResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster (`kafka-cluster`).
    Cluster,
    /// A transactional id.
    TransactionalId,
}

/// How an ACL rule's resource name matches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AclPatternType {
    /// The exact name (or `*`, every name).
    #[default]
    Literal,
    /// Every name starting with it.
    Prefix,
}

/// Operations an ACL rule can allow or deny.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AclOperation {
    /// Consume; commit and fetch offsets.
    Read,
    /// Produce.
    Write,
    /// Create topics.
    Create,
    /// Delete topics, records, groups.
    Delete,
    /// Alter partitions, ACLs.
    Alter,
    /// Describe topics, groups, the cluster.
    Describe,
    /// Inter-broker requests.
    ClusterAction,
    /// Describe configs.
    DescribeConfigs,
    /// Alter configs.
    AlterConfigs,
    /// Produce idempotently without a transactional id.
    IdempotentWrite,
    /// Every operation.
    All,
}

/// Whether an ACL rule allows or denies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AclRuleType {
    /// Allow.
    #[default]
    Allow,
    /// Deny: wins over any allow.
    Deny,
}

/// Observed state of a Kafka user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, with a reason when it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The Kafka user name clients authenticate as (the principal is `User:<username>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Secret holding the user's credentials, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}
