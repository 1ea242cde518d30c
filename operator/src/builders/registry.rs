//! The schema registry of `KafkaCluster.spec.schemaRegistry`: a Deployment of
//! `tributary-schema-registry` pods (any serves reads; the holder of the Lease
//! `<cluster>-schema-registry` writes, the others forward writes to the URL it advertises),
//! the ClusterIP Service clients use, and the ServiceAccount, Role and RoleBinding that let the
//! pods hold that Lease. Pure: the cluster in, the objects (or why none) out.
//!
//! The registry is a Kafka client of the cluster through the first internal listener without
//! client authentication, over TLS when that listener has it; it serves HTTPS with basic or
//! mTLS authentication as `spec.schemaRegistry` asks ([`super::registry_security`]). A
//! cluster without a usable listener gets no registry, and a condition saying why, instead
//! of pods that could never connect.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, PodSpec, PodTemplateSpec, Probe, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tributary_crds::cluster::{registry_name, SchemaRegistry};
use tributary_crds::{KafkaCluster, KafkaUser, CLUSTER_LABEL};

use super::registry_security::{kafka_access, registry_security, KafkaAccess, RegistrySecurity};
use super::registry_user::registry_user;
use super::statefulset::{field_env, hardened, http_probe, pod_hardened};
use super::Names;

/// Name of the registry's HTTP port on its pods and Service.
pub const REGISTRY_PORT_NAME: &str = "http";
/// The `app.kubernetes.io/component` of the registry's objects.
pub const REGISTRY_COMPONENT: &str = "schema-registry";

/// The objects of a cluster's schema registry, in apply order.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistryObjects {
    /// Identity the registry pods run as.
    pub service_account: ServiceAccount,
    /// The Lease rights of the registry pods (the writer election).
    pub role: Role,
    /// Binds the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// The registry pods.
    pub deployment: Deployment,
    /// The Service clients (and KafkaSchemas) reach the registry through.
    pub service: Service,
    /// The KafkaUser it logs in to the brokers as, when its listener authenticates clients.
    pub user: Option<KafkaUser>,
}

/// What a cluster's spec asks of its schema registry.
#[derive(Clone, Debug, PartialEq)]
pub enum RegistryPlan {
    /// `spec.schemaRegistry` is unset: no registry (remove one that was there).
    Disabled,
    /// Asked for, but it could not work; the reason, for the status.
    Unsupported(String),
    /// Run it.
    Deploy(Box<RegistryObjects>),
}

/// Renders the schema registry `cluster` asks for.
pub fn schema_registry(cluster: &KafkaCluster, names: &Names) -> RegistryPlan {
    let Some(registry) = &cluster.spec.schema_registry else {
        return RegistryPlan::Disabled;
    };
    let access = match kafka_access(cluster, names) {
        Ok(access) => access,
        Err(why) => return RegistryPlan::Unsupported(why),
    };
    let security = registry_security(registry, &access, names);
    RegistryPlan::Deploy(Box::new(RegistryObjects {
        service_account: ServiceAccount {
            metadata: meta(names),
            ..ServiceAccount::default()
        },
        role: role(names),
        role_binding: role_binding(names),
        deployment: deployment(cluster, registry, names, &access, &security),
        service: service(registry, names),
        user: registry_user(cluster, registry, &access, names),
    }))
}

/// Labels selecting the registry's pods (never change: the selector is immutable).
pub fn selector_labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "tributary".to_owned()),
        (
            "app.kubernetes.io/instance".to_owned(),
            names.cluster.clone(),
        ),
        (
            "app.kubernetes.io/component".to_owned(),
            REGISTRY_COMPONENT.to_owned(),
        ),
    ])
}

fn labels(names: &Names) -> BTreeMap<String, String> {
    let mut l = selector_labels(names);
    l.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        crate::FIELD_MANAGER.to_owned(),
    );
    l.insert(CLUSTER_LABEL.to_owned(), names.cluster.clone());
    l
}

pub(super) fn meta(names: &Names) -> ObjectMeta {
    ObjectMeta {
        name: Some(registry_name(&names.cluster)),
        namespace: Some(names.namespace.clone()),
        labels: Some(labels(names)),
        owner_references: Some(vec![names.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// Leases only: the writer election creates, reads, renews and takes over
/// `<cluster>-schema-registry` (RBAC cannot limit creation to a name, so nothing is limited).
fn role(names: &Names) -> Role {
    Role {
        metadata: meta(names),
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec!["coordination.k8s.io".to_owned()]),
                resources: Some(vec!["leases".to_owned()]),
                verbs: ["get", "list", "watch", "create", "update", "patch"]
                    .iter()
                    .map(|v| (*v).to_owned())
                    .collect(),
                ..PolicyRule::default()
            },
            // The cluster's status lists the addresses to bootstrap from.
            PolicyRule {
                api_groups: Some(vec!["tributary.dev".to_owned()]),
                resources: Some(vec!["kafkaclusters".to_owned()]),
                resource_names: Some(vec![names.cluster.clone()]),
                verbs: vec!["get".to_owned()],
                ..PolicyRule::default()
            },
        ]),
    }
}

fn role_binding(names: &Names) -> RoleBinding {
    let name = registry_name(&names.cluster);
    RoleBinding {
        metadata: meta(names),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name,
            namespace: Some(names.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

fn service(registry: &SchemaRegistry, names: &Names) -> Service {
    Service {
        metadata: meta(names),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(names)),
            ports: Some(vec![ServicePort {
                name: Some(REGISTRY_PORT_NAME.to_owned()),
                port: registry.port,
                target_port: Some(IntOrString::String(REGISTRY_PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The registry's command line: the cluster's plaintext bootstrap (read from the listener's
/// addresses in the KafkaCluster's status, which also reach brokers advertising pod IPs
/// where Service names do not resolve), the topic, the Lease of the writer election, and the
/// URL other pods forward writes to. The REST listener binds the
/// pod's IP (`$(POD_IP)`, which Kubernetes expands from the env), as the brokers' listeners
/// do, rather than 0.0.0.0: probes and the Service reach the pod there, and registry pods
/// that share a host's network (the local control plane runs pods as processes on
/// 127.0.0.x) do not collide on the port.
fn args(
    registry: &SchemaRegistry,
    names: &Names,
    access: &KafkaAccess,
    security: &RegistrySecurity,
) -> Vec<String> {
    let scheme = if security.https { "https" } else { "http" };
    let mut args = vec![
        format!("--bootstrap={}", access.bootstrap),
        format!("--cluster={}/{}", names.namespace, names.cluster),
        format!("--cluster-listener={}", access.listener),
        format!("--listener=$(POD_IP):{}", registry.port),
        format!("--topic={}", registry.topic),
        format!(
            "--lease={}/{}",
            names.namespace,
            registry_name(&names.cluster)
        ),
        format!("--advertised-url={scheme}://$(POD_IP):{}", registry.port),
    ];
    args.extend(security.args.iter().cloned());
    args
}

/// `GET /` answers `{}` once the registry has replayed its topic and listens (open in every
/// authentication mode; over HTTPS when the registry serves it).
fn probe(period: i32, failures: i32, https: bool) -> Probe {
    let mut probe = http_probe("/", REGISTRY_PORT_NAME, period, failures);
    if let Some(get) = probe.http_get.as_mut().filter(|_| https) {
        get.scheme = Some("HTTPS".to_owned());
    }
    probe
}

fn container(
    registry: &SchemaRegistry,
    names: &Names,
    access: &KafkaAccess,
    security: &RegistrySecurity,
) -> Container {
    let https = security.https;
    let mut mounts = vec![VolumeMount {
        name: "tmp".to_owned(),
        mount_path: "/tmp".to_owned(),
        ..VolumeMount::default()
    }];
    mounts.extend(security.mounts.iter().cloned());
    Container {
        name: "schema-registry".to_owned(),
        image: Some(registry.image().to_owned()),
        image_pull_policy: None,
        args: Some(args(registry, names, access, security)),
        env: Some(
            [
                field_env("POD_NAME", "metadata.name"),
                field_env("POD_NAMESPACE", "metadata.namespace"),
                field_env("POD_IP", "status.podIP"),
            ]
            .into_iter()
            .chain(security.env.iter().cloned())
            .collect(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some(REGISTRY_PORT_NAME.to_owned()),
            container_port: registry.port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        resources: registry.resources.clone(),
        // Start-up replays the whole topic before listening (the registry allows itself two
        // minutes): the startup probe waits that long before liveness starts counting.
        startup_probe: Some(probe(5, 30, https)),
        liveness_probe: Some(probe(10, 3, https)),
        readiness_probe: Some(probe(5, 2, https)),
        security_context: Some(hardened()),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn deployment(
    cluster: &KafkaCluster,
    registry: &SchemaRegistry,
    names: &Names,
    access: &KafkaAccess,
    security: &RegistrySecurity,
) -> Deployment {
    let mut annotations = BTreeMap::new();
    if cluster.spec.monitoring.metrics {
        annotations.insert("prometheus.io/scrape".to_owned(), "true".to_owned());
        if security.https {
            annotations.insert("prometheus.io/scheme".to_owned(), "https".to_owned());
        }
        annotations.insert("prometheus.io/port".to_owned(), registry.port.to_string());
        annotations.insert("prometheus.io/path".to_owned(), "/metrics".to_owned());
    }
    let image_pull_policy = cluster.spec.image_pull_policy.as_str().to_owned();
    let mut container = container(registry, names, access, security);
    let mut volumes = vec![Volume {
        name: "tmp".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    volumes.extend(security.volumes.iter().cloned());
    container.image_pull_policy = Some(image_pull_policy);
    Deployment {
        metadata: meta(names),
        spec: DeploymentSpec {
            replicas: Some(registry.replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(names)),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(registry_name(&names.cluster)),
                    // Secret volumes are readable by the pod's group only.
                    security_context: Some(pod_hardened()),
                    containers: vec![container],
                    // The root filesystem is read-only; librdkafka's scratch space lives in
                    // `tmp`; the others hold certificates and credentials.
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::builders::test_cluster as cluster;

    fn deploy(c: &KafkaCluster) -> RegistryObjects {
        let names = Names::of(c).unwrap_or_else(|e| panic!("{e}"));
        match schema_registry(c, &names) {
            RegistryPlan::Deploy(o) => *o,
            other => panic!("expected a registry, got {other:?}"),
        }
    }

    fn container_of(o: &RegistryObjects) -> &Container {
        let spec = o.deployment.spec.template.spec.as_ref();
        spec.and_then(|s| s.containers.first())
            .unwrap_or_else(|| panic!("no container"))
    }

    #[test]
    fn no_registry_without_the_field() {
        let c = cluster(json!({}));
        let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(schema_registry(&c, &names), RegistryPlan::Disabled);
    }

    #[test]
    fn the_deployment_runs_the_registry_against_the_bootstrap_with_its_lease() {
        let o = deploy(&cluster(json!({"schemaRegistry": {"replicas": 2}})));
        let d = &o.deployment;
        assert_eq!(d.metadata.name.as_deref(), Some("demo-schema-registry"));
        assert_eq!(d.spec.replicas, Some(2));
        let c = container_of(&o);
        assert_eq!(
            c.image.as_deref(),
            Some(tributary_crds::cluster::DEFAULT_REGISTRY_IMAGE)
        );
        assert_eq!(
            c.args.clone().unwrap_or_default(),
            vec![
                "--bootstrap=demo-bootstrap.kafka.svc:9092",
                "--cluster=kafka/demo",
                "--cluster-listener=PLAIN",
                "--listener=$(POD_IP):8081",
                "--topic=_schemas",
                "--lease=kafka/demo-schema-registry",
                "--advertised-url=http://$(POD_IP):8081",
            ]
        );
        let env: Vec<_> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert!(env.contains(&"POD_IP"), "{env:?}");
        let spec = d.spec.template.spec.as_ref();
        assert_eq!(
            spec.and_then(|s| s.service_account_name.as_deref()),
            Some("demo-schema-registry")
        );
    }

    #[test]
    fn probes_ask_the_registry_root_on_the_http_port() {
        let o = deploy(&cluster(
            json!({"schemaRegistry": {"port": 8085, "image": "r:2"}}),
        ));
        let c = container_of(&o);
        assert_eq!(c.image.as_deref(), Some("r:2"));
        for probe in [&c.readiness_probe, &c.liveness_probe, &c.startup_probe] {
            let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
            assert_eq!(get.and_then(|g| g.path.as_deref()), Some("/"));
            assert_eq!(
                get.map(|g| g.port.clone()),
                Some(IntOrString::String("http".into()))
            );
        }
        let ports = c.ports.clone().unwrap_or_default();
        assert_eq!(ports[0].container_port, 8085);
        let svc = o.service.spec.clone().unwrap_or_default();
        let port = svc.ports.unwrap_or_default();
        assert_eq!(
            (port[0].port, port[0].name.as_deref()),
            (8085, Some("http"))
        );
        assert_eq!(
            svc.selector,
            Some(selector_labels(
                &Names::of(&cluster(json!({}))).unwrap_or_else(|e| panic!("{e}"))
            ))
        );
    }

    #[test]
    fn every_object_is_owned_by_the_cluster_and_labelled_with_it() {
        let o = deploy(&cluster(json!({"schemaRegistry": {}})));
        let metas = [
            &o.service_account.metadata,
            &o.role.metadata,
            &o.role_binding.metadata,
            &o.deployment.metadata,
            &o.service.metadata,
        ];
        for m in metas {
            assert_eq!(m.name.as_deref(), Some("demo-schema-registry"));
            assert_eq!(m.namespace.as_deref(), Some("kafka"));
            let owner = m.owner_references.clone().unwrap_or_default();
            assert_eq!(owner.len(), 1);
            assert_eq!(
                (owner[0].kind.as_str(), owner[0].uid.as_str()),
                ("KafkaCluster", "u-1")
            );
            assert_eq!(owner[0].controller, Some(true));
            let labels = m.labels.clone().unwrap_or_default();
            assert_eq!(labels.get(CLUSTER_LABEL).map(String::as_str), Some("demo"));
            assert_eq!(
                labels
                    .get("app.kubernetes.io/component")
                    .map(String::as_str),
                Some("schema-registry")
            );
        }
    }

    #[test]
    fn the_role_lets_the_pods_hold_leases_and_read_their_cluster_and_nothing_else() {
        let o = deploy(&cluster(json!({"schemaRegistry": {}})));
        let rules = o.role.rules.clone().unwrap_or_default();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].resources, Some(vec!["leases".to_owned()]));
        assert_eq!(
            rules[0].verbs,
            vec!["get", "list", "watch", "create", "update", "patch"]
        );
        assert_eq!(rules[1].resources, Some(vec!["kafkaclusters".to_owned()]));
        assert_eq!(rules[1].resource_names, Some(vec!["demo".to_owned()]));
        assert_eq!(rules[1].verbs, vec!["get"]);
        let subjects = o.role_binding.subjects.clone().unwrap_or_default();
        assert_eq!(subjects[0].name, "demo-schema-registry");
        assert_eq!(subjects[0].namespace.as_deref(), Some("kafka"));
        assert_eq!(o.role_binding.role_ref.name, "demo-schema-registry");
    }

    #[test]
    fn the_registry_bootstraps_through_the_first_plaintext_internal_listener() {
        let o = deploy(&cluster(json!({
            "schemaRegistry": {},
            "listeners": [
                {"name": "TLS", "port": 9093, "tls": {}},
                {"name": "PLAIN", "port": 9095},
            ],
        })));
        let args = container_of(&o).args.clone().unwrap_or_default();
        assert_eq!(args[0], "--bootstrap=demo-bootstrap.kafka.svc:9095");
        assert_eq!(args[2], "--cluster-listener=PLAIN");
    }

    #[test]
    fn a_cluster_with_only_oauth_or_foreign_certificate_listeners_gets_no_registry_but_a_reason() {
        let c = cluster(json!({
            "schemaRegistry": {},
            "listeners": [
                {"name": "OAUTH", "port": 9093, "tls": {}, "authentication": {"type": "oauth", "jwksConfigMap": {"name": "jwks", "key": "jwks.json"}}},
                {"name": "OWN", "port": 9094, "tls": {"secretName": "mine"}},
            ],
        }));
        let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
        let RegistryPlan::Unsupported(why) = schema_registry(&c, &names) else {
            panic!("expected Unsupported");
        };
        assert!(
            why.contains("plaintext, TLS, SCRAM-SHA-512 or mTLS"),
            "{why}"
        );
    }

    fn volumes_of(o: &RegistryObjects) -> Vec<Volume> {
        let spec = o.deployment.spec.template.spec.as_ref();
        spec.and_then(|s| s.volumes.clone()).unwrap_or_default()
    }

    fn secret_of<'a>(
        volumes: &'a [Volume],
        name: &str,
    ) -> &'a k8s_openapi::api::core::v1::SecretVolumeSource {
        volumes
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.secret.as_ref())
            .unwrap_or_else(|| panic!("no Secret volume {name} in {volumes:?}"))
    }

    #[test]
    fn a_tls_listener_is_reached_trusting_the_cluster_ca_only() {
        let o = deploy(&cluster(json!({
            "schemaRegistry": {},
            "listeners": [{"name": "TLS", "port": 9093, "tls": {}, "advertise": "PodIP"}],
        })));
        let args = container_of(&o).args.clone().unwrap_or_default();
        for wanted in [
            "--cluster-listener=TLS",
            "--kafka-security-protocol=SSL",
            "--kafka-ca=/etc/tributary-tls/cluster-ca/ca.crt",
            "--kafka-skip-hostname-verification",
            "--advertised-url=http://$(POD_IP):8081",
        ] {
            assert!(args.iter().any(|a| a == wanted), "{wanted} not in {args:?}");
        }
        let volumes = volumes_of(&o);
        let ca = secret_of(&volumes, "cluster-ca");
        assert_eq!(ca.secret_name.as_deref(), Some("demo-cluster-ca"));
        let items = ca.items.clone().unwrap_or_default();
        assert_eq!(
            items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
            vec!["ca.crt"],
            "the CA key is never mounted"
        );
    }

    #[test]
    fn https_with_basic_auth_mounts_the_certificate_and_the_scram_document() {
        let o = deploy(&cluster(json!({
            "schemaRegistry": {"tls": {}, "authentication": {"type": "basic"}},
        })));
        let c = container_of(&o);
        let args = c.args.clone().unwrap_or_default();
        for wanted in [
            "--advertised-url=https://$(POD_IP):8081",
            "--authentication=basic",
            "--scram-credentials=/etc/tributary-scram/credentials.json",
            "--tls-cert=/etc/tributary-tls/registry/tls.crt",
            "--tls-key=/etc/tributary-tls/registry/tls.key",
            "--tls-client-ca=/etc/tributary-tls/cluster-ca/ca.crt",
            "--forward-ca=/etc/tributary-tls/registry/ca.crt",
            "--forward-server-name=demo-schema-registry.kafka.svc",
        ] {
            assert!(args.iter().any(|a| a == wanted), "{wanted} not in {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--kafka-")), "{args:?}");
        let volumes = volumes_of(&o);
        assert_eq!(
            secret_of(&volumes, "registry-tls").secret_name.as_deref(),
            Some("demo-schema-registry-tls")
        );
        let scram = secret_of(&volumes, "scram-credentials");
        assert_eq!(scram.secret_name.as_deref(), Some("demo-scram-credentials"));
        assert_eq!(scram.optional, Some(true));
        let mounts = c.volume_mounts.clone().unwrap_or_default();
        for v in &volumes {
            assert!(
                mounts.iter().any(|m| m.name == v.name),
                "{} unmounted",
                v.name
            );
        }
        for probe in [&c.readiness_probe, &c.liveness_probe, &c.startup_probe] {
            let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
            assert_eq!(get.and_then(|g| g.scheme.as_deref()), Some("HTTPS"));
        }
        let pod = o.deployment.spec.template.spec.as_ref();
        let group = pod
            .and_then(|p| p.security_context.as_ref())
            .and_then(|s| s.fs_group);
        assert_eq!(
            group,
            Some(1000),
            "the Secret files are readable by the pod's group"
        );
    }

    #[test]
    fn mtls_trusts_the_clients_ca_beside_the_cluster_ca_and_a_named_secret_serves() {
        let o = deploy(&cluster(json!({
            "schemaRegistry": {"tls": {"secretName": "my-cert"}, "authentication": {"type": "tls"}},
        })));
        let args = container_of(&o).args.clone().unwrap_or_default();
        assert!(
            args.contains(&"--authentication=tls".to_owned()),
            "{args:?}"
        );
        assert!(
            args.contains(
                &"--tls-client-ca=/etc/tributary-tls/cluster-ca/ca.crt,/etc/tributary-tls/clients-ca/ca.crt"
                    .to_owned()
            ),
            "{args:?}"
        );
        let volumes = volumes_of(&o);
        assert_eq!(
            secret_of(&volumes, "registry-tls").secret_name.as_deref(),
            Some("my-cert")
        );
        assert_eq!(
            secret_of(&volumes, "clients-ca").secret_name.as_deref(),
            Some("demo-clients-ca")
        );
    }

    #[test]
    fn a_scram_listener_gets_the_registry_its_own_kafka_user_with_acls_for_what_it_does() {
        let o = deploy(&cluster(json!({
            "schemaRegistry": {"topic": "_schemas_x"},
            "authorization": {"type": "simple"},
            "listeners": [{"name": "SCRAM", "port": 9093, "tls": {}, "authentication": {"type": "scram-sha-512"}}],
        })));
        let c = container_of(&o);
        let args = c.args.clone().unwrap_or_default();
        for wanted in [
            "--kafka-security-protocol=SASL_SSL",
            "--kafka-sasl-mechanism=SCRAM-SHA-512",
            "--kafka-sasl-username=demo-schema-registry",
            "--kafka-ca=/etc/tributary-tls/cluster-ca/ca.crt",
        ] {
            assert!(args.iter().any(|a| a == wanted), "{wanted} not in {args:?}");
        }
        let password = c
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "TRIBUTARY_REGISTRY_KAFKA_SASL_PASSWORD")
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.secret_key_ref.as_ref())
            .map(|r| (r.name.as_str(), r.key.as_str()));
        assert_eq!(password, Some(("demo-schema-registry", "password")));
        let user = o.user.clone().unwrap_or_else(|| panic!("no KafkaUser"));
        assert_eq!(user.metadata.name.as_deref(), Some("demo-schema-registry"));
        let labels = user.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(CLUSTER_LABEL).map(String::as_str), Some("demo"));
        let spec = serde_json::to_value(&user.spec).unwrap_or_default();
        assert_eq!(spec["authentication"]["type"], "scram-sha-512");
        let acls: Vec<(String, String, Vec<String>)> = spec["authorization"]["acls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["resource"]["type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["resource"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    serde_json::from_value(a["operations"].clone()).unwrap_or_default(),
                )
            })
            .collect();
        let ops = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            acls,
            vec![
                (
                    "topic".to_owned(),
                    "_schemas_x".to_owned(),
                    ops(&["Create", "Describe", "DescribeConfigs", "Read", "Write"])
                ),
                (
                    "group".to_owned(),
                    "tributary-schema-registry".to_owned(),
                    ops(&["Describe", "Read"])
                ),
                (
                    "transactionalId".to_owned(),
                    "tributary-schema-registry-_schemas_x".to_owned(),
                    ops(&["Describe", "Write"])
                ),
            ]
        );
    }

    #[test]
    fn an_mtls_listener_is_reached_with_the_kafka_users_certificate_and_no_acls_without_authorization(
    ) {
        let o = deploy(&cluster(json!({
            "schemaRegistry": {},
            "listeners": [{"name": "MTLS", "port": 9093, "tls": {}, "authentication": {"type": "tls"}}],
        })));
        let args = container_of(&o).args.clone().unwrap_or_default();
        for wanted in [
            "--kafka-security-protocol=SSL",
            "--kafka-cert=/etc/tributary-tls/kafka-user/user.crt",
            "--kafka-key=/etc/tributary-tls/kafka-user/user.key",
        ] {
            assert!(args.iter().any(|a| a == wanted), "{wanted} not in {args:?}");
        }
        let volumes = volumes_of(&o);
        let user_secret = secret_of(&volumes, "kafka-user");
        assert_eq!(
            user_secret.secret_name.as_deref(),
            Some("demo-schema-registry")
        );
        let keys: Vec<_> = user_secret
            .items
            .iter()
            .flatten()
            .map(|i| i.key.as_str())
            .collect();
        assert_eq!(keys, vec!["user.crt", "user.key"]);
        let user = o.user.clone().unwrap_or_else(|| panic!("no KafkaUser"));
        let spec = serde_json::to_value(&user.spec).unwrap_or_default();
        assert_eq!(spec["authentication"]["type"], "tls");
        assert!(spec.get("authorization").is_none(), "{spec}");
        // A plaintext listener needs no user.
        let plain = deploy(&cluster(json!({"schemaRegistry": {}})));
        assert_eq!(plain.user, None);
    }

    #[test]
    fn metrics_annotations_follow_the_cluster_monitoring() {
        let o = deploy(&cluster(json!({"schemaRegistry": {}})));
        let annotations = o
            .deployment
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default();
        assert_eq!(
            annotations.get("prometheus.io/port").map(String::as_str),
            Some("8081")
        );
        let quiet = deploy(&cluster(
            json!({"schemaRegistry": {}, "monitoring": {"metrics": false}}),
        ));
        let none = quiet
            .deployment
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone());
        assert_eq!(none, None);
    }
}
