//! Golden files: the exact objects a KafkaCluster renders to, for a human to review.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p tributary-operator --test integration golden::`.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::StatefulSet;
use tributary_crds::KafkaCluster;
use tributary_operator::builders::{
    acls, build, dynamic_configs, network_policy, producer_ids, scram_credentials, ClusterObjects,
    Names, CONFIG_FILE, CONFIG_HASH_ANNOTATION,
};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A KafkaCluster as the API server would hand it over (namespace and uid set).
pub(super) fn stored(yaml: &str) -> KafkaCluster {
    let mut c: KafkaCluster =
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad fixture: {e}"));
    c.metadata.namespace = Some("streaming".to_owned());
    c.metadata.uid = Some("0b5e2c1e-6f1a-4c3e-9d2b-7a8f9e0d1c2b".to_owned());
    c
}

fn example_cluster() -> KafkaCluster {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kafka-cluster.yaml");
    stored(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
}

fn secured_cluster() -> KafkaCluster {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kafka-cluster-secured.yaml");
    stored(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
}

fn minimal_cluster() -> KafkaCluster {
    stored("apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: mini}\nspec: {brokers: 1}\n")
}

/// Two brokers with an internal listener, a NodePort listener (one broker's node port and
/// advertised address fixed) and a LoadBalancer listener.
fn external_cluster() -> KafkaCluster {
    stored(
        "apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: edge}
spec:
  brokers: 2
  listeners:
    - {name: PLAIN, port: 9092}
    - name: NODEPORT
      port: 9094
      type: nodeport
      configuration:
        bootstrap: {nodePort: 32100}
        brokers:
          - {broker: 1, nodePort: 32001, advertisedHost: kafka-1.example.com, advertisedPort: 443}
    - name: LB
      port: 9095
      type: loadbalancer
      configuration:
        bootstrap:
          annotations: {service.beta.kubernetes.io/aws-load-balancer-type: nlb}
",
    )
}

/// Appends `obj` to `out` as one YAML document of `kind` in `api`.
pub(super) fn doc<T: serde::Serialize>(out: &mut String, kind: &str, api: &str, obj: &T) {
    let mut value = serde_json::to_value(obj).unwrap_or_else(|e| panic!("serialize {kind}: {e}"));
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), api.into());
        map.insert("kind".into(), kind.into());
    }
    let yaml = serde_yaml::to_string(&value).unwrap_or_else(|e| panic!("yaml {kind}: {e}"));
    out.push_str("---\n");
    out.push_str(&yaml);
}

/// Every object of `c`: the applied children and the producer-id ConfigMap created once.
pub(super) fn render_cluster(c: &KafkaCluster) -> String {
    let mut out = render(&built(c));
    let names = Names::of(c).unwrap_or_else(|e| panic!("{e}"));
    doc(&mut out, "ConfigMap", "v1", &producer_ids(&names));
    doc(&mut out, "ConfigMap", "v1", &acls(&names));
    doc(&mut out, "ConfigMap", "v1", &dynamic_configs(&names));
    doc(&mut out, "Secret", "v1", &scram_credentials(&names));
    out
}

fn render(objects: &ClusterObjects) -> String {
    let mut out = String::new();
    doc(&mut out, "ServiceAccount", "v1", &objects.service_account);
    doc(
        &mut out,
        "Role",
        "rbac.authorization.k8s.io/v1",
        &objects.role,
    );
    doc(
        &mut out,
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        &objects.role_binding,
    );
    doc(&mut out, "ConfigMap", "v1", &objects.config_map);
    doc(&mut out, "Service", "v1", &objects.headless_service);
    doc(&mut out, "Service", "v1", &objects.bootstrap_service);
    for service in &objects.external_services {
        doc(&mut out, "Service", "v1", service);
    }
    doc(&mut out, "StatefulSet", "apps/v1", &objects.stateful_set);
    if let Some(pdb) = &objects.pod_disruption_budget {
        doc(&mut out, "PodDisruptionBudget", "policy/v1", pdb);
    }
    if let Some(pm) = &objects.pod_monitor {
        doc(&mut out, "PodMonitor", "monitoring.coreos.com/v1", pm);
    }
    if let Some(rule) = &objects.prometheus_rule {
        doc(&mut out, "PrometheusRule", "monitoring.coreos.com/v1", rule);
    }
    out
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from the rendered objects; review and regenerate with UPDATE_GOLDEN=1\n--- rendered:\n{actual}",
        path.display()
    );
}

fn built(c: &KafkaCluster) -> ClusterObjects {
    build(c).unwrap_or_else(|e| panic!("build failed: {e}"))
}

#[test]
fn example_cluster_renders_the_golden_objects() {
    check_golden("example-cluster.yaml", &render_cluster(&example_cluster()));
}

#[test]
fn minimal_cluster_renders_the_golden_objects() {
    check_golden("minimal-cluster.yaml", &render_cluster(&minimal_cluster()));
}

#[test]
fn secured_cluster_renders_the_golden_objects() {
    check_golden("secured-cluster.yaml", &render_cluster(&secured_cluster()));
}

#[test]
fn external_cluster_renders_the_golden_objects() {
    check_golden(
        "external-cluster.yaml",
        &render_cluster(&external_cluster()),
    );
}

/// The NetworkPolicies of a cluster with peers on a plaintext listener (the registry's), an
/// open SCRAM listener (so brokers replicate over REPLICATION), a registry with peers and a
/// monitoring namespace of its own; the operator runs in `tributary-system`.
#[test]
fn guarded_cluster_renders_the_golden_network_policies() {
    let c = stored(
        "apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: guarded}
spec:
  brokers: 3
  monitoring: {namespace: prometheus}
  listeners:
    - name: PLAIN
      port: 9092
      networkPolicyPeers:
        - podSelector: {matchLabels: {app: orders}}
        - namespaceSelector: {matchLabels: {team: payments}}
          podSelector: {matchLabels: {app: billing}}
    - name: SCRAM
      port: 9094
      tls: {}
      authentication: {type: scram-sha-512}
  schemaRegistry:
    networkPolicyPeers:
      - ipBlock: {cidr: 10.20.0.0/16, except: [10.20.5.0/24]}
",
    );
    let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let api = "networking.k8s.io/v1";
    doc(
        &mut out,
        "NetworkPolicy",
        api,
        &network_policy::brokers(&c, &names, "tributary-system"),
    );
    let registry = network_policy::registry(&c, &names, "tributary-system")
        .unwrap_or_else(|| panic!("no registry policy"));
    doc(&mut out, "NetworkPolicy", api, &registry);
    check_golden("network-policies.yaml", &out);
}

#[test]
fn external_listeners_get_a_bootstrap_and_a_per_broker_service_and_replicate_internally() {
    let objects = built(&external_cluster());
    let names: Vec<_> = objects
        .external_services
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "edge-nodeport-bootstrap",
            "edge-broker-0-nodeport",
            "edge-broker-1-nodeport",
            "edge-lb-bootstrap",
            "edge-broker-0-lb",
            "edge-broker-1-lb",
        ]
    );
    let broker_1 = &objects.external_services[2];
    let spec = broker_1.spec.clone().unwrap_or_default();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    assert_eq!(
        spec.selector
            .unwrap_or_default()
            .get("statefulset.kubernetes.io/pod-name")
            .map(String::as_str),
        Some("edge-broker-1"),
        "a broker's Service reaches that broker alone"
    );
    let port = &spec.ports.unwrap_or_default()[0];
    assert_eq!((port.port, port.node_port), (9094, Some(32001)));
    let annotations = broker_1.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("tributary.dev/advertised-host")
            .map(String::as_str),
        Some("kafka-1.example.com")
    );
    assert_eq!(
        annotations
            .get("tributary.dev/advertised-port")
            .map(String::as_str),
        Some("443")
    );
    let props = broker_properties(&objects);
    assert!(
        props.contains("external.listeners=NODEPORT,LB\n"),
        "{props}"
    );
    assert!(
        props.contains("inter.broker.listener.name=PLAIN\n"),
        "{props}"
    );
    let pod = objects
        .stateful_set
        .spec
        .template
        .spec
        .clone()
        .unwrap_or_default();
    let container = &pod.containers[0];
    assert!(
        container.env.iter().flatten().any(|e| e.name == "HOST_IP"),
        "NodePort brokers advertise their node's address"
    );
    assert!(built(&example_cluster()).external_services.is_empty());
}

#[test]
fn an_external_first_listener_does_not_carry_replication() {
    let mut c = external_cluster();
    c.spec.listeners.rotate_left(1);
    let props = broker_properties(&built(&c));
    assert!(
        props.contains("inter.broker.listener.name=PLAIN\n"),
        "{props}"
    );
}

#[test]
fn secured_listeners_add_the_replication_port_and_keep_the_probes() {
    let o = built(&secured_cluster());
    let pod = o.stateful_set.spec.template.spec.unwrap_or_default();
    let broker = &pod.containers[0];
    let ports: Vec<i32> = broker
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(
        ports,
        [9093, 9094, 9091, tributary_operator::builders::ADMIN_PORT]
    );
    // Probes stay on the plain HTTP admin port, whatever the Kafka listeners require.
    let probe = broker.readiness_probe.clone().unwrap_or_default();
    let port = probe.http_get.map(|h| h.port);
    assert_eq!(
        port,
        Some(
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                tributary_operator::builders::ADMIN_PORT_NAME.to_owned()
            )
        )
    );
}

#[test]
fn monitored_cluster_renders_the_golden_pod_monitor_and_rules() {
    let mut c = minimal_cluster();
    c.spec.monitoring.service_monitor = true;
    c.spec.monitoring.rules = true;
    let o = built(&c);
    let mut only = String::new();
    let full = render(&o);
    // Just the monitoring documents: the rest is pinned by minimal-cluster.yaml.
    for doc in full
        .split("---\n")
        .filter(|d| d.contains("monitoring.coreos.com/v1"))
    {
        only.push_str("---\n");
        only.push_str(doc);
    }
    check_golden("monitoring.yaml", &only);
    let pm = o.pod_monitor.unwrap_or_else(|| panic!("PodMonitor"));
    let endpoint = &pm.data["spec"]["podMetricsEndpoints"][0];
    let admin = o.stateful_set.spec.template.spec.as_ref().and_then(|s| {
        s.containers[0]
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.container_port == tributary_operator::builders::ADMIN_PORT)
            .and_then(|p| p.name.clone())
    });
    assert_eq!(
        endpoint["port"].as_str(),
        admin.as_deref(),
        "scrapes the pods' metrics port"
    );
    assert_eq!(
        pm.metadata.owner_references.unwrap_or_default()[0].kind,
        "KafkaCluster"
    );
}

#[test]
fn monitoring_objects_are_off_by_default() {
    let o = built(&minimal_cluster());
    assert!(o.pod_monitor.is_none() && o.prometheus_rule.is_none());
}

fn template_hash(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .cloned()
}

#[test]
fn config_change_changes_the_hash_and_rolls_the_pods() {
    let before = built(&example_cluster());
    let mut changed = example_cluster();
    changed
        .spec
        .config
        .insert("log.retention.hours".to_owned(), "24".to_owned());
    let after = built(&changed);
    assert_ne!(before.config_hash, after.config_hash);
    assert_eq!(
        template_hash(&after.stateful_set),
        Some(after.config_hash.clone())
    );
    assert_ne!(
        template_hash(&before.stateful_set),
        template_hash(&after.stateful_set)
    );
}

#[test]
fn non_config_changes_keep_the_hash() {
    let before = built(&example_cluster());
    let mut scaled = example_cluster();
    scaled.spec.brokers = 5;
    let after = built(&scaled);
    assert_eq!(before.config_hash, after.config_hash);
    assert_eq!(after.stateful_set.spec.replicas, Some(5));
}

#[test]
fn leader_balancing_settings_are_the_controllers_and_do_not_roll_the_brokers() {
    let before = built(&example_cluster());
    let mut tuned = example_cluster();
    for (k, v) in [
        ("auto.leader.rebalance.enable", "false"),
        ("leader.imbalance.per.broker.percentage", "20"),
        ("leader.imbalance.check.interval.seconds", "60"),
    ] {
        tuned.spec.config.insert(k.to_owned(), v.to_owned());
    }
    let after = built(&tuned);
    assert_eq!(before.config_hash, after.config_hash);
    assert_eq!(before.config_map, after.config_map);
}

/// The broker properties the ConfigMap of `objects` renders.
fn broker_properties(objects: &ClusterObjects) -> String {
    objects
        .config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_FILE))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_sub_second_renew_interval_takes_the_place_of_the_seconds() {
    let mut tuned = example_cluster();
    tuned.spec.coordination.lease_duration_seconds = 2;
    tuned.spec.coordination.renew_interval_milliseconds = Some(500);
    let props = broker_properties(&built(&tuned));
    assert!(props.contains("broker.lease.duration.ms=2000\n"), "{props}");
    assert!(
        props.contains("broker.lease.renew.interval.ms=500\n"),
        "{props}"
    );
    let props = broker_properties(&built(&example_cluster()));
    assert!(
        props.contains("broker.lease.renew.interval.ms=2000\n"),
        "{props}"
    );
}

#[test]
fn delete_claim_controls_pvc_retention_and_budget_can_be_disabled() {
    let mut c = minimal_cluster();
    c.spec.storage.delete_claim = true;
    c.spec.disruption_budget.enabled = false;
    let o = built(&c);
    let policy = o
        .stateful_set
        .spec
        .persistent_volume_claim_retention_policy
        .clone()
        .unwrap_or_default();
    assert_eq!(policy.when_deleted.as_deref(), Some("Delete"));
    assert_eq!(policy.when_scaled.as_deref(), Some("Retain"));
    assert!(o.pod_disruption_budget.is_none());
}

#[test]
fn unstored_cluster_is_an_error_not_a_panic() {
    let mut c = minimal_cluster();
    c.metadata.uid = None;
    assert!(build(&c).is_err());
}

#[test]
fn every_listener_binds_the_pod_ip_and_advertises_it_or_the_pods_dns_name_as_asked() {
    let args = |yaml: &str| -> Vec<String> {
        let sts = built(&stored(yaml)).stateful_set;
        let pod = sts.spec.template.spec.unwrap_or_default();
        pod.containers[0].args.clone().unwrap_or_default()
    };
    let dns = args("apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: a, namespace: ns}\nspec: {brokers: 1}\n");
    for arg in [
        "--listeners=PLAIN://$(POD_IP):9092",
        "--http-listener=$(POD_IP):9644",
        "--advertised-listeners=PLAIN://$(POD_NAME).a-brokers.streaming.svc:9092",
    ] {
        assert!(dns.contains(&arg.to_owned()), "{arg}: {dns:?}");
    }
    let pod_ip = args("apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: a, namespace: ns}\n\
                       spec: {brokers: 1, listeners: [{name: PLAIN, port: 9093, advertise: PodIP}, \
                       {name: TLS, port: 9094, tls: {}}]}\n");
    for arg in [
        "--listeners=PLAIN://$(POD_IP):9093,TLS://$(POD_IP):9094,REPLICATION://$(POD_IP):9091",
        "--advertised-listeners=PLAIN://$(POD_IP):9093,TLS://$(POD_NAME).a-brokers.streaming.svc:9094,REPLICATION://$(POD_IP):9091",
    ] {
        assert!(pod_ip.contains(&arg.to_owned()), "{arg}: {pod_ip:?}");
    }
}

#[test]
fn internal_topics_get_as_many_replicas_as_brokers_up_to_three_unless_the_user_chose() {
    let rendered = |c: &KafkaCluster| {
        let data = built(c).config_map.data.unwrap_or_default();
        data.values().cloned().collect::<String>()
    };
    let mut single = minimal_cluster();
    single.spec.brokers = 1;
    let props = rendered(&single);
    assert!(
        props.contains("offsets.topic.replication.factor=1\n"),
        "{props}"
    );
    assert!(
        props.contains("transaction.state.log.replication.factor=1\n"),
        "{props}"
    );
    let mut large = minimal_cluster();
    large.spec.brokers = 5;
    large
        .spec
        .config
        .insert("offsets.topic.replication.factor".into(), "5".into());
    let props = rendered(&large);
    assert!(
        props.contains("offsets.topic.replication.factor=5\n"),
        "{props}"
    );
    assert!(
        props.contains("transaction.state.log.replication.factor=3\n"),
        "{props}"
    );
}
