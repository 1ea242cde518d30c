//! Changes to the JSON documents the brokers share (ACLs, SCRAM credentials, client quotas,
//! feature levels) that the operator makes for KafkaUsers and KafkaClusters: a conditional
//! update of one key, written only when the change changes it, and never creating the object
//! (the KafkaCluster reconciler does, once).

use kube::Api;
use tributary_crds::shared::{parse_document, Holder};
use tributary_crds::update::{ConditionalUpdate, Decision};

use crate::context::Context;
use crate::{Error, Result};

/// What a shared-document change came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Updated {
    /// The change changed nothing; nothing was written.
    Unchanged,
    /// Written.
    Written,
    /// The object does not exist; nothing was written.
    Missing,
}

/// Applies `change` to the document under `key` of `name`, writing it by a conditional update
/// (re-read and re-applied on conflict) when it changed anything.
pub async fn update_document<K, T>(
    ctx: &Context,
    ns: &str,
    name: &str,
    key: &str,
    change: &(dyn Fn(&mut T) -> bool + Send + Sync),
) -> Result<Updated>
where
    K: Holder,
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let what = || format!("{} {ns}/{name}", K::kind(&()));
    ConditionalUpdate::new(&api, name)
        .run(|object| changed_document(object, key, change))
        .await
        .map(|updated| updated.value)
        .map_err(|error| {
            Error::from_update(&what(), error, |refused| match refused {
                DocumentError::Unreadable(source) => Error::SharedDocument {
                    object: what(),
                    key: key.to_owned(),
                    source,
                },
                DocumentError::Unencodable(source) => Error::Encode {
                    what: what(),
                    source,
                },
            })
        })
}

/// Why a shared document cannot be changed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The key holds something that does not parse; it is left alone.
    #[error("unreadable document: {0}")]
    Unreadable(#[source] serde_json::Error),
    /// The changed document does not encode (a bug, not bad input).
    #[error("cannot encode the document: {0}")]
    Unencodable(#[source] serde_json::Error),
}

/// The object holding `key`'s document with `change` applied: nothing to write when the
/// object does not exist (the KafkaCluster reconciler creates it) or the change changes
/// nothing.
fn changed_document<K, T>(
    object: Option<&K>,
    key: &str,
    change: &(dyn Fn(&mut T) -> bool + Send + Sync),
) -> Decision<K, Updated, DocumentError>
where
    K: Holder,
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    let Some(object) = object else {
        return Decision::Keep(Updated::Missing);
    };
    let mut document: T = match parse_document(object.text(key).as_deref()) {
        Ok(document) => document,
        Err(unreadable) => return Decision::Abort(DocumentError::Unreadable(unreadable)),
    };
    if !change(&mut document) {
        return Decision::Keep(Updated::Unchanged);
    }
    match serde_json::to_string(&document) {
        Ok(json) => {
            let mut next = object.clone();
            next.set_text(key, json);
            Decision::Replace(next, Updated::Written)
        }
        Err(e) => Decision::Abort(DocumentError::Unencodable(e)),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn holding(text: &str) -> ConfigMap {
        let mut cm = ConfigMap::named("demo-acls");
        cm.set_text("k", text.to_owned());
        cm
    }

    fn add(v: &mut Vec<i32>) -> bool {
        if v.contains(&7) {
            return false;
        }
        v.push(7);
        true
    }

    #[test]
    fn a_document_is_written_only_when_the_change_changes_it() {
        let Decision::Replace(next, Updated::Written) =
            changed_document::<ConfigMap, Vec<i32>>(Some(&holding("[1]")), "k", &add)
        else {
            panic!("expected a write");
        };
        assert_eq!(next.text("k").as_deref(), Some("[1,7]"));
        assert!(matches!(
            changed_document::<ConfigMap, Vec<i32>>(Some(&next), "k", &add),
            Decision::Keep(Updated::Unchanged)
        ));
        assert!(matches!(
            changed_document::<ConfigMap, Vec<i32>>(None, "k", &add),
            Decision::Keep(Updated::Missing)
        ));
        assert!(matches!(
            changed_document::<ConfigMap, Vec<i32>>(Some(&holding("{oops")), "k", &add),
            Decision::Abort(DocumentError::Unreadable(_))
        ));
    }
}
