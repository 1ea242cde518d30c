//! The `baseline` controls: no known privilege escalation (host namespaces and paths,
//! privileged containers, extra capabilities, unsafe profiles and sysctls).

use serde_json::Value;

use super::checks::{containers, join_quote, name, named_containers, plural, setters, Violation};

/// Capabilities a baseline container may add (the container runtime's defaults).
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Namespaced sysctls known safe (at `latest`).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// SELinux types a pod may use.
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The deprecated per-container AppArmor annotation.
const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// Every baseline violation of the pod.
pub(super) fn check(metadata: &Value, spec: &Value) -> Vec<Violation> {
    [
        app_armor(metadata, spec),
        capabilities(spec),
        host_namespaces(spec),
        host_path_volumes(spec),
        host_ports(spec),
        privileged(spec),
        proc_mount(spec),
        se_linux(spec),
        seccomp(spec),
        sysctls(spec),
        host_process(spec),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Names of the containers `bad` picks.
fn bad_containers(spec: &Value, mut bad: impl FnMut(&Value) -> bool) -> Vec<String> {
    containers(spec).filter(|c| bad(c)).map(name).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn host_process(spec: &Value) -> Option<Violation> {
    let on = |sc: &Value| sc["windowsOptions"]["hostProcess"].as_bool() == Some(true);
    let pod = on(&spec["securityContext"]);
    let bad = bad_containers(spec, |c| on(&c["securityContext"]));
    let who = setters(pod, &bad);
    (!who.is_empty()).then(|| {
        Violation::new(
            "windowsHostProcess",
            "hostProcess",
            format!(
                "{} must not set securityContext.windowsOptions.hostProcess=true",
                who.join(" and ")
            ),
        )
    })
}

fn host_namespaces(spec: &Value) -> Option<Violation> {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|f| spec[*f].as_bool() == Some(true))
        .map(|f| format!("{f}=true"))
        .collect();
    (!set.is_empty()).then(|| Violation::new("hostNamespaces", "host namespaces", set.join(", ")))
}

fn privileged(spec: &Value) -> Option<Violation> {
    let bad = bad_containers(spec, |c| {
        c["securityContext"]["privileged"].as_bool() == Some(true)
    });
    (!bad.is_empty()).then(|| {
        Violation::new(
            "privileged",
            "privileged",
            format!(
                "{} must not set securityContext.privileged=true",
                named_containers(&bad)
            ),
        )
    })
}

/// Capabilities a container adds.
pub(super) fn added(c: &Value) -> Vec<String> {
    c["securityContext"]["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn capabilities(spec: &Value) -> Option<Violation> {
    let mut caps = Vec::new();
    let bad = bad_containers(spec, |c| {
        let extra: Vec<String> = added(c)
            .into_iter()
            .filter(|a| !DEFAULT_CAPABILITIES.contains(&a.as_str()))
            .collect();
        let any = !extra.is_empty();
        caps.extend(extra);
        any
    });
    (!bad.is_empty()).then(|| {
        Violation::new(
            "capabilities_baseline",
            "non-default capabilities",
            format!(
                "{} must not include {} in securityContext.capabilities.add",
                named_containers(&bad),
                join_quote(&sorted(caps))
            ),
        )
    })
}

fn host_path_volumes(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        Violation::new(
            "hostPathVolumes",
            "hostPath volumes",
            format!(
                "{} {}",
                plural("volume", "volumes", bad.len()),
                join_quote(&bad)
            ),
        )
    })
}

fn host_ports(spec: &Value) -> Option<Violation> {
    let mut ports = Vec::new();
    let bad = bad_containers(spec, |c| {
        let found: Vec<String> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64())
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        let any = !found.is_empty();
        ports.extend(found);
        any
    });
    let ports = sorted(ports);
    (!bad.is_empty()).then(|| {
        Violation::new(
            "hostPorts",
            "hostPort",
            format!(
                "{} {} {} {}",
                named_containers(&bad),
                plural("uses", "use", bad.len()),
                plural("hostPort", "hostPorts", ports.len()),
                ports.join(", ")
            ),
        )
    })
}

fn app_armor(metadata: &Value, spec: &Value) -> Option<Violation> {
    let mut values = Vec::new();
    let mut bad_type = |sc: &Value| match sc["appArmorProfile"]["type"].as_str() {
        None | Some("RuntimeDefault") | Some("Localhost") => false,
        Some(t) => {
            values.push(t.to_owned());
            true
        }
    };
    let pod = bad_type(&spec["securityContext"]);
    let bad = bad_containers(spec, |c| bad_type(&c["securityContext"]));
    let mut values = sorted(values);
    let mut who = setters(pod, &bad);
    let mut annotations: Vec<String> = metadata["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(APPARMOR_ANNOTATION))
        .filter_map(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            let ok = v == "runtime/default" || v.starts_with("localhost/");
            (!ok).then(|| format!("{k}={v:?}"))
        })
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        who.push(plural("annotation", "annotations", annotations.len()).to_owned());
        values.extend(annotations);
    }
    (!who.is_empty()).then(|| {
        Violation::new(
            "appArmorProfile",
            plural(
                "forbidden AppArmor profile",
                "forbidden AppArmor profiles",
                values.len(),
            ),
            format!(
                "{} must not set AppArmor profile type to {}",
                who.join(" and "),
                join_quote(&values)
            ),
        )
    })
}

fn se_linux(spec: &Value) -> Option<Violation> {
    let (mut types, mut user, mut role) = (Vec::new(), false, false);
    let mut invalid = |sc: &Value| {
        let o = &sc["seLinuxOptions"];
        if !o.is_object() {
            return false;
        }
        let mut ok = true;
        let t = o["type"].as_str().unwrap_or_default();
        if !SELINUX_TYPES.contains(&t) {
            types.push(t.to_owned());
            ok = false;
        }
        if !o["user"].as_str().unwrap_or_default().is_empty() {
            user = true;
            ok = false;
        }
        if !o["role"].as_str().unwrap_or_default().is_empty() {
            role = true;
            ok = false;
        }
        !ok
    };
    let pod = invalid(&spec["securityContext"]);
    let bad = bad_containers(spec, |c| invalid(&c["securityContext"]));
    let who = setters(pod, &bad);
    if who.is_empty() {
        return None;
    }
    let types = sorted(types);
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!(
            "{} {}",
            plural("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_owned());
    }
    if role {
        data.push("role may not be set".to_owned());
    }
    Some(Violation::new(
        "seLinuxOptions",
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            who.join(" and "),
            data.join("; ")
        ),
    ))
}

fn proc_mount(spec: &Value) -> Option<Violation> {
    let mut types = Vec::new();
    let bad = bad_containers(spec, |c| match c["securityContext"]["procMount"].as_str() {
        None | Some("Default") => false,
        Some(t) => {
            types.push(t.to_owned());
            true
        }
    });
    (!bad.is_empty()).then(|| {
        Violation::new(
            "procMount",
            "procMount",
            format!(
                "{} must not set securityContext.procMount to {}",
                named_containers(&bad),
                join_quote(&sorted(types))
            ),
        )
    })
}

fn seccomp(spec: &Value) -> Option<Violation> {
    let unconfined = |sc: &Value| sc["seccompProfile"]["type"].as_str() == Some("Unconfined");
    let pod = unconfined(&spec["securityContext"]);
    let bad = bad_containers(spec, |c| unconfined(&c["securityContext"]));
    let who = setters(pod, &bad);
    (!who.is_empty()).then(|| {
        Violation::new(
            "seccompProfile_baseline",
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
                who.join(" and ")
            ),
        )
    })
}

fn sysctls(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(name)
        .filter(|n| !SAFE_SYSCTLS.contains(&n.as_str()))
        .collect();
    (!bad.is_empty()).then(|| Violation::new("sysctls", "forbidden sysctls", bad.join(", ")))
}
