//! The security of a cluster's schema registry, rendered: how its pods reach the brokers and
//! how they serve (`spec.schemaRegistry.tls` and `authentication`): the flags, and the Secret
//! volumes and variables they read. Pure.
//!
//! The brokers are reached through one internal listener, the first of: plaintext, TLS only,
//! SASL SCRAM-SHA-512, mTLS (TLS only where the operator issues the brokers' certificate, so
//! the cluster CA verifies it; oauth listeners are not used). Where the listener authenticates
//! clients the registry logs in as the KafkaUser `<cluster>-schema-registry` the operator
//! creates for it ([`super::registry_user`]), with ACLs on its topic, its group and its
//! transactional id when the cluster has authorization.
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

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector, Volume, VolumeMount};
use tributary_crds::cluster::{ListenerType, SchemaRegistry};
use tributary_crds::listener::{AuthenticationType, Listener};
use tributary_crds::registration::{
    clients_ca_name, cluster_ca_name, scram_credentials_name, CA_CERT_KEY, SCRAM_CREDENTIALS_KEY,
};
use tributary_crds::schema_registry::{
    registry_name, registry_tls_name, RegistryAuthenticationType,
};
use tributary_crds::user::{PASSWORD_KEY, USER_CERT_KEY, USER_KEY_KEY};
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
/// Where the registry's KafkaUser certificate is mounted (mTLS listeners).
pub const REGISTRY_KAFKA_USER_DIR: &str = "/etc/tributary-tls/kafka-user";

/// How the registry logs in to the brokers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaLogin {
    /// It does not: the listener does not authenticate clients.
    None,
    /// SASL SCRAM-SHA-512 with its KafkaUser's password.
    Scram,
    /// Its KafkaUser's certificate from the clients CA.
    Certificate,
}

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
    /// How it logs in.
    pub login: KafkaLogin,
}

/// How well `l` suits the registry (lower first); `None` when it cannot use it.
fn suitability(l: &Listener) -> Option<(u8, KafkaLogin)> {
    if l.type_ != ListenerType::Internal || l.tls.as_ref().is_some_and(|t| t.secret_name.is_some())
    {
        return None;
    }
    let tls = u8::from(l.tls.is_some());
    match l.authentication.as_ref().map(|a| a.type_) {
        None => Some((tls, KafkaLogin::None)),
        Some(AuthenticationType::ScramSha512) => Some((2, KafkaLogin::Scram)),
        Some(AuthenticationType::Tls) => Some((3, KafkaLogin::Certificate)),
        Some(AuthenticationType::OAuth) => None,
    }
}

/// The listener the registry uses (see the module docs); why none fits otherwise.
pub fn kafka_access(cluster: &KafkaCluster, names: &Names) -> Result<KafkaAccess, String> {
    let chosen = cluster
        .spec
        .listeners
        .iter()
        .filter_map(|l| suitability(l).map(|(rank, login)| (rank, l, login)))
        .min_by_key(|(rank, _, _)| *rank);
    let Some((_, l, login)) = chosen else {
        return Err(
            "the schema registry connects to the brokers through an internal listener that is \
             plaintext, TLS, SCRAM-SHA-512 or mTLS with the operator-issued broker certificate, \
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
        login,
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
    /// Container environment (the Kafka password, from its Secret).
    pub env: Vec<EnvVar>,
    /// Whether the REST API is HTTPS.
    pub https: bool,
}

impl RegistrySecurity {
    fn add(&mut self, volume: Volume, dir: &str) {
        self.mounts.push(mount(volume.name.clone(), dir.to_owned()));
        self.volumes.push(volume);
    }
}

/// The flags, volume and variable of the registry's Kafka connection through `access`.
fn kafka_login(access: &KafkaAccess, names: &Names, cluster_ca: &str, out: &mut RegistrySecurity) {
    let protocol = match (access.tls, access.login) {
        (false, KafkaLogin::None) => return,
        (true, KafkaLogin::None | KafkaLogin::Certificate) => "SSL",
        (false, KafkaLogin::Scram) => "SASL_PLAINTEXT",
        (true, KafkaLogin::Scram) => "SASL_SSL",
        // An mTLS listener without TLS cannot exist; the certificate is unused then.
        (false, KafkaLogin::Certificate) => "PLAINTEXT",
    };
    out.args
        .push(format!("--kafka-security-protocol={protocol}"));
    if access.tls {
        out.args.push(format!("--kafka-ca={cluster_ca}"));
        if access.by_ip {
            out.args
                .push("--kafka-skip-hostname-verification".to_owned());
        }
    }
    let user = registry_name(&names.cluster);
    match access.login {
        KafkaLogin::None => {}
        KafkaLogin::Scram => {
            out.args
                .push("--kafka-sasl-mechanism=SCRAM-SHA-512".to_owned());
            out.args.push(format!("--kafka-sasl-username={user}"));
            out.env.push(EnvVar {
                name: "TRIBUTARY_REGISTRY_KAFKA_SASL_PASSWORD".to_owned(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: user,
                        key: PASSWORD_KEY.to_owned(),
                        ..SecretKeySelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            });
        }
        KafkaLogin::Certificate => {
            let mut volume = secret_volume("kafka-user".to_owned(), user, None);
            if let Some(source) = volume.secret.as_mut() {
                source.items = Some(
                    [USER_CERT_KEY, USER_KEY_KEY]
                        .iter()
                        .flat_map(|k| only_key(k, k).unwrap_or_default())
                        .collect(),
                );
            }
            out.add(volume, REGISTRY_KAFKA_USER_DIR);
            out.args.push(format!(
                "--kafka-cert={REGISTRY_KAFKA_USER_DIR}/{USER_CERT_KEY}"
            ));
            out.args.push(format!(
                "--kafka-key={REGISTRY_KAFKA_USER_DIR}/{USER_KEY_KEY}"
            ));
        }
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
    kafka_login(access, names, &cluster_ca, &mut out);
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
