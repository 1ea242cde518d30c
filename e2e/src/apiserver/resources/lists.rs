//! List and map semantics of built-in types, as their OpenAPI extensions declare them
//! (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-map-type`). Strategic merge patch and server-side apply both merge lists by
//! these keys: containers, env and volumes by name, ports by number, conditions by type.

/// One step of a path into an object, as schemas see it: a field, or any item of a list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seg {
    /// A field of an object (or a key of a map).
    Field(String),
    /// An item of a list.
    Item,
}

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars: merged by value.
    Set,
    /// A list of objects merged by the values of these keys (the first is the strategic merge
    /// patch merge key).
    Map(Vec<String>),
}

/// `a.b[].c` for `[a, b, Item, c]`.
pub(crate) fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Field(f) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(f);
            }
            Seg::Item => out.push_str("[]"),
        }
    }
    out
}

/// Where each kind keeps its PodSpec.
fn pod_spec_prefix(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("spec."),
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => Some("spec.template.spec."),
        "CronJob" => Some("spec.jobTemplate.spec.template.spec."),
        "PodTemplate" => Some("template.spec."),
        _ => None,
    }
}

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Lists inside each container, relative to the container.
fn container_list(rest: &str) -> Option<ListType> {
    Some(match rest {
        "ports" => map(&["containerPort", "protocol"]),
        "env" => map(&["name"]),
        "volumeMounts" => map(&["mountPath"]),
        "volumeDevices" => map(&["devicePath"]),
        "resizePolicy" => map(&["resourceName"]),
        _ => return None,
    })
}

/// Lists of a PodSpec, relative to it.
fn pod_spec_list(rest: &str) -> Option<ListType> {
    for c in CONTAINER_LISTS {
        if rest == *c {
            return Some(map(&["name"]));
        }
        if let Some(inner) = rest.strip_prefix(c).and_then(|r| r.strip_prefix("[].")) {
            return container_list(inner);
        }
    }
    Some(match rest {
        "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims" => map(&["name"]),
        "hostAliases" => map(&["ip"]),
        "topologySpreadConstraints" => map(&["topologyKey", "whenUnsatisfiable"]),
        _ => return None,
    })
}

fn map(keys: &[&str]) -> ListType {
    ListType::Map(keys.iter().map(|k| (*k).to_owned()).collect())
}

/// The list type at `path` of a built-in `kind`.
pub(crate) fn builtin_list_type(kind: &str, path: &[Seg]) -> ListType {
    let p = render(path);
    if let Some(rest) = pod_spec_prefix(kind).and_then(|prefix| p.strip_prefix(prefix)) {
        if let Some(t) = pod_spec_list(rest) {
            return t;
        }
    }
    match (kind, p.as_str()) {
        (_, "metadata.finalizers") => ListType::Set,
        (_, "metadata.ownerReferences") => map(&["uid"]),
        ("Job", "status.conditions") => ListType::Atomic,
        (_, "status.conditions") => map(&["type"]),
        ("Service", "spec.ports") => map(&["port", "protocol"]),
        ("Pod", "status.podIPs" | "status.hostIPs") => map(&["ip"]),
        ("Node", "status.addresses") => map(&["type"]),
        ("Node", "spec.podCIDRs") => ListType::Set,
        ("ServiceAccount", "secrets") => map(&["name"]),
        _ => ListType::Atomic,
    }
}

/// Whether the object at `path` of a built-in `kind` is atomic (label selectors, role refs,
/// key references): apply owns and replaces it as a whole.
pub(crate) fn builtin_atomic_map(kind: &str, path: &[Seg]) -> bool {
    let p = render(path);
    if let Some(rest) = pod_spec_prefix(kind).and_then(|prefix| p.strip_prefix(prefix)) {
        let atomic_refs = [
            ".valueFrom.configMapKeyRef",
            ".valueFrom.secretKeyRef",
            ".valueFrom.fieldRef",
            ".valueFrom.resourceFieldRef",
        ];
        if CONTAINER_LISTS
            .iter()
            .any(|c| rest.starts_with(&format!("{c}[].env[]")))
            && atomic_refs.iter().any(|r| rest.ends_with(r))
        {
            return true;
        }
    }
    matches!(
        (kind, p.as_str()),
        (
            "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Job"
                | "PodDisruptionBudget",
            "spec.selector",
        ) | ("RoleBinding" | "ClusterRoleBinding", "roleRef")
            | ("Event", "involvedObject" | "related")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<Seg> {
        let mut out = Vec::new();
        for part in s.split('.') {
            match part.strip_suffix("[]") {
                Some(f) => {
                    out.push(Seg::Field(f.to_owned()));
                    out.push(Seg::Item);
                }
                None => out.push(Seg::Field(part.to_owned())),
            }
        }
        out
    }

    #[test]
    fn pod_template_lists_merge_by_their_keys_in_every_workload() {
        let names = ListType::Map(vec!["name".into()]);
        assert_eq!(builtin_list_type("Pod", &path("spec.containers")), names);
        assert_eq!(
            builtin_list_type("StatefulSet", &path("spec.template.spec.containers[].env")),
            names
        );
        assert_eq!(
            builtin_list_type("Deployment", &path("spec.template.spec.containers[].ports")),
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(
            builtin_list_type("Deployment", &path("spec.template.spec.containers[].args")),
            ListType::Atomic
        );
        assert_eq!(
            builtin_list_type("ConfigMap", &path("metadata.finalizers")),
            ListType::Set
        );
        assert!(builtin_atomic_map("Deployment", &path("spec.selector")));
        assert!(!builtin_atomic_map("Deployment", &path("spec.template")));
    }
}
