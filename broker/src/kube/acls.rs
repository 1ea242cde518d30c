//! The cluster's ACLs in the ConfigMap `<cluster>-acls` (key `acls.json`), which every broker
//! watches and applies, as Kafka's brokers apply the ACLs in their metadata log. A change (Kafka's
//! CreateAcls or DeleteAcls on any broker) is a replace conditional on the resourceVersion read,
//! so concurrent changes on two brokers are both kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tributary_crds::registration::{acls_name, ACLS_KEY};

use super::error::is_conflict;
use crate::acl::{AclBinding, Change, SharedAcls};

/// Attempts before a change gives up on losing races.
const ATTEMPTS: usize = 50;

/// The ACLs of one cluster, in its ConfigMap.
pub struct ConfigMapAcls {
    api: Api<ConfigMap>,
    name: String,
}

impl ConfigMapAcls {
    /// The ACLs of `cluster` in `namespace`.
    pub fn new(client: Client, namespace: &str, cluster: &str) -> ConfigMapAcls {
        ConfigMapAcls {
            api: Api::namespaced(client, namespace),
            name: acls_name(cluster),
        }
    }

    async fn change(&self, change: Change<'_>) -> Result<Vec<AclBinding>, String> {
        let failed = |what: &str, e: kube::Error| format!("{what} ConfigMap {}: {e}", self.name);
        for _ in 0..ATTEMPTS {
            let existing = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| failed("read", e))?;
            let mut all: BTreeSet<AclBinding> = match &existing {
                Some(map) => parse(map)?.into_iter().collect(),
                None => BTreeSet::new(),
            };
            change(&mut all);
            let list: Vec<AclBinding> = all.into_iter().collect();
            let json = serde_json::to_string(&list).map_err(|e| e.to_string())?;
            let data = BTreeMap::from([(ACLS_KEY.to_owned(), json)]);
            let written = match existing {
                // The operator creates it; a broker may come first.
                None => {
                    let map = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            ..ObjectMeta::default()
                        },
                        data: Some(data),
                        ..ConfigMap::default()
                    };
                    self.api.create(&PostParams::default(), &map).await
                }
                Some(mut map) => {
                    map.data = Some(data);
                    self.api
                        .replace(&self.name, &PostParams::default(), &map)
                        .await
                }
            };
            match written {
                Ok(_) => return Ok(list),
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(failed("update", e)),
            }
        }
        Err(format!(
            "ConfigMap {} kept changing; the ACLs were not changed",
            self.name
        ))
    }
}

/// The ACLs a ConfigMap holds; an absent key is none, an unreadable one an error (a change
/// must not overwrite what it cannot read).
fn parse(map: &ConfigMap) -> Result<Vec<AclBinding>, String> {
    match map.data.as_ref().and_then(|d| d.get(ACLS_KEY)) {
        None => Ok(Vec::new()),
        Some(json) if json.trim().is_empty() => Ok(Vec::new()),
        Some(json) => serde_json::from_str(json).map_err(|e| {
            let name = map.metadata.name.as_deref().unwrap_or_default();
            format!("ConfigMap {name} key {ACLS_KEY} is not a list of ACLs: {e}")
        }),
    }
}

impl SharedAcls for ConfigMapAcls {
    fn update<'a>(&'a self, change: Change<'a>) -> BoxFuture<'a, Result<Vec<AclBinding>, String>> {
        self.change(change).boxed()
    }

    fn follow(self: Arc<Self>, apply: Box<dyn Fn(Vec<AclBinding>) + Send + Sync>) {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let events = watcher(self.api.clone(), config).default_backoff();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            // What the listing in progress found, applied when it is complete: nothing (no
            // ConfigMap: no ACLs), or the ACLs it holds (`None`: unreadable, keep the last).
            let mut listed: Option<Option<Vec<AclBinding>>> = None;
            while let Some(event) = events.next().await {
                let map = match event {
                    Ok(watcher::Event::Init) => {
                        listed = None;
                        continue;
                    }
                    Ok(watcher::Event::InitApply(map)) => {
                        listed = Some(parse_or_log(&map));
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => {
                        match listed.take() {
                            None => apply(Vec::new()),
                            Some(Some(acls)) => apply(acls),
                            Some(None) => {}
                        }
                        continue;
                    }
                    Ok(watcher::Event::Apply(map)) => map,
                    Ok(watcher::Event::Delete(_)) => {
                        tracing::warn!(
                            configmap = self.name,
                            "the ACL ConfigMap was deleted: no ACLs"
                        );
                        apply(Vec::new());
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(configmap = self.name, %error, "watching the ACLs");
                        continue;
                    }
                };
                if let Some(acls) = parse_or_log(&map) {
                    apply(acls);
                }
            }
        });
    }
}

/// [`parse`], logging (and keeping the ACLs applied so far) when it fails.
fn parse_or_log(map: &ConfigMap) -> Option<Vec<AclBinding>> {
    parse(map)
        .map_err(|error| tracing::error!(%error, "ACLs not applied"))
        .ok()
}
