//! ServiceAccount admission of a new pod, as the real server's `ServiceAccount` plugin: a pod
//! that names no account runs as its namespace's `default` one, and a pod whose account does
//! not exist is refused at creation (403), instead of being stored and left waiting on a
//! kubelet that can never fetch its token.

use serde_json::{json, Value};

use crate::apiserver::error::{ApiError, ApiResult};

/// The account a pod runs as when it names none (the namespace controller creates it).
const DEFAULT: &str = "default";

/// Admits `pod`, created in `namespace`: defaults `spec.serviceAccountName` (and its
/// deprecated alias `spec.serviceAccount`, as the v1 conversion fills it), then refuses the pod
/// unless `exists` says its account is there.
pub(super) fn admit(
    namespace: &str,
    pod: &mut Value,
    exists: impl Fn(&str) -> bool,
) -> ApiResult<()> {
    let named = pod["spec"]["serviceAccountName"]
        .as_str()
        .or_else(|| pod["spec"]["serviceAccount"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT)
        .to_owned();
    if let Some(spec) = pod["spec"].as_object_mut() {
        spec.insert("serviceAccountName".into(), json!(named));
        spec.insert("serviceAccount".into(), json!(named));
    }
    if exists(&named) {
        return Ok(());
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::forbidden(format!(
        "pods {name:?} is forbidden: error looking up service account {namespace}/{named}: serviceaccount {named:?} not found"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn a_pod_naming_no_account_runs_as_default_and_both_fields_say_so() {
        let mut p = pod(json!({"containers": []}));
        admit("ns", &mut p, |sa| sa == "default").expect("admitted");
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(p["spec"]["serviceAccount"], "default");
        let mut old_style = pod(json!({"serviceAccount": "broker"}));
        admit("ns", &mut old_style, |sa| sa == "broker").expect("admitted");
        assert_eq!(old_style["spec"]["serviceAccountName"], "broker");
    }

    #[test]
    fn a_pod_whose_account_is_missing_is_forbidden_with_kubernetes_message() {
        let mut p = pod(json!({"serviceAccountName": "sa"}));
        let e = admit("ns", &mut p, |_| false).expect_err("refused");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            r#"pods "p" is forbidden: error looking up service account ns/sa: serviceaccount "sa" not found"#
        );
    }
}
