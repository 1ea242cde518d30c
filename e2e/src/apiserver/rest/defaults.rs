//! Defaults the real server gives built-in kinds on every write (its `SetDefaults_*`
//! functions), for the fields clients and controllers rely on: replicas, update strategies,
//! revision history, the pod template's restart, DNS, scheduling and termination settings,
//! container pull policies and port protocols, Secret types, load-balancer ingress IP modes.

use serde_json::{json, Map, Value};

use crate::apiserver::resources::ResourceType;

/// Sets `key` in `obj` to `value` when absent.
fn default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        if m.get(key).is_none_or(Value::is_null) {
            m.insert(key.to_owned(), value);
        }
    }
}

/// The object at `key`, created empty when absent (only inside existing objects).
fn object<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = obj.as_object_mut()?;
    let v = m
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    v.is_object().then_some(v)
}

fn pull_policy(image: Option<&str>) -> &'static str {
    let image = image.unwrap_or_default();
    let name = image.rsplit('/').next().unwrap_or_default();
    let latest =
        !image.contains('@') && name.split_once(':').is_none_or(|(_, tag)| tag == "latest");
    if latest {
        "Always"
    } else {
        "IfNotPresent"
    }
}

fn container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let policy = pull_policy(c["image"].as_str());
    default(c, "imagePullPolicy", json!(policy));
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    for p in c["ports"].as_array_mut().into_iter().flatten() {
        default(p, "protocol", json!("TCP"));
    }
}

fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "securityContext", json!({}));
    default(spec, "enableServiceLinks", json!(true));
    for key in ["containers", "initContainers"] {
        for c in spec[key].as_array_mut().into_iter().flatten() {
            container(c);
        }
    }
}

fn template(spec: &mut Value) {
    if let Some(pod) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        pod_spec(pod);
    }
}

fn rolling(strategy: &mut Value, rolling: Value) {
    default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        default(strategy, "rollingUpdate", rolling);
    }
}

/// Fills the defaults of a built-in object (custom resources get their schema's instead).
pub(super) fn apply(rt: &ResourceType, obj: &mut Value) {
    if rt.is_custom() || !obj.is_object() {
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            if let Some(s) = object(obj, "spec") {
                pod_spec(s);
            }
        }
        ("", "Secret") => default(obj, "type", json!("Opaque")),
        ("", "Service") => {
            // An ingress IP is captured by kube-proxy (VIP) unless the load balancer says it
            // proxies (LoadBalancerIPMode, on by default since 1.30).
            let ingress = obj["status"]["loadBalancer"]["ingress"].as_array_mut();
            for i in ingress.into_iter().flatten() {
                if i["ip"].is_string() {
                    default(i, "ipMode", json!("VIP"));
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(s) = object(obj, "spec") {
                default(s, "volumeMode", json!("Filesystem"));
            }
        }
        ("apps", "Deployment") => {
            let Some(s) = object(obj, "spec") else { return };
            default(s, "replicas", json!(1));
            default(s, "revisionHistoryLimit", json!(10));
            default(s, "progressDeadlineSeconds", json!(600));
            if let Some(st) = object(s, "strategy") {
                rolling(st, json!({"maxUnavailable": "25%", "maxSurge": "25%"}));
            }
            template(s);
        }
        ("apps", "StatefulSet") => {
            let Some(s) = object(obj, "spec") else { return };
            default(s, "replicas", json!(1));
            default(s, "revisionHistoryLimit", json!(10));
            default(s, "podManagementPolicy", json!("OrderedReady"));
            if let Some(st) = object(s, "updateStrategy") {
                rolling(st, json!({"partition": 0}));
            }
            default(
                s,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            template(s);
        }
        ("apps", "ReplicaSet") => {
            let Some(s) = object(obj, "spec") else { return };
            default(s, "replicas", json!(1));
            template(s);
        }
        ("apps", "DaemonSet") => {
            let Some(s) = object(obj, "spec") else { return };
            default(s, "revisionHistoryLimit", json!(10));
            if let Some(st) = object(s, "updateStrategy") {
                rolling(st, json!({"maxUnavailable": 1, "maxSurge": 0}));
            }
            template(s);
        }
        ("batch", "Job") => {
            let Some(s) = object(obj, "spec") else { return };
            default(s, "backoffLimit", json!(6));
            default(s, "completions", json!(1));
            default(s, "parallelism", json!(1));
            default(s, "completionMode", json!("NonIndexed"));
            default(s, "suspend", json!(false));
            template(s);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn workloads_get_replicas_strategies_and_pod_template_defaults() {
        let r = Registry::default();
        let sts = r.find("apps", "v1", "statefulsets").expect("sts");
        let mut obj = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x:1.0", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "y"},
        ]}}}});
        apply(&sts, &mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(
            obj["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        let pod = &obj["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn load_balancer_ingress_ips_default_to_vip_mode() {
        let r = Registry::default();
        let svc = r.find("", "v1", "services").expect("services");
        let mut obj = json!({"status": {"loadBalancer": {"ingress": [
            {"ip": "127.1.0.1"}, {"ip": "127.1.0.2", "ipMode": "Proxy"}, {"hostname": "lb"}]}}});
        apply(&svc, &mut obj);
        assert_eq!(
            obj["status"]["loadBalancer"]["ingress"],
            json!([{"ip": "127.1.0.1", "ipMode": "VIP"}, {"ip": "127.1.0.2", "ipMode": "Proxy"},
                   {"hostname": "lb"}])
        );
    }

    #[test]
    fn set_values_are_kept() {
        let r = Registry::default();
        let d = r.find("apps", "v1", "deployments").expect("deployments");
        let mut obj = json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}});
        apply(&d, &mut obj);
        assert_eq!(obj["spec"]["replicas"], 0);
        assert_eq!(obj["spec"]["strategy"], json!({"type": "Recreate"}));
    }
}
