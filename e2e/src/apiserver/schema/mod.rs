//! A CRD version's structural schema, applied to custom resources as the real server does on
//! every write: unknown fields pruned (or refused under strict field validation), defaults
//! filled in, then OpenAPI value validation and the `x-kubernetes-validations` CEL rules, with
//! validation ratcheting on update (an unchanged invalid value stays accepted).

mod cel;
mod prune;
mod validate;

use serde_json::Value;

pub(crate) use prune::prune;

use super::error::FieldError;
use super::resources::{ListType, Seg};

/// One step of a field path in validation errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathSeg {
    /// A declared property: `.name`.
    Prop(String),
    /// A key of a map (`additionalProperties`): `[key]`.
    Key(String),
    /// A list index: `[0]`.
    Index(usize),
}

/// `spec.config[retention.ms]`, `status.partitions[0].isr`.
pub(crate) fn render_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Prop(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(p);
            }
            PathSeg::Key(k) => {
                out.push('[');
                out.push_str(k);
                out.push(']');
            }
            PathSeg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// The value at `path` in `v`.
pub(crate) fn value_at<'a>(v: &'a Value, path: &[PathSeg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        PathSeg::Prop(k) | PathSeg::Key(k) => v.get(k),
        PathSeg::Index(i) => v.get(i),
    })
}

/// A validation error and the path it is about (for ratcheting).
pub(crate) struct Located {
    pub(crate) path: Vec<PathSeg>,
    pub(crate) error: FieldError,
}

/// Every rule in the tree that does not compile, with where it is.
fn rule_errors(node: &kube_cel::CompiledSchema, path: &str, out: &mut Vec<String>) {
    for e in node.compilation_errors() {
        let at = if path.is_empty() { "<root>" } else { path };
        out.push(format!("{at}: {e}"));
    }
    let mut props: Vec<_> = node.properties.iter().collect();
    props.sort_by(|a, b| a.0.cmp(b.0));
    for (k, child) in props {
        rule_errors(child, &format!("{path}.{k}"), out);
    }
    if let Some(items) = &node.items {
        rule_errors(items, &format!("{path}[*]"), out);
    }
    if let Some(values) = &node.additional_properties {
        rule_errors(values, &format!("{path}[*]"), out);
    }
    for sub in node.all_of.iter().chain(&node.one_of).chain(&node.any_of) {
        rule_errors(sub, path, out);
    }
}

/// The `openAPIV3Schema` of one CRD version, with its CEL rules compiled once.
pub(crate) struct Schema {
    /// The schema as the CRD carries it.
    pub(crate) raw: Value,
    compiled: kube_cel::CompiledSchema,
}

impl Schema {
    /// Compiles the schema's CEL rules; the errors are the rules that do not compile, which
    /// make the CRD invalid.
    pub(crate) fn new(raw: Value) -> (Schema, Vec<String>) {
        let compiled = kube_cel::compile_schema(&raw);
        let mut errors = Vec::new();
        rule_errors(&compiled, "", &mut errors);
        (Schema { raw, compiled }, errors)
    }

    /// The schema node at `path`, following properties, `additionalProperties` and items.
    fn node(&self, path: &[Seg]) -> Option<&Value> {
        path.iter().try_fold(&self.raw, |node, seg| match seg {
            Seg::Field(f) => node
                .get("properties")
                .and_then(|p| p.get(f))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object())),
            Seg::Item => node.get("items"),
        })
    }

    /// `x-kubernetes-list-type` at `path`; lists without one are atomic.
    pub(crate) fn list_type(&self, path: &[Seg]) -> ListType {
        let Some(node) = self.node(path) else {
            return ListType::Atomic;
        };
        match node["x-kubernetes-list-type"].as_str() {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                node["x-kubernetes-list-map-keys"]
                    .as_array()
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        }
    }

    /// `x-kubernetes-map-type: atomic` at `path`.
    pub(crate) fn atomic_map(&self, path: &[Seg]) -> bool {
        self.node(path)
            .is_some_and(|n| n["x-kubernetes-map-type"] == "atomic")
    }

    /// Fills in schema defaults.
    pub(crate) fn default(&self, obj: &Value) -> Value {
        kube_cel::apply_defaults(&self.raw, obj)
    }

    /// Every value-validation and CEL error of `obj`; on update (`old` given), errors about
    /// values that did not change are dropped (CRD validation ratcheting).
    pub(crate) fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut found = Vec::new();
        validate::root(&self.raw, obj, &mut found);
        found.extend(cel::evaluate(&self.compiled, obj, old));
        found
            .into_iter()
            .filter(|l| {
                old.is_none_or(|old| {
                    l.path.is_empty() || value_at(old, &l.path) != value_at(obj, &l.path)
                })
            })
            .map(|l| l.error)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn topic_schema() -> Schema {
        let raw = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["partitions"],
                    "properties": {
                        "partitions": {
                            "type": "integer", "minimum": 1.0, "maximum": 10.0,
                            "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "partitions can only increase"}]
                        },
                        "policy": {"type": "string", "enum": ["Delete", "Retain"], "default": "Delete"},
                        "config": {"type": "object", "additionalProperties": {"type": "string"}},
                        "brokers": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-list-type": "set"},
                    }
                }
            }
        });
        let (s, errors) = Schema::new(raw);
        assert!(errors.is_empty(), "{errors:?}");
        s
    }

    #[test]
    fn bounds_enums_and_required_fields_are_reported_like_the_real_server() {
        let s = topic_schema();
        let obj = json!({"spec": {"partitions": 0, "policy": "Keep"}});
        let errs: Vec<String> = s
            .validate(&obj, None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(errs.contains(&"spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1".to_owned()), "{errs:?}");
        assert!(errs.contains(&"spec.policy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Retain\"".to_owned()), "{errs:?}");
        let errs = s.validate(&json!({"spec": {}}), None);
        assert_eq!(errs[0].to_string(), "spec.partitions: Required value");
    }

    #[test]
    fn cel_transition_rules_apply_only_on_update() {
        let s = topic_schema();
        let new = json!({"spec": {"partitions": 2}});
        assert!(s.validate(&new, None).is_empty());
        let old = json!({"spec": {"partitions": 3}});
        let errs = s.validate(&new, Some(&old));
        assert_eq!(
            errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["spec.partitions: Invalid value: \"integer\": partitions can only increase"]
        );
    }

    #[test]
    fn an_unchanged_invalid_value_is_ratcheted_on_update() {
        let s = topic_schema();
        let old = json!({"spec": {"partitions": 50}});
        let new = json!({"spec": {"partitions": 50, "policy": "Retain"}});
        assert!(s.validate(&new, Some(&old)).is_empty());
        let changed = json!({"spec": {"partitions": 60}});
        assert_eq!(s.validate(&changed, Some(&old)).len(), 1);
    }

    #[test]
    fn duplicate_set_items_and_wrong_types_are_invalid() {
        let s = topic_schema();
        let obj = json!({"spec": {"partitions": "three", "brokers": [1, 1], "config": {"a": 5}}});
        let errs: Vec<String> = s
            .validate(&obj, None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(errs.contains(&"spec.partitions: Invalid value: \"string\": spec.partitions in body must be of type integer: \"string\"".to_owned()), "{errs:?}");
        assert!(
            errs.contains(&"spec.brokers[1]: Duplicate value: 1".to_owned()),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("spec.config[a]: Invalid value")),
            "{errs:?}"
        );
    }

    #[test]
    fn rules_that_do_not_compile_are_reported_with_their_place() {
        let raw = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.size() >"}]}}});
        let (_, errors) = Schema::new(raw);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(".spec: "), "{errors:?}");
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let s = topic_schema();
        let d = s.default(&json!({"spec": {"partitions": 1}}));
        assert_eq!(d["spec"]["policy"], "Delete");
    }

    #[test]
    fn list_and_map_types_come_from_the_extensions() {
        let s = topic_schema();
        let f = |n: &str| Seg::Field(n.into());
        assert_eq!(s.list_type(&[f("spec"), f("brokers")]), ListType::Set);
        assert_eq!(
            s.list_type(&[f("spec"), f("config"), f("x")]),
            ListType::Atomic
        );
    }
}
