//! `meta.k8s.io/v1` Tables, what `kubectl get` asks for (`Accept: application/json;as=Table`):
//! a CRD's additionalPrinterColumns (Name and Age by default), and the usual columns of the
//! built-in kinds.

use serde_json::{json, Value};

use super::jsonpath;
use super::resources::{Column, ResourceType};

/// How much of each object a row carries (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    /// Parses `includeObject` (default Metadata).
    pub(crate) fn parse(v: Option<&str>) -> Self {
        match v {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

fn col(name: &str, type_: &str, format: &str, priority: i64, json_path: &str) -> Column {
    Column {
        name: name.to_owned(),
        type_: type_.to_owned(),
        format: format.to_owned(),
        description: String::new(),
        priority,
        json_path: json_path.to_owned(),
    }
}

fn age() -> Column {
    col("Age", "date", "", 0, ".metadata.creationTimestamp")
}

/// Built-in kinds' columns after Name; a `jsonPath` starting with `!` is computed by [`cell`].
fn builtin_columns(rt: &ResourceType) -> Vec<Column> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => vec![
            col("Ready", "string", "", 0, "!ready"),
            col("Status", "string", "", 0, "!pod-status"),
            col("Restarts", "string", "", 0, "!restarts"),
            age(),
            col("IP", "string", "", 1, ".status.podIP"),
            col("Node", "string", "", 1, ".spec.nodeName"),
        ],
        ("apps", "Deployment") => vec![
            col("Ready", "string", "", 0, "!ready-replicas"),
            col("Up-to-date", "integer", "", 0, ".status.updatedReplicas"),
            col("Available", "integer", "", 0, ".status.availableReplicas"),
            age(),
        ],
        ("apps", "StatefulSet") => vec![col("Ready", "string", "", 0, "!ready-replicas"), age()],
        ("apps", "ReplicaSet") => vec![
            col("Desired", "integer", "", 0, ".spec.replicas"),
            col("Current", "integer", "", 0, ".status.replicas"),
            col("Ready", "integer", "", 0, ".status.readyReplicas"),
            age(),
        ],
        ("", "Service") => vec![
            col("Type", "string", "", 0, ".spec.type"),
            col("Cluster-IP", "string", "", 0, ".spec.clusterIP"),
            col("External-IP", "string", "", 0, "!external-ip"),
            col("Port(s)", "string", "", 0, "!ports"),
            age(),
        ],
        ("", "ConfigMap") => vec![col("Data", "integer", "", 0, "!data-count"), age()],
        ("", "Secret") => vec![
            col("Type", "string", "", 0, ".type"),
            col("Data", "integer", "", 0, "!data-count"),
            age(),
        ],
        ("", "Namespace") => vec![col("Status", "string", "", 0, ".status.phase"), age()],
        ("", "ServiceAccount") => vec![col("Secrets", "integer", "", 0, "!secrets-count"), age()],
        ("coordination.k8s.io", "Lease") => {
            vec![
                col("Holder", "string", "", 0, ".spec.holderIdentity"),
                age(),
            ]
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            vec![col("Created At", "date", "", 0, "!created-at")]
        }
        ("policy", "PodDisruptionBudget") => vec![
            col("Min Available", "string", "", 0, ".spec.minAvailable"),
            col("Max Unavailable", "string", "", 0, ".spec.maxUnavailable"),
            col(
                "Allowed Disruptions",
                "integer",
                "",
                0,
                ".status.disruptionsAllowed",
            ),
            age(),
        ],
        ("", "Event") => vec![
            col("Last Seen", "string", "", 0, "!last-seen"),
            col("Type", "string", "", 0, ".type"),
            col("Reason", "string", "", 0, ".reason"),
            col("Object", "string", "", 0, "!involved-object"),
            col("Message", "string", "", 0, ".message"),
        ],
        ("", "PersistentVolumeClaim") => vec![
            col("Status", "string", "", 0, ".status.phase"),
            col("Volume", "string", "", 0, ".spec.volumeName"),
            age(),
        ],
        ("", "Node") => vec![col("Status", "string", "", 0, "!node-status"), age()],
        _ => vec![age()],
    }
}

/// The columns of `rt` in `version`, Name first (last and hidden for core Events, as
/// `kubectl get events` shows them).
fn columns(rt: &ResourceType, version: &str) -> Vec<Column> {
    if rt.group.is_empty() && rt.kind == "Event" {
        let mut cols = builtin_columns(rt);
        cols.push(col("Name", "string", "name", 1, ".metadata.name"));
        return cols;
    }
    let mut cols = vec![col("Name", "string", "name", 0, ".metadata.name")];
    cols[0].description = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names".into();
    if rt.is_custom() {
        let declared = rt
            .version(version)
            .map(|v| v.columns.clone())
            .unwrap_or_default();
        if declared.is_empty() {
            cols.push(age());
        } else {
            cols.extend(declared);
        }
    } else {
        cols.extend(builtin_columns(rt));
    }
    cols
}

/// `duration.HumanDuration`: `45s`, `3m20s`, `5h`, `3d4h`, `2y`.
pub(crate) fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        },
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        },
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => match h % 24 {
            0 => format!("{}d", h / 24),
            r => format!("{}d{r}h", h / 24),
        },
        _ if h < 24 * 365 * 2 => format!("{}d", h / 24),
        _ if h < 24 * 365 * 8 => match (h / 24) % 365 {
            0 => format!("{}y", h / 24 / 365),
            r => format!("{}y{r}d", h / 24 / 365),
        },
        _ => format!("{}y", h / 24 / 365),
    }
}

fn age_of(ts: Option<&str>) -> Value {
    let Some(ts) = ts else {
        return json!("<unknown>");
    };
    let Ok(t) = ts.parse::<k8s_openapi::jiff::Timestamp>() else {
        return json!("<invalid>");
    };
    let secs = k8s_openapi::jiff::Timestamp::now().as_second() - t.as_second();
    json!(human_duration(secs))
}

fn computed(which: &str, obj: &Value) -> Value {
    let count = |v: &Value| v.as_object().map_or(0, serde_json::Map::len);
    match which {
        "ready" => {
            let total = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = obj["status"]["containerStatuses"]
                .as_array()
                .map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
            json!(format!("{ready}/{total}"))
        }
        "pod-status" => {
            if obj["metadata"].get("deletionTimestamp").is_some() {
                json!("Terminating")
            } else {
                obj["status"]["reason"]
                    .as_str()
                    .or(obj["status"]["phase"].as_str())
                    .map_or(json!("Unknown"), |s| json!(s))
            }
        }
        "restarts" => json!(obj["status"]["containerStatuses"]
            .as_array()
            .map_or(0, |s| s
                .iter()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum::<i64>())
            .to_string()),
        "ready-replicas" => json!(format!(
            "{}/{}",
            obj["status"]["readyReplicas"].as_i64().unwrap_or(0),
            obj["spec"]["replicas"].as_i64().unwrap_or(1)
        )),
        "external-ip" => json!("<none>"),
        "ports" => json!(obj["spec"]["ports"]
            .as_array()
            .map(|ps| ps
                .iter()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect::<Vec<_>>()
                .join(","))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "<none>".into())),
        "data-count" => json!(count(&obj["data"]) + count(&obj["binaryData"])),
        "secrets-count" => json!(obj["secrets"].as_array().map_or(0, Vec::len)),
        "created-at" => obj["metadata"]["creationTimestamp"].clone(),
        "last-seen" => age_of(
            obj["lastTimestamp"]
                .as_str()
                .or(obj["eventTime"].as_str())
                .or(obj["metadata"]["creationTimestamp"].as_str()),
        ),
        "involved-object" => json!(format!(
            "{}/{}",
            obj["involvedObject"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase(),
            obj["involvedObject"]["name"].as_str().unwrap_or_default()
        )),
        "node-status" => {
            let ready = obj["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            json!(if ready { "Ready" } else { "NotReady" })
        }
        _ => Value::Null,
    }
}

/// One cell, as the real table convertors fill it: the first value the path finds, strings
/// printed, dates as ages, numbers and booleans as JSON values, nothing for a missing value.
fn cell(c: &Column, obj: &Value) -> Value {
    if let Some(which) = c.json_path.strip_prefix('!') {
        return computed(which, obj);
    }
    let found = jsonpath::find(obj, &c.json_path);
    let Some(first) = found.first() else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "date" => age_of(first.as_str()),
        "string" => match first {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
        "integer" => first.as_i64().map_or(Value::Null, |i| json!(i)),
        "number" => first.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => first.as_bool().map_or(Value::Null, |b| json!(b)),
        _ => (*first).clone(),
    }
}

/// The PartialObjectMetadata of an object.
pub(crate) fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// A Table of `objects`; `list_meta` is the list's metadata (resourceVersion, continue), and
/// `headers` whether to include the column definitions (a watch sends them once).
pub(crate) fn table(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    list_meta: Value,
    include: Include,
    headers: bool,
) -> Value {
    let cols = columns(rt, version);
    let definitions: Vec<Value> = if headers {
        cols.iter()
            .map(|c| {
                json!({"name": c.name, "type": c.type_, "format": c.format,
                       "description": c.description, "priority": c.priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols.iter().map(|c| cell(c, o)).collect();
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial(o),
                Include::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": definitions, "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3600 * 5), "5h");
        assert_eq!(human_duration(3600 * 24 * 3 + 3600 * 4), "3d4h");
    }

    #[test]
    fn pods_show_ready_status_and_restarts() {
        let r = Registry::default();
        let pods = r.find("", "v1", "pods").expect("pods");
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]}});
        let t = table(&pods, "v1", &[pod], json!({}), Include::Metadata, true);
        assert_eq!(t["columnDefinitions"][1]["name"], "Ready");
        assert_eq!(t["rows"][0]["cells"][0], "p");
        assert_eq!(t["rows"][0]["cells"][1], "1/2");
        assert_eq!(t["rows"][0]["cells"][2], "Running");
        assert_eq!(t["rows"][0]["cells"][3], "3");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
