//! What the server serves: one [`ResourceType`] per resource (built-in, or registered by a
//! CustomResourceDefinition), looked up by group, version and plural as the REST paths name
//! them.

mod builtin;
pub(crate) mod crd;
mod lists;

use std::sync::Arc;

use serde_json::Value;

#[cfg(test)]
pub(crate) use lists::builtin_list_type;
pub(crate) use lists::{ListType, Seg};

use super::schema::Schema;

/// How objects of one resource are converted between the form a client reads and writes and
/// the form they are stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// Only `apiVersion` changes (CRDs' `None` strategy; built-ins with one version).
    ApiVersion,
    /// `events.k8s.io/v1` Events, stored as core `v1` Events (the real server shares them).
    EventsV1,
}

/// One served version of a resource.
#[derive(Clone)]
pub(crate) struct Version {
    /// Version name (`v1`, `v1alpha1`).
    pub(crate) name: String,
    /// Whether this is the storage version.
    pub(crate) storage: bool,
    /// The CRD's structural schema for this version; `None` for built-ins.
    pub(crate) schema: Option<Arc<Schema>>,
    /// `additionalPrinterColumns` (CRDs) for `kubectl get`'s table.
    pub(crate) columns: Vec<Column>,
    /// Whether `status` is a subresource (then only `/status` writes it).
    pub(crate) status: bool,
    /// The scale subresource, if served.
    pub(crate) scale: Option<ScaleSpec>,
}

/// Where the scale subresource reads and writes replicas (JSON paths like `.spec.replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScaleSpec {
    pub(crate) spec_replicas: String,
    pub(crate) status_replicas: String,
    pub(crate) label_selector: Option<String>,
}

/// A printer column: `kubectl get` shows `name` with the value at `json_path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) type_: String,
    pub(crate) format: String,
    pub(crate) description: String,
    pub(crate) priority: i64,
    pub(crate) json_path: String,
}

/// Decodes a built-in object into its k8s-openapi type and back: what the type does not know
/// is an unknown field, and a type mismatch is a decoding error, as in the real server.
pub(crate) type RoundTrip = fn(Value) -> Result<Value, serde_json::Error>;

/// A resource the server serves.
pub(crate) struct ResourceType {
    /// API group, empty for core.
    pub(crate) group: String,
    /// Plural name, the path segment.
    pub(crate) plural: String,
    /// Singular name.
    pub(crate) singular: String,
    /// Kind of its objects.
    pub(crate) kind: String,
    /// Short names (`po`, `kt`).
    pub(crate) short_names: Vec<String>,
    /// Categories (`all`, `tributary`).
    pub(crate) categories: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub(crate) namespaced: bool,
    /// Served versions, the preferred first.
    pub(crate) versions: Vec<Version>,
    /// Storage id (`group/plural`) its objects are kept under; another resource's for
    /// `events.k8s.io` events.
    pub(crate) storage: String,
    /// Conversion between served and stored forms.
    pub(crate) conversion: Conversion,
    /// The built-in type's decoder, `None` for custom resources.
    pub(crate) round_trip: Option<RoundTrip>,
    /// Whether `metadata.generation` is maintained (set to 1, bumped on spec changes).
    pub(crate) generation: bool,
    /// Name of the CustomResourceDefinition that registered it.
    pub(crate) crd: Option<String>,
    /// Answered on creation and never stored (the access reviews): `create` is its only verb.
    pub(crate) create_only: bool,
}

impl ResourceType {
    /// `group/plural`: the id objects are served under.
    pub(crate) fn id(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `plural` or `plural.group`, as error messages name a resource.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `v1` or `group/version`.
    pub(crate) fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The version objects are stored in.
    pub(crate) fn storage_version(&self) -> &Version {
        self.versions
            .iter()
            .find(|v| v.storage)
            .unwrap_or(&self.versions[0])
    }

    /// A served version by name.
    pub(crate) fn version(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// Whether this is a custom resource (schema-validated, no strategic merge patch).
    pub(crate) fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    /// List semantics at `path` of version `version` (schema extensions for custom resources,
    /// the built-in types' list types otherwise).
    pub(crate) fn list_type(&self, version: &str, path: &[Seg]) -> ListType {
        if path.first() == Some(&Seg::Field("metadata".into())) {
            // ObjectMeta is the same built-in type in every resource.
            return lists::builtin_list_type(&self.kind, path);
        }
        match self.version(version).and_then(|v| v.schema.as_ref()) {
            Some(schema) => schema.list_type(path),
            None if self.round_trip.is_some() => lists::builtin_list_type(&self.kind, path),
            None => ListType::Atomic,
        }
    }

    /// Whether the map or struct at `path` is atomic (replaced as a whole by apply).
    pub(crate) fn atomic_map(&self, version: &str, path: &[Seg]) -> bool {
        match self.version(version).and_then(|v| v.schema.as_ref()) {
            Some(schema) => schema.atomic_map(path),
            None if self.round_trip.is_some() => lists::builtin_atomic_map(&self.kind, path),
            None => false,
        }
    }
}

/// Every resource served, built-ins first.
pub(crate) struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            types: builtin::all().into_iter().map(Arc::new).collect(),
        }
    }
}

impl Registry {
    /// The resource `plural` of `group` that serves `version`.
    pub(crate) fn find(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.version(version).is_some())
            .cloned()
    }

    /// The resource stored under `id` (`group/plural`), the one that owns the storage.
    pub(crate) fn by_storage(&self, id: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.storage == id && t.id() == id)
            .cloned()
    }

    /// Every resource, built-ins first, then custom resources in CRD name order.
    pub(crate) fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Replaces the resources registered by CRD `name` (none when it is gone).
    pub(crate) fn set_crd(&mut self, name: &str, types: Vec<ResourceType>) {
        self.types.retain(|t| t.crd.as_deref() != Some(name));
        self.types.extend(types.into_iter().map(Arc::new));
        let builtins = self.types.iter().filter(|t| t.crd.is_none()).count();
        self.types[builtins..].sort_by(|a, b| a.crd.cmp(&b.crd));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_core_and_grouped_built_ins_by_path_names() {
        let r = Registry::default();
        let pods = r.find("", "v1", "pods").expect("pods");
        assert_eq!(pods.kind, "Pod");
        assert!(pods.namespaced);
        assert!(r.find("apps", "v1", "statefulsets").is_some());
        assert!(r.find("apps", "v2", "statefulsets").is_none());
        let ev = r.find("events.k8s.io", "v1", "events").expect("events");
        assert_eq!(ev.storage, "/events");
        assert_eq!(
            r.by_storage("/events").map(|t| t.group.clone()),
            Some(String::new())
        );
    }
}
