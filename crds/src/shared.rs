//! How a shared document (the ACLs, the SCRAM credentials, the dynamic configs) is read from
//! the key of the ConfigMap or Secret holding it, the same way by every writer: an absent or
//! blank key is the empty document, anything else must parse, since a change must never
//! overwrite what it could not read. Writers change a document by a replace conditional on
//! the resourceVersion they read, retried on conflict, so concurrent changes are all kept.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The document in `text` (the key's value, if the key exists).
pub fn parse_document<T: DeserializeOwned + Default>(
    text: Option<&str>,
) -> Result<T, serde_json::Error> {
    match text {
        None => Ok(T::default()),
        Some(json) if json.trim().is_empty() => Ok(T::default()),
        Some(json) => serde_json::from_str(json),
    }
}

/// An object kind that holds text under keys (ConfigMap, Secret), so every writer of a shared
/// document reads and writes its key the same way whichever kind holds it.
pub trait Holder:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The text under `key`.
    fn text(&self, key: &str) -> Option<String>;
    /// Sets the text under `key`.
    fn set_text(&mut self, key: &str, text: String);
    /// A new object named `name`, with nothing in it.
    fn named(name: &str) -> Self;
}

impl Holder for ConfigMap {
    fn text(&self, key: &str) -> Option<String> {
        self.data.as_ref()?.get(key).cloned()
    }

    fn set_text(&mut self, key: &str, text: String) {
        self.data
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), text);
    }

    fn named(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }
}

impl Holder for Secret {
    fn text(&self, key: &str) -> Option<String> {
        let bytes = self.data.as_ref()?.get(key)?;
        Some(String::from_utf8_lossy(&bytes.0).into_owned())
    }

    fn set_text(&mut self, key: &str, text: String) {
        self.data
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), ByteString(text.into_bytes()));
    }

    fn named(name: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acls::AclSet;

    #[test]
    fn absent_or_blank_is_empty_and_garbage_is_an_error() {
        assert_eq!(parse_document::<AclSet>(None).unwrap(), AclSet::new());
        assert_eq!(
            parse_document::<AclSet>(Some(" \n")).unwrap(),
            AclSet::new()
        );
        assert_eq!(parse_document::<AclSet>(Some("[]")).unwrap(), AclSet::new());
        assert!(parse_document::<AclSet>(Some("{oops")).is_err());
    }
}
