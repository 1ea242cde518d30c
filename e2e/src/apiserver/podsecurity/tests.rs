//! Table tests: each control of baseline and restricted with a passing and a failing pod, and
//! the namespace labels.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::checks::{evaluate, Violation};
use super::levels::{Level, LevelVersion, Policy};

/// A container that satisfies `restricted`.
fn good_container(name: &str) -> Value {
    json!({"name": name, "image": "i", "securityContext": {
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
    }})
}

/// A pod spec that satisfies `restricted`, with `patch` merged into it.
fn pod(patch: Value) -> Value {
    let mut spec = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [good_container("c")],
        "volumes": [{"name": "data", "emptyDir": {}}],
    });
    crate::apiserver::patch::merge(&mut spec, &patch);
    spec
}

/// A pod patch whose one container is the good one with `sc` merged into its securityContext.
fn with_sc(sc: Value) -> Value {
    let mut c = good_container("c");
    crate::apiserver::patch::merge(&mut c["securityContext"], &sc);
    json!({"containers": [c]})
}

fn joined(level: Level, meta: &Value, spec: &Value) -> String {
    Violation::join(&evaluate(level, meta, spec))
}

#[test]
fn the_good_pod_passes_every_level() {
    let spec = pod(json!({}));
    for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
        assert_eq!(evaluate(level, &json!({}), &spec), vec![], "{level:?}");
    }
}

#[test]
fn each_baseline_control_passes_and_fails_with_kubernetes_wording() {
    // (control, allowed pod patch, forbidden pod patch, expected message)
    let table: Vec<(&str, Value, Value, &str)> = vec![
        (
            "hostProcess",
            json!({"securityContext": {"windowsOptions": {"hostProcess": false}}}),
            json!({"securityContext": {"windowsOptions": {"hostProcess": true}}}),
            "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)",
        ),
        (
            "host namespaces",
            json!({"hostNetwork": false}),
            json!({"hostNetwork": true, "hostIPC": true}),
            "host namespaces (hostNetwork=true, hostIPC=true)",
        ),
        (
            "privileged",
            with_sc(json!({"privileged": false})),
            with_sc(json!({"privileged": true})),
            r#"privileged (container "c" must not set securityContext.privileged=true)"#,
        ),
        (
            "capabilities",
            with_sc(json!({"capabilities": {"add": ["NET_BIND_SERVICE"]}})),
            with_sc(json!({"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}})),
            r#"non-default capabilities (container "c" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add)"#,
        ),
        (
            "hostPath",
            json!({"volumes": [{"name": "d", "emptyDir": {}}]}),
            json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
            r#"hostPath volumes (volume "h")"#,
        ),
        (
            "host ports",
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}),
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
            r#"hostPort (container "c" uses hostPort 8080)"#,
        ),
        (
            "AppArmor",
            with_sc(json!({"appArmorProfile": {"type": "RuntimeDefault"}})),
            with_sc(json!({"appArmorProfile": {"type": "Unconfined"}})),
            r#"forbidden AppArmor profile (container "c" must not set AppArmor profile type to "Unconfined")"#,
        ),
        (
            "SELinux",
            with_sc(json!({"seLinuxOptions": {"type": "container_t", "level": "s0:c1"}})),
            json!({"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "root"}}}),
            r#"seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)"#,
        ),
        (
            "procMount",
            with_sc(json!({"procMount": "Default"})),
            with_sc(json!({"procMount": "Unmasked"})),
            r#"procMount (container "c" must not set securityContext.procMount to "Unmasked")"#,
        ),
        (
            "seccomp",
            with_sc(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}})),
            json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
            r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ),
        (
            "sysctls",
            json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}}),
            json!({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}),
            "forbidden sysctls (kernel.msgmax)",
        ),
    ];
    for (control, allowed, forbidden, message) in table {
        // Only the seccomp change may affect restricted; baseline alone is judged here.
        assert_eq!(
            joined(Level::Baseline, &json!({}), &pod(allowed)),
            "",
            "{control} allowed"
        );
        assert_eq!(
            joined(Level::Baseline, &json!({}), &pod(forbidden)),
            message,
            "{control} forbidden"
        );
    }
}

#[test]
fn apparmor_annotations_and_every_kind_of_container_count() {
    let meta = json!({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/d": "runtime/default",
    }});
    assert_eq!(
        joined(Level::Baseline, &meta, &pod(json!({}))),
        r#"forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"")"#
    );
    let priv_c = json!({"name": "x", "securityContext": {"privileged": true}});
    let spec = pod(
        json!({"initContainers": [priv_c.clone()], "ephemeralContainers": [{"name": "y", "securityContext": {"privileged": true}}]}),
    );
    assert_eq!(
        joined(Level::Baseline, &json!({}), &spec),
        r#"privileged (containers "x", "y" must not set securityContext.privileged=true)"#
    );
}

#[test]
fn each_restricted_control_passes_and_fails_with_kubernetes_wording() {
    let table: Vec<(&str, Value, &str)> = vec![
        (
            "volume types",
            json!({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "p", "persistentVolumeClaim": {"claimName": "x"}}]}),
            r#"restricted volume types (volume "n" uses restricted volume type "nfs")"#,
        ),
        (
            "allowPrivilegeEscalation",
            with_sc(json!({"allowPrivilegeEscalation": null})),
            r#"allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false)"#,
        ),
        (
            "runAsNonRoot unset",
            json!({"securityContext": {"runAsNonRoot": null}}),
            r#"runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)"#,
        ),
        (
            "runAsNonRoot false",
            with_sc(json!({"runAsNonRoot": false})),
            r#"runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)"#,
        ),
        (
            "runAsUser",
            json!({"securityContext": {"runAsUser": 0}}),
            "runAsUser=0 (pod must not set runAsUser=0)",
        ),
        (
            "seccomp unset",
            json!({"securityContext": {"seccompProfile": null}}),
            r#"seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
        ),
        (
            "seccomp Unconfined",
            with_sc(json!({"seccompProfile": {"type": "Unconfined"}})),
            r#"seccompProfile (container "c" must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ),
        (
            "capabilities",
            with_sc(json!({"capabilities": {"drop": null, "add": ["CHOWN", "NET_BIND_SERVICE"]}})),
            r#"unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]; container "c" must not include "CHOWN" in securityContext.capabilities.add)"#,
        ),
    ];
    for (control, forbidden, message) in table {
        let spec = pod(forbidden);
        assert_eq!(
            joined(Level::Restricted, &json!({}), &spec),
            message,
            "{control}"
        );
    }
    // Passing pods: the good one, and each control's allowed alternatives.
    let allowed = [
        json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}, {"name": "p", "projected": {"sources": []}}]}),
        {
            let mut p = with_sc(json!({"runAsNonRoot": true}));
            p["securityContext"] = json!({"runAsNonRoot": null});
            p
        },
        json!({"securityContext": {"runAsUser": 1000}}),
        {
            let mut p =
                with_sc(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}));
            p["securityContext"] = json!({"seccompProfile": null});
            p
        },
        with_sc(json!({"capabilities": {"add": ["NET_BIND_SERVICE"]}})),
        json!({"hostUsers": false, "securityContext": {"runAsNonRoot": null, "runAsUser": 0}}),
    ];
    for patch in allowed {
        assert_eq!(
            joined(Level::Restricted, &json!({}), &pod(patch.clone())),
            "",
            "{patch}"
        );
    }
}

#[test]
fn violations_combine_in_kubernetes_order_and_restricted_replaces_baseline_checks() {
    let spec = json!({"containers": [{"name": "c", "image": "i",
        "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}], "hostPID": true});
    assert_eq!(
        joined(Level::Restricted, &json!({}), &spec),
        concat!(
            r#"allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), "#,
            r#"unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]; container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add), "#,
            "host namespaces (hostPID=true), ",
            r#"runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), "#,
            r#"seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
        )
    );
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("pod-security.kubernetes.io/{k}"), (*v).to_owned()))
        .collect()
}

fn lv(level: Level, version: Option<u32>) -> LevelVersion {
    LevelVersion { level, version }
}

/// Labels, then the enforce, warn and audit levels and the number of label errors.
type LabelCase = (
    Vec<(&'static str, &'static str)>,
    LevelVersion,
    LevelVersion,
    LevelVersion,
    usize,
);

#[test]
fn namespace_labels_parse_as_kubernetes_does() {
    use Level::*;
    // (labels, enforce, warn, audit, errors)
    let table: Vec<LabelCase> = vec![
        (
            vec![],
            lv(Privileged, None),
            lv(Privileged, None),
            lv(Privileged, None),
            0,
        ),
        (
            vec![("enforce", "restricted")],
            lv(Restricted, None),
            lv(Restricted, None),
            lv(Privileged, None),
            0,
        ),
        (
            vec![("enforce", "baseline"), ("enforce-version", "v1.29")],
            lv(Baseline, Some(29)),
            lv(Baseline, Some(29)),
            lv(Privileged, None),
            0,
        ),
        (
            vec![
                ("enforce", "baseline"),
                ("warn", "restricted"),
                ("audit", "restricted"),
                ("audit-version", "latest"),
            ],
            lv(Baseline, None),
            lv(Restricted, None),
            lv(Restricted, None),
            0,
        ),
        // An invalid enforce level fails closed; warn is then not defaulted from it.
        (
            vec![("enforce", "strict")],
            lv(Restricted, None),
            lv(Privileged, None),
            lv(Privileged, None),
            1,
        ),
        // Invalid warn and audit levels fail open; an invalid version means latest.
        (
            vec![
                ("warn", "bogus"),
                ("audit", "x"),
                ("enforce", "baseline"),
                ("enforce-version", "1.2"),
            ],
            lv(Baseline, None),
            lv(Privileged, None),
            lv(Privileged, None),
            3,
        ),
    ];
    for (pairs, enforce, warn, audit, errors) in table {
        let p = Policy::from_labels(&labels(&pairs));
        assert_eq!(
            (p.enforce, p.warn, p.audit),
            (enforce, warn, audit),
            "{pairs:?}"
        );
        assert_eq!(p.errors.len(), errors, "{pairs:?}: {:?}", p.errors);
    }
    assert_eq!(lv(Restricted, None).to_string(), "restricted:latest");
    assert_eq!(lv(Baseline, Some(30)).to_string(), "baseline:v1.30");
}
