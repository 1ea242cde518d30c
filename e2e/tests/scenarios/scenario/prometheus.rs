//! Prometheus: the real Prometheus scrapes the operator (through the chart's ServiceMonitor and
//! the Service's EndpointSlices) and a broker (through the chart's PodMonitor and through the
//! pods' `prometheus.io/*` annotations), with the scrape jobs prometheus-operator would generate
//! (see `tributary_e2e::prometheus`); the chart's PrometheusRule, as installed, loads and every
//! rule evaluates; and `promtool test rules` runs the alerts over the series scraped from the
//! cluster: quiet as they are, firing (with their real labels and rendered annotations) once a
//! broker's `up` and the operators' leadership drop.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};
use tributary_e2e::prometheus as sd;

use crate::env::{wait, Driver, Env, RELEASE_NS};
use tributary_e2e::clients::http_get;

use super::{kafka_cluster, operator_pods, ready, ONE_BROKER, REACT};

const NS: &str = "prometheus";
const CLUSTER: &str = "metrics";
/// The series the chart's alert rules read, as scraped.
const RULE_SERIES: &str = r#"{__name__=~"up|tributary_operator_leader|tributary_operator_ready|tributary_operator_reconcile_errors_total|kafka_controller_kafkacontroller_offlinepartitionscount|kafka_server_replicamanager_underreplicatedpartitions|kafka_consumergroup_lag",job=~"tributary-broker|tributary-operator"}"#;

/// A Prometheus on the host, stopped on drop.
struct Prometheus {
    addr: String,
    _child: tokio::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn tool(name: &str) -> &str {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run .ci/install-tools.sh (Debian package prometheus)"
    );
    name
}

async fn run_tool(program: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(tool(program))
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}:\n{text}");
    text
}

impl Prometheus {
    async fn start(config: &Path, data: &Path) -> Prometheus {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = tokio::process::Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            addr,
            _child: child,
        };
        wait("Prometheus to be ready", REACT, || async {
            let (code, _) = http_get(&p.addr, "/-/ready").await.ok()?;
            (code == 200).then_some(())
        })
        .await;
        p
    }

    async fn api(&self, path: &str) -> Value {
        let (code, body) = http_get(&self.addr, path).await.expect("Prometheus API");
        assert_eq!(code, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        v["data"].clone()
    }

    /// The instant vector `promql` evaluates to.
    async fn query(&self, promql: &str) -> Vec<Value> {
        let q: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.api(&format!("/api/v1/query?query={q}")).await["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `promql` returns `n` series, all with value `value`.
    async fn expect(&self, promql: &str, n: usize, value: &str) {
        wait(
            &format!("{promql} to be {value} for {n} series"),
            REACT,
            || async {
                let r = self.query(promql).await;
                (r.len() == n && r.iter().all(|s| s["value"][1] == value)).then_some(())
            },
        )
        .await;
    }
}

/// The items that decode as `T`.
fn typed<T: serde::de::DeserializeOwned>(items: Vec<Value>) -> Vec<T> {
    items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

/// `{{ $labels.x }}` and `{{ $value }}` of an alert template, as Prometheus renders them.
fn render(template: &str, labels: &BTreeMap<String, String>, value: &str) -> String {
    let mut out = template.replace("{{ $value }}", value);
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

/// A series in promtool's input notation.
fn series_name(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

fn labels_of(series: &Value) -> BTreeMap<String, String> {
    series["metric"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

pub(crate) async fn run(driver: Driver) {
    let env = Env::shared(driver).await;
    let _namespace = env.namespace(NS).await;
    env.apply(&kafka_cluster(NS, CLUSTER, ONE_BROKER)).await;
    ready(&env, NS, CLUSTER).await;
    operator_pods(&env, 2).await;

    // Discovery as Prometheus' Kubernetes SD would see the cluster now.
    let all = |kind: &'static str| {
        let env = &env;
        async move {
            let list = env.get_json(&[kind, "--all-namespaces"]).await;
            list["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let pods: Vec<k8s_openapi::api::core::v1::Pod> = typed(all("pods").await);
    let slices: Vec<k8s_openapi::api::discovery::v1::EndpointSlice> =
        typed(all("endpointslices").await);
    let services: Vec<k8s_openapi::api::core::v1::Service> = typed(all("services").await);
    let dir = tempfile::tempdir().expect("temp dir");
    let pod_file = dir.path().join("pods.json");
    let slice_file = dir.path().join("endpointslices.json");
    std::fs::write(&pod_file, json!(sd::pod_targets(&pods)).to_string()).expect("write targets");
    std::fs::write(
        &slice_file,
        json!(sd::endpointslice_targets(&slices, &services, &pods)).to_string(),
    )
    .expect("write targets");
    let mut jobs = Vec::new();
    for pm in all("podmonitors").await {
        jobs.extend(sd::pod_monitor_jobs(&pm, &pod_file));
    }
    for sm in all("servicemonitors").await {
        jobs.extend(sd::service_monitor_jobs(&sm, &slice_file));
    }
    assert!(
        jobs.len() >= 2,
        "the chart's PodMonitor and ServiceMonitor: {jobs:?}"
    );
    jobs.push(sd::annotation_job(&pod_file, "1s"));
    let rules = all("prometheusrules").await;
    let rule = rules
        .iter()
        .find(|r| r["metadata"]["namespace"] == RELEASE_NS)
        .expect("the chart's PrometheusRule");
    let rules_file = dir.path().join("rules.yml");
    std::fs::write(
        &rules_file,
        serde_yaml::to_string(&sd::rule_file(rule)).expect("yaml"),
    )
    .expect("write rules");
    run_tool(
        "promtool",
        &["check", "rules", &rules_file.to_string_lossy()],
    )
    .await;
    let config_file = dir.path().join("prometheus.yml");
    let config = json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [rules_file.to_string_lossy()],
        "scrape_configs": jobs,
    });
    std::fs::write(&config_file, serde_yaml::to_string(&config).expect("yaml"))
        .expect("write config");
    run_tool(
        "promtool",
        &["check", "config", &config_file.to_string_lossy()],
    )
    .await;
    let prom = Prometheus::start(&config_file, &dir.path().join("data")).await;

    // Every target, through each discovery path, with the labels the jobs give it.
    let broker = format!(
        r#"up{{job="tributary-broker",namespace="{NS}",cluster="{CLUSTER}",pod="{CLUSTER}-broker-0",container="broker",endpoint="admin"}}"#
    );
    prom.expect(&broker, 1, "1").await;
    prom.expect(
        &format!(r#"up{{job="kubernetes-pods",namespace="{NS}",pod="{CLUSTER}-broker-0"}}"#),
        1,
        "1",
    )
    .await;
    prom.expect(&format!(r#"up{{job="tributary-operator",namespace="{RELEASE_NS}",service="tributary-operator-metrics",endpoint="metrics"}}"#), 2, "1").await;
    prom.expect(
        &format!(r#"sum(tributary_operator_leader{{namespace="{RELEASE_NS}"}})"#),
        1,
        "1",
    )
    .await;
    prom.expect(&format!(r#"kafka_controller_kafkacontroller_offlinepartitionscount{{namespace="{NS}",cluster="{CLUSTER}"}}"#), 1, "0").await;

    // The rules as installed load and evaluate.
    let groups = wait("every alert rule to have been evaluated", REACT, || async {
        let groups = prom.api("/api/v1/rules").await["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let rules: Vec<&Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let evaluated = !rules.is_empty()
            && rules.iter().all(|r| {
                r["health"] == "ok"
                    && !r["lastEvaluation"]
                        .as_str()
                        .unwrap_or("0001")
                        .starts_with("0001")
            });
        evaluated.then_some(groups)
    })
    .await;
    let alerts: Vec<String> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        alerts.contains(&"TributaryBrokerDown".to_owned()),
        "{alerts:?}"
    );

    // promtool: the alerts over the series scraped from this cluster's operator and broker.
    let scraped: Vec<BTreeMap<String, String>> = prom
        .query(RULE_SERIES)
        .await
        .iter()
        .map(labels_of)
        .filter(|l| {
            l.get("namespace")
                .is_some_and(|n| n == NS || n == RELEASE_NS)
        })
        .filter(|l| {
            l.get("job").is_some_and(|j| j == "tributary-operator")
                || l.get("cluster").is_some_and(|c| c == CLUSTER)
        })
        .collect();
    let current: BTreeMap<String, String> = prom
        .query(RULE_SERIES)
        .await
        .iter()
        .map(|s| {
            (
                series_name(&labels_of(s)),
                s["value"][1].as_str().unwrap_or("0").to_owned(),
            )
        })
        .collect();
    let broker_up = scraped
        .iter()
        .find(|l| {
            l.get("__name__").is_some_and(|n| n == "up")
                && l.get("job").is_some_and(|j| j == "tributary-broker")
        })
        .expect("the broker's up series")
        .clone();
    let input =
        |overrides: &dyn Fn(&BTreeMap<String, String>) -> Option<&'static str>| -> Vec<Value> {
            scraped
                .iter()
                .map(|l| {
                    let name = series_name(l);
                    let v = overrides(l).map_or_else(
                        || current.get(&name).cloned().unwrap_or_else(|| "0".into()),
                        str::to_owned,
                    );
                    json!({"series": name, "values": format!("{v}+0x30")})
                })
                .collect()
        };
    let quiet: Vec<Value> = alerts
        .iter()
        .map(|a| json!({"eval_time": "20m", "alertname": a, "exp_alerts": []}))
        .collect();
    // An alert rule's annotation or label, as installed.
    let rule_text = |alert: &str, field: &str, key: &str| -> String {
        rule["spec"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .find(|r| r["alert"] == alert)
            .and_then(|r| r[field][key].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let firing = |alert: &str, labels: BTreeMap<String, String>, value: &str| -> Value {
        let mut exp = labels.clone();
        exp.remove("__name__");
        exp.insert("severity".into(), rule_text(alert, "labels", "severity"));
        let annotations: BTreeMap<String, String> = ["summary", "description"]
            .iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    render(&rule_text(alert, "annotations", k), &exp, value),
                )
            })
            .collect();
        json!({"eval_time": "20m", "alertname": alert, "exp_alerts": [{"exp_labels": exp, "exp_annotations": annotations}]})
    };
    // The broker stops answering and no operator replica leads.
    let down = |l: &BTreeMap<String, String>| -> Option<&'static str> {
        let leader = l
            .get("__name__")
            .is_some_and(|n| n == "tributary_operator_leader");
        (*l == broker_up || leader).then_some("0")
    };
    let test = json!({
        "rule_files": [rules_file.to_string_lossy()],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": input(&|_| None), "alert_rule_test": quiet},
            {"interval": "1m", "input_series": input(&down), "alert_rule_test": [
                firing("TributaryBrokerDown", broker_up.clone(), "0"),
                firing("TributaryOperatorNoLeader", BTreeMap::from([("namespace".to_owned(), RELEASE_NS.to_owned())]), "0"),
            ]},
        ],
    });
    let test_file = dir.path().join("rules-test.yml");
    std::fs::write(&test_file, serde_yaml::to_string(&test).expect("yaml")).expect("write test");
    run_tool("promtool", &["test", "rules", &test_file.to_string_lossy()]).await;
    drop(prom);
}
