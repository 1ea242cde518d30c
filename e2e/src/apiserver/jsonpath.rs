//! The JSONPath subset printer columns use: `.a.b`, `['a.b']`, `[0]`, `[*]` and filters like
//! `[?(@.type=="Ready")]`.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.a.b == "x")]` (or `!=`).
    Filter(Vec<String>, Value, bool),
}

fn parse(expr: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let s = expr.trim().trim_start_matches('{').trim_end_matches('}');
    let mut rest = s.strip_prefix('$').unwrap_or(s);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Field(r[..end].to_owned()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if inner == "*" {
                steps.push(Step::All);
            } else if let Ok(i) = inner.parse() {
                steps.push(Step::Index(i));
            } else if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                let (lhs, rhs, eq) = match f.split_once("==") {
                    Some((l, r)) => (l, r, true),
                    None => {
                        let (l, r) = f.split_once("!=")?;
                        (l, r, false)
                    }
                };
                let path = lhs
                    .trim()
                    .strip_prefix("@.")?
                    .split('.')
                    .map(str::to_owned)
                    .collect();
                let rhs = rhs.trim();
                let value = if let Some(q) = rhs.strip_prefix('"').and_then(|q| q.strip_suffix('"'))
                {
                    Value::String(q.to_owned())
                } else if let Some(q) = rhs.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
                    Value::String(q.to_owned())
                } else {
                    serde_json::from_str(rhs).ok()?
                };
                steps.push(Step::Filter(path, value, eq));
            } else {
                let name = inner.trim_matches(|c| c == '\'' || c == '"');
                steps.push(Step::Field(name.to_owned()));
            }
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Every value `expr` selects in `v` (none when it does not parse).
pub(crate) fn find<'a>(v: &'a Value, expr: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(expr) else {
        return Vec::new();
    };
    let mut current = vec![v];
    for step in &steps {
        let mut next = Vec::new();
        for c in current {
            match step {
                Step::Field(f) => next.extend(c.get(f.as_str())),
                Step::Index(i) => next.extend(c.get(*i)),
                Step::All => match c {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter(path, want, eq) => {
                    for item in c.as_array().into_iter().flatten() {
                        let got = path.iter().try_fold(item, |v, k| v.get(k.as_str()));
                        if (got == Some(want)) == *eq {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_indexes_and_filters() {
        let v = json!({"status": {"conditions": [
            {"type": "Progressing", "reason": "A"}, {"type": "Ready", "reason": "AllBrokersReady"}
        ]}, "spec": {"a.b": 1, "list": [5, 6]}});
        assert_eq!(
            find(&v, ".status.conditions[?(@.type==\"Ready\")].reason"),
            vec![&json!("AllBrokersReady")]
        );
        assert_eq!(find(&v, ".spec['a.b']"), vec![&json!(1)]);
        assert_eq!(find(&v, ".spec.list[1]"), vec![&json!(6)]);
        assert_eq!(find(&v, ".spec.list[*]").len(), 2);
        assert!(find(&v, ".missing.x").is_empty());
    }
}
