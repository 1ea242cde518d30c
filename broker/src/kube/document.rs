//! A JSON document in one key of a ConfigMap or Secret, shared by every broker of the cluster
//! ([`crate::shared_state::Shared`]): a change is a replace conditional on the resourceVersion read,
//! so concurrent changes on two brokers are both kept, and each broker watches the object and
//! applies what it holds. The operator creates the object once, owned by the KafkaCluster; a
//! broker that comes first creates it.

use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tributary_crds::update::{ConditionalUpdate, Decision, UpdateError};

use crate::shared_state::{Change, Shared};

pub use tributary_crds::shared::Holder;

/// Document `T` under `key` of object `name`.
pub struct SharedDocument<K, T> {
    api: Api<K>,
    name: String,
    key: &'static str,
    document: PhantomData<fn() -> T>,
}

impl<K: Holder, T> SharedDocument<K, T>
where
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    /// The document under `key` of object `name` in `namespace`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: String,
        key: &'static str,
    ) -> SharedDocument<K, T> {
        SharedDocument {
            api: Api::namespaced(client, namespace),
            name,
            key,
            document: PhantomData,
        }
    }

    /// The document `object` holds ([`parse`]).
    fn parse(&self, object: &K) -> Result<T, String> {
        parse(&self.name, self.key, object)
    }

    async fn change(&self, change: Change<'_, T>) -> Result<T, String> {
        ConditionalUpdate::new(&self.api, &self.name)
            .run(|object| changed(&self.name, self.key, object, change))
            .await
            .map(|updated| updated.value)
            .map_err(|error| match error {
                UpdateError::Aborted(refused) => refused,
                UpdateError::Read { source, .. } => format!("read {}: {source}", self.name),
                UpdateError::Write { source, .. } => format!("update {}: {source}", self.name),
                UpdateError::Exhausted { .. } => {
                    format!("{} kept changing; nothing was changed", self.name)
                }
                other => other.to_string(),
            })
    }

    /// [`SharedDocument::parse`], logging (and keeping what was applied) when it fails.
    fn parse_or_log(&self, object: &K) -> Option<T> {
        self.parse(object)
            .map_err(|error| tracing::error!(%error, "shared state not applied"))
            .ok()
    }
}

/// The document under `key` of `object` (named `name`); an absent or empty key is the default,
/// an unreadable one an error (a change must not overwrite what it cannot read).
fn parse<K: Holder, T: DeserializeOwned + Default>(
    name: &str,
    key: &str,
    object: &K,
) -> Result<T, String> {
    tributary_crds::shared::parse_document(object.text(key).as_deref())
        .map_err(|e| format!("{name} key {key} is unreadable: {e}"))
}

/// Object `name` as read (`None`: none yet, so a new one holding the default) with `change`
/// applied to the document under `key`, and the changed document.
pub fn changed<K: Holder, T: Serialize + DeserializeOwned + Default>(
    name: &str,
    key: &str,
    object: Option<&K>,
    change: Change<'_, T>,
) -> Decision<K, T, String> {
    let mut document = match object.map(|o| parse(name, key, o)) {
        Some(Ok(document)) => document,
        Some(Err(unreadable)) => return Decision::Abort(unreadable),
        None => T::default(),
    };
    change(&mut document);
    let json = match serde_json::to_string(&document) {
        Ok(json) => json,
        Err(e) => return Decision::Abort(e.to_string()),
    };
    let mut next = object.cloned().unwrap_or_else(|| K::named(name));
    next.set_text(key, json);
    Decision::Replace(next, document)
}

impl<K: Holder, T> Shared<T> for SharedDocument<K, T>
where
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    fn update<'a>(&'a self, change: Change<'a, T>) -> BoxFuture<'a, Result<T, String>> {
        self.change(change).boxed()
    }

    fn follow(self: Arc<Self>, apply: Box<dyn Fn(T) + Send + Sync>) {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let events = watcher(self.api.clone(), config).default_backoff();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            // What the listing in progress found, applied when it is complete: nothing (no
            // object: the default), or the document it holds (`None`: unreadable, keep the
            // last one applied).
            let mut listed: Option<Option<T>> = None;
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Init) => listed = None,
                    Ok(watcher::Event::InitApply(object)) => {
                        listed = Some(self.parse_or_log(&object));
                    }
                    Ok(watcher::Event::InitDone) => match listed.take() {
                        None => apply(T::default()),
                        Some(Some(document)) => apply(document),
                        Some(None) => {}
                    },
                    Ok(watcher::Event::Apply(object)) => {
                        if let Some(document) = self.parse_or_log(&object) {
                            apply(document);
                        }
                    }
                    Ok(watcher::Event::Delete(_)) => {
                        tracing::warn!(object = self.name, "shared state deleted: back to none");
                        apply(T::default());
                    }
                    Err(error) => {
                        tracing::warn!(object = self.name, %error, "watching shared state")
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn holding(text: &str) -> ConfigMap {
        let mut cm = ConfigMap::named("c");
        cm.set_text("k", text.to_owned());
        cm
    }

    #[test]
    fn a_change_applies_to_the_document_read_or_to_a_new_one() {
        let add = |v: &mut Vec<i32>| v.push(7);
        let Decision::Replace(next, document) = changed("c", "k", Some(&holding("[1]")), &add)
        else {
            panic!("expected a write");
        };
        assert_eq!(document, [1, 7]);
        assert_eq!(next.text("k").as_deref(), Some("[1,7]"));
        let Decision::Replace(created, document) =
            changed::<ConfigMap, Vec<i32>>("c", "k", None, &add)
        else {
            panic!("expected a new object");
        };
        assert_eq!(document, [7]);
        assert_eq!(created.metadata.name.as_deref(), Some("c"));
        assert_eq!(created.text("k").as_deref(), Some("[7]"));
    }

    #[test]
    fn an_unreadable_document_is_never_overwritten() {
        let add = |v: &mut Vec<i32>| v.push(7);
        let Decision::Abort(why) = changed("c", "k", Some(&holding("{oops")), &add) else {
            panic!("expected a refusal");
        };
        assert!(why.contains("c key k is unreadable"), "{why}");
    }
}
