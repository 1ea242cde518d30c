//! What a KafkaCluster's listener security renders to: the Kafka `listener.name.<l>.*`
//! settings, the operator's own inter-broker listener, the authorizer, and the Secret and
//! ConfigMap volumes the settings point into.
//!
//! Certificates and JWKS documents reach the brokers as mounted files, never through the
//! config: the broker re-reads them when they change, so a renewed certificate is picked up
//! without a restart, and since they are not in `server.properties` they stay out of the
//! config hash (a rotation never rolls the brokers).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, KeyToPath, SecretVolumeSource, Volume, VolumeMount,
};
use tributary_crds::cluster::{
    AdvertisedAddress, AuthenticationType, KafkaClusterSpec, Listener, ListenerType,
    SecurityProtocol, REPLICATION_LISTENER, REPLICATION_PORT,
};
use tributary_crds::registration::{clients_ca_name, CA_CERT_KEY};
use tributary_crds::KafkaCluster;

use super::Names;

/// Where the broker certificate Secret (`tls.crt`, `tls.key`, `ca.crt`) is mounted.
pub const BROKER_CERTS_DIR: &str = "/etc/tributary-tls/broker";
/// Where the clients CA certificate (only `ca.crt`, never the key) is mounted.
pub const CLIENTS_CA_DIR: &str = "/etc/tributary-tls/clients-ca";
/// Parent of the directories user-provided listener certificates are mounted in
/// (`<dir>/<listener, lower case>`).
pub const LISTENER_CERTS_DIR: &str = "/etc/tributary-tls/listeners";
/// Parent of the directories JWKS documents are mounted in (`<dir>/<listener>/jwks.json`).
pub const JWKS_DIR: &str = "/etc/tributary-oauth";
/// File name of a mounted JWKS document.
pub const JWKS_FILE: &str = "jwks.json";
/// Key of a `kubernetes.io/tls` Secret holding the certificate chain.
pub const TLS_CERT_KEY: &str = "tls.crt";
/// Key of a `kubernetes.io/tls` Secret holding the private key.
pub const TLS_KEY_KEY: &str = "tls.key";
/// Kafka's class name for its ACL authorizer; the broker enables its own ACL checks for any
/// authorizer class.
pub const AUTHORIZER_CLASS: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// Maps a client certificate's subject to its common name, so a KafkaUser `alice`'s
/// certificate (`CN=alice`) authenticates as `User:alice`, as SCRAM user `alice` does.
pub const CN_MAPPING_RULES: &str = "RULE:^CN=([^,]+).*$/$1/,DEFAULT";
/// Name of the volume holding the broker certificate Secret.
const BROKER_CERTS_VOLUME: &str = "broker-certs";
/// Name of the volume holding the clients CA certificate.
const CLIENTS_CA_VOLUME: &str = "clients-ca";

/// Name of the Secret holding the brokers' certificate (signed by the cluster CA), its key and
/// the cluster CA certificates.
pub fn broker_certs_name(cluster: &str) -> String {
    format!("{cluster}-broker-certs")
}

/// Whether the brokers replicate over the operator's `REPLICATION` listener (mutual TLS with
/// the broker certificate): when any client listener is secured, so replication is not the
/// one plaintext door left, and with an authorizer, which would refuse anonymous followers.
pub fn uses_replication_listener(spec: &KafkaClusterSpec) -> bool {
    spec.authorization.is_some() || spec.listeners.iter().any(Listener::is_secured)
}

/// Whether the operator must issue the broker certificate: for the replication listener, for
/// listeners with TLS but no certificate of their own, and to reach a TLS schema registry
/// ([`super::broker_registry`]).
pub fn needs_broker_certificate(spec: &KafkaClusterSpec) -> bool {
    uses_replication_listener(spec)
        || super::broker_registry::needs_broker_certificate(spec)
        || spec
            .listeners
            .iter()
            .any(|l| l.tls.as_ref().is_some_and(|t| t.secret_name.is_none()))
}

/// The brokers' certificate subject common name (`<cluster>-broker`).
pub fn broker_common_name(names: &Names) -> String {
    names.broker()
}

/// The brokers' principal on the replication listener. That listener maps subjects with
/// `DEFAULT` (the whole RFC 2253 subject), unlike client listeners, which keep only the
/// common name: so no client certificate or SCRAM user named `<cluster>-broker` can pass as a
/// broker and inherit its super-user rights.
pub fn broker_principal(names: &Names) -> String {
    format!("User:CN={}", broker_common_name(names))
}

/// The DNS names the broker certificate covers: every broker's name through the headless
/// Service (short and fully qualified) and the bootstrap Service's names.
pub fn broker_dns_names(names: &Names) -> Vec<String> {
    let ns = &names.namespace;
    let headless = names.headless();
    let bootstrap = names.bootstrap();
    vec![
        format!("*.{headless}.{ns}.svc"),
        format!("*.{headless}.{ns}.svc.cluster.local"),
        bootstrap.clone(),
        format!("{bootstrap}.{ns}"),
        format!("{bootstrap}.{ns}.svc"),
        format!("{bootstrap}.{ns}.svc.cluster.local"),
    ]
}

/// The `listeners` entries, `listener.security.protocol.map` and `inter.broker.listener.name`
/// of `spec`: the client listeners with their derived protocols, plus `REPLICATION` last (the
/// broker binds the first listener on the pod IP from its command line, so the client
/// listeners keep their places).
pub fn listener_settings(spec: &KafkaClusterSpec) -> (String, String, Option<String>) {
    let entries = endpoints(spec);
    // Brokers replicate inside the cluster: over REPLICATION, else the first internal listener.
    let inter_broker = entries
        .iter()
        .find(|e| e.name == REPLICATION_LISTENER)
        .or_else(|| entries.iter().find(|e| !e.external))
        .map(|e| e.name.clone());
    let listeners = entries
        .iter()
        .map(|e| format!("{}://0.0.0.0:{}", e.name, e.port))
        .collect::<Vec<_>>()
        .join(",");
    let map = entries
        .iter()
        .map(|e| format!("{}:{}", e.name, e.protocol.name()))
        .collect::<Vec<_>>()
        .join(",");
    (listeners, map, inter_broker)
}

/// One listener a broker serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Listener name.
    pub name: String,
    /// Port.
    pub port: i32,
    /// Derived security protocol.
    pub protocol: SecurityProtocol,
    /// What the broker advertises for it.
    pub advertise: AdvertisedAddress,
    /// Reached through per-broker NodePort or LoadBalancer Services.
    pub external: bool,
}

/// Every listener the brokers serve: the client listeners, then `REPLICATION` when used, which
/// advertises the way the first internal client listener does (pod IPs are routable between pods
/// wherever the clients' are).
pub fn endpoints(spec: &KafkaClusterSpec) -> Vec<Endpoint> {
    let mut entries: Vec<Endpoint> = spec
        .listeners
        .iter()
        .map(|l| Endpoint {
            name: l.name.clone(),
            port: l.port,
            protocol: l.security_protocol(),
            advertise: l.advertise,
            external: l.type_ != ListenerType::Internal,
        })
        .collect();
    if uses_replication_listener(spec) {
        entries.push(Endpoint {
            name: REPLICATION_LISTENER.to_owned(),
            port: REPLICATION_PORT,
            protocol: SecurityProtocol::Ssl,
            advertise: spec
                .listeners
                .iter()
                .find(|l| l.type_ == ListenerType::Internal)
                .map(|l| l.advertise)
                .unwrap_or_default(),
            external: false,
        });
    }
    entries
}

/// The per-listener TLS and SASL settings, the replication listener's and the authorizer's,
/// by their Kafka names (each key checked against what the broker reads). Empty for a
/// plaintext cluster without an authorizer.
pub fn security_properties(cluster: &KafkaCluster, names: &Names) -> BTreeMap<String, String> {
    let spec = &cluster.spec;
    let mut props = BTreeMap::new();
    for listener in &spec.listeners {
        let prefix = format!("listener.name.{}.", listener.name.to_ascii_lowercase());
        let mut set = |key: &str, value: String| {
            props.insert(format!("{prefix}{key}"), value);
        };
        if let Some(tls) = &listener.tls {
            let dir = match tls.secret_name {
                Some(_) => listener_certs_dir(listener),
                None => BROKER_CERTS_DIR.to_owned(),
            };
            set("ssl.keystore.location", format!("{dir}/{TLS_CERT_KEY}"));
            set("ssl.keystore.key.location", format!("{dir}/{TLS_KEY_KEY}"));
        }
        let Some(auth) = &listener.authentication else {
            continue;
        };
        match auth.type_ {
            AuthenticationType::Tls => {
                set("ssl.client.auth", "required".to_owned());
                set(
                    "ssl.truststore.location",
                    format!("{CLIENTS_CA_DIR}/{CA_CERT_KEY}"),
                );
                set("ssl.principal.mapping.rules", CN_MAPPING_RULES.to_owned());
            }
            AuthenticationType::ScramSha512 => {
                set("sasl.enabled.mechanisms", "SCRAM-SHA-512".to_owned());
            }
            AuthenticationType::OAuth => {
                set("sasl.enabled.mechanisms", "OAUTHBEARER".to_owned());
                set(
                    "sasl.oauthbearer.jwks.endpoint.url",
                    format!("file://{}", jwks_path(listener)),
                );
                if let Some(audience) = &auth.audience {
                    set("sasl.oauthbearer.expected.audience", audience.clone());
                }
                if let Some(issuer) = &auth.issuer {
                    set("sasl.oauthbearer.expected.issuer", issuer.clone());
                }
                if let Some(claim) = &auth.username_claim {
                    set("sasl.oauthbearer.sub.claim.name", claim.clone());
                }
            }
        }
    }
    if uses_replication_listener(spec) {
        let prefix = format!(
            "listener.name.{}.",
            REPLICATION_LISTENER.to_ascii_lowercase()
        );
        let mut set = |key: &str, value: String| {
            props.insert(format!("{prefix}{key}"), value);
        };
        // The other brokers' certificates are checked against the cluster CA, and this
        // broker presents its own as the client certificate when it fetches (the broker's
        // inter-broker client does so whenever the listener requires one).
        set(
            "ssl.keystore.location",
            format!("{BROKER_CERTS_DIR}/{TLS_CERT_KEY}"),
        );
        set(
            "ssl.keystore.key.location",
            format!("{BROKER_CERTS_DIR}/{TLS_KEY_KEY}"),
        );
        set(
            "ssl.truststore.location",
            format!("{BROKER_CERTS_DIR}/{CA_CERT_KEY}"),
        );
        set("ssl.client.auth", "required".to_owned());
        set("ssl.principal.mapping.rules", "DEFAULT".to_owned());
        // Reached by pod IP, which the certificate cannot name: brokers check each other's
        // chain to the cluster CA (which signs nothing but brokers) and not the host name.
        if endpoints(spec)
            .iter()
            .any(|e| e.name == REPLICATION_LISTENER && e.advertise == AdvertisedAddress::PodIp)
        {
            set("ssl.endpoint.identification.algorithm", String::new());
        }
    }
    if let Some(authorization) = &spec.authorization {
        props.insert(
            "authorizer.class.name".to_owned(),
            AUTHORIZER_CLASS.to_owned(),
        );
        let mut super_users = authorization.super_users.clone();
        let broker = broker_principal(names);
        if !super_users.contains(&broker) {
            super_users.push(broker);
        }
        props.insert("super.users".to_owned(), super_users.join(";"));
    }
    props
}

fn listener_certs_dir(listener: &Listener) -> String {
    format!(
        "{LISTENER_CERTS_DIR}/{}",
        listener.name.to_ascii_lowercase()
    )
}

fn jwks_path(listener: &Listener) -> String {
    format!(
        "{JWKS_DIR}/{}/{JWKS_FILE}",
        listener.name.to_ascii_lowercase()
    )
}

/// A volume name for `listener` with `prefix` (DNS label: lower case, `-` for `_`).
fn volume_name(prefix: &str, listener: &Listener) -> String {
    format!(
        "{prefix}-{}",
        listener.name.to_ascii_lowercase().replace('_', "-")
    )
}

/// Read-only for the broker's group (the pod's `fsGroup`).
const SECRET_MODE: i32 = 0o440;

/// A Secret volume readable by the broker's group only, with the keys `items` maps (all
/// when `None`).
pub(super) fn secret_volume(name: String, secret: String, items: Option<Vec<KeyToPath>>) -> Volume {
    Volume {
        name,
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            items,
            default_mode: Some(SECRET_MODE),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A read-only mount of volume `name` at `path`.
pub(super) fn mount(name: String, path: String) -> VolumeMount {
    VolumeMount {
        name,
        mount_path: path,
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

pub(super) fn only_key(key: &str, path: &str) -> Option<Vec<KeyToPath>> {
    Some(vec![KeyToPath {
        key: key.to_owned(),
        path: path.to_owned(),
        ..KeyToPath::default()
    }])
}

/// The volumes and mounts the rendered settings point into; none for a plaintext cluster.
/// CA keys are never mounted: the clients CA volume holds only `ca.crt`.
pub fn volumes(cluster: &KafkaCluster, names: &Names) -> (Vec<Volume>, Vec<VolumeMount>) {
    let spec = &cluster.spec;
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    if needs_broker_certificate(spec) {
        volumes.push(secret_volume(
            BROKER_CERTS_VOLUME.to_owned(),
            broker_certs_name(&names.cluster),
            None,
        ));
        mounts.push(mount(
            BROKER_CERTS_VOLUME.to_owned(),
            BROKER_CERTS_DIR.to_owned(),
        ));
    }
    let tls_authentication = spec.listeners.iter().any(|l| {
        l.authentication
            .as_ref()
            .is_some_and(|a| a.type_ == AuthenticationType::Tls)
    });
    if tls_authentication {
        volumes.push(secret_volume(
            CLIENTS_CA_VOLUME.to_owned(),
            clients_ca_name(&names.cluster),
            only_key(CA_CERT_KEY, CA_CERT_KEY),
        ));
        mounts.push(mount(
            CLIENTS_CA_VOLUME.to_owned(),
            CLIENTS_CA_DIR.to_owned(),
        ));
    }
    for listener in &spec.listeners {
        if let Some(secret) = listener.tls.as_ref().and_then(|t| t.secret_name.clone()) {
            let name = volume_name("tls", listener);
            volumes.push(secret_volume(name.clone(), secret, None));
            mounts.push(mount(name, listener_certs_dir(listener)));
        }
        let jwks = listener
            .authentication
            .as_ref()
            .and_then(|a| a.jwks_config_map.as_ref());
        if let Some(jwks) = jwks {
            let name = volume_name("jwks", listener);
            volumes.push(Volume {
                name: name.clone(),
                config_map: Some(ConfigMapVolumeSource {
                    name: jwks.name.clone(),
                    items: only_key(&jwks.key, JWKS_FILE),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            });
            let dir = format!("{JWKS_DIR}/{}", listener.name.to_ascii_lowercase());
            mounts.push(mount(name, dir));
        }
    }
    (volumes, mounts)
}

#[cfg(test)]
mod tests {
    use super::super::server_properties;
    use super::*;

    fn cluster(listeners: &str, extra: &str) -> (KafkaCluster, Names) {
        let yaml = format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\n\
             metadata: {{name: demo, namespace: ns, uid: u1}}\n\
             spec:\n  brokers: 3\n  listeners:\n{listeners}{extra}"
        );
        let c: KafkaCluster = serde_yaml::from_str(&yaml).unwrap();
        let names = Names::of(&c).unwrap();
        (c, names)
    }

    /// The `key=value` lines of the rendered `server.properties`.
    fn lines(c: &KafkaCluster, names: &Names) -> Vec<String> {
        server_properties(c, names)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    fn has(lines: &[String], line: &str) {
        assert!(
            lines.iter().any(|l| l == line),
            "missing `{line}` in\n{}",
            lines.join("\n")
        );
    }

    #[test]
    fn a_plaintext_cluster_renders_no_security_settings_and_no_extra_volumes() {
        let (c, names) = cluster("  - {name: PLAIN, port: 9092}\n", "");
        let l = lines(&c, &names);
        has(&l, "listeners=PLAIN://0.0.0.0:9092");
        has(&l, "listener.security.protocol.map=PLAIN:PLAINTEXT");
        has(&l, "inter.broker.listener.name=PLAIN");
        assert!(!l
            .iter()
            .any(|l| l.starts_with("listener.name.") || l.contains("super.users")));
        assert_eq!(volumes(&c, &names), (vec![], vec![]));
        assert!(!needs_broker_certificate(&c.spec));
    }

    #[test]
    fn each_listener_kind_renders_its_protocol_and_settings() {
        let (c, names) = cluster(
            "  - {name: PLAIN, port: 9092}\n\
             \x20 - {name: TLS, port: 9093, tls: {}}\n\
             \x20 - {name: MTLS, port: 9094, tls: {secretName: my-cert}, authentication: {type: tls}}\n\
             \x20 - {name: SCRAM, port: 9095, authentication: {type: scram-sha-512}}\n",
            "",
        );
        let l = lines(&c, &names);
        has(
            &l,
            "listeners=PLAIN://0.0.0.0:9092,TLS://0.0.0.0:9093,MTLS://0.0.0.0:9094,SCRAM://0.0.0.0:9095,REPLICATION://0.0.0.0:9091",
        );
        has(
            &l,
            "listener.security.protocol.map=PLAIN:PLAINTEXT,TLS:SSL,MTLS:SSL,SCRAM:SASL_PLAINTEXT,REPLICATION:SSL",
        );
        has(&l, "inter.broker.listener.name=REPLICATION");
        // Operator-issued certificate.
        has(
            &l,
            "listener.name.tls.ssl.keystore.location=/etc/tributary-tls/broker/tls.crt",
        );
        has(
            &l,
            "listener.name.tls.ssl.keystore.key.location=/etc/tributary-tls/broker/tls.key",
        );
        // The user's certificate, client certificates from the clients CA mapped to their CN.
        has(
            &l,
            "listener.name.mtls.ssl.keystore.location=/etc/tributary-tls/listeners/mtls/tls.crt",
        );
        has(
            &l,
            "listener.name.mtls.ssl.keystore.key.location=/etc/tributary-tls/listeners/mtls/tls.key",
        );
        has(&l, "listener.name.mtls.ssl.client.auth=required");
        has(
            &l,
            "listener.name.mtls.ssl.truststore.location=/etc/tributary-tls/clients-ca/ca.crt",
        );
        has(
            &l,
            "listener.name.mtls.ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT",
        );
        has(
            &l,
            "listener.name.scram.sasl.enabled.mechanisms=SCRAM-SHA-512",
        );
        assert!(!l.iter().any(|l| l.starts_with("listener.name.plain.")));
        assert!(!l
            .iter()
            .any(|l| l.starts_with("listener.name.tls.ssl.client.auth")));
        // Replication: mutual TLS with the broker certificate, brokers trusted by the cluster CA.
        for line in [
            "listener.name.replication.ssl.keystore.location=/etc/tributary-tls/broker/tls.crt",
            "listener.name.replication.ssl.keystore.key.location=/etc/tributary-tls/broker/tls.key",
            "listener.name.replication.ssl.truststore.location=/etc/tributary-tls/broker/ca.crt",
            "listener.name.replication.ssl.client.auth=required",
            "listener.name.replication.ssl.principal.mapping.rules=DEFAULT",
        ] {
            has(&l, line);
        }
        // No authorizer asked for.
        assert!(!l.iter().any(|l| l.starts_with("authorizer.class.name")));
    }

    #[test]
    fn oauth_reads_the_mounted_jwks_with_the_expectations() {
        let (c, names) = cluster(
            "  - name: OAUTH\n    port: 9093\n    tls: {}\n    authentication:\n      type: oauth\n      jwksConfigMap: {name: idp, key: keys.json}\n      audience: kafka\n      issuer: https://idp.example\n      usernameClaim: preferred_username\n",
            "",
        );
        let l = lines(&c, &names);
        has(
            &l,
            "listener.security.protocol.map=OAUTH:SASL_SSL,REPLICATION:SSL",
        );
        has(
            &l,
            "listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER",
        );
        has(
            &l,
            "listener.name.oauth.sasl.oauthbearer.jwks.endpoint.url=file:///etc/tributary-oauth/oauth/jwks.json",
        );
        has(
            &l,
            "listener.name.oauth.sasl.oauthbearer.expected.audience=kafka",
        );
        has(
            &l,
            "listener.name.oauth.sasl.oauthbearer.expected.issuer=https://idp.example",
        );
        has(
            &l,
            "listener.name.oauth.sasl.oauthbearer.sub.claim.name=preferred_username",
        );
        let (vols, mounts) = volumes(&c, &names);
        let jwks = vols.iter().find(|v| v.name == "jwks-oauth").unwrap();
        let cm = jwks.config_map.as_ref().unwrap();
        assert_eq!(cm.name, "idp");
        let item = &cm.items.as_ref().unwrap()[0];
        assert_eq!(
            (item.key.as_str(), item.path.as_str()),
            ("keys.json", "jwks.json")
        );
        assert!(mounts
            .iter()
            .any(|m| m.name == "jwks-oauth" && m.mount_path == "/etc/tributary-oauth/oauth"));
    }

    #[test]
    fn the_authorizer_makes_the_brokers_super_users_and_replication_secured() {
        let (c, names) = cluster(
            "  - {name: PLAIN, port: 9092}\n",
            "  authorization: {type: simple, superUsers: ['User:admin', 'User:ops']}\n",
        );
        let l = lines(&c, &names);
        has(
            &l,
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        );
        has(&l, "super.users=User:admin;User:ops;User:CN=demo-broker");
        // Otherwise followers would fetch as User:ANONYMOUS and be refused.
        has(&l, "inter.broker.listener.name=REPLICATION");
        assert!(needs_broker_certificate(&c.spec));
    }

    #[test]
    fn volumes_mount_certificates_but_never_a_ca_key() {
        let (c, names) = cluster(
            "  - {name: MTLS, port: 9094, tls: {secretName: my-cert}, authentication: {type: tls}}\n",
            "",
        );
        let (vols, mounts) = volumes(&c, &names);
        let secret = |v: &str| {
            vols.iter()
                .find(|x| x.name == v)
                .and_then(|x| x.secret.clone())
                .unwrap_or_else(|| panic!("no secret volume {v} in {vols:?}"))
        };
        assert_eq!(
            secret("broker-certs").secret_name.as_deref(),
            Some("demo-broker-certs")
        );
        let ca = secret("clients-ca");
        assert_eq!(ca.secret_name.as_deref(), Some("demo-clients-ca"));
        let items = ca.items.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, "ca.crt");
        assert_eq!(secret("tls-mtls").secret_name.as_deref(), Some("my-cert"));
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        assert_eq!(mounts.len(), 3);
    }

    #[test]
    fn the_broker_certificate_names_every_broker_and_the_bootstrap_service() {
        let (_, names) = cluster("  - {name: PLAIN, port: 9092}\n", "");
        let dns = broker_dns_names(&names);
        for name in [
            "*.demo-brokers.ns.svc",
            "*.demo-brokers.ns.svc.cluster.local",
            "demo-bootstrap",
            "demo-bootstrap.ns.svc",
            "demo-bootstrap.ns.svc.cluster.local",
        ] {
            assert!(dns.iter().any(|d| d == name), "{name} not in {dns:?}");
        }
        assert_eq!(broker_principal(&names), "User:CN=demo-broker");
    }
}
