//! A JSON document in one key of a ConfigMap or Secret, shared by every broker of the cluster
//! ([`crate::shared::Shared`]): a change is a replace conditional on the resourceVersion read,
//! so concurrent changes on two brokers are both kept, and each broker watches the object and
//! applies what it holds. The operator creates the object once, owned by the KafkaCluster; a
//! broker that comes first creates it.

use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::api::PostParams;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::is_conflict;
use crate::shared::{Change, Shared};

pub use tributary_crds::shared::Holder;

/// Attempts before a change gives up on losing races.
const ATTEMPTS: usize = 50;

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

    /// The document `object` holds; an absent or empty key is the default, an unreadable one
    /// an error (a change must not overwrite what it cannot read).
    fn parse(&self, object: &K) -> Result<T, String> {
        tributary_crds::shared::parse_document(object.text(self.key).as_deref())
            .map_err(|e| format!("{} key {} is unreadable: {e}", self.name, self.key))
    }

    async fn change(&self, change: Change<'_, T>) -> Result<T, String> {
        let failed = |what: &str, e: kube::Error| format!("{what} {}: {e}", self.name);
        for _ in 0..ATTEMPTS {
            let existing = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| failed("read", e))?;
            let mut document = match &existing {
                Some(object) => self.parse(object)?,
                None => T::default(),
            };
            change(&mut document);
            let json = serde_json::to_string(&document).map_err(|e| e.to_string())?;
            let written = match existing {
                None => {
                    let mut object = K::named(&self.name);
                    object.set_text(self.key, json);
                    self.api.create(&PostParams::default(), &object).await
                }
                Some(mut object) => {
                    object.set_text(self.key, json);
                    self.api
                        .replace(&self.name, &PostParams::default(), &object)
                        .await
                }
            };
            match written {
                Ok(_) => return Ok(document),
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(failed("update", e)),
            }
        }
        Err(format!("{} kept changing; nothing was changed", self.name))
    }

    /// [`SharedDocument::parse`], logging (and keeping what was applied) when it fails.
    fn parse_or_log(&self, object: &K) -> Option<T> {
        self.parse(object)
            .map_err(|error| tracing::error!(%error, "shared state not applied"))
            .ok()
    }
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
