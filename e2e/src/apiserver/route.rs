//! Kubernetes REST paths: `/api/v1/...` and `/apis/<group>/<version>/...`, namespaced or
//! not, with an object name and subresource, and the legacy `/watch/` prefix.

/// A parsed resource path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// API group, empty for core.
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
    /// `/api/v1/watch/...`: a watch whatever the query says.
    pub(crate) watch: bool,
}

/// Subresources of namespaces, which would otherwise read as a resource in a namespace.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl Route {
    /// Parses a resource path; `None` for anything else (discovery, unknown).
    pub(crate) fn parse(path: &str) -> Option<Route> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, mut rest) = match segs.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return None,
        };
        let watch = rest.first() == Some(&"watch");
        if watch {
            rest = &rest[1..];
        }
        let (namespace, rest) = match rest {
            ["namespaces", ns, sub] if group.is_empty() && NAMESPACE_SUBRESOURCES.contains(sub) => {
                return Some(Route {
                    group: String::new(),
                    version: version.to_owned(),
                    plural: "namespaces".into(),
                    namespace: None,
                    name: Some((*ns).to_owned()),
                    sub: Some((*sub).to_owned()),
                    watch,
                })
            }
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
            _ => (None, rest),
        };
        let (plural, name, sub) = match rest {
            [p] => (*p, None, None),
            [p, n] => (*p, Some((*n).to_owned()), None),
            [p, n, s] => (*p, Some((*n).to_owned()), Some((*s).to_owned())),
            _ => return None,
        };
        if plural.is_empty() || name.as_deref() == Some("") {
            return None;
        }
        Some(Route {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace,
            name,
            sub,
            watch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_core_group_namespaced_and_watch_paths() {
        let r = Route::parse("/api/v1/namespaces/ns/pods/p-0/status").expect("pod status");
        assert_eq!(
            (
                r.group.as_str(),
                r.plural.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.sub.as_deref()
            ),
            ("", "pods", Some("ns"), Some("p-0"), Some("status"))
        );
        let r = Route::parse("/apis/tributary.dev/v1alpha1/kafkatopics").expect("all topics");
        assert_eq!((r.group.as_str(), r.namespace), ("tributary.dev", None));
        let r = Route::parse("/api/v1/namespaces/ns").expect("a namespace");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref()),
            ("namespaces", Some("ns"))
        );
        let r = Route::parse("/api/v1/namespaces/ns/status").expect("namespace status");
        assert_eq!(
            (r.name.as_deref(), r.sub.as_deref()),
            (Some("ns"), Some("status"))
        );
        let r = Route::parse("/api/v1/watch/namespaces/ns/configmaps").expect("legacy watch");
        assert!(r.watch);
        assert_eq!(Route::parse("/apis/apps"), None);
        assert_eq!(Route::parse("/metrics"), None);
        assert_eq!(Route::parse("/api/v1/a/b/c/d"), None);
    }
}
