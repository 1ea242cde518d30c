//! Prometheus' view of the cluster for the real Prometheus the e2e scenarios run: targets with
//! the labels of its Kubernetes service discovery, and the scrape jobs prometheus-operator
//! generates from PodMonitors and ServiceMonitors (and the classic `prometheus.io/*`
//! annotation job).
//!
//! Debian's Prometheus is built without `kubernetes_sd_configs`, so the targets go through
//! `file_sd_configs` instead: [`pod_targets`] gives every container port of every pod with an
//! IP the `__meta_kubernetes_pod_*` labels the `pod` role gives it, [`endpointslice_targets`]
//! every endpoint and port of every EndpointSlice the labels of the `endpointslice` role (with
//! its Service's and pod's). The jobs relabel those exactly as the generated configurations do,
//! so the series carry the labels a cluster with prometheus-operator gives them. Only
//! `matchLabels` selectors are translated (none of the chart's monitors uses expressions).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use serde_json::{json, Map, Value};

/// A label name as Prometheus' discovery writes it (anything but `[A-Za-z0-9_]` becomes `_`).
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn map_labels(
    out: &mut Map<String, Value>,
    prefix: &str,
    map: Option<&BTreeMap<String, String>>,
    present: &str,
) {
    for (k, v) in map.into_iter().flatten() {
        let k = sanitize(k);
        out.insert(format!("{prefix}_{k}"), json!(v));
        out.insert(format!("{present}_{k}"), json!("true"));
    }
}

/// The `__meta_kubernetes_pod_*` labels every target of `pod` carries.
fn pod_meta(pod: &Pod) -> Map<String, Value> {
    let mut m = Map::new();
    let meta = &pod.metadata;
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let put = |m: &mut Map<String, Value>, k: &str, v: Option<String>| {
        m.insert(
            format!("__meta_kubernetes_{k}"),
            json!(v.unwrap_or_default()),
        );
    };
    put(&mut m, "namespace", meta.namespace.clone());
    put(&mut m, "pod_name", meta.name.clone());
    put(&mut m, "pod_uid", meta.uid.clone());
    put(&mut m, "pod_ip", status.pod_ip.clone());
    put(&mut m, "pod_host_ip", status.host_ip.clone());
    put(&mut m, "pod_phase", status.phase.clone());
    put(&mut m, "pod_ready", Some(ready.to_string()));
    put(
        &mut m,
        "pod_node_name",
        pod.spec.as_ref().and_then(|s| s.node_name.clone()),
    );
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        put(&mut m, "pod_controller_kind", Some(owner.kind.clone()));
        put(&mut m, "pod_controller_name", Some(owner.name.clone()));
    }
    map_labels(
        &mut m,
        "__meta_kubernetes_pod_label",
        meta.labels.as_ref(),
        "__meta_kubernetes_pod_labelpresent",
    );
    map_labels(
        &mut m,
        "__meta_kubernetes_pod_annotation",
        meta.annotations.as_ref(),
        "__meta_kubernetes_pod_annotationpresent",
    );
    m
}

/// File-SD target groups as the `pod` role discovers them: one target per container port
/// (one per container without ports) of every pod that has an IP.
pub fn pod_targets(pods: &[Pod]) -> Vec<Value> {
    let mut groups = Vec::new();
    for pod in pods {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let base = pod_meta(pod);
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let ports = c.ports.clone().unwrap_or_default();
            let mut one =
                |address: String, port: Option<&k8s_openapi::api::core::v1::ContainerPort>| {
                    let mut labels = base.clone();
                    labels.insert("__meta_kubernetes_pod_container_name".into(), json!(c.name));
                    labels.insert(
                        "__meta_kubernetes_pod_container_init".into(),
                        json!("false"),
                    );
                    labels.insert(
                        "__meta_kubernetes_pod_container_image".into(),
                        json!(c.image.clone().unwrap_or_default()),
                    );
                    if let Some(p) = port {
                        labels.insert(
                            "__meta_kubernetes_pod_container_port_name".into(),
                            json!(p.name.clone().unwrap_or_default()),
                        );
                        labels.insert(
                            "__meta_kubernetes_pod_container_port_number".into(),
                            json!(p.container_port.to_string()),
                        );
                        labels.insert(
                            "__meta_kubernetes_pod_container_port_protocol".into(),
                            json!(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                        );
                    }
                    groups.push(json!({"targets": [address], "labels": labels}));
                };
            if ports.is_empty() {
                one(ip.clone(), None);
            }
            for p in &ports {
                one(format!("{ip}:{}", p.container_port), Some(p));
            }
        }
    }
    groups
}

/// File-SD target groups as the `endpointslice` role discovers them: one target per address
/// and port, with the slice's, its Service's and the target pod's labels.
pub fn endpointslice_targets(
    slices: &[EndpointSlice],
    services: &[Service],
    pods: &[Pod],
) -> Vec<Value> {
    let mut groups = Vec::new();
    for slice in slices {
        let discovered = DiscoveredSlice::new(slice, services);
        for ep in slice.endpoints.iter().flatten() {
            let target_pod = endpoint_pod(ep, &discovered.namespace, pods);
            for address in &ep.addresses {
                for port in slice.ports.iter().flatten() {
                    let labels = discovered.target_labels(ep, target_pod, port);
                    let target = format!("{address}:{}", port.port.unwrap_or_default());
                    groups.push(json!({"targets": [target], "labels": labels}));
                }
            }
        }
    }
    groups
}

/// An EndpointSlice with what all its targets share: its namespace and the Service it
/// belongs to (by the `kubernetes.io/service-name` label, as discovery finds it).
struct DiscoveredSlice<'a> {
    slice: &'a EndpointSlice,
    namespace: String,
    service_name: String,
    /// The Service itself, when it exists (its labels become target labels).
    service: Option<&'a Service>,
}

impl<'a> DiscoveredSlice<'a> {
    /// Looks up the slice's Service once, rather than for each of its targets.
    fn new(slice: &'a EndpointSlice, services: &'a [Service]) -> Self {
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let service_name = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .cloned()
            .unwrap_or_default();
        let service = services.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(&namespace)
                && s.metadata.name.as_deref() == Some(&service_name)
        });
        DiscoveredSlice {
            slice,
            namespace,
            service_name,
            service,
        }
    }

    /// Every label of one target (endpoint `ep` at `port`): the target pod's and its
    /// container's (what the `pod` and `container` relabelings read), then the slice's, the
    /// endpoint's and the Service's.
    fn target_labels(
        &self,
        ep: &Endpoint,
        target_pod: Option<&Pod>,
        port: &EndpointPort,
    ) -> Map<String, Value> {
        let mut labels = target_pod.map(pod_meta).unwrap_or_default();
        if let Some((container, port_name)) = target_pod.and_then(|p| container_port(p, port)) {
            labels.insert(
                "__meta_kubernetes_pod_container_name".into(),
                json!(container),
            );
            labels.insert(
                "__meta_kubernetes_pod_container_port_name".into(),
                json!(port_name),
            );
        }
        self.slice_port_labels(&mut labels, port);
        endpoint_labels(&mut labels, ep);
        put_meta(&mut labels, "service_name", self.service_name.clone());
        if let Some(s) = self.service {
            map_labels(
                &mut labels,
                "__meta_kubernetes_service_label",
                s.metadata.labels.as_ref(),
                "__meta_kubernetes_service_labelpresent",
            );
        }
        labels
    }

    /// The namespace, slice and port labels, which ServiceMonitors select endpoints by.
    fn slice_port_labels(&self, labels: &mut Map<String, Value>, port: &EndpointPort) {
        let slice = self.slice;
        put_meta(labels, "namespace", self.namespace.clone());
        put_meta(
            labels,
            "endpointslice_name",
            slice.metadata.name.clone().unwrap_or_default(),
        );
        put_meta(
            labels,
            "endpointslice_address_type",
            slice.address_type.clone(),
        );
        put_meta(
            labels,
            "endpointslice_port",
            port.port.unwrap_or_default().to_string(),
        );
        put_meta(
            labels,
            "endpointslice_port_name",
            port.name.clone().unwrap_or_default(),
        );
        put_meta(
            labels,
            "endpointslice_port_protocol",
            port.protocol.clone().unwrap_or_default(),
        );
    }
}

/// Sets `__meta_kubernetes_<key>`, the prefix of every discovery label.
fn put_meta(labels: &mut Map<String, Value>, key: &str, value: String) {
    labels.insert(format!("__meta_kubernetes_{key}"), json!(value));
}

/// The pod an endpoint targets, if it is a pod of the slice's namespace that still exists.
fn endpoint_pod<'a>(ep: &Endpoint, ns: &str, pods: &'a [Pod]) -> Option<&'a Pod> {
    ep.target_ref
        .as_ref()
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| {
            pods.iter()
                .find(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name == r.name)
        })
}

/// The pod's container and container port name an endpoint port is (matched by number),
/// which gives the target its `container` label.
fn container_port(pod: &Pod, port: &EndpointPort) -> Option<(String, String)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .find_map(|c| {
            let cp = c
                .ports
                .iter()
                .flatten()
                .find(|cp| Some(cp.container_port) == port.port)?;
            Some((c.name.clone(), cp.name.clone().unwrap_or_default()))
        })
}

/// The endpoint's conditions and target (the target gives the series their `pod` label).
fn endpoint_labels(labels: &mut Map<String, Value>, ep: &Endpoint) {
    let conditions = ep.conditions.clone().unwrap_or_default();
    put_meta(
        labels,
        "endpointslice_endpoint_conditions_ready",
        conditions.ready.unwrap_or(false).to_string(),
    );
    put_meta(
        labels,
        "endpointslice_endpoint_conditions_serving",
        conditions.serving.unwrap_or(false).to_string(),
    );
    put_meta(
        labels,
        "endpointslice_endpoint_conditions_terminating",
        conditions.terminating.unwrap_or(false).to_string(),
    );
    if let Some(r) = &ep.target_ref {
        put_meta(
            labels,
            "endpointslice_address_target_kind",
            r.kind.clone().unwrap_or_default(),
        );
        put_meta(
            labels,
            "endpointslice_address_target_name",
            r.name.clone().unwrap_or_default(),
        );
    }
}

/// `keep` rules selecting objects whose labels (under `prefix`) match `match_labels`, as
/// prometheus-operator writes them.
fn selector_rules(prefix: &str, match_labels: &Value) -> Vec<Value> {
    match_labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let k = sanitize(k);
            json!({"action": "keep",
                "source_labels": [format!("{prefix}_label_{k}"), format!("{prefix}_labelpresent_{k}")],
                "regex": format!("({});true", v.as_str().unwrap_or_default())})
        })
        .collect()
}

/// A `keep` rule for the namespaces a monitor's `namespaceSelector` allows (its own when it
/// says nothing, every namespace for `any: true`).
fn namespace_rule(monitor: &Value) -> Option<Value> {
    let selector = &monitor["spec"]["namespaceSelector"];
    if selector["any"] == true {
        return None;
    }
    let names: Vec<String> = match selector["matchNames"].as_array() {
        Some(n) => n
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        None => vec![monitor["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned()],
    };
    Some(
        json!({"action": "keep", "source_labels": ["__meta_kubernetes_namespace"], "regex": format!("({})", names.join("|"))}),
    )
}

fn scrape_settings(job: &str, endpoint: &Value, targets: &Path) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("job_name".into(), json!(job));
    m.insert("honor_labels".into(), json!(false));
    m.insert(
        "metrics_path".into(),
        json!(endpoint["path"].as_str().unwrap_or("/metrics")),
    );
    if let Some(i) = endpoint["interval"].as_str() {
        m.insert("scrape_interval".into(), json!(i));
    }
    if let Some(t) = endpoint["scrapeTimeout"].as_str() {
        m.insert("scrape_timeout".into(), json!(t));
    }
    m.insert(
        "file_sd_configs".into(),
        json!([{"files": [targets.to_string_lossy()]}]),
    );
    m
}

fn user_relabelings(endpoint: &Value) -> Vec<Value> {
    endpoint["relabelings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mut out = Map::new();
            for (k, v) in r.as_object().into_iter().flatten() {
                let key = match k.as_str() {
                    "sourceLabels" => "source_labels",
                    "targetLabel" => "target_label",
                    other => other,
                };
                out.insert(key.to_owned(), v.clone());
            }
            Value::Object(out)
        })
        .collect()
}

/// One scrape job per endpoint of a monitor (`endpoints` names its endpoint list), as
/// prometheus-operator writes them: the job-name bookkeeping rule, the monitor's selector on
/// `selected` labels and its namespaces, then the rules `rules_for(port)` of its kind, the
/// `endpoint` label, and the endpoint's own relabelings.
fn monitor_jobs(
    monitor: &Value,
    kind: &str,
    endpoints: &str,
    selected: &str,
    targets: &Path,
    rules_for: impl Fn(&str) -> Vec<Value>,
) -> Vec<Value> {
    let ns = monitor["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = monitor["metadata"]["name"].as_str().unwrap_or_default();
    let list = monitor["spec"][endpoints]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(i, ep)| {
            let port = ep["port"].as_str().unwrap_or_default();
            let mut rules = vec![
                json!({"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}),
            ];
            rules.extend(selector_rules(
                selected,
                &monitor["spec"]["selector"]["matchLabels"],
            ));
            rules.extend(namespace_rule(monitor));
            rules.extend(rules_for(port));
            rules.push(json!({"target_label": "endpoint", "replacement": port}));
            rules.extend(user_relabelings(ep));
            let mut job = scrape_settings(&format!("{kind}/{ns}/{name}/{i}"), ep, targets);
            job.insert("relabel_configs".into(), json!(rules));
            Value::Object(job)
        })
        .collect()
}

/// The scrape jobs prometheus-operator generates for a PodMonitor (one per
/// podMetricsEndpoint), reading targets from `targets` (see [`pod_targets`]).
pub fn pod_monitor_jobs(monitor: &Value, targets: &Path) -> Vec<Value> {
    let ns = monitor["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = monitor["metadata"]["name"].as_str().unwrap_or_default();
    let job = format!("{ns}/{name}");
    monitor_jobs(
        monitor,
        "podMonitor",
        "podMetricsEndpoints",
        "__meta_kubernetes_pod",
        targets,
        |port| {
            vec![
                json!({"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}),
                json!({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": port}),
                json!({"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"}),
                json!({"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"}),
                json!({"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"}),
                json!({"target_label": "job", "replacement": job}),
            ]
        },
    )
}

/// The scrape jobs prometheus-operator generates for a ServiceMonitor with the
/// `endpointslice` role, reading targets from `targets` (see [`endpointslice_targets`]).
pub fn service_monitor_jobs(monitor: &Value, targets: &Path) -> Vec<Value> {
    monitor_jobs(
        monitor,
        "serviceMonitor",
        "endpoints",
        "__meta_kubernetes_service",
        targets,
        |port| {
            vec![
                json!({"action": "keep", "source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": port}),
                json!({"source_labels": ["__meta_kubernetes_endpointslice_address_target_kind", "__meta_kubernetes_endpointslice_address_target_name"],
                "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"}),
                json!({"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"}),
                json!({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"}),
                json!({"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"}),
                json!({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"}),
            ]
        },
    )
}

/// The classic annotation-driven job (`prometheus.io/scrape`, `/path`, `/port` on pods), as
/// Prometheus' example Kubernetes configuration writes it.
pub fn annotation_job(targets: &Path, interval: &str) -> Value {
    json!({
        "job_name": "kubernetes-pods",
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "file_sd_configs": [{"files": [targets.to_string_lossy()]}],
        "relabel_configs": [
            {"action": "keep", "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "regex": "true"},
            {"action": "replace", "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"], "target_label": "__metrics_path__", "regex": "(.+)"},
            {"action": "replace", "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                "regex": "([^:]+)(?::\\d+)?;(\\d+)", "replacement": "$1:$2", "target_label": "__address__"},
            {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    })
}

/// A Prometheus rule file from a PrometheusRule's `spec.groups`.
pub fn rule_file(rule: &Value) -> Value {
    json!({"groups": rule["spec"]["groups"].clone()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_targets_carry_the_pod_role_labels_per_container_port() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "demo-broker-0", "namespace": "kafka",
                "labels": {"app.kubernetes.io/component": "broker", "tributary.dev/cluster": "demo"}},
            "spec": {"containers": [{"name": "broker", "ports": [
                {"name": "plain", "containerPort": 9092}, {"name": "admin", "containerPort": 9644}]}]},
            "status": {"podIP": "127.0.1.2", "phase": "Running"},
        }))
        .expect("pod");
        let groups = pod_targets(&[pod]);
        assert_eq!(groups.len(), 2);
        let admin = &groups[1];
        assert_eq!(admin["targets"][0], "127.0.1.2:9644");
        let labels = &admin["labels"];
        assert_eq!(labels["__meta_kubernetes_pod_container_port_name"], "admin");
        assert_eq!(
            labels["__meta_kubernetes_pod_label_tributary_dev_cluster"],
            "demo"
        );
        assert_eq!(
            labels["__meta_kubernetes_pod_labelpresent_app_kubernetes_io_component"],
            "true"
        );
    }

    #[test]
    fn endpointslice_targets_carry_the_slice_service_and_container_labels() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "demo-broker-0", "namespace": "kafka"},
            "spec": {"containers": [{"name": "broker", "ports": [
                {"name": "plain", "containerPort": 9092}]}]},
            "status": {"podIP": "127.0.1.2", "phase": "Running"},
        }))
        .expect("pod");
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "demo", "namespace": "kafka", "labels": {"app": "tributary"}},
        }))
        .expect("service");
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "demo-x", "namespace": "kafka",
                "labels": {"kubernetes.io/service-name": "demo"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.1.2"], "conditions": {"ready": true},
                "targetRef": {"kind": "Pod", "name": "demo-broker-0", "namespace": "kafka"}}],
            "ports": [{"name": "kafka", "port": 9092, "protocol": "TCP"}],
        }))
        .expect("slice");
        let groups = endpointslice_targets(&[slice], &[service], &[pod]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0]["targets"][0], "127.0.1.2:9092");
        let labels = &groups[0]["labels"];
        let expected = [
            ("pod_name", "demo-broker-0"),
            ("pod_container_name", "broker"),
            ("pod_container_port_name", "plain"),
            ("namespace", "kafka"),
            ("endpointslice_name", "demo-x"),
            ("endpointslice_port", "9092"),
            ("endpointslice_port_name", "kafka"),
            ("endpointslice_endpoint_conditions_ready", "true"),
            ("endpointslice_endpoint_conditions_serving", "false"),
            ("endpointslice_address_target_kind", "Pod"),
            ("endpointslice_address_target_name", "demo-broker-0"),
            ("service_name", "demo"),
            ("service_label_app", "tributary"),
            ("service_labelpresent_app", "true"),
        ];
        for (key, value) in expected {
            assert_eq!(labels[format!("__meta_kubernetes_{key}")], value, "{key}");
        }
    }
}
