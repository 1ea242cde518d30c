//! The patch kinds of `PATCH` (server-side apply lives in `ssa`): JSON merge patch
//! (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

pub(crate) mod strategic;

use serde_json::Value;

/// A patch body's kind, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchKind {
    /// The kind a Content-Type names.
    pub(crate) fn from_content_type(ct: &str) -> Option<Self> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        Some(match media {
            "application/merge-patch+json" => PatchKind::Merge,
            "application/json-patch+json" => PatchKind::Json,
            "application/strategic-merge-patch+json" => PatchKind::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
            _ => return None,
        })
    }

    /// The media types a resource accepts for PATCH (custom resources have no strategic merge).
    pub(crate) fn accepted(custom: bool) -> &'static [&'static str] {
        if custom {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]
        } else {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
                "application/strategic-merge-patch+json",
            ]
        }
    }
}

/// RFC 7386 merge patch.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch; the error text becomes a 422. Like the API server (evanphx/json-patch),
/// a `test` for `null` passes when the path does not exist (kube's finalizer helper relies on it).
pub(crate) fn json(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops: Vec<Value> = patch
        .as_array()
        .ok_or("a JSON patch is an array of operations")?
        .iter()
        .filter(|op| {
            let absent_null_test = op["op"] == "test"
                && op["value"].is_null()
                && op["path"]
                    .as_str()
                    .is_some_and(|p| target.pointer(p).is_none());
            !absent_null_test
        })
        .cloned()
        .collect();
    let p: json_patch::Patch =
        serde_json::from_value(Value::Array(ops)).map_err(|e| e.to_string())?;
    json_patch::patch(target, &p).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_test_for_null_passes_on_a_missing_path() {
        let mut obj = json!({"metadata": {}});
        let p = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]},
        ]);
        json(&mut obj, &p).expect("patch");
        assert_eq!(obj["metadata"]["finalizers"], json!(["f"]));
        let failing = json!([{"op": "test", "path": "/metadata/finalizers", "value": ["g"]}]);
        assert!(json(&mut obj, &failing).is_err());
    }

    #[test]
    fn content_types_select_the_patch_kind() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
        assert_eq!(PatchKind::from_content_type("application/json"), None);
    }
}
