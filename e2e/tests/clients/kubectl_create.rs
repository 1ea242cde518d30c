//! Real kubectl's `create` generators for workloads, which send their objects as protobuf:
//! `create deployment|job|cronjob|service clusterip|poddisruptionbudget` are accepted, and
//! the server stores every field kubectl set (what `--dry-run=client -o json` prints), with
//! its own defaults beside them.

use serde_json::Value;

use super::cluster::Cluster;

const NS: &str = "workloads";

/// Whether `stored` holds everything `sent` sets: objects key by key (nulls and empty
/// objects are nothing set), lists item by item, other values equal.
fn holds(stored: &Value, sent: &Value) -> bool {
    match sent {
        Value::Null => true,
        Value::Object(m) if m.is_empty() => true,
        Value::Object(m) => m.iter().all(|(k, v)| holds(&stored[k.as_str()], v)),
        Value::Array(items) => stored.as_array().is_some_and(|got| {
            got.len() == items.len() && got.iter().zip(items).all(|(g, s)| holds(g, s))
        }),
        other => stored == other,
    }
}

#[test]
fn holds_compares_what_was_set() {
    let sent = serde_json::json!({"a": {"b": [1, {"c": "x"}], "d": null, "e": {}}});
    let stored = serde_json::json!({"a": {"b": [1, {"c": "x", "f": 2}], "g": true}});
    assert!(holds(&stored, &sent));
    let changed = serde_json::json!({"a": {"b": [1, {"c": "y"}]}});
    assert!(!holds(&changed, &sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_generators_send_workloads_as_protobuf_and_every_field_is_stored() {
    let c = Cluster::start(NS).await;
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "deployment",
            "web",
            &[
                "deployment",
                "web",
                "--image=registry.example/web:1.2",
                "--replicas=2",
                "--port=8080",
                "--",
                "/bin/web",
                "--listen=:8080",
            ],
        ),
        (
            "job",
            "once",
            &[
                "job",
                "once",
                "--image=registry.example/tool:1",
                "--",
                "run",
                "once",
            ],
        ),
        (
            "cronjob",
            "tick",
            &[
                "cronjob",
                "tick",
                "--image=registry.example/tool:1",
                "--schedule=*/5 * * * *",
                "--restart=OnFailure",
                "--",
                "tick",
            ],
        ),
        (
            "service",
            "api",
            &[
                "service",
                "clusterip",
                "api",
                "--tcp=80:8080",
                "--tcp=9090:metrics",
            ],
        ),
        (
            "poddisruptionbudget",
            "web",
            &[
                "poddisruptionbudget",
                "web",
                "--selector=app=web",
                "--min-available=50%",
            ],
        ),
    ];
    for (kind, name, args) in cases {
        let mut create = vec!["-n", NS, "create"];
        create.extend_from_slice(args);
        // The flags before the generator's own arguments (a command after `--`).
        let mut dry = vec!["-n", NS, "create", "--dry-run=client", "-o", "json"];
        dry.extend_from_slice(args);
        let sent: Value =
            serde_json::from_str(&c.kubectl_ok(&dry).await).expect("kubectl printed JSON");
        c.kubectl_ok(&create).await;
        let got = c
            .kubectl_ok(&["-n", NS, "get", kind, name, "-o", "json"])
            .await;
        let stored: Value = serde_json::from_str(&got).expect("kubectl printed JSON");
        assert!(
            holds(&stored["spec"], &sent["spec"]),
            "{kind} {name}: sent {}\nstored {}",
            sent["spec"],
            stored["spec"]
        );
        assert!(
            holds(&stored["metadata"], &sent["metadata"]),
            "{kind} {name}: sent {}\nstored {}",
            sent["metadata"],
            stored["metadata"]
        );
    }
}
