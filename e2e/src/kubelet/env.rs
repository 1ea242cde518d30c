//! A container's environment as the kubelet builds it: `env` in order (literal values with
//! `$(VAR)` expanded against the variables defined before them, the downward API's
//! `fieldRef`s, `configMapKeyRef` and `secretKeyRef`), after `envFrom`; and `$(VAR)`
//! expansion of command and args against the whole environment. `resourceFieldRef` is not
//! supported (the container fails with CreateContainerConfigError).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

/// Why a container's environment cannot be built (its status says so, as
/// CreateContainerConfigError does).
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A referenced ConfigMap or Secret (or its key) is missing and not optional.
    #[error("{kind} {name:?} {what}")]
    Missing {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What is missing about it.
        what: String,
    },
    /// A downward API field the kubelet does not provide.
    #[error("unsupported fieldPath {0:?}")]
    FieldPath(String),
    /// An env source the stand-in does not model.
    #[error("env {0}: resourceFieldRef is not supported by the kubelet stand-in")]
    Unsupported(String),
}

/// What `fieldRef`s and references resolve against.
pub(crate) struct Sources<'a> {
    pub(crate) pod: &'a Pod,
    pub(crate) pod_ip: &'a str,
    pub(crate) host_ip: &'a str,
    pub(crate) config_maps: &'a BTreeMap<String, ConfigMap>,
    pub(crate) secrets: &'a BTreeMap<String, Secret>,
}

/// Expands `$(VAR)` in `s` as Kubernetes does: defined variables are replaced, undefined
/// references are kept as written, `$$` is a literal `$`.
pub fn expand(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The value of a downward API `fieldPath` of `pod`.
pub(crate) fn field(src: &Sources<'_>, path: &str) -> Result<String, EnvError> {
    let meta = &src.pod.metadata;
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| -> Option<String> {
        let key = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let spec = src.pod.spec.as_ref();
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".to_owned()),
        "status.podIP" | "status.podIPs" => src.pod_ip.to_owned(),
        "status.hostIP" | "status.hostIPs" => src.host_ip.to_owned(),
        "metadata.labels" | "metadata.annotations" => {
            let map = if path == "metadata.labels" {
                meta.labels.as_ref()
            } else {
                meta.annotations.as_ref()
            };
            map.iter()
                .flat_map(|m| m.iter())
                .map(|(k, v)| format!("{k}={v:?}\n"))
                .collect()
        }
        _ => keyed("metadata.labels", meta.labels.as_ref())
            .or_else(|| keyed("metadata.annotations", meta.annotations.as_ref()))
            .ok_or_else(|| EnvError::FieldPath(path.to_owned()))?,
    };
    Ok(value)
}

fn config_map_value(
    src: &Sources<'_>,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, EnvError> {
    let value = src
        .config_maps
        .get(name)
        .and_then(|cm| cm.data.as_ref()?.get(key).cloned());
    match value {
        Some(v) => Ok(Some(v)),
        None if optional => Ok(None),
        None => Err(EnvError::Missing {
            kind: "configmap",
            name: name.to_owned(),
            what: format!("has no key {key:?} (or does not exist)"),
        }),
    }
}

fn secret_value(
    src: &Sources<'_>,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, EnvError> {
    let value = src.secrets.get(name).and_then(|s| {
        s.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .or_else(|| s.string_data.as_ref()?.get(key).cloned())
    });
    match value {
        Some(v) => Ok(Some(v)),
        None if optional => Ok(None),
        None => Err(EnvError::Missing {
            kind: "secret",
            name: name.to_owned(),
            what: format!("has no key {key:?} (or does not exist)"),
        }),
    }
}

/// The environment the container's spec defines, in order (later definitions win).
pub(crate) fn container_env(
    src: &Sources<'_>,
    container: &Container,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        vars.retain(|(name, _)| *name != k);
        vars.push((k, v));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match src.config_maps.get(&r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut vars, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(EnvError::Missing {
                        kind: "configmap",
                        name: r.name.clone(),
                        what: "not found".to_owned(),
                    })
                }
            }
        }
        if let Some(r) = &from.secret_ref {
            match src.secrets.get(&r.name) {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(EnvError::Missing {
                        kind: "secret",
                        name: r.name.clone(),
                        what: "not found".to_owned(),
                    })
                }
            }
        }
    }
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (_, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    Some(field(src, &f.field_path)?)
                } else if let Some(r) = &from.config_map_key_ref {
                    config_map_value(src, &r.name, &r.key, r.optional == Some(true))?
                } else if let Some(r) = &from.secret_key_ref {
                    secret_value(src, &r.name, &r.key, r.optional == Some(true))?
                } else {
                    return Err(EnvError::Unsupported(e.name.clone()));
                }
            }
            (Some(v), None) => {
                let defined = vars.clone();
                Some(expand(v, |name| {
                    defined
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                }))
            }
            (None, None) => Some(String::new()),
        };
        if let Some(v) = value {
            set(&mut vars, e.name.clone(), v);
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let lookup = |n: &str| (n == "POD_IP").then(|| "127.0.1.2".to_owned());
        assert_eq!(expand("$(POD_IP):9092", lookup), "127.0.1.2:9092");
        assert_eq!(expand("$(UNDEFINED)/x", lookup), "$(UNDEFINED)/x");
        assert_eq!(expand("$$(POD_IP)", lookup), "$(POD_IP)");
        assert_eq!(expand("cost $5 $(POD_IP", lookup), "cost $5 $(POD_IP");
    }

    #[test]
    fn env_uses_the_downward_api_and_earlier_variables() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("demo-broker-2".into()),
                namespace: Some("kafka".into()),
                labels: Some(BTreeMap::from([(
                    "apps.kubernetes.io/pod-index".to_owned(),
                    "2".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        let field_env = |name: &str, path: &str| EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        };
        let container = Container {
            name: "broker".into(),
            env: Some(vec![
                field_env(
                    "BROKER_ID",
                    "metadata.labels['apps.kubernetes.io/pod-index']",
                ),
                field_env("POD_IP", "status.podIP"),
                EnvVar {
                    name: "LISTENER".into(),
                    value: Some("$(POD_IP):9092 $(LATER)".into()),
                    ..EnvVar::default()
                },
                field_env("LATER", "metadata.namespace"),
            ]),
            ..Container::default()
        };
        let (cms, secrets) = (BTreeMap::new(), BTreeMap::new());
        let src = Sources {
            pod: &pod,
            pod_ip: "127.0.1.4",
            host_ip: "127.0.1.1",
            config_maps: &cms,
            secrets: &secrets,
        };
        let env = container_env(&src, &container).expect("env");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("BROKER_ID"), Some("2"));
        assert_eq!(get("LISTENER"), Some("127.0.1.4:9092 $(LATER)"));
        assert_eq!(get("LATER"), Some("kafka"));
    }
}
