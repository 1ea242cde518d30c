//! Label selectors (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`) and field
//! selectors (`metadata.name=x`, plus the fields each kind supports), parsed and matched as
//! apimachinery's `labels.Parse` and `fields.ParseSelector` do.

use std::collections::BTreeSet;

use serde_json::Value;

use super::error::ApiError;

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<(String, Op)>);

impl LabelSelector {
    /// Parses a `labelSelector` query value; a malformed one is a 400 as on the real server.
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| ApiError::bad_request(format!("unable to parse requirement: {why}"));
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_owned(), Op::NotExists)
            } else if let Some((k, rest)) = split_word(part, " notin ") {
                (k, Op::NotIn(set(rest).ok_or_else(|| bad(part))?))
            } else if let Some((k, rest)) = split_word(part, " in ") {
                (k, Op::In(set(rest).ok_or_else(|| bad(part))?))
            } else if let Some((k, v)) = part.split_once("!=") {
                (k.trim().to_owned(), Op::NotEq(v.trim().to_owned()))
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k.trim().to_owned(), Op::Eq(v.trim().to_owned()))
            } else if let Some((k, v)) = part.split_once('>') {
                let n = v.trim().parse().map_err(|_| bad(part))?;
                (k.trim().to_owned(), Op::Gt(n))
            } else if let Some((k, v)) = part.split_once('<') {
                let n = v.trim().parse().map_err(|_| bad(part))?;
                (k.trim().to_owned(), Op::Lt(n))
            } else {
                (part.to_owned(), Op::Exists)
            };
            if !valid_key(&req.0) {
                return Err(bad(&format!("{:?}: invalid label key", req.0)));
            }
            let values: Vec<&String> = match &req.1 {
                Op::Eq(v) | Op::NotEq(v) => vec![v],
                Op::In(vs) | Op::NotIn(vs) => vs.iter().collect(),
                _ => Vec::new(),
            };
            if let Some(v) = values.into_iter().find(|v| !valid_value(v)) {
                return Err(bad(&format!("{v:?}: invalid label value")));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether the labels of `obj` satisfy every requirement.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.0.iter().all(|(k, op)| {
            let actual = labels.get(k).and_then(Value::as_str);
            match op {
                Op::Eq(v) => actual == Some(v.as_str()),
                Op::NotEq(v) => actual != Some(v.as_str()),
                Op::In(vs) => actual.is_some_and(|a| vs.contains(a)),
                Op::NotIn(vs) => actual.is_none_or(|a| !vs.contains(a)),
                Op::Exists => actual.is_some(),
                Op::NotExists => actual.is_none(),
                Op::Gt(n) => actual
                    .and_then(|a| a.parse::<i64>().ok())
                    .is_some_and(|a| a > *n),
                Op::Lt(n) => actual
                    .and_then(|a| a.parse::<i64>().ok())
                    .is_some_and(|a| a < *n),
            }
        })
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `key in (a,b)`: the key and the rest after the operator word.
fn split_word<'a>(part: &'a str, word: &str) -> Option<(String, &'a str)> {
    let padded = part.replace('(', " (");
    let idx = padded.find(word)?;
    let key = padded[..idx].trim().to_owned();
    let rest_start = part.find('(')?;
    (!key.contains(['=', '!'])).then_some((key, &part[rest_start..]))
}

fn set(s: &str) -> Option<BTreeSet<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

/// A qualified name, optionally prefixed by a DNS subdomain: `app`, `tributary.dev/role`.
pub(crate) fn valid_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(|p| !p.is_empty() && p.len() <= 253 && super::names::is_dns_subdomain(p))
        && !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label value: empty, or up to 63 alphanumerics with `-_.` inside.
pub(crate) fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

/// A parsed field selector: `(field, wanted value, equal?)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses a `fieldSelector` for objects of `kind`; fields the kind does not support are a
    /// 400 (`field label not supported`), as on the real server.
    pub(crate) fn parse(s: &str, kind: &str, group: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.is_empty() {
                continue;
            }
            let (field, value, eq) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if path_of(kind, group, field).is_none() {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            reqs.push((field.to_owned(), unescape(value.trim()), eq));
        }
        Ok(FieldSelector(reqs))
    }

    /// Whether `obj` (of the kind parsed for) satisfies every requirement.
    pub(crate) fn matches(&self, kind: &str, group: &str, obj: &Value) -> bool {
        self.0.iter().all(|(field, want, eq)| {
            let actual = path_of(kind, group, field)
                .and_then(|p| p.iter().try_fold(obj, |v, k| v.get(*k)))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (actual == *want) == *eq
        })
    }

    /// A selector for one object by name.
    pub(crate) fn by_name(name: &str) -> Self {
        FieldSelector(vec![("metadata.name".into(), name.into(), true)])
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if let Some(last) = out.last_mut() {
                last.push('\\');
                last.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(String::new());
        } else if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// The JSON path of a selectable field of `kind` (`None`: not supported).
fn path_of(kind: &str, group: &str, field: &str) -> Option<Vec<&'static str>> {
    let p: &[&str] = match (group, kind, field) {
        (_, _, "metadata.name") => &["metadata", "name"],
        (_, _, "metadata.namespace") => &["metadata", "namespace"],
        ("", "Pod", "spec.nodeName") => &["spec", "nodeName"],
        ("", "Pod", "spec.restartPolicy") => &["spec", "restartPolicy"],
        ("", "Pod", "spec.schedulerName") => &["spec", "schedulerName"],
        ("", "Pod", "spec.serviceAccountName") => &["spec", "serviceAccountName"],
        ("", "Pod", "spec.hostNetwork") => &["spec", "hostNetwork"],
        ("", "Pod", "status.phase") => &["status", "phase"],
        ("", "Pod", "status.podIP") => &["status", "podIP"],
        ("", "Pod", "status.nominatedNodeName") => &["status", "nominatedNodeName"],
        ("", "Secret", "type") => &["type"],
        ("", "Namespace", "status.phase") => &["status", "phase"],
        ("", "Node", "spec.unschedulable") => &["spec", "unschedulable"],
        ("", "PersistentVolumeClaim", "spec.volumeName") => &["spec", "volumeName"],
        ("", "Event", f) => return core_event_field(f),
        ("events.k8s.io", "Event", f) => return events_v1_field(f),
        ("apps", "ReplicaSet", "status.replicas") => &["status", "replicas"],
        ("batch", "Job", "status.successful") => &["status", "successful"],
        _ => return None,
    };
    Some(p.to_vec())
}

fn core_event_field(f: &str) -> Option<Vec<&'static str>> {
    let p: &[&str] = match f {
        "involvedObject.kind" => &["involvedObject", "kind"],
        "involvedObject.namespace" => &["involvedObject", "namespace"],
        "involvedObject.name" => &["involvedObject", "name"],
        "involvedObject.uid" => &["involvedObject", "uid"],
        "involvedObject.apiVersion" => &["involvedObject", "apiVersion"],
        "involvedObject.resourceVersion" => &["involvedObject", "resourceVersion"],
        "involvedObject.fieldPath" => &["involvedObject", "fieldPath"],
        "reason" => &["reason"],
        "reportingComponent" => &["reportingComponent"],
        "source" => &["source", "component"],
        "type" => &["type"],
        _ => return None,
    };
    Some(p.to_vec())
}

fn events_v1_field(f: &str) -> Option<Vec<&'static str>> {
    let p: &[&str] = match f {
        "regarding.kind" => &["regarding", "kind"],
        "regarding.namespace" => &["regarding", "namespace"],
        "regarding.name" => &["regarding", "name"],
        "regarding.uid" => &["regarding", "uid"],
        "regarding.apiVersion" => &["regarding", "apiVersion"],
        "regarding.resourceVersion" => &["regarding", "resourceVersion"],
        "regarding.fieldPath" => &["regarding", "fieldPath"],
        "reason" => &["reason"],
        "reportingController" => &["reportingController"],
        "type" => &["type"],
        _ => return None,
    };
    Some(p.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn equality_and_existence_requirements() {
        let s = LabelSelector::parse("app=kafka,tier!=web,role,!legacy").expect("parse");
        assert!(s.matches(&obj(json!({"app": "kafka", "role": "broker"}))));
        assert!(!s.matches(&obj(
            json!({"app": "kafka", "role": "broker", "legacy": "1"})
        )));
        assert!(!s.matches(&obj(json!({"app": "kafka", "tier": "web", "role": "x"}))));
        assert!(!s.matches(&obj(json!({"app": "kafka"}))));
    }

    #[test]
    fn set_based_in_and_notin() {
        let s = LabelSelector::parse("env in (prod, staging),tier notin (web)").expect("parse");
        assert!(s.matches(&obj(json!({"env": "prod"}))));
        assert!(s.matches(&obj(json!({"env": "staging", "tier": "db"}))));
        assert!(!s.matches(&obj(json!({"env": "dev"}))));
        assert!(!s.matches(&obj(json!({"env": "prod", "tier": "web"}))));
        // notin matches objects without the label.
        let s = LabelSelector::parse("tier notin (web)").expect("parse");
        assert!(s.matches(&obj(json!({}))));
    }

    #[test]
    fn malformed_selectors_are_bad_requests() {
        for bad in ["a in (b", "-bad=1", "a=b c", "x in b"] {
            let e = LabelSelector::parse(bad).expect_err(bad);
            assert_eq!(e.code, 400, "{bad}");
        }
    }

    #[test]
    fn field_selectors_support_name_namespace_and_kind_fields() {
        let s = FieldSelector::parse("metadata.name=n,metadata.namespace!=other", "ConfigMap", "")
            .expect("parse");
        assert!(s.matches("ConfigMap", "", &obj(json!({}))));
        let pod = json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse("status.phase=Running", "Pod", "").expect("parse");
        assert!(s.matches("Pod", "", &pod));
        let e =
            FieldSelector::parse("status.phase=Running", "ConfigMap", "").expect_err("unsupported");
        assert_eq!(e.message, "field label not supported: status.phase");
        let ev = json!({"involvedObject": {"name": "demo", "kind": "KafkaCluster"}});
        let s = FieldSelector::parse(
            "involvedObject.name=demo,involvedObject.kind=KafkaCluster",
            "Event",
            "",
        )
        .expect("parse");
        assert!(s.matches("Event", "", &ev));
    }
}
