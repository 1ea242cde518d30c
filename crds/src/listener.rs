//! Listeners and their security: TLS (a certificate the operator issues from the cluster CA,
//! or one the user brings), client authentication (SCRAM, TLS client certificates, OAuth
//! bearer tokens), the authorizer, and the operator-managed CAs' lifetimes. The Kafka security
//! protocol of a listener is derived from what it asks for, never written by hand.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Name of the inter-broker listener the operator adds to secured clusters; users may not
/// name a listener so.
pub const REPLICATION_LISTENER: &str = "REPLICATION";
/// Port of that listener; users may not use it.
pub const REPLICATION_PORT: i32 = 9091;

/// A client listener.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("self.name != 'REPLICATION' && self.port != 9091").message("the listener name REPLICATION and port 9091 are reserved for the operator's inter-broker listener"),
    validation = kube::core::Rule::new("!has(self.authentication) || self.authentication.type != 'tls' || has(self.tls)").message("authentication type tls needs tls on the listener: client certificates are only presented over TLS (add `tls: {}`)"),
    validation = kube::core::Rule::new("!has(self.protocol) || (!has(self.tls) && !has(self.authentication))").message("protocol is deprecated and only PLAINTEXT is accepted; remove it when setting tls or authentication (the protocol is derived from them)"),
    validation = kube::core::Rule::new("!has(self.configuration) || (has(self.type) && self.type != 'internal')").message("configuration applies to external listeners only (type nodeport or loadbalancer)"),
    validation = kube::core::Rule::new("!has(self.configuration) || !has(self.configuration.brokers) || self.configuration.brokers.all(b, self.configuration.brokers.exists_one(c, c.broker == b.broker))").message("configuration.brokers names each broker at most once"),
)]
pub struct Listener {
    /// Listener name as it appears in `listeners` / `advertised.listeners`.
    #[schemars(regex(pattern = r"^[A-Z][A-Z0-9_]{0,30}$"))]
    pub name: String,
    /// Container and Service port.
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Serve TLS. `{}`: a certificate the operator issues from the cluster CA (Secret
    /// `<cluster>-broker-certs`), covering every broker's DNS name and the bootstrap Service;
    /// `{secretName: x}`: a `kubernetes.io/tls` Secret you provide (cert-manager's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// How clients authenticate; anonymous (`User:ANONYMOUS`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Deprecated: the protocol is derived from `tls` and `authentication`. Still accepted
    /// (as PLAINTEXT, without either) so manifests written for earlier releases apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ListenerProtocol>,
    /// The address each broker gives clients for this listener (internal listeners; an
    /// external one advertises what its per-broker Service gives it).
    #[serde(default)]
    pub advertise: AdvertisedAddress,
    /// How clients reach the listener: `internal` (inside the cluster, the default), or from
    /// outside it through a per-broker `nodeport` or `loadbalancer` Service
    /// (`<cluster>-broker-<id>-<listener>`) plus a bootstrap Service of the same type
    /// (`<cluster>-<listener>-bootstrap`), as Strimzi's external listeners.
    #[serde(default, rename = "type")]
    pub type_: ListenerType,
    /// External listeners: node ports, advertised addresses and Service annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ExternalConfiguration>,
    /// Who may connect to this listener's port, as Strimzi's `networkPolicyPeers`: the `from`
    /// of the ingress rule in the brokers' NetworkPolicy. Unset: from anywhere. The cluster's
    /// own brokers, its schema registry and the operator are added when they need the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub network_policy_peers: Option<Vec<NetworkPolicyPeer>>,
}

/// Label on an external listener's Services: the listener's name.
pub const EXTERNAL_LISTENER_LABEL: &str = "tributary.dev/external-listener";

/// A listener name as it appears in object and port names (`EXTERNAL_TLS` → `external-tls`).
pub fn listener_dns_name(listener: &str) -> String {
    listener.to_ascii_lowercase().replace('_', "-")
}

/// Name of broker `id`'s Service for the external listener `listener` of `cluster`; the broker
/// reads it to learn the address it advertises there.
pub fn external_service_name(cluster: &str, id: i32, listener: &str) -> String {
    format!("{cluster}-broker-{id}-{}", listener_dns_name(listener))
}

/// Name of the bootstrap Service of the external listener `listener` of `cluster`.
pub fn external_bootstrap_name(cluster: &str, listener: &str) -> String {
    format!("{cluster}-{}-bootstrap", listener_dns_name(listener))
}

/// Where a listener's clients are.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ListenerType {
    /// Inside the Kubernetes cluster, through the headless and bootstrap Services.
    #[default]
    #[serde(rename = "internal")]
    Internal,
    /// Outside it, through a NodePort Service per broker: each broker advertises its node's
    /// address (`status.hostIP`) and its Service's node port.
    #[serde(rename = "nodeport")]
    NodePort,
    /// Outside it, through a LoadBalancer Service per broker: each broker advertises its
    /// load balancer's ingress address and the listener port.
    #[serde(rename = "loadbalancer")]
    LoadBalancer,
}

impl ListenerType {
    /// The Kubernetes Service type of an external listener's Services (`None`: internal).
    pub fn service_type(self) -> Option<&'static str> {
        match self {
            ListenerType::Internal => None,
            ListenerType::NodePort => Some("NodePort"),
            ListenerType::LoadBalancer => Some("LoadBalancer"),
        }
    }
}

/// Settings of an external listener's Services.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalConfiguration {
    /// The bootstrap Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<ExternalBootstrap>,
    /// Per-broker overrides; brokers not named get a node port the API server picks and
    /// advertise what their Service gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub brokers: Vec<ExternalBroker>,
}

/// The bootstrap Service of an external listener.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalBootstrap {
    /// The node port (`nodeport` and `loadbalancer`); unset: the API server picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// Annotations on the Service (e.g. a cloud load balancer's settings or external-dns).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One broker's external Service and address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalBroker {
    /// The broker id (pod ordinal).
    #[schemars(range(min = 0))]
    pub broker: i32,
    /// The node port of its Service; unset: the API server picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// The host the broker advertises instead of the node or load-balancer address (a DNS
    /// name pointing at it, or a NAT's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub advertised_host: Option<String>,
    /// The port the broker advertises instead of the node port or listener port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub advertised_port: Option<i32>,
    /// Annotations on the broker's Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Default for Listener {
    fn default() -> Self {
        Listener {
            name: "PLAIN".to_owned(),
            port: 9092,
            tls: None,
            authentication: None,
            protocol: None,
            advertise: AdvertisedAddress::Dns,
            type_: ListenerType::Internal,
            configuration: None,
            network_policy_peers: None,
        }
    }
}

impl Listener {
    /// Kafka's security protocol for this listener: TLS and SASL as asked for. TLS client
    /// authentication is not SASL, so `tls` + `authentication: tls` is plain SSL.
    pub fn security_protocol(&self) -> SecurityProtocol {
        let sasl = self
            .authentication
            .as_ref()
            .is_some_and(|a| a.type_.is_sasl());
        match (self.tls.is_some(), sasl) {
            (true, true) => SecurityProtocol::SaslSsl,
            (true, false) => SecurityProtocol::Ssl,
            (false, true) => SecurityProtocol::SaslPlaintext,
            (false, false) => SecurityProtocol::Plaintext,
        }
    }

    /// Whether this listener needs anything beyond plain TCP.
    pub fn is_secured(&self) -> bool {
        self.security_protocol() != SecurityProtocol::Plaintext
            || self
                .authentication
                .as_ref()
                .is_some_and(|a| a.type_ == AuthenticationType::Tls)
    }
}

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Plain TCP, every client `User:ANONYMOUS`.
    Plaintext,
    /// TLS; the principal is the client certificate's subject, or ANONYMOUS without one.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The protocol named `name` (Kafka's spelling, any case).
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections speak TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must authenticate with SASL before anything else.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// The address a broker advertises (returns in Metadata) for a listener.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum AdvertisedAddress {
    /// The broker's stable DNS name, `<pod>.<cluster>-brokers.<namespace>.svc:<port>`: for
    /// clients that resolve cluster DNS (inside the cluster).
    #[default]
    #[serde(rename = "DNS")]
    Dns,
    /// The broker pod's IP (`status.podIP`), which changes when the pod is recreated: for
    /// clients outside the cluster on a network that routes pod IPs (flat networks such as
    /// the AWS VPC CNI, or a route to the pod CIDR) but does not resolve cluster DNS.
    #[serde(rename = "PodIP")]
    PodIp,
}

/// The only value the deprecated `protocol` field takes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ListenerProtocol {
    /// Unencrypted, unauthenticated TCP (Kafka `PLAINTEXT`).
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
}

/// A listener's server certificate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// A `kubernetes.io/tls` Secret in the cluster's namespace (keys `tls.crt` with the chain,
    /// `tls.key`); the brokers pick up a renewed certificate without restarting. Unset: the
    /// operator issues one from the cluster CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
}

/// How a listener's clients authenticate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.type == 'oauth' ? has(self.jwksConfigMap) : !(has(self.jwksConfigMap) || has(self.audience) || has(self.issuer) || has(self.usernameClaim))").message("oauth authentication needs jwksConfigMap; jwksConfigMap, audience, issuer and usernameClaim apply to oauth only"))]
pub struct Authentication {
    /// The mechanism.
    #[serde(rename = "type")]
    pub type_: AuthenticationType,
    /// oauth: the ConfigMap key holding the identity provider's JWKS document (its signing
    /// keys); the brokers re-read it when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_config_map: Option<JwksConfigMap>,
    /// oauth: the audience tokens must carry (`aud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// oauth: the issuer tokens must carry (`iss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// oauth: the claim naming the user (default `sub`); the principal is `User:<value>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_claim: Option<String>,
}

impl Authentication {
    /// Authentication of `type_` with no OAuth settings.
    pub fn of(type_: AuthenticationType) -> Authentication {
        Authentication {
            type_,
            jwks_config_map: None,
            audience: None,
            issuer: None,
            username_claim: None,
        }
    }
}

/// Client authentication mechanisms. Each gives the principal `User:<name>`: the SCRAM user,
/// the client certificate's common name, or the token's username claim.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthenticationType {
    /// SASL SCRAM-SHA-512 against the credentials in `<cluster>-scram-credentials`.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// TLS client certificates signed by the clients CA (`<cluster>-clients-ca`).
    #[serde(rename = "tls")]
    Tls,
    /// SASL OAUTHBEARER: JWTs checked against a JWKS.
    #[serde(rename = "oauth")]
    OAuth,
}

impl AuthenticationType {
    /// Whether clients authenticate with SASL (else with their TLS certificate).
    pub fn is_sasl(self) -> bool {
        self != AuthenticationType::Tls
    }
}

/// A key of a ConfigMap in the cluster's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwksConfigMap {
    /// The ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the JWKS JSON.
    #[schemars(regex(pattern = r"^[-._a-zA-Z0-9]{1,253}$"))]
    pub key: String,
}

/// The authorizer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// `simple`: Kafka's ACLs (StandardAuthorizer semantics).
    #[serde(rename = "type")]
    pub type_: AuthorizationType,
    /// Principals allowed everything, as Kafka writes them (`User:admin`). The brokers' own
    /// principal is added by the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(regex(pattern = r"^User:[^;]+$")))]
    pub super_users: Vec<String>,
}

/// Authorizer kinds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthorizationType {
    /// Kafka ACLs.
    #[serde(rename = "simple")]
    Simple,
}

/// Lifetimes of the operator-managed CAs and the certificates issued from them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.renewalDays < self.validityDays").message("renewalDays must be less than validityDays, or every certificate would be due for renewal as soon as it is issued"))]
pub struct CertificateAuthority {
    /// Days a new CA or certificate is valid.
    #[serde(default = "default_validity_days")]
    #[schemars(range(min = 2, max = 3650))]
    pub validity_days: i32,
    /// Days before expiry a CA or certificate is renewed. A renewed CA's predecessor stays in
    /// `ca.crt` until it expires, so clients have this long to pick up the new one.
    #[serde(default = "default_renewal_days")]
    #[schemars(range(min = 1, max = 3649))]
    pub renewal_days: i32,
}

impl Default for CertificateAuthority {
    fn default() -> Self {
        CertificateAuthority {
            validity_days: default_validity_days(),
            renewal_days: default_renewal_days(),
        }
    }
}

fn default_validity_days() -> i32 {
    365
}

fn default_renewal_days() -> i32 {
    30
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(tls: bool, auth: Option<AuthenticationType>) -> Listener {
        Listener {
            tls: tls.then(ListenerTls::default),
            authentication: auth.map(Authentication::of),
            ..Listener::default()
        }
    }

    #[test]
    fn the_security_protocol_follows_tls_and_authentication() {
        use AuthenticationType::*;
        use SecurityProtocol::*;
        let cases = [
            (false, None, Plaintext),
            (true, None, Ssl),
            (true, Some(Tls), Ssl),
            (true, Some(ScramSha512), SaslSsl),
            (true, Some(OAuth), SaslSsl),
            (false, Some(ScramSha512), SaslPlaintext),
            (false, Some(OAuth), SaslPlaintext),
        ];
        for (tls, auth, expected) in cases {
            assert_eq!(
                listener(tls, auth).security_protocol(),
                expected,
                "tls={tls} authentication={auth:?}"
            );
        }
        assert!(!listener(false, None).is_secured());
        assert!(listener(true, Some(Tls)).is_secured());
        assert!(listener(false, Some(ScramSha512)).is_secured());
    }

    #[test]
    fn old_manifests_with_protocol_plaintext_still_deserialize() {
        let l: Listener =
            serde_json::from_str(r#"{"name":"PLAIN","port":9092,"protocol":"PLAINTEXT"}"#).unwrap();
        assert_eq!(l.protocol, Some(ListenerProtocol::Plaintext));
        assert_eq!(l.security_protocol(), SecurityProtocol::Plaintext);
    }
}
