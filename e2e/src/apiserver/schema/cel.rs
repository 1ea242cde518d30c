//! `x-kubernetes-validations` rules, evaluated with kube-cel; a failed rule is reported as the
//! real server does: `<path>: Invalid value: "<type>": <message>`.

use serde_json::Value;

use super::validate::type_name;
use super::{Located, PathSeg};
use crate::apiserver::error::{FieldError, FieldErrorKind};

/// Evaluates every rule against `obj` (transition rules also against `old`).
pub(super) fn evaluate(
    compiled: &kube_cel::CompiledSchema,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<Located> {
    let Err(errors) = kube_cel::validate_compiled(compiled, obj, old) else {
        return Vec::new();
    };
    errors
        .iter()
        .map(|e| {
            let path = parse_path(&e.field_path);
            let shown = super::value_at(obj, &path).map_or("object", type_name);
            let kind = match e.kind {
                kube_cel::ErrorKind::ValidationFailure => {
                    FieldErrorKind::from_rule_reason(e.reason.as_deref())
                }
                _ => FieldErrorKind::Invalid,
            };
            let value = matches!(kind, FieldErrorKind::Invalid).then(|| format!("{shown:?}"));
            Located {
                path,
                error: FieldError::new(kind, e.field_path.clone(), value, e.message.clone()),
            }
        })
        .collect()
}

/// `spec.a[0].b` into path segments (map keys with dots cannot be told apart from fields;
/// such paths only lose ratcheting).
fn parse_path(path: &str) -> Vec<PathSeg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(PathSeg::Prop(rest[..i].to_owned()));
            }
            rest = &rest[i..];
            while let Some(inner) = rest.strip_prefix('[') {
                let Some(end) = inner.find(']') else { break };
                let idx = &inner[..end];
                out.push(match idx.parse() {
                    Ok(n) => PathSeg::Index(n),
                    Err(_) => PathSeg::Key(idx.to_owned()),
                });
                rest = &inner[end + 1..];
            }
        } else {
            out.push(PathSeg::Prop(rest.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_field_paths_with_indexes() {
        assert_eq!(
            parse_path("spec.items[2].name"),
            vec![
                PathSeg::Prop("spec".into()),
                PathSeg::Prop("items".into()),
                PathSeg::Index(2),
                PathSeg::Prop("name".into())
            ]
        );
        assert!(parse_path("").is_empty());
    }
}
