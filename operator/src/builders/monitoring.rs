//! prometheus-operator objects for a cluster: a PodMonitor scraping the brokers' admin port and
//! a PrometheusRule with the broker alerts. Rendered as [`DynamicObject`]s so the operator needs
//! no prometheus-operator crate and runs where those CRDs are absent.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;
use tributary_crds::KafkaCluster;

use super::{Names, ADMIN_PORT_NAME};

/// Value of the `job` label on every scraped broker series; the alerts select on it. Series
/// also get `cluster` (the KafkaCluster name), as with the Helm chart's PodMonitor.
pub const JOB: &str = "tributary-broker";

/// API group of the prometheus-operator resources.
pub const MONITORING_GROUP: &str = "monitoring.coreos.com";

/// The `monitoring.coreos.com/v1` PodMonitor resource.
pub fn pod_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(MONITORING_GROUP, "v1", "PodMonitor"),
        "podmonitors",
    )
}

/// The `monitoring.coreos.com/v1` PrometheusRule resource.
pub fn prometheus_rule_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(MONITORING_GROUP, "v1", "PrometheusRule"),
        "prometheusrules",
    )
}

/// Name of the cluster's PrometheusRule.
pub fn prometheus_rule_name(names: &Names) -> String {
    format!("{}-alerts", names.cluster)
}

/// The PodMonitor, when `spec.monitoring.serviceMonitor` is on. A PodMonitor rather than a
/// ServiceMonitor because the admin port is on the pods, not on the Services.
pub fn pod_monitor(cluster: &KafkaCluster, names: &Names) -> Option<DynamicObject> {
    let monitoring = &cluster.spec.monitoring;
    if !monitoring.service_monitor {
        return None;
    }
    let mut obj = DynamicObject::new(&names.broker(), &pod_monitor_resource());
    obj.metadata = names.meta(names.broker());
    obj.data = json!({
        "spec": {
            "selector": { "matchLabels": names.selector_labels() },
            "namespaceSelector": { "matchNames": [names.namespace] },
            "podMetricsEndpoints": [{
                "port": ADMIN_PORT_NAME,
                "path": "/metrics",
                "interval": monitoring.interval,
                "relabelings": [
                    { "action": "replace", "targetLabel": "job", "replacement": JOB },
                    { "action": "replace", "targetLabel": "cluster", "replacement": names.cluster },
                ],
            }],
        }
    });
    Some(obj)
}

/// The PrometheusRule, when `spec.monitoring.rules` is on: offline partitions, under-replicated
/// partitions, a broker down, consumer lag and a nearly full log directory, plus (with
/// `spec.tieredStorage`) a tiered upload lag that keeps segments on disk, each scoped to this
/// cluster's series.
pub fn prometheus_rule(cluster: &KafkaCluster, names: &Names) -> Option<DynamicObject> {
    if !cluster.spec.monitoring.rules {
        return None;
    }
    let sel = format!(
        "job=\"{JOB}\",namespace=\"{}\",cluster=\"{}\"",
        names.namespace, names.cluster
    );
    let brokers = cluster.spec.brokers;
    let rule = |alert: &str, expr: String, for_: &str, severity: &str, summary: &str| {
        json!({
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": { "severity": severity, "cluster": names.cluster },
            "annotations": { "summary": summary },
        })
    };
    let mut rules = vec![
        rule(
            "TributaryOfflinePartitions",
            format!("max(kafka_controller_kafkacontroller_offlinepartitionscount{{{sel}}}) > 0"),
            "1m",
            "critical",
            "Partitions have no leader: producers and consumers of them are blocked.",
        ),
        rule(
            "TributaryUnderReplicatedPartitions",
            format!("sum(kafka_server_replicamanager_underreplicatedpartitions{{{sel}}}) > 0"),
            "5m",
            "warning",
            "Partitions have fewer in-sync replicas than assigned; one more failure may lose data.",
        ),
        rule(
            "TributaryBrokerDown",
            format!("(count(up{{{sel}}} == 1) or vector(0)) < {brokers}"),
            "2m",
            "critical",
            "Fewer brokers are up than the KafkaCluster asks for.",
        ),
        rule(
            "TributaryConsumerGroupLag",
            format!("max by (group, topic) (kafka_consumergroup_lag{{{sel}}}) > 10000"),
            "10m",
            "warning",
            "A consumer group is more than 10000 records behind on a topic.",
        ),
        rule(
            "TributaryLogDirNearlyFull",
            format!(
                "min by (pod, log_dir) (tributary_log_dir_usable_bytes{{{sel}}} \
                 / tributary_log_dir_total_bytes{{{sel}}}) < 0.1"
            ),
            "5m",
            "critical",
            "A broker's log directory is less than 10% free; writes fail when it is full.",
        ),
    ];
    if cluster.spec.tiered_storage.is_some() {
        rules.push(rule(
            "TributaryTieredUploadLagHigh",
            format!("sum by (pod) (tributary_tiered_upload_lag_bytes{{{sel}}}) > 1073741824"),
            "15m",
            "warning",
            "More than 1 GiB of closed segments wait for upload to remote storage and stay on \
             the local disk: check the bucket and tributary_tiered_errors_total.",
        ));
    }
    let name = prometheus_rule_name(names);
    let mut obj = DynamicObject::new(&name, &prometheus_rule_resource());
    obj.metadata = names.meta(name);
    obj.data = json!({
        "spec": { "groups": [{ "name": format!("tributary-{}", names.cluster), "rules": rules }] }
    });
    Some(obj)
}
