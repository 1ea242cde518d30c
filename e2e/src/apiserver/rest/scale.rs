//! The scale subresource: an `autoscaling/v1` Scale read from and written to the paths the
//! resource declares (`.spec.replicas`, `.status.replicas`, the label selector).

use serde_json::{json, Value};

use super::{Target, WriteOptions, Written};
use crate::apiserver::convert::to_served;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::patch::{self, PatchKind};
use crate::apiserver::resources::ScaleSpec;
use crate::apiserver::state::State;

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect()
}

fn read<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    segments(path).into_iter().try_fold(obj, |v, s| v.get(s))
}

fn write(obj: &mut Value, path: &str, value: Value) {
    let segs = segments(path);
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let mut node = obj;
    for s in parents {
        if !node[*s].is_object() {
            node[*s] = json!({});
        }
        node = &mut node[*s];
    }
    node[*last] = value;
}

/// A LabelSelector object as a selector string (`a=b,c in (d)`).
fn selector_string(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    let mut parts: Vec<String> = v["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in v["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

fn scale_of(spec: &ScaleSpec, obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut scale = json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": read(obj, &spec.spec_replicas).cloned().unwrap_or(json!(0))},
        "status": {"replicas": read(obj, &spec.status_replicas).cloned().unwrap_or(json!(0))},
    });
    if let Some(sel) = spec.label_selector.as_deref().and_then(|p| read(obj, p)) {
        scale["status"]["selector"] = json!(selector_string(sel));
    }
    if meta.get("namespace").is_none() {
        if let Some(m) = scale["metadata"].as_object_mut() {
            m.remove("namespace");
        }
    }
    scale
}

impl State {
    fn scale_spec(target: &Target) -> ApiResult<ScaleSpec> {
        target
            .rt
            .version(&target.version)
            .and_then(|v| v.scale.clone())
            .ok_or_else(ApiError::no_route)
    }

    /// GET `/scale`.
    pub(crate) fn get_scale(&self, target: &Target, name: &str) -> ApiResult<Value> {
        let spec = Self::scale_spec(target)?;
        Ok(scale_of(&spec, &self.get(target, name)?))
    }

    /// PUT or PATCH `/scale`: the Scale's `spec.replicas` is written to the object.
    pub(crate) fn write_scale(
        &mut self,
        target: &Target,
        name: &str,
        patch_kind: Option<PatchKind>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let spec = Self::scale_spec(target)?;
        let live =
            self.store.get(&target.key(name)).cloned().ok_or_else(|| {
                ApiError::not_found(&target.rt.qualified(), &target.rt.group, name)
            })?;
        let old = to_served(&target.rt, &target.version, &live);
        let current = scale_of(&spec, &old);
        let wanted = match patch_kind {
            None => body,
            Some(PatchKind::Json) => {
                let mut s = current.clone();
                patch::json(&mut s, &body).map_err(|e| ApiError::new(422, "Invalid", e))?;
                s
            }
            Some(_) => {
                let mut s = current.clone();
                patch::merge(&mut s, &body);
                s
            }
        };
        let replicas = wanted["spec"]["replicas"].clone();
        if !(replicas.is_i64() || replicas.is_u64()) || replicas.as_i64().is_some_and(|r| r < 0) {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                name,
                &[crate::apiserver::error::FieldError::invalid(
                    "spec.replicas",
                    &replicas,
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut new = old.clone();
        if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str() {
            new["metadata"]["resourceVersion"] = json!(rv);
        }
        write(&mut new, &spec.spec_replicas, replicas);
        let written = self.commit_update(target, name, &live, new, opts)?;
        Ok(Written {
            object: scale_of(&spec, &written.object),
            code: written.code,
            warnings: written.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selector_objects_render_as_selector_strings() {
        let sel = json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(selector_string(&sel), "app=x,tier in (a,b)");
    }
}
