//! Conversion between the form a client reads and writes (its version) and the stored form:
//! `apiVersion` for custom resources (the `None` strategy), and core `v1` Events shown as
//! `events.k8s.io/v1` Events (one storage, renamed fields), as the real server does.

use serde_json::{Map, Value};

use super::resources::{Conversion, ResourceType};

/// core/v1 Event field <-> events.k8s.io/v1 Event field.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(obj: &Value, to_v1: bool) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = EVENT_FIELDS.iter().find_map(|(core, v1)| {
            let (from, to) = if to_v1 { (core, v1) } else { (v1, core) };
            (k == from).then_some(*to)
        });
        out.insert(renamed.unwrap_or(k).to_owned(), v.clone());
    }
    Value::Object(out)
}

/// The stored object as `rt` serves it in `version`.
pub(crate) fn to_served(rt: &ResourceType, version: &str, stored: &Value) -> Value {
    let mut v = match rt.conversion {
        Conversion::EventsV1 => rename(stored, true),
        Conversion::ApiVersion => stored.clone(),
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(rt.api_version(version)));
        m.insert("kind".into(), Value::String(rt.kind.clone()));
    }
    v
}

/// A served object in the form it is stored in (`storage` is the resource that owns the
/// storage, whose storage version is used).
pub(crate) fn to_stored(rt: &ResourceType, storage: &ResourceType, served: &Value) -> Value {
    let mut v = match rt.conversion {
        Conversion::EventsV1 => rename(served, false),
        Conversion::ApiVersion => served.clone(),
    };
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "apiVersion".into(),
            Value::String(storage.api_version(&storage.storage_version().name)),
        );
        m.insert("kind".into(), Value::String(storage.kind.clone()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;
    use serde_json::json;

    #[test]
    fn events_k8s_io_events_are_core_events_with_renamed_fields() {
        let r = Registry::default();
        let v1 = r
            .find("events.k8s.io", "v1", "events")
            .expect("events.k8s.io");
        let core = r.find("", "v1", "events").expect("core events");
        let written = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "KafkaCluster", "name": "demo"}, "note": "hello", "reason": "R",
            "reportingController": "tributary.dev/operator"});
        let stored = to_stored(&v1, &core, &written);
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "demo");
        assert_eq!(stored["message"], "hello");
        assert_eq!(stored["reportingComponent"], "tributary.dev/operator");
        assert_eq!(to_served(&v1, "v1", &stored), written);
    }
}
