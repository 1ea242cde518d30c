//! The Helm chart, checked with the real helm v4 binary (installed by `.ci/install-tools.sh`
//! into `.tools/helm/`; a missing helm is a failure, never a skip):
//!
//! - `helm lint --strict` with the default values and with `ci/full-values.yaml`;
//! - every object `helm template` renders is parsed into its typed form (k8s-openapi, the
//!   Tributary CRD types, or the prometheus-operator subset below) and every field it carries
//!   must survive the round trip, so an unknown or misspelt field is a failure;
//! - values.schema.json rejects bad values;
//! - the chart's CRDs are byte-for-byte the generated ones;
//! - the chart agrees with the code it deploys: operator flags and environment variables,
//!   image names in the Dockerfiles, broker pod labels and ports, metric names in the alert
//!   rules and the dashboard, and RBAC that covers the Role the operator grants brokers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tributary_crds::{KafkaCluster, KafkaTopic};

const RELEASE: &str = "tributary";
const NS: &str = "kafka";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    root().join("charts/tributary")
}

fn full_values() -> PathBuf {
    chart().join("ci/full-values.yaml")
}

fn helm() -> PathBuf {
    let path = std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/helm/helm"));
    assert!(
        path.is_file(),
        "helm not found at {}: run .ci/install-tools.sh (or set HELM)",
        path.display()
    );
    path
}

/// Runs helm; returns (success, stdout, stderr).
fn run_helm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(helm())
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("tributary-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("tributary-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("tributary-helm-data"),
        )
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn template_args<'a>(chart: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["template", RELEASE, chart, "--namespace", NS];
    args.extend_from_slice(extra);
    args
}

/// `helm template` of the chart with every optional value on (`ci/full-values.yaml`), as helm
/// prints it.
pub(super) fn full_values_text() -> String {
    let (chart, values) = (chart(), full_values());
    let (chart, values) = (chart.to_string_lossy(), values.to_string_lossy());
    let (ok, stdout, stderr) = run_helm(&template_args(&chart, &["-f", &values]));
    assert!(ok, "helm template with the full values failed:\n{stderr}");
    stdout
}

/// `helm template` output as JSON documents (empty documents dropped).
fn render(extra: &[&str]) -> Vec<Value> {
    let chart = chart();
    let chart = chart.to_string_lossy();
    let (ok, stdout, stderr) = run_helm(&template_args(&chart, extra));
    assert!(ok, "helm template {extra:?} failed:\n{stderr}");
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&stdout) {
        let v = serde_yaml::Value::deserialize(doc)
            .unwrap_or_else(|e| panic!("helm rendered invalid YAML ({extra:?}): {e}"));
        if v.is_null() {
            continue;
        }
        docs.push(serde_json::to_value(v).unwrap_or_else(|e| panic!("YAML to JSON: {e}")));
    }
    docs
}

/// Fails unless helm refuses `extra` with a message containing `expect`.
fn assert_rejected(extra: &[&str], expect: &str) {
    let chart = chart();
    let chart = chart.to_string_lossy();
    let (ok, _, stderr) = run_helm(&template_args(&chart, extra));
    assert!(!ok, "helm template accepted {extra:?}");
    assert!(
        stderr.contains(expect),
        "helm rejected {extra:?} but not for {expect:?}:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Typed parsing with unknown fields rejected
// ---------------------------------------------------------------------------------------------

/// Collects paths of `input` that did not come back identical in `back`.
fn lost_fields(input: &Value, back: &Value, path: &str, lost: &mut Vec<String>) {
    match (input, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(w) => lost_fields(v, w, &p, lost),
                    None if v.is_null() => {}
                    None => lost.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost_fields(v, w, &format!("{path}[{i}]"), lost);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        (a, b) => lost.push(format!("{path} ({a} became {b})")),
    }
}

/// Parses `doc` as `T`; every field of `doc` must survive (serde ignores unknown fields, so
/// the round trip is what finds them).
fn typed<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let what = describe(doc);
    let t: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{what} does not parse as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&t).unwrap_or_else(|e| panic!("{what}: re-encode: {e}"));
    let mut lost = Vec::new();
    lost_fields(doc, &back, "", &mut lost);
    assert!(
        lost.is_empty(),
        "{what}: fields unknown to {} (misspelt, misplaced or mistyped): {lost:?}",
        std::any::type_name::<T>()
    );
    t
}

fn describe(doc: &Value) -> String {
    format!(
        "{} {}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The prometheus-operator (monitoring.coreos.com/v1) fields this chart may use, named as in
/// its CRDs; anything else is rejected.
mod monitoring {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use serde::{Deserialize, Serialize};

    /// A prometheus-operator object: the usual envelope around its own spec.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(crate) struct Object<Spec> {
        pub(crate) api_version: String,
        pub(crate) kind: String,
        pub(crate) metadata: ObjectMeta,
        pub(crate) spec: Spec,
    }

    pub(crate) type ServiceMonitor = Object<ServiceMonitorSpec>;
    pub(crate) type PodMonitor = Object<PodMonitorSpec>;
    pub(crate) type PrometheusRule = Object<PrometheusRuleSpec>;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(crate) struct ServiceMonitorSpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) job_label: Option<String>,
        pub(crate) selector: LabelSelector,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) namespace_selector: Option<NamespaceSelector>,
        pub(crate) endpoints: Vec<Endpoint>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(crate) struct PodMonitorSpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) job_label: Option<String>,
        pub(crate) selector: LabelSelector,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) namespace_selector: Option<NamespaceSelector>,
        pub(crate) pod_metrics_endpoints: Vec<Endpoint>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(crate) struct NamespaceSelector {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) any: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) match_names: Option<Vec<String>>,
    }

    /// Shared by ServiceMonitor `endpoints` and PodMonitor `podMetricsEndpoints`.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(crate) struct Endpoint {
        pub(crate) port: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) path: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) scheme: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) interval: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) scrape_timeout: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) honor_labels: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) relabelings: Option<Vec<Relabel>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) metric_relabelings: Option<Vec<Relabel>>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(crate) struct Relabel {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) action: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) source_labels: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) separator: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) target_label: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) regex: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) replacement: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct PrometheusRuleSpec {
        pub(crate) groups: Vec<RuleGroup>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RuleGroup {
        pub(crate) name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) interval: Option<String>,
        pub(crate) rules: Vec<Rule>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Rule {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) alert: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(crate) record: Option<String>,
        pub(crate) expr: String,
        #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
        pub(crate) for_: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub(crate) labels: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub(crate) annotations: BTreeMap<String, String>,
    }
}

/// Every rendered object, parsed by kind.
#[derive(Default)]
struct Rendered {
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
    pdbs: Vec<PodDisruptionBudget>,
    network_policies: Vec<NetworkPolicy>,
    config_maps: Vec<ConfigMap>,
    crds: Vec<CustomResourceDefinition>,
    service_monitors: Vec<monitoring::ServiceMonitor>,
    pod_monitors: Vec<monitoring::PodMonitor>,
    prometheus_rules: Vec<monitoring::PrometheusRule>,
    clusters: Vec<KafkaCluster>,
    topics: Vec<KafkaTopic>,
    kinds: BTreeMap<String, usize>,
}

const CLUSTER_SCOPED: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
];

fn parse_all(docs: &[Value]) -> Rendered {
    let mut r = Rendered::default();
    for doc in docs {
        let api = doc["apiVersion"].as_str().unwrap_or_default();
        let kind = doc["kind"].as_str().unwrap_or_default();
        let what = describe(doc);
        assert!(
            doc["metadata"]["name"]
                .as_str()
                .is_some_and(|n| !n.is_empty()),
            "{what}: no name"
        );
        if !CLUSTER_SCOPED.contains(&kind) {
            assert!(
                doc["metadata"]["namespace"].is_string(),
                "{what}: namespaced object without metadata.namespace"
            );
        }
        *r.kinds.entry(kind.to_owned()).or_default() += 1;
        match (api, kind) {
            ("v1", "ServiceAccount") => r.service_accounts.push(typed(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => r.cluster_roles.push(typed(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                r.cluster_role_bindings.push(typed(doc))
            }
            ("rbac.authorization.k8s.io/v1", "Role") => r.roles.push(typed(doc)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => r.role_bindings.push(typed(doc)),
            ("v1", "Service") => r.services.push(typed(doc)),
            ("apps/v1", "Deployment") => r.deployments.push(typed(doc)),
            ("policy/v1", "PodDisruptionBudget") => r.pdbs.push(typed(doc)),
            ("networking.k8s.io/v1", "NetworkPolicy") => r.network_policies.push(typed(doc)),
            ("v1", "ConfigMap") => r.config_maps.push(typed(doc)),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => r.crds.push(typed(doc)),
            ("monitoring.coreos.com/v1", "ServiceMonitor") => r.service_monitors.push(typed(doc)),
            ("monitoring.coreos.com/v1", "PodMonitor") => r.pod_monitors.push(typed(doc)),
            ("monitoring.coreos.com/v1", "PrometheusRule") => r.prometheus_rules.push(typed(doc)),
            ("tributary.dev/v1alpha1", "KafkaCluster") => r.clusters.push(typed(doc)),
            ("tributary.dev/v1alpha1", "KafkaTopic") => r.topics.push(typed(doc)),
            _ => panic!("{what}: unexpected apiVersion/kind {api}/{kind}"),
        }
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Facts from the code the chart deploys
// ---------------------------------------------------------------------------------------------

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// String literals in `src` that start with `prefix` and look like metric names.
fn literals_with_prefix(src: &str, prefix: &str) -> BTreeSet<String> {
    src.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with(prefix)
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// Metric names the broker and operator expose, plus the consumer-group lag the group
/// coordinator will expose and Prometheus' own `up`.
fn known_metrics() -> BTreeSet<String> {
    let mut names = literals_with_prefix(&read("broker/src/metrics.rs"), "kafka_");
    assert!(
        names.contains("kafka_server_brokertopicmetrics_bytesin_total"),
        "broker metric names not found in broker/src/metrics.rs: {names:?}"
    );
    names.extend(literals_with_prefix(
        &read("operator/src/metrics.rs"),
        "tributary_operator_",
    ));
    assert!(names.contains("tributary_operator_reconcile_errors_total"));
    for (file, prefix) in [
        ("broker/src/metrics.rs", "tributary_log_dir_"),
        ("broker/tiered/src/metrics.rs", "tributary_tiered_"),
        ("registry/src/metrics.rs", "tributary_schema_registry_"),
    ] {
        let found = literals_with_prefix(&read(file), prefix);
        assert!(!found.is_empty(), "no {prefix}* metric names in {file}");
        names.extend(found);
    }
    names.insert("kafka_consumergroup_lag".to_owned());
    names.insert("up".to_owned());
    names
}

/// Metric names used in a PromQL expression (our prefixes only, plus `up`).
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut token = String::new();
    let mut in_string = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            token.push(c);
            continue;
        }
        if token.starts_with("kafka_") || token.starts_with("tributary_") || token == "up" {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| token.strip_suffix(s))
                .filter(|b| b.ends_with("_seconds"))
                .unwrap_or(&token);
            out.insert(base.to_owned());
        }
        token.clear();
    }
    out
}

fn assert_known_metrics(exprs: &[String], context: &str) {
    let known = known_metrics();
    let mut used = BTreeSet::new();
    for expr in exprs {
        let names = metrics_in(expr);
        assert!(!names.is_empty(), "{context}: no metric in {expr:?}");
        for name in names {
            assert!(
                known.contains(&name),
                "{context}: {expr:?} uses {name}, which neither the broker nor the operator exposes"
            );
            used.insert(name);
        }
    }
}

/// The image a Dockerfile declares it builds (`# image: <repository>`).
fn dockerfile_image(rel: &str) -> String {
    read(rel)
        .lines()
        .find_map(|l| l.strip_prefix("# image: "))
        .unwrap_or_else(|| panic!("{rel} has no `# image:` line"))
        .trim()
        .to_owned()
}

fn app_version() -> String {
    let chart: serde_yaml::Value = serde_yaml::from_str(&read("charts/tributary/Chart.yaml"))
        .unwrap_or_else(|e| panic!("Chart.yaml: {e}"));
    chart["appVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("Chart.yaml has no appVersion string"))
        .to_owned()
}

/// A stored-looking KafkaCluster, for the operator's pure builders.
fn sample_cluster() -> KafkaCluster {
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": { "name": "events", "namespace": NS, "uid": "0d7c6d5c-2d4c-4f7e-9a52-6f2b1f3b8a11" },
        "spec": { "brokers": 3 },
    }))
    .unwrap_or_else(|e| panic!("sample cluster: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Helpers over rendered objects
// ---------------------------------------------------------------------------------------------

fn operator(r: &Rendered) -> (&Deployment, &Container) {
    assert_eq!(
        r.deployments.len(),
        1,
        "exactly one Deployment (the operator)"
    );
    let d = &r.deployments[0];
    let c = d
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers.first())
        .unwrap_or_else(|| panic!("operator Deployment has no container"));
    (d, c)
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

fn rules_of(r: &Rendered) -> Vec<(String, Option<String>, PolicyRule)> {
    let mut out = Vec::new();
    for c in &r.cluster_roles {
        for rule in c.rules.clone().unwrap_or_default() {
            out.push((
                format!(
                    "ClusterRole {}",
                    c.metadata.name.clone().unwrap_or_default()
                ),
                None,
                rule,
            ));
        }
    }
    for role in &r.roles {
        for rule in role.rules.clone().unwrap_or_default() {
            out.push((
                format!("Role {}", role.metadata.name.clone().unwrap_or_default()),
                role.metadata.namespace.clone(),
                rule,
            ));
        }
    }
    out
}

/// Whether the operator may `verb` on `group/resource` (named `name`) in namespace `ns`.
fn allowed(
    r: &Rendered,
    ns: Option<&str>,
    group: &str,
    resource: &str,
    verb: &str,
    name: Option<&str>,
) -> bool {
    rules_of(r).iter().any(|(_, rule_ns, rule)| {
        let ns_ok = match (rule_ns, ns) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        let names_ok = match (&rule.resource_names, name) {
            (None, _) => true,
            (Some(names), Some(n)) => names.iter().any(|x| x == n),
            (Some(_), None) => false,
        };
        ns_ok
            && names_ok
            && rule
                .api_groups
                .as_ref()
                .is_some_and(|g| g.iter().any(|x| x == group))
            && rule
                .resources
                .as_ref()
                .is_some_and(|g| g.iter().any(|x| x == resource))
            && rule.verbs.iter().any(|v| v == verb)
    })
}

fn args_of(c: &Container) -> Vec<String> {
    c.args.clone().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn helm_lint_strict_passes_with_default_and_full_values() {
    let chart = chart();
    let chart = chart.to_string_lossy();
    let full = full_values();
    let full = full.to_string_lossy();
    for extra in [vec![], vec!["--values", &*full]] {
        let mut args = vec!["lint", "--strict", &*chart];
        args.extend(extra.iter().copied());
        let (ok, stdout, stderr) = run_helm(&args);
        assert!(ok, "helm lint {extra:?} failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("0 chart(s) failed"),
            "unexpected lint output:\n{stdout}"
        );
    }
}

#[test]
fn default_values_render_a_hardened_operator_with_least_privilege() {
    let r = parse_all(&render(&["--include-crds"]));
    let kinds: Vec<&str> = r.kinds.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ],
        "objects rendered with default values"
    );
    assert!(r.clusters.is_empty() && r.topics.is_empty());

    let (d, c) = operator(&r);
    let spec = &d.spec;
    assert!(
        spec.replicas.unwrap_or(1) >= 2,
        "leader election wants a standby"
    );
    let pod = spec
        .template
        .spec
        .as_ref()
        .unwrap_or_else(|| panic!("no pod spec"));
    let psc = pod.security_context.clone().unwrap_or_default();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(
        psc.seccomp_profile.map(|p| p.type_).as_deref(),
        Some("RuntimeDefault")
    );
    let sc = c.security_context.clone().unwrap_or_default();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(
        sc.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_owned()])
    );
    let res = c.resources.clone().unwrap_or_default();
    assert!(res
        .requests
        .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")));
    assert!(res.limits.is_some_and(|l| l.contains_key("memory")));
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/healthz"));
    assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/readyz"));
    assert_eq!(
        c.image.as_deref(),
        Some(
            format!(
                "{}:{}",
                dockerfile_image("operator/Dockerfile"),
                app_version()
            )
            .as_str()
        ),
        "default operator image is the one operator/Dockerfile builds"
    );
    assert!(
        args_of(c).contains(&"--apply-crds".to_owned()),
        "CRD self-apply is on by default"
    );

    // The CRD rule exists, names exactly our CRDs, and nothing is a wildcard.
    for name in [
        "kafkaclusters.tributary.dev",
        "kafkatopics.tributary.dev",
        "kafkapartitions.tributary.dev",
        "kafkausers.tributary.dev",
        "kafkaschemas.tributary.dev",
    ] {
        for verb in ["get", "create", "patch"] {
            assert!(
                allowed(
                    &r,
                    None,
                    "apiextensions.k8s.io",
                    "customresourcedefinitions",
                    verb,
                    Some(name)
                ),
                "{verb} {name} not granted"
            );
        }
    }
    assert!(!allowed(
        &r,
        None,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "patch",
        Some("kafkas.example.com")
    ));
    for (owner, _, rule) in rules_of(&r) {
        let all = rule
            .verbs
            .iter()
            .chain(rule.resources.iter().flatten())
            .chain(rule.api_groups.iter().flatten());
        for item in all {
            assert_ne!(item, "*", "{owner} has a wildcard rule: {rule:?}");
        }
        assert!(
            !rule
                .verbs
                .iter()
                .any(|v| v == "escalate" || v == "bind" || v == "impersonate"),
            "{owner} grants {rule:?}"
        );
    }
    // The leader-election Lease in the release namespace.
    for verb in ["get", "update"] {
        assert!(allowed(
            &r,
            Some(NS),
            "coordination.k8s.io",
            "leases",
            verb,
            Some("tributary-operator")
        ));
    }

    // Bindings point at the ServiceAccount the Deployment uses.
    let sa = pod
        .service_account_name
        .clone()
        .unwrap_or_else(|| panic!("no serviceAccountName"));
    assert!(r
        .service_accounts
        .iter()
        .any(|s| s.metadata.name.as_deref() == Some(&sa)));
    for subjects in r
        .cluster_role_bindings
        .iter()
        .map(|b| &b.subjects)
        .chain(r.role_bindings.iter().map(|b| &b.subjects))
    {
        let s = subjects.clone().unwrap_or_default();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, sa);
        assert_eq!(s[0].namespace.as_deref(), Some(NS));
    }

    // The metrics Service selects the operator pods on the metrics port.
    assert_eq!(r.services.len(), 1);
    let svc = r.services[0].spec.clone().unwrap_or_default();
    assert!(is_subset(&svc.selector.unwrap_or_default(), &pod_labels(d)));
    let port = &svc.ports.unwrap_or_default()[0];
    assert_eq!(port.name.as_deref(), Some("metrics"));
    assert!(c
        .ports
        .iter()
        .flatten()
        .any(|p| p.name.as_deref() == Some("metrics")));

    assert_operator_network_policy(&r, "monitoring");
}

/// The operator's NetworkPolicy selects the operator pods and lets in only `monitoring`'s
/// pods, only on the container's metrics port.
fn assert_operator_network_policy(r: &Rendered, monitoring: &str) {
    let (d, c) = operator(r);
    assert_eq!(
        r.network_policies.len(),
        1,
        "one NetworkPolicy, the operator's"
    );
    let spec = r.network_policies[0].spec.clone().unwrap_or_default();
    let selected = spec
        .pod_selector
        .and_then(|s| s.match_labels)
        .unwrap_or_default();
    assert!(!selected.is_empty() && is_subset(&selected, &pod_labels(d)));
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    let metrics_port = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .map(|p| p.container_port)
        .unwrap_or_else(|| panic!("no metrics port"));
    assert_eq!(
        serde_json::to_value(&spec.ingress).unwrap_or_default(),
        json!([{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": monitoring}}}],
            "ports": [{"port": metrics_port, "protocol": "TCP"}],
        }])
    );
}

#[test]
fn the_operator_network_policy_follows_its_values_and_can_be_switched_off() {
    let r = parse_all(&render(&["--set", "monitoring.namespace=prometheus"]));
    assert_operator_network_policy(&r, "prometheus");
    let off = parse_all(&render(&["--set", "networkPolicy.enabled=false"]));
    assert!(off.network_policies.is_empty());
    assert!(!off.kinds.contains_key("NetworkPolicy"));
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let rendered = tributary_crds::crdgen::rendered().unwrap_or_else(|e| panic!("crdgen: {e}"));
    let mut in_chart: Vec<String> = std::fs::read_dir(chart().join("crds"))
        .unwrap_or_else(|e| panic!("charts/tributary/crds: {e}"))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{e}"))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    in_chart.sort();
    let mut want: Vec<String> = rendered.iter().map(|(n, _)| (*n).to_owned()).collect();
    want.sort();
    assert_eq!(
        in_chart, want,
        "charts/tributary/crds holds exactly the CRDs"
    );
    for (name, yaml) in &rendered {
        let chart_copy = read(&format!("charts/tributary/crds/{name}"));
        let repo_copy = read(&format!("crds/{name}"));
        assert_eq!(&chart_copy, yaml, "charts/tributary/crds/{name} is stale");
        assert_eq!(
            chart_copy, repo_copy,
            "charts/tributary/crds/{name} differs from crds/{name}"
        );
    }
    let r = parse_all(&render(&["--include-crds"]));
    let mut names: Vec<String> = r
        .crds
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "kafkaclusters.tributary.dev",
            "kafkapartitions.tributary.dev",
            "kafkaschemas.tributary.dev",
            "kafkatopics.tributary.dev",
            "kafkausers.tributary.dev"
        ]
    );
    for crd in &r.crds {
        assert!(
            tributary_operator::crds::definitions()
                .iter()
                .any(|d| d.metadata.name == crd.metadata.name && d.spec == crd.spec),
            "the CRD helm installs differs from the one the operator applies"
        );
    }
}

#[test]
fn full_values_render_every_optional_object_consistently() {
    let full = full_values();
    let r = parse_all(&render(&["--values", &full.to_string_lossy()]));
    for kind in [
        "NetworkPolicy",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "KafkaCluster",
        "KafkaTopic",
    ] {
        assert!(r.kinds.contains_key(kind), "{kind} not rendered");
    }
    assert_eq!(r.topics.len(), 2);
    // monitoring.namespace reaches the operator's policy and the release's KafkaCluster.
    assert_operator_network_policy(&r, "observability");
    assert_eq!(
        r.clusters
            .first()
            .map(|c| c.spec.monitoring.namespace.as_str()),
        Some("observability")
    );
    let (d, c) = operator(&r);
    assert_eq!(d.spec.replicas, Some(3));
    assert_eq!(
        c.image.as_deref(),
        Some("registry.example.com/tributary-operator:0.1.0-rc1")
    );
    let args = args_of(c);
    assert!(!args.contains(&"--apply-crds".to_owned()));
    assert!(args.contains(&"--lease-name=streaming-operator".to_owned()));
    let env: BTreeMap<String, String> = c
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    assert_eq!(
        env.get("WATCH_NAMESPACE").map(String::as_str),
        Some("kafka")
    );
    assert_eq!(
        env.get("METRICS_ADDR").map(String::as_str),
        Some("$(POD_IP):9090")
    );

    // No CRD rights without self-apply; namespaced rights only in the watched namespace.
    assert!(!allowed(
        &r,
        None,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "get",
        Some("kafkaclusters.tributary.dev")
    ));
    assert!(allowed(
        &r,
        Some("kafka"),
        "apps",
        "statefulsets",
        "patch",
        None
    ));
    assert!(!allowed(
        &r,
        Some("other"),
        "apps",
        "statefulsets",
        "patch",
        None
    ));
    assert!(!allowed(
        &r,
        Some("other"),
        "tributary.dev",
        "kafkatopics",
        "list",
        None
    ));

    // Chart KafkaCluster and topics.
    let cluster = &r.clusters[0];
    assert_eq!(cluster.metadata.name.as_deref(), Some("events"));
    assert_eq!(
        cluster.spec.image,
        "registry.example.com/tributary-broker:0.1.0-rc1"
    );
    assert_eq!(cluster.spec.storage.size, "50Gi");
    for t in &r.topics {
        assert_eq!(t.spec.cluster_ref, "events");
    }
    assert_tiered_storage_reaches_the_brokers(cluster);

    // Monitoring objects: ServiceMonitor selects the metrics Service, PodMonitor selects the
    // broker pods the operator renders, on their admin port.
    let sm = &r.service_monitors[0];
    let svc = &r.services[0];
    assert!(is_subset(
        &sm.spec.selector.match_labels.clone().unwrap_or_default(),
        &svc.metadata.labels.clone().unwrap_or_default()
    ));
    assert_eq!(sm.spec.endpoints[0].port, "metrics");
    assert_eq!(
        sm.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get("release")
            .map(String::as_str),
        Some("kube-prometheus-stack")
    );
    let pm = &r.pod_monitors[0];
    let broker = tributary_operator::builders::build(&sample_cluster())
        .unwrap_or_else(|e| panic!("build: {e}"));
    let tpl = broker.stateful_set.spec.clone().template;
    let broker_labels = tpl.metadata.and_then(|m| m.labels).unwrap_or_default();
    assert!(
        is_subset(
            &pm.spec.selector.match_labels.clone().unwrap_or_default(),
            &broker_labels
        ),
        "PodMonitor selector does not match broker pods {broker_labels:?}"
    );
    assert!(
        !is_subset(
            &pm.spec.selector.match_labels.clone().unwrap_or_default(),
            &pod_labels(d)
        ),
        "PodMonitor must not select the operator"
    );
    assert!(
        broker_labels.contains_key(tributary_crds::CLUSTER_LABEL),
        "the PodMonitor's cluster relabeling reads {}",
        tributary_crds::CLUSTER_LABEL
    );
    let port = &pm.spec.pod_metrics_endpoints[0].port;
    let broker_ports: Vec<String> = tpl
        .spec
        .unwrap_or_default()
        .containers
        .iter()
        .flat_map(|c| c.ports.clone().unwrap_or_default())
        .filter_map(|p| p.name)
        .collect();
    assert!(
        broker_ports.contains(port),
        "broker pods have no port {port}: {broker_ports:?}"
    );
    assert_eq!(
        pm.spec
            .namespace_selector
            .as_ref()
            .and_then(|n| n.match_names.clone()),
        Some(vec!["kafka".to_owned()])
    );

    // Alert rules: every required alert, on metrics that exist, with the configured labels.
    let groups = &r.prometheus_rules[0].spec.groups;
    let rules: Vec<&monitoring::Rule> = groups.iter().flat_map(|g| &g.rules).collect();
    let alerts: BTreeSet<&str> = rules.iter().filter_map(|r| r.alert.as_deref()).collect();
    for a in [
        "TributaryOfflinePartitions",
        "TributaryUnderReplicatedPartitions",
        "TributaryBrokerDown",
        "TributaryReconcileErrors",
        "TributaryConsumerGroupLag",
        "TributaryOperatorDown",
        "TributaryTieredUploadLagHigh",
        "TributaryTieredUploadLagGrowing",
        "TributaryLogDirNearlyFull",
        "TributaryLogDirFillingUp",
    ] {
        assert!(alerts.contains(a), "alert {a} missing: {alerts:?}");
    }
    for rule in &rules {
        assert_eq!(
            rule.labels.get("team").map(String::as_str),
            Some("streaming")
        );
        assert!(rule.labels.contains_key("severity"));
        assert!(
            rule.annotations.contains_key("summary")
                && rule.annotations.contains_key("description")
        );
    }
    let lag = rules
        .iter()
        .find(|r| r.alert.as_deref() == Some("TributaryConsumerGroupLag"))
        .unwrap_or_else(|| panic!("lag alert"));
    assert!(lag.expr.contains("kafka_consumergroup_lag") && lag.expr.ends_with("> 500"));
    let exprs: Vec<String> = rules.iter().map(|r| r.expr.clone()).collect();
    assert_known_metrics(&exprs, "PrometheusRule");

    // The dashboard lands in the configured namespace and is a real Grafana dashboard.
    let cm = r
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("streaming-dashboard"))
        .unwrap_or_else(|| panic!("dashboard ConfigMap missing"));
    assert_eq!(cm.metadata.namespace.as_deref(), Some("monitoring"));
}

#[test]
fn dashboard_charts_the_metrics_brokers_and_operator_expose() {
    let r = parse_all(&render(&[]));
    let cm = r
        .config_maps
        .iter()
        .find(|c| {
            c.data
                .as_ref()
                .is_some_and(|d| d.contains_key("tributary.json"))
        })
        .unwrap_or_else(|| panic!("no dashboard ConfigMap"));
    assert_eq!(
        cm.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get("grafana_dashboard")
            .map(String::as_str),
        Some("1")
    );
    let text = &cm.data.as_ref().unwrap_or_else(|| panic!("no data"))["tributary.json"];
    let dash: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("dashboard JSON: {e}"));
    assert!(dash["uid"].is_string() && dash["title"].is_string());
    let panels = dash["panels"]
        .as_array()
        .unwrap_or_else(|| panic!("no panels"));
    let mut exprs = Vec::new();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_i64()),
            "duplicate panel id {}",
            p["id"]
        );
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {} has no targets", p["title"]));
        assert!(!targets.is_empty(), "panel {} has no queries", p["title"]);
        for t in targets {
            exprs.push(
                t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("target without expr"))
                    .to_owned(),
            );
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    assert_known_metrics(&exprs, "dashboard");
    let all: BTreeSet<String> = exprs.iter().flat_map(|e| metrics_in(e)).collect();
    for must in [
        "kafka_server_brokertopicmetrics_bytesin_total",
        "kafka_server_brokertopicmetrics_bytesout_total",
        "kafka_server_brokertopicmetrics_messagesin_total",
        "kafka_network_requestmetrics_requests_total",
        "kafka_network_requestmetrics_request_duration_seconds",
        "kafka_server_replicamanager_underreplicatedpartitions",
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "kafka_log_log_size",
        "kafka_consumergroup_lag",
        "kafka_server_share_partition_metrics_lag",
        "kafka_server_share_partition_metrics_in_flight_message_count",
        "kafka_server_share_group_metrics_acquisition_lock_timeout_total",
        "kafka_server_share_group_metrics_records_acquired_total",
        "kafka_server_share_group_metrics_records_archived_total",
        "kafka_server_group_coordinator_metrics_share_group_members",
        "tributary_operator_reconciles_total",
        "tributary_operator_reconcile_errors_total",
        "tributary_operator_reconcile_duration_seconds",
        "tributary_tiered_upload_lag_bytes",
        "tributary_tiered_upload_lag_segments",
        "tributary_tiered_remote_log_bytes",
        "tributary_tiered_remote_fetches_total",
        "tributary_tiered_errors_total",
        "tributary_tiered_upload_seconds",
        "tributary_log_dir_usable_bytes",
        "tributary_schema_registry_requests_total",
        "tributary_schema_registry_schemas",
        "tributary_schema_registry_subjects",
    ] {
        assert!(all.contains(must), "dashboard has no panel for {must}");
    }
}

#[test]
fn operator_args_and_env_are_ones_the_binary_accepts() {
    for values in [None, Some(full_values())] {
        let extra: Vec<String> = values
            .iter()
            .flat_map(|v| ["--values".to_owned(), v.to_string_lossy().into_owned()])
            .collect();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = parse_all(&render(&extra));
        let (_, c) = operator(&r);
        // clap validates every argument before acting on the trailing --version.
        let out = Command::new(env!("CARGO_BIN_EXE_tributary-operator"))
            .args(args_of(c))
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("run the operator: {e}"));
        assert!(
            out.status.success(),
            "the operator rejects the chart's args {:?}: {}",
            args_of(c),
            String::from_utf8_lossy(&out.stderr)
        );
        let main = read("operator/src/main.rs");
        let env = c.env.clone().unwrap_or_default();
        for e in &env {
            // Kubernetes expands `$(NAME)` in later env values (POD_IP in METRICS_ADDR).
            let expanded = env
                .iter()
                .filter_map(|o| o.value.as_deref())
                .any(|v| v.contains(&format!("$({})", e.name)));
            assert!(
                e.name == "RUST_LOG" || expanded || main.contains(&format!("env = \"{}\"", e.name)),
                "the operator reads no environment variable {}",
                e.name
            );
        }
    }
}

#[test]
fn operator_rbac_covers_the_role_it_grants_brokers() {
    // Kubernetes refuses to let the operator create a Role granting more than it holds.
    let broker = tributary_operator::builders::build(&sample_cluster())
        .unwrap_or_else(|e| panic!("build: {e}"));
    for values in [None, Some(full_values())] {
        let extra: Vec<String> = values
            .iter()
            .flat_map(|v| ["--values".to_owned(), v.to_string_lossy().into_owned()])
            .collect();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = parse_all(&render(&extra));
        // The brokers' Role, and the schema registry's (its Lease election).
        let mut with_registry = sample_cluster();
        with_registry.spec.schema_registry = Some(Default::default());
        let names = tributary_operator::builders::Names::of(&with_registry)
            .unwrap_or_else(|e| panic!("names: {e}"));
        let registry_rules =
            match tributary_operator::builders::registry::schema_registry(&with_registry, &names) {
                tributary_operator::builders::registry::RegistryPlan::Deploy(o) => {
                    o.role.rules.clone().unwrap_or_default()
                }
                other => panic!("expected a registry, got {other:?}"),
            };
        let granted = broker.role.rules.clone().unwrap_or_default();
        for rule in granted.into_iter().chain(registry_rules) {
            for group in rule.api_groups.clone().unwrap_or_default() {
                for resource in rule.resources.clone().unwrap_or_default() {
                    for verb in &rule.verbs {
                        let names = rule.resource_names.clone().unwrap_or_default();
                        let name = names.first().map(String::as_str);
                        assert!(
                            allowed(&r, Some(NS), &group, &resource, verb, name),
                            "operator ({extra:?}) cannot grant brokers {verb} {group}/{resource}"
                        );
                    }
                }
            }
        }
        // And what the reconcilers themselves do.
        for (group, resource, verbs) in [
            (
                "apps",
                "statefulsets",
                &["get", "list", "watch", "create", "patch"][..],
            ),
            ("", "services", &["list", "watch", "create", "patch"][..]),
            ("", "configmaps", &["list", "watch", "create", "patch"][..]),
            ("", "serviceaccounts", &["create", "patch", "delete"][..]),
            (
                "apps",
                "deployments",
                &["get", "list", "watch", "create", "patch", "delete"][..],
            ),
            ("", "services", &["delete"][..]),
            (
                "networking.k8s.io",
                "networkpolicies",
                &["get", "create", "patch", "delete"][..],
            ),
            (
                "tributary.dev",
                "kafkaschemas",
                &["list", "watch", "patch", "update"][..],
            ),
            ("tributary.dev", "kafkaschemas/status", &["patch"][..]),
            ("", "pods", &["list", "delete"][..]),
            ("coordination.k8s.io", "leases", &["list"][..]),
            (
                "policy",
                "poddisruptionbudgets",
                &["create", "patch", "delete"][..],
            ),
            (
                "rbac.authorization.k8s.io",
                "roles",
                &["create", "patch", "delete"][..],
            ),
            (
                "rbac.authorization.k8s.io",
                "rolebindings",
                &["create", "patch", "delete"][..],
            ),
            ("tributary.dev", "kafkaclusters/status", &["patch"][..]),
            ("tributary.dev", "kafkatopics/status", &["patch"][..]),
            (
                "tributary.dev",
                "kafkausers",
                &["list", "watch", "create", "patch", "delete"][..],
            ),
            ("tributary.dev", "kafkausers/status", &["patch"][..]),
            ("", "secrets", &["create", "update", "delete"][..]),
            (
                "tributary.dev",
                "kafkapartitions",
                &["list", "watch", "create", "update"][..],
            ),
            ("tributary.dev", "kafkapartitions/status", &["update"][..]),
            ("", "configmaps", &["get", "create"][..]),
            ("events.k8s.io", "events", &["create"][..]),
        ] {
            for verb in verbs {
                assert!(
                    allowed(&r, Some(NS), group, resource, verb, None),
                    "operator ({extra:?}) may not {verb} {group}/{resource}"
                );
            }
        }
        assert!(allowed(&r, None, "", "nodes", "get", Some("node-1")));
    }
}

#[test]
fn images_match_the_dockerfiles_and_the_crd_default() {
    let version = app_version();
    let broker = dockerfile_image("broker/Dockerfile");
    let operator_image = dockerfile_image("operator/Dockerfile");
    let values: serde_yaml::Value = serde_yaml::from_str(&read("charts/tributary/values.yaml"))
        .unwrap_or_else(|e| panic!("values.yaml: {e}"));
    assert_eq!(
        values["operator"]["image"]["repository"].as_str(),
        Some(operator_image.as_str())
    );
    assert_eq!(
        values["brokerImage"]["repository"].as_str(),
        Some(broker.as_str())
    );
    assert_eq!(
        tributary_crds::cluster::DEFAULT_IMAGE,
        format!("{broker}:{version}"),
        "a KafkaCluster without spec.image runs the broker image of this chart version"
    );
    assert_eq!(
        version,
        env!("CARGO_PKG_VERSION"),
        "appVersion is the workspace version"
    );
    for (file, bin) in [
        ("broker/Dockerfile", "tributary-broker"),
        ("operator/Dockerfile", "tributary-operator"),
    ] {
        let text = read(file);
        let last_stage = text
            .rsplit_once("\nFROM ")
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("{file}: no FROM"));
        assert!(
            text.contains(" AS build"),
            "{file}: multi-stage build expected"
        );
        assert!(
            last_stage.contains("USER 65532:65532"),
            "{file}: runtime must be non-root"
        );
        assert!(
            last_stage.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{bin}\"]")),
            "{file}: entrypoint is {bin}"
        );
        assert!(text.contains(&format!(
            "cargo build --release --locked -p {bin} --bin {bin}"
        )));
        assert!(text.contains(&format!(
            "docker build -f {file} -t {}:{version} .",
            dockerfile_image(file)
        )));
    }
}

#[test]
fn values_schema_rejects_bad_values() {
    assert_rejected(&["--set", "operator.replicas=0"], "/operator/replicas");
    assert_rejected(
        &["--set", "operator.image.pullPolicy=Sometimes"],
        "pullPolicy",
    );
    assert_rejected(
        &["--set", "monitoring.podMonitor.interval=often"],
        "/monitoring/podMonitor/interval",
    );
    assert_rejected(
        &[
            "--set",
            "monitoring.prometheusRule.consumerLag.severity=page",
        ],
        "severity",
    );
    assert_rejected(
        &["--set", "operator.watchNamespace=Not_A_Namespace"],
        "watchNamespace",
    );
    assert_rejected(&["--set", "operatr.replicas=2"], "operatr");
    assert_rejected(
        &["--set", "monitoring.namespace=Not_A_Namespace"],
        "/monitoring/namespace",
    );
    assert_rejected(
        &["--set", "networkPolicy.enabled=yes"],
        "/networkPolicy/enabled",
    );
    assert_rejected(&["--set", "kafkaTopics[0].name=orders"], "/kafkaTopics/0");
    assert_rejected(
        &["--set", "operator.leaderElection.renewIntervalSeconds=10"],
        "at most half of leaseDurationSeconds",
    );
}

/// The chart's `tieredStorage` values become the broker settings and the credentials volume
/// the operator renders (the Secret mounted as files, so a rotation reaches the brokers).
fn assert_tiered_storage_reaches_the_brokers(cluster: &KafkaCluster) {
    let tiered = cluster
        .spec
        .tiered_storage
        .as_ref()
        .unwrap_or_else(|| panic!("full values set kafkaCluster.spec.tieredStorage"));
    assert_eq!(tiered.url(), "s3://tributary-tiered/ci/events");
    let mut stored = cluster.clone();
    stored.metadata.uid = Some("0b5e2c1e-6f1a-4c3e-9d2b-7a8f9e0d1c2b".to_owned());
    let objects =
        tributary_operator::builders::build(&stored).unwrap_or_else(|e| panic!("build: {e}"));
    let props = objects
        .config_map
        .data
        .clone()
        .unwrap_or_default()
        .remove(tributary_operator::builders::CONFIG_FILE)
        .unwrap_or_default();
    for line in [
        "remote.log.storage.system.enable=true",
        "remote.storage.url=s3://tributary-tiered/ci/events",
        "remote.storage.endpoint=http://minio.storage.svc:9000",
        "remote.storage.credentials.dir=/etc/tributary-remote-storage",
    ] {
        assert!(
            props.lines().any(|l| l == line),
            "missing {line} in\n{props}"
        );
    }
    let secret = objects
        .stateful_set
        .spec
        .template
        .spec
        .and_then(|p| p.volumes)
        .unwrap_or_default()
        .into_iter()
        .find_map(|v| {
            v.secret
                .filter(|s| s.secret_name.as_deref() == Some("tributary-s3"))
        })
        .unwrap_or_else(|| panic!("the credentials Secret is not mounted"));
    let keys: Vec<String> = secret
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(keys, ["access-key", "secret-key"]);
}

/// The NOTES `helm install` prints with `extra` arguments.
fn install_notes(extra: &[&str]) -> String {
    let chart = chart();
    let chart = chart.to_string_lossy();
    let mut args = vec![
        "install",
        "--dry-run=client",
        RELEASE,
        &chart,
        "--namespace",
        NS,
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = run_helm(&args);
    assert!(ok, "helm install --dry-run failed:\n{stderr}");
    stdout
        .split_once("NOTES:")
        .map(|(_, n)| n.to_owned())
        .unwrap_or_else(|| panic!("no NOTES in:\n{stdout}"))
}

#[test]
fn notes_say_how_to_create_the_tiered_storage_secret() {
    let values = full_values();
    let notes = install_notes(&["-f", &values.to_string_lossy()]);
    assert!(
        notes.contains("s3://tributary-tiered/ci/events"),
        "NOTES name the bucket:\n{notes}"
    );
    assert!(
        notes.contains(&format!(
            "kubectl -n {NS} create secret generic tributary-s3 --from-literal=access-key=... --from-literal=secret-key=..."
        )),
        "NOTES give the Secret's command with the chart's key names:\n{notes}"
    );
}

#[test]
fn notes_commands_create_valid_objects() {
    let notes = install_notes(&[]);
    assert!(notes.contains(&format!(
        "kubectl -n {NS} rollout status deployment/tributary-operator"
    )));
    let manifests: Vec<&str> = notes
        .lines()
        .filter_map(|l| l.trim().strip_prefix("echo '"))
        .filter_map(|l| l.split_once("' | kubectl").map(|(m, _)| m))
        .collect();
    assert_eq!(
        manifests.len(),
        2,
        "NOTES should create a cluster and a topic:\n{notes}"
    );
    let docs: Vec<Value> = manifests
        .iter()
        .map(|m| {
            let v: serde_yaml::Value =
                serde_yaml::from_str(m).unwrap_or_else(|e| panic!("NOTES manifest {m}: {e}"));
            let mut v = serde_json::to_value(v).unwrap_or_else(|e| panic!("{e}"));
            v["metadata"]["namespace"] = json!(NS);
            v
        })
        .collect();
    let r = parse_all(&docs);
    assert_eq!(r.clusters.len(), 1);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(
        r.topics[0].spec.cluster_ref,
        r.clusters[0].metadata.name.clone().unwrap_or_default()
    );
}

/// Applies the chart's RBAC objects (with `drop` removed from every rule's resources) to a
/// fresh local API server, then runs the operator's start-up permission check as the chart's
/// ServiceAccount in `watched`.
async fn missing_under_chart_rbac(
    extra: &[&str],
    watched: &str,
    drop: Option<&str>,
) -> Vec<String> {
    use kube::api::{Api, PostParams};
    let r = parse_all(&render(extra));
    let server = tributary_e2e::FakeApiServer::new();
    for ns in [NS, watched, "streams"] {
        server.create_namespace(ns);
    }
    let admin = server.client(NS);
    let trim = |rules: Option<Vec<PolicyRule>>| {
        rules.map(|rules| {
            rules
                .into_iter()
                .filter_map(|mut rule| {
                    if let (Some(drop), Some(resources)) = (drop, rule.resources.as_mut()) {
                        resources.retain(|res| res != drop);
                        if resources.is_empty() {
                            return None;
                        }
                    }
                    Some(rule)
                })
                .collect()
        })
    };
    let post = PostParams::default();
    for mut role in r.cluster_roles {
        role.rules = trim(role.rules.take());
        Api::<ClusterRole>::all(admin.clone())
            .create(&post, &role)
            .await
            .unwrap_or_else(|e| panic!("cluster role: {e}"));
    }
    for binding in r.cluster_role_bindings {
        Api::<ClusterRoleBinding>::all(admin.clone())
            .create(&post, &binding)
            .await
            .unwrap_or_else(|e| panic!("cluster role binding: {e}"));
    }
    for mut role in r.roles {
        role.rules = trim(role.rules.take());
        let ns = role
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| NS.to_owned());
        Api::<Role>::namespaced(admin.clone(), &ns)
            .create(&post, &role)
            .await
            .unwrap_or_else(|e| panic!("role: {e}"));
    }
    for binding in r.role_bindings {
        let ns = binding
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| NS.to_owned());
        Api::<RoleBinding>::namespaced(admin.clone(), &ns)
            .create(&post, &binding)
            .await
            .unwrap_or_else(|e| panic!("role binding: {e}"));
    }
    let account = r
        .service_accounts
        .iter()
        .find_map(|sa| sa.metadata.name.clone())
        .unwrap_or_else(|| panic!("the chart renders no ServiceAccount"));
    let operator = server.client_as(NS, &format!("system:serviceaccount:{NS}:{account}"));
    tributary_operator::permissions::check(&operator, watched)
        .await
        .unwrap_or_else(|e| panic!("rules review: {e}"))
}

#[tokio::test]
async fn the_chart_grants_the_operator_every_permission_it_checks_for_at_start() {
    assert_eq!(
        missing_under_chart_rbac(&[], "default", None).await,
        Vec::<String>::new()
    );
    let watched = ["--set", "operator.watchNamespace=streams"];
    assert_eq!(
        missing_under_chart_rbac(&watched, "streams", None).await,
        Vec::<String>::new()
    );
    let full = full_values().to_string_lossy().into_owned();
    assert_eq!(
        // The full values watch the release namespace only.
        missing_under_chart_rbac(&["--values", &full], NS, None).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_chart_missing_a_rule_the_operator_needs_is_named_by_its_start_up_check() {
    let missing = missing_under_chart_rbac(&[], "default", Some("kafkatopics")).await;
    assert_eq!(
        missing,
        [
            "get kafkatopics.tributary.dev",
            "list kafkatopics.tributary.dev",
            "watch kafkatopics.tributary.dev",
            "create kafkatopics.tributary.dev",
            "update kafkatopics.tributary.dev",
            "patch kafkatopics.tributary.dev",
            "delete kafkatopics.tributary.dev",
        ]
    );
    // Namespaced rights hold only in the watched namespace.
    let watched = ["--set", "operator.watchNamespace=streams"];
    let elsewhere = missing_under_chart_rbac(&watched, "default", None).await;
    assert!(
        elsewhere.contains(&"list kafkaclusters.tributary.dev".to_owned()),
        "{elsewhere:?}"
    );
}
