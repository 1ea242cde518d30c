//! Real helm: install (CRDs from the chart's crds/ included), list, upgrade and uninstall of
//! charts/tributary, with every object the chart renders created.

use kube::api::DynamicObject;
use kube::discovery::{Discovery, Scope};
use kube::Api;
use serde::Deserialize;
use serde_json::Value;

use super::cluster::{row, Cluster};

const NS: &str = "tributary-system";
const RELEASE: &str = "demo";

/// The objects a release's manifest renders: (apiVersion, kind, namespace, name).
fn rendered(manifest: &str) -> Vec<(String, String, String, String)> {
    serde_yaml::Deserializer::from_str(manifest)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|v| v.is_object())
        .map(|v| {
            let s = |p: &str| {
                v.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (
                s("/apiVersion"),
                s("/kind"),
                s("/metadata/namespace"),
                s("/metadata/name"),
            )
        })
        .collect()
}

/// Whether each rendered object exists in the cluster (by discovery, as helm finds them).
async fn live(c: &Cluster, objects: &[(String, String, String, String)]) -> Vec<(String, bool)> {
    let discovery = Discovery::new(c.client.clone())
        .run()
        .await
        .expect("discovery");
    let mut out = Vec::new();
    for (api_version, kind, ns, name) in objects {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let found = discovery.get(group).and_then(|g| {
            g.versioned_resources(version)
                .into_iter()
                .find(|(r, _)| r.kind == *kind)
        });
        let Some((resource, caps)) = found else {
            out.push((format!("{kind}/{name} (not served)"), false));
            continue;
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                c.client.clone(),
                if ns.is_empty() { NS } else { ns },
                &resource,
            ),
            Scope::Cluster => Api::all_with(c.client.clone(), &resource),
        };
        out.push((
            format!("{kind}/{name}"),
            api.get_opt(name).await.ok().flatten().is_some(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_upgrades_lists_and_uninstalls_the_chart_with_every_rendered_object() {
    let c = Cluster::start("default").await;
    c.helm_ok(&[
        "install", RELEASE, "charts/tributary", "--namespace", NS, "--create-namespace",
        "--set", "monitoring.serviceMonitor.enabled=true",
        "--set", "monitoring.podMonitor.enabled=true",
        "--set", "monitoring.prometheusRule.enabled=true",
        "--set", "kafkaCluster.enabled=true",
        "--set", "kafkaTopics[0].name=orders,kafkaTopics[0].spec.partitions=6,kafkaTopics[0].spec.replicationFactor=3",
    ])
    .await;
    // The chart's crds/ went in first and are established.
    let crds = c.kubectl_ok(&["get", "crds", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Established\")].status} {end}"]).await;
    for crd in [
        "kafkaclusters.tributary.dev=True",
        "kafkatopics.tributary.dev=True",
    ] {
        assert!(crds.split_whitespace().any(|c| c == crd), "{crds}");
    }
    let manifest = c
        .helm_ok(&["get", "manifest", RELEASE, "--namespace", NS])
        .await;
    let objects = rendered(&manifest);
    let kinds: Vec<&str> = objects.iter().map(|o| o.1.as_str()).collect();
    for kind in [
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "ConfigMap",
        "KafkaCluster",
        "KafkaTopic",
    ] {
        assert!(
            kinds.contains(&kind),
            "the chart renders a {kind}: {kinds:?}"
        );
    }
    let missing: Vec<String> = live(&c, &objects)
        .await
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(o, _)| o)
        .collect();
    assert!(missing.is_empty(), "rendered but not created: {missing:?}");

    let list = c.helm_ok(&["list", "--all-namespaces"]).await;
    let release = row(&list, RELEASE);
    assert_eq!((release[1], release[2]), (NS, "1"), "{list}");
    assert!(list.contains("deployed"), "{list}");

    c.helm_ok(&[
        "upgrade",
        RELEASE,
        "charts/tributary",
        "--namespace",
        NS,
        "--reuse-values",
        "--set",
        "operator.replicas=1",
    ])
    .await;
    let list = c.helm_ok(&["list", "--namespace", NS]).await;
    assert_eq!(row(&list, RELEASE)[2], "2", "{list}");
    let replicas = c
        .kubectl_ok(&[
            "get",
            "deployment",
            "demo-tributary-operator",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(replicas, "1");
    let pdb = c
        .kubectl(&["get", "pdb", "demo-tributary-operator", "-n", NS])
        .await;
    assert!(
        !pdb.ok && pdb.stderr.contains("NotFound"),
        "one replica needs no PodDisruptionBudget: {}",
        pdb.stdout
    );

    // The topic carries no operator to release finalizers here; uninstall removes everything.
    c.helm_ok(&[
        "uninstall",
        RELEASE,
        "--namespace",
        NS,
        "--wait",
        "--timeout",
        "60s",
    ])
    .await;
    let left: Vec<String> = live(&c, &objects)
        .await
        .into_iter()
        .filter(|(_, ok)| *ok)
        .map(|(o, _)| o)
        .collect();
    assert!(left.is_empty(), "left after uninstall: {left:?}");
    let releases = c
        .kubectl_ok(&["get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "name"])
        .await;
    assert!(
        releases.trim().is_empty(),
        "release secrets left: {releases}"
    );
    assert!(c
        .helm_ok(&["list", "--all-namespaces", "-q"])
        .await
        .trim()
        .is_empty());
}
