//! How the brokers reach their cluster's schema registry for schema validation: the settings
//! of Confluent Server's registry client in `server.properties`, and the volume they read.
//! Pure.
//!
//! - Plain HTTP: the URL only.
//! - `tls`: `https://`, trusting the CA of the registry's certificate: the cluster CA (which
//!   the brokers' own certificate Secret carries) when the operator issues it, else the
//!   `ca.crt` of the Secret `tls.secretName` names, mounted alone (never its key), as the
//!   registry's own instances trust it when they forward writes.
//! - `authentication` `basic` or `tls`: the brokers present their own certificate, which the
//!   cluster CA signs; the registry admits certificates of the cluster CA in every mode, so the
//!   brokers need no password and no KafkaUser of their own.
//!
//! The certificate files are read again when they change, so renewals need no restart.

use k8s_openapi::api::core::v1::{Volume, VolumeMount};
use tributary_crds::cluster::SchemaRegistry;
use tributary_crds::registration::CA_CERT_KEY;
use tributary_crds::schema_registry::{registry_url, RegistryAuthenticationType};
use tributary_crds::{KafkaCluster, KafkaClusterSpec};

use super::registry_security::operator_issues_certificate;
use super::security::{
    mount, only_key, secret_volume, BROKER_CERTS_DIR, TLS_CERT_KEY, TLS_KEY_KEY,
};
use super::Names;

/// Where a user-provided registry certificate's CA (`ca.crt` only) is mounted on brokers.
pub const REGISTRY_CA_DIR: &str = "/etc/tributary-tls/registry-ca";
/// Name of that volume.
const REGISTRY_CA_VOLUME: &str = "registry-ca";

/// Whether the brokers need the operator's broker certificate to reach the registry: its CA
/// bundle is the trust store of an operator-issued registry certificate, and it is the
/// brokers' identity where the registry authenticates.
pub fn needs_broker_certificate(spec: &KafkaClusterSpec) -> bool {
    spec.schema_registry
        .as_ref()
        .is_some_and(|r| operator_issues_certificate(r) || authenticates(r))
}

fn authenticates(registry: &SchemaRegistry) -> bool {
    registry
        .authentication
        .as_ref()
        .is_some_and(|a| a.type_ != RegistryAuthenticationType::None)
}

/// The `confluent.*` settings that point the brokers at the cluster's registry, by key; none
/// without `spec.schemaRegistry`.
pub fn properties(cluster: &KafkaCluster, names: &Names) -> Vec<(&'static str, String)> {
    let Some(registry) = &cluster.spec.schema_registry else {
        return Vec::new();
    };
    let tls = registry.tls.is_some();
    let mut props = vec![(
        "confluent.schema.registry.url",
        registry_url(&names.cluster, &names.namespace, registry.port, tls),
    )];
    if !tls {
        return props;
    }
    let trust_dir = if operator_issues_certificate(registry) {
        BROKER_CERTS_DIR
    } else {
        REGISTRY_CA_DIR
    };
    props.push((
        "confluent.ssl.truststore.location",
        format!("{trust_dir}/{CA_CERT_KEY}"),
    ));
    if authenticates(registry) {
        props.push((
            "confluent.ssl.keystore.location",
            format!("{BROKER_CERTS_DIR}/{TLS_CERT_KEY}"),
        ));
        props.push((
            "confluent.ssl.keystore.key.location",
            format!("{BROKER_CERTS_DIR}/{TLS_KEY_KEY}"),
        ));
    }
    props
}

/// The volume and mount of a user-provided registry certificate's CA; none otherwise (the
/// broker certificate's volume is mounted by [`super::security::volumes`]).
pub fn volumes(spec: &KafkaClusterSpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let secret = spec
        .schema_registry
        .as_ref()
        .and_then(|r| r.tls.as_ref())
        .and_then(|t| t.secret_name.clone());
    let Some(secret) = secret else {
        return (Vec::new(), Vec::new());
    };
    let volume = secret_volume(
        REGISTRY_CA_VOLUME.to_owned(),
        secret,
        only_key(CA_CERT_KEY, CA_CERT_KEY),
    );
    let mount = mount(REGISTRY_CA_VOLUME.to_owned(), REGISTRY_CA_DIR.to_owned());
    (vec![volume], vec![mount])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::builders::test_cluster as cluster;

    fn settings(registry: serde_json::Value) -> (Vec<(&'static str, String)>, KafkaCluster) {
        let c = cluster(json!({ "schemaRegistry": registry }));
        let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
        (properties(&c, &names), c)
    }

    fn lines(c: &KafkaCluster) -> String {
        let names = Names::of(c).unwrap_or_else(|e| panic!("{e}"));
        super::super::server_properties(c, &names)
    }

    #[test]
    fn a_plain_registry_is_its_url_alone() {
        let (props, c) = settings(json!({}));
        let url = "http://demo-schema-registry.kafka.svc:8081";
        assert_eq!(
            props,
            vec![("confluent.schema.registry.url", url.to_owned())]
        );
        assert!(lines(&c).contains(&format!("confluent.schema.registry.url={url}\n")));
        assert!(!needs_broker_certificate(&c.spec));
        assert_eq!(volumes(&c.spec), (Vec::new(), Vec::new()));
        let none = cluster(json!({}));
        let names = Names::of(&none).unwrap_or_else(|e| panic!("{e}"));
        assert!(properties(&none, &names).is_empty());
        assert!(!lines(&none).contains("confluent."));
    }

    #[test]
    fn an_operator_issued_certificate_is_trusted_through_the_cluster_ca() {
        let (props, c) = settings(json!({"tls": {}}));
        assert_eq!(
            props,
            vec![
                (
                    "confluent.schema.registry.url",
                    "https://demo-schema-registry.kafka.svc:8081".to_owned()
                ),
                (
                    "confluent.ssl.truststore.location",
                    "/etc/tributary-tls/broker/ca.crt".to_owned()
                ),
            ]
        );
        assert!(needs_broker_certificate(&c.spec));
        assert!(super::super::security::needs_broker_certificate(&c.spec));
        let text = lines(&c);
        assert!(
            text.contains("confluent.ssl.truststore.location=/etc/tributary-tls/broker/ca.crt\n")
        );
        assert!(!text.contains("confluent.ssl.keystore"), "{text}");
    }

    #[test]
    fn an_authenticating_registry_gets_the_broker_certificate_as_identity() {
        for mode in ["basic", "tls"] {
            let (props, c) = settings(json!({"tls": {}, "authentication": {"type": mode}}));
            let keys: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
            assert_eq!(
                keys,
                [
                    "confluent.schema.registry.url",
                    "confluent.ssl.truststore.location",
                    "confluent.ssl.keystore.location",
                    "confluent.ssl.keystore.key.location"
                ],
                "{mode}"
            );
            assert_eq!(props[2].1, "/etc/tributary-tls/broker/tls.crt");
            assert_eq!(props[3].1, "/etc/tributary-tls/broker/tls.key");
            assert!(super::super::security::needs_broker_certificate(&c.spec));
        }
    }

    #[test]
    fn a_user_certificate_is_trusted_through_its_own_ca_mounted_without_its_key() {
        let (props, c) = settings(json!({"tls": {"secretName": "my-registry-tls"}}));
        assert_eq!(
            props[1],
            (
                "confluent.ssl.truststore.location",
                "/etc/tributary-tls/registry-ca/ca.crt".to_owned()
            )
        );
        // Nothing of the broker certificate is needed for it.
        assert!(!needs_broker_certificate(&c.spec));
        let (volumes, mounts) = volumes(&c.spec);
        let secret = volumes[0]
            .secret
            .as_ref()
            .unwrap_or_else(|| panic!("a Secret volume"));
        assert_eq!(secret.secret_name.as_deref(), Some("my-registry-tls"));
        let items = secret.items.as_deref().unwrap_or_default();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, "ca.crt");
        assert_eq!(mounts[0].mount_path, REGISTRY_CA_DIR);
        assert_eq!(mounts[0].read_only, Some(true));
        // The StatefulSet mounts it.
        let objects = crate::builders::build(&c).unwrap_or_else(|e| panic!("{e}"));
        let template = objects.stateful_set.spec.template;
        let pod = template.spec.unwrap_or_else(|| panic!("a pod template"));
        assert!(pod
            .volumes
            .iter()
            .flatten()
            .any(|v| v.name == "registry-ca"));
        let mounted = pod.containers[0].volume_mounts.iter().flatten();
        assert!(mounted.clone().any(|m| m.mount_path == REGISTRY_CA_DIR));
    }
}
