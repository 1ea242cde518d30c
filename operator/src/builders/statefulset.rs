//! The broker StatefulSet: pod ordinal = broker id, one data volume per broker, probes on the
//! broker's health endpoints, zone spread, and a config-hash annotation that changes the pod
//! template when the config changes. Updates are `OnDelete`: the operator rolls the pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecurityContext, TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tributary_crds::cluster::{
    listener_dns_name, AdvertisedAddress, ListenerType, REPLICATION_LISTENER, REPLICATION_PORT,
};
use tributary_crds::KafkaCluster;

use super::security::{self, uses_replication_listener};
use super::{broker_registry, tiered};
use super::{
    Names, ADMIN_PORT, ADMIN_PORT_NAME, CONFIG_DIR, CONFIG_FILE, CONFIG_HASH_ANNOTATION, DATA_DIR,
};

/// Default spread key when no rack key is configured.
const ZONE_KEY: &str = "topology.kubernetes.io/zone";

pub(super) fn stateful_set(
    cluster: &KafkaCluster,
    names: &Names,
    config_hash: &str,
) -> StatefulSet {
    let spec = &cluster.spec;
    let retention = if spec.storage.delete_claim {
        "Delete"
    } else {
        "Retain"
    };
    StatefulSet {
        metadata: names.meta(names.broker()),
        spec: StatefulSetSpec {
            replicas: Some(spec.brokers),
            service_name: Some(names.headless()),
            // Brokers do not depend on each other to start; ordered start only slows recovery.
            pod_management_policy: Some("Parallel".to_owned()),
            selector: LabelSelector {
                match_labels: Some(names.selector_labels()),
                ..LabelSelector::default()
            },
            // The operator restarts brokers itself, one at a time, only when no partition
            // would fall below min.insync.replicas and the previous one is back in its ISRs
            // (crate::cluster::roll); the StatefulSet's RollingUpdate only waits for Ready.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_owned()),
                ..StatefulSetUpdateStrategy::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention.to_owned()),
                    // A scaled-down broker's data is kept so scaling back up does not re-replicate.
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            template: pod_template(cluster, names, config_hash),
            volume_claim_templates: Some(vec![data_claim(cluster)]),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

fn data_claim(cluster: &KafkaCluster) -> PersistentVolumeClaim {
    let storage = &cluster.spec.storage;
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn pod_template(cluster: &KafkaCluster, names: &Names, config_hash: &str) -> PodTemplateSpec {
    let spec = &cluster.spec;
    let overrides = spec.template.clone().unwrap_or_default();
    let mut labels = overrides.labels.clone();
    labels.extend(names.labels());
    let mut annotations = overrides.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.to_owned(), config_hash.to_owned());
    if spec.monitoring.metrics {
        annotations.insert("prometheus.io/scrape".to_owned(), "true".to_owned());
        annotations.insert("prometheus.io/port".to_owned(), ADMIN_PORT.to_string());
        annotations.insert("prometheus.io/path".to_owned(), "/metrics".to_owned());
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(names.broker()),
            termination_grace_period_seconds: Some(spec.termination_grace_period_seconds),
            security_context: Some(pod_hardened()),
            affinity: overrides.affinity.clone(),
            tolerations: (!overrides.tolerations.is_empty()).then(|| overrides.tolerations.clone()),
            node_selector: (!overrides.node_selector.is_empty())
                .then(|| overrides.node_selector.clone()),
            priority_class_name: overrides.priority_class_name.clone(),
            topology_spread_constraints: Some(spread(cluster, names)),
            containers: vec![broker_container(cluster, names)],
            volumes: Some(pod_volumes(cluster, names)),
            ..PodSpec::default()
        }),
    }
}

/// The config, scratch space, and (secured clusters only) the certificate and JWKS volumes.
fn pod_volumes(cluster: &KafkaCluster, names: &Names) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.config(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        // The root filesystem is read-only; scratch space lives here.
        Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    volumes.extend(security::volumes(cluster, names).0);
    volumes.extend(broker_registry::volumes(&cluster.spec).0);
    volumes.extend(tiered::volumes(&cluster.spec).0);
    volumes
}

/// One broker per node where possible, and across zones: strictly when rack awareness is on
/// (replica placement relies on it), best effort otherwise.
fn spread(cluster: &KafkaCluster, names: &Names) -> Vec<TopologySpreadConstraint> {
    let selector = LabelSelector {
        match_labels: Some(names.selector_labels()),
        ..LabelSelector::default()
    };
    let (zone_key, zone_mode) = match &cluster.spec.rack {
        Some(rack) => (rack.topology_key.clone(), "DoNotSchedule"),
        None => (ZONE_KEY.to_owned(), "ScheduleAnyway"),
    };
    vec![
        TopologySpreadConstraint {
            max_skew: 1,
            topology_key: zone_key,
            when_unsatisfiable: zone_mode.to_owned(),
            label_selector: Some(selector.clone()),
            ..TopologySpreadConstraint::default()
        },
        TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".to_owned(),
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
            label_selector: Some(selector),
            ..TopologySpreadConstraint::default()
        },
    ]
}

/// The pod-level hardening every pod of a cluster gets (Pod Security Standards' `restricted`
/// with `hardened`): the images' own non-root user, its group owning Secret and data volumes,
/// and the container runtime's default seccomp profile.
pub(super) fn pod_hardened() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(1000),
        fs_group: Some(1000),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The container hardening every pod of a cluster gets: no privilege escalation, a read-only
/// root filesystem, no capabilities.
pub(super) fn hardened() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// An env var holding a field of the pod (its name, IP, ...), for the brokers and the
/// schema registry alike.
pub(super) fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    http_probe(path, ADMIN_PORT_NAME, period, failures)
}

/// An HTTP GET probe of `path` on the container port named `port`, with a 5 s timeout.
pub(super) fn http_probe(path: &str, port: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(5),
        ..Probe::default()
    }
}

/// The broker's command line: the shared config file, plus what differs per pod. Every
/// listener and the HTTP endpoints bind the pod's IP (`$(POD_IP)`, which Kubernetes expands
/// from the env), not 0.0.0.0: probes, Prometheus and clients reach the pod there, and brokers
/// that share a host or network namespace do not collide. Each listener advertises the pod IP
/// or the pod's DNS name through the headless Service, as it asks.
fn broker_args(cluster: &KafkaCluster, names: &Names) -> Vec<String> {
    let endpoints = security::endpoints(&cluster.spec);
    let joined = |address: &dyn Fn(&security::Endpoint) -> String| {
        endpoints
            .iter()
            .map(|e| format!("{}://{}:{}", e.name, address(e), e.port))
            .collect::<Vec<_>>()
            .join(",")
    };
    let dns = format!("$(POD_NAME).{}.{}.svc", names.headless(), names.namespace);
    vec![
        "--config".to_owned(),
        format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        format!("--http-listener=$(POD_IP):{ADMIN_PORT}"),
        format!("--listeners={}", joined(&|_| "$(POD_IP)".to_owned())),
        format!(
            "--advertised-listeners={}",
            joined(&|e| match e.advertise {
                AdvertisedAddress::PodIp => "$(POD_IP)".to_owned(),
                AdvertisedAddress::Dns => dns.clone(),
            })
        ),
    ]
}

/// The per-pod values of the broker's settings; `HOST_IP` (what NodePort listeners
/// advertise) only when some listener is one, so other clusters' pods stay as they were.
fn broker_env(cluster: &KafkaCluster) -> Vec<EnvVar> {
    let mut env = vec![
        field_env(
            "BROKER_ID",
            "metadata.labels['apps.kubernetes.io/pod-index']",
        ),
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("NODE_NAME", "spec.nodeName"),
        field_env("POD_IP", "status.podIP"),
    ];
    if cluster
        .spec
        .listeners
        .iter()
        .any(|l| l.type_ == ListenerType::NodePort)
    {
        env.push(field_env("HOST_IP", "status.hostIP"));
    }
    env
}

fn broker_container(cluster: &KafkaCluster, names: &Names) -> Container {
    let spec = &cluster.spec;
    let mut ports: Vec<ContainerPort> = spec
        .listeners
        .iter()
        .map(|l| ContainerPort {
            name: Some(listener_dns_name(&l.name)),
            container_port: l.port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        })
        .collect();
    if uses_replication_listener(spec) {
        ports.push(ContainerPort {
            name: Some(REPLICATION_LISTENER.to_ascii_lowercase()),
            container_port: REPLICATION_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        });
    }
    ports.push(ContainerPort {
        name: Some(ADMIN_PORT_NAME.to_owned()),
        container_port: ADMIN_PORT,
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    });
    Container {
        name: "broker".to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().to_owned()),
        args: Some(broker_args(cluster, names)),
        env: Some(broker_env(cluster)),
        ports: Some(ports),
        resources: spec.resources.clone(),
        // Log recovery after a crash can take a while: the startup probe allows 10 minutes
        // before liveness starts counting.
        startup_probe: Some(probe("/healthz", 5, 120)),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        readiness_probe: Some(probe("/readyz", 5, 3)),
        security_context: Some(hardened()),
        volume_mounts: Some(container_mounts(cluster, names)),
        ..Container::default()
    }
}

/// The data, config and scratch mounts, then the security volumes' (read-only).
fn container_mounts(cluster: &KafkaCluster, names: &Names) -> Vec<VolumeMount> {
    let mut mounts = vec![
        VolumeMount {
            name: "data".to_owned(),
            mount_path: DATA_DIR.to_owned(),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "config".to_owned(),
            mount_path: CONFIG_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "tmp".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..VolumeMount::default()
        },
    ];
    mounts.extend(security::volumes(cluster, names).1);
    mounts.extend(broker_registry::volumes(&cluster.spec).1);
    mounts.extend(tiered::volumes(&cluster.spec).1);
    mounts
}
