//! An independent opinion of what Tributary ships: the chart rendered with every optional
//! value on, and every object the operator renders for a KafkaCluster with every feature on,
//! checked by Kubernetes' own OpenAPI schemas (kubernetes-validate, strict: unknown fields are
//! errors) for each minor version the chart's `kubeVersion` admits that the validator knows,
//! and by a security scanner of Kubernetes manifests (checkov). Each finding is fixed or waived
//! in `charts/tributary/scan-waivers.yaml` with its reason; a waiver that no finding needs any
//! more fails too, so the file stays true. Both scanners come from `.ci/install-tools.sh`
//! (`.tools/scanners`): a missing one is a failure, never a skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;
use tributary_operator::builders::network_policy;
use tributary_operator::builders::registry::{schema_registry, RegistryPlan};
use tributary_operator::builders::Names;

use super::chart::full_values_text;
use super::golden::{doc, render_cluster, stored};

/// The namespace the operator of the scanned objects runs in.
const OPERATOR_NAMESPACE: &str = "tributary-system";

/// The Kubernetes minor versions checked: the chart's `kubeVersion` (>= 1.27) up to the
/// newest the pinned kubernetes-validate knows.
const KUBERNETES_VERSIONS: [&str; 7] = [
    "1.27.0", "1.28.0", "1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0",
];

/// A KafkaCluster with every feature on: TLS listeners with SCRAM and client certificates, an
/// external listener with peers, ACLs, racks, tiered storage, a schema registry over TLS with
/// basic authentication and peers, metrics with a PodMonitor and rules, resources everywhere.
const FULL_CLUSTER: &str = "apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: full}
spec:
  brokers: 3
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {cpu: '2', memory: 2Gi}
  storage: {size: 50Gi, storageClassName: fast-ssd}
  rack: {topologyKey: topology.kubernetes.io/zone}
  listeners:
    - name: PLAIN
      port: 9092
      networkPolicyPeers:
        - podSelector: {matchLabels: {app: orders}}
    - name: SCRAM
      port: 9093
      tls: {}
      authentication: {type: scram-sha-512}
    - name: MTLS
      port: 9094
      tls: {}
      authentication: {type: tls}
    - name: EXTERNAL
      port: 9095
      type: loadbalancer
      tls: {}
      authentication: {type: scram-sha-512}
      networkPolicyPeers:
        - ipBlock: {cidr: 203.0.113.0/24}
  authorization:
    type: simple
    superUsers: [User:admin]
  monitoring: {metrics: true, serviceMonitor: true, rules: true, namespace: observability}
  tieredStorage:
    bucket: tributary-tiered
    endpoint: http://minio.storage.svc:9000
    region: eu-west-1
    credentialsSecret: {name: tributary-s3, accessKeyIdKey: access-key, secretAccessKeyKey: secret-key}
  schemaRegistry:
    replicas: 2
    resources:
      requests: {cpu: 100m, memory: 256Mi}
      limits: {cpu: '1', memory: 512Mi}
    tls: {}
    authentication: {type: basic}
    networkPolicyPeers:
      - namespaceSelector: {matchLabels: {team: payments}}
";

/// Every object the operator renders for [`FULL_CLUSTER`], as YAML documents.
pub(super) fn operator_objects() -> String {
    let cluster = stored(FULL_CLUSTER);
    let names = Names::of(&cluster).unwrap_or_else(|e| panic!("{e}"));
    let mut out = render_cluster(&cluster);
    let RegistryPlan::Deploy(registry) = schema_registry(&cluster, &names) else {
        panic!("the full cluster's registry is not deployed");
    };
    doc(&mut out, "ServiceAccount", "v1", &registry.service_account);
    let rbac = "rbac.authorization.k8s.io/v1";
    doc(&mut out, "Role", rbac, &registry.role);
    doc(&mut out, "RoleBinding", rbac, &registry.role_binding);
    doc(&mut out, "Deployment", "apps/v1", &registry.deployment);
    doc(&mut out, "Service", "v1", &registry.service);
    let api = "networking.k8s.io/v1";
    let brokers = network_policy::brokers(&cluster, &names, OPERATOR_NAMESPACE);
    doc(&mut out, "NetworkPolicy", api, &brokers);
    let registry = network_policy::registry(&cluster, &names, OPERATOR_NAMESPACE)
        .unwrap_or_else(|| panic!("no registry NetworkPolicy"));
    doc(&mut out, "NetworkPolicy", api, &registry);
    out
}

fn scanner(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/scanners/bin")
        .join(name);
    assert!(
        path.is_file(),
        "{name} not found at {}: run .ci/install-tools.sh",
        path.display()
    );
    path
}

/// The rendered chart and operator objects, written where the scanners read them.
struct Manifests {
    dir: tempfile::TempDir,
}

impl Manifests {
    fn write() -> Manifests {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for (name, text) in [
            ("chart.yaml", full_values_text()),
            ("operator.yaml", operator_objects()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        Manifests { dir }
    }

    fn files(&self) -> [PathBuf; 2] {
        ["chart.yaml", "operator.yaml"].map(|name| self.dir.path().join(name))
    }
}

#[test]
fn every_shipped_object_matches_kubernetes_schemas_for_each_supported_version() {
    let manifests = Manifests::write();
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(scanner("kubernetes-validate"))
            .args(["--strict", "--quiet", "--no-warn", "-k", version])
            .args(manifests.files())
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubernetes-validate: {e}"));
        assert!(
            out.status.success(),
            "kubernetes-validate -k {version} found errors:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One finding checkov keeps: which check, on which resource (as checkov names it: kind,
/// namespace, name; a trailing `*` matches any rest), and why it stays.
#[derive(Debug, Deserialize)]
struct Waiver {
    check: String,
    resource: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
struct Waivers {
    waivers: Vec<Waiver>,
}

impl Waiver {
    fn covers(&self, check: &str, resource: &str) -> bool {
        self.check == check
            && match self.resource.strip_suffix('*') {
                Some(prefix) => resource.starts_with(prefix),
                None => resource == self.resource,
            }
    }
}

fn waivers() -> Vec<Waiver> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/tributary/scan-waivers.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let waivers: Waivers =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for w in &waivers.waivers {
        assert!(
            w.reason.trim().len() >= 20,
            "the waiver of {} on {} needs a reason",
            w.check,
            w.resource
        );
    }
    waivers.waivers
}

/// (check id, resource) of every failed checkov check, with the check's name.
fn checkov_findings(manifests: &Manifests) -> Vec<(String, String, String)> {
    let out = Command::new(scanner("checkov"))
        .args([
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
        ])
        .args(
            manifests
                .files()
                .iter()
                .flat_map(|f| [Path::new("-f"), f.as_path()]),
        )
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run checkov: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // One framework's report is an object; several would be a list.
    let reports = match report {
        Value::Array(reports) => reports,
        report => vec![report],
    };
    let mut findings = Vec::new();
    for report in &reports {
        let failed = report["results"]["failed_checks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for f in failed {
            let field = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            findings.push((field("check_id"), field("resource"), field("check_name")));
        }
    }
    assert!(
        reports
            .iter()
            .any(|r| r["summary"]["passed"].as_u64().unwrap_or(0) > 0),
        "checkov passed nothing: did it read the manifests?\n{stdout}"
    );
    findings
}

#[test]
fn every_security_finding_on_shipped_objects_is_fixed_or_waived_with_a_reason() {
    let manifests = Manifests::write();
    let findings = checkov_findings(&manifests);
    let waivers = waivers();
    let unwaived: Vec<String> = findings
        .iter()
        .filter(|(check, resource, _)| !waivers.iter().any(|w| w.covers(check, resource)))
        .map(|(check, resource, name)| format!("{check} on {resource}: {name}"))
        .collect();
    assert!(
        unwaived.is_empty(),
        "findings neither fixed nor waived in charts/tributary/scan-waivers.yaml:\n{}",
        unwaived.join("\n")
    );
    let stale: BTreeSet<String> = waivers
        .iter()
        .filter(|w| {
            !findings
                .iter()
                .any(|(check, resource, _)| w.covers(check, resource))
        })
        .map(|w| format!("{} on {}", w.check, w.resource))
        .collect();
    assert!(
        stale.is_empty(),
        "waivers no finding needs any more (remove them): {stale:?}"
    );
}
