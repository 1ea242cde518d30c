//! The security of a cluster's schema registry, rendered: how its pods reach the brokers (the
//! first internal listener without client authentication, over TLS trusting the cluster CA
//! when the listener has it) and how they serve (`spec.schemaRegistry.tls` and
//! `authentication`): the flags, and the Secret volumes they point into. Pure.
//!
//! Choices, so they are in one place:
//! - The serving certificate is the Secret `tls.secretName`, or `<cluster>-schema-registry-tls`
//!   that the operator issues from the cluster CA for the Service's DNS names. Its `ca.crt`
//!   (cert-manager's Secrets carry one too) is what followers trust when they forward writes,
//!   checking the certificate for the Service's name since pods advertise their IPs.
//! - Certificates of the cluster CA authenticate in every mode: the instances forward writes
//!   with theirs, and the operator reaches the registry for KafkaSchemas with one it issues
//!   itself. `authentication.type: tls` adds the clients CA, whose certificates KafkaUsers of
//!   type tls hold (`CN=alice` is `User:alice`).
//! - `authentication.type: basic` mounts the cluster's SCRAM credential document (optional: it
//!   appears with the first KafkaUser), which the registry re-reads when kubelet updates it;
//!   the registry's Role needs nothing more.
//! - CA keys are never mounted: CA volumes hold `ca.crt` only.

use k8s_openapi::api::core::v1::{Volume, VolumeMount};
use tributary_crds::cluster::{ListenerType, SchemaRegistry};
use tributary_crds::registration::{
    clients_ca_name, cluster_ca_name, scram_credentials_name, CA_CERT_KEY, SCRAM_CREDENTIALS_KEY,
};
use tributary_crds::schema_registry::{
    registry_name, registry_tls_name, RegistryAuthenticationType,
};
use tributary_crds::{listener::AdvertisedAddress, KafkaCluster};

use super::security::{mount, only_key, secret_volume, TLS_CERT_KEY, TLS_KEY_KEY};
use super::Names;

/// Where the registry's serving certificate is mounted.
pub const REGISTRY_TLS_DIR: &str = "/etc/tributary-tls/registry";
/// Where the cluster CA certificate is mounted.
pub const REGISTRY_CLUSTER_CA_DIR: &str = "/etc/tributary-tls/cluster-ca";
/// Where the clients CA certificate is mounted (`authentication.type: tls`).
pub const REGISTRY_CLIENTS_CA_DIR: &str = "/etc/tributary-tls/clients-ca";
/// Where the SCRAM credential document is mounted (`authentication.type: basic`).
pub const REGISTRY_SCRAM_DIR: &str = "/etc/tributary-scram";

/// The listener the registry's Kafka clients use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaAccess {
    /// `host:port` of the bootstrap Service on it.
    pub bootstrap: String,
    /// Its name (the registry reads its addresses from the cluster's status).
    pub listener: String,
    /// Whether it serves TLS (with the operator's broker certificate).
    pub tls: bool,
    /// Whether brokers advertise pod IPs there, which their certificates do not name.
    pub by_ip: bool,
}

/// The first internal listener without client authentication, preferring one without TLS,
/// else one with TLS whose certificate the operator issues (so the cluster CA verifies it);
/// why none fits otherwise.
pub fn kafka_access(cluster: &KafkaCluster, names: &Names) -> Result<KafkaAccess, String> {
    let open = |l: &&tributary_crds::listener::Listener| {
        l.type_ == ListenerType::Internal && l.authentication.is_none()
    };
    let listeners = &cluster.spec.listeners;
    let chosen = listeners
        .iter()
        .filter(open)
        .find(|l| l.tls.is_none())
        .or_else(|| {
            listeners
                .iter()
                .filter(open)
                .find(|l| l.tls.as_ref().is_some_and(|t| t.secret_name.is_none()))
        });
    let Some(l) = chosen else {
        return Err(
            "the schema registry connects to the brokers through an internal listener without \
             client authentication (plaintext, or TLS with the operator-issued certificate), \
             and spec.listeners has none; add one (e.g. {name: REGISTRY, port: 9095, tls: {}}) \
             or remove spec.schemaRegistry"
                .to_owned(),
        );
    };
    Ok(KafkaAccess {
        bootstrap: names.bootstrap_servers(l.port),
        listener: l.name.clone(),
        tls: l.tls.is_some(),
        by_ip: l.advertise == AdvertisedAddress::PodIp,
    })
}

/// The DNS names of the registry's Service, which its certificate names.
pub fn registry_dns_names(names: &Names) -> Vec<String> {
    let service = registry_name(&names.cluster);
    let ns = &names.namespace;
    vec![
        service.clone(),
        format!("{service}.{ns}"),
        format!("{service}.{ns}.svc"),
        format!("{service}.{ns}.svc.cluster.local"),
    ]
}

/// Whether the operator issues the registry's certificate (`tls` without `secretName`).
pub fn operator_issues_certificate(registry: &SchemaRegistry) -> bool {
    registry
        .tls
        .as_ref()
        .is_some_and(|t| t.secret_name.is_none())
}

/// The registry's security flags and the volumes they read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistrySecurity {
    /// Flags after the common ones.
    pub args: Vec<String>,
    /// Pod volumes.
    pub volumes: Vec<Volume>,
    /// Container mounts.
    pub mounts: Vec<VolumeMount>,
    /// Whether the REST API is HTTPS.
    pub https: bool,
}

impl RegistrySecurity {
    fn add(&mut self, volume: Volume, dir: &str) {
        self.mounts.push(mount(volume.name.clone(), dir.to_owned()));
        self.volumes.push(volume);
    }
}

/// Renders the registry's security for `registry` reaching Kafka through `access`.
pub fn registry_security(
    registry: &SchemaRegistry,
    access: &KafkaAccess,
    names: &Names,
) -> RegistrySecurity {
    let mut out = RegistrySecurity::default();
    let cluster_ca = format!("{REGISTRY_CLUSTER_CA_DIR}/{CA_CERT_KEY}");
    let needs_cluster_ca = access.tls || registry.tls.is_some();
    if needs_cluster_ca {
        out.add(
            secret_volume(
                "cluster-ca".to_owned(),
                cluster_ca_name(&names.cluster),
                only_key(CA_CERT_KEY, CA_CERT_KEY),
            ),
            REGISTRY_CLUSTER_CA_DIR,
        );
    }
    if access.tls {
        out.args.push("--kafka-security-protocol=SSL".to_owned());
        out.args.push(format!("--kafka-ca={cluster_ca}"));
        if access.by_ip {
            out.args
                .push("--kafka-skip-hostname-verification".to_owned());
        }
    }
    let Some(tls) = &registry.tls else {
        return out;
    };
    out.https = true;
    let secret = tls
        .secret_name
        .clone()
        .unwrap_or_else(|| registry_tls_name(&names.cluster));
    out.add(
        secret_volume("registry-tls".to_owned(), secret, None),
        REGISTRY_TLS_DIR,
    );
    let mut client_cas = vec![cluster_ca];
    let authentication = registry
        .authentication
        .as_ref()
        .map_or(RegistryAuthenticationType::None, |a| a.type_);
    match authentication {
        RegistryAuthenticationType::None => {}
        RegistryAuthenticationType::Tls => {
            out.add(
                secret_volume(
                    "clients-ca".to_owned(),
                    clients_ca_name(&names.cluster),
                    only_key(CA_CERT_KEY, CA_CERT_KEY),
                ),
                REGISTRY_CLIENTS_CA_DIR,
            );
            client_cas.push(format!("{REGISTRY_CLIENTS_CA_DIR}/{CA_CERT_KEY}"));
            out.args.push("--authentication=tls".to_owned());
        }
        RegistryAuthenticationType::Basic => {
            let mut volume = secret_volume(
                "scram-credentials".to_owned(),
                scram_credentials_name(&names.cluster),
                only_key(SCRAM_CREDENTIALS_KEY, SCRAM_CREDENTIALS_KEY),
            );
            if let Some(source) = volume.secret.as_mut() {
                source.optional = Some(true);
            }
            out.add(volume, REGISTRY_SCRAM_DIR);
            out.args.push("--authentication=basic".to_owned());
            out.args.push(format!(
                "--scram-credentials={REGISTRY_SCRAM_DIR}/{SCRAM_CREDENTIALS_KEY}"
            ));
        }
    }
    out.args.extend([
        format!("--tls-cert={REGISTRY_TLS_DIR}/{TLS_CERT_KEY}"),
        format!("--tls-key={REGISTRY_TLS_DIR}/{TLS_KEY_KEY}"),
        format!("--tls-client-ca={}", client_cas.join(",")),
        format!("--forward-ca={REGISTRY_TLS_DIR}/{CA_CERT_KEY}"),
        format!(
            "--forward-server-name={}.{}.svc",
            registry_name(&names.cluster),
            names.namespace
        ),
    ]);
    out
}
